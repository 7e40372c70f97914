//! Files and volumes, seen as a user sees them when something is wrong or
//! not allowed: bad mount specs and failed creates leave no container and
//! no volume behind; `commit`, `exec`, `diff`, `cp`, `export` fail with one
//! line and Docker's exit codes; `cp` reaches volumes of stopped containers
//! and refuses read-only places with Docker's messages; `rm -v` keeps what
//! another container still uses; and a viewer certificate may read but
//! change nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdock_tests::{wait_until, Daemon, Env, Output};

const T: Duration = Duration::from_secs(20);

/// The names `volume ls -q` lists, sorted.
fn volume_names(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .cli(&["volume", "ls", "-q"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The volume directories on the runtime daemon's disk, sorted.
fn volume_dirs(env: &Env) -> Vec<String> {
    let dir = env.state_dir(Daemon::Runtimed).join("volumes");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Where volume `name` keeps its data on the host.
fn volume_mountpoint(env: &Env, name: &str) -> PathBuf {
    let out = env.cli(&["volume", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(out.ok())
        .unwrap_or_else(|e| panic!("`volume inspect {name}` is not JSON: {e}\n{out}"));
    PathBuf::from(
        v[0]["Mountpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("no Mountpoint: {v:#}")),
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// What a failed command must leave as it was: the containers and all they
/// have on the host, and the volumes (listed and on disk).
struct Before {
    containers: Vec<String>,
    volumes: Vec<String>,
    volume_dirs: Vec<String>,
}

impl Before {
    fn take(env: &Env) -> Before {
        Before {
            containers: env.container_footprint(),
            volumes: volume_names(env),
            volume_dirs: volume_dirs(env),
        }
    }

    #[track_caller]
    fn assert_unchanged(&self, env: &Env, what: &str) {
        env.assert_footprint(&self.containers);
        assert_eq!(
            volume_names(env),
            self.volumes,
            "`volume ls` changed after {what}"
        );
        assert_eq!(
            volume_dirs(env),
            self.volume_dirs,
            "volume directories changed after {what}"
        );
    }
}

/// Checks that `out` failed with `code`, printed nothing on stdout and
/// exactly one `rdockctl: ` line on stderr containing each of `words`
/// (case-insensitive); returns that line.
#[track_caller]
fn one_line_error(out: &Output, code: i32, words: &[&str]) -> String {
    println!("  exit {}: {}", out.code, out.stderr.trim_end());
    assert_eq!(out.code, code, "{out}");
    assert_eq!(out.stdout, "", "nothing on stdout:\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr:\n{out}");
    assert!(
        lines[0].starts_with("rdockctl: "),
        "the error line starts with `rdockctl: `:\n{out}"
    );
    let line = lines[0].to_lowercase();
    for w in words {
        assert!(
            line.contains(&w.to_lowercase()),
            "the error must mention {w:?}:\n{out}"
        );
    }
    lines[0].to_string()
}

/// Runs `rdockctl ARGS` (admin), expects [`one_line_error`] and that
/// nothing changed (see [`Before`]).
#[track_caller]
fn assert_fails(env: &Env, args: &[&str], code: i32, words: &[&str]) -> String {
    let before = Before::take(env);
    println!("rdockctl {}", args.join(" "));
    let out = env.cli(args);
    let line = one_line_error(&out, code, words);
    before.assert_unchanged(env, &format!("`rdockctl {}`", args.join(" ")));
    line
}

/// Starts `name` running `script` in the background, then `sleep`, and
/// waits until the script is done (it touches /tmp/.ready, removed again).
fn running_with_changes(env: &Env, name: &str, flags: &[&str], script: &str) {
    let mut args = vec!["--name", name];
    args.extend_from_slice(flags);
    let script = format!("{script}; touch /tmp/.ready; sleep 1000");
    args.extend(["busybox", "sh", "-c", &script]);
    env.run_detached(&args);
    wait_until(T, "the container's changes", || {
        env.cli(&["exec", name, "test", "-e", "/tmp/.ready"])
            .code
            .eq(&0)
            .then_some(())
    });
    env.cli(&["exec", name, "rm", "/tmp/.ready"]).ok();
}

#[test]
fn bad_mount_specs_exit_125_with_one_line_and_leave_nothing() {
    let env = Env::with_busybox();
    // Something already there, which must stay as it is.
    env.cli(&["volume", "create", "existing"]).ok();
    env.cli(&[
        "create",
        "--name",
        "bystander",
        "-v",
        "/anon",
        "busybox",
        "true",
    ])
    .ok();
    let missing = env.root().join("no-such-dir");
    let missing_bind = format!("type=bind,source={},target=/x", missing.display());
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["-v", ":/x"],
            vec!["invalid spec: :/x", "empty section between colons"],
        ),
        (
            vec!["-v", "/a:relative"],
            vec![
                "invalid volume specification: '/a:relative'",
                "'relative' mount path must be absolute",
            ],
        ),
        (
            vec!["-v", "/x:/"],
            vec![
                "invalid volume specification: '/x:/'",
                "destination can't be '/'",
            ],
        ),
        (vec!["-v", "/a:/b:bogus"], vec!["invalid mode: bogus"]),
        (
            vec!["-v", "bad!name:/x"],
            vec!["bad!name", "includes invalid characters"],
        ),
        (
            vec!["--mount", "type=foo,target=/x"],
            vec![
                "invalid mount config for type \"foo\"",
                "mount type unknown",
            ],
        ),
        (
            vec!["--mount", "type=volume,source=newvol"],
            vec!["--mount", "target is required"],
        ),
        (
            vec![
                "-v",
                "newvol:/data",
                "-v",
                "/anon",
                "--mount",
                &missing_bind,
            ],
            vec![
                "bind source path does not exist",
                missing.to_str().unwrap_or_default(),
            ],
        ),
        // A volume the spec names is made only when every mount is good.
        (
            vec!["-v", "newvol:/data", "-v", "/dup", "-v", "other:/dup"],
            vec!["duplicate mount point", "/dup"],
        ),
        (
            vec![
                "-v",
                "newvol:/data",
                "-v",
                "/anon",
                "--volumes-from",
                "nosuch",
            ],
            vec!["no such container", "nosuch"],
        ),
        (
            vec!["--volumes-from", "bystander:bogus"],
            vec!["invalid mode: bogus"],
        ),
        (
            vec!["-v", "newvol:/data", "--tmpfs", "/t:bogus"],
            vec!["tmpfs", "bogus"],
        ),
        (vec!["--tmpfs", "/t:size=abc"], vec!["tmpfs", "abc"]),
        (
            vec!["--tmpfs", "relative"],
            vec!["tmpfs", "'relative' mount path must be absolute"],
        ),
    ];
    for (flags, words) in &cases {
        for cmd in [&["run", "--rm"][..], &["create"], &["run", "-d"]] {
            let mut args = cmd.to_vec();
            args.extend_from_slice(flags);
            args.extend(["busybox", "true"]);
            assert_fails(&env, &args, 125, words);
        }
    }
    let mut names = volume_names(&env);
    names.retain(|n| n != "existing");
    assert_eq!(names.len(), 1, "only the bystander's volume: {names:?}");
    assert_eq!(env.containers().len(), 1, "only the bystander");
}

#[test]
fn a_failed_create_removes_the_volumes_it_made_and_keeps_the_others() {
    let env = Env::with_busybox();
    env.cli(&["volume", "create", "keep"]).ok();
    env.cli(&[
        "run",
        "--rm",
        "-v",
        "keep:/k",
        "busybox",
        "sh",
        "-c",
        "echo kept > /k/data",
    ])
    .ok();
    // An owner whose anonymous volume the failing containers inherit.
    env.cli(&[
        "run",
        "--name",
        "owner",
        "-v",
        "/held",
        "busybox",
        "sh",
        "-c",
        "echo held > /held/data",
    ])
    .ok();
    env.run_detached(&["--name", "web", "busybox", "sleep", "1000"]);
    let held = volume_names(&env)
        .into_iter()
        .find(|n| n != "keep")
        .unwrap_or_else(|| panic!("no anonymous volume for the owner"));
    let keep_mp = volume_mountpoint(&env, "keep");
    let held_mp = volume_mountpoint(&env, &held);

    // Each fails after its mounts were checked and its volumes made: the
    // new ones (`fresh`, the anonymous one) go, `keep` and the inherited
    // volume stay with their data.
    let vols = [
        "-v",
        "keep:/k",
        "-v",
        "fresh:/f",
        "-v",
        "/anon",
        "--volumes-from",
        "owner",
    ];
    let with = |extra: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
        let mut a = vec!["run"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&vols);
        a.push("busybox");
        a.extend_from_slice(tail);
        a
    };
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            with(&["--name", "web"], &["true"]),
            125,
            vec!["\"/web\"", "already in use"],
        ),
        (
            with(&["--entrypoint", ""], &[]),
            125,
            vec!["no command specified"],
        ),
        (
            with(&["--network-alias", "al"], &["true"]),
            125,
            vec!["network-scoped alias"],
        ),
        (
            with(&["-u", "nosuchuser"], &["true"]),
            125,
            vec!["unable to find user nosuchuser"],
        ),
        // A `run` whose command cannot start leaves no container (see
        // container_bad_input.rs), so neither the volumes made for it.
        (with(&[], &["nosuchcmd"]), 127, vec!["nosuchcmd"]),
        (with(&["-d"], &["nosuchcmd"]), 127, vec!["nosuchcmd"]),
        (with(&["-d"], &["/tmp"]), 126, vec!["/tmp"]),
    ];
    for (args, code, words) in &cases {
        assert_fails(&env, args, *code, words);
        assert_eq!(read(&keep_mp.join("data")), "kept\n");
        assert_eq!(read(&held_mp.join("data")), "held\n");
    }
    let names = volume_names(&env);
    let mut want = vec!["keep".to_string(), held];
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn commit_with_a_bad_reference_or_change_fails_and_makes_no_image() {
    let env = Env::with_busybox();
    running_with_changes(&env, "ctr", &[], "echo new > /tmp/added");
    let diff = env.cli(&["diff", "ctr"]).ok().to_string();
    assert!(diff.contains("A /tmp/added"), "{diff}");
    let images = env.images();
    let blobs = env.imaged_state().blobs();
    let snapshots = env.imaged_state().snapshots();

    for (args, words) in [
        (
            vec!["commit", "ctr", "UPPER:bad"],
            vec!["invalid reference format", "must be lowercase"],
        ),
        (
            vec!["commit", "ctr", "repo:bad tag"],
            vec!["invalid reference format"],
        ),
        (
            vec!["commit", "ctr", "repo@@x"],
            vec!["invalid reference format"],
        ),
        (
            vec!["commit", "-c", "FROM x", "ctr", "good:v1"],
            vec!["from", "change"],
        ),
        (
            vec!["commit", "-c", "RUN echo hi", "ctr", "good:v1"],
            vec!["run", "change"],
        ),
    ] {
        assert_fails(&env, &args, 1, &words);
        assert_eq!(env.images(), images, "`images` changed after {args:?}");
        assert_eq!(env.imaged_state().blobs(), blobs, "blobs left by {args:?}");
        assert_eq!(
            env.imaged_state().snapshots(),
            snapshots,
            "snapshots left by {args:?}"
        );
        assert!(env.imaged_state().ingest_files().is_empty());
        assert_eq!(env.cli(&["diff", "ctr"]).ok(), diff);
        assert_eq!(env.container_row("ctr").state, "running");
    }
}

#[test]
fn commands_on_an_unknown_container_fail_with_one_line() {
    let env = Env::with_busybox();
    let host = env.root().join("host");
    std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
    let file = host.join("f.txt");
    std::fs::write(&file, "x\n").unwrap_or_else(|e| panic!("{e}"));
    let file = file.display().to_string();
    let out_tar = host.join("out.tar").display().to_string();
    let copied = host.join("copied").display().to_string();
    for args in [
        vec!["exec", "nosuch", "true"],
        vec!["exec", "-i", "nosuch", "sh"],
        vec!["diff", "nosuch"],
        vec!["commit", "nosuch", "img:v1"],
        vec!["cp", "nosuch:/etc/passwd", &copied],
        vec!["cp", &file, "nosuch:/tmp/"],
        vec!["export", "-o", &out_tar, "nosuch"],
    ] {
        assert_fails(&env, &args, 1, &["no such container", "nosuch"]);
    }
    let left: Vec<String> = std::fs::read_dir(&host)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(left, ["f.txt"], "a failed command wrote to the host");
    assert_eq!(env.images().len(), 1, "{:?}", env.images());
}

#[test]
fn cp_to_a_directory_that_does_not_exist_gives_dockers_messages() {
    let env = Env::with_busybox();
    running_with_changes(&env, "ctr", &[], "true");
    let host = env.root().join("host");
    std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("f.txt"), "x\n").unwrap_or_else(|e| panic!("{e}"));
    let h = |p: &str| host.join(p).display().to_string();
    let diff = env.cli(&["diff", "ctr"]).ok().to_string();

    // On the host: the parent must exist; a trailing `/` asserts a
    // directory.
    let missing = host.join("no/such");
    assert_fails(
        &env,
        &["cp", "ctr:/etc/passwd", &h("no/such/x")],
        1,
        &[&format!(
            "invalid output path: directory \"{}\" does not exist",
            missing.display()
        )],
    );
    assert_fails(
        &env,
        &["cp", "ctr:/etc/passwd", &h("nodir/")],
        1,
        &["no such directory"],
    );
    assert!(!host.join("no").exists() && !host.join("nodir").exists());

    // In the container: the daemon cannot find the directory to extract
    // into; a trailing `/` asserts one.
    assert_fails(
        &env,
        &["cp", &h("f.txt"), "ctr:/no/such/x"],
        1,
        &["Could not find the file /no/such in container ctr"],
    );
    assert_fails(
        &env,
        &["cp", &h("f.txt"), "ctr:/nodir/"],
        1,
        &["no such directory"],
    );
    // A source that is not there, on either side.
    assert_fails(
        &env,
        &["cp", &h("nosuch.txt"), "ctr:/tmp/"],
        1,
        &[&format!(
            "lstat {}: no such file or directory",
            h("nosuch.txt")
        )],
    );
    assert_fails(
        &env,
        &["cp", "ctr:/no/such/file", &h("x")],
        1,
        &["Could not find the file /no/such/file in container ctr"],
    );
    assert_eq!(
        env.cli(&["diff", "ctr"]).ok(),
        diff,
        "cp changed the container"
    );
    assert!(!host.join("x").exists());
}

#[test]
fn volume_create_refuses_invalid_names() {
    let env = Env::new();
    env.cli(&["volume", "create", "fine-name_1.0"]).ok();
    for name in ["bad name", "bad:name", "bad/name", "_under", ".dot", "bad!"] {
        assert_fails(
            &env,
            &["volume", "create", name],
            1,
            &[
                &format!("\"{name}\" includes invalid characters for a local volume name"),
                "[a-zA-Z0-9][a-zA-Z0-9_.-]",
            ],
        );
    }
    assert_fails(
        &env,
        &["volume", "create", "a"],
        1,
        &["volume name is too short"],
    );
    assert_eq!(volume_names(&env), ["fine-name_1.0"]);
}

#[test]
fn cp_reaches_the_volumes_of_a_stopped_container() {
    let env = Env::with_busybox();
    let host = env.root().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("in.txt"), "into the volume\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("tree/sub/deep.txt"), "deep\n").unwrap_or_else(|e| panic!("{e}"));
    let h = |p: &str| host.join(p).display().to_string();

    // Never started, and started then exited: both are stopped.
    env.cli(&[
        "create",
        "--name",
        "created",
        "-v",
        "data:/data",
        "-v",
        "/anon",
        "busybox",
        "true",
    ])
    .ok();
    env.cli(&[
        "run",
        "--name",
        "exited",
        "-v",
        "other:/other",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(env.container_row("created").state, "created");
    assert_eq!(env.container_row("exited").state, "exited");

    env.cli(&["cp", &h("in.txt"), "created:/data/"]).ok();
    env.cli(&["cp", &h("tree"), "created:/data/tree"]).ok();
    env.cli(&["cp", &h("in.txt"), "created:/anon/renamed.txt"])
        .ok();
    env.cli(&["cp", &h("in.txt"), "exited:/other/"]).ok();

    // The data is in the volumes, on the host and for the next container;
    // the containers' own filesystems did not get it.
    let data = volume_mountpoint(&env, "data");
    assert_eq!(read(&data.join("in.txt")), "into the volume\n");
    assert_eq!(read(&data.join("tree/sub/deep.txt")), "deep\n");
    assert_eq!(
        read(&volume_mountpoint(&env, "other").join("in.txt")),
        "into the volume\n"
    );
    let out = env.cli(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "-v",
        "other:/o",
        "busybox",
        "cat",
        "/d/in.txt",
        "/d/tree/sub/deep.txt",
        "/o/in.txt",
    ]);
    assert_eq!(out.ok(), "into the volume\ndeep\ninto the volume\n");
    let out = env.cli(&[
        "run",
        "--rm",
        "--volumes-from",
        "created",
        "busybox",
        "cat",
        "/anon/renamed.txt",
    ]);
    assert_eq!(out.ok(), "into the volume\n");
    for ctr in ["created", "exited"] {
        let diff = env.cli(&["diff", ctr]).ok().to_string();
        assert!(
            !diff.contains("in.txt") && !diff.contains("renamed") && !diff.contains("tree"),
            "the copy went into {ctr}'s own filesystem:\n{diff}"
        );
    }

    // And out again: what another container wrote to the volume.
    env.cli(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo from-a-container > /d/out.txt",
    ])
    .ok();
    env.cli(&["cp", "created:/data/out.txt", &h("out.txt")])
        .ok();
    assert_eq!(read(&host.join("out.txt")), "from-a-container\n");
    env.cli(&["cp", "created:/data", &h("datacopy")]).ok();
    assert_eq!(read(&host.join("datacopy/in.txt")), "into the volume\n");
    assert_eq!(read(&host.join("datacopy/tree/sub/deep.txt")), "deep\n");
    assert_eq!(read(&host.join("datacopy/out.txt")), "from-a-container\n");
    env.cli(&["cp", "exited:/other/in.txt", &h("from-exited.txt")])
        .ok();
    assert_eq!(read(&host.join("from-exited.txt")), "into the volume\n");
    // Stopped they stay.
    assert_eq!(env.container_row("created").state, "created");
    assert_eq!(env.container_row("exited").state, "exited");
}

#[test]
fn cp_into_read_only_places_is_refused() {
    let env = Env::with_busybox();
    let host = env.root().join("host");
    let ro = env.root().join("ro");
    std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&ro).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("f.txt"), "x\n").unwrap_or_else(|e| panic!("{e}"));
    let f = host.join("f.txt").display().to_string();
    let ro_bind = format!("{}:/ro:ro", ro.display());
    env.cli(&["volume", "create", "rovol"]).ok();
    let mounts = [
        "--read-only",
        "-v",
        ro_bind.as_str(),
        "-v",
        "rovol:/rov:ro",
        "-v",
        "rwvol:/rw",
    ];
    let mut create = vec!["create", "--name", "stopped"];
    create.extend_from_slice(&mounts);
    create.extend(["busybox", "true"]);
    env.cli(&create).ok();
    // Its root filesystem is read-only: started and left running.
    let mut run = vec!["--name", "running"];
    run.extend_from_slice(&mounts);
    run.extend(["busybox", "sleep", "1000"]);
    env.run_detached(&run);
    env.wait_for_status("running", "running", T);

    for ctr in ["stopped", "running"] {
        for (dst, words) in [
            ("/ro/", "mounted volume is marked read-only"),
            ("/ro/new.txt", "mounted volume is marked read-only"),
            ("/rov/", "mounted volume is marked read-only"),
            ("/tmp/", "container rootfs is marked read-only"),
            ("/etc/f.txt", "container rootfs is marked read-only"),
        ] {
            assert_fails(&env, &["cp", &f, &format!("{ctr}:{dst}")], 1, &[words]);
        }
    }
    let in_ro: Vec<_> = std::fs::read_dir(&ro)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(in_ro.is_empty(), "the :ro bind got {in_ro:?}");
    let rov = volume_mountpoint(&env, "rovol");
    assert!(!rov.join("f.txt").exists(), "the :ro volume got the file");
    let out = env.cli(&[
        "exec",
        "running",
        "sh",
        "-c",
        "ls /tmp /etc | grep -c f.txt",
    ]);
    assert_eq!(out.stdout, "0\n", "{out}");

    // A writable volume of a read-only container takes the copy, as
    // Docker's does.
    env.cli(&["cp", &f, "stopped:/rw/"]).ok();
    assert_eq!(read(&volume_mountpoint(&env, "rwvol").join("f.txt")), "x\n");
    env.cli(&["cp", &f, "running:/rw/again.txt"]).ok();
    assert_eq!(
        env.cli(&["exec", "running", "cat", "/rw/f.txt", "/rw/again.txt"])
            .ok(),
        "x\nx\n"
    );
}

#[test]
fn rm_v_of_an_heir_keeps_the_volumes_of_their_owner() {
    let env = Env::with_busybox();
    let before = volume_names(&env);
    // Each run prints what the last one left, then leaves its mark.
    env.cli(&[
        "run",
        "--name",
        "owner",
        "-v",
        "/own",
        "-v",
        "ownnamed:/named",
        "busybox",
        "sh",
        "-c",
        "cat /own/mark /named/mark 2>/dev/null; echo owner > /own/mark; echo owner > /named/mark",
    ])
    .ok();
    let anon: Vec<String> = volume_names(&env)
        .into_iter()
        .filter(|n| !before.contains(n) && n != "ownnamed")
        .collect();
    assert_eq!(anon.len(), 1, "one anonymous volume: {anon:?}");
    let anon = anon[0].clone();
    let anon_mp = volume_mountpoint(&env, &anon);

    let out = env.cli(&[
        "run",
        "--name",
        "heir",
        "--volumes-from",
        "owner",
        "busybox",
        "sh",
        "-c",
        "cat /own/mark /named/mark; echo heir > /own/mark",
    ]);
    assert_eq!(out.ok(), "owner\nowner\n");
    // See rm_v_right_after_an_attached_run_removes_it for `rm` at once.
    env.wait_for_status("heir", "exited", T);
    let volumes = volume_names(&env);
    assert_eq!(env.cli(&["rm", "-v", "heir"]).ok(), "heir\n");
    assert_eq!(
        volume_names(&env),
        volumes,
        "rm -v of the heir removed a volume of its owner"
    );
    assert_eq!(read(&anon_mp.join("mark")), "heir\n");

    // The owner runs again with its volumes as the heir left them.
    env.cli(&["start", "owner"]).ok();
    assert_eq!(env.cli(&["wait", "owner"]).ok(), "0\n");
    assert_eq!(env.cli(&["logs", "owner"]).ok(), "heir\nowner\n");

    // The owner's own rm -v takes its anonymous volume, not the named one.
    assert_eq!(env.cli(&["rm", "-v", "owner"]).ok(), "owner\n");
    let after = volume_names(&env);
    assert!(!after.contains(&anon), "rm -v of the owner kept {anon}");
    assert!(after.contains(&"ownnamed".to_string()), "{after:?}");
    assert!(!anon_mp.exists());
}

#[test]
fn an_inherited_anonymous_volume_goes_with_the_last_rm_v() {
    let env = Env::with_busybox();
    let before = volume_names(&env);
    env.cli(&["create", "--name", "owner", "-v", "/own", "busybox", "true"])
        .ok();
    env.cli(&[
        "run",
        "--name",
        "heir",
        "--volumes-from",
        "owner",
        "busybox",
        "sh",
        "-c",
        "echo kept > /own/mark",
    ])
    .ok();
    env.wait_for_status("heir", "exited", T);
    let anon: Vec<String> = volume_names(&env)
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(anon.len(), 1, "one anonymous volume: {anon:?}");

    // The owner goes first: the heir still uses the volume, so it stays
    // (Docker ignores the "in use" refusal).
    assert_eq!(env.cli(&["rm", "-v", "owner"]).ok(), "owner\n");
    assert!(volume_names(&env).contains(&anon[0]));
    let out = env.cli(&[
        "run",
        "--rm",
        "--volumes-from",
        "heir",
        "busybox",
        "cat",
        "/own/mark",
    ]);
    assert_eq!(out.ok(), "kept\n");

    // The last container using it goes with -v: so does the anonymous
    // volume, as Docker's `rm -v` removes every anonymous volume of the
    // container that no other container uses, inherited ones too.
    assert_eq!(env.cli(&["rm", "-v", "heir"]).ok(), "heir\n");
    assert_eq!(
        volume_names(&env),
        before,
        "an anonymous volume no container uses was left after the last rm -v"
    );
}

#[test]
fn rm_v_right_after_an_attached_run_removes_it() {
    let env = Env::with_busybox();
    let before = volume_names(&env);
    // An attached `run` returns once the container exited, as the engine
    // records it (Docker's CLI waits for the daemon's "next-exit"): a
    // script's `rm -v` right after it finds the container stopped.
    for i in 0..10 {
        let name = format!("once{i}");
        let out = env.cli(&["run", "--name", &name, "-v", "/anon", "busybox", "true"]);
        assert_eq!(out.ok(), "");
        let rm = env.cli(&["rm", "-v", &name]);
        assert_eq!(
            rm.code, 0,
            "`rm -v` right after `run` returned (round {i}):\n{rm}"
        );
        assert_eq!(rm.stdout, format!("{name}\n"));
        assert_eq!(
            volume_names(&env),
            before,
            "rm -v left the anonymous volume"
        );
    }
    env.assert_no_containers();
}

/// Runs `rdockctl ARGS` with the viewer certificate and checks the refusal:
/// exit 1, one line, PERMISSION_DENIED naming the caller and one of `calls`.
#[track_caller]
fn assert_viewer_refused(env: &Env, args: &[&str], calls: &[&str]) {
    println!("[viewer] rdockctl {}", args.join(" "));
    let out = env.cli_as("viewer", args);
    let line = one_line_error(&out, 1, &["permission denied", "viewer"]).to_lowercase();
    assert!(
        calls.iter().any(|c| line.contains(&c.to_lowercase())),
        "the refusal must name the call ({calls:?}):\n{out}"
    );
}

#[test]
fn a_viewer_reads_files_and_volumes_but_changes_nothing() {
    let env = Env::with_busybox();
    env.cli(&["network", "create", "n1"]).ok();
    env.cli(&["volume", "create", "vv"]).ok();
    // A dangling anonymous volume, for prune.
    env.cli(&[
        "create",
        "--name",
        "gone",
        "-v",
        "/dangling",
        "busybox",
        "true",
    ])
    .ok();
    env.cli(&["rm", "gone"]).ok();
    running_with_changes(&env, "ctr", &["-v", "vv:/vv"], "echo x > /tmp/changed");
    let host = env.root().join("host");
    std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("f.txt"), "x\n").unwrap_or_else(|e| panic!("{e}"));
    let h = |p: &str| host.join(p).display().to_string();

    // Reading is allowed, and shows what the admin sees.
    for args in [
        vec!["diff", "ctr"],
        vec!["volume", "ls"],
        vec!["volume", "ls", "-q"],
        vec!["volume", "inspect", "vv"],
        // Raw dates: "1 second ago" could turn into "2 seconds ago"
        // between the two calls.
        vec!["history", "--human=false", "busybox"],
        vec!["history", "--no-trunc", "--human=false", "busybox"],
    ] {
        let viewer = env.cli_as("viewer", &args);
        let admin = env.cli(&args);
        assert_eq!(
            viewer.ok(),
            admin.ok(),
            "a viewer's `{}` differs from the admin's",
            args.join(" ")
        );
    }
    assert!(env
        .cli_as("viewer", &["diff", "ctr"])
        .ok()
        .contains("A /tmp/changed"));

    let diff = env.cli(&["diff", "ctr"]).ok().to_string();
    let images = env.images();
    let volumes = volume_names(&env);
    let vv_inspect = env.cli(&["volume", "inspect", "vv"]).ok().to_string();
    let networks = env.network_footprint();
    let ctr_networks = env.inspect_container("ctr")["NetworkSettings"]["Networks"].clone();
    let containers = env.container_footprint();

    let file = h("f.txt");
    let export = h("export.tar");
    let copied = h("copied");
    let refused: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["exec", "ctr", "touch", "/tmp/by-viewer"], vec!["Exec"]),
        (vec!["commit", "ctr", "viewer:v1"], vec!["Commit"]),
        (vec!["cp", &file, "ctr:/tmp/"], vec!["StatPath", "CopyTo"]),
        (
            vec!["cp", "ctr:/etc/passwd", &copied],
            vec!["CopyFrom", "StatPath"],
        ),
        (vec!["export", "-o", &export, "ctr"], vec!["Export"]),
        (vec!["volume", "create", "vw"], vec!["CreateVolume"]),
        (vec!["volume", "rm", "vv"], vec!["RemoveVolume"]),
        (vec!["volume", "rm", "-f", "vv"], vec!["RemoveVolume"]),
        (vec!["volume", "prune", "-f"], vec!["PruneVolumes"]),
        (
            vec!["network", "connect", "n1", "ctr"],
            vec!["ConnectNetwork"],
        ),
        (
            vec!["network", "disconnect", "bridge", "ctr"],
            vec!["DisconnectNetwork"],
        ),
    ];
    for (args, calls) in &refused {
        assert_viewer_refused(&env, args, calls);
    }

    assert_eq!(
        env.cli(&["diff", "ctr"]).ok(),
        diff,
        "the container changed"
    );
    assert_eq!(env.images(), images, "the images changed");
    assert_eq!(volume_names(&env), volumes, "the volumes changed");
    assert_eq!(env.cli(&["volume", "inspect", "vv"]).ok(), vv_inspect);
    env.assert_network_footprint(&networks);
    assert_eq!(
        env.inspect_container("ctr")["NetworkSettings"]["Networks"],
        ctr_networks,
        "the container's networks changed"
    );
    env.assert_footprint(&containers);
    assert!(
        !Path::new(&export).exists(),
        "a refused export wrote a file"
    );
    assert!(!Path::new(&copied).exists(), "a refused cp wrote a file");
    let out = env.cli(&["exec", "ctr", "ls", "/tmp"]);
    assert_eq!(out.ok(), "changed\n", "{out}");

    env.cli(&["rm", "-f", "ctr"]).ok();
    env.cli(&["network", "rm", "n1"]).ok();
}
