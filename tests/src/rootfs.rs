//! A busybox root filesystem built offline from the host's `busybox-static`.

use std::process::Command;

const BUSYBOX: &str = "/bin/busybox";
/// A fixed modification time, so two builds give the same bytes.
const MTIME: u64 = 1_700_000_000;

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(size);
    h
}

/// The applets of the host's busybox.
pub fn busybox_applets() -> Vec<String> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("{BUSYBOX} --list: {e} (apt-get install busybox-static)"));
    assert!(out.status.success(), "{BUSYBOX} --list failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect()
}

/// An uncompressed tar of a minimal root filesystem: `bin/busybox`, one
/// symlink per applet (`bin/<applet> -> busybox`), `etc/passwd`, `etc/group`,
/// `tmp`, and `var/www/index.html`.
pub fn busybox_rootfs_tar() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("read {BUSYBOX}: {e} (apt-get install busybox-static)"));
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32| {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        b.append_data(&mut h, path, std::io::empty())
            .unwrap_or_else(|e| panic!("tar {path}: {e}"));
    };
    for (path, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("var/www", 0o755),
    ] {
        dir(&mut b, path, mode);
    }
    let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        b.append_data(&mut h, path, data)
            .unwrap_or_else(|e| panic!("tar {path}: {e}"));
    };
    file(&mut b, "bin/busybox", 0o755, &busybox);
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    file(&mut b, "etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    file(
        &mut b,
        "var/www/index.html",
        0o644,
        b"<html><body>hello from rdock</body></html>\n",
    );
    for applet in busybox_applets() {
        let path = format!("bin/{applet}");
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, &path, "busybox")
            .unwrap_or_else(|e| panic!("tar {path}: {e}"));
    }
    b.into_inner()
        .unwrap_or_else(|e| panic!("finish the busybox tar: {e}"))
}
