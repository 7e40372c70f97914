//! Containers outlive their daemons: `kill -9` of the runtime daemon leaves
//! them running and, once it is back, `ps`, `logs -f`, `stop` and `wait`
//! work; an exit while it was down is recorded with its real code; the
//! image and network daemons can go and come back under a running
//! container; and after a host reboot `--restart always` containers run
//! again.

use std::time::Duration;

use rdock_tests::{procs, wait_until, Daemon, Env};

const LONG: Duration = Duration::from_secs(30);

/// Prints `tick N` every 0.2 s; exits 0 on SIGTERM.
const TICKER: &str =
    r#"trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"#;

/// The numbers of the `tick N` lines in `text`.
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok())
        .collect()
}

/// The highest tick in the container's log so far.
#[track_caller]
fn last_tick(env: &Env, id: &str) -> u64 {
    ticks(env.cli(&["logs", id]).ok())
        .into_iter()
        .max()
        .unwrap_or(0)
}

#[track_caller]
fn state_pid(env: &Env, id: &str) -> i32 {
    let pid = env.inspect_format(id, "{{.State.Pid}}");
    pid.parse()
        .unwrap_or_else(|e| panic!("State.Pid of {id} is {pid:?}: {e}"))
}

/// The pid of the container's shim (found by its command line).
#[track_caller]
fn shim_pid(env: &Env, id: &str) -> i32 {
    let shims: Vec<i32> = env
        .shim_processes()
        .into_iter()
        .filter(|(_, cmdline)| cmdline.contains(id))
        .map(|(p, _)| p)
        .collect();
    match shims.as_slice() {
        [one] => *one,
        other => panic!("expected one shim for {id}, found {other:?}"),
    }
}

#[track_caller]
fn log_size(env: &Env, id: &str) -> u64 {
    let f = env.runtimed_state().log_file(id);
    std::fs::metadata(&f)
        .map(|m| m.len())
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
}

#[track_caller]
fn wait_gone(pid: i32, what: &str) {
    wait_until(
        Duration::from_secs(10),
        &format!("{what} ({pid}) to exit"),
        || (!procs::alive(pid)).then_some(()),
    );
}

#[test]
fn a_container_survives_kill_9_of_runtimed() {
    let mut env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sh", "-c", TICKER]);
    let pid = state_pid(&env, &id);
    let shim = shim_pid(&env, &id);

    env.kill(Daemon::Runtimed);
    let size = log_size(&env, &id);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        procs::alive(pid),
        "the container's init {pid} died with the daemon"
    );
    assert!(procs::alive(shim), "the shim {shim} died with the daemon");
    assert!(
        log_size(&env, &id) > size,
        "the shim must keep logging while the daemon is down"
    );

    env.start(Daemon::Runtimed);
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Up "), "{row:?}");
    assert_eq!(state_pid(&env, &id), pid, "same process after the restart");

    let seen = last_tick(&env, &id);
    let follow = env.cli_spawn(&["logs", "-f", &id]);
    wait_until(LONG, "`logs -f` to show new ticks", || {
        ticks(&follow.stdout_so_far())
            .iter()
            .any(|t| *t > seen + 2)
            .then_some(())
    });
    let mut wait = env.cli_spawn(&["wait", &id]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        wait.is_running(),
        "`wait` must block while the container runs"
    );

    let stop = env.cli(&["stop", &id]);
    assert_eq!(stop.ok(), format!("{id}\n"), "{stop}");
    let waited = wait.wait(LONG);
    assert_eq!(waited.ok(), "0\n", "{waited}");
    let followed = follow.wait(LONG);
    followed.ok();
    wait_gone(pid, "the container's init");
    wait_gone(shim, "the shim");
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Exited (0) "), "{row:?}");
}

#[test]
fn an_exit_while_runtimed_is_down_keeps_its_code() {
    let mut env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sh", "-c", "sleep 2; exit 7"]);
    env.kill(Daemon::Runtimed);
    let exit_file = env.runtimed_state().exit_record(&id);
    wait_until(LONG, "the shim to record the exit", || {
        exit_file.exists().then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));

    env.start(Daemon::Runtimed);
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Exited (7) "), "{row:?}");
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok(), "7\n", "{wait}");
    let inspect = env.inspect_container(&id);
    assert_eq!(inspect["State"]["ExitCode"], 7, "{inspect:#}");
    assert_eq!(inspect["State"]["Running"], false, "{inspect:#}");
    wait_until(LONG, "the exited container's shim to go", || {
        env.shim_processes().is_empty().then_some(())
    });
}

#[test]
fn imaged_and_netd_restarts_leave_a_running_container_alone() {
    let mut env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sh", "-c", TICKER]);
    let pid = state_pid(&env, &id);

    env.kill(Daemon::Imaged);
    env.kill(Daemon::Netd);
    let before = last_tick(&env, &id);
    std::thread::sleep(Duration::from_secs(1));
    assert!(procs::alive(pid), "the container died with imaged and netd");
    let during = last_tick(&env, &id);
    assert!(
        during > before,
        "logs must grow while imaged and netd are down"
    );

    env.start(Daemon::Imaged);
    env.start(Daemon::Netd);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        procs::alive(pid),
        "the container died when imaged and netd came back"
    );
    assert!(last_tick(&env, &id) > during, "logs must still grow");
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Up "), "{row:?}");

    env.cli(&["stop", &id]).ok();
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok(), "0\n", "{wait}");
}

#[test]
fn after_a_host_reboot_restart_always_containers_run_again() {
    let mut env = Env::with_busybox();
    let always = env.run_detached(&[
        "--restart",
        "always",
        "--name",
        "always",
        "busybox",
        "sh",
        "-c",
        TICKER,
    ]);
    let never = env.run_detached(&[
        "--restart",
        "no",
        "--name",
        "never",
        "busybox",
        "sleep",
        "1000",
    ]);
    let old_pid = state_pid(&env, &always);
    let never_pid = state_pid(&env, &never);

    for d in [Daemon::Runtimed, Daemon::Imaged, Daemon::Netd] {
        env.kill(d);
    }
    env.simulate_host_reboot();
    assert!(
        !procs::alive(old_pid) && !procs::alive(never_pid),
        "the reboot must end the containers"
    );
    for d in [Daemon::Imaged, Daemon::Netd, Daemon::Runtimed] {
        env.start(d);
    }

    let v = env.wait_for_status("always", "running", LONG);
    let new_pid = state_pid(&env, &always);
    assert_ne!(new_pid, old_pid, "{v:#}");
    assert!(
        procs::alive(new_pid),
        "State.Pid {new_pid} of the restarted container is not alive"
    );
    let seen = last_tick(&env, &always);
    wait_until(LONG, "the restarted container to tick", || {
        (last_tick(&env, &always) > seen).then_some(())
    });

    let never_state = env.inspect_container("never");
    assert_eq!(never_state["State"]["Status"], "exited", "{never_state:#}");
    assert_eq!(never_state["State"]["Running"], false, "{never_state:#}");
    assert_eq!(never_state["State"]["Pid"], 0, "{never_state:#}");
    let ps = env.cli(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(ps.ok(), "always\n", "only the always container runs:\n{ps}");

    env.cli(&["stop", "always"]).ok();
    let wait = env.cli(&["wait", "always"]);
    assert_eq!(wait.ok(), "0\n", "{wait}");
}

/// The leak checks themselves: a container whose runtime daemon is gone
/// cannot be removed, and the teardown must find everything it holds.
#[test]
fn teardown_finds_what_an_orphaned_container_holds() {
    let mut env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sleep", "1000"]);
    let pid = state_pid(&env, &id);
    env.kill(Daemon::Runtimed);
    let problems = env.shutdown();
    let report = problems.join("\n");
    println!("{report}");
    for want in [
        "shim left running".to_string(),
        format!("process in a container cgroup: {pid} sleep 1000"),
        format!("runc state: {id}"),
        "network namespace: ".to_string(),
        "container directory: ".to_string(),
        format!("root filesystem snapshot in rdock-imaged: {id}"),
        "cgroup: ".to_string(),
        "mount left behind: ".to_string(),
    ] {
        assert!(
            report.contains(&want),
            "the teardown did not report {want:?}:\n{report}"
        );
    }
    assert!(!procs::alive(pid), "the teardown must kill what it found");
}
