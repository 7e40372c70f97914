//! Reading overlay layers: one layer as it is on disk (a container's upper
//! dir, whiteouts and opaque dirs included), or a stack of layers merged the
//! way overlayfs merges them.
//!
//! Everything is reached through directory file descriptors, one name at a
//! time, never following a symlink: a running container can change its
//! upper dir while the daemon reads it, and swapping a directory for a
//! symlink must not make the daemon list or read anything outside the layer.
//! Entries that vanish while they are read are skipped, as Docker does.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::libc;
use nix::sys::stat::{FileStat, Mode};

/// Set to "y" on a directory that hides the layers below it.
pub const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
/// Set on a directory renamed with `redirect_dir=on`.
pub const REDIRECT_XATTR: &CStr = c"trusted.overlay.redirect";
/// Set on a file copied up with `metacopy=on` (its data stays below).
pub const METACOPY_XATTR: &CStr = c"trusted.overlay.metacopy";

/// Deepest directory nesting read. The walks recurse and hold a descriptor
/// per level, so a container's tree of endless nested directories must
/// end in an error, not in a blown stack or descriptor table.
pub const MAX_DEPTH: usize = 256;

/// The error for a tree deeper than [`MAX_DEPTH`] at `path`.
pub fn too_deep(path: &[OsString]) -> io::Error {
    let mut shown = String::from_utf8_lossy(&join(path)).into_owned();
    if shown.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|i| shown.is_char_boundary(*i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    io::Error::other(format!(
        "/{shown}: directories nested deeper than {MAX_DEPTH} levels"
    ))
}

/// What kind of file a stat describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    Socket,
    Char,
    Block,
}

pub fn kind(st: &FileStat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFCHR => Kind::Char,
        libc::S_IFBLK => Kind::Block,
        _ => Kind::File,
    }
}

/// An overlay whiteout: a character device 0/0.
pub fn is_whiteout(st: &FileStat) -> bool {
    kind(st) == Kind::Char && st.st_rdev == 0
}

/// Errors that mean the entry went away (or changed kind) while it was read.
pub fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::ESTALE)
    )
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Opens a layer root (itself trusted: it is the daemon's own path).
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// Opens the directory `name` of `dir`; fails if it is anything else.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// Opens the regular file `name` of `dir` for reading. `O_NONBLOCK` keeps a
/// fifo swapped in meanwhile from blocking the open; the caller checks with
/// `fstat` that it got the file it stat'ed.
pub fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<std::fs::File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    Ok(std::fs::File::from(fd))
}

/// lstat of `name` in `dir`; `None` when it does not exist.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<FileStat>> {
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileStat> {
    nix::sys::stat::fstat(fd).map_err(errno)
}

pub fn read_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    nix::fcntl::readlinkat(dir, name).map_err(errno)
}

/// The names in `dir` ("." and ".." left out), sorted bytewise: the order
/// Go's `filepath.Walk` visits them in, so the order `docker diff` prints.
pub fn read_names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut d = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(errno)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Reads a value of unknown size with a getxattr(2)-family call: `call`
/// is given an empty buffer to learn the size, then a buffer of that size;
/// when the value grew in between (`ERANGE`) it starts over. `call` returns
/// what the syscall returns (a length, or -1 with `errno` set); `what`
/// names the value in the error of one that never settles.
pub(crate) fn read_sized(
    what: &str,
    mut call: impl FnMut(&mut [u8]) -> libc::ssize_t,
) -> io::Result<Vec<u8>> {
    for _ in 0..8 {
        let size = call(&mut []);
        let Ok(size) = usize::try_from(size) else {
            return Err(io::Error::last_os_error());
        };
        let mut value = vec![0u8; size];
        let got = call(&mut value);
        match usize::try_from(got) {
            Ok(got) => {
                value.truncate(got);
                return Ok(value);
            }
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ERANGE) {
                    return Err(e);
                }
                // grew between the two calls
            }
        }
    }
    Err(io::Error::other(format!("{what} keeps changing size")))
}

/// An xattr's value read with `call` (see [`read_sized`]); `None` when the
/// attribute is absent or xattrs are unsupported.
pub(crate) fn xattr_value(
    call: impl FnMut(&mut [u8]) -> libc::ssize_t,
) -> io::Result<Option<Vec<u8>>> {
    match read_sized("xattr", call) {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The xattr names listed with `call` (see [`read_sized`]); none when
/// xattrs are unsupported.
pub(crate) fn xattr_names(
    call: impl FnMut(&mut [u8]) -> libc::ssize_t,
) -> io::Result<Vec<CString>> {
    match read_sized("xattr list", call) {
        Ok(list) => Ok(list
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .filter_map(|n| CString::new(n).ok())
            .collect()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// fgetxattr(2); `None` when the attribute is absent or unsupported.
pub fn fgetxattr(fd: BorrowedFd<'_>, attr: &CStr) -> io::Result<Option<Vec<u8>>> {
    xattr_value(|buf| {
        // SAFETY: `attr` is NUL-terminated and alive for the call, and `buf`
        // is a writable buffer of `buf.len()` bytes that outlives it (an
        // empty one asks for the size only).
        unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                attr.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// flistxattr(2): the names of the xattrs of `fd` (none when unsupported).
pub fn flistxattr(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    xattr_names(|buf| {
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes that
        // outlives the call (an empty one asks for the size only).
        unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
    })
}

pub fn is_opaque(dir: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(fgetxattr(dir, OPAQUE_XATTR)?.as_deref() == Some(b"y".as_slice()))
}

/// Refuses a directory renamed under `redirect_dir=on`: its content lives
/// under another name in the layers below, which rdock does not follow.
pub fn check_not_redirected(dir: BorrowedFd<'_>, shown: &str) -> io::Result<()> {
    if fgetxattr(dir, REDIRECT_XATTR)?.is_some() {
        return Err(io::Error::other(format!(
            "{shown} is a directory renamed with overlay redirect_dir=on, which rdock cannot read; \
             mount container root filesystems with redirect_dir=off"
        )));
    }
    Ok(())
}

/// An entry of a merged directory as overlayfs shows it.
#[derive(Clone, Copy)]
pub struct Visible {
    /// The part (index into [`Merged::parts`]) it comes from.
    pub part: usize,
    pub stat: FileStat,
}

/// One directory of a merged view: the real directories that make it up,
/// topmost first, down to the first opaque one.
pub struct Merged {
    parts: Vec<OwnedFd>,
}

impl Merged {
    /// The root of `layers` (topmost first) merged.
    pub fn root(layers: &[PathBuf]) -> io::Result<Merged> {
        let mut parts = Vec::with_capacity(layers.len());
        for l in layers {
            let fd = open_root(l).map_err(|e| {
                io::Error::new(e.kind(), format!("open layer {}: {e}", l.display()))
            })?;
            let opaque = is_opaque(fd.as_fd())?;
            parts.push(fd);
            if opaque {
                break;
            }
        }
        Ok(Merged { parts })
    }

    /// The topmost directory, whose metadata the merged directory shows.
    pub fn top(&self) -> Option<BorrowedFd<'_>> {
        self.parts.first().map(|p| p.as_fd())
    }

    /// Refuses the directory if a part of it was renamed under
    /// `redirect_dir=on` (see [`check_not_redirected`]).
    pub fn check_not_redirected(&self, shown: &str) -> io::Result<()> {
        self.parts
            .iter()
            .try_for_each(|p| check_not_redirected(p.as_fd(), shown))
    }

    pub fn part(&self, i: usize) -> Option<BorrowedFd<'_>> {
        self.parts.get(i).map(|p| p.as_fd())
    }

    /// The entries the merged directory shows, by name: the topmost layer
    /// holding a name decides, and a whiteout there hides it.
    pub fn entries(&self) -> io::Result<BTreeMap<OsString, Visible>> {
        let mut seen: BTreeMap<OsString, Option<Visible>> = BTreeMap::new();
        for (i, part) in self.parts.iter().enumerate() {
            for name in read_names(part.as_fd())? {
                if seen.contains_key(&name) {
                    continue;
                }
                let Some(stat) = stat_at(part.as_fd(), &name)? else {
                    continue;
                };
                let v = (!is_whiteout(&stat)).then_some(Visible { part: i, stat });
                seen.insert(name, v);
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect())
    }

    /// The merged directory `name`, or `None` when the view shows no
    /// directory there.
    pub fn child(&self, name: &OsStr) -> io::Result<Option<Merged>> {
        let mut parts = Vec::new();
        for part in &self.parts {
            let Some(st) = stat_at(part.as_fd(), name)? else {
                continue;
            };
            if kind(&st) != Kind::Dir {
                // A whiteout or a non-directory hides what is below.
                break;
            }
            let fd = match open_dir_at(part.as_fd(), name) {
                Ok(fd) => fd,
                Err(e) if vanished(&e) => break,
                Err(e) => return Err(e),
            };
            let opaque = is_opaque(fd.as_fd())?;
            parts.push(fd);
            if opaque {
                break;
            }
        }
        Ok((!parts.is_empty()).then_some(Merged { parts }))
    }
}

/// `a/b/c` from path components.
pub fn join(components: &[OsString]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(m: &Merged) -> Vec<String> {
        m.entries()
            .unwrap()
            .into_keys()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    pub(crate) fn whiteout(p: &Path) {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .unwrap();
    }

    pub(crate) fn set_opaque(p: &Path) {
        let fd = open_root(p).unwrap();
        // SAFETY: NUL-terminated name and a 1-byte value alive for the call.
        let rc = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                OPAQUE_XATTR.as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }

    /// A getxattr-style call over `values`, one per call: a value is
    /// "read" like the kernel does, a shorter buffer than it fails with
    /// `ERANGE`, an `Err` sets that errno.
    fn fake(values: Vec<Result<&'static [u8], Errno>>) -> impl FnMut(&mut [u8]) -> libc::ssize_t {
        let mut it = values.into_iter();
        move |buf| match it.next().expect("called too often") {
            Ok(v) if buf.is_empty() => v.len() as libc::ssize_t,
            Ok(v) if buf.len() < v.len() => {
                Errno::ERANGE.set();
                -1
            }
            Ok(v) => {
                buf[..v.len()].copy_from_slice(v);
                v.len() as libc::ssize_t
            }
            Err(e) => {
                e.set();
                -1
            }
        }
    }

    #[test]
    fn sized_reads_start_over_when_the_value_grows() {
        // Size 2, then the value grew to 5 before it was read: again.
        let got = read_sized(
            "x",
            fake(vec![Ok(b"ab"), Ok(b"abcde"), Ok(b"abcde"), Ok(b"abcde")]),
        );
        assert_eq!(got.unwrap(), b"abcde");
        // It shrank: the shorter value.
        let got = read_sized("x", fake(vec![Ok(b"abcd"), Ok(b"ab")]));
        assert_eq!(got.unwrap(), b"ab");
        // It never settles: an error, not a loop.
        let growing = (0..16).map(|i| Ok(&b"0123456789abcdef"[..=i])).collect();
        let e = read_sized("xattr", fake(growing)).unwrap_err();
        assert_eq!(e.to_string(), "xattr keeps changing size");

        // Absent or unsupported is no value; other errors are errors.
        assert_eq!(xattr_value(fake(vec![Err(Errno::ENODATA)])).unwrap(), None);
        assert_eq!(
            xattr_value(fake(vec![Ok(b""), Err(Errno::ENOTSUP)])).unwrap(),
            None
        );
        let e = xattr_value(fake(vec![Err(Errno::EACCES)])).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        assert_eq!(
            xattr_value(fake(vec![Ok(b"y"), Ok(b"y")]))
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );

        // Lists split at NULs; unsupported lists nothing.
        let names = xattr_names(fake(vec![
            Ok(b"user.a\0trusted.b\0"),
            Ok(b"user.a\0trusted.b\0"),
        ]));
        assert_eq!(
            names.unwrap(),
            [c"user.a".to_owned(), c"trusted.b".to_owned()]
        );
        assert!(xattr_names(fake(vec![Err(Errno::ENOTSUP)]))
            .unwrap()
            .is_empty());
        assert!(xattr_names(fake(vec![Err(Errno::EIO)])).is_err());
    }

    #[test]
    fn merges_like_overlayfs() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: whiteouts and trusted xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        for d in ["a/x", "b", "c"] {
            std::fs::create_dir_all(bottom.join(d)).unwrap();
        }
        std::fs::write(bottom.join("a/x/f"), b"1").unwrap();
        std::fs::write(bottom.join("a/old"), b"1").unwrap();
        std::fs::write(bottom.join("gone"), b"1").unwrap();
        std::fs::create_dir_all(top.join("a")).unwrap();
        std::fs::create_dir_all(top.join("b")).unwrap();
        std::fs::write(top.join("b/new"), b"2").unwrap();
        set_opaque(&top.join("b"));
        whiteout(&top.join("gone"));
        std::fs::write(top.join("c"), b"file over dir").unwrap();
        symlink("/etc", top.join("link")).unwrap();

        let root = Merged::root(&[top.clone(), bottom.clone()]).unwrap();
        assert_eq!(names(&root), ["a", "b", "c", "link"]);
        let a = root.child(OsStr::new("a")).unwrap().unwrap();
        assert_eq!(names(&a), ["old", "x"]);
        let b = root.child(OsStr::new("b")).unwrap().unwrap();
        assert_eq!(names(&b), ["new"], "opaque dir hides the lower one");
        assert!(root.child(OsStr::new("c")).unwrap().is_none());
        assert!(root.child(OsStr::new("link")).unwrap().is_none());
        assert!(root.child(OsStr::new("gone")).unwrap().is_none());
        assert_eq!(join(&["a".into(), "b".into()]), b"a/b");
    }
}
