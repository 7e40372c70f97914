//! Resolving a path inside a container's root filesystem the way the kernel
//! would inside the container: symlinks are followed relative to the root and
//! `..` never climbs above it, so no path escapes to the host.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

const MAX_SYMLINKS: usize = 40;

/// The host path of `path` (absolute, as seen in the container) under `root`.
/// The last component need not exist.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = components(Path::new(path));
    pending.reverse();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&parts);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::InvalidArgument(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| {
                    Error::Internal(format!("read link {}: {e}", candidate.display()))
                })?;
                if target.is_absolute() {
                    parts.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => parts.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    Ok(out)
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc/shadow", root.join("etc/passwd")).unwrap();
        symlink("../../../..", root.join("etc/up")).unwrap();
        assert_eq!(
            resolve(root, "/etc/passwd").unwrap(),
            root.join("etc/shadow")
        );
        assert_eq!(resolve(root, "/etc/up/x").unwrap(), root.join("x"));
        assert_eq!(resolve(root, "/../../etc").unwrap(), root.join("etc"));
        symlink("loop", root.join("loop")).unwrap();
        assert!(resolve(root, "/loop").is_err());
    }
}
