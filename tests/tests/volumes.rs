//! Data outside the container: named and anonymous volumes, bind mounts,
//! `:ro`, `--read-only` with `--tmpfs`, `--mount`, `--volumes-from`, and
//! the `volume` commands.

use std::path::PathBuf;

use rdock_tests::Env;

fn volume_mountpoint(env: &Env, name: &str) -> PathBuf {
    let out = env.cli(&["volume", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(out.ok())
        .unwrap_or_else(|e| panic!("`volume inspect {name}` is not JSON: {e}\n{out}"));
    let mp = v[0]["Mountpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no Mountpoint: {v:#}"));
    assert_eq!(v[0]["Name"], name, "{v:#}");
    assert_eq!(v[0]["Driver"], "local", "{v:#}");
    PathBuf::from(mp)
}

fn volume_names(env: &Env) -> Vec<String> {
    env.cli(&["volume", "ls", "-q"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_named_volume_keeps_data_across_containers_and_is_on_the_host() {
    let env = Env::with_busybox();
    assert_eq!(env.cli(&["volume", "create", "data"]).ok(), "data\n");
    env.cli(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ])
    .ok();
    assert_eq!(
        env.cli(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/f"
        ])
        .ok(),
        "kept\n"
    );
    let mp = volume_mountpoint(&env, "data");
    assert_eq!(
        std::fs::read_to_string(mp.join("f")).unwrap_or_default(),
        "kept\n"
    );
    let ls = env.cli(&["volume", "ls"]).ok().to_string();
    assert!(ls.starts_with("DRIVER"), "{ls}");
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().eq(["local", "data"])),
        "{ls}"
    );

    // In use: refused; after the container is gone: removed.
    env.run_detached(&[
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = env.cli(&["volume", "rm", "data"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("volume is in use"), "{out}");
    env.cli(&["rm", "-f", "user"]).ok();
    assert!(
        mp.join("f").is_file(),
        "rm of a container keeps its volumes"
    );
    assert_eq!(env.cli(&["volume", "rm", "data"]).ok(), "data\n");
    assert!(!volume_names(&env).contains(&"data".to_string()));
    assert!(!mp.exists(), "volume rm removes the data");

    let out = env.cli(&["volume", "rm", "nosuch"]);
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    let out = env.cli(&["volume", "create", "bad/name"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("invalid characters"), "{out}");
}

#[test]
fn a_new_volume_is_seeded_from_the_image_once() {
    let env = Env::with_busybox();
    let out = env.cli(&[
        "run",
        "--rm",
        "-v",
        "seeded:/etc",
        "busybox",
        "sh",
        "-c",
        "grep -c root: /etc/passwd; echo mine > /etc/mine",
    ]);
    assert_eq!(out.ok(), "1\n");
    let mp = volume_mountpoint(&env, "seeded");
    assert!(std::fs::read_to_string(mp.join("passwd"))
        .unwrap_or_default()
        .starts_with("root:x:0:0"));
    // Seeded once: what the last container did stays, nothing comes back.
    std::fs::remove_file(mp.join("group")).unwrap_or_else(|e| panic!("{e}"));
    let out = env.cli(&[
        "run",
        "--rm",
        "-v",
        "seeded:/etc",
        "busybox",
        "sh",
        "-c",
        "cat /etc/mine; test -e /etc/group && echo group-came-back; true",
    ]);
    assert_eq!(out.ok(), "mine\n");
    env.cli(&["volume", "rm", "seeded"]).ok();
}

#[test]
fn bind_mounts_write_to_the_host_and_ro_refuses_writes() {
    let env = Env::with_busybox();
    let host = env.root().join("bind");
    let h = host.display().to_string();
    // Missing host directory: created, as Docker does for -v.
    env.cli(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/mnt"),
        "busybox",
        "sh",
        "-c",
        "echo hi > /mnt/x",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("x")).unwrap_or_default(),
        "hi\n"
    );

    let out = env.cli(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/mnt:ro"),
        "busybox",
        "sh",
        "-c",
        "cat /mnt/x; echo no > /mnt/y",
    ]);
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(out.stdout, "hi\n", "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!host.join("y").exists());

    // --mount bind refuses a missing source.
    let out = env.cli(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={h}/missing,target=/mnt"),
        "busybox",
        "true",
    ]);
    assert_eq!(out.code, 125, "{out}");
    assert!(
        out.stderr.contains("bind source path does not exist"),
        "{out}"
    );

    let out = env.cli(&["run", "--rm", "-v", "relative/dir:/mnt", "busybox", "true"]);
    assert_eq!(out.code, 125, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn read_only_rootfs_allows_writes_only_to_tmpfs() {
    let env = Env::with_busybox();
    let out = env.cli(&[
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c",
        "echo x > /tmp/ok && echo tmp-ok; grep ' /tmp ' /proc/mounts | cut -d' ' -f3; echo y > /etc/nope",
    ]);
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(out.stdout, "tmp-ok\ntmpfs\n", "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");

    let out = env.cli(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/scratch,tmpfs-size=1m",
        "busybox",
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
    ]);
    assert_eq!(out.ok(), "tmpfs\n");
}

#[test]
fn volumes_from_shares_another_containers_volumes() {
    let env = Env::with_busybox();
    env.run_detached(&[
        "--name",
        "src",
        "-v",
        "shared:/shared",
        "busybox",
        "sh",
        "-c",
        "echo s > /shared/s; sleep 1000",
    ]);
    rdock_tests::wait_until(
        std::time::Duration::from_secs(20),
        "the file in the volume",
        || {
            env.cli(&["exec", "src", "test", "-e", "/shared/s"])
                .code
                .eq(&0)
                .then_some(())
        },
    );
    let out = env.cli(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "busybox",
        "cat",
        "/shared/s",
    ]);
    assert_eq!(out.ok(), "s\n");
    let out = env.cli(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /shared/t",
    ]);
    assert_ne!(out.code, 0, "{out}");
    env.cli(&["rm", "-f", "src"]).ok();
    env.cli(&["volume", "rm", "shared"]).ok();
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_prune() {
    let env = Env::with_busybox();
    let before = volume_names(&env);
    env.cli(&["run", "--name", "a1", "-v", "/anon", "busybox", "true"])
        .ok();
    let after: Vec<String> = volume_names(&env)
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect();
    assert_eq!(after.len(), 1, "one anonymous volume: {after:?}");
    assert_eq!(after[0].len(), 64, "{after:?}");
    env.cli(&["rm", "a1"]).ok();
    assert!(volume_names(&env).contains(&after[0]), "plain rm keeps it");
    let out = env.cli(&["volume", "prune", "-f"]);
    let text = out.ok().to_string();
    assert!(text.contains("Deleted Volumes:"), "{text}");
    assert!(text.contains(&after[0]), "{text}");
    assert!(text.contains("Total reclaimed space:"), "{text}");
    assert!(!volume_names(&env).contains(&after[0]));

    env.cli(&["run", "--name", "a2", "-v", "/anon", "busybox", "true"])
        .ok();
    let anon: Vec<String> = volume_names(&env)
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect();
    assert_eq!(anon.len(), 1, "{anon:?}");
    env.cli(&["rm", "-v", "a2"]).ok();
    assert!(!volume_names(&env).contains(&anon[0]), "rm -v removes it");

    env.cli(&["run", "--rm", "-v", "/anon", "busybox", "true"])
        .ok();
    assert_eq!(
        volume_names(&env),
        before,
        "run --rm removes its anonymous volumes"
    );
}
