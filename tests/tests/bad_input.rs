//! Bad input to `pull`: each case fails with exit code 1 and one line on
//! stderr naming the problem, and leaves no partial blob, no in-flight
//! snapshot and no image record behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngCore;
use rdock_tests::env::ImageRow;
use rdock_tests::{ports, unique_name, Daemon, Entry, Env, Layer, OciLayout, Registry, SlowProxy};

/// Checks what a failed pull must not leave: files in `ingest/`, `tmp-*`
/// snapshots, a changed image list, or a stored blob whose bytes do not
/// match its name.
#[track_caller]
fn assert_nothing_left(env: &Env, images_before: &[ImageRow]) {
    let state = env.imaged_state();
    assert_eq!(
        state.ingest_files(),
        Vec::<PathBuf>::new(),
        "partial downloads left in ingest/"
    );
    assert_eq!(
        state.tmp_snapshots(),
        Vec::<String>::new(),
        "in-flight snapshots left"
    );
    assert_eq!(env.images(), images_before, "the image list changed");
    assert_eq!(
        state.blobs_not_matching_their_digest(),
        Vec::<(String, String)>::new(),
        "a stored blob does not match its digest"
    );
}

/// Runs `rdockctl ARGS`, expects exit code 1 with one error line that
/// contains every one of `all` and at least one of `any` (case-insensitive),
/// then checks that nothing was left behind.
#[track_caller]
fn assert_rejected(env: &Env, args: &[&str], all: &[&str], any: &[&str]) {
    let before = env.images();
    let out = env.cli(args);
    let line = out.error_line().to_lowercase();
    println!("rdockctl {}\n  {}", args.join(" "), out.stderr.trim_end());
    for word in all {
        assert!(
            line.contains(&word.to_lowercase()),
            "the error must mention {word:?}:\n{out}"
        );
    }
    assert!(
        any.is_empty() || any.iter().any(|w| line.contains(&w.to_lowercase())),
        "the error must say what is wrong (one of {any:?}):\n{out}"
    );
    assert_nothing_left(env, &before);
}

const NOT_FOUND: &[&str] = &["not found", "unknown", "no such", "does not exist"];

fn small_image() -> OciLayout {
    OciLayout::new().layer(Layer::gzip(&[
        Entry::dir("etc"),
        Entry::file("etc/hello", "hello\n"),
    ]))
}

#[test]
fn malformed_references_are_rejected() {
    let env = Env::new();
    for reference in ["BUSYBOX", "a//b", "x:", "@sha256:zz"] {
        assert_rejected(
            &env,
            &["pull", reference],
            &[reference],
            &["invalid", "reference"],
        );
    }
}

#[test]
fn unknown_repository_is_reported() {
    let registry = Registry::start();
    let env = Env::new();
    small_image().push(env.root(), &registry, "test/present:v1");
    let reference = format!("{}/test/missing:v1", registry.addr());
    assert_rejected(&env, &["pull", &reference], &["test/missing"], NOT_FOUND);
}

#[test]
fn unknown_tag_is_reported() {
    let registry = Registry::start();
    let env = Env::new();
    small_image().push(env.root(), &registry, "test/present:v1");
    let reference = format!("{}/test/present:nosuchtag", registry.addr());
    assert_rejected(&env, &["pull", &reference], &["nosuchtag"], NOT_FOUND);
}

#[test]
fn unreachable_registry_is_reported() {
    let env = Env::new();
    let registry = format!("127.0.0.1:{}", ports::closed_port());
    let reference = format!("{registry}/test/present:v1");
    assert_rejected(
        &env,
        &["pull", &reference],
        &[&registry],
        &["connect", "refused", "unreachable", "reach"],
    );
}

#[test]
fn blob_not_matching_its_digest_is_rejected() {
    let registry = Registry::start();
    let env = Env::new();
    // Two valid layers of the same length: the registry will serve the
    // second one's bytes under the first one's digest, so only the digest
    // check can tell.
    let good = Layer::gzip_stored(&[Entry::dir("etc"), Entry::file("etc/data", "A".repeat(4096))]);
    let evil = Layer::gzip_stored(&[Entry::dir("etc"), Entry::file("etc/data", "B".repeat(4096))]);
    assert_eq!(good.blob.len(), evil.blob.len());
    OciLayout::new()
        .layer(good.clone())
        .push(env.root(), &registry, "test/swapped:v1");
    let stored = registry.blob_data_path(&good.digest());
    std::fs::write(&stored, &evil.blob)
        .unwrap_or_else(|e| panic!("write {}: {e}", stored.display()));

    let reference = format!("{}/test/swapped:v1", registry.addr());
    assert_rejected(&env, &["pull", &reference], &[], &["digest"]);
    let state = env.imaged_state();
    assert!(
        !state.has_blob(&good.digest()),
        "the mismatching bytes were stored as {}",
        good.digest()
    );
    assert!(
        !state.has_blob(&evil.digest()),
        "the mismatching bytes were stored as {}",
        evil.digest()
    );
    assert_eq!(
        state.snapshots(),
        Vec::<String>::new(),
        "a layer that failed its digest was unpacked"
    );
}

/// Files named `name` at or below `dir`, not following symlinks.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name() == name {
            found.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(files_named(&p, name));
        }
    }
    found
}

/// Pushes a one-layer image of `entries` and checks that pulling it is
/// rejected with an error naming one of `names` (or the layer), and that
/// no snapshot of it exists afterwards.
#[track_caller]
fn assert_hostile_layer_rejected(entries: &[Entry], names: &[&str]) {
    let registry = Registry::start();
    let env = Env::new();
    let layer = Layer::gzip(entries);
    let digest = layer.digest();
    OciLayout::new()
        .layer(layer)
        .push(env.root(), &registry, "test/hostile:v1");
    let reference = format!("{}/test/hostile:v1", registry.addr());
    let mut any: Vec<&str> = names.to_vec();
    any.push(&digest[7..19]);
    assert_rejected(&env, &["pull", &reference], &[], &any);
    assert_eq!(
        env.imaged_state().snapshots(),
        Vec::<String>::new(),
        "the hostile layer was kept unpacked"
    );
}

#[test]
fn layer_entry_with_dotdot_is_rejected() {
    let marker = unique_name("rdock-escape");
    let name = format!("../{marker}");
    let deep = format!("../../../../../../../../../../../../tmp/{marker}");
    assert_hostile_layer_rejected(
        &[
            Entry::dir("etc"),
            Entry::file(&name, "escaped\n"),
            Entry::file(&deep, "escaped\n"),
        ],
        &[&marker],
    );
    assert_eq!(
        files_named(Path::new("/tmp"), &marker),
        Vec::<PathBuf>::new(),
        "an entry escaped the layer"
    );
}

#[test]
fn layer_entry_through_a_symlinked_parent_is_rejected() {
    let marker = unique_name("rdock-escape");
    assert_hostile_layer_rejected(
        &[
            Entry::symlink("evil", "/tmp"),
            Entry::file(&format!("evil/{marker}"), "escaped\n"),
        ],
        &[&marker, "evil"],
    );
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "an entry was written through the symlink"
    );
}

#[test]
fn layer_hard_link_out_of_the_tree_is_rejected() {
    let passwd = std::fs::metadata("/etc/passwd").unwrap_or_else(|e| panic!("/etc/passwd: {e}"));
    // More `..` than any unpack directory is deep: a naive join reaches the
    // host's /etc/passwd.
    let target = "../../../../../../../../../../../../etc/passwd";
    let name = unique_name("pw");
    assert_hostile_layer_rejected(
        &[
            Entry::dir("etc"),
            Entry::hardlink(&format!("etc/{name}"), target),
        ],
        &["etc/passwd", &name],
    );
    let now = std::fs::metadata("/etc/passwd").unwrap_or_else(|e| panic!("/etc/passwd: {e}"));
    assert_eq!(
        now.nlink(),
        passwd.nlink(),
        "a hard link to the host's /etc/passwd was made"
    );
}

#[test]
fn truncated_gzip_layer_is_rejected() {
    let registry = Registry::start();
    let env = Env::new();
    let mut noise = vec![0u8; 256 * 1024];
    rand::rng().fill_bytes(&mut noise);
    let full = Layer::gzip(&[Entry::dir("data"), Entry::file("data/noise", &noise)]);
    let len = full.blob.len() / 2;
    let cut = full.truncated(len);
    OciLayout::new()
        .layer(cut)
        .push(env.root(), &registry, "test/truncated:v1");
    let reference = format!("{}/test/truncated:v1", registry.addr());
    assert_rejected(
        &env,
        &["pull", &reference],
        &[],
        &[
            "gzip",
            "truncat",
            "unexpected end",
            "eof",
            "decompress",
            "corrupt",
        ],
    );
    assert_eq!(
        env.imaged_state().snapshots(),
        Vec::<String>::new(),
        "the broken layer was kept unpacked"
    );
}

/// Waits until some file in `ingest/` holds at least `bytes`.
fn wait_for_partial_download(env: &Env, bytes: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let biggest = env
            .imaged_state()
            .ingest_files()
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .max();
        if biggest.is_some_and(|n| n >= bytes) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn imaged_killed_halfway_through_a_pull_recovers() {
    let registry = Registry::start();
    let mut env = Env::new();
    let mut noise = vec![0u8; 8 * 1024 * 1024];
    rand::rng().fill_bytes(&mut noise);
    let big = Layer::gzip(&[Entry::dir("data"), Entry::file("data/noise", &noise)]);
    let big_digest = big.digest();
    let info = small_image()
        .layer(big)
        .push(env.root(), &registry, "test/big:v1");

    // 8 MiB at 1 MiB/s: the download is in the middle for seconds.
    let proxy = SlowProxy::start(&registry.addr(), 1024 * 1024);
    let pull = env.cli_spawn(&["pull", &format!("{}/test/big:v1", proxy.addr())]);
    let partial = wait_for_partial_download(&env, 256 * 1024, Duration::from_secs(30));
    env.kill(Daemon::Imaged);
    let out = pull.wait(Duration::from_secs(30));
    assert!(
        partial,
        "no partial download appeared in ingest/ (proxy forwarded {} bytes)",
        proxy.bytes_forwarded()
    );
    out.error_line();
    println!("pull while imaged was killed:\n  {}", out.stderr.trim_end());
    drop(proxy);

    env.start(Daemon::Imaged);
    assert_nothing_left(&env, &[]);
    assert!(
        !env.imaged_state().has_blob(&big_digest),
        "the half-downloaded layer is served as complete"
    );

    let direct = format!("{}/test/big:v1", registry.addr());
    env.cli(&["pull", &direct]).ok();
    let rows = env.images();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].repository.as_str(), rows[0].tag.as_str()),
        (format!("{}/test/big", registry.addr()).as_str(), "v1")
    );
    assert!(
        rows[0].is_image(&info.image_id),
        "{:?} is not {}",
        rows[0],
        info.image_id
    );
    assert!(
        env.imaged_state().has_blob(&big_digest),
        "the layer blob is missing after the pull"
    );
    assert_nothing_left(&env, &rows);
}
