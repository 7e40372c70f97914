//! Containers through the CLI: `run` and its flags, `create`/`start`, `ps`,
//! `logs`, `stop`, `kill`, `wait`, `top`, `inspect`, and restart policies.
//! Each test has its own environment with the busybox test image; its
//! teardown removes what is left and fails on anything leaked.

use std::time::{Duration, Instant};

use rdock_tests::{procs, wait_until, Env};

const LONG: Duration = Duration::from_secs(30);

#[track_caller]
fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn run_rm_echo_prints_hello_and_leaves_nothing() {
    let env = Env::with_busybox();
    // Like Docker's, `run --rm` returns once the container is removed: a
    // `ps -a` right after must not list it. A few rounds, as a removal that
    // lags behind shows only now and then.
    for round in 0..10 {
        let out = env.cli(&["run", "--rm", "busybox", "echo", "hello"]);
        assert_eq!(out.ok(), "hello\n", "{out}");
        assert_eq!(out.stderr, "", "{out}");
        let listed = env.containers();
        // Nothing leaks, however long the removal takes...
        env.wait_no_containers(Duration::from_secs(10));
        // ...and it was done before `run` returned.
        assert_eq!(
            listed,
            [],
            "round {round}: `run --rm` returned before its container was removed"
        );
    }
}

#[test]
fn run_keeps_stdout_and_stderr_apart_and_exits_with_the_code() {
    let env = Env::with_busybox();
    let out = env.cli(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stdout, "out\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
    // Whether `run --rm` waits for the removal is the business of
    // run_rm_echo_prints_hello_and_leaves_nothing; here, only that it goes.
    env.wait_no_containers(Duration::from_secs(10));
}

#[test]
fn run_env_and_env_file() {
    let env = Env::with_busybox();
    let file = env.write_file("vars.env", b"# a comment\nB=2\n");
    let out = env.cli(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        &file.to_string_lossy(),
        "busybox",
        "env",
    ]);
    let vars = lines(out.ok());
    assert!(vars.contains(&"A=1"), "-e A=1 missing:\n{out}");
    assert!(vars.contains(&"B=2"), "--env-file's B=2 missing:\n{out}");
}

#[test]
fn run_workdir() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "-w", "/tmp", "busybox", "pwd"]);
    assert_eq!(out.ok(), "/tmp\n", "{out}");
}

#[test]
fn run_user_by_name() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "-u", "nobody", "busybox", "id", "-u"]);
    assert_eq!(out.ok(), "65534\n", "{out}");
}

#[test]
fn run_entrypoint_replaces_the_image_command() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "--entrypoint", "echo", "busybox", "hi"]);
    assert_eq!(out.ok(), "hi\n", "{out}");
}

#[test]
fn run_hostname_flag() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "-h", "myhost", "busybox", "hostname"]);
    assert_eq!(out.ok(), "myhost\n", "{out}");
}

#[test]
fn default_hostname_is_the_short_id() {
    let env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "hostname"]);
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok().trim(), "0", "{wait}");
    let logs = env.cli(&["logs", &id]);
    assert_eq!(logs.ok(), format!("{}\n", &id[..12]), "{logs}");
    let inspect = env.inspect_container(&id);
    assert_eq!(inspect["Config"]["Hostname"], &id[..12], "{inspect:#}");
}

#[test]
fn init_is_pid_1() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"]);
    let argv0 = out.ok().split('\0').next().unwrap_or_default();
    assert_eq!(argv0, "/sbin/docker-init", "{out}");
}

/// Zombie children of the container's init, from the host, after an
/// orphaned `sleep 0.1` ended; the container runs `sh -c '(sleep 0.1 &);
/// exec sleep 30'`, so without an init its PID 1 is a `sleep` that never
/// reaps.
fn zombies_after_an_orphan_ends(env: &Env, init: bool) -> Vec<(i32, char)> {
    let mut args = vec!["busybox", "sh", "-c", "(sleep 0.1 &); exec sleep 30"];
    if init {
        args.insert(0, "--init");
    }
    let id = env.run_detached(&args);
    let pid: i32 = env
        .inspect_format(&id, "{{.State.Pid}}")
        .parse()
        .unwrap_or_else(|e| panic!("State.Pid of {id}: {e}"));
    std::thread::sleep(Duration::from_millis(1500));
    let zombies: Vec<(i32, char)> = procs::descendants_with_state(pid)
        .into_iter()
        .chain(procs::state(pid).map(|s| (pid, s)))
        .filter(|(_, s)| *s == 'Z')
        .collect();
    env.cli(&["rm", "-f", &id]).ok();
    zombies
}

#[test]
fn init_reaps_orphans() {
    let env = Env::with_busybox();
    // The control: without an init, the orphan stays a zombie, so the
    // check below can see one.
    let without = zombies_after_an_orphan_ends(&env, false);
    assert_eq!(
        without.len(),
        1,
        "without --init the orphaned sleep must stay a zombie: {without:?}"
    );
    let with = zombies_after_an_orphan_ends(&env, true);
    assert_eq!(with, [], "--init must reap the orphaned sleep");
    env.assert_no_containers();
}

#[test]
fn memory_limit() {
    let env = Env::with_busybox();
    let out = env.cli(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "busybox",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(out.ok(), "67108864\n", "{out}");

    let id = env.run_detached(&["-m", "64m", "busybox", "sleep", "30"]);
    let inspect = env.inspect_container(&id);
    assert_eq!(inspect["HostConfig"]["Memory"], 67108864, "{inspect:#}");
    let host_file = env
        .cgroup_parent()
        .container_dir("memory", &id)
        .join("memory.limit_in_bytes");
    let on_host = std::fs::read_to_string(&host_file)
        .unwrap_or_else(|e| panic!("read {}: {e}", host_file.display()));
    assert_eq!(on_host.trim(), "67108864", "{}", host_file.display());
}

#[test]
fn pids_limit() {
    let env = Env::with_busybox();
    let out = env.cli(&[
        "run",
        "--rm",
        "--pids-limit",
        "20",
        "busybox",
        "cat",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(out.ok(), "20\n", "{out}");
    let id = env.run_detached(&["--pids-limit", "20", "busybox", "sleep", "30"]);
    let inspect = env.inspect_container(&id);
    assert_eq!(inspect["HostConfig"]["PidsLimit"], 20, "{inspect:#}");
}

#[test]
fn cpus_limit() {
    let env = Env::with_busybox();
    let id = env.run_detached(&[
        "--cpus",
        "0.5",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us",
    ]);
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok().trim(), "0", "{wait}");
    let logs = env.cli(&["logs", &id]);
    assert_eq!(logs.ok(), "50000\n100000\n", "quota then period:\n{logs}");
    let inspect = env.inspect_container(&id);
    assert_eq!(inspect["HostConfig"]["NanoCpus"], 500000000, "{inspect:#}");
}

/// `ps` (table) rows as cells split on runs of 2+ spaces, header first.
fn ps_table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
fn create_start_wait_logs_and_ps() {
    let env = Env::with_busybox();
    let create = env.cli(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 2; exit 4",
    ]);
    let id = create.ok().trim().to_string();
    assert_eq!(id.len(), 64, "`create` prints the full id:\n{create}");
    let row = env.container_row("c1");
    assert_eq!(
        (row.state.as_str(), row.status.as_str()),
        ("created", "Created"),
        "{row:?}"
    );
    let ps = env.cli(&["ps"]);
    assert!(
        !ps.ok().contains("c1"),
        "`ps` lists only running containers:\n{ps}"
    );

    let start = env.cli(&["start", "c1"]);
    assert_eq!(start.ok(), "c1\n", "{start}");

    let ps = env.cli(&["ps"]);
    let table = ps_table(ps.ok());
    assert_eq!(
        table[0],
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "{ps}"
    );
    assert_eq!(table.len(), 2, "one running container:\n{ps}");
    let r = &table[1];
    assert_eq!(r[0], &id[..12], "{ps}");
    assert_eq!(r[1], "busybox", "{ps}");
    assert!(r[2].starts_with("\"sh -c"), "COMMAND:\n{ps}");
    assert!(
        r.iter().any(|c| c.starts_with("Up ")),
        "STATUS `Up …`:\n{ps}"
    );
    assert_eq!(r.last().map(String::as_str), Some("c1"), "NAMES:\n{ps}");

    let quiet = env.cli(&["ps", "-q"]);
    assert_eq!(quiet.ok(), format!("{}\n", &id[..12]), "{quiet}");

    let json = env.cli(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok().trim()).unwrap_or_else(|e| {
        panic!("`ps --format json` is not one JSON object a line: {e}\n{json}")
    });
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "Command",
            "CreatedAt",
            "ID",
            "Image",
            "Names",
            "Ports",
            "RunningFor",
            "State",
            "Status"
        ],
        "{json}"
    );
    assert_eq!(v["ID"], &id[..12], "{json}");
    assert_eq!(v["Image"], "busybox", "{json}");
    assert_eq!(v["Names"], "c1", "{json}");
    assert_eq!(v["State"], "running", "{json}");
    assert!(
        v["Status"].as_str().is_some_and(|s| s.starts_with("Up ")),
        "{json}"
    );

    let wait = env.cli(&["wait", "c1"]);
    assert_eq!(wait.ok(), "4\n", "{wait}");
    let logs = env.cli(&["logs", "c1"]);
    assert_eq!(logs.ok(), "started\n", "{logs}");

    let ps = env.cli(&["ps", "-q"]);
    assert_eq!(ps.ok(), "", "no running container after it exited:\n{ps}");
    let all = env.cli(&["ps", "-a"]);
    let table = ps_table(all.ok());
    assert_eq!(table.len(), 2, "{all}");
    assert!(
        table[1].iter().any(|c| c.starts_with("Exited (4) ")),
        "STATUS `Exited (4) …`:\n{all}"
    );
    let inspect = env.inspect_container("c1");
    assert_eq!(inspect["Id"], id.as_str(), "{inspect:#}");
    assert_eq!(inspect["Name"], "/c1", "{inspect:#}");
    assert_eq!(inspect["State"]["Status"], "exited", "{inspect:#}");
    assert_eq!(inspect["State"]["Running"], false, "{inspect:#}");
    assert_eq!(inspect["State"]["ExitCode"], 4, "{inspect:#}");

    env.cli(&["rm", "c1"]).ok();
    env.assert_no_containers();
}

#[test]
fn start_attach_streams_and_exits_with_the_code() {
    let env = Env::with_busybox();
    let id = env.cli(&[
        "create",
        "busybox",
        "sh",
        "-c",
        "echo a; echo b >&2; exit 2",
    ]);
    let id = id.ok().trim().to_string();
    let out = env.cli(&["start", "-a", &id]);
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(out.stdout, "a\n", "{out}");
    assert_eq!(out.stderr, "b\n", "{out}");
}

#[test]
fn logs_tail_and_timestamps() {
    let env = Env::with_busybox();
    let id = env.run_detached(&[
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2",
    ]);
    env.cli(&["wait", &id]).ok();
    let all = env.cli(&["logs", &id]);
    assert_eq!(all.ok(), "line1\nline2\nline3\nline4\nline5\n", "{all}");
    assert_eq!(all.stderr, "oops\n", "stderr lines go to stderr:\n{all}");

    let tail = env.cli(&["logs", "--tail", "2", &id]);
    // The last two lines of the log, whichever stream: line5 and oops.
    assert_eq!(tail.ok(), "line5\n", "{tail}");
    assert_eq!(tail.stderr, "oops\n", "{tail}");

    let ts = env.cli(&["logs", "-t", &id]);
    let got = lines(ts.ok());
    assert_eq!(got.len(), 5, "{ts}");
    for (i, l) in got.iter().enumerate() {
        let (stamp, text) = l
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp: {l:?}"));
        assert_eq!(text, format!("line{}", i + 1), "{ts}");
        assert!(
            is_rfc3339(stamp),
            "{stamp:?} is not an RFC 3339 timestamp:\n{ts}"
        );
    }
}

/// `2024-05-01T10:00:00.123456789Z` (fraction optional, `Z` or an offset).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

#[test]
fn logs_follow_streams_until_the_container_exits() {
    let env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sh", "-c", "echo first; sleep 3; echo second"]);
    let mut follow = env.cli_spawn(&["logs", "-f", &id]);
    wait_until(LONG, "`logs -f` to print the first line", || {
        follow.stdout_so_far().contains("first").then_some(())
    });
    assert!(
        !follow.stdout_so_far().contains("second"),
        "the second line cannot be there yet"
    );
    assert!(
        follow.is_running(),
        "`logs -f` must keep following while the container runs"
    );
    let out = follow.wait(LONG);
    assert_eq!(out.ok(), "first\nsecond\n", "{out}");
    let status = env.inspect_format(&id, "{{.State.Status}}");
    assert_eq!(
        status, "exited",
        "`logs -f` ends when the container has exited"
    );
}

#[test]
fn stop_sends_term_first() {
    let env = Env::with_busybox();
    let id = env.run_detached(&[
        "busybox",
        "sh",
        "-c",
        r#"trap "exit 0" TERM; echo ready; while true; do sleep 0.1; done"#,
    ]);
    wait_for_log(&env, &id, "ready");
    let t = Instant::now();
    let stop = env.cli(&["stop", &id]);
    let took = t.elapsed();
    assert_eq!(stop.ok(), format!("{id}\n"), "{stop}");
    assert!(
        took < Duration::from_secs(8),
        "a container that exits on SIGTERM must not wait for the 10 s grace (took {took:?})"
    );
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok(), "0\n", "{wait}");
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Exited (0) "), "{row:?}");
}

#[test]
fn stop_kills_after_the_timeout() {
    let env = Env::with_busybox();
    let id = env.run_detached(&[
        "busybox",
        "sh",
        "-c",
        r#"trap "" TERM; echo ready; while true; do sleep 0.1; done"#,
    ]);
    wait_for_log(&env, &id, "ready");
    let t = Instant::now();
    env.cli(&["stop", "-t", "1", &id]).ok();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "`stop -t 1` must give SIGTERM 1 s (took {took:?})"
    );
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok(), "137\n", "SIGKILL after the timeout:\n{wait}");
    let inspect = env.inspect_container(&id);
    assert_eq!(inspect["State"]["ExitCode"], 137, "{inspect:#}");
    assert_eq!(inspect["State"]["Running"], false, "{inspect:#}");
}

#[track_caller]
fn wait_for_log(env: &Env, id: &str, text: &str) {
    wait_until(LONG, &format!("{text:?} in the logs of {id}"), || {
        env.cli(&["logs", id]).ok().contains(text).then_some(())
    });
}

#[test]
fn kill_delivers_a_signal_then_kills() {
    let env = Env::with_busybox();
    let id = env.run_detached(&[
        "busybox",
        "sh",
        "-c",
        r#"trap "echo got-usr1" USR1; echo ready; while true; do sleep 0.1; done"#,
    ]);
    wait_for_log(&env, &id, "ready");
    let kill = env.cli(&["kill", "-s", "USR1", &id]);
    assert_eq!(kill.ok(), format!("{id}\n"), "{kill}");
    wait_for_log(&env, &id, "got-usr1");
    assert_eq!(
        env.inspect_format(&id, "{{.State.Running}}"),
        "true",
        "USR1 must not stop the container"
    );
    env.cli(&["kill", &id]).ok();
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok(), "137\n", "{wait}");
}

/// Pids in the container's cgroup (pids hierarchy), from the host.
fn container_pids(env: &Env, id: &str) -> Vec<i32> {
    let f = env
        .cgroup_parent()
        .container_dir("pids", id)
        .join("cgroup.procs");
    std::fs::read_to_string(&f)
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

#[test]
fn every_process_dies_with_pid_1() {
    let env = Env::with_busybox();
    // A sleep length no other test uses, to find them on the host.
    let marker = "sleep 1013";
    let id = env.run_detached(&[
        "busybox",
        "sh",
        "-c",
        &format!("{marker} & {marker} & sleep 3; exit 5"),
    ]);
    let sleepers = wait_until(LONG, "two background sleeps in the container", || {
        let pids: Vec<i32> = container_pids(&env, &id)
            .into_iter()
            .filter(|p| procs::cmdline(*p) == marker)
            .collect();
        (pids.len() == 2).then_some(pids)
    });
    let wait = env.cli(&["wait", &id]);
    assert_eq!(wait.ok(), "5\n", "{wait}");
    // SIGKILL of the namespace is immediate, but reaping may take a moment.
    let left = || -> Vec<i32> {
        let mut v: Vec<i32> = sleepers
            .iter()
            .copied()
            .filter(|p| procs::alive(*p))
            .collect();
        v.extend(
            procs::processes_mentioning(marker)
                .into_iter()
                .map(|(p, _)| p),
        );
        v
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        left(),
        Vec::<i32>::new(),
        "processes of the container outlived its PID 1"
    );
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Exited (5) "), "{row:?}");
}

#[test]
fn top_and_state_pid() {
    let env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sh", "-c", "sleep 1014 & exec sleep 1015"]);
    let pid: i32 = env
        .inspect_format(&id, "{{.State.Pid}}")
        .parse()
        .unwrap_or_else(|e| panic!("State.Pid: {e}"));
    assert!(
        procs::alive(pid),
        "State.Pid {pid} is not a live host process"
    );
    wait_until(LONG, "the container's init to exec sleep 1015", || {
        (procs::cmdline(pid) == "sleep 1015").then_some(())
    });

    let top = env.cli(&["top", &id]);
    let mut rows = top.ok().lines();
    let header: Vec<&str> = rows.next().unwrap_or_default().split_whitespace().collect();
    for col in ["UID", "PID", "PPID", "TIME", "CMD"] {
        assert!(header.contains(&col), "`top` header lacks {col}:\n{top}");
    }
    let pid_col = header.iter().position(|c| *c == "PID").unwrap_or(1);
    let rows: Vec<Vec<&str>> = rows.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "two processes:\n{top}");
    let cmds: Vec<String> = rows
        .iter()
        .map(|r| r[header.len() - 1..].join(" "))
        .collect();
    assert!(cmds.contains(&"sleep 1014".to_string()), "{top}");
    assert!(cmds.contains(&"sleep 1015".to_string()), "{top}");
    let pids: Vec<&str> = rows.iter().map(|r| r[pid_col]).collect();
    assert!(
        pids.contains(&pid.to_string().as_str()),
        "`top` shows host pids:\n{top}"
    );

    env.cli(&["kill", &id]).ok();
    env.cli(&["wait", &id]).ok();
    assert_eq!(
        env.inspect_format(&id, "{{.State.Pid}}"),
        "0",
        "no pid once exited"
    );
    assert!(!procs::alive(pid), "the init {pid} outlived its container");
}

#[test]
fn restart_on_failure_stops_after_max_retries() {
    let env = Env::with_busybox();
    let id = env.run_detached(&["--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1"]);
    wait_until(LONG, "RestartCount 2 and exited", || {
        let v = env.inspect_container(&id);
        (v["RestartCount"] == 2 && v["State"]["Status"] == "exited").then_some(())
    });
    // And no third run.
    std::thread::sleep(Duration::from_secs(2));
    let v = env.inspect_container(&id);
    assert_eq!(v["RestartCount"], 2, "{v:#}");
    assert_eq!(v["State"]["Status"], "exited", "{v:#}");
    assert_eq!(v["State"]["ExitCode"], 1, "{v:#}");
    assert_eq!(
        v["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2}),
        "{v:#}"
    );
    let row = env.container_row(&id);
    assert!(row.status.starts_with("Exited (1) "), "{row:?}");
}

#[test]
fn restart_always_restarts_a_clean_exit_until_stopped() {
    let env = Env::with_busybox();
    let id = env.run_detached(&["--restart", "always", "busybox", "true"]);
    wait_until(LONG, "RestartCount 2", || {
        let v = env.inspect_container(&id);
        (v["RestartCount"].as_u64().unwrap_or(0) >= 2).then_some(())
    });
    env.cli(&["stop", &id]).ok();
    let after_stop = env.inspect_container(&id);
    std::thread::sleep(Duration::from_secs(3));
    let v = env.inspect_container(&id);
    assert_eq!(
        v["State"]["Status"], "exited",
        "a stopped container stays stopped: {v:#}"
    );
    assert_eq!(
        v["RestartCount"], after_stop["RestartCount"],
        "no restart after `stop`: {v:#}"
    );
}
