//! `docker cp` out of a container: what a path is ([`stat_path`]) and a tar
//! of it ([`PathArchive`], [`archive_path`]).
//!
//! `root` is the container's root directory as the host sees it:
//! `/proc/<pid>/root` for a running container, a mount of its root
//! filesystem for a stopped one. Paths are resolved inside it (`openat2`
//! with `RESOLVE_IN_ROOT`, or a walk over descriptors); the archive is read through descriptors, never
//! following a symlink, and device nodes and FIFOs are described, never
//! opened.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::stat::FileStat;
use rdock_proto::runtime::v1::PathStat;

use crate::dirfd::{self, FileId, Kind, Step};
use crate::error::{Error, Result};
use crate::inroot::{CleanPath, Root, WalkOptions};

/// Go's `os.FileMode` type bits, which Docker reports.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_NAMED_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHAR_DEVICE: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A path's mode as Docker reports it (Go's `os.FileMode`).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => GO_DIR,
        libc::S_IFLNK => GO_SYMLINK,
        libc::S_IFIFO => GO_NAMED_PIPE,
        libc::S_IFSOCK => GO_SOCKET,
        libc::S_IFCHR => GO_DEVICE | GO_CHAR_DEVICE,
        libc::S_IFBLK => GO_DEVICE,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= GO_SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= GO_SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= GO_STICKY;
    }
    m
}

fn rfc3339(secs: i64, nanos: i64) -> String {
    chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Maps a resolution failure of user path `path` to the crate's errors.
fn resolve_error(path: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Error::PathNotFound(path.to_string()),
        Some(libc::ENOTDIR) => Error::InvalidArgument(format!("{path}: not a directory")),
        Some(libc::ELOOP) => {
            Error::InvalidArgument(format!("{path}: too many levels of symbolic links"))
        }
        _ => Error::Internal(format!("resolve {path}: {e}")),
    }
}

fn path_stat(name: String, st: &FileStat, link_target: String) -> PathStat {
    PathStat {
        name,
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: rfc3339(st.st_mtime, st.st_mtime_nsec),
        link_target,
        is_dir: dirfd::kind(st) == Kind::Dir,
    }
}

/// What `path` (absolute in the container; a relative one is taken from
/// `/`) is in the container whose root directory is `root`. A symlink is
/// described itself (with `link_target`, the absolute path it resolves to
/// in the container), unless the path ends in `/` or `/.`. A missing path
/// is [`Error::PathNotFound`]; the caller words Docker's `Could not find
/// the file PATH in container NAME`.
#[tracing::instrument(level = "debug", skip_all, fields(path = %path))]
pub fn stat_path(root: &std::path::Path, path: &str) -> Result<PathStat> {
    let clean = CleanPath::parse(path)?;
    let root = Root::open(root)?;
    let fd = root
        .resolve(&clean, clean.dir_required)
        .map_err(|e| resolve_error(path, e))?;
    let st = dirfd::stat(&fd).map_err(|e| resolve_error(path, e))?;
    let link_target = if dirfd::kind(&st) == Kind::Symlink {
        link_target(&root, &clean, &fd)
    } else {
        String::new()
    };
    Ok(path_stat(clean.base_name(), &st, link_target))
}

/// Where symlink `fd` (at `clean`) leads, as an absolute path in the
/// container (completed lexically past a missing component, as Docker
/// does); the raw link text when even that fails (a loop).
fn link_target(root: &Root, clean: &CleanPath, fd: &OwnedFd) -> String {
    match root.walk(
        &clean.components,
        WalkOptions {
            follow_last: true,
            lexical_tail: true,
            ..Default::default()
        },
    ) {
        Ok(w) => w.logical_path(),
        Err(_) => nix::fcntl::readlinkat(fd, OsStr::new(""))
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// A path of a container opened for archiving: resolved and described, so
/// the caller can answer with [`PathArchive::stat`] (or an error) before the
/// first byte of the tar stream.
#[derive(Debug)]
pub struct PathArchive {
    stat: PathStat,
    /// `O_PATH` handle on what is archived.
    fd: OwnedFd,
    /// The top entry's name.
    top: PathBuf,
}

impl PathArchive {
    /// Opens `path` in the container rooted at `root`. With `follow_link`
    /// (`cp -L`) a symlink at `path` itself is archived as what it points
    /// to (resolved inside the container); otherwise as a symlink. The stat
    /// describes what is archived, named with `path`'s base name.
    #[tracing::instrument(skip_all, fields(path = %path, follow_link))]
    pub fn open(root: &std::path::Path, path: &str, follow_link: bool) -> Result<PathArchive> {
        let clean = CleanPath::parse(path)?;
        let root = Root::open(root)?;
        let follow = follow_link || clean.dir_required;
        let fd = root
            .resolve(&clean, follow)
            .map_err(|e| resolve_error(path, e))?;
        let st = dirfd::stat(&fd).map_err(|e| resolve_error(path, e))?;
        let link = if dirfd::kind(&st) == Kind::Symlink {
            link_target(&root, &clean, &fd)
        } else {
            String::new()
        };
        let name = clean.base_name();
        // The root and `dir/.` are archived as `./` and their content.
        let top = if name == "/" || name == "." {
            PathBuf::from(".")
        } else {
            PathBuf::from(&name)
        };
        Ok(PathArchive {
            stat: path_stat(name, &st, link),
            fd,
            top,
        })
    }

    /// What is archived.
    pub fn stat(&self) -> &PathStat {
        &self.stat
    }

    /// Writes the tar stream (finished with its end-of-archive marker) to
    /// `w`: the top entry named after the path's base name, a directory's
    /// content below it (recursively; symlinks as symlinks; files with
    /// several links in the tree as hard links to the first; sockets left
    /// out). Returns `w`.
    pub fn write_to<W: Write>(self, w: W) -> Result<W> {
        let mut b = tar::Builder::new(w);
        let wrote = (|| -> io::Result<()> {
            let st = dirfd::stat(&self.fd)?;
            let mut links: HashMap<FileId, PathBuf> = HashMap::new();
            match dirfd::kind(&st) {
                Kind::Dir => {
                    append(&mut b, None, &self.fd, &self.top, &st, &mut links)?;
                    let dir = dirfd::reopen_dir(&self.fd)?;
                    let mut prefix: Vec<OsString> = vec![self.top.as_os_str().to_os_string()];
                    dirfd::walk_tree(&dir, |step| {
                        let Step::Entry {
                            dir,
                            name,
                            st,
                            depth,
                        } = step
                        else {
                            return Ok(false);
                        };
                        prefix.truncate(depth + 1);
                        let mut path: PathBuf = prefix.iter().collect();
                        path.push(name);
                        let handle = match dirfd::open_path_at(dir, name) {
                            Ok(h) => h,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                            Err(e) => return Err(e),
                        };
                        // The entry as opened (it may have changed since it was listed).
                        let st = dirfd::stat(&handle).unwrap_or(*st);
                        append(&mut b, Some((dir, name)), &handle, &path, &st, &mut links)?;
                        if dirfd::kind(&st) == Kind::Dir {
                            prefix.push(name.to_os_string());
                            return Ok(true);
                        }
                        Ok(false)
                    })?;
                }
                _ => append(&mut b, None, &self.fd, &self.top, &st, &mut links)?,
            }
            b.finish()
        })();
        wrote.map_err(|e| Error::Internal(format!("archive {}: {e}", self.stat.name)))?;
        b.into_inner()
            .map_err(|e| Error::Internal(format!("archive {}: {e}", self.stat.name)))
    }
}

/// Opens `path` and writes its tar stream to `w` (see [`PathArchive`]);
/// returns what was archived.
pub fn archive_path<W: Write>(
    root: &std::path::Path,
    path: &str,
    follow_link: bool,
    w: W,
) -> Result<PathStat> {
    let a = PathArchive::open(root, path, follow_link)?;
    let stat = a.stat().clone();
    a.write_to(w)?;
    Ok(stat)
}

fn header_for(st: &FileStat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Appends one entry for the file behind `handle` (an `O_PATH` handle;
/// `at` is its directory and name when it has one in the tree).
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    at: Option<(std::os::fd::BorrowedFd<'_>, &OsStr)>,
    handle: &OwnedFd,
    path: &std::path::Path,
    st: &FileStat,
    links: &mut HashMap<FileId, PathBuf>,
) -> io::Result<()> {
    let mut h = header_for(st);
    match dirfd::kind(st) {
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            let mut p = path.as_os_str().to_os_string();
            if !p.as_bytes().ends_with(b"/") {
                p.push("/");
            }
            b.append_data(&mut h, PathBuf::from(p), io::empty())
        }
        Kind::File => {
            if st.st_nlink > 1 {
                if let Some(first) = links.get(&dirfd::id(st)) {
                    h.set_entry_type(tar::EntryType::Link);
                    return b.append_link(&mut h, path, first);
                }
                links.insert(dirfd::id(st), path.to_path_buf());
            }
            let file = File::from(dirfd::reopen(handle.as_fd(), OFlag::O_RDONLY)?);
            let size = st.st_size.max(0) as u64;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(size);
            b.append_data(&mut h, path, Exact::new(file, size))
        }
        Kind::Symlink => {
            let target = match at {
                Some((dir, name)) => nix::fcntl::readlinkat(dir, name),
                None => nix::fcntl::readlinkat(handle, OsStr::new("")),
            }
            .map_err(dirfd::err)?;
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, path, target)
        }
        Kind::Fifo => {
            h.set_entry_type(tar::EntryType::Fifo);
            b.append_data(&mut h, path, io::empty())
        }
        Kind::Char | Kind::Block => {
            h.set_entry_type(if dirfd::kind(st) == Kind::Char {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
            b.append_data(&mut h, path, io::empty())
        }
        Kind::Socket => Ok(()),
    }
}

/// Exactly `len` bytes of a file whose size may change while it is read:
/// cut when it grew, padded with zeros when it shrank, so the tar stays
/// well-formed.
struct Exact<R> {
    inner: R,
    left: u64,
    eof: bool,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, len: u64) -> Self {
        Exact {
            inner,
            left: len,
            eof: false,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = if self.eof {
            0
        } else {
            loop {
                match self.inner.read(buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        if n == 0 {
            self.eof = true;
            buf.fill(0);
            self.left -= want as u64;
            return Ok(want);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;

    /// A container root with a directory tree and symlinks of every kind;
    /// `outside` is a sibling of the root that must never appear.
    fn container() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("app/sub")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0").unwrap();
        std::fs::write(r.join("app/a.txt"), "aaa").unwrap();
        std::fs::write(r.join("app/sub/b.txt"), "bb").unwrap();
        std::fs::hard_link(r.join("app/a.txt"), r.join("app/sub/a-link")).unwrap();
        std::fs::set_permissions(r.join("app/a.txt"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        symlink("../etc/passwd", r.join("app/pw")).unwrap();
        symlink("/etc", r.join("etclink")).unwrap();
        symlink("../../../../outside", r.join("app/escape")).unwrap();
        nix::unistd::mkfifo(
            &r.join("app/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("outside")).unwrap();
        std::fs::write(d.path().join("outside/secret"), "host").unwrap();
        d
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, String)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let kind = e.header().entry_type();
                let mut body = String::new();
                if kind.is_symlink() || kind.is_hard_link() {
                    body = String::from_utf8_lossy(&e.link_name_bytes().unwrap()).into_owned();
                } else {
                    e.read_to_string(&mut body).unwrap();
                }
                (name, kind, body)
            })
            .collect()
    }

    #[test]
    fn stat_reports_docker_modes_and_link_targets() {
        let d = container();
        let r = d.path().join("root");
        let s = stat_path(&r, "/app").unwrap();
        assert_eq!(s.name, "app");
        assert!(s.is_dir);
        assert_eq!(s.mode & GO_DIR, GO_DIR);
        chrono::DateTime::parse_from_rfc3339(&s.mtime).unwrap();
        let s = stat_path(&r, "/app/a.txt").unwrap();
        assert_eq!(s.mode, 0o755 | GO_SETUID);
        assert_eq!(s.size, 3);
        let s = stat_path(&r, "/app/pw").unwrap();
        assert_eq!(s.mode & GO_SYMLINK, GO_SYMLINK);
        assert_eq!(s.link_target, "/etc/passwd");
        let s = stat_path(&r, "app/escape").unwrap();
        assert_eq!(s.link_target, "/outside");
        let s = stat_path(&r, "/etclink/").unwrap();
        assert!(s.is_dir);
        assert_eq!(s.name, "etclink");
        assert_eq!(stat_path(&r, "/").unwrap().name, "/");
        let s = stat_path(&r, "/app/fifo").unwrap();
        assert_eq!(s.mode, 0o600 | GO_NAMED_PIPE);

        match stat_path(&r, "/nope") {
            Err(Error::PathNotFound(p)) => assert_eq!(p, "/nope"),
            other => panic!("{other:?}"),
        }
        // `..` and symlinks cannot reach the sibling directory.
        assert!(matches!(
            stat_path(&r, "/../outside/secret"),
            Err(Error::PathNotFound(_))
        ));
        assert!(matches!(
            stat_path(&r, "/app/escape/secret"),
            Err(Error::PathNotFound(_))
        ));
        assert!(matches!(
            stat_path(&r, "/etc/passwd/"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn archives_a_directory_with_links_kept() {
        let d = container();
        let r = d.path().join("root");
        let mut out = Vec::new();
        let st = archive_path(&r, "/app", false, &mut out).unwrap();
        assert_eq!(st.name, "app");
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/",
                "app/a.txt",
                "app/escape",
                "app/fifo",
                "app/pw",
                "app/sub/",
                "app/sub/a-link",
                "app/sub/b.txt"
            ]
        );
        let find = |n: &str| got.iter().find(|e| e.0 == n).unwrap().clone();
        assert_eq!(find("app/a.txt").2, "aaa");
        assert_eq!(find("app/pw").1, tar::EntryType::Symlink);
        assert_eq!(find("app/pw").2, "../etc/passwd");
        assert_eq!(find("app/escape").2, "../../../../outside");
        assert_eq!(find("app/sub/a-link").1, tar::EntryType::Link);
        assert_eq!(find("app/sub/a-link").2, "app/a.txt");
        assert_eq!(find("app/fifo").1, tar::EntryType::Fifo);
        // The setuid bit travels in the header.
        let mut a = tar::Archive::new(&out[..]);
        let modes: Vec<u32> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().mode().unwrap())
            .collect();
        assert_eq!(modes[1], 0o4755);
    }

    #[test]
    fn symlinks_are_archived_or_followed_inside_the_root() {
        let d = container();
        let r = d.path().join("root");
        let mut out = Vec::new();
        let st = archive_path(&r, "/etclink", false, &mut out).unwrap();
        assert_eq!(st.link_target, "/etc");
        assert_eq!(
            entries(&out),
            vec![("etclink".into(), tar::EntryType::Symlink, "/etc".into())]
        );
        let mut out = Vec::new();
        let st = archive_path(&r, "/etclink", true, &mut out).unwrap();
        assert!(st.is_dir);
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["etclink/", "etclink/passwd"]);

        // -L through a link pointing out of the root stays inside it.
        let e = archive_path(&r, "/app/escape", true, Vec::new()).unwrap_err();
        assert!(matches!(e, Error::PathNotFound(_)), "{e:?}");

        // A single file, and the content of a directory with `/.`.
        let mut out = Vec::new();
        archive_path(&r, "/etclink/passwd", false, &mut out).unwrap();
        assert_eq!(
            entries(&out),
            vec![(
                "passwd".into(),
                tar::EntryType::Regular,
                "root:x:0:0".into()
            )]
        );
        let mut out = Vec::new();
        let st = archive_path(&r, "/app/sub/.", false, &mut out).unwrap();
        assert_eq!(st.name, ".");
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["./", "a-link", "b.txt"]);
    }

    #[test]
    fn the_stat_comes_before_any_data() {
        let d = container();
        let r = d.path().join("root");
        let a = PathArchive::open(&r, "/app/sub/b.txt", false).unwrap();
        assert_eq!(a.stat().size, 2);
        // The file changes after it was described: the archive holds what
        // is there when it is written, and stays well-formed.
        std::fs::write(r.join("app/sub/b.txt"), "grown content").unwrap();
        let out = a.write_to(Vec::new()).unwrap();
        assert_eq!(
            entries(&out),
            vec![(
                "b.txt".into(),
                tar::EntryType::Regular,
                "grown content".into()
            )]
        );
        assert!(matches!(
            PathArchive::open(Path::new("/nonexistent-root"), "/x", false),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn a_proc_root_link_works_as_the_root() {
        // What runtimed passes for a running container: /proc/PID/root.
        let d = container();
        let root = format!("/proc/{}/root", std::process::id());
        let file = d.path().join("root/app/a.txt");
        let mut out = Vec::new();
        let st = archive_path(Path::new(&root), file.to_str().unwrap(), false, &mut out).unwrap();
        assert_eq!(st.name, "a.txt");
        assert_eq!(entries(&out)[0].2, "aaa");
    }

    #[test]
    fn exact_reader_pads_and_cuts() {
        let mut out = Vec::new();
        Exact::new(&b"abc"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact::new(&b"abcdef"[..], 2).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }
}
