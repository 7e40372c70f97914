//! `network connect` and `network disconnect` of running and stopped
//! containers: a second interface with an address on the other network,
//! the name and alias resolvable there, and nothing left after rm.

use rdock_tests::{Env, Output};

fn run_sh(env: &Env, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend(["busybox", "sh", "-c", script]);
    env.cli(&args)
}

fn networks_of(env: &Env, container: &str) -> serde_json::Value {
    env.inspect_container(container)["NetworkSettings"]["Networks"].clone()
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let env = Env::with_busybox();
    env.cli(&["network", "create", "n1"]).ok();
    env.run_detached(&["--name", "web", "busybox", "sleep", "1000"]);
    let bridge_ip = env.container_ip("web");

    env.cli(&["network", "connect", "--alias", "webalias", "n1", "web"])
        .ok();
    let nets = networks_of(&env, "web");
    assert_eq!(
        nets["bridge"]["IPAddress"],
        bridge_ip.to_string(),
        "{nets:#}"
    );
    let n1_ip = nets["n1"]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("no address on n1: {nets:#}"))
        .to_string();
    assert!(
        !n1_ip.is_empty() && n1_ip != bridge_ip.to_string(),
        "{nets:#}"
    );
    assert!(
        nets["n1"]["Aliases"].to_string().contains("webalias"),
        "{nets:#}"
    );

    // The container has the interface; a container on n1 reaches it by
    // name and by alias.
    let ifaces = env
        .cli(&["exec", "web", "ip", "-o", "-4", "addr"])
        .ok()
        .to_string();
    assert!(ifaces.contains(&format!("{n1_ip}/")), "{ifaces}");
    let out = run_sh(
        &env,
        &["--network", "n1"],
        &format!("nslookup webalias; echo ===; nslookup web; echo ===; ping -c 1 -W 5 {n1_ip}"),
    );
    let parts: Vec<&str> = out.stdout.split("===\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert!(parts[0].contains(&format!("Address: {n1_ip}")), "{out}");
    assert!(parts[1].contains(&format!("Address: {n1_ip}")), "{out}");
    assert!(parts[2].contains("1 packets received"), "{out}");

    let out = env.cli(&["network", "connect", "n1", "web"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("already exists in network n1"), "{out}");

    env.cli(&["network", "disconnect", "n1", "web"]).ok();
    let nets = networks_of(&env, "web");
    assert!(nets.get("n1").is_none_or(|n| n.is_null()), "{nets:#}");
    let ifaces = env
        .cli(&["exec", "web", "ip", "-o", "-4", "addr"])
        .ok()
        .to_string();
    assert!(!ifaces.contains(&format!("{n1_ip}/")), "{ifaces}");
    let out = run_sh(&env, &["--network", "n1"], "nslookup webalias");
    assert!(!out.stdout.contains(&format!("Address: {n1_ip}")), "{out}");

    let out = env.cli(&["network", "disconnect", "n1", "web"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("is not connected to network n1"),
        "{out}"
    );

    // Connected again, then removed with the container: the network can go.
    env.cli(&["network", "connect", "n1", "web"]).ok();
    env.cli(&["rm", "-f", "web"]).ok();
    env.cli(&["network", "rm", "n1"]).ok();
}

#[test]
fn a_stopped_container_joins_the_network_when_it_starts() {
    let env = Env::with_busybox();
    env.cli(&["network", "create", "later"]).ok();
    env.cli(&["create", "--name", "ctr", "busybox", "sleep", "1000"])
        .ok();
    env.cli(&["network", "connect", "later", "ctr"]).ok();
    env.cli(&["start", "ctr"]).ok();
    let nets = networks_of(&env, "ctr");
    let ip = nets["later"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!ip.is_empty(), "{nets:#}");
    assert!(!nets["bridge"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
    let out = run_sh(
        &env,
        &["--network", "later"],
        &format!("ping -c 1 -W 5 {ip}"),
    );
    assert!(out.stdout.contains("1 packets received"), "{out}");
    env.cli(&["rm", "-f", "ctr"]).ok();
    env.cli(&["network", "rm", "later"]).ok();
}

#[test]
fn connect_errors_are_one_line_and_change_nothing() {
    let env = Env::with_busybox();
    env.run_detached(&["--name", "ctr", "busybox", "sleep", "1000"]);
    env.run_detached(&[
        "--name",
        "hostbox",
        "--network",
        "host",
        "busybox",
        "sleep",
        "1000",
    ]);
    env.cli(&["network", "create", "n2"]).ok();
    let before = networks_of(&env, "ctr");
    for (args, needle) in [
        (
            vec!["network", "connect", "nosuch", "ctr"],
            "network nosuch not found",
        ),
        (vec!["network", "connect", "n2", "nosuch"], "nosuch"),
        (
            vec!["network", "connect", "n2", "hostbox"],
            "container cannot be disconnected from host network or connected to host network",
        ),
        (
            vec!["network", "disconnect", "n2", "ctr"],
            "is not connected to network n2",
        ),
    ] {
        let out = env.cli(&args);
        assert_ne!(out.code, 0, "{args:?}: {out}");
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out}");
    }
    assert_eq!(networks_of(&env, "ctr"), before);
    env.cli(&["rm", "-f", "ctr", "hostbox"]).ok();
    env.cli(&["network", "rm", "n2"]).ok();
}
