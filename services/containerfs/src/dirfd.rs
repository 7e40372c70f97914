//! File operations relative to open directory descriptors. Nothing here
//! follows a symlink in the last component of a name, and regular files are
//! opened for reading only after an `O_PATH` look showed they are regular
//! (so a device or FIFO planted by a container is never opened).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::libc;
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

/// A file's identity: (device, inode).
pub(crate) type FileId = (u64, u64);

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    Char,
    Block,
    Socket,
}

pub(crate) fn kind(st: &FileStat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFCHR => Kind::Char,
        libc::S_IFBLK => Kind::Block,
        libc::S_IFSOCK => Kind::Socket,
        _ => Kind::File,
    }
}

pub(crate) fn id(st: &FileStat) -> FileId {
    (st.st_dev, st.st_ino)
}

pub(crate) fn err(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// `O_PATH` handle on `name` in `dir`, the name itself if it is a symlink.
pub(crate) fn open_path_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)
}

/// A readable handle on directory `name` in `dir` (never through a symlink).
pub(crate) fn open_dir_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)
}

/// A readable handle on the directory `fd` refers to (which may be `O_PATH`).
pub(crate) fn reopen_dir(fd: impl AsFd) -> io::Result<OwnedFd> {
    open_dir_at(fd, OsStr::new("."))
}

/// Opens the file behind `fd` (often `O_PATH`) again with `flags`, through
/// `/proc/self/fd`: the same inode, however its name changed since.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: OFlag) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::fcntl::open(path.as_str(), flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(err)
}

pub(crate) fn stat(fd: impl AsFd) -> io::Result<FileStat> {
    fstat(fd).map_err(err)
}

/// `lstat` of `name` in `dir`.
pub(crate) fn stat_at(dir: impl AsFd, name: &OsStr) -> io::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err)
}

/// Names in a directory (not `.` and `..`), sorted so output is stable.
pub(crate) fn list(dir: impl AsFd) -> io::Result<Vec<OsString>> {
    let fd = reopen_dir(dir)?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(err)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(name).to_os_string());
    }
    names.sort();
    Ok(names)
}

pub(crate) fn set_owner_at(dir: impl AsFd, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(err)
}

pub(crate) fn set_times_at(dir: impl AsFd, name: &OsStr, secs: i64, nanos: i64) -> io::Result<()> {
    let ts = TimeSpec::new(secs as _, nanos.clamp(0, 999_999_999) as _);
    nix::sys::stat::utimensat(dir, name, &ts, &ts, UtimensatFlags::NoFollowSymlink).map_err(err)
}

pub(crate) fn set_times(fd: impl AsFd, secs: i64, nanos: i64) -> io::Result<()> {
    let ts = TimeSpec::new(secs as _, nanos.clamp(0, 999_999_999) as _);
    nix::sys::stat::futimens(fd, &ts, &ts).map_err(err)
}

/// Sets permission bits (with setuid, setgid, sticky) on an open file.
pub(crate) fn set_mode(fd: impl AsFd, mode: u32) -> io::Result<()> {
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode & 0o7777)).map_err(err)
}

pub(crate) fn set_owner(fd: impl AsFd, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(err)
}

/// The value of extended attribute `name` of an open file, if it has one.
pub(crate) fn get_xattr(fd: impl AsFd, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let raw = fd.as_fd().as_raw_fd();
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `name`
        // is NUL-terminated.
        let n = unsafe {
            libc::fgetxattr(
                raw,
                name.as_ptr(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 64 * 1024 => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

pub(crate) fn set_xattr(fd: impl AsFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of `value.len()` bytes and `name`
    // is NUL-terminated.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast::<libc::c_void>(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets an extended attribute on the file behind `fd` (often `O_PATH`),
/// through its `/proc/self/fd` entry.
pub(crate) fn set_xattr_proc(fd: BorrowedFd<'_>, attr: &CStr, value: &[u8]) -> io::Result<()> {
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are NUL-terminated and `value` is valid for
    // reads of `value.len()` bytes.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            attr.as_ptr(),
            value.as_ptr().cast::<libc::c_void>(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets an extended attribute on `name` in `dir` without following a
/// symlink there, through the directory's `/proc/self/fd` entry.
pub(crate) fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &CStr,
    value: &[u8],
) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are NUL-terminated and `value` is valid for
    // reads of `value.len()` bytes.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            attr.as_ptr(),
            value.as_ptr().cast::<libc::c_void>(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One step of [`walk_tree`].
pub(crate) enum Step<'a> {
    /// An entry of a directory (`depth` 0 is a child of the top). For a
    /// directory, return `true` to walk into it.
    Entry {
        dir: BorrowedFd<'a>,
        name: &'a OsStr,
        st: &'a FileStat,
        depth: usize,
    },
    /// Every entry of directory `name` (in `dir`) has been visited.
    Leave {
        dir: BorrowedFd<'a>,
        name: &'a OsStr,
        depth: usize,
    },
}

/// Deepest directory level [`walk_tree`] enters below its top. A walk
/// holds a descriptor per level, so a container's chain of endlessly nested
/// directories (in a volume, or in the files `cp` reads) must end in an
/// error, not in a runtime daemon out of descriptors (`EMFILE`). 256, as
/// imaged's walks of a container's changes: deeper trees are not met in
/// practice, and 256 descriptors stay well inside the usual soft limit of
/// 1024 even with a few walks at once. [`remove_tree_at`] removes deeper
/// trees all the same (see there).
pub(crate) const MAX_DEPTH: usize = 256;

/// Longest path shown in the error of a tree that is too deep.
const MAX_SHOWN: usize = 200;

/// The error for directory `name` below the directories `parents`, which
/// a walk may not enter.
fn too_deep<'a>(parents: impl Iterator<Item = &'a OsStr>, name: &'a OsStr) -> io::Error {
    let mut path: Vec<u8> = Vec::new();
    for p in parents.chain(std::iter::once(name)) {
        if path.len() > MAX_SHOWN {
            break;
        }
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(p.as_bytes());
    }
    let mut shown = String::from_utf8_lossy(&path).into_owned();
    if shown.len() > MAX_SHOWN {
        let mut end = MAX_SHOWN;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    io::Error::other(format!(
        "{shown}: directories nested deeper than {MAX_DEPTH} levels"
    ))
}

/// Walks depth-first below the directory `top`, never following a symlink
/// and holding one descriptor per level (not per directory), without
/// recursion, so a wide tree costs neither stack nor descriptors, and a
/// deep one at most [`MAX_DEPTH`] descriptors: asking to enter a directory
/// below that depth is an error. Entries that vanish while walked are
/// skipped.
pub(crate) fn walk_tree(
    top: impl AsFd,
    mut f: impl FnMut(Step<'_>) -> io::Result<bool>,
) -> io::Result<()> {
    struct Frame {
        fd: OwnedFd,
        names: std::vec::IntoIter<OsString>,
        name: OsString,
    }
    let top = reopen_dir(top)?;
    let names = list(&top)?.into_iter();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = Frame {
        fd: top,
        names,
        name: OsString::new(),
    };
    loop {
        let depth = stack.len();
        let frame = stack.last_mut().unwrap_or(&mut root);
        let Some(name) = frame.names.next() else {
            let Some(done) = stack.pop() else {
                return Ok(());
            };
            let parent = stack
                .last()
                .map(|f| f.fd.as_fd())
                .unwrap_or(root.fd.as_fd());
            f(Step::Leave {
                dir: parent,
                name: &done.name,
                depth: depth - 1,
            })?;
            continue;
        };
        let st = match stat_at(&frame.fd, &name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let descend = f(Step::Entry {
            dir: frame.fd.as_fd(),
            name: &name,
            st: &st,
            depth,
        })?;
        if descend && kind(&st) == Kind::Dir {
            if depth >= MAX_DEPTH {
                return Err(too_deep(stack.iter().map(|f| f.name.as_os_str()), &name));
            }
            let fd = match open_dir_at(&frame.fd, &name) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let names = list(&fd)?.into_iter();
            stack.push(Frame { fd, names, name });
        }
    }
}

/// Bytes held by the files under directory `dir` (hard links counted once),
/// the way Docker counts what a prune reclaims.
pub(crate) fn tree_size(dir: impl AsFd) -> io::Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    walk_tree(dir, |step| {
        if let Step::Entry { st, .. } = step {
            if kind(st) == Kind::Dir {
                return Ok(true);
            }
            if st.st_nlink <= 1 || seen.insert(id(st)) {
                total = total.saturating_add(st.st_size.max(0) as u64);
            }
        }
        Ok(false)
    })?;
    Ok(total)
}

/// Removes `name` in `dir` and, when it is a directory, everything under
/// it; never follows a symlink. A missing `name` is fine. A tree deeper
/// than [`MAX_DEPTH`] is taken apart in slices: the directories at the
/// deepest level a walk enters are moved up under `name` itself, and the
/// walk repeats until nothing was moved, so removal never needs more
/// descriptors than a walk.
pub(crate) fn remove_tree_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let st = match stat_at(&dir, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if kind(&st) != Kind::Dir {
        return unlink_at(&dir, name, false);
    }
    let top = match open_dir_at(&dir, name) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    loop {
        let mut moved = false;
        walk_tree(&top, |step| match step {
            Step::Entry {
                dir,
                name,
                st,
                depth,
            } => {
                if kind(st) != Kind::Dir {
                    unlink_at(dir, name, false)?;
                    return Ok(false);
                }
                if depth < MAX_DEPTH {
                    return Ok(true);
                }
                move_up(dir, name, &top)?;
                moved = true;
                Ok(false)
            }
            Step::Leave { dir, name, .. } => {
                unlink_at(dir, name, true)?;
                Ok(false)
            }
        })?;
        if !moved {
            break;
        }
    }
    unlink_at(&dir, name, true)
}

/// Moves directory `name` in `dir` to a new name in `top` (for
/// [`remove_tree_at`]).
fn move_up(dir: BorrowedFd<'_>, name: &OsStr, top: &OwnedFd) -> io::Result<()> {
    loop {
        let to = format!(".rdock-deep-{}", hex::encode(rand::random::<[u8; 8]>()));
        match nix::fcntl::renameat2(
            dir,
            name,
            top,
            OsStr::new(&to),
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            // Gone already: nothing left to remove.
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(err(e)),
        }
    }
}

pub(crate) fn unlink_at(dir: impl AsFd, name: &OsStr, is_dir: bool) -> io::Result<()> {
    let flag = if is_dir {
        nix::unistd::UnlinkatFlags::RemoveDir
    } else {
        nix::unistd::UnlinkatFlags::NoRemoveDir
    };
    match nix::unistd::unlinkat(dir, name, flag) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Makes a chain of `levels` nested directories `d` below `top`, with
    /// a file `f` beside each.
    fn chain(top: &Path, levels: usize) {
        let mut dir = open_dir_at(
            nix::fcntl::open(top, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap(),
            OsStr::new("."),
        )
        .unwrap();
        for _ in 0..levels {
            nix::sys::stat::mkdirat(&dir, "d", Mode::from_bits_truncate(0o755)).unwrap();
            openat(
                &dir,
                "f",
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .unwrap();
            dir = open_dir_at(&dir, OsStr::new("d")).unwrap();
        }
    }

    fn dir_fd(p: &Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn a_walk_stops_at_the_depth_limit_and_removal_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        // MAX_DEPTH levels below the top: walked whole.
        let ok = tmp.path().join("ok");
        std::fs::create_dir(&ok).unwrap();
        chain(&ok, MAX_DEPTH + 1);
        let walked = dir_fd(&ok.join("d"));
        let mut dirs = 0;
        walk_tree(&walked, |step| {
            if let Step::Entry { st, .. } = step {
                if kind(st) == Kind::Dir {
                    dirs += 1;
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .unwrap();
        assert_eq!(dirs, MAX_DEPTH);

        // One more is refused, with a clear error, by every walk.
        let e = walk_tree(dir_fd(&ok), |_| Ok(true)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.ends_with(&format!(
                ": directories nested deeper than {MAX_DEPTH} levels"
            )),
            "{msg}"
        );
        assert!(msg.starts_with("d/d/d/"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
        assert!(tree_size(dir_fd(&ok)).is_err());

        // Removal takes a much deeper tree apart all the same.
        let deep = tmp.path().join("deep");
        std::fs::create_dir(&deep).unwrap();
        chain(&deep, 3 * MAX_DEPTH + 7);
        remove_tree_at(dir_fd(tmp.path()), OsStr::new("deep")).unwrap();
        assert!(!deep.exists());
        remove_tree_at(dir_fd(tmp.path()), OsStr::new("ok")).unwrap();
        assert!(list(dir_fd(tmp.path())).unwrap().is_empty());
    }
}
