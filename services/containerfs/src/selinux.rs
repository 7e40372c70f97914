//! SELinux relabelling for `:z` / `:Z` mounts. It is applied only where
//! SELinux is enforcing (`/sys/fs/selinux/enforce` reads `1`); elsewhere the
//! suffix is accepted and nothing is done, as Docker does on hosts without
//! SELinux.

use std::ffi::CStr;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use crate::dirfd::{self, Kind, Step};
use crate::error::{Error, Result};

const ENFORCE: &str = "/sys/fs/selinux/enforce";
const XATTR: &CStr = c"security.selinux";

/// The label of container files when no per-container label is given.
pub const CONTAINER_FILE_LABEL: &str = "system_u:object_r:container_file_t:s0";

/// Host directories that are never relabelled (SELinux's own list): doing
/// so would break the host.
const EXCLUDED: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/passwd",
    "/etc/pki",
    "/etc/shadow",
    "/home",
    "/lib",
    "/lib64",
    "/media",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/log",
];

/// Whether SELinux is enforcing on this host.
pub fn enforcing() -> bool {
    enforcing_at(Path::new(ENFORCE))
}

fn enforcing_at(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// The label for a `z` (shared: level `s0`) or `Z` (private: the
/// container's own label) relabel, from the container's mount label.
pub(crate) fn label_for(relabel: &str, mount_label: Option<&str>) -> String {
    let base = mount_label.unwrap_or(CONTAINER_FILE_LABEL);
    if relabel == "z" {
        // user:role:type:level — the shared label is the same with level s0.
        let parts: Vec<&str> = base.splitn(4, ':').collect();
        if parts.len() == 4 {
            return format!("{}:{}:{}:s0", parts[0], parts[1], parts[2]);
        }
    }
    base.to_string()
}

/// Refuses to relabel a system directory of the host.
pub(crate) fn check_allowed(path: &Path) -> Result<()> {
    let home = std::env::var("HOME").ok();
    let p = path.to_string_lossy();
    let p = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        &p
    };
    if EXCLUDED.contains(&p) || home.as_deref() == Some(p) {
        return Err(Error::InvalidArgument(format!(
            "SELinux relabeling of {p} is not allowed"
        )));
    }
    Ok(())
}

/// Sets `label` on `path` and everything under it (never following a
/// symlink), when SELinux is enforcing.
pub(crate) fn relabel(path: &Path, label: &str) -> Result<()> {
    if !enforcing() {
        return Ok(());
    }
    check_allowed(path)?;
    set_tree(path, XATTR, label.as_bytes())
        .map_err(|e| Error::Internal(format!("relabel {}: {e}", path.display())))
}

/// Sets extended attribute `attr` on `path` (followed, it is the mount
/// source) and, if it is a directory, on everything below it.
fn set_tree(path: &Path, attr: &CStr, value: &[u8]) -> io::Result<()> {
    let top = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(dirfd::err)?;
    if dirfd::kind(&dirfd::stat(&top)?) != Kind::Dir {
        return dirfd::set_xattr_proc(top.as_fd(), attr, value);
    }
    let dir = dirfd::reopen_dir(&top)?;
    dirfd::set_xattr(&dir, attr, value)?;
    dirfd::walk_tree(&dir, |step| {
        if let Step::Entry { dir, name, st, .. } = step {
            let kind = dirfd::kind(st);
            match dirfd::set_xattr_at(dir, name, attr, value) {
                Ok(()) => {}
                // Some attribute namespaces (user.*) exist only on regular
                // files and directories.
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::EPERM)
                        && !matches!(kind, Kind::Dir | Kind::File) => {}
                Err(e) => return Err(e),
            }
            return Ok(kind == Kind::Dir);
        }
        Ok(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcing_is_read_from_the_kernel_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("enforce");
        assert!(!enforcing_at(&f));
        std::fs::write(&f, "0").unwrap();
        assert!(!enforcing_at(&f));
        std::fs::write(&f, "1\n").unwrap();
        assert!(enforcing_at(&f));
        // This host: whatever the kernel says.
        let host = std::fs::read_to_string(ENFORCE).map(|s| s.trim() == "1");
        assert_eq!(enforcing(), host.unwrap_or(false));
    }

    #[test]
    fn labels_and_excluded_paths() {
        assert_eq!(label_for("z", None), CONTAINER_FILE_LABEL);
        assert_eq!(
            label_for("z", Some("system_u:object_r:container_file_t:s0:c1,c2")),
            "system_u:object_r:container_file_t:s0"
        );
        assert_eq!(
            label_for("Z", Some("system_u:object_r:container_file_t:s0:c1,c2")),
            "system_u:object_r:container_file_t:s0:c1,c2"
        );
        for p in ["/", "/usr", "/etc/", "/var/lib"] {
            let e = check_allowed(Path::new(p)).unwrap_err().to_string();
            assert!(e.starts_with("SELinux relabeling of"), "{e}");
        }
        check_allowed(Path::new("/srv/data")).unwrap();
    }

    #[test]
    fn tree_attributes_are_set_without_following_symlinks() {
        // The same walk relabels with security.selinux; a user xattr shows
        // it works here, where SELinux is off.
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::write(top.join("a/b/f"), "x").unwrap();
        std::fs::write(d.path().join("outside"), "x").unwrap();
        std::os::unix::fs::symlink(d.path().join("outside"), top.join("a/link")).unwrap();
        let attr = c"user.rdock-test";
        match set_tree(&top, attr, b"v") {
            Ok(()) => {}
            // tmpfs without user xattrs, say: nothing to prove here.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return,
            Err(e) => panic!("{e}"),
        }
        let get = |p: &Path| {
            let f = std::fs::File::open(p).unwrap();
            dirfd::get_xattr(&f, attr).unwrap()
        };
        assert_eq!(get(&top.join("a/b/f")).as_deref(), Some(&b"v"[..]));
        assert_eq!(get(&top.join("a")).as_deref(), Some(&b"v"[..]));
        assert_eq!(get(&top).as_deref(), Some(&b"v"[..]));
        assert_eq!(get(&d.path().join("outside")), None);
    }
}
