//! Resolving a path inside a container's root directory as if that
//! directory were `/`: symlinks (absolute or relative) resolve against it and
//! `..` never climbs above it, so no path reaches the host.
//!
//! Two resolvers give the same answers. [`Root::resolve`] uses `openat2(2)`
//! with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` and falls back to the
//! component walk where the kernel lacks it (or a seccomp filter refuses
//! it). The walk ([`Root::walk`]) opens one component at a time with
//! `O_PATH | O_NOFOLLOW` relative to the directory reached so far, expands
//! symlinks itself and handles `..` by going back to a directory it holds
//! open, never by asking the kernel for `..`; it also reports the logical
//! path it reached, can create missing directories, and can refuse to pass
//! through chosen symlinks. Everything works on descriptors, so a running
//! container that swaps a directory for a symlink mid-way cannot redirect
//! us outside its root.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::dirfd::{self, FileId, Kind};
use crate::error::{Error, Result};

/// Most symlinks one resolution may expand (the kernel's limit).
const MAX_SYMLINKS: u32 = 40;

/// A path given by a user, cleaned lexically the way Docker cleans `cp`
/// paths (`filepath.Join("/", path)`): `.` and empty components dropped,
/// `..` removes the previous component and stops at the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanPath {
    pub components: Vec<OsString>,
    /// The path ended in `/` or `/.`: it must be a directory.
    pub dir_required: bool,
    /// The path ended in `/.`: a `cp` copies the directory's content.
    pub trailing_dot: bool,
}

impl CleanPath {
    pub fn parse(path: &str) -> Result<CleanPath> {
        if path.contains('\0') {
            return Err(Error::InvalidArgument(format!(
                "invalid path {path:?}: contains a NUL byte"
            )));
        }
        let mut components: Vec<OsString> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    components.pop();
                }
                c => components.push(c.into()),
            }
        }
        let trailing_dot = path == "." || path.ends_with("/.");
        Ok(CleanPath {
            components,
            dir_required: trailing_dot || path.ends_with('/'),
            trailing_dot,
        })
    }

    /// Docker's base name for the path: `.` for a trailing `/.`, `/` for
    /// the root, else the last component.
    pub fn base_name(&self) -> String {
        if self.trailing_dot {
            return ".".into();
        }
        match self.components.last() {
            Some(c) => c.to_string_lossy().into_owned(),
            None => "/".into(),
        }
    }

    /// The path's components joined, relative (for `openat2`).
    pub fn relative(&self) -> OsString {
        join(&self.components)
    }
}

fn join(components: &[OsString]) -> OsString {
    let mut out = OsString::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            out.push("/");
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push(".");
    }
    out
}

/// What a walk reached.
#[derive(Debug)]
pub(crate) struct Walked {
    /// `O_PATH` handle on the file reached.
    pub fd: OwnedFd,
    /// The path of that file as seen from the root.
    pub logical: Vec<OsString>,
}

impl Walked {
    pub fn logical_path(&self) -> String {
        let mut s = String::from("/");
        s.push_str(&join(&self.logical).to_string_lossy());
        if self.logical.is_empty() {
            s.truncate(1);
        }
        s
    }
}

/// Options of [`Root::walk`].
#[derive(Default)]
pub(crate) struct WalkOptions<'a> {
    /// Follow a symlink in the last component.
    pub follow_last: bool,
    /// Create missing directories (0755, owned by the caller) along the way,
    /// the last component included. Their logical paths are appended to the
    /// vector.
    pub create_dirs: Option<&'a mut Vec<Vec<OsString>>>,
    /// Refuse to pass through these symlinks (by file identity).
    pub deny_links: Option<&'a HashSet<FileId>>,
    /// When a component is missing, finish the logical path lexically
    /// instead of failing (the handle is then the last directory reached).
    pub lexical_tail: bool,
}

/// Which resolver [`Root::resolve`] uses; tests pin each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// `openat2`, falling back to the walk where unavailable.
    Auto,
    /// The component walk only.
    #[cfg(test)]
    Walk,
}

/// An open container root directory.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    resolver: Resolver,
}

impl Root {
    /// Opens `path` (which may be a `/proc/PID/root` link: it is followed)
    /// as the root of resolution.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => Error::Internal(format!(
                "container root {} is not a directory",
                path.display()
            )),
            e => Error::Internal(format!(
                "open container root {}: {}",
                path.display(),
                io::Error::from(e)
            )),
        })?;
        Ok(Root {
            fd,
            resolver: Resolver::Auto,
        })
    }

    #[cfg(test)]
    pub fn with_resolver(mut self, resolver: Resolver) -> Root {
        self.resolver = resolver;
        self
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An `O_PATH` handle on `path` inside the root; a symlink in the last
    /// component is followed only if `follow_last`.
    pub fn resolve(&self, path: &CleanPath, follow_last: bool) -> io::Result<OwnedFd> {
        if self.resolver == Resolver::Auto {
            let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
            if !follow_last {
                flags |= OFlag::O_NOFOLLOW;
            }
            if path.dir_required {
                flags |= OFlag::O_DIRECTORY;
            }
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            let rel = path.relative();
            for _ in 0..8 {
                match nix::fcntl::openat2(&self.fd, rel.as_os_str(), how) {
                    Ok(fd) => return Ok(fd),
                    // A rename raced with the lookup: try again (the walk
                    // below answers if it keeps racing).
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) | Err(Errno::EXDEV) => continue,
                    // No openat2 here (old kernel, seccomp): walk instead.
                    Err(Errno::ENOSYS) | Err(Errno::EPERM) | Err(Errno::E2BIG) => break,
                    Err(e) => return Err(dirfd::err(e)),
                }
            }
        }
        let walked = self.walk(
            &path.components,
            WalkOptions {
                follow_last,
                ..Default::default()
            },
        )?;
        if path.dir_required && dirfd::kind(&dirfd::stat(&walked.fd)?) != Kind::Dir {
            return Err(dirfd::err(Errno::ENOTDIR));
        }
        Ok(walked.fd)
    }

    /// Resolves `components` one at a time (see the module docs).
    pub fn walk(&self, components: &[OsString], mut opts: WalkOptions<'_>) -> io::Result<Walked> {
        // Directories below the root that the walk is in, with their names.
        let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
        let mut pending: Vec<OsString> = components.iter().rev().cloned().collect();
        let mut links = 0u32;
        while let Some(c) = pending.pop() {
            let b = c.as_bytes();
            if b.is_empty() || b == b"." {
                continue;
            }
            if b == b".." {
                stack.pop();
                continue;
            }
            if b.contains(&b'/') {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            let last = pending.iter().all(|p| p.is_empty() || p == ".");
            let cur = stack.last().map(|(fd, _)| fd.as_fd()).unwrap_or(self.fd());
            let fd = match dirfd::open_path_at(cur, &c) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound && opts.create_dirs.is_some() => {
                    match nix::sys::stat::mkdirat(
                        cur,
                        c.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) => {
                            // Docker's mode for directories it creates,
                            // whatever the process umask.
                            dirfd::set_mode(dirfd::open_dir_at(cur, &c)?, 0o755)?;
                            if let Some(created) = opts.create_dirs.as_deref_mut() {
                                let mut logical: Vec<OsString> =
                                    stack.iter().map(|(_, n)| n.clone()).collect();
                                logical.push(c.clone());
                                created.push(logical);
                            }
                        }
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(dirfd::err(e)),
                    }
                    dirfd::open_path_at(cur, &c)?
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && opts.lexical_tail => {
                    let fd = cur.try_clone_to_owned()?;
                    let mut logical: Vec<OsString> = stack.into_iter().map(|(_, n)| n).collect();
                    logical.push(c);
                    while let Some(p) = pending.pop() {
                        match p.as_bytes() {
                            b"" | b"." => {}
                            b".." => {
                                logical.pop();
                            }
                            _ => logical.push(p),
                        }
                    }
                    return Ok(Walked { fd, logical });
                }
                Err(e) => return Err(e),
            };
            let st = dirfd::stat(&fd)?;
            let kind = dirfd::kind(&st);
            if kind == Kind::Symlink && (!last || opts.follow_last || opts.create_dirs.is_some()) {
                if opts
                    .deny_links
                    .is_some_and(|deny| deny.contains(&dirfd::id(&st)))
                {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "path goes through a symlink the same archive created",
                    ));
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(dirfd::err(Errno::ELOOP));
                }
                let target = nix::fcntl::readlinkat(cur, c.as_os_str()).map_err(dirfd::err)?;
                let target = target.as_bytes();
                if target.is_empty() {
                    return Err(dirfd::err(Errno::ENOENT));
                }
                if target.starts_with(b"/") {
                    stack.clear();
                }
                for part in target.split(|b| *b == b'/').rev() {
                    pending.push(OsStr::from_bytes(part).to_os_string());
                }
                continue;
            }
            if last {
                if opts.create_dirs.is_some() && kind != Kind::Dir {
                    return Err(dirfd::err(Errno::ENOTDIR));
                }
                let mut logical: Vec<OsString> = stack.into_iter().map(|(_, n)| n).collect();
                logical.push(c);
                return Ok(Walked { fd, logical });
            }
            if kind != Kind::Dir {
                return Err(dirfd::err(Errno::ENOTDIR));
            }
            stack.push((fd, c));
        }
        // Nothing named a file: the walk ends at a directory.
        let fd = match stack.last() {
            Some((fd, _)) => fd.try_clone()?,
            None => self.fd.try_clone()?,
        };
        Ok(Walked {
            fd,
            logical: stack.into_iter().map(|(_, n)| n).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn clean(p: &str) -> CleanPath {
        CleanPath::parse(p).unwrap()
    }

    #[test]
    fn paths_are_cleaned_like_docker() {
        assert_eq!(clean("/../../etc/./passwd").relative(), "etc/passwd");
        assert_eq!(clean("etc/").base_name(), "etc");
        assert!(clean("etc/").dir_required);
        assert_eq!(clean("/etc/.").base_name(), ".");
        assert!(clean("/etc/.").trailing_dot);
        assert_eq!(clean("/").base_name(), "/");
        assert_eq!(clean("/a/b/..").components, vec![OsString::from("a")]);
        assert!(CleanPath::parse("/a\0b").is_err());
    }

    /// A root with symlinks of every dangerous kind, and a file outside it
    /// that must never be reached.
    fn hostile_tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(d.path().join("secret"), "host").unwrap();
        std::fs::write(root.join("etc/passwd"), "container").unwrap();
        std::fs::write(root.join("secret"), "inside").unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("data/up")).unwrap();
        symlink("../secret", root.join("data/rel")).unwrap();
        symlink("/../../secret", root.join("data/absup")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        (d, root)
    }

    fn read(root: &Root, p: &str) -> io::Result<String> {
        let fd = root.resolve(&clean(p), true)?;
        let file = dirfd::reopen(fd.as_fd(), OFlag::O_RDONLY)?;
        Ok(std::io::read_to_string(std::fs::File::from(file)).unwrap())
    }

    #[test]
    fn both_resolvers_stay_inside_the_root() {
        let (_d, dir) = hostile_tree();
        for resolver in [Resolver::Auto, Resolver::Walk] {
            let root = Root::open(&dir).unwrap().with_resolver(resolver);
            assert_eq!(read(&root, "/abs/passwd").unwrap(), "container");
            assert_eq!(read(&root, "/data/up/secret").unwrap(), "inside");
            assert_eq!(read(&root, "/data/rel").unwrap(), "inside");
            assert_eq!(read(&root, "/data/absup").unwrap(), "inside");
            assert_eq!(read(&root, "/../../../secret").unwrap(), "inside");
            let e = root.resolve(&clean("/loop"), true).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(nix::libc::ELOOP), "{resolver:?}");
            let e = root.resolve(&clean("/etc/passwd/"), true).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTDIR), "{resolver:?}");
            let e = root.resolve(&clean("/nope"), true).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            // Not following the last component gives the link itself.
            let fd = root.resolve(&clean("/data/rel"), false).unwrap();
            assert_eq!(dirfd::kind(&dirfd::stat(&fd).unwrap()), Kind::Symlink);
        }
    }

    #[test]
    fn walk_reports_the_logical_path() {
        let (_d, dir) = hostile_tree();
        let root = Root::open(&dir).unwrap().with_resolver(Resolver::Walk);
        let opts = || WalkOptions {
            follow_last: true,
            ..Default::default()
        };
        let w = root
            .walk(&clean("/data/up/etc").components, opts())
            .unwrap();
        assert_eq!(w.logical_path(), "/etc");
        let w = root.walk(&clean("/abs/passwd").components, opts()).unwrap();
        assert_eq!(w.logical_path(), "/etc/passwd");
        let w = root.walk(&[], opts()).unwrap();
        assert_eq!(w.logical_path(), "/");
    }

    #[test]
    fn walk_creates_dirs_and_refuses_denied_links() {
        let (_d, dir) = hostile_tree();
        let root = Root::open(&dir).unwrap().with_resolver(Resolver::Walk);
        let mut created = Vec::new();
        root.walk(
            &clean("/abs/new/deeper").components,
            WalkOptions {
                follow_last: true,
                create_dirs: Some(&mut created),
                deny_links: None,
                lexical_tail: false,
            },
        )
        .unwrap();
        assert!(dir.join("etc/new/deeper").is_dir());
        assert_eq!(created.len(), 2);
        let st = std::fs::symlink_metadata(dir.join("abs")).unwrap();
        use std::os::unix::fs::MetadataExt;
        let deny: HashSet<FileId> = [(st.dev(), st.ino())].into();
        let e = root
            .walk(
                &clean("/abs/x").components,
                WalkOptions {
                    follow_last: true,
                    create_dirs: None,
                    deny_links: Some(&deny),
                    lexical_tail: false,
                },
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }
}
