//! Images through the CLI: import, images, tag, inspect, push, pull, rmi.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rdock_tests::{
    busybox_rootfs_tar, chain_ids, sha256_digest, Entry, Env, Layer, OciLayout, Registry,
};

/// Imports the busybox rootfs as `reference` with `CMD ["sh"]`; returns the
/// image id the CLI printed.
#[track_caller]
fn import_busybox(env: &Env, reference: &str) -> String {
    let tar = env.write_file("busybox.tar", &busybox_rootfs_tar());
    let out = env.cli(&[
        "import",
        &tar.to_string_lossy(),
        reference,
        "--change",
        r#"CMD ["sh"]"#,
    ]);
    let id = out.ok().trim().to_string();
    assert!(
        id.len() == 71
            && id.starts_with("sha256:")
            && id[7..].chars().all(|c| c.is_ascii_hexdigit()),
        "`import` must print the image id sha256:<64 hex>:\n{out}"
    );
    id
}

#[test]
fn import_lists_and_inspects_the_busybox_rootfs() {
    let env = Env::new();
    let tar = busybox_rootfs_tar();
    let id = import_busybox(&env, "busybox");

    let table = env.cli(&["images"]);
    let mut lines = table.ok().lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "`images` header:\n{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 1, "`images` must list one image:\n{table}");
    assert_eq!(
        &rows[0][..2],
        ["busybox", "latest"],
        "`images` row:\n{table}"
    );
    assert_eq!(
        rows[0][2],
        &id[7..19],
        "IMAGE ID is the first 12 hex digits of the id:\n{table}"
    );

    let quiet = env.cli(&["images", "-q"]);
    assert_eq!(quiet.ok().trim(), &id[7..19], "`images -q`:\n{quiet}");

    let cmd = env.cli(&["image", "inspect", "-f", "{{.Config.Cmd}}", "busybox"]);
    assert_eq!(
        cmd.ok().trim(),
        "[sh]",
        "`image inspect -f '{{{{.Config.Cmd}}}}'`:\n{cmd}"
    );

    let inspect = env.inspect("busybox");
    assert_eq!(inspect["Id"], id.as_str(), "{inspect:#}");
    assert_eq!(
        inspect["RepoTags"],
        serde_json::json!(["busybox:latest"]),
        "{inspect:#}"
    );
    assert_eq!(inspect["Architecture"], "amd64", "{inspect:#}");
    assert_eq!(inspect["Os"], "linux", "{inspect:#}");
    assert_eq!(inspect["RootFS"]["Type"], "layers", "{inspect:#}");
    // The one layer of an imported tarball is that tarball, byte for byte.
    assert_eq!(
        inspect["RootFS"]["Layers"],
        serde_json::json!([sha256_digest(&tar)]),
        "{inspect:#}"
    );
    let size = inspect["Size"].as_u64().unwrap_or(0);
    let busybox_len = std::fs::metadata("/bin/busybox")
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        size >= busybox_len,
        "Size {size} is smaller than /bin/busybox ({busybox_len})"
    );
}

#[test]
fn tag_adds_a_name_and_rmi_of_one_name_only_untags() {
    let env = Env::new();
    let id = import_busybox(&env, "busybox");
    env.cli(&["tag", "busybox", "example/bb:v2"]).ok();

    let mut names: Vec<String> = env
        .images()
        .iter()
        .inspect(|row| assert!(row.is_image(&id), "{row:?} is not image {id}"))
        .map(|row| format!("{}:{}", row.repository, row.tag))
        .collect();
    names.sort();
    assert_eq!(names, ["busybox:latest", "example/bb:v2"]);

    let rmi = env.cli(&["rmi", "example/bb:v2"]);
    let printed = rmi.ok();
    assert!(printed.contains("Untagged: example/bb:v2"), "{rmi}");
    assert!(
        !printed.contains("Deleted:"),
        "the image still has a name:\n{rmi}"
    );
    let left: Vec<(String, String)> = env
        .images()
        .into_iter()
        .map(|r| (r.repository, r.tag))
        .collect();
    assert_eq!(left, [("busybox".to_string(), "latest".to_string())]);
}

#[test]
fn push_then_pull_back_gives_the_same_image() {
    let registry = Registry::start();
    let env = Env::new();
    let id = import_busybox(&env, "busybox");
    let remote = format!("{}/test/busybox:v1", registry.addr());
    env.cli(&["tag", "busybox", &remote]).ok();
    env.cli(&["push", &remote]).ok();
    assert!(
        registry.has_manifest("test/busybox", "v1"),
        "the registry does not serve test/busybox:v1 after push"
    );
    let before = env.inspect(&remote);

    let rmi = env.cli(&["rmi", "busybox", &remote]);
    assert!(rmi.ok().contains(&format!("Deleted: {id}")), "{rmi}");
    assert_eq!(
        env.images(),
        [],
        "no image may be left after rmi of both names"
    );

    env.cli(&["pull", &remote]).ok();
    let rows = env.images();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].repository,
        format!("{}/test/busybox", registry.addr())
    );
    assert_eq!(rows[0].tag, "v1");
    assert!(
        rows[0].is_image(&id),
        "pulled image {:?} is not the pushed {id}",
        rows[0]
    );
    let after = env.inspect(&remote);
    assert_eq!(after["Id"], id.as_str(), "{after:#}");
    assert_eq!(after["RootFS"], before["RootFS"], "{after:#}");
    assert_eq!(
        after["Config"]["Cmd"],
        serde_json::json!(["sh"]),
        "{after:#}"
    );
    assert!(
        after["RepoDigests"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x.as_str().is_some_and(
                |s| s.starts_with(&format!("{}/test/busybox@sha256:", registry.addr()))
            ))),
        "RepoDigests must name the registry's manifest: {after:#}"
    );
}

/// Layer 1 holds `etc/keep`, `etc/gone` and `data/old`; layer 2 adds
/// `etc/added`; layer 3 deletes `etc/gone` (whiteout) and replaces `data`
/// (opaque) with `data/new`.
fn three_layer_image() -> OciLayout {
    OciLayout::new()
        .layer(Layer::gzip(&[
            Entry::dir("etc"),
            Entry::file("etc/keep", "kept\n"),
            Entry::file("etc/gone", "deleted by layer 3\n"),
            Entry::dir("data"),
            Entry::file("data/old", "hidden by layer 3\n"),
        ]))
        .layer(Layer::gzip(&[
            Entry::dir("etc"),
            Entry::file("etc/added", "layer 2\n"),
        ]))
        .layer(Layer::gzip(&[
            Entry::dir("etc"),
            Entry::whiteout("etc/gone"),
            Entry::dir("data"),
            Entry::opaque("data"),
            Entry::file("data/new", "layer 3\n"),
        ]))
}

fn overlay_opaque(dir: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let name = c"trusted.overlay.opaque";
    let mut buf = [0u8; 16];
    // SAFETY: both strings are NUL-terminated and buf outlives the call.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

#[test]
fn pull_of_three_layers_converts_whiteouts_and_opaque_dirs() {
    let registry = Registry::start();
    let env = Env::new();
    let info = three_layer_image().push(env.root(), &registry, "test/layers:v1");
    let reference = format!("{}/test/layers:v1", registry.addr());
    env.cli(&["pull", &reference]).ok();

    let inspect = env.inspect(&reference);
    assert_eq!(inspect["Id"], info.image_id.as_str(), "{inspect:#}");
    assert_eq!(
        inspect["RootFS"]["Layers"],
        serde_json::json!(info.diff_ids),
        "{inspect:#}"
    );

    let state = env.imaged_state();
    let chain = chain_ids(&info.diff_ids);
    let bottom = state.snapshot_fs(&chain[0]);
    let middle = state.snapshot_fs(&chain[1]);
    let top = state.snapshot_fs(&chain[2]);

    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(read(&bottom.join("etc/keep")), "kept\n");
    assert_eq!(read(&bottom.join("etc/gone")), "deleted by layer 3\n");
    assert_eq!(read(&bottom.join("data/old")), "hidden by layer 3\n");
    assert_eq!(read(&middle.join("etc/added")), "layer 2\n");
    assert!(
        !middle.join("etc/keep").exists(),
        "a snapshot holds only its own layer"
    );

    let gone = std::fs::symlink_metadata(top.join("etc/gone")).unwrap_or_else(|e| {
        panic!("the whiteout of etc/gone is missing from the top snapshot: {e}")
    });
    assert!(
        gone.file_type().is_char_device(),
        "etc/gone must be a char device 0/0: {gone:?}"
    );
    assert_eq!(gone.rdev(), 0, "etc/gone must be a char device 0/0");
    assert!(
        !top.join("etc/.wh.gone").exists(),
        "the OCI whiteout file must not be unpacked"
    );
    assert_eq!(
        overlay_opaque(&top.join("data")).as_deref(),
        Some(&b"y"[..]),
        "data must be marked opaque (trusted.overlay.opaque=y)"
    );
    assert!(
        !top.join("data/.wh..wh..opq").exists(),
        "the opaque marker file must not be unpacked"
    );
    assert_eq!(read(&top.join("data/new")), "layer 3\n");
}

#[test]
fn rmi_of_an_unknown_image_fails_with_one_line() {
    let env = Env::new();
    let out = env.cli(&["rmi", "nosuchimage:v9"]);
    let line = out.error_line();
    assert!(
        line.contains("nosuchimage"),
        "the error must name the image:\n{out}"
    );
}

#[test]
fn rmi_of_the_last_reference_frees_blobs_and_snapshots() {
    let registry = Registry::start();
    let env = Env::new();
    import_busybox(&env, "busybox");
    let info = three_layer_image().push(env.root(), &registry, "test/layers:v1");
    let reference = format!("{}/test/layers:v1", registry.addr());
    env.cli(&["pull", &reference]).ok();
    let state = env.imaged_state();
    assert_eq!(
        state.snapshots().len(),
        4,
        "one snapshot per layer of the two images"
    );

    env.cli(&["rmi", "busybox"]).ok();
    assert_eq!(env.inspect(&reference)["Id"], info.image_id.as_str());
    assert_eq!(
        state.snapshots().len(),
        3,
        "busybox's layer must go, the other three stay"
    );
    for chain_id in chain_ids(&info.diff_ids) {
        state.snapshot_fs(&chain_id);
    }
    for digest in info.layer_digests.iter().chain([&info.image_id]) {
        assert!(
            state.has_blob(digest),
            "blob {digest} of the remaining image is gone"
        );
    }

    let out = env.cli(&["rmi", &reference]);
    assert!(out.ok().contains("Deleted: sha256:"), "{out}");
    assert_eq!(env.images(), []);
    assert_eq!(
        state.blobs(),
        Vec::<String>::new(),
        "blobs left after the last rmi"
    );
    assert_eq!(
        state.snapshots(),
        Vec::<String>::new(),
        "snapshots left after the last rmi"
    );
}
