//! Fixtures for the tests of container root filesystems: a store in a temp
//! dir with an imported base image, and overlay mounts made the way the
//! runtime daemon makes them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rdock_proto::image::v1::{Image, PrepareRootfsResponse};

use crate::images::ImageStore;
use crate::registry::Registries;

/// Whether the root-only tests can run here; they print why not and pass
/// otherwise (CI runs as root).
pub fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: overlay mounts, whiteouts and chown need root");
    }
    root
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<ImageStore>,
}

impl Fixture {
    pub fn state(&self) -> &Path {
        self.dir.path()
    }

    /// Restarts the store: closes it, then opens it again.
    pub fn reopen(self) -> Self {
        let Fixture { dir, store } = self;
        drop(store);
        let store = ImageStore::open(dir.path(), Registries::new(vec![])).unwrap();
        Fixture { dir, store }
    }

    /// (blobs, snapshot dirs, ingest files, images, tags).
    pub fn counts(&self) -> (usize, usize, usize, usize, usize) {
        let n = |p: PathBuf| std::fs::read_dir(p).unwrap().count();
        (
            n(self.state().join("blobs/sha256")),
            n(self.state().join("snapshots")),
            n(self.state().join("ingest")),
            self.store.meta.images().unwrap().len(),
            self.store.meta.tags().unwrap().len(),
        )
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

/// The base image: `/bin/sh`, `/etc/{passwd,group}`, `/var/cache/a`,
/// `/opt/o`, `/tmp`.
pub fn base_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "opt", "tmp", "var", "var/cache"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, format!("{d}/"), std::io::empty())
            .unwrap();
    }
    for (f, data) in [
        ("bin/sh", &b"#!shell\n"[..]),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", b"root:x:0:\n"),
        ("var/cache/a", b"cached\n"),
        ("opt/o", b"o\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, f, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A store with `base:1` imported from [`base_tar`].
pub async fn fixture() -> (Fixture, Image) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path(), Registries::new(vec![])).unwrap();
    let data = futures::stream::iter(vec![Ok(base_tar())]);
    let image = store
        .import("base:1", &[r#"CMD ["/bin/sh"]"#.into()], "", data)
        .await
        .unwrap();
    (Fixture { dir, store }, image)
}

/// An overlay mount, unmounted on drop.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mounts a prepared root filesystem at `target` as the runtime daemon
/// does.
pub fn mount(p: &PrepareRootfsResponse, target: &Path) -> Mounted {
    std::fs::create_dir_all(target).unwrap();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        p.lowerdirs.join(":"),
        p.upperdir,
        p.workdir
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .unwrap();
    Mounted(target.to_path_buf())
}

/// The names of a tar's entries, in order.
pub fn tar_names(bytes: &[u8]) -> Vec<String> {
    crate::archive::tests::list(bytes)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// What a container does, through a real overlay mount.
pub fn change_things(root: &Path) {
    std::fs::write(root.join("etc/new"), b"new\n").unwrap();
    std::fs::hard_link(root.join("etc/new"), root.join("etc/new2")).unwrap();
    std::fs::remove_file(root.join("etc/group")).unwrap();
    let mut p = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("etc/passwd"))
        .unwrap();
    p.write_all(b"me:x:1000:1000::/:/bin/sh\n").unwrap();
    // /opt is copied up only because of its file: its metadata stays.
    let mut o = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("opt/o"))
        .unwrap();
    o.write_all(b"more\n").unwrap();
    std::fs::remove_dir_all(root.join("var/cache")).unwrap();
    std::fs::create_dir(root.join("var/cache")).unwrap();
    std::fs::write(root.join("var/cache/b"), b"b\n").unwrap();
}

pub const CHANGES: [&str; 11] = [
    "C /etc",
    "D /etc/group",
    "A /etc/new",
    "A /etc/new2",
    "C /etc/passwd",
    "C /opt",
    "C /opt/o",
    "C /var",
    "C /var/cache",
    "D /var/cache/a",
    "A /var/cache/b",
];
