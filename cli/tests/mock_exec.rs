//! `exec`, `attach`, `start -a` and the detach keys, with the real
//! `rdockctl` binary against the mock daemons.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use std::time::Duration;

use common::{start, text, Env, MockContainer};

const WEB_ID: &str = "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
const OLD_ID: &str = "4f2a9d1c3b5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

async fn with_containers() -> Env {
    let env = start().await;
    env.images.seen.lock().unwrap().pulled = true;
    env.runtime.add(MockContainer::new(
        WEB_ID,
        "web",
        &["sleep", "100"],
        60,
        "running",
        "Up 1 minute",
    ));
    env.runtime.add(MockContainer::new(
        OLD_ID,
        "old",
        &["true"],
        60,
        "exited",
        "Exited (0) 1 minute ago",
    ));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_and_exits_with_the_process_code() {
    let env = with_containers().await;

    let out = env.run(&["exec", "web", "echo-both", "3"], None, &[]).await;
    assert_eq!(text(&out.stdout), "out 1\nout 2\n");
    assert_eq!(text(&out.stderr), "err 1\n");
    assert_eq!(out.status.code(), Some(3));

    let out = env
        .run(&["container", "exec", "web", "echo-both", "0"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));

    // Options stop at the container; the rest is the command.
    let envfile = env.dir.path().join("env");
    std::fs::write(&envfile, "FROM_FILE=1\n").unwrap();
    let out = env
        .run(
            &[
                "exec",
                "-e",
                "A=1",
                "-e",
                "FROMCLI",
                "--env-file",
                envfile.to_str().unwrap(),
                "-w",
                "/tmp",
                "-u",
                "1000:1000",
                "--privileged",
                "web",
                "env",
                "-e",
                "-d",
            ],
            None,
            &[("FROMCLI", "yes")],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "FROM_FILE=1\nA=1\nFROMCLI=yes\nworkdir=/tmp user=1000:1000 tty=false privileged=true\n"
    );
    {
        let st = env.runtime.state.lock().unwrap();
        let e = st.more.execs.last().unwrap();
        assert_eq!(e.id, "web");
        assert_eq!(e.cmd, ["env", "-e", "-d"]);
        assert!(!e.detach && !e.stdin && !e.tty && e.size.is_none());
    }

    // -i: local stdin reaches the process, and its end closes it.
    let input = env.dir.path().join("input");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    let out = env
        .run(&["exec", "-i", "web", "cat"], Some(&input), &[])
        .await;
    assert_eq!(text(&out.stdout), "one\ntwo\n");
    assert_eq!(out.status.code(), Some(0));
    {
        let st = env.runtime.state.lock().unwrap();
        assert_eq!(st.more.exec_stdin, b"one\ntwo\n");
        assert!(st.more.exec_stdin_closed);
        assert!(st.more.execs.last().unwrap().stdin);
    }

    // -d: started, nothing printed.
    let out = env
        .run(&["exec", "-d", "web", "sleep", "5"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    assert!(
        env.runtime
            .state
            .lock()
            .unwrap()
            .more
            .execs
            .last()
            .unwrap()
            .detach
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_errors_with_dockers_codes() {
    let env = with_containers().await;
    let not_found = "rdockctl: OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown\n";

    let out = env.run(&["exec", "web", "nosuch"], None, &[]).await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stderr), not_found);
    assert_eq!(text(&out.stdout), "");

    let out = env.run(&["exec", "web", "nosuch127"], None, &[]).await;
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("\"nosuch127\": executable file not found"));

    let out = env.run(&["exec", "web", "noperm"], None, &[]).await;
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: OCI runtime exec failed: exec failed: unable to start container process: exec: \"/etc\": permission denied: unknown\n"
    );

    // The container itself: Docker's exit code 1.
    let out = env.run(&["exec", "ghost", "true"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");
    let out = env.run(&["exec", "old", "true"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: container old is not running\n"
    );

    // -it without a terminal, and bad detach keys: refused before the
    // daemon hears of it.
    let before = env.runtime.state.lock().unwrap().more.execs.len();
    let out = env.run(&["exec", "-it", "web", "sh"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: the input device is not a TTY\n"
    );
    let out = env
        .run(&["exec", "--detach-keys", "ctrl-", "web", "sh"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: invalid detach keys (ctrl-) provided: unknown character: 'ctrl-'\n"
    );
    assert_eq!(env.runtime.state.lock().unwrap().more.execs.len(), before);

    // A command is required.
    let out = env.run(&["exec", "web"], None, &[]).await;
    assert_eq!(out.status.code(), Some(2));
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn detach_keys_end_a_tty_session_and_leave_the_container_running() {
    let env = with_containers().await;
    let out = env
        .run(
            &["create", "-t", "-i", "--name", "tt", "busybox", "cat"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // ctrl-p ctrl-q in the input: the bytes before it go in, the sequence
    // and what follows never do, stdin is not closed, the container runs
    // on, and `start -ai` exits 0 saying nothing.
    let input = env.dir.path().join("keys");
    std::fs::write(&input, b"hello\x10\x11after").unwrap();
    let out = env.run(&["start", "-ai", "tt"], Some(&input), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    wait_until("the detach", || {
        env.runtime
            .state
            .lock()
            .unwrap()
            .detached
            .contains(&"tt".to_string())
    })
    .await;
    {
        let st = env.runtime.state.lock().unwrap();
        assert_eq!(
            st.stdin_seen.get("tt").map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        assert!(!st.stdin_closed.contains(&"tt".to_string()));
    }
    assert!(env.runtime.is_running("tt"));

    // `attach` with a tty and stdin wants a terminal; without stdin it
    // streams until the container exits, with its code.
    let out = env.run(&["attach", "tt"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: the input device is not a TTY\n"
    );
    let mut cmd = env.command(&["attach", "--no-stdin", "tt"]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = env.run(&["kill", "-s", "TERM", "tt"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));

    // Other keys, one key too.
    let out = env
        .run(
            &["create", "-ti", "--name", "t2", "busybox", "cat"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&input, b"ab\x01xcd").unwrap();
    let out = env
        .run(
            &["start", "-ai", "--detach-keys", "ctrl-a,x", "t2"],
            Some(&input),
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_until("the detach", || {
        env.runtime
            .state
            .lock()
            .unwrap()
            .detached
            .contains(&"t2".to_string())
    })
    .await;
    assert_eq!(
        env.runtime
            .state
            .lock()
            .unwrap()
            .stdin_seen
            .get("t2")
            .map(Vec::as_slice),
        Some(&b"ab"[..])
    );

    // Without a tty, the keys are plain input (as Docker's).
    let out = env
        .run(
            &["create", "-i", "--name", "plain", "busybox", "cat"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&input, b"x\x10\x11y").unwrap();
    let out = env.run(&["start", "-ai", "plain"], Some(&input), &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"x\x10\x11y");
    assert!(env
        .runtime
        .state
        .lock()
        .unwrap()
        .stdin_closed
        .contains(&"plain".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn start_attach_and_attach_end_with_the_containers_code() {
    let env = with_containers().await;
    let out = env
        .run(
            &["create", "--name", "eb", "busybox", "echo-both", "4"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["start", "-a", "eb"], None, &[]).await;
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout), "out 1\nout 2\n");
    assert_eq!(text(&out.stderr), "err 1\n");

    // A tty container: its stderr comes on stdout.
    let out = env
        .run(
            &["create", "-t", "--name", "ebt", "busybox", "echo-both", "0"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["start", "-a", "ebt"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "out 1\nerr 1\nout 2\n");
    assert_eq!(text(&out.stderr), "");

    // attach: Docker's refusals.
    let out = env.run(&["attach", "old"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: cannot attach to a stopped container, start it first\n"
    );
    let out = env.run(&["attach", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");

    // attach to a running container without a tty: output until it exits,
    // and ctrl-c goes to it (--sig-proxy, the default).
    let out = env
        .run(
            &["run", "-d", "--name", "sl", "busybox", "sleep"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    let sl_id = text(&out.stdout).trim().to_string();
    let mut cmd = env.command(&["attach", "sl"]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let kills = env.runtime.state.lock().unwrap().kills.clone();
    assert_eq!(kills.last().unwrap(), &(sl_id, "INT".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_flags_for_tty_sessions() {
    let env = with_containers().await;
    // Bad detach keys: an engine error before anything is created.
    let out = env
        .run(
            &["run", "--detach-keys", "ctrl-P", "busybox", "true"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: invalid detach keys (ctrl-P) provided: unknown character: 'ctrl-P'\n"
    );
    assert!(env.runtime.state.lock().unwrap().created.is_empty());

    // -t without -i: a tty container, no terminal needed, output on stdout.
    let out = env
        .run(
            &[
                "run",
                "-t",
                "--sig-proxy=false",
                "busybox",
                "echo-both",
                "2",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "out 1\nerr 1\nout 2\n");
    let st = env.runtime.state.lock().unwrap();
    assert!(st.created[0].tty && !st.created[0].open_stdin);
}
