//! Interactive containers driven through a real pseudo-terminal, as a user
//! at a terminal: `run -it`, window resizes, Docker's detach keys and
//! `attach` again (also after the runtime daemon restarted), `start -ai`;
//! and `exec` beside a running PID 1, with and without a terminal.

use std::time::Duration;

use rdock_tests::pty::DETACH_KEYS;
use rdock_tests::{wait_until, Daemon, Env, PtySession};

const T: Duration = Duration::from_secs(20);

/// Types `stty size` until the shell reports `rows cols` (a resize reaches
/// the container's terminal a moment after the local window changed).
#[track_caller]
fn wait_for_size(t: &mut PtySession, rows: u16, cols: u16) {
    let want = format!("{rows} {cols}\r\n");
    let mut tries = 0;
    loop {
        let before = t.screen().len();
        t.send_line("stty size");
        std::thread::sleep(Duration::from_millis(300));
        if t.screen()[before..].contains(&want) {
            t.expect(&want, T);
            return;
        }
        tries += 1;
        assert!(
            tries < 30,
            "the container's terminal never became {rows}x{cols}:\n{}",
            t.screen()
        );
    }
}

#[test]
fn run_it_shell_answers_resizes_detaches_and_attach_comes_back() {
    let env = Env::with_busybox();
    let mut t = env.cli_pty(&["run", "-it", "--name", "box", "busybox", "sh"], 24, 80);
    t.expect("# ", T);
    t.send_line("echo $((6*7))");
    t.expect("42\r\n", T);
    wait_for_size(&mut t, 24, 80);
    t.resize(40, 120);
    wait_for_size(&mut t, 40, 120);

    // Ctrl-P Ctrl-Q: the CLI goes, the container stays.
    t.send(DETACH_KEYS);
    let status = t.wait(T);
    assert!(status.success(), "detach must exit 0: {status:?}");
    assert_eq!(
        t.line_discipline(),
        (true, true),
        "the terminal must be back in cooked mode with echo after a detach"
    );
    assert_eq!(env.container_row("box").state, "running");

    let mut again = env.cli_pty(&["attach", "box"], 30, 90);
    again.send_line("echo back-$((1+1))");
    again.expect("back-2\r\n", T);
    wait_for_size(&mut again, 30, 90);
    again.send_line("exit 7");
    let status = again.wait(T);
    assert_eq!(
        status.code(),
        Some(7),
        "attach exits with the container's code"
    );
    assert_eq!(again.line_discipline(), (true, true));
    env.wait_for_status("box", "exited", T);
}

#[test]
fn attach_works_after_the_runtime_daemon_restarted() {
    let mut env = Env::with_busybox();
    let out = env.cli(&["run", "-dit", "--name", "keep", "busybox", "sh"]);
    assert_eq!(out.code, 0, "{out}");
    env.kill(Daemon::Runtimed);
    env.start(Daemon::Runtimed);

    let mut t = env.cli_pty(&["attach", "keep"], 24, 80);
    t.send_line("echo still-$((3*3))");
    t.expect("still-9\r\n", T);
    t.send(DETACH_KEYS);
    assert!(t.wait(T).success());
    assert_eq!(env.container_row("keep").state, "running");
    env.cli(&["rm", "-f", "keep"]).ok();
}

#[test]
fn create_it_then_start_ai_is_interactive() {
    let env = Env::with_busybox();
    env.cli(&["create", "-it", "--name", "later", "busybox", "sh"])
        .ok();
    let mut t = env.cli_pty(&["start", "-ai", "later"], 24, 80);
    t.send_line("echo $((7*8))");
    t.expect("56\r\n", T);
    t.send_line("exit 4");
    assert_eq!(t.wait(T).code(), Some(4));
    env.wait_for_status("later", "exited", T);
}

#[test]
fn run_t_without_i_gives_a_terminal_but_no_input() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "-t", "busybox", "sh", "-c", "tty; echo done"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    // A terminal turns "\n" into "\r\n", as under Docker.
    assert!(out.stdout.contains("done\r\n"), "{out}");
}

#[test]
fn exec_runs_beside_pid_1_with_its_settings_and_exit_code() {
    let env = Env::with_busybox();
    env.run_detached(&["--name", "ctr", "busybox", "sleep", "1000"]);

    let out = env.cli(&[
        "exec",
        "ctr",
        "sh",
        "-c",
        "echo in-$((2+3)); echo err >&2; exit 3",
    ]);
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stdout, "in-5\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");

    let out = env.cli(&[
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/etc",
        "ctr",
        "sh",
        "-c",
        "echo $FOO $(pwd)",
    ]);
    assert_eq!(out.ok(), "bar /etc\n", "{out}");
    let out = env.cli(&["exec", "-u", "nobody", "ctr", "id", "-u"]);
    assert_eq!(out.ok(), "65534\n", "{out}");

    // -d: started and left running, nothing printed.
    let out = env.cli(&["exec", "-d", "ctr", "sleep", "999"]);
    assert_eq!(out.ok(), "", "{out}");
    let top = wait_until(T, "top to list both processes", || {
        let top = env.cli(&["top", "ctr"]).ok().to_string();
        (top.contains("sleep 1000") && top.contains("sleep 999")).then_some(top)
    });
    assert!(top.lines().count() >= 3, "{top}");

    let out = env.cli(&["exec", "ctr", "nosuch"]);
    assert_eq!(out.code, 127, "{out}");
    assert!(out.stderr.contains("executable file not found"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");

    let out = env.cli(&["exec", "ctr", "/etc/passwd"]);
    assert_eq!(out.code, 126, "{out}");

    env.cli(&["kill", "ctr"]).ok();
    env.wait_for_status("ctr", "exited", T);
    let out = env.cli(&["exec", "ctr", "true"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("is not running"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn exec_it_gets_a_terminal_of_its_own() {
    let env = Env::with_busybox();
    env.run_detached(&["--name", "ctr", "busybox", "sleep", "1000"]);
    let mut t = env.cli_pty(&["exec", "-it", "ctr", "sh"], 24, 80);
    t.send_line("tty; echo $((5*5))");
    t.expect("/dev/pts/", T);
    t.expect("25\r\n", T);
    wait_for_size(&mut t, 24, 80);
    t.resize(33, 99);
    wait_for_size(&mut t, 33, 99);
    t.send_line("exit 5");
    assert_eq!(t.wait(T).code(), Some(5));
    assert_eq!(t.line_discipline(), (true, true));
    // PID 1 is untouched.
    assert_eq!(env.container_row("ctr").state, "running");
}

#[test]
fn start_a_of_an_exited_container_runs_it_again_with_its_output() {
    let env = Env::with_busybox();
    let script = "echo out-$((40+2)); echo err >&2; exit 3";
    let out = env.cli(&["run", "--name", "again", "busybox", "sh", "-c", script]);
    assert_eq!((out.code, out.stdout.as_str()), (3, "out-42\n"), "{out}");
    for round in 0..3 {
        let out = env.cli(&["start", "-a", "again"]);
        assert_eq!(out.code, 3, "round {round}: {out}");
        assert_eq!(out.stdout, "out-42\n", "round {round}: {out}");
        assert_eq!(out.stderr, "err\n", "round {round}: {out}");
    }
    // The exit is recorded by the time the client has it.
    env.cli(&["rm", "again"]).ok();
}
