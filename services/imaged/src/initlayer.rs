//! A container's init layer: the mount points the runtime daemon puts in
//! every container (`/proc`, `/sys`, `/dev`, and the `/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf` it binds over) that the image lacks,
//! made in a read-only layer of their own between the image and the
//! container's upper dir. Without it the OCI runtime would create them in
//! the upper dir, and every container would show them in `diff` and bake
//! them into `commit`; Docker keeps them out the same way (its `-init`
//! layer).

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{io, Error, Result};
use crate::unpack::lookup;

/// (path, is a directory).
const MOUNT_POINTS: [(&str, bool); 6] = [
    ("dev", true),
    ("etc/hostname", false),
    ("etc/hosts", false),
    ("etc/resolv.conf", false),
    ("proc", true),
    ("sys", true),
];

/// Builds the init layer for an image whose layers are `image` (topmost
/// first) at `dest`, atomically: it appears whole or not at all.
pub fn create(dest: &Path, image: &[PathBuf]) -> Result<()> {
    let parent = dest
        .parent()
        .ok_or_else(|| Error::Store(format!("init layer {} has no parent", dest.display())))?;
    let tmp = parent.join(format!("init.tmp-{:016x}", rand::random::<u64>()));
    let res = build(&tmp, image).and_then(|()| {
        std::fs::rename(&tmp, dest).or_else(|e| {
            if dest.is_dir() {
                Ok(()) // made by a concurrent prepare
            } else {
                Err(Error::Io {
                    context: format!("install init layer {}", dest.display()),
                    source: e,
                })
            }
        })
    });
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    res
}

fn build(root: &Path, image: &[PathBuf]) -> Result<()> {
    let layers: Vec<&Path> = image.iter().map(PathBuf::as_path).collect();
    let look = |rel: &Path| {
        lookup(&layers, rel).map_err(io(format!("look up /{} in the image", rel.display())))
    };
    DirBuilder::new()
        .mode(0o755)
        .create(root)
        .map_err(io(format!("create {}", root.display())))?;
    // Directories of the image recreated here, whose metadata is copied
    // once their entries are made.
    let mut copied: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
    'points: for (rel, is_dir) in MOUNT_POINTS {
        let rel = Path::new(rel);
        let mut prefixes: Vec<&Path> = rel.ancestors().skip(1).collect();
        prefixes.retain(|p| !p.as_os_str().is_empty());
        prefixes.reverse();
        for p in &prefixes {
            if let Some(found) = look(p)? {
                if !found.meta.is_dir() {
                    // The image has a file or symlink there: leave it be.
                    continue 'points;
                }
            }
        }
        if let Some(found) = look(rel)? {
            // Present in the image. A symlink is shadowed (the runtime
            // would otherwise create its target, anywhere in the image).
            if !found.meta.file_type().is_symlink() {
                continue;
            }
        }
        for p in &prefixes {
            let path = root.join(p);
            if path.is_dir() {
                continue;
            }
            make_dir(&path)?;
            if let Some(found) = look(p)? {
                copied.push((path, found.meta));
            }
        }
        let path = root.join(rel);
        if is_dir {
            make_dir(&path)?;
        } else {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
                .map_err(io(format!("create {}", path.display())))?;
        }
    }
    for (path, meta) in copied {
        std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))
            .map_err(io(format!("chown {}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io(format!("chmod {}", path.display())))?;
        let t = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| Error::Io {
            context: format!("set times of {}", path.display()),
            source: e.into(),
        })?;
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(io(format!("create {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_only_what_the_image_lacks() {
        let t = tempfile::tempdir().unwrap();
        let image = t.path().join("image");
        std::fs::create_dir_all(image.join("etc")).unwrap();
        std::fs::create_dir_all(image.join("proc")).unwrap();
        std::fs::write(image.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
        std::os::unix::fs::symlink("/run/resolv.conf", image.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/", image.join("dev")).unwrap();
        std::fs::set_permissions(image.join("etc"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        let dest = t.path().join("c/init");
        std::fs::create_dir_all(t.path().join("c")).unwrap();
        create(&dest, std::slice::from_ref(&image)).unwrap();

        let mut made: Vec<String> = Vec::new();
        for e in walk(&dest) {
            made.push(e);
        }
        made.sort();
        // /dev is a symlink in the image: shadowed like the resolv.conf one.
        assert_eq!(
            made,
            ["dev/", "etc/", "etc/hostname", "etc/resolv.conf", "sys/"]
        );
        let etc = std::fs::metadata(dest.join("etc")).unwrap();
        assert_eq!(etc.mode() & 0o7777, 0o750, "parent mirrors the image's");
        assert_eq!(
            std::fs::read_dir(t.path().join("c")).unwrap().count(),
            1,
            "no temporary dir left"
        );
        // A second prepare of the same container keeps the layer.
        create(&dest, std::slice::from_ref(&image)).unwrap();
        assert!(dest.join("sys").is_dir());

        // What a crash leaves half made goes at the next start.
        let state = t.path().join("state");
        let snaps = crate::snapshot::Snapshots::open(&state).unwrap();
        let (upper, _) = snaps.create_container_dirs("c1").unwrap();
        let partial = upper.with_file_name("init.tmp-0123");
        std::fs::create_dir_all(partial.join("etc")).unwrap();
        let init = snaps.init_dir("c1").unwrap();
        create(&init, &[image]).unwrap();
        snaps.remove_partial_init("c1").unwrap();
        assert!(!partial.exists() && init.is_dir() && upper.is_dir());
    }

    fn walk(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for e in std::fs::read_dir(root.join(&rel)).unwrap() {
                let e = e.unwrap();
                let r = rel.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    out.push(format!("{}/", r.display()));
                    stack.push(r);
                } else {
                    out.push(r.display().to_string());
                }
            }
        }
        out
    }
}
