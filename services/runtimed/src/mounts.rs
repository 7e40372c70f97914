//! Kernel mounts the runtime daemon makes: a container's overlay root
//! filesystem, its network namespace bind mount, and the mounts of a
//! stopped container's files for `cp`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// Mounts an overlay of `lowerdirs` (topmost first) with `upper`/`work` at
/// `target`.
pub fn mount_overlay(lowerdirs: &[String], upper: &str, work: &str, target: &Path) -> Result<()> {
    for d in lowerdirs.iter().map(String::as_str).chain([upper, work]) {
        if d.contains([',', ':']) || !d.starts_with('/') {
            return Err(Error::Internal(format!("unusable overlay dir {d:?}")));
        }
    }
    let data = format!(
        "lowerdir={},upperdir={upper},workdir={work}",
        lowerdirs.join(":")
    );
    if data.len() >= 4096 {
        return Err(Error::Internal(format!(
            "too many layers to mount ({}): overlay options exceed a page",
            lowerdirs.len()
        )));
    }
    std::fs::create_dir_all(target)
        .map_err(crate::error::io(format!("create {}", target.display())))?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        Error::Internal(format!(
            "mount root filesystem at {}: {e}",
            target.display()
        ))
    })
}

/// Unmounts `target` if it is mounted; a missing mount is fine.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH)
            .map_err(|e| Error::Internal(format!("unmount {}: {e}", target.display()))),
        Err(e) => Err(Error::Internal(format!(
            "unmount {}: {e}",
            target.display()
        ))),
    }
}

/// Whether `target` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mounted(target: &Path) -> bool {
    rdock_common::mountinfo::mount_points()
        .iter()
        .any(|m| m == target)
}

/// Creates a new network namespace and bind-mounts it at `path`.
pub fn create_netns(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(crate::error::io(format!("create {}", dir.display())))?;
    }
    std::fs::File::create(path).map_err(crate::error::io(format!("create {}", path.display())))?;
    let res = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::Internal(format!("new network namespace: {e}")))?;
            let own = std::fs::File::open("/proc/thread-self/ns/net")
                .map_err(crate::error::io("open the new network namespace"))?;
            let src = format!("/proc/self/fd/{}", own.as_raw_fd());
            mount(
                Some(src.as_str()),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                Error::Internal(format!("bind network namespace at {}: {e}", path.display()))
            })
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Internal("network namespace thread panicked".into())))
    });
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unmounts and removes a network namespace made by [`create_netns`].
pub fn remove_netns(path: &Path) -> Result<()> {
    unmount(path)?;
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Internal(format!("remove {}: {e}", path.display()))),
    }
}

/// Detaches the mount at `target` and everything mounted below it; a
/// missing mount is fine.
pub fn unmount_tree(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::Internal(format!(
            "unmount {}: {e}",
            target.display()
        ))),
    }
}

/// Makes the mount at `target` private, so what is mounted below it is
/// seen nowhere else.
pub fn make_private(target: &Path) -> Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Error::Internal(format!("make {} private: {e}", target.display())))
}

/// The magic link through which the kernel reaches what `fd` is open on.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Makes the mount on top of what `fd` refers to read-only.
fn remount_read_only(fd: &OwnedFd, what: &Path) -> Result<()> {
    mount(
        None::<&str>,
        fd_path(fd).as_str(),
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| Error::Internal(format!("make {} read-only: {e}", what.display())))
}

/// Makes the mount at `target` read-only.
pub fn make_read_only(target: &Path) -> Result<()> {
    let fd = nix::fcntl::open(
        target,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Internal(format!("open {}: {e}", target.display())))?;
    remount_read_only(&fd, target)
}

/// `dest` (absolute, in the container) resolved inside `root` as the
/// container would see it: symlinks there never lead out of `root`.
fn open_in_root(root: &OwnedFd, dest: &str) -> std::result::Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = dest.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    loop {
        match nix::fcntl::openat2(root, rel, how) {
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Bind-mounts host path `source` at `dest` (absolute, in the container)
/// of the root directory `root`, recursively, read-only if asked. `dest` is
/// resolved inside `root` (see [`open_in_root`]) and mounted on through
/// its descriptor, so a symlink swapped in cannot redirect the mount.
/// Nothing is created: `Ok(false)` when `dest` or `source` does not exist,
/// or one is a directory and the other not.
pub fn bind_inside(root: &Path, source: &Path, dest: &str, read_only: bool) -> Result<bool> {
    if dest.trim_start_matches('/').is_empty() {
        return Ok(false);
    }
    let what = || format!("mount {} at {dest}", source.display());
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Internal(format!("open {}: {e}", root.display())))?;
    let target = match open_in_root(&root_fd, dest) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(false),
        Err(e) => return Err(Error::Internal(format!("{}: {e}", what()))),
    };
    let src = match nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(false),
        Err(e) => return Err(Error::Internal(format!("{}: {e}", what()))),
    };
    let is_dir = |fd: &OwnedFd| {
        nix::sys::stat::fstat(fd)
            .map(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
            .map_err(|e| Error::Internal(format!("{}: {e}", what())))
    };
    if is_dir(&target)? != is_dir(&src)? {
        return Ok(false);
    }
    mount(
        Some(fd_path(&src).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::Internal(format!("{}: {e}", what())))?;
    if read_only {
        // The new mount sits on top of `target`: reach it by the path.
        let top = open_in_root(&root_fd, dest)
            .map_err(|e| Error::Internal(format!("{}: {e}", what())))?;
        remount_read_only(&top, Path::new(dest))?;
    }
    Ok(true)
}
