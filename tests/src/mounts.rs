//! Mounts a test left behind under its root directory.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Mount points at or below `root` in this process's mount namespace,
/// deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = rdock_common::mountinfo::mount_points()
        .into_iter()
        .filter(|m| m.starts_with(root))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    found
}

/// Detaches every mount at or below `root`; returns the ones it found.
pub fn unmount_all_under(root: &Path) -> Vec<PathBuf> {
    let found = mounts_under(root);
    for m in &found {
        let _ = umount2(m, MntFlags::MNT_DETACH);
    }
    found
}
