//! Bad input to the networking flags and commands: each fails with Docker's
//! exit code (125 for `run`, 1 for `network …`), exactly one line on stderr
//! saying what is wrong, and configures nothing: no container record or
//! anything a container has (see `Env::container_footprint`), and no
//! network, bridge, veth or nft rule (see `Env::network_footprint`).

use rdock_tests::{Daemon, Env, Output};

/// Runs `rdockctl ARGS` and checks the exit code, that stdout is empty,
/// that stderr is exactly one `rdockctl: ` line containing each of `words`
/// (case-insensitive), and that neither footprint changed. Returns the
/// output.
#[track_caller]
fn assert_fails(env: &Env, args: &[&str], code: i32, words: &[&str]) -> Output {
    let containers = env.container_footprint();
    let networks = env.network_footprint();
    let out = env.cli(args);
    println!(
        "rdockctl {}\n  exit {}: {}",
        args.join(" "),
        out.code,
        out.stderr.trim_end()
    );
    assert_eq!(out.code, code, "rdockctl {}:\n{out}", args.join(" "));
    assert_eq!(out.stdout, "", "nothing on stdout:\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one error line on stderr:\n{out}");
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
    env.assert_footprint(&containers);
    env.assert_network_footprint(&networks);
    out
}

/// The bad `-p` values and what their errors must mention.
const BAD_PUBLISH: [(&str, &str); 4] = [
    ("70000:80", "70000"),
    ("abc", "abc"),
    ("80:80/sctpx", "sctpx"),
    ("300.1.1.1:8080:80", "300.1.1.1"),
];

#[test]
fn bad_publish_values_are_125() {
    let env = Env::with_busybox();
    for (spec, word) in BAD_PUBLISH {
        assert_fails(&env, &["run", "-p", spec, "busybox", "true"], 125, &[word]);
        assert_fails(
            &env,
            &[
                "run", "-d", "--name", "web", "-p", spec, "busybox", "sleep", "60",
            ],
            125,
            &[word],
        );
        assert_fails(
            &env,
            &["create", "-p", spec, "busybox", "true"],
            125,
            &[word],
        );
    }
    env.assert_no_containers();
}

#[test]
fn bad_publish_values_are_rejected_by_the_cli_alone() {
    let mut env = Env::with_busybox();
    // With every daemon gone, only the CLI can answer: the same one line
    // and 125, not a connection error.
    for d in [Daemon::Imaged, Daemon::Runtimed, Daemon::Netd] {
        env.kill(d);
    }
    for (spec, word) in BAD_PUBLISH {
        let out = env.cli(&["run", "-p", spec, "busybox", "true"]);
        assert_eq!(out.code, 125, "-p {spec}:\n{out}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one error line:\n{out}");
        assert!(
            lines[0].starts_with("rdockctl: ") && lines[0].contains(word),
            "-p {spec} must be refused for what it is, before any daemon is asked:\n{out}"
        );
    }
    // The kill left the containers' world alone: there were none.
    assert_eq!(env.container_leftovers(), Vec::<String>::new());
}

#[test]
fn link_to_a_missing_container_is_125() {
    let env = Env::with_busybox();
    assert_fails(
        &env,
        &["run", "--link", "nosuch:db", "busybox", "true"],
        125,
        &["nosuch"],
    );
    assert_fails(
        &env,
        &[
            "run",
            "-d",
            "-p",
            "80",
            "--link",
            "nosuch:db",
            "busybox",
            "sleep",
            "60",
        ],
        125,
        &["nosuch"],
    );
    env.assert_no_containers();
}

#[test]
fn missing_network_is_125() {
    let env = Env::with_busybox();
    assert_fails(
        &env,
        &["run", "--network", "nosuch", "busybox", "true"],
        125,
        &["nosuch"],
    );
    assert_fails(
        &env,
        &[
            "run",
            "-d",
            "-p",
            "80",
            "--network",
            "nosuch",
            "busybox",
            "sleep",
            "60",
        ],
        125,
        &["nosuch", "not found"],
    );
    env.assert_no_containers();
}

#[test]
fn invalid_subnet_is_1() {
    let env = Env::with_busybox();
    assert_fails(
        &env,
        &["network", "create", "--subnet", "10.0.0.0/33", "x1"],
        1,
        &["10.0.0.0/33"],
    );
    assert_fails(
        &env,
        &["network", "create", "--subnet", "10.300.0.0/16", "x1"],
        1,
        &["10.300.0.0/16"],
    );
    assert_fails(
        &env,
        &["network", "create", "--subnet", "nonsense", "x1"],
        1,
        &["nonsense"],
    );
}

#[test]
fn overlapping_subnets_are_1() {
    let env = Env::with_busybox();
    // Subnets from this environment's pool, so no other test uses them.
    let wide = env.pool().subnet(24, 3).to_string();
    let inner = env.pool().subnet(25, 7).to_string();
    let out = env.cli(&["network", "create", "--subnet", &wide, "first"]);
    out.ok();
    let net = env.network_inspect("first");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], wide, "{net:#}");
    assert_fails(
        &env,
        &["network", "create", "--subnet", &inner, "second"],
        1,
        &[&inner, "overlaps", &wide],
    );
    assert_fails(
        &env,
        &["network", "create", "--subnet", &wide, "second"],
        1,
        &[&wide, "overlaps"],
    );
    // The default network's subnet is taken too.
    let default = env.net().subnet.clone();
    assert_fails(
        &env,
        &["network", "create", "--subnet", &default, "second"],
        1,
        &[&default, "overlaps"],
    );
    env.cli(&["network", "rm", "first"]).ok();
}

#[test]
fn network_name_in_use_is_1() {
    let env = Env::with_busybox();
    env.cli(&["network", "create", "testnet"]).ok();
    assert_fails(
        &env,
        &["network", "create", "testnet"],
        1,
        &["testnet", "already exists"],
    );
    assert_fails(
        &env,
        &["network", "create", "bridge"],
        1,
        &["bridge", "already exists"],
    );
    env.cli(&["network", "rm", "testnet"]).ok();
}

#[test]
fn network_rm_of_a_network_in_use_is_1() {
    let env = Env::with_busybox();
    env.cli(&["network", "create", "testnet"]).ok();
    let id = env.run_detached(&[
        "--network",
        "testnet",
        "--name",
        "user",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_fails(&env, &["network", "rm", "testnet"], 1, &["testnet"]);
    let row = env.container_row("user");
    assert_eq!(
        (row.id.as_str(), row.state.as_str()),
        (id.as_str(), "running")
    );
    let net = env.network_inspect("testnet");
    assert_eq!(net["Containers"][&id]["Name"], "user", "{net:#}");
    // The predefined network is never removed.
    assert_fails(&env, &["network", "rm", "bridge"], 1, &["bridge"]);
    assert_fails(&env, &["network", "rm", "nosuch"], 1, &["nosuch"]);
    env.cli(&["rm", "-f", "user"]).ok();
    env.cli(&["network", "rm", "testnet"]).ok();
}

#[test]
fn failing_command_with_published_ports_leaves_nothing() {
    let env = Env::with_busybox();
    let port = rdock_tests::ports::free_ports(1);
    let mapping = format!("127.0.0.1:{port}:80");
    for detach in [false, true] {
        let mut args = vec!["run"];
        if detach {
            args.push("-d");
        }
        args.extend(["-p", &mapping, "-p", "80/udp", "busybox", "nosuchcmd"]);
        assert_fails(&env, &args, 127, &["nosuchcmd"]);
        std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("port {port} still held after a failed run: {e}"));
    }
    env.assert_no_containers();
}

#[test]
fn run_while_netd_is_down_is_125_and_says_so() {
    let mut env = Env::with_busybox();
    env.kill(Daemon::Netd);
    let before = env.container_footprint();
    let out = env.cli(&["run", "-d", "-p", "80", "busybox", "sleep", "60"]);
    println!("exit {}: {}", out.code, out.stderr.trim_end());
    assert_eq!(out.code, 125, "{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line:\n{out}");
    let line = lines[0].to_lowercase();
    assert!(
        line.starts_with("rdockctl: ") && (line.contains("netd") || line.contains("network")),
        "the error must say that the network daemon cannot be reached:\n{out}"
    );
    env.assert_footprint(&before);
    env.start(Daemon::Netd);
    assert_eq!(
        rdock_tests::net::links_on_bridge(&env.net().bridge),
        Vec::<String>::new()
    );
    env.assert_no_containers();
}

#[test]
fn publishing_on_an_address_the_host_lacks_is_125() {
    let env = Env::with_busybox();
    // An address inside this environment's pool that no network has.
    let ip = env.pool().subnet(24, 3).first_host();
    let spec = format!("{ip}:8080:80");
    assert_fails(
        &env,
        &["run", "-d", "-p", &spec, "busybox", "sleep", "60"],
        125,
        &[&ip.to_string()],
    );
    env.assert_no_containers();
}

#[test]
fn network_alias_on_the_default_network_is_125() {
    let env = Env::with_busybox();
    // Docker: "network-scoped alias is supported only for containers in
    // user defined networks".
    assert_fails(
        &env,
        &[
            "run",
            "-d",
            "--network-alias",
            "foo",
            "busybox",
            "sleep",
            "60",
        ],
        125,
        &["alias", "user defined networks"],
    );
    env.assert_no_containers();
}
