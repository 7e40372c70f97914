//! Kernel mounts the runtime daemon makes: a container's overlay root
//! filesystem and its network namespace bind mount.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

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
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = target.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
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
