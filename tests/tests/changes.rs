//! A container's filesystem seen from outside: `diff`, `commit` (and the
//! new image running, surviving an image-daemon restart, going through a
//! registry and back), `history`, `export` and `cp` both ways.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rdock_tests::{Daemon, Env, Registry};

const T: Duration = Duration::from_secs(20);

/// The changes the `changed` container makes, then sleeps.
const CHANGES: &str = "echo new > /tmp/added; echo more >> /etc/passwd; \
    rm /var/www/index.html; mkdir -p /var/newdir/sub; touch /var/newdir/sub/f; \
    rm -r /bin/ls";

/// What `docker diff` prints for [`CHANGES`]: parents as `C`, depth first,
/// names in order; nothing for the files rdock itself mounts.
const EXPECTED_DIFF: &str = "C /bin\nD /bin/ls\nC /etc\nC /etc/passwd\nC /tmp\nA /tmp/added\n\
    C /var\nA /var/newdir\nA /var/newdir/sub\nA /var/newdir/sub/f\nC /var/www\n\
    D /var/www/index.html\n";

fn changed_container(env: &Env, name: &str) {
    env.run_detached(&[
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        &format!("{CHANGES}; touch /tmp/.ready; sleep 1000"),
    ]);
    rdock_tests::wait_until(T, "the container's changes", || {
        env.cli(&["exec", name, "test", "-e", "/tmp/.ready"])
            .code
            .eq(&0)
            .then_some(())
    });
    env.cli(&["exec", name, "rm", "/tmp/.ready"]).ok();
}

#[test]
fn diff_lists_added_changed_and_deleted_paths_running_or_stopped() {
    let env = Env::with_busybox();
    changed_container(&env, "differ");
    assert_eq!(env.cli(&["diff", "differ"]).ok(), EXPECTED_DIFF);
    env.cli(&["stop", "-t", "1", "differ"]).ok();
    assert_eq!(
        env.cli(&["diff", "differ"]).ok(),
        EXPECTED_DIFF,
        "diff of a stopped container"
    );
    // A fresh container changed nothing.
    env.cli(&["create", "--name", "fresh", "busybox", "true"])
        .ok();
    assert_eq!(env.cli(&["diff", "fresh"]).ok(), "");

    let out = env.cli(&["diff", "nosuch"]);
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn commit_makes_an_image_that_runs_with_the_changes_and_survives_a_restart() {
    let mut env = Env::with_busybox();
    changed_container(&env, "ctr");
    let out = env.cli(&[
        "commit",
        "-m",
        "add and remove files",
        "-a",
        "Ann Author",
        "-c",
        r#"CMD ["cat", "/tmp/added"]"#,
        "ctr",
        "committed:v1",
    ]);
    let id = out.ok().trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "commit prints the image id: {out}"
    );
    assert!(
        env.images()
            .iter()
            .any(|r| r.repository == "committed" && r.tag == "v1" && r.is_image(&id)),
        "{:?}",
        env.images()
    );
    // CMD from -c; the added file is there, the deleted ones are gone.
    assert_eq!(env.cli(&["run", "--rm", "committed:v1"]).ok(), "new\n");
    let check = "tail -n 1 /etc/passwd; test -e /var/www/index.html && echo index-still-there; \
        test -e /bin/ls && echo ls-still-there; echo /var/newdir/sub/*";
    let expected = "more\n/var/newdir/sub/f\n";
    assert_eq!(
        env.cli(&["run", "--rm", "committed:v1", "sh", "-c", check])
            .ok(),
        expected
    );

    let inspect = env.inspect("committed:v1");
    assert_eq!(inspect["Author"], "Ann Author", "{inspect:#}");
    let base = env.inspect("busybox");
    let layers = |v: &serde_json::Value| v["RootFS"]["Layers"].as_array().map(Vec::len);
    assert_eq!(
        layers(&inspect),
        layers(&base).map(|n| n + 1),
        "one layer more than its base: {inspect:#}"
    );

    // history: the new entry on top, with its comment.
    let history = env
        .cli(&["history", "--no-trunc", "committed:v1"])
        .ok()
        .to_string();
    let rows: Vec<&str> = history.lines().collect();
    assert!(rows[0].starts_with("IMAGE"), "{history}");
    assert!(rows[1].starts_with(&id), "{history}");
    assert!(rows[1].contains("add and remove files"), "{history}");
    let base_rows = env.cli(&["history", "busybox"]).ok().lines().count();
    assert_eq!(rows.len(), base_rows + 1, "{history}");

    env.kill(Daemon::Imaged);
    env.start(Daemon::Imaged);
    assert_eq!(env.cli(&["run", "--rm", "committed:v1"]).ok(), "new\n");
    assert_eq!(
        env.cli(&["run", "--rm", "committed:v1", "sh", "-c", check])
            .ok(),
        expected
    );
}

#[test]
fn a_committed_image_goes_through_a_registry_unchanged() {
    let registry = Registry::start();
    let env = Env::with_busybox();
    changed_container(&env, "ctr");
    let remote = format!("{}/test/committed:v1", registry.addr());
    let id = env.cli(&["commit", "ctr", &remote]).ok().trim().to_string();
    env.cli(&["push", &remote]).ok();
    let pushed = env.inspect(&remote);

    // Elsewhere: a second host pulls it back.
    let other = Env::new();
    other.cli(&["pull", &remote]).ok();
    let pulled = other.inspect(&remote);
    assert_eq!(pulled["Id"], id.as_str(), "{pulled:#}");
    assert_eq!(pulled["RootFS"], pushed["RootFS"], "{pulled:#}");
    assert_eq!(pulled["RepoDigests"], pushed["RepoDigests"], "{pulled:#}");
    assert_eq!(
        other
            .cli(&["run", "--rm", &remote, "cat", "/tmp/added"])
            .ok(),
        "new\n"
    );
}

fn tar_names(path: &Path) -> BTreeSet<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| {
            let e = e.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let p = e
                .path()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            p
        })
        .collect()
}

#[test]
fn export_writes_the_merged_filesystem() {
    let env = Env::with_busybox();
    changed_container(&env, "exp");
    let out_file = env.root().join("e.tar");
    let out = env.cli(&["export", "-o", &out_file.display().to_string(), "exp"]);
    assert_eq!(out.code, 0, "{out}");
    let names = tar_names(&out_file);
    for present in ["bin/busybox", "etc/passwd", "tmp/added", "var/newdir/sub/f"] {
        assert!(names.contains(present), "{present} missing: {names:?}");
    }
    for gone in ["var/www/index.html", "bin/ls"] {
        assert!(!names.contains(gone), "{gone} was deleted: {names:?}");
    }
    // To a terminal it refuses, as Docker does.
    let mut t = env.cli_pty(&["export", "exp"], 24, 80);
    t.expect("cowardly refusing to save to a terminal", T);
    assert_ne!(t.wait(T).code(), Some(0));
}

#[test]
fn cp_copies_both_ways_and_stays_inside_the_container() {
    let env = Env::with_busybox();
    env.run_detached(&["--name", "ctr", "busybox", "sleep", "1000"]);
    let host = env.root().join("cp");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("in.txt"), "payload\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("dir/sub/deep.txt"), "deep\n").unwrap_or_else(|e| panic!("{e}"));
    let h = |p: &str| host.join(p).display().to_string();

    // Host → container: into a directory, renamed, a whole tree.
    env.cli(&["cp", &h("in.txt"), "ctr:/tmp/"]).ok();
    env.cli(&["cp", &h("in.txt"), "ctr:/tmp/renamed.txt"]).ok();
    env.cli(&["cp", &h("dir"), "ctr:/var/dir"]).ok();
    let out = env.cli(&[
        "exec",
        "ctr",
        "sh",
        "-c",
        "cat /tmp/in.txt /tmp/renamed.txt /var/dir/sub/deep.txt",
    ]);
    assert_eq!(out.ok(), "payload\npayload\ndeep\n");

    // Container → host: a file into a directory, a directory renamed.
    env.cli(&["cp", "ctr:/etc/passwd", &format!("{}/", host.display())])
        .ok();
    assert!(std::fs::read_to_string(host.join("passwd"))
        .unwrap_or_default()
        .starts_with("root:x:0:0"));
    env.cli(&["cp", "ctr:/etc", &h("etccopy")]).ok();
    assert!(host.join("etccopy/group").is_file());

    // A symlink in the container resolves inside the container, never on
    // the host: /tmp/up points far above the root.
    env.cli(&["exec", "ctr", "ln", "-s", "../../../../../..", "/tmp/up"])
        .ok();
    env.cli(&["exec", "ctr", "ln", "-s", "/var", "/tmp/abs"])
        .ok();
    env.cli(&["cp", &h("in.txt"), "ctr:/tmp/up/escaped-rdock-test.txt"])
        .ok();
    env.cli(&["cp", &h("in.txt"), "ctr:/tmp/abs/through-abs.txt"])
        .ok();
    assert!(!Path::new("/escaped-rdock-test.txt").exists());
    assert!(!Path::new("/var/through-abs.txt").exists());
    let out = env.cli(&[
        "exec",
        "ctr",
        "sh",
        "-c",
        "cat /escaped-rdock-test.txt /var/through-abs.txt",
    ]);
    assert_eq!(out.ok(), "payload\npayload\n");

    let out = env.cli(&["cp", "ctr:/nosuch", &h("x")]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("Could not find the file /nosuch in container ctr"),
        "{out}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out}");

    // A stopped container too.
    env.cli(&["kill", "ctr"]).ok();
    env.wait_for_status("ctr", "exited", T);
    env.cli(&["cp", "ctr:/tmp/renamed.txt", &h("from-stopped.txt")])
        .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("from-stopped.txt")).unwrap_or_default(),
        "payload\n"
    );
}
