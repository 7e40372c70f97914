//! Runs at the same moment: of two `run --name web`, exactly one wins and
//! the other fails cleanly; fifty `run --rm` all succeed and leave nothing.

use std::time::Duration;

use rdock_tests::{strings, Env, Output};

#[test]
fn two_runs_with_one_name_one_wins() {
    let env = Env::with_busybox();
    // A few rounds: the two requests must really overlap at least once.
    for round in 0..5 {
        let run = strings(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
        let outs = env.cli_all_at_once(&[run.clone(), run], Duration::from_secs(60));
        let (won, lost): (Vec<&Output>, Vec<&Output>) = outs.iter().partition(|o| o.code == 0);
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "round {round}: exactly one must win:\n{}\n{}",
            outs[0],
            outs[1]
        );
        let loser = lost[0];
        assert_eq!(loser.code, 125, "round {round}:\n{loser}");
        let lines: Vec<&str> = loser.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "round {round}: one error line:\n{loser}");
        assert!(
            lines[0].starts_with("rdockctl: ") && lines[0].contains("already in use"),
            "round {round}:\n{loser}"
        );
        let id = won[0].stdout.trim();
        let rows = env.containers();
        assert_eq!(rows.len(), 1, "round {round}: one container: {rows:#?}");
        assert_eq!((rows[0].id.as_str(), rows[0].names.as_str()), (id, "web"));
        assert_eq!(rows[0].state, "running", "{rows:#?}");
        assert_eq!(
            env.runtimed_state().container_dirs(),
            [id],
            "round {round}: the loser left a container directory"
        );
        env.cli(&["rm", "-f", "web"]).ok();
        env.assert_no_containers();
    }
}

#[test]
fn fifty_concurrent_run_rm_all_succeed_and_leave_nothing() {
    let env = Env::with_busybox();
    let run = strings(&["run", "--rm", "busybox", "true"]);
    let runs: Vec<Vec<String>> = (0..50).map(|_| run.clone()).collect();
    let outs = env.cli_all_at_once(&runs, Duration::from_secs(240));
    let failed: Vec<String> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.code != 0 || !o.stdout.is_empty() || !o.stderr.is_empty())
        .map(|(i, o)| format!("run {i}: {o}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 50 runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // `run --rm` returns once its container is removed (Docker's), so
    // nothing may be listed now; and nothing may leak, however long the
    // removals take.
    let listed = env.containers();
    env.wait_no_containers(Duration::from_secs(30));
    assert!(
        listed.is_empty(),
        "`run --rm` returned before its container was removed: {} of 50 still listed right after",
        listed.len()
    );
}
