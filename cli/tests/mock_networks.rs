//! Networking in the real `rdockctl` binary against the mock daemons:
//! `-p` and friends in the create request, `port`, `ps` PORTS, and the
//! `network` commands against a mock network daemon.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use common::{start, start_with_net, text, Env, BRIDGE_NET_ID};

async fn env() -> Env {
    let env = start_with_net().await;
    env.images.seen.lock().unwrap().pulled = true;
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn run_publish_sends_port_bindings_and_port_shows_them() {
    let env = env().await;
    let out = env
        .run(
            &[
                "run",
                "-d",
                "--name",
                "web",
                "-p",
                "8080:80",
                "-p",
                "127.0.0.1::53/udp",
                "--publish",
                "[::1]:9000-9001:90-91",
                "-P",
                "--link",
                "db:database",
                "--network",
                "app",
                "--network-alias",
                "www",
                "busybox",
                "sleep",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    {
        let st = env.runtime.state.lock().unwrap();
        let r = &st.created[0];
        let ports: Vec<(&str, u32, u32, &str)> = r
            .ports
            .iter()
            .map(|p| {
                (
                    p.host_ip.as_str(),
                    p.host_port,
                    p.container_port,
                    p.protocol.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("", 8080, 80, "tcp"),
                ("127.0.0.1", 0, 53, "udp"),
                ("::1", 9000, 90, "tcp"),
                ("::1", 9001, 91, "tcp"),
            ]
        );
        assert!(r.publish_all);
        assert_eq!(r.links, ["db:database"]);
        assert_eq!(r.network, "app");
        assert_eq!(r.network_aliases, ["www"]);
    }

    // port: every mapping, naturally sorted; or one private port's hosts.
    let out = env.run(&["port", "web"], None, &[]).await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "53/udp -> 127.0.0.1:32769\n80/tcp -> 0.0.0.0:8080\n90/tcp -> [::1]:9000\n91/tcp -> [::1]:9001\n"
    );
    let out = env.run(&["port", "web", "80"], None, &[]).await;
    assert_eq!(text(&out.stdout), "0.0.0.0:8080\n");
    let out = env
        .run(&["container", "port", "web", "53/udp"], None, &[])
        .await;
    assert_eq!(text(&out.stdout), "127.0.0.1:32769\n");
    let out = env.run(&["port", "web", "81"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "rdockctl: no public port '81/tcp' published for web\n"
    );
    let out = env.run(&["port", "web", "53"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: no public port '53/tcp' published for web\n"
    );
    let out = env.run(&["port", "web", "http"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: invalid port: http\n");
    let out = env.run(&["port", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");

    // A container with nothing published: no lines, exit 0.
    let out = env
        .run(
            &["run", "-d", "--name", "quiet", "busybox", "sleep"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["port", "quiet"], None, &[]).await;
    assert_eq!(
        (text(&out.stdout), out.status.code()),
        (String::new(), Some(0))
    );

    // ps: the daemon's PORTS text, in the table and in JSON.
    let out = env
        .run(&["ps", "--format", "{{.Names}}: {{.Ports}}"], None, &[])
        .await;
    assert_eq!(
        text(&out.stdout),
        "web: 0.0.0.0:8080->80/tcp, 127.0.0.1:32769->53/udp, ::1:9000->90/tcp, ::1:9001->91/tcp\nquiet: \n"
    );
    let out = env.run(&["ps", "--format", "json"], None, &[]).await;
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        first["Ports"],
        "0.0.0.0:8080->80/tcp, 127.0.0.1:32769->53/udp, ::1:9000->90/tcp, ::1:9001->91/tcp"
    );
    let out = env.run(&["ps"], None, &[]).await;
    let table = text(&out.stdout);
    assert!(
        table.lines().next().unwrap().contains("   PORTS   "),
        "{table}"
    );
    assert!(
        table.contains("   0.0.0.0:8080->80/tcp, 127.0.0.1:32769->53/udp, ::1:9000->90/tcp, ::1:9001->91/tcp   web\n"),
        "{table}"
    );

    // inspect: the address by template, the ports as JSON.
    let out = env
        .run(
            &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stdout), "10.88.0.2\n");
    let out = env
        .run(
            &["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"],
            None,
            &[],
        )
        .await;
    let ports: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        ports["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_network_flags_exit_125_and_never_reach_the_daemon() {
    let env = env().await;
    for (args, line) in [
        (
            &["run", "-p", "70000:80", "busybox"][..],
            "invalid hostPort: 70000",
        ),
        (
            &["run", "-p", "abc", "busybox"],
            "invalid containerPort: abc",
        ),
        (
            &["run", "-p", "80:80/sctpx", "busybox"],
            "invalid proto: sctpx",
        ),
        (
            &[
                "create",
                "-p",
                "80:80",
                "--publish",
                "1.2.3:80:80",
                "busybox",
            ],
            "invalid IP address: 1.2.3",
        ),
        (
            &["run", "-d", "-p", "8000-8002:80-81", "busybox"],
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
        ),
        (
            &["run", "-p", "80:", "busybox"],
            "no port specified: 80:<empty>",
        ),
        (
            &["run", "--link", "a:b:c", "busybox"],
            "bad format for links: a:b:c",
        ),
        (
            &["create", "--link", "", "busybox"],
            "empty string specified for links",
        ),
    ] {
        let out = env.run(args, None, &[]).await;
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert_eq!(text(&out.stderr), format!("rdockctl: {line}\n"), "{args:?}");
        assert_eq!(text(&out.stdout), "");
    }
    assert!(env.runtime.state.lock().unwrap().created.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn network_create_ls_inspect_rm() {
    let env = env().await;

    // create prints the new id; the subnet is passed on.
    let out = env
        .run(
            &["network", "create", "--subnet", "10.90.0.0/24", "app"],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    let app_id = format!("{:04x}{:060x}", 1, 0xbeef);
    assert_eq!(text(&out.stdout), format!("{app_id}\n"));
    let out = env
        .run(&["network", "create", "-d", "bridge", "db-net"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    {
        let st = env.net.state.lock().unwrap();
        assert_eq!(
            (st.created[0].name.as_str(), st.created[0].subnet.as_str()),
            ("app", "10.90.0.0/24")
        );
        assert_eq!(
            (st.created[1].name.as_str(), st.created[1].subnet.as_str()),
            ("db-net", "")
        );
    }

    // The daemon's refusals, as it words them; exit 1.
    for (args, line) in [
        (
            &["network", "create", "app"][..],
            "rdockctl: network with name app already exists\n",
        ),
        (
            &["network", "create", "--subnet", "10.0.0.0/33", "x"],
            "rdockctl: invalid subnet 10.0.0.0/33: invalid CIDR address\n",
        ),
        (
            &["network", "create", "-d", "overlay", "x"],
            "rdockctl: network driver \"overlay\" is not supported: rdock has only \"bridge\"\n",
        ),
    ] {
        let out = env.run(args, None, &[]).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), line, "{args:?}");
        assert_eq!(text(&out.stdout), "");
    }
    assert_eq!(env.net.state.lock().unwrap().created.len(), 2);

    // ls: Docker's table, sorted by name; -q; JSON lines.
    let out = env.run(&["network", "ls"], None, &[]).await;
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        format!(
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             000100000000   app       bridge    local\n\
             {}   bridge    bridge    local\n\
             000200000000   db-net    bridge    local\n",
            &BRIDGE_NET_ID[..12]
        )
    );
    let out = env.run(&["network", "list", "-q"], None, &[]).await;
    assert_eq!(text(&out.stdout).lines().count(), 3);
    assert_eq!(text(&out.stdout).lines().next().unwrap(), &app_id[..12]);
    let out = env
        .run(&["network", "ls", "--format", "json"], None, &[])
        .await;
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["Name"], "app");
    assert_eq!(first["ID"], &app_id[..12]);
    assert_eq!(first["Driver"], "bridge");
    assert_eq!(first["Scope"], "local");

    // inspect: Docker-shaped objects in one array; a missing one is one
    // error line and exit 1.
    let out = env
        .run(
            &["network", "inspect", "bridge", "nosuch", "app"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: network nosuch not found\n");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("[\n    {\n        \"Name\": \"bridge\",\n        \"Id\": \""),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let bridge = &v[0];
    assert_eq!(bridge["Id"], BRIDGE_NET_ID);
    assert_eq!(bridge["Scope"], "local");
    assert_eq!(bridge["Driver"], "bridge");
    assert_eq!(bridge["Created"], "2024-09-26T21:26:40Z");
    assert_eq!(bridge["IPAM"]["Driver"], "default");
    assert_eq!(
        bridge["IPAM"]["Config"],
        serde_json::json!([{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"}])
    );
    assert_eq!(bridge["Options"]["bridge.name"], "rdock0");
    let web =
        &bridge["Containers"]["9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8"];
    assert_eq!(web["Name"], "web");
    assert_eq!(web["IPv4Address"], "10.89.0.2/24");
    assert_eq!(web["MacAddress"], "02:42:0a:59:00:02");
    assert_eq!(v[1]["Name"], "app");
    assert_eq!(v[1]["IPAM"]["Config"][0]["Subnet"], "10.90.0.0/24");
    let out = env
        .run(
            &[
                "network",
                "inspect",
                "-f",
                "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} via {{.Gateway}}{{end}}",
                &app_id[..12],
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "app 10.90.0.0/24 via 10.90.0.1\n");

    // rm: each name printed; errors one line each; exit 1 if any failed.
    let out = env
        .run(
            &["network", "rm", "app", "bridge", "nosuch", "db-net"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "app\ndb-net\n");
    assert_eq!(
        text(&out.stderr),
        "rdockctl: bridge is a pre-defined network and cannot be removed\n\
         rdockctl: network nosuch not found\n"
    );
    assert_eq!(env.net.state.lock().unwrap().removed, ["app", "db-net"]);
    let out = env.run(&["network", "create", "x"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["network", "remove", "x"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "x\n");
    let out = env.run(&["network", "ls", "-q"], None, &[]).await;
    assert_eq!(text(&out.stdout), format!("{}\n", &BRIDGE_NET_ID[..12]));
}

#[tokio::test(flavor = "multi_thread")]
async fn network_commands_with_netd_down() {
    let env = start().await;
    let netd = format!("127.0.0.1:{}", env.base + 2);
    for args in [
        &["network", "ls"][..],
        &["network", "create", "x"],
        &["network", "inspect", "x"],
        &["network", "rm", "x"],
    ] {
        let out = env.run(args, None, &[]).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("rdockctl: cannot reach rdock-netd at {netd}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(text(&out.stdout), "");
    }
    // A bad template fails before any daemon is asked.
    let out = env
        .run(&["network", "ls", "--format", "{{.Name"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: template parsing error"));
}
