//! Seeding a volume from the image: the first time a volume is mounted
//! (and the mount does not say `nocopy`), what the container's root
//! filesystem holds at the mount's target is copied into it, as Docker does.
//!
//! The target is resolved inside the root filesystem (a symlink there never
//! leads out of it); the copy walks descriptors and never follows a symlink
//! on either side. Files, directories, symlinks and FIFOs are copied with
//! their mode, owner, times and file capabilities; hard links become
//! separate copies; device nodes and sockets are skipped. Like Docker, a
//! volume that already holds something is left alone, and the volume's own
//! directory takes the owner and mode of the directory it covers.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};

use crate::dirfd::{self, Kind, Step};
use crate::error::{Error, Result};
use crate::inroot::{CleanPath, Root};
use crate::mounts::{MountKind, MountPoint};
use crate::volume::{self, VolumeStore};

const CAPABILITY: &CStr = c"security.capability";

impl VolumeStore {
    /// Seeds volume `name` from `rootfs` (the container's root filesystem,
    /// mounted) at `target`, unless it was seeded before. Returns whether
    /// content was copied. Nothing to copy (no such path in the image, or
    /// not a directory) leaves the volume unseeded; a volume that is not
    /// empty is marked seeded without copying. On a copy error the volume is
    /// emptied again, so a later start can retry.
    #[tracing::instrument(skip_all, fields(volume = %name, target = %target))]
    pub fn seed(&self, name: &str, rootfs: &Path, target: &str) -> Result<bool> {
        let _g = self.seed_lock.lock().unwrap_or_else(|p| p.into_inner());
        let v = self.get(name)?;
        if v.seeded {
            return Ok(false);
        }
        let what = || format!("copy {target} of the image into volume {name}");
        let root = Root::open(rootfs)?;
        let src = match root.resolve(&CleanPath::parse(target)?, true) {
            Ok(fd) => fd,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(nix::libc::ENOTDIR) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(Error::Internal(format!("{}: {e}", what()))),
        };
        let top = dirfd::stat(&src).map_err(|e| Error::Internal(format!("{}: {e}", what())))?;
        if dirfd::kind(&top) != Kind::Dir {
            return Ok(false);
        }
        let fail = |e: io::Error| Error::Internal(format!("{}: {e}", what()));
        let src = dirfd::reopen_dir(&src).map_err(fail)?;
        let dst = volume::open_dir(&v.mountpoint).map_err(fail)?;
        if !dirfd::list(&dst).map_err(fail)?.is_empty() {
            self.mark_seeded(name)?;
            return Ok(false);
        }
        let copied = copy_tree(&src, &dst).and_then(|()| {
            dirfd::set_owner(&dst, top.st_uid, top.st_gid)?;
            dirfd::set_mode(&dst, top.st_mode)?;
            dirfd::set_times(&dst, top.st_mtime, top.st_mtime_nsec)
        });
        if let Err(e) = copied {
            for n in dirfd::list(&dst).unwrap_or_default() {
                let _ = dirfd::remove_tree_at(&dst, &n);
            }
            return Err(fail(e));
        }
        self.mark_seeded(name)?;
        tracing::info!(volume = %name, target, "volume seeded from the image");
        Ok(true)
    }
}

/// Seeds every volume mount of a container that may be seeded (see
/// [`VolumeStore::seed`]); returns the names of the volumes that got content.
/// Call after the container's root filesystem is mounted at `rootfs` and
/// before the container starts.
pub fn seed_volumes(
    store: &VolumeStore,
    rootfs: &Path,
    points: &[MountPoint],
) -> Result<Vec<String>> {
    let mut seeded = Vec::new();
    for p in points {
        if p.kind == MountKind::Volume
            && !p.no_copy
            && store.seed(&p.name, rootfs, &p.destination)?
        {
            seeded.push(p.name.clone());
        }
    }
    Ok(seeded)
}

/// Copies everything below directory `src` into the empty directory `dst`.
pub(crate) fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let mut out: Vec<OwnedFd> = vec![dst.try_clone()?];
    dirfd::walk_tree(src, |step| match step {
        Step::Entry {
            dir,
            name,
            st,
            depth,
        } => {
            out.truncate(depth + 1);
            let to = out
                .get(depth)
                .ok_or_else(|| io::Error::other("copy lost its place"))?
                .as_fd();
            match dirfd::kind(st) {
                Kind::Dir => {
                    nix::sys::stat::mkdirat(to, name, Mode::from_bits_truncate(0o700))
                        .map_err(dirfd::err)?;
                    let d = dirfd::open_dir_at(to, name)?;
                    dirfd::set_owner(&d, st.st_uid, st.st_gid)?;
                    dirfd::set_mode(&d, st.st_mode)?;
                    out.push(d);
                    return Ok(true);
                }
                Kind::File => copy_file(dir, name, to)?,
                Kind::Symlink => {
                    let target = nix::fcntl::readlinkat(dir, name).map_err(dirfd::err)?;
                    nix::unistd::symlinkat(target.as_os_str(), to, name).map_err(dirfd::err)?;
                    finish_at(to, name, st)?;
                }
                Kind::Fifo => {
                    nix::unistd::mkfifoat(to, name, Mode::from_bits_truncate(0o600))
                        .map_err(dirfd::err)?;
                    set_mode_at(to, name, st.st_mode)?;
                    finish_at(to, name, st)?;
                }
                Kind::Char | Kind::Block | Kind::Socket => {
                    tracing::debug!(entry = ?name, "not copying a device node or socket");
                }
            }
            Ok(false)
        }
        Step::Leave { dir, name, depth } => {
            // Creating the children changed the directory's times.
            let st = dirfd::stat_at(dir, name)?;
            let to = out
                .get(depth)
                .ok_or_else(|| io::Error::other("copy lost its place"))?;
            dirfd::set_times_at(to, name, st.st_mtime, st.st_mtime_nsec)?;
            Ok(false)
        }
    })
}

/// Owner and times of a new non-regular entry, not following a symlink.
fn finish_at(dir: BorrowedFd<'_>, name: &OsStr, st: &FileStat) -> io::Result<()> {
    dirfd::set_owner_at(dir, name, st.st_uid, st.st_gid)?;
    dirfd::set_times_at(dir, name, st.st_mtime, st.st_mtime_nsec)
}

/// chmod of `name` in `dir` through an `O_PATH` handle, so a symlink swapped
/// in there is not followed.
pub(crate) fn set_mode_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let fd = dirfd::open_path_at(dir, name)?;
    if dirfd::kind(&dirfd::stat(&fd)?) == Kind::Symlink {
        return Ok(());
    }
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path.as_str(),
        Mode::from_bits_truncate(mode & 0o7777),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(dirfd::err)
}

fn copy_file(dir: BorrowedFd<'_>, name: &OsStr, to: BorrowedFd<'_>) -> io::Result<()> {
    let handle = dirfd::open_path_at(dir, name)?;
    let st = dirfd::stat(&handle)?;
    if dirfd::kind(&st) != Kind::File {
        return Ok(());
    }
    let mut input = File::from(dirfd::reopen(handle.as_fd(), OFlag::O_RDONLY)?);
    let out = nix::fcntl::openat(
        to,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(dirfd::err)?;
    let mut output = File::from(out);
    io::copy(&mut input, &mut output)?;
    // chown clears file capabilities and setuid bits: owner, then mode and
    // capabilities, then times.
    dirfd::set_owner(&output, st.st_uid, st.st_gid)?;
    dirfd::set_mode(&output, st.st_mode)?;
    if let Some(cap) = dirfd::get_xattr(&input, CAPABILITY)? {
        match dirfd::set_xattr(&output, CAPABILITY, &cap) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(Errno::ENOTSUP as i32) => {}
            Err(e) => return Err(e),
        }
    }
    dirfd::set_times(&output, st.st_mtime, st.st_mtime_nsec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// An image root with content at /data and a symlink trying to lead
    /// the seed outside the root.
    fn image() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("rootfs");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/file"), "hello").unwrap();
        std::fs::write(root.join("data/sub/deep"), "deep").unwrap();
        std::fs::set_permissions(
            root.join("data/file"),
            std::fs::Permissions::from_mode(0o4751),
        )
        .unwrap();
        symlink("/etc/shadow", root.join("data/abs")).unwrap();
        nix::unistd::mkfifo(&root.join("data/fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        std::fs::hard_link(root.join("data/file"), root.join("data/hard")).unwrap();
        std::fs::set_permissions(root.join("data"), std::fs::Permissions::from_mode(0o1770))
            .unwrap();
        std::fs::create_dir_all(d.path().join("hostdir")).unwrap();
        std::fs::write(d.path().join("hostdir/secret"), "host").unwrap();
        // /escape -> ../../hostdir: must resolve to <rootfs>/hostdir.
        symlink("../../hostdir", root.join("escape")).unwrap();
        std::fs::create_dir_all(root.join("hostdir")).unwrap();
        std::fs::write(root.join("hostdir/inside"), "inside").unwrap();
        if is_root() {
            nix::unistd::chown(
                &root.join("data/sub/deep"),
                Some(nix::unistd::Uid::from_raw(1234)),
                Some(nix::unistd::Gid::from_raw(5678)),
            )
            .unwrap();
            nix::unistd::chown(
                &root.join("data"),
                Some(nix::unistd::Uid::from_raw(42)),
                Some(nix::unistd::Gid::from_raw(43)),
            )
            .unwrap();
        }
        let ts = nix::sys::time::TimeSpec::new(1_000_000_000, 5);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &root.join("data/sub"),
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        d
    }

    #[test]
    fn seeds_content_once_with_metadata() {
        let img = image();
        let rootfs = img.path().join("rootfs");
        let s = VolumeStore::open(img.path().join("volumes")).unwrap();
        let (v, _) = s.create("data", BTreeMap::new()).unwrap();
        let points = vec![MountPoint {
            kind: MountKind::Volume,
            source: v.mountpoint.clone(),
            destination: "/data".into(),
            name: "data".into(),
            read_only: false,
            propagation: String::new(),
            relabel: String::new(),
            no_copy: false,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec![],
        }];
        assert_eq!(seed_volumes(&s, &rootfs, &points).unwrap(), vec!["data"]);
        let m = &v.mountpoint;
        assert_eq!(std::fs::read_to_string(m.join("file")).unwrap(), "hello");
        assert_eq!(std::fs::read_to_string(m.join("sub/deep")).unwrap(), "deep");
        assert_eq!(std::fs::read_to_string(m.join("hard")).unwrap(), "hello");
        assert_eq!(
            std::fs::read_link(m.join("abs")).unwrap(),
            Path::new("/etc/shadow")
        );
        let meta = |p: &str| std::fs::symlink_metadata(m.join(p)).unwrap();
        assert!(meta("fifo").file_type().is_fifo());
        assert_eq!(meta("fifo").mode() & 0o7777, 0o640);
        assert_eq!(meta("file").mode() & 0o7777, 0o4751);
        assert_eq!(meta("sub").mtime(), 1_000_000_000);
        assert_eq!(meta("sub").mtime_nsec(), 5);
        let top = std::fs::metadata(m).unwrap();
        assert_eq!(top.mode() & 0o7777, 0o1770);
        if is_root() {
            assert_eq!(
                (meta("sub/deep").uid(), meta("sub/deep").gid()),
                (1234, 5678)
            );
            assert_eq!((top.uid(), top.gid()), (42, 43));
        }
        assert!(s.get("data").unwrap().seeded);

        // Once: new image content is not copied again, even into an
        // emptied volume.
        std::fs::write(rootfs.join("data/new"), "x").unwrap();
        std::fs::remove_dir_all(m).unwrap();
        std::fs::create_dir(m).unwrap();
        assert!(seed_volumes(&s, &rootfs, &points).unwrap().is_empty());
        assert!(!m.join("new").exists());
    }

    #[test]
    fn seeding_never_leaves_the_root_and_skips_what_is_not_there() {
        let img = image();
        let rootfs = img.path().join("rootfs");
        let s = VolumeStore::open(img.path().join("volumes")).unwrap();
        s.create("esc", BTreeMap::new()).unwrap();
        assert!(s.seed("esc", &rootfs, "/escape").unwrap());
        let m = s.data_dir("esc");
        assert!(m.join("inside").exists());
        assert!(!m.join("secret").exists());

        s.create("none", BTreeMap::new()).unwrap();
        assert!(!s.seed("none", &rootfs, "/missing").unwrap());
        assert!(!s.seed("none", &rootfs, "/data/file").unwrap());
        assert!(!s.get("none").unwrap().seeded);

        // A volume with content is not overwritten, but counts as seeded.
        s.create("full", BTreeMap::new()).unwrap();
        std::fs::write(s.data_dir("full").join("mine"), "mine").unwrap();
        assert!(!s.seed("full", &rootfs, "/data").unwrap());
        assert!(!s.data_dir("full").join("file").exists());
        assert!(s.get("full").unwrap().seeded);
    }

    #[test]
    fn no_copy_mounts_are_not_seeded() {
        let img = image();
        let rootfs = img.path().join("rootfs");
        let s = VolumeStore::open(img.path().join("volumes")).unwrap();
        let (v, _) = s.create("nc", BTreeMap::new()).unwrap();
        let p = MountPoint {
            kind: MountKind::Volume,
            source: v.mountpoint.clone(),
            destination: "/data".into(),
            name: "nc".into(),
            read_only: false,
            propagation: String::new(),
            relabel: String::new(),
            no_copy: true,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec![],
        };
        assert!(seed_volumes(&s, &rootfs, &[p]).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(&v.mountpoint).unwrap().count(), 0);
        assert!(!s.get("nc").unwrap().seeded);
    }
}
