//! Bad input to the container commands: each fails with Docker's exit code
//! (125 engine error, 126 cannot invoke, 127 not found; 1 for stop, kill,
//! rm, logs, wait), exactly one line on stderr saying what is wrong, and
//! leaves nothing behind: no record in `ps -a`, container directory, mount,
//! network namespace, cgroup, shim or runc state.

use rdock_tests::{procs, Env, Output};

/// Runs `rdockctl ARGS` and checks the exit code, that stderr is exactly one
/// `rdockctl: ` line containing each of `words` (case-insensitive), and that
/// the containers' footprint did not change. Returns the output.
#[track_caller]
fn assert_fails(env: &Env, args: &[&str], code: i32, words: &[&str]) -> Output {
    assert_fails_after(env, args, &[], code, words)
}

/// Like [`assert_fails`], with these exact lines allowed on stderr before
/// the error line (Docker's own notices, such as `Unable to find image
/// 'x:latest' locally` before a pull).
#[track_caller]
fn assert_fails_after(
    env: &Env,
    args: &[&str],
    notices: &[&str],
    code: i32,
    words: &[&str],
) -> Output {
    let before = env.container_footprint();
    let out = env.cli(args);
    println!(
        "rdockctl {}\n  exit {}: {}",
        args.join(" "),
        out.code,
        out.stderr.trim_end()
    );
    assert_eq!(out.code, code, "rdockctl {}:\n{out}", args.join(" "));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        notices.len() + 1,
        "exactly one error line on stderr:\n{out}"
    );
    assert_eq!(&lines[..notices.len()], notices, "{out}");
    let line = lines[notices.len()];
    assert!(
        line.starts_with("rdockctl: "),
        "the error line starts with `rdockctl: `:\n{out}"
    );
    let line = line.to_lowercase();
    for w in words {
        assert!(
            line.contains(&w.to_lowercase()),
            "the error must mention {w:?}:\n{out}"
        );
    }
    env.assert_footprint(&before);
    out
}

#[test]
fn command_not_in_the_image_is_127() {
    let env = Env::with_busybox();
    let out = assert_fails(&env, &["run", "busybox", "nosuchcmd"], 127, &["nosuchcmd"]);
    assert_eq!(out.stdout, "", "{out}");
    env.assert_no_containers();
}

#[test]
fn detached_command_not_in_the_image_is_127() {
    let env = Env::with_busybox();
    assert_fails(
        &env,
        &["run", "-d", "busybox", "nosuchcmd"],
        127,
        &["nosuchcmd"],
    );
    env.assert_no_containers();
}

#[test]
fn a_directory_as_the_command_is_126() {
    let env = Env::with_busybox();
    assert_fails(&env, &["run", "busybox", "/tmp"], 126, &["/tmp"]);
    env.assert_no_containers();
}

#[test]
fn name_already_in_use_is_125() {
    let env = Env::with_busybox();
    // Docker's names have at least two characters.
    let id = env.run_detached(&["--name", "web", "busybox", "sleep", "1000"]);
    assert_fails(
        &env,
        &["run", "--name", "web", "busybox", "true"],
        125,
        &["\"/web\"", "already in use"],
    );
    assert_fails(
        &env,
        &["create", "--name", "web", "busybox", "true"],
        125,
        &["\"/web\"", "already in use"],
    );
    let row = env.container_row("web");
    assert_eq!(
        (row.id.as_str(), row.state.as_str()),
        (id.as_str(), "running"),
        "{row:?}"
    );
    env.cli(&["rm", "-f", "web"]).ok();
    env.assert_no_containers();
}

#[test]
fn unknown_image_is_125() {
    let env = Env::with_busybox();
    assert_fails_after(
        &env,
        &["run", "nosuchimage:latest"],
        &["Unable to find image 'nosuchimage:latest' locally"],
        125,
        &["nosuchimage"],
    );
    env.assert_no_containers();
    assert!(
        env.images().iter().all(|r| r.repository != "nosuchimage"),
        "no image record for a failed pull"
    );
}

#[test]
fn bad_memory_size_is_125() {
    let env = Env::with_busybox();
    assert_fails(
        &env,
        &["run", "--memory", "1x", "busybox", "true"],
        125,
        &["1x"],
    );
    env.assert_no_containers();
}

#[test]
fn unknown_user_is_125() {
    let env = Env::with_busybox();
    assert_fails(
        &env,
        &["run", "-u", "nosuchuser", "busybox", "true"],
        125,
        &["unable to find user nosuchuser"],
    );
    env.assert_no_containers();
}

#[test]
fn rm_of_a_running_container_needs_force() {
    let env = Env::with_busybox();
    let id = env.run_detached(&["busybox", "sleep", "1000"]);
    let pid: i32 = env
        .inspect_format(&id, "{{.State.Pid}}")
        .parse()
        .unwrap_or_else(|e| panic!("State.Pid: {e}"));
    assert_fails(&env, &["rm", &id], 1, &["running"]);
    assert_eq!(env.inspect_format(&id, "{{.State.Running}}"), "true");
    assert!(procs::alive(pid), "`rm` without -f must leave it running");
    let rm = env.cli(&["rm", "-f", &id]);
    assert_eq!(rm.ok(), format!("{id}\n"), "{rm}");
    assert!(
        !procs::alive(pid),
        "`rm -f` must kill the container's process"
    );
    env.assert_no_containers();
}

#[test]
fn commands_on_an_unknown_container_exit_1() {
    let env = Env::with_busybox();
    for args in [
        &["stop", "nosuch"][..],
        &["kill", "nosuch"],
        &["logs", "nosuch"],
        &["rm", "nosuch"],
        &["wait", "nosuch"],
    ] {
        assert_fails(&env, args, 1, &["no such container", "nosuch"]);
    }
    env.assert_no_containers();
}
