//! `docker diff`: a container's changes, read from its upper dir against
//! the layers below it.
//!
//! - `A`: a path the layers below do not show;
//! - `C`: a path they show that the upper dir replaced or changed: a file
//!   copied up (content or metadata), a directory whose mode, owner or mtime
//!   differ, an opaque directory (it hides what was below);
//! - `D`: a whiteout over a path the layers below show, and every entry of
//!   the layers below that an opaque directory hides.
//!
//! Every directory above a change is listed as `C` (the root excepted), as
//! Docker's change walk does, and the list is in the order Docker walks
//! the tree: parents first, names sorted bytewise. A directory only copied
//! up because something below it changed keeps its metadata (overlayfs
//! preserves it), so it shows as `C` as a parent and not in its own right.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::FileStat;
use rdock_proto::image::v1::RootfsChange;

use crate::error::{Error, Result};
use crate::images::ImageStore;
use crate::overlay::{self, Kind, Merged};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Changed,
    Deleted,
}

impl Change {
    pub fn letter(self) -> &'static str {
        match self {
            Change::Added => "A",
            Change::Changed => "C",
            Change::Deleted => "D",
        }
    }
}

/// Changes keyed by path components: the map's order is the walk order.
type Changes = BTreeMap<Vec<OsString>, Change>;

/// The changes of `upper` over `lowers` (topmost first), as
/// (kind, absolute path) in `docker diff` order.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<(Change, String)>> {
    let old = Merged::root(lowers)?;
    let root = overlay::open_root(upper)?;
    let mut out = Changes::new();
    walk(root.as_fd(), false, Some(&old), &mut Vec::new(), &mut out)?;
    Ok(out
        .into_iter()
        .map(|(k, c)| {
            let mut p = String::from("/");
            p.push_str(&String::from_utf8_lossy(&overlay::join(&k)));
            (c, p)
        })
        .collect())
}

/// Whether a directory's own metadata differs: mode, owner, mtime (Docker
/// compares whole seconds when either side has no nanoseconds; it leaves
/// sizes of directories out, they say nothing about content).
fn dir_meta_changed(a: &FileStat, b: &FileStat) -> bool {
    let same_time = a.st_mtime == b.st_mtime
        && (a.st_mtime_nsec == b.st_mtime_nsec || a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0);
    a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid || !same_time
}

/// Walks one directory of the upper dir; returns whether anything below it
/// was recorded, so that the caller lists the directory as `C` when it has
/// no change of its own (every directory above a change is shown). Each
/// directory is settled once, on the way back up, rather than every prefix
/// of every changed path afterwards: the container controls the tree, and
/// many files deep down must not cost depth² copies.
fn walk(
    upper: BorrowedFd<'_>,
    opaque: bool,
    old: Option<&Merged>,
    path: &mut Vec<OsString>,
    out: &mut Changes,
) -> io::Result<bool> {
    if path.len() > overlay::MAX_DEPTH {
        return Err(overlay::too_deep(path));
    }
    let names = match overlay::read_names(upper) {
        Ok(n) => n,
        Err(e) if overlay::vanished(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut found = false;
    let old_entries = match old {
        Some(m) => m.entries()?,
        None => BTreeMap::new(),
    };
    if opaque {
        for name in old_entries.keys() {
            if names
                .binary_search_by(|n| n.as_bytes().cmp(name.as_bytes()))
                .is_err()
            {
                let mut p = path.clone();
                p.push(name.clone());
                out.insert(p, Change::Deleted);
                found = true;
            }
        }
    }
    for name in names {
        let Some(st) = overlay::stat_at(upper, &name)? else {
            continue;
        };
        let before = old_entries.get(&name);
        path.push(name.clone());
        if overlay::is_whiteout(&st) {
            if before.is_some() {
                out.insert(path.clone(), Change::Deleted);
                found = true;
            }
        } else if overlay::kind(&st) == Kind::Dir {
            match overlay::open_dir_at(upper, &name) {
                Ok(fd) => {
                    let shown = format!("/{}", String::from_utf8_lossy(&overlay::join(path)));
                    overlay::check_not_redirected(fd.as_fd(), &shown)?;
                    let child_opaque = overlay::is_opaque(fd.as_fd())?;
                    let change = match before {
                        None => Some(Change::Added),
                        Some(b) if overlay::kind(&b.stat) != Kind::Dir => Some(Change::Changed),
                        Some(b) if child_opaque || dir_meta_changed(&st, &b.stat) => {
                            Some(Change::Changed)
                        }
                        Some(_) => None,
                    };
                    let below = match (before, old) {
                        (Some(b), Some(m)) if overlay::kind(&b.stat) == Kind::Dir => {
                            m.child(&name)?
                        }
                        _ => None,
                    };
                    let changed_below = walk(fd.as_fd(), child_opaque, below.as_ref(), path, out)?;
                    // A directory only copied up for what is below it is
                    // shown as a parent: `C`.
                    let change = change.or(changed_below.then_some(Change::Changed));
                    if let Some(c) = change {
                        out.insert(path.clone(), c);
                        found = true;
                    }
                }
                Err(e) if overlay::vanished(&e) => {}
                Err(e) => return Err(e),
            }
        } else {
            let c = if before.is_some() {
                Change::Changed
            } else {
                Change::Added
            };
            out.insert(path.clone(), c);
            found = true;
        }
        path.pop();
    }
    Ok(found)
}

impl ImageStore {
    /// A container's changes against its image, whether it runs or not.
    #[tracing::instrument(skip_all, fields(container = %container))]
    pub async fn diff_rootfs(self: &Arc<Self>, container: &str) -> Result<Vec<RootfsChange>> {
        // The container's rootfs record keeps its image's layers from
        // garbage collection; its lock keeps `remove_rootfs` from deleting
        // the upper dir while it is read.
        let lock = self.rootfs_lock(container);
        let _shared = lock.rw.read().await;
        let layers = self.rootfs_layers(container)?;
        let what = format!("diff container {container}");
        let found = tokio::task::spawn_blocking(move || changes(&layers.upper, &layers.lowers))
            .await
            .map_err(|e| Error::Store(format!("{what}: {e}")))?
            .map_err(crate::error::io(what))?;
        Ok(found
            .into_iter()
            .map(|(c, path)| RootfsChange {
                kind: c.letter().to_string(),
                path,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::tests::{set_opaque, whiteout};
    use std::os::unix::fs::PermissionsExt;

    fn show(v: &[(Change, String)]) -> Vec<String> {
        v.iter()
            .map(|(c, p)| format!("{} {p}", c.letter()))
            .collect()
    }

    /// Copies up a lower dir the way overlayfs does: same mode and times.
    fn copy_up_dir(lower: &Path, upper: &Path) {
        std::fs::create_dir_all(upper).unwrap();
        let m = std::fs::metadata(lower).unwrap();
        std::fs::set_permissions(upper, m.permissions()).unwrap();
        let t = nix::sys::time::TimeSpec::new(
            std::os::unix::fs::MetadataExt::mtime(&m),
            std::os::unix::fs::MetadataExt::mtime_nsec(&m),
        );
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            upper,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn classifies_like_docker_diff() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: whiteouts and trusted xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, up) = (
            t.path().join("l1"),
            t.path().join("l2"),
            t.path().join("up"),
        );
        // Bottom layer: /etc/{passwd,group}, /var/{cache/a,log/x}, /opt/o, /deep/a/b/f.
        for d in ["etc", "var/cache", "var/log", "opt", "deep/a/b", "usr"] {
            std::fs::create_dir_all(l1.join(d)).unwrap();
        }
        for f in [
            "etc/passwd",
            "etc/group",
            "var/cache/a",
            "var/log/x",
            "opt/o",
            "deep/a/b/f",
        ] {
            std::fs::write(l1.join(f), b"1").unwrap();
        }
        // A layer above deletes /etc/group.
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        copy_up_dir(&l1.join("etc"), &l2.join("etc"));
        whiteout(&l2.join("etc/group"));
        std::fs::write(l2.join("top"), b"t").unwrap();

        // The container: modifies /etc/passwd, adds /etc/new, deletes
        // /opt/o and /etc/group (already gone below: not reported),
        // replaces /var/cache with an opaque dir holding b, adds
        // /deep/a/b/g (parents /deep and /deep/a only copied up), adds
        // /newdir/x, chmods /usr.
        // Deepest first: making a child moves its parent's mtime.
        for d in ["deep/a/b", "deep/a", "deep", "var", "opt", "etc"] {
            copy_up_dir(&l1.join(d), &up.join(d));
        }
        std::fs::write(up.join("etc/passwd"), b"2").unwrap();
        std::fs::write(up.join("etc/new"), b"2").unwrap();
        whiteout(&up.join("etc/group"));
        whiteout(&up.join("opt/o"));
        std::fs::create_dir_all(up.join("var/cache")).unwrap();
        set_opaque(&up.join("var/cache"));
        std::fs::write(up.join("var/cache/b"), b"2").unwrap();
        std::fs::write(up.join("deep/a/b/g"), b"2").unwrap();
        std::fs::create_dir_all(up.join("newdir")).unwrap();
        std::fs::write(up.join("newdir/x"), b"2").unwrap();
        copy_up_dir(&l1.join("usr"), &up.join("usr"));
        std::fs::set_permissions(up.join("usr"), std::fs::Permissions::from_mode(0o700)).unwrap();
        // Timestamps of dirs that got new entries move, as in a container.
        for d in ["etc", "opt", "deep/a/b", "var"] {
            let now = nix::sys::time::TimeSpec::new(2_000_000_000, 0);
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &up.join(d),
                &now,
                &now,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }

        let got = changes(&up, &[l2.clone(), l1.clone()]).unwrap();
        assert_eq!(
            show(&got),
            [
                "C /deep",
                "C /deep/a",
                "C /deep/a/b",
                "A /deep/a/b/g",
                "C /etc",
                "A /etc/new",
                "C /etc/passwd",
                "A /newdir",
                "A /newdir/x",
                "C /opt",
                "D /opt/o",
                "C /usr",
                "C /var",
                "C /var/cache",
                "D /var/cache/a",
                "A /var/cache/b",
            ]
        );

        // Nothing changed: nothing to show.
        let empty = t.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(changes(&empty, &[l2, l1]).unwrap().is_empty());
    }

    #[test]
    fn every_parent_of_a_deep_change_is_listed_once() {
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        let depth = 100;
        let chain: Vec<String> = (0..depth).map(|i| format!("d{i:03}")).collect();
        let rel = |n: usize| chain[..n].join("/");
        std::fs::create_dir_all(low.join(rel(depth))).unwrap();
        std::fs::write(low.join(rel(depth)).join("old"), b"1").unwrap();
        // Copied up bottom first, as overlayfs leaves them: same metadata.
        for n in (1..=depth).rev() {
            copy_up_dir(&low.join(rel(n)), &up.join(rel(n)));
        }
        // Changes at the bottom, halfway, and a new subtree halfway.
        std::fs::write(up.join(rel(depth)).join("new"), b"2").unwrap();
        std::fs::write(up.join(rel(depth)).join("old"), b"2").unwrap();
        std::fs::write(up.join(rel(depth / 2)).join("mid"), b"2").unwrap();
        std::fs::create_dir_all(up.join(rel(depth / 2)).join("x/y")).unwrap();
        for n in (1..=depth).rev() {
            let m = std::fs::metadata(low.join(rel(n))).unwrap();
            let t = nix::sys::time::TimeSpec::new(
                std::os::unix::fs::MetadataExt::mtime(&m),
                std::os::unix::fs::MetadataExt::mtime_nsec(&m),
            );
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &up.join(rel(n)),
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }

        let got = show(&changes(&up, std::slice::from_ref(&low)).unwrap());
        let mut want: Vec<String> = (1..=depth).map(|n| format!("C /{}", rel(n))).collect();
        let half = rel(depth / 2);
        want.extend([
            format!("A /{half}/mid"),
            format!("A /{half}/x"),
            format!("A /{half}/x/y"),
            format!("A /{}/new", rel(depth)),
            format!("C /{}/old", rel(depth)),
        ]);
        // In walk order: by path, each parent right before its entries.
        want.sort_by(|a, b| a[2..].cmp(&b[2..]));
        assert_eq!(got, want);
    }

    #[test]
    fn endless_nesting_is_an_error_not_a_crash() {
        let t = tempfile::tempdir().unwrap();
        let (up, low) = (t.path().join("up"), t.path().join("low"));
        std::fs::create_dir_all(&low).unwrap();
        let mut deep = up.clone();
        for _ in 0..=overlay::MAX_DEPTH + 1 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        // On a thread with the stack tokio gives blocking tasks.
        let h = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let e = changes(&up, std::slice::from_ref(&low))
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("nested deeper than 256 levels"), "{e}");
                let mut out = crate::archive::TarOut::new(std::io::sink());
                let e = crate::archive::write_layer(&up, &mut out).unwrap_err();
                assert!(e.to_string().contains("nested deeper"), "{e}");
                let mut out = crate::archive::TarOut::new(std::io::sink());
                let e = crate::archive::write_merged(&[up, low], &mut out).unwrap_err();
                assert!(e.to_string().contains("nested deeper"), "{e}");
            })
            .unwrap();
        h.join().unwrap();
    }
}
