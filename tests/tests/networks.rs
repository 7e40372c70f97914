//! Networking: every container gets an address on its environment's
//! bridge, `--network none` and `host`, published ports (fixed, random,
//! `-P`, UDP) reached from the host through the in-kernel DNAT, containers
//! reaching each other by IP, by link alias and by name and alias on a
//! user-defined network, isolation between networks, port conflicts, a
//! `kill -9` of the network daemon under a published port, addresses of
//! concurrent runs, and what `rm` and `network rm` leave behind.
//!
//! Each test has its own environment (bridge, subnet, pool and nft table);
//! traffic goes only to loopback and to that environment's subnets.
//! Debian's busybox-static cannot resolve names through libc and its wget
//! crashes: containers speak HTTP with `nc`, and names are checked with
//! busybox `nslookup`, which asks the resolver in `/etc/resolv.conf` itself.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use rdock_tests::net::{link_exists, links_on_bridge};
use rdock_tests::{fetch_page, ports, strings, wait_until, Cidr, Daemon, Env, Output};

const LONG: Duration = Duration::from_secs(30);
/// How long httpd may take to answer after `run -d` returned.
const SERVING: Duration = Duration::from_secs(5);
/// What `/var/www/index.html` of the busybox test image says.
const PAGE: &str = "hello from rdock";

/// Busybox httpd in the foreground on port 80, serving the test page.
const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "80", "-h", "/var/www"];

/// A shell line fetching `/` from `HOST:PORT` with `nc` (busybox' wget
/// crashes), printing the response.
fn nc_get(host: &str, port: u16) -> String {
    format!(r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 {host} {port}")
}

/// Imports the busybox test image again as `webimg:latest`, with `EXPOSE
/// 80` and httpd as its command, for `-P` and the link variables (which
/// come from the target image's exposed ports).
#[track_caller]
fn import_web_image(env: &Env) {
    let tar = env.write_file("webimg.tar", &rdock_tests::busybox_rootfs_tar());
    env.cli(&[
        "import",
        &tar.to_string_lossy(),
        "webimg:latest",
        "--change",
        "EXPOSE 80",
        "--change",
        r#"CMD ["httpd", "-f", "-p", "80", "-h", "/var/www"]"#,
    ])
    .ok();
}

/// `run -d ARGS busybox httpd …` with the given extra flags.
#[track_caller]
fn run_httpd(env: &Env, flags: &[&str]) -> String {
    let mut args = flags.to_vec();
    args.push("busybox");
    args.extend(HTTPD);
    env.run_detached(&args)
}

/// `run --rm FLAGS busybox sh -c SCRIPT`, its output (whatever the code).
#[track_caller]
fn run_sh(env: &Env, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend(["busybox", "sh", "-c", script]);
    env.cli(&args)
}

/// Waits until `C`'s log contains `text`; returns the log.
#[track_caller]
fn wait_for_log(env: &Env, container: &str, text: &str) -> String {
    wait_until(LONG, &format!("{text:?} in the log of {container}"), || {
        let logs = env.cli(&["logs", container]);
        logs.stdout.contains(text).then(|| logs.stdout.clone())
    })
}

/// The interface names in `ip addr` output (`2: eth0@if7: <…>` → `eth0`).
fn interfaces(ip_addr: &str) -> Vec<String> {
    ip_addr
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// A free host port on 127.0.0.1 no other test of this process gets.
fn free_port() -> u16 {
    ports::free_ports(1)
}

/// The lines of the environment's nft table mentioning `text`.
fn nft_lines_with(env: &Env, text: &str) -> Vec<String> {
    env.nft_table()
        .lines()
        .filter(|l| l.contains(text))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn container_gets_an_address_gateway_and_mac_on_the_bridge() {
    let env = Env::with_busybox();
    let subnet = env.subnet();
    let id = env.run_detached(&[
        "--name",
        "probe",
        "busybox",
        "sh",
        "-c",
        "ip addr; ip route; echo done; sleep 60",
    ]);
    let ip = env.container_ip("probe");
    assert!(subnet.contains(ip), "{ip} is outside {subnet}");
    assert_ne!(
        ip,
        subnet.first_host(),
        "the gateway's address was handed out"
    );
    let gateway = env.inspect_format("probe", "{{.NetworkSettings.Gateway}}");
    assert_eq!(gateway, subnet.first_host().to_string());
    let mac = env.inspect_format("probe", "{{.NetworkSettings.MacAddress}}");
    assert!(mac.starts_with("02:42:"), "MacAddress {mac:?}");
    let o = ip.octets();
    assert_eq!(
        mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
        "Docker derives the MAC from the address"
    );

    let logs = wait_for_log(&env, "probe", "done");
    assert_eq!(interfaces(&logs), ["lo", "eth0"], "{logs}");
    let prefix = subnet.prefix;
    assert!(
        logs.contains(&format!("inet {ip}/{prefix} ")),
        "eth0 must have {ip}/{prefix}:\n{logs}"
    );
    assert!(logs.contains(&format!("link/ether {mac} ")), "{logs}");
    assert!(
        logs.contains(&format!("default via {gateway} dev eth0")),
        "the default route goes through the gateway:\n{logs}"
    );

    let networks = env.inspect_container(&id)["NetworkSettings"]["Networks"].clone();
    let bridge = &networks["bridge"];
    assert_eq!(bridge["IPAddress"], ip.to_string(), "{networks:#}");
    assert_eq!(bridge["Gateway"], gateway, "{networks:#}");
    assert_eq!(bridge["MacAddress"], mac, "{networks:#}");
    assert_eq!(bridge["IPPrefixLen"], prefix, "{networks:#}");

    // The container's veth is on this environment's bridge.
    assert_eq!(links_on_bridge(&env.net().bridge).len(), 1);
    env.cli(&["rm", "-f", "probe"]).ok();
    env.assert_no_containers();
    assert_eq!(links_on_bridge(&env.net().bridge), Vec::<String>::new());
}

#[test]
fn network_none_has_only_loopback() {
    let env = Env::with_busybox();
    let out = env.cli(&["run", "--rm", "--network", "none", "busybox", "ip", "addr"]);
    assert_eq!(interfaces(out.ok()), ["lo"], "{out}");
    assert!(out.stdout.contains("inet 127.0.0.1/8"), "lo is up:\n{out}");
    let id = env.run_detached(&["--network", "none", "busybox", "sleep", "60"]);
    let ip = env.inspect_format(&id, "{{.NetworkSettings.IPAddress}}");
    assert_eq!(ip, "", "--network none has no address");
    assert_eq!(links_on_bridge(&env.net().bridge), Vec::<String>::new());
}

#[test]
fn network_host_sees_the_host_interfaces() {
    let env = Env::with_busybox();
    let out = env.cli(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    let bridge = format!("{}:", env.net().bridge);
    assert!(
        out.ok()
            .lines()
            .any(|l| l.trim_start().starts_with(&bridge)),
        "the host's network namespace has {}:\n{out}",
        env.net().bridge
    );
    assert_eq!(links_on_bridge(&env.net().bridge), Vec::<String>::new());
}

#[test]
fn published_port_on_loopback_serves_the_page() {
    let env = Env::with_busybox();
    let port = free_port();
    let mapping = format!("127.0.0.1:{port}:80");
    run_httpd(&env, &["--name", "web", "-p", &mapping]);
    let page = fetch_page(&format!("127.0.0.1:{port}"), SERVING);
    assert!(page.contains(PAGE), "{page}");

    let ps = env.cli(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps.ok(), format!("web 127.0.0.1:{port}->80/tcp\n"), "{ps}");
    let table = env.cli(&["ps"]);
    assert!(
        table.ok().contains(&format!("127.0.0.1:{port}->80/tcp")),
        "the PORTS column:\n{table}"
    );
    let out = env.cli(&["port", "web"]);
    assert_eq!(out.ok(), format!("80/tcp -> 127.0.0.1:{port}\n"), "{out}");
    let out = env.cli(&["port", "web", "80"]);
    assert_eq!(out.ok(), format!("127.0.0.1:{port}\n"), "{out}");
    let out = env.cli(&["port", "web", "80/tcp"]);
    assert_eq!(out.ok(), format!("127.0.0.1:{port}\n"), "{out}");
    let out = env.cli(&["port", "web", "81"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(
        out.stderr, "rdockctl: no public port '81/tcp' published for web\n",
        "Docker's message: {out}"
    );
    let ports = env.inspect_format("web", "{{json .NetworkSettings.Ports}}");
    let ports: serde_json::Value =
        serde_json::from_str(&ports).unwrap_or_else(|e| panic!("{e}: {ports}"));
    assert_eq!(
        ports,
        serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]})
    );

    // The mapping is one DNAT rule in the environment's own table, and it
    // goes with the container.
    let ip = env.container_ip("web");
    let rules = nft_lines_with(&env, &format!("dnat to {ip}:80"));
    assert_eq!(rules.len(), 1, "{}", env.nft_table());
    assert!(rules[0].contains(&format!("dport {port}")), "{rules:?}");
    env.cli(&["rm", "-f", "web"]).ok();
    env.assert_no_containers();
    assert_eq!(nft_lines_with(&env, "dnat to"), Vec::<String>::new());
    assert!(
        rdock_tests::http_get(&format!("127.0.0.1:{port}")).is_err(),
        "the port must be closed once the container is gone"
    );
}

#[test]
fn random_host_port_is_shown_by_port_and_serves() {
    let env = Env::with_busybox();
    run_httpd(&env, &["--name", "web", "-p", "80"]);
    let out = env.cli(&["port", "web", "80"]);
    let shown = out.ok().trim();
    let port: u16 = shown
        .strip_prefix("0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("`port web 80` must print 0.0.0.0:<port>:\n{out}"));
    assert_ne!(port, 0, "{out}");
    let all = env.cli(&["port", "web"]);
    assert_eq!(all.ok(), format!("80/tcp -> 0.0.0.0:{port}\n"), "{all}");
    let ps = env.cli(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.ok(), format!("0.0.0.0:{port}->80/tcp\n"), "{ps}");
    let page = fetch_page(&format!("127.0.0.1:{port}"), SERVING);
    assert!(page.contains(PAGE), "{page}");
    // Published on all of the host's addresses: the bridge's own too...
    let gateway = env.subnet().first_host();
    let page = fetch_page(&format!("{gateway}:{port}"), SERVING);
    assert!(page.contains(PAGE), "{page}");
    // ...also for another container, which reaches it through the
    // gateway (hairpin through the DNAT).
    let out = run_sh(&env, &[], &nc_get(&gateway.to_string(), port));
    assert!(
        out.stdout.contains(PAGE),
        "{gateway}:{port} from a container:\n{out}"
    );

    // A random port on a given address.
    run_httpd(&env, &["--name", "web2", "-p", "127.0.0.1::80"]);
    let out = env.cli(&["port", "web2", "80"]);
    let port2: u16 = out
        .ok()
        .trim()
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("`port web2 80` must print 127.0.0.1:<port>:\n{out}"));
    assert_ne!(port2, port, "two random ports are one");
    let page = fetch_page(&format!("127.0.0.1:{port2}"), SERVING);
    assert!(page.contains(PAGE), "{page}");
}

#[test]
fn publish_all_maps_the_images_exposed_ports() {
    let env = Env::with_busybox();
    import_web_image(&env);
    env.run_detached(&["--name", "web", "-P", "webimg"]);
    let out = env.cli(&["port", "web"]);
    let port: u16 = out
        .ok()
        .trim()
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("`port web` must show 80/tcp on a random port:\n{out}"));
    let page = fetch_page(&format!("127.0.0.1:{port}"), SERVING);
    assert!(page.contains(PAGE), "{page}");
}

/// The `Udp:` counters of the network namespace process `pid` is in (from
/// `/proc/PID/net/snmp`), by name.
#[track_caller]
fn udp_counters(pid: &str) -> std::collections::BTreeMap<String, u64> {
    let path = format!("/proc/{pid}/net/snmp");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("Udp: "))
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{path}:\n{text}");
    rows[0]
        .iter()
        .zip(&rows[1])
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0)))
        .collect()
}

#[test]
fn udp_published_port_delivers_datagrams() {
    let env = Env::with_busybox();
    let port = free_port();
    let mapping = format!("127.0.0.1:{port}:5353/udp");
    let tcp = format!("127.0.0.1:{port}:5353");
    // Debian's busybox has no UDP server (its nc has no -u): the datagrams
    // are counted by the container's network namespace instead, as
    // arrivals on a port nothing listens on (`Udp: NoPorts`).
    // The same host port for TCP too: they do not conflict.
    env.run_detached(&[
        "--name", "udp", "-p", &mapping, "-p", &tcp, "busybox", "sleep", "60",
    ]);
    let out = env.cli(&["port", "udp", "5353/udp"]);
    assert_eq!(out.ok(), format!("127.0.0.1:{port}\n"), "{out}");
    let out = env.cli(&["port", "udp", "5353/tcp"]);
    assert_eq!(out.ok(), format!("127.0.0.1:{port}\n"), "{out}");
    let ps = env.cli(&["ps", "--format", "{{.Ports}}"]);
    let mut shown: Vec<&str> = ps.ok().trim().split(", ").collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            format!("127.0.0.1:{port}->5353/tcp"),
            format!("127.0.0.1:{port}->5353/udp")
        ],
        "{ps}"
    );
    let rules = nft_lines_with(&env, "udp dport");
    assert_eq!(rules.len(), 1, "{}", env.nft_table());
    let ip = env.container_ip("udp");
    assert!(
        rules[0].contains(&format!("dnat to {ip}:5353")),
        "{rules:?}"
    );

    let pid = env.inspect_format("udp", "{{.State.Pid}}");
    let before = udp_counters(&pid)["NoPorts"];
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind udp: {e}"));
    for _ in 0..5 {
        sock.send_to(b"hello-udp\n", ("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("send to 127.0.0.1:{port}: {e}"));
    }
    let after = wait_until(LONG, "datagrams in the container's namespace", || {
        let n = udp_counters(&pid)["NoPorts"];
        (n >= before + 5).then_some(n)
    });
    assert!(after >= before + 5, "{before} -> {after}");
}

#[test]
fn ps_lists_ports_in_dockers_order() {
    let env = Env::with_busybox();
    let (a, b) = (free_port(), free_port());
    // Given in another order than Docker shows them: Docker sorts by
    // container port, then host address, then host port, then protocol
    // (`DisplayablePorts` in docker/cli).
    let flags = [
        format!("127.0.0.1:{a}:81/udp"),
        format!("127.0.0.1:{a}:81"),
        format!("127.0.0.1:{b}:80"),
    ];
    let mut args = vec!["--name", "ports"];
    for f in &flags {
        args.extend(["-p", f.as_str()]);
    }
    args.extend(["busybox", "sleep", "60"]);
    env.run_detached(&args);
    let ps = env.cli(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(
        ps.ok(),
        format!("127.0.0.1:{b}->80/tcp, 127.0.0.1:{a}->81/tcp, 127.0.0.1:{a}->81/udp\n"),
        "{ps}"
    );
}

#[test]
fn containers_reach_each_other_by_ip() {
    let env = Env::with_busybox();
    run_httpd(&env, &["--name", "web"]);
    let ip = env.container_ip("web").to_string();
    let script = format!("ping -c1 -W2 {ip} && {}", nc_get(&ip, 80));
    // httpd may still be starting.
    let out = wait_until(LONG, "the page from web over the bridge", || {
        let out = run_sh(&env, &[], &script);
        (out.code == 0 && out.stdout.contains(PAGE)).then_some(out)
    });
    assert!(out.stdout.contains("1 packets received"), "{out}");
}

#[test]
fn link_alias_is_in_hosts_and_sets_link_variables() {
    let env = Env::with_busybox();
    import_web_image(&env);
    env.run_detached(&["--name", "web", "webimg"]);
    let ip = env.container_ip("web").to_string();

    let out = env.cli(&[
        "run",
        "--rm",
        "--name",
        "client",
        "--link",
        "web:site",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; echo ---; env | sort",
    ]);
    let (hosts, vars) = out
        .ok()
        .split_once("---\n")
        .unwrap_or_else(|| panic!("{out}"));
    let line = hosts
        .lines()
        .find(|l| l.split_whitespace().next() == Some(ip.as_str()))
        .unwrap_or_else(|| panic!("/etc/hosts has no line for {ip}:\n{hosts}"));
    let names: Vec<&str> = line.split_whitespace().skip(1).collect();
    assert!(names.contains(&"site"), "{line}");
    assert!(names.contains(&"web"), "{line}");
    let vars: Vec<&str> = vars.lines().collect();
    for want in [
        format!("SITE_PORT_80_TCP_ADDR={ip}"),
        "SITE_PORT_80_TCP_PORT=80".to_string(),
        "SITE_PORT_80_TCP_PROTO=tcp".to_string(),
        format!("SITE_PORT_80_TCP=tcp://{ip}:80"),
        format!("SITE_PORT=tcp://{ip}:80"),
        "SITE_NAME=/client/site".to_string(),
    ] {
        assert!(vars.contains(&want.as_str()), "{want} missing:\n{out}");
    }

    // The alias works as a host name: busybox' nc looks it up in
    // /etc/hosts.
    let script = nc_get("site", 80);
    let out = wait_until(LONG, "the page from web by its link alias", || {
        let out = run_sh(&env, &["--link", "web:site"], &script);
        out.stdout.contains(PAGE).then_some(out)
    });
    assert!(out.stdout.starts_with("HTTP/1."), "{out}");
}

#[test]
fn names_and_aliases_resolve_on_a_user_network() {
    let env = Env::with_busybox();
    let out = env.cli(&["network", "create", "testnet"]);
    let net_id = out.ok().trim().to_string();
    assert!(
        net_id.len() == 64 && net_id.chars().all(|c| c.is_ascii_hexdigit()),
        "`network create` prints the id:\n{out}"
    );
    let ls = env.network_names();
    assert_eq!(ls, ["bridge", "testnet"]);
    let net = env.network_inspect("testnet");
    assert_eq!(net["Name"], "testnet", "{net:#}");
    assert_eq!(net["Id"], net_id, "{net:#}");
    let subnet = Cidr::parse(
        net["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .unwrap_or_else(|| panic!("no IPAM.Config[0].Subnet: {net:#}")),
    );
    assert!(
        env.pool().contains(subnet.addr) && subnet.prefix >= env.pool().prefix,
        "a network without --subnet takes one from the pool {}: {subnet}",
        env.pool()
    );
    let gateway = subnet.first_host().to_string();
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], gateway, "{net:#}");

    let bb = run_httpd(
        &env,
        &[
            "--network",
            "testnet",
            "--name",
            "bb",
            "--network-alias",
            "bee",
        ],
    );
    let ip = env.container_ip("bb");
    assert!(subnet.contains(ip), "{ip} outside {subnet}");
    assert_eq!(
        env.inspect_format("bb", "{{.NetworkSettings.Gateway}}"),
        gateway
    );
    let networks = env.inspect_container("bb")["NetworkSettings"]["Networks"].clone();
    assert_eq!(
        networks["testnet"]["IPAddress"],
        ip.to_string(),
        "{networks:#}"
    );
    let aliases = networks["testnet"]["Aliases"].to_string();
    assert!(aliases.contains("\"bee\""), "{networks:#}");
    let net = env.network_inspect("testnet");
    let member = &net["Containers"][&bb];
    assert_eq!(member["Name"], "bb", "{net:#}");
    assert_eq!(
        member["IPv4Address"],
        format!("{ip}/{}", subnet.prefix),
        "{net:#}"
    );

    let out = run_sh(
        &env,
        &["--network", "testnet", "--name", "aa"],
        &format!(
            "cat /etc/resolv.conf; echo ---; nslookup bb; echo ---; nslookup bee; echo ---; {}",
            nc_get("bb", 80)
        ),
    );
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert!(
        parts[0]
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["nameserver", gateway.as_str()]),
        "resolv.conf points at the network's DNS server on {gateway}:\n{out}"
    );
    for (name, answer) in [("bb", parts[1]), ("bee", parts[2])] {
        assert!(
            answer.contains(&format!("Address: {ip}")),
            "`nslookup {name}` must answer {ip}:\n{out}"
        );
    }
    assert!(parts[3].contains(PAGE), "`nc bb 80` by name:\n{out}");
}

#[test]
fn networks_are_isolated_from_each_other() {
    let env = Env::with_busybox();
    env.cli(&["network", "create", "netx"]).ok();
    env.cli(&["network", "create", "nety"]).ok();
    run_httpd(&env, &["--network", "netx", "--name", "xweb"]);
    run_httpd(&env, &["--network", "nety", "--name", "yweb"]);
    run_httpd(&env, &["--name", "dweb"]);
    let x = env.container_ip("xweb").to_string();
    let y = env.container_ip("yweb").to_string();
    let d = env.container_ip("dweb").to_string();

    // A probe prints `NAME ok` or `NAME blocked` for each target: a ping
    // and an HTTP request with nc.
    let probe = |targets: &[(&str, &str)]| {
        targets
            .iter()
            .map(|(name, ip)| {
                format!(
                    "if ping -c1 -W2 {ip} >/dev/null 2>&1; then echo {name} ping ok; else echo {name} ping blocked; fi; \
                     if {} 2>/dev/null | grep -q '{PAGE}'; then echo {name} http ok; else echo {name} http blocked; fi",
                    nc_get(ip, 80)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    // The controls (the same network's peer) show that the probe can see
    // reachability at all; httpd may still be starting, so wait for them.
    let (x, y, d) = (x.as_str(), y.as_str(), d.as_str());
    let cases = [
        ("netx", ("x", x), [("y", y), ("d", d)]),
        ("nety", ("y", y), [("x", x), ("d", d)]),
        ("bridge", ("d", d), [("x", x), ("y", y)]),
    ];
    for (network, (own, own_ip), blocked) in cases {
        let mut targets = vec![(own, own_ip)];
        targets.extend(blocked);
        let script = probe(&targets);
        let out = wait_until(LONG, &format!("the control from {network}"), || {
            let out = run_sh(&env, &["--network", network], &script);
            (out.stdout.contains(&format!("{own} ping ok"))
                && out.stdout.contains(&format!("{own} http ok")))
            .then_some(out)
        });
        for (name, ip) in blocked {
            assert!(
                out.stdout.contains(&format!("{name} ping blocked"))
                    && out.stdout.contains(&format!("{name} http blocked")),
                "a container on {network} reached {name} ({ip}) on another network:\n{out}"
            );
        }
    }
}

#[test]
fn host_port_of_another_container_is_refused_and_leaves_nothing() {
    let env = Env::with_busybox();
    let port = free_port();
    let mapping = format!("127.0.0.1:{port}:80");
    run_httpd(&env, &["--name", "web", "-p", &mapping]);
    fetch_page(&format!("127.0.0.1:{port}"), SERVING);

    let containers = env.container_footprint();
    let network = env.network_footprint();
    let all_addresses = format!("{port}:80");
    for (name, spec) in [("web2", mapping.as_str()), ("web3", all_addresses.as_str())] {
        let out = env.cli(&[
            "run", "-d", "--name", name, "-p", spec, "busybox", "sleep", "60",
        ]);
        assert_eq!(out.code, 125, "-p {spec} again:\n{out}");
        assert_eq!(out.stdout, "", "{out}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one error line:\n{out}");
        assert!(
            lines[0].starts_with("rdockctl: ") && lines[0].contains(&port.to_string()),
            "the error names the port:\n{out}"
        );
        env.assert_footprint(&containers);
        env.assert_network_footprint(&network);
    }
    // The first still serves.
    let page = fetch_page(&format!("127.0.0.1:{port}"), SERVING);
    assert!(page.contains(PAGE), "{page}");
}

#[test]
fn host_port_of_another_program_is_refused() {
    let env = Env::with_busybox();
    let port = free_port();
    let listener =
        TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("bind {port}: {e}"));
    let containers = env.container_footprint();
    let network = env.network_footprint();
    for spec in [format!("127.0.0.1:{port}:80"), format!("{port}:80")] {
        let out = env.cli(&["run", "-d", "-p", &spec, "busybox", "sleep", "60"]);
        assert_eq!(
            out.code, 125,
            "-p {spec} on a port held by the test:\n{out}"
        );
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one error line:\n{out}");
        assert!(
            lines[0].starts_with("rdockctl: ") && lines[0].contains(&port.to_string()),
            "the error names the port:\n{out}"
        );
        env.assert_footprint(&containers);
        env.assert_network_footprint(&network);
    }
    drop(listener);
    // Free again, the port can be published.
    let mapping = format!("127.0.0.1:{port}:80");
    run_httpd(&env, &["-p", &mapping]);
    let page = fetch_page(&format!("127.0.0.1:{port}"), SERVING);
    assert!(page.contains(PAGE), "{page}");
}

#[test]
fn netd_kill_9_and_restart_keep_the_published_port_and_addresses() {
    let mut env = Env::with_busybox();
    let port = free_port();
    let mapping = format!("127.0.0.1:{port}:80");
    let addr = format!("127.0.0.1:{port}");
    run_httpd(&env, &["--name", "web", "-p", &mapping]);
    fetch_page(&addr, SERVING);
    let web_ip = env.container_ip("web");
    let rules_before = nft_lines_with(&env, "dnat to");

    env.kill(Daemon::Netd);
    // The kernel keeps forwarding while the daemon is away.
    for _ in 0..3 {
        let page = fetch_page(&addr, SERVING);
        assert!(page.contains(PAGE), "with netd down:\n{page}");
    }
    env.start(Daemon::Netd);
    let page = fetch_page(&addr, SERVING);
    assert!(page.contains(PAGE), "after netd restarted:\n{page}");
    assert_eq!(
        nft_lines_with(&env, "dnat to"),
        rules_before,
        "the restarted netd keeps the rules:\n{}",
        env.nft_table()
    );
    let out = env.cli(&["port", "web"]);
    assert_eq!(out.ok(), format!("80/tcp -> {addr}\n"), "{out}");

    // The restarted daemon holds the host port again and knows web's lease.
    let out = env.cli(&["run", "-d", "-p", &mapping, "busybox", "sleep", "60"]);
    assert_eq!(
        out.code, 125,
        "the port is still web's after a restart:\n{out}"
    );
    let mut seen = BTreeSet::from([web_ip]);
    for i in 0..3 {
        let id = env.run_detached(&["busybox", "sleep", "60"]);
        let ip = env.container_ip(&id);
        assert!(
            seen.insert(ip),
            "container {i} after the restart got {ip}, an address in use: {seen:?}"
        );
    }
    let page = fetch_page(&addr, SERVING);
    assert!(page.contains(PAGE), "{page}");

    env.cli(&["rm", "-f", "web"]).ok();
    assert_eq!(
        nft_lines_with(&env, "dnat to"),
        Vec::<String>::new(),
        "rm after the restart removes the rule"
    );
}

#[test]
fn rm_while_netd_is_down_is_reconciled_when_it_is_back() {
    let mut env = Env::with_busybox();
    let baseline = env.network_footprint();
    let port = free_port();
    let mapping = format!("127.0.0.1:{port}:80");
    run_httpd(&env, &["--name", "web", "-p", &mapping]);
    fetch_page(&format!("127.0.0.1:{port}"), SERVING);

    env.kill(Daemon::Netd);
    env.cli(&["rm", "-f", "web"]).ok();
    env.assert_no_containers();
    env.start(Daemon::Netd);
    // The restarted daemon finds the container gone: its rule, host port,
    // lease and veth go.
    env.assert_network_footprint(&baseline);
    let net = env.network_inspect("bridge");
    assert_eq!(net["Containers"], serde_json::json!({}), "{net:#}");
    TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} still held after the reconciliation: {e}"));
}

#[test]
fn user_network_dns_answers_again_after_netd_kill_9() {
    let mut env = Env::with_busybox();
    env.cli(&["network", "create", "testnet"]).ok();
    env.run_detached(&[
        "--network",
        "testnet",
        "--name",
        "bb",
        "--network-alias",
        "bee",
        "busybox",
        "sleep",
        "60",
    ]);
    let ip = env.container_ip("bb");
    let lookup = "nslookup bb; nslookup bee";
    let out = run_sh(&env, &["--network", "testnet"], lookup);
    assert_eq!(
        out.stdout.matches(&format!("Address: {ip}")).count(),
        2,
        "before the kill:\n{out}"
    );
    env.kill(Daemon::Netd);
    env.start(Daemon::Netd);
    let out = run_sh(&env, &["--network", "testnet"], lookup);
    assert_eq!(
        out.stdout.matches(&format!("Address: {ip}")).count(),
        2,
        "the network's DNS server answers again after netd restarted:\n{out}"
    );
    // And a container started afterwards is found by name too.
    env.run_detached(&[
        "--network",
        "testnet",
        "--name",
        "cc",
        "busybox",
        "sleep",
        "60",
    ]);
    let cc = env.container_ip("cc");
    assert_ne!(cc, ip);
    let out = run_sh(&env, &["--network", "testnet"], "nslookup cc");
    assert!(out.stdout.contains(&format!("Address: {cc}")), "{out}");
}

#[test]
fn stop_releases_the_host_port_and_start_takes_it_again() {
    let env = Env::with_busybox();
    let port = free_port();
    let mapping = format!("127.0.0.1:{port}:80");
    let addr = format!("127.0.0.1:{port}");
    run_httpd(&env, &["--name", "web", "-p", &mapping]);
    fetch_page(&addr, SERVING);
    env.cli(&["stop", "web"]).ok();
    // Like Docker: a stopped container has no endpoint, so no rule and no
    // veth; its configured ports stay in HostConfig.
    assert_eq!(
        nft_lines_with(&env, "dnat to"),
        Vec::<String>::new(),
        "{}",
        env.nft_table()
    );
    assert_eq!(links_on_bridge(&env.net().bridge), Vec::<String>::new());
    assert!(
        rdock_tests::http_get(&addr).is_err(),
        "{addr} answers for a stopped container"
    );
    let out = env.cli(&["port", "web"]);
    assert_eq!(out.ok(), "", "{out}");
    let bindings = env.inspect_container("web")["HostConfig"]["PortBindings"].clone();
    assert_eq!(
        bindings,
        serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]})
    );

    env.cli(&["start", "web"]).ok();
    let page = fetch_page(&addr, SERVING);
    assert!(page.contains(PAGE), "after start:\n{page}");
    let out = env.cli(&["port", "web"]);
    assert_eq!(out.ok(), format!("80/tcp -> {addr}\n"), "{out}");
    assert_eq!(
        nft_lines_with(&env, "dnat to").len(),
        1,
        "{}",
        env.nft_table()
    );
}

#[test]
fn two_runs_with_one_host_port_one_wins() {
    let env = Env::with_busybox();
    let baseline = env.network_footprint();
    for round in 0..3 {
        let port = free_port();
        let mapping = format!("127.0.0.1:{port}:80");
        let mut run = strings(&["run", "-d", "-p", &mapping, "busybox"]);
        run.extend(strings(&HTTPD));
        let outs = env.cli_all_at_once(&[run.clone(), run], LONG);
        let (won, lost): (Vec<&Output>, Vec<&Output>) = outs.iter().partition(|o| o.code == 0);
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "round {round}: exactly one may have port {port}:\n{}\n{}",
            outs[0],
            outs[1]
        );
        let loser = lost[0];
        assert_eq!(loser.code, 125, "round {round}:\n{loser}");
        let lines: Vec<&str> = loser.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "round {round}: one error line:\n{loser}");
        assert!(lines[0].contains(&port.to_string()), "{loser}");
        let rows = env.containers();
        assert_eq!(
            rows.len(),
            1,
            "round {round}: only the winner is left: {rows:#?}"
        );
        assert_eq!(rows[0].id, won[0].stdout.trim());
        assert_eq!(links_on_bridge(&env.net().bridge).len(), 1);
        assert_eq!(
            nft_lines_with(&env, "dnat to").len(),
            1,
            "{}",
            env.nft_table()
        );
        let page = fetch_page(&format!("127.0.0.1:{port}"), SERVING);
        assert!(page.contains(PAGE), "{page}");
        env.cli(&["rm", "-f", &rows[0].id]).ok();
        env.assert_no_containers();
        env.assert_network_footprint(&baseline);
    }
}

#[test]
fn two_network_creates_with_one_name_one_wins() {
    let env = Env::with_busybox();
    for round in 0..3 {
        let create = strings(&["network", "create", "testnet"]);
        let outs = env.cli_all_at_once(&[create.clone(), create], LONG);
        let (won, lost): (Vec<&Output>, Vec<&Output>) = outs.iter().partition(|o| o.code == 0);
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "round {round}: exactly one may create testnet:\n{}\n{}",
            outs[0],
            outs[1]
        );
        let line = lost[0].error_line();
        assert!(line.contains("already exists"), "{}", lost[0]);
        assert_eq!(env.network_names(), ["bridge", "testnet"]);
        // One bridge for it, not two.
        let bridges: Vec<String> = rdock_tests::net::links_with_address_in(&env.pool())
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(bridges.len(), 1, "round {round}: {bridges:?}");
        env.cli(&["network", "rm", "testnet"]).ok();
        let left = rdock_tests::net::links_with_address_in(&env.pool());
        assert_eq!(left, [], "round {round}: a bridge outlived the network");
    }
}

#[test]
fn thirty_concurrent_runs_get_thirty_distinct_addresses() {
    let env = Env::with_busybox();
    let baseline = env.network_footprint();
    let run = strings(&["run", "-d", "busybox", "sleep", "60"]);
    let runs: Vec<Vec<String>> = (0..30).map(|_| run.clone()).collect();
    let outs = env.cli_all_at_once(&runs, Duration::from_secs(180));
    let failed: Vec<String> = outs
        .iter()
        .filter(|o| o.code != 0)
        .map(ToString::to_string)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 30 runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let subnet = env.subnet();
    let mut seen: BTreeSet<Ipv4Addr> = BTreeSet::new();
    for o in &outs {
        let id = o.stdout.trim();
        let ip = env.container_ip(id);
        assert!(subnet.contains(ip), "{ip} outside {subnet}");
        assert!(seen.insert(ip), "{ip} handed out twice: {seen:?}");
    }
    assert_eq!(seen.len(), 30);
    assert!(
        !seen.contains(&subnet.first_host()),
        "the gateway was handed out"
    );
    assert_eq!(links_on_bridge(&env.net().bridge).len(), 30);

    let mut args = vec!["rm", "-f"];
    args.extend(outs.iter().map(|o| o.stdout.trim()));
    env.cli(&args).ok();
    env.assert_no_containers();
    env.assert_network_footprint(&baseline);
}

#[test]
fn rm_and_network_rm_leave_no_veth_bridge_or_rule() {
    let env = Env::with_busybox();
    let baseline = env.network_footprint();
    env.cli(&["network", "create", "testnet"]).ok();
    let net = env.network_inspect("testnet");
    let bridge = net["Options"]["bridge.name"]
        .as_str()
        .unwrap_or_else(|| panic!("no Options[\"bridge.name\"]: {net:#}"))
        .to_string();
    assert!(link_exists(&bridge), "the network's bridge {bridge} exists");

    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let m1 = format!("127.0.0.1:{p1}:80");
    let m2 = format!("127.0.0.1:{p2}:80");
    let m3 = format!("127.0.0.1:{p3}:5353/udp");
    run_httpd(&env, &["--name", "onbridge", "-p", &m1]);
    run_httpd(
        &env,
        &["--name", "ontest", "--network", "testnet", "-p", &m2],
    );
    env.run_detached(&[
        "--network",
        "testnet",
        "--name",
        "other",
        "-p",
        &m3,
        "busybox",
        "sleep",
        "60",
    ]);
    // A --rm container with a published port goes with its ports.
    let m4 = format!("127.0.0.1:{}:80", free_port());
    let out = env.cli(&["run", "--rm", "-p", &m4, "busybox", "true"]);
    assert_eq!(out.ok(), "", "{out}");

    fetch_page(&format!("127.0.0.1:{p1}"), SERVING);
    fetch_page(&format!("127.0.0.1:{p2}"), SERVING);
    assert_eq!(links_on_bridge(&env.net().bridge).len(), 1);
    assert_eq!(links_on_bridge(&bridge).len(), 2);
    assert_eq!(
        nft_lines_with(&env, "dnat to").len(),
        3,
        "{}",
        env.nft_table()
    );

    // In use: refused, and nothing goes.
    let out = env.cli(&["network", "rm", "testnet"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(link_exists(&bridge));

    env.cli(&["rm", "-f", "onbridge", "ontest", "other"]).ok();
    env.assert_no_containers();
    assert_eq!(links_on_bridge(&env.net().bridge), Vec::<String>::new());
    assert_eq!(links_on_bridge(&bridge), Vec::<String>::new());
    assert_eq!(
        nft_lines_with(&env, "dnat to"),
        Vec::<String>::new(),
        "{}",
        env.nft_table()
    );
    for p in [p1, p2] {
        assert!(
            rdock_tests::http_get(&format!("127.0.0.1:{p}")).is_err(),
            "port {p} still answers"
        );
    }

    let out = env.cli(&["network", "rm", "testnet"]);
    assert_eq!(out.ok(), "testnet\n", "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while link_exists(&bridge) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !link_exists(&bridge),
        "bridge {bridge} outlived its network"
    );
    let table = env.nft_table();
    assert!(
        !table.contains(&bridge),
        "the nft table still mentions {bridge}:\n{table}"
    );
    env.assert_network_footprint(&baseline);
    // Every port is free again.
    for p in [p1, p2] {
        TcpListener::bind(("127.0.0.1", p)).unwrap_or_else(|e| panic!("port {p} still held: {e}"));
    }
    UdpSocket::bind(("127.0.0.1", p3)).unwrap_or_else(|e| panic!("udp port {p3} still held: {e}"));
}
