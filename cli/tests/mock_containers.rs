//! The container commands of the real `rdockctl` binary against the mock
//! daemons: output on the right streams, Docker's tables and exit codes.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use std::time::Duration;

use common::{start, text, Env, MockContainer};

const WEB_ID: &str = "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
const OLD_ID: &str = "4f2a9d1c3b5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

/// An environment whose image is already there (no pull lines on stderr)
/// and which holds a running `web` and an exited `old` container.
async fn with_containers() -> Env {
    let env = start().await;
    env.images.seen.lock().unwrap().pulled = true;
    env.runtime.add(MockContainer::new(
        OLD_ID,
        "old",
        &["sh", "-c", "while true; do echo hi; sleep 1; done"],
        3 * 3600,
        "exited",
        "Exited (0) 2 hours ago",
    ));
    env.runtime.add(MockContainer::new(
        WEB_ID,
        "web",
        &["sleep", "100"],
        2 * 3600,
        "running",
        "Up 2 hours",
    ));
    env
}

const PULL_LINES: &str = "Unable to find image 'busybox:latest' locally\n\
    latest: Pulling from library/busybox\n\
    a1b2c3d4e5f6: Waiting\n\
    a1b2c3d4e5f6: Downloading 0B/3.4MB\n\
    a1b2c3d4e5f6: Verifying Checksum\n\
    a1b2c3d4e5f6: Extracting 0B/3.4MB\n\
    a1b2c3d4e5f6: Pull complete\n\
    Digest: sha256:d1d1\n\
    Status: Downloaded newer image for busybox:latest\n";

#[tokio::test(flavor = "multi_thread")]
async fn run_attached_streams_output_and_exits_with_the_containers_code() {
    let env = start().await;

    // The image is missing: Docker's line and the pull go to stderr, then
    // the container's own streams, each to its own side.
    let out = env
        .run(
            &["run", "--name", "t1", "busybox", "echo-both", "3"],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stdout), "out 1\nout 2\n");
    assert_eq!(text(&out.stderr), format!("{PULL_LINES}err 1\n"));
    assert_eq!(out.status.code(), Some(3));

    let out = env
        .run(
            &["container", "run", "busybox", "echo-both", "0"],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stdout), "out 1\nout 2\n");
    assert_eq!(text(&out.stderr), "err 1\n");
    assert_eq!(out.status.code(), Some(0));

    // -i: local stdin reaches the container, and its end closes it.
    let input = env.dir.path().join("input");
    std::fs::write(&input, "line one\nline two\n").unwrap();
    let out = env
        .run(&["run", "-i", "busybox", "cat"], Some(&input), &[])
        .await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "line one\nline two\n");
    assert_eq!(out.status.code(), Some(0));

    // The flags reach the request.
    let envfile = env.dir.path().join("env");
    std::fs::write(&envfile, "# comment\nFILE=1\n\nFROMCLI\n").unwrap();
    let out = env
        .run(
            &[
                "run",
                "--rm",
                "-e",
                "A=1",
                "-e",
                "FROMCLI",
                "-e",
                "UNSET_HERE",
                "--env-file",
                envfile.to_str().unwrap(),
                "-m",
                "1.5g",
                "--cpus",
                "0.5",
                "--pids-limit",
                "64",
                "--restart",
                "on-failure:3",
                "--entrypoint",
                "",
                "-w",
                "/tmp",
                "-u",
                "nobody",
                "-h",
                "box",
                "--init",
                "-l",
                "k=v",
                "--runtime",
                "crun",
                "busybox",
                "true",
                "-d",
            ],
            None,
            &[("FROMCLI", "x y")],
        )
        .await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    {
        let st = env.runtime.state.lock().unwrap();
        // Every attached run attached before it started.
        assert!(
            st.started_unattached.is_empty(),
            "{:?}",
            st.started_unattached
        );
        assert_eq!(st.created.len(), 4);
        assert_eq!(st.created[0].name, "t1");
        assert_eq!(st.created[0].image, "busybox");
        assert_eq!(st.created[0].cmd, ["echo-both", "3"]);
        assert!(st.created[2].open_stdin);
        let r = &st.created[3];
        assert_eq!(r.cmd, ["true", "-d"]);
        assert_eq!(r.env, ["FILE=1", "FROMCLI=x y", "A=1", "FROMCLI=x y"]);
        assert_eq!(r.memory, 1_610_612_736);
        assert_eq!(r.nano_cpus, 500_000_000);
        assert_eq!(r.pids_limit, 64);
        let restart = r.restart.as_ref().unwrap();
        assert_eq!(
            (restart.name.as_str(), restart.max_retries),
            ("on-failure", 3)
        );
        assert!(r.entrypoint_set && r.entrypoint.is_empty());
        assert_eq!(
            (r.workdir.as_str(), r.user.as_str(), r.hostname.as_str()),
            ("/tmp", "nobody", "box")
        );
        assert!(r.init && r.auto_remove && !r.tty && !r.open_stdin);
        assert_eq!(r.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(r.runtime, "crun");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_errors_are_one_line_with_dockers_codes() {
    let env = with_containers().await;

    // The daemon's rdock-exit-code decides.
    let out = env.run(&["run", "busybox", "nosuchcmd"], None, &[]).await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "rdockctl: exec: \"nosuchcmd\": executable file not found in $PATH\n"
    );
    let out = env
        .run(&["run", "-d", "busybox", "nosuchcmd"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr).lines().count(), 1);

    let out = env
        .run(&["run", "--name", "web", "busybox"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: the container name \"/web\" is already in use\n"
    );

    // Bad arguments: 125, and nothing reaches the daemon.
    let created_before = env.runtime.state.lock().unwrap().created.len();
    for (args, line) in [
        (
            &["run", "-m", "1x", "busybox"][..],
            "rdockctl: invalid argument \"1x\" for \"-m, --memory\" flag: invalid size: '1x'\n",
        ),
        (
            &["run", "--cpus", "abc", "busybox"],
            "rdockctl: invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number\n",
        ),
        (
            &["create", "--restart", "bogus", "busybox"],
            "rdockctl: invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'\n",
        ),
        (
            &["run", "--env-file", "/nonexistent/env", "busybox"],
            "rdockctl: open /nonexistent/env: No such file or directory (os error 2)\n",
        ),
    ] {
        let out = env.run(args, None, &[]).await;
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert_eq!(text(&out.stderr), line, "{args:?}");
        assert_eq!(text(&out.stdout), "");
    }
    assert_eq!(
        env.runtime.state.lock().unwrap().created.len(),
        created_before
    );

    // -it without a terminal on stdin: Docker's line and its exit code 1.
    let out = env.run(&["run", "-it", "busybox", "sh"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: the input device is not a TTY\n"
    );

    // An image that cannot be pulled.
    let out = env.run(&["run", "nope"], None, &[]).await;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "Unable to find image 'nope:latest' locally\nrdockctl: pull nope: manifest unknown\n"
    );

    // create succeeds; start carries the daemon's code.
    let out = env
        .run(
            &["create", "--name", "bad", "busybox", "nosuchcmd"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64);
    let out = env.run(&["start", "bad"], None, &[]).await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: exec: \"nosuchcmd\": executable file not found in $PATH\n"
    );
    let out = env.run(&["start", "-a", &id], None, &[]).await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stderr).lines().count(), 1);

    // A daemon that is down is an engine error too.
    let out = env
        .command_on("127.0.0.1:1", &["run", "busybox"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).starts_with("rdockctl: cannot reach rdock-"));
    assert_eq!(text(&out.stderr).lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_run_create_start_wait() {
    let env = with_containers().await;
    let out = env
        .run(
            &["run", "-d", "--name", "bg", "busybox", "sleep"],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    let id = text(&out.stdout);
    assert_eq!(id.len(), 65, "{id:?}");
    assert!(id.ends_with('\n'));
    let id = id.trim();
    assert!(env.runtime.is_running("bg"));

    let out = env.run(&["kill", "-s", "TERM", "bg"], None, &[]).await;
    assert_eq!(text(&out.stdout), "bg\n");
    let out = env.run(&["wait", "bg", &id[..12]], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "143\n143\n");

    // create prints the id; start prints its arguments as given.
    let out = env
        .run(&["create", "busybox", "echo-both", "4"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created = text(&out.stdout).trim().to_string();
    let out = env
        .run(&["create", "--name", "c2", "busybox"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env
        .run(&["start", &created[..12], "ghost", "c2"], None, &[])
        .await;
    assert_eq!(text(&out.stdout), format!("{}\nc2\n", &created[..12]));
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");
    assert_eq!(out.status.code(), Some(125));
    let out = env.run(&["wait", &created, "ghost"], None, &[]).await;
    assert_eq!(text(&out.stdout), "4\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");
    assert_eq!(out.status.code(), Some(1));

    // start -a: attached like run, ends with the container's code.
    let out = env
        .run(
            &["create", "--name", "c3", "busybox", "echo-both", "5"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["start", "-a", "c3"], None, &[]).await;
    assert_eq!(text(&out.stdout), "out 1\nout 2\n");
    assert_eq!(text(&out.stderr), "err 1\n");
    assert_eq!(out.status.code(), Some(5));
    let out = env.run(&["start", "-a", "c3", "c2"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: you cannot start and attach multiple containers at once\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ps_lists_like_docker() {
    let env = with_containers().await;
    let out = env.run(&["ps"], None, &[]).await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "CONTAINER ID   IMAGE     COMMAND       CREATED       STATUS       PORTS     NAMES\n\
         9b8a7c6d5e4f   busybox   \"sleep 100\"   2 hours ago   Up 2 hours             web\n"
    );
    let out = env.run(&["container", "ls", "-a"], None, &[]).await;
    assert_eq!(
        text(&out.stdout),
        "CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS                   PORTS     NAMES\n\
         9b8a7c6d5e4f   busybox   \"sleep 100\"              2 hours ago   Up 2 hours                         web\n\
         4f2a9d1c3b5e   busybox   \"sh -c while true; d…\"   3 hours ago   Exited (0) 2 hours ago             old\n"
    );
    let out = env.run(&["ps", "-aq"], None, &[]).await;
    assert_eq!(text(&out.stdout), "9b8a7c6d5e4f\n4f2a9d1c3b5e\n");
    let out = env
        .run(&["container", "ps", "-q", "--no-trunc"], None, &[])
        .await;
    assert_eq!(text(&out.stdout), format!("{WEB_ID}\n"));
    let out = env.run(&["ps", "--format", "json"], None, &[]).await;
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["ID"], "9b8a7c6d5e4f");
    assert_eq!(v["Names"], "web");
    assert_eq!(v["Command"], "\"sleep 100\"");
    assert_eq!(v["State"], "running");
    assert_eq!(v["Status"], "Up 2 hours");
    assert_eq!(v["Image"], "busybox");
    assert_eq!(v["Ports"], "");
    assert!(v["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"));
    let out = env
        .run(
            &["ps", "-a", "--format", "{{.Names}}: {{.Status}}"],
            None,
            &[],
        )
        .await;
    assert_eq!(
        text(&out.stdout),
        "web: Up 2 hours\nold: Exited (0) 2 hours ago\n"
    );
    let out = env.run(&["ps", "--format", "{{.Names"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: template parsing error"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_kill_rm_go_on_past_a_failure() {
    let env = with_containers().await;
    let out = env.run(&["stop", "ghost", "web"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "web\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");
    let out = env.run(&["stop", "-t", "3", "old"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "old\n");
    assert_eq!(
        env.runtime.state.lock().unwrap().stops,
        [("web".to_string(), -1), ("old".to_string(), 3)]
    );

    let out = env.run(&["kill", "web", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "rdockctl: container web is not running\nrdockctl: no such container: ghost\n"
    );

    env.runtime.add(MockContainer::new(
        "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12",
        "busy",
        &["sleep"],
        5,
        "running",
        "Up 5 seconds",
    ));
    let out = env.run(&["rm", "busy", "old"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "old\n");
    assert_eq!(
        text(&out.stderr),
        "rdockctl: cannot remove container \"/busy\": container is running: stop the container before removing or force remove\n"
    );
    let out = env.run(&["container", "rm", "-f", "busy"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "busy\n");
    assert_eq!(
        env.runtime.state.lock().unwrap().removed,
        [("old".to_string(), false), ("busy".to_string(), true)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_inspect_top() {
    let env = with_containers().await;

    // logs: raw bytes, each line to its stream.
    let out = env.run(&["logs", "web"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"hello\nbye");
    assert_eq!(out.stderr, b"warn \xff\n");
    let out = env
        .run(&["logs", "-t", "--tail", "2", "web"], None, &[])
        .await;
    assert_eq!(text(&out.stdout), "2026-11-27T18:00:03.123456789Z bye");
    assert_eq!(out.stderr, b"2026-11-27T18:00:02.123456789Z warn \xff\n");
    let out = env.run(&["logs", "-n", "0", "web"], None, &[]).await;
    assert_eq!((out.stdout.len(), out.stderr.len()), (0, 0));
    let out = env.run(&["logs", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");

    // inspect: containers first, then images, in one array; the daemon's
    // key order kept.
    let out = env.run(&["inspect", "web", "busybox"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "[\n    {{\n        \"Id\": \"{WEB_ID}\",\n        \"Name\": \"/web\",\n        \"State\": {{\n            \"Status\": \"running\",\n"
        )),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["NetworkSettings"]["IPAddress"], "10.88.0.2");
    assert_eq!(v[1]["Id"], common::BB_ID);
    let out = env
        .run(
            &[
                "inspect",
                "-f",
                "{{.State.Pid}} {{.State.Status}} {{.NetworkSettings.IPAddress}} {{json .Config.Cmd}}",
                "web",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(
        text(&out.stdout),
        "4242 running 10.88.0.2 [\"sleep\",\"100\"]\n"
    );
    let out = env.run(&["inspect", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "[]\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such object: ghost\n");
    let out = env
        .run(
            &["container", "inspect", "-f", "{{.Name}}", "busybox", "old"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "/old\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such container: busybox\n");
    let out = env
        .run(
            &["inspect", "--type", "image", "-f", "{{.Os}}", "busybox"],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stdout), "linux\n");

    // top: the daemon's titles and rows, Docker's top layout.
    let out = env.run(&["top", "web"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD\n\
         root                4242                4200                0                   18:00               ?                   00:00:00            sleep 100\n\
         root                4250                4242                0                   18:01               ?                   00:00:00            sh\n"
    );
    let out = env.run(&["container", "top", "old"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: container old is not running\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_goes_to_the_container() {
    let env = with_containers().await;
    let mut cmd = env.command(&["run", "--name", "sl", "busybox", "sleep"]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let mut waited = 0;
    while !env.runtime.is_running("sl") {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 500, "the container never started");
    }
    // Ctrl-C: forwarded, and the CLI stays until the container exits.
    let kill = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    kill("-INT");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(130));
    let kills = env.runtime.state.lock().unwrap().kills.clone();
    assert_eq!(kills.len(), 1);
    assert_eq!(kills[0].1, "INT");
}
