//! Root integration tests of the real rdock-netd: veth pairs into real
//! network namespaces, published ports through nftables, conflicts,
//! concurrency, restarts and cleanup. Traffic goes only to loopback and to
//! the test's own bridge.

mod common;

use std::collections::BTreeSet;

use common::*;
use rdock_proto::net::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_talk_and_a_published_port_reaches_one() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.start().await;
    let mut c = env.client().await;
    assert!(Env::link_exists(&env.bridge), "the default bridge exists");
    let ns1 = env.netns("a");
    let ns2 = env.netns("b");
    let host_port = free_port();
    let a = attached(&mut c, attach_req("ctr-a", &ns1, vec![])).await;
    let b = attached(
        &mut c,
        attach_req("ctr-b", &ns2, vec![tcp("127.0.0.1", host_port, 80)]),
    )
    .await;
    assert_ne!(a.ip_address, b.ip_address);
    assert_eq!(a.gateway, env.gateway().to_string());
    let octets: Vec<String> = b
        .ip_address
        .split('.')
        .map(|o| format!("{:02x}", o.parse::<u8>().unwrap()))
        .collect();
    assert_eq!(b.mac_address, format!("02:42:{}", octets.join(":")));
    assert_eq!(b.ports, vec![tcp("127.0.0.1", host_port, 80)]);
    // Inside: eth0 with the address and MAC, lo up, default route.
    let name = Env::netns_name(&ns2);
    let addr = run_ok(
        "ip",
        &["netns", "exec", &name, "ip", "-o", "-4", "addr", "show"],
    );
    assert!(
        addr.contains(&format!("eth0    inet {}/24", b.ip_address)),
        "{addr}"
    );
    assert!(addr.contains("lo    inet 127.0.0.1/8"), "{addr}");
    let link = run_ok(
        "ip",
        &["netns", "exec", &name, "ip", "link", "show", "eth0"],
    );
    assert!(link.contains(&b.mac_address), "{link}");
    let route = run_ok("ip", &["netns", "exec", &name, "ip", "route"]);
    assert!(
        route.contains(&format!("default via {}", env.gateway())),
        "{route}"
    );
    assert_eq!(Env::ports_of(&env.bridge).len(), 2);

    assert!(Env::ping(&ns1, &b.ip_address), "a reaches b");
    assert!(Env::ping(&ns2, &a.ip_address), "b reaches a");
    assert!(
        Env::ping(&ns1, &env.gateway().to_string()),
        "a reaches the gateway"
    );

    // UDP: a published port to an echo socket in a.
    let udp_port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        s.local_addr().expect("addr").port()
    };
    let ua = attached(
        &mut c,
        pb::AttachRequest {
            ports: vec![pb::PortMapping {
                protocol: "udp".into(),
                ..tcp("127.0.0.1", udp_port, 5353)
            }],
            ..attach_req("ctr-u", &env.netns("u"), vec![])
        },
    )
    .await;
    let uns = std::path::PathBuf::from(format!("/run/netns/rdkt{}-u", env.tag));
    let echo = in_netns(&uns, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:5353").expect("bind udp in netns");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok();
        let mut buf = [0u8; 64];
        if let Ok((n, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], peer);
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp client");
    u.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    u.send_to(b"ping", ("127.0.0.1", udp_port)).expect("send");
    let mut buf = [0u8; 64];
    let n = u
        .recv(&mut buf)
        .expect("udp reply through the published port");
    assert_eq!(&buf[..n], b"ping");
    echo.join().expect("echo");
    c.detach(pb::DetachRequest {
        container_id: "ctr-u".into(),
        network: String::new(),
    })
    .await
    .expect("detach u");
    assert!(!run_ok("ip", &["-o", "link"]).contains(&ua.mac_address));

    let server = Server::start(&ns2, 80, "hello from b\n");
    assert_eq!(fetch(("127.0.0.1", host_port)), "hello from b\n");
    // The host port is held by netd.
    assert!(std::net::TcpListener::bind(("127.0.0.1", host_port)).is_err());

    // The same host port for another container is refused, leaving nothing.
    let rules_before = env.nft_table();
    let ns3 = env.netns("c");
    let err = c
        .attach(attach_req("ctr-c", &ns3, vec![tcp("", host_port, 80)]))
        .await
        .expect_err("port conflict");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message()
            .contains(&format!("port {host_port}/tcp is already in use")),
        "{}",
        err.message()
    );
    assert_eq!(Env::ports_of(&env.bridge).len(), 2, "no veth left");
    assert_eq!(env.nft_table(), rules_before, "no rule left");
    let name3 = Env::netns_name(&ns3);
    let links = run_ok("ip", &["netns", "exec", &name3, "ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "{links}");
    let nets = c
        .list_networks(pb::ListNetworksRequest {})
        .await
        .expect("list")
        .into_inner()
        .networks;
    assert_eq!(nets[0].name, "bridge");
    assert_eq!(nets[0].endpoints.len(), 2, "no lease left");

    // Bad requests are one-line InvalidArgument errors.
    for bad in [
        tcp("", 0, 0),
        tcp("abc", 0, 80),
        pb::PortMapping {
            protocol: "sctpx".into(),
            ..tcp("", 0, 80)
        },
        tcp("", 0, 70000),
    ] {
        let e = c
            .attach(attach_req("ctr-c", &ns3, vec![bad]))
            .await
            .expect_err("bad port");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    }
    let e = c
        .attach(pb::AttachRequest {
            network: "nosuch".into(),
            ..attach_req("ctr-c", &ns3, vec![])
        })
        .await
        .expect_err("no such network");
    assert_eq!(e.code(), tonic::Code::NotFound);

    drop(server);
    c.detach(pb::DetachRequest {
        container_id: "ctr-b".into(),
        network: String::new(),
    })
    .await
    .expect("detach b");
    assert!(env.ep_chains().is_empty(), "rules removed");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", host_port)).is_ok(),
        "host port released"
    );
    assert_eq!(fetch(("127.0.0.1", host_port)), "");
    c.detach(pb::DetachRequest {
        container_id: "ctr-a".into(),
        network: "bridge".into(),
    })
    .await
    .expect("detach a");
    // Detach is idempotent.
    c.detach(pb::DetachRequest {
        container_id: "ctr-a".into(),
        network: String::new(),
    })
    .await
    .expect("detach again");
    assert!(veths_gone(&env.bridge), "no veth left");
    let nets = c
        .list_networks(pb::ListNetworksRequest {})
        .await
        .expect("list")
        .into_inner()
        .networks;
    assert!(nets[0].endpoints.is_empty());
    let links = run_ok("ip", &["-o", "link"]);
    for ep in [&a, &b] {
        assert!(!links.contains(&ep.mac_address), "{links}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_attaches_get_thirty_addresses() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.start().await;
    let c = env.client().await;
    let spaces: Vec<_> = (0..30).map(|i| env.netns(&format!("n{i}"))).collect();
    let calls: Vec<_> = spaces
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let mut c = c.clone();
            let req = attach_req(&format!("ctr-{i}"), ns, vec![tcp("127.0.0.1", 0, 80)]);
            tokio::spawn(async move { c.attach(req).await })
        })
        .collect();
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for call in calls {
        let ep = call
            .await
            .expect("task")
            .expect("attach")
            .into_inner()
            .endpoint
            .expect("endpoint");
        assert!(ips.insert(ep.ip_address.clone()), "{} twice", ep.ip_address);
        assert!(ports.insert(ep.ports[0].host_port));
    }
    assert_eq!(ips.len(), 30);
    assert_eq!(Env::ports_of(&env.bridge).len(), 30);
    assert_eq!(env.ep_chains().len(), 30);
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let mut c = c.clone();
            tokio::spawn(async move {
                c.detach(pb::DetachRequest {
                    container_id: format!("ctr-{i}"),
                    network: String::new(),
                })
                .await
            })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("detach");
    }
    assert!(veths_gone(&env.bridge), "no veth left");
    assert!(env.ep_chains().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keep_ports_working_and_addresses_unique() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.start().await;
    let mut c = env.client().await;
    let ns1 = env.netns("a");
    let ns2 = env.netns("b");
    let host_port = free_port();
    let a = attached(
        &mut c,
        attach_req("ctr-a", &ns1, vec![tcp("", host_port, 8080)]),
    )
    .await;
    let b = attached(&mut c, attach_req("ctr-b", &ns2, vec![])).await;
    let _server = Server::start(&ns1, 8080, "still here\n");
    assert_eq!(fetch(("127.0.0.1", host_port)), "still here\n");

    env.kill9();
    // The rules live in the kernel: traffic flows while netd is down.
    assert_eq!(fetch(("127.0.0.1", host_port)), "still here\n");
    // Container b goes away while netd is down.
    env.remove_netns(&ns2);
    env.start().await;
    let mut c = env.client().await;
    assert_eq!(fetch(("127.0.0.1", host_port)), "still here\n");
    assert!(
        std::net::TcpListener::bind(("0.0.0.0", host_port)).is_err(),
        "the host port is held again"
    );
    let nets = c
        .list_networks(pb::ListNetworksRequest {})
        .await
        .expect("list")
        .into_inner()
        .networks;
    let eps: Vec<&str> = nets[0]
        .endpoints
        .iter()
        .map(|e| e.container_id.as_str())
        .collect();
    assert_eq!(eps, ["ctr-a"], "b's endpoint was released");
    assert_eq!(Env::ports_of(&env.bridge).len(), 1);
    // New containers get b's address back, never a's.
    let ns3 = env.netns("c");
    let ns4 = env.netns("d");
    let c3 = attached(&mut c, attach_req("ctr-c", &ns3, vec![])).await;
    let c4 = attached(&mut c, attach_req("ctr-d", &ns4, vec![])).await;
    assert_eq!(c3.ip_address, b.ip_address);
    let all: BTreeSet<&str> = [&a, &c3, &c4]
        .iter()
        .map(|e| e.ip_address.as_str())
        .collect();
    assert_eq!(all.len(), 3);
    assert!(Env::ping(&ns3, &a.ip_address));
    // A container reaches a published port through the host's address
    // (hairpin through the gateway).
    let gw = env.gateway().to_string();
    let via_gateway = in_netns(&ns3, move || fetch((gw.as_str(), host_port)))
        .join()
        .expect("fetch in netns");
    assert_eq!(via_gateway, "still here\n");

    // Rules flushed behind netd's back come back on restart.
    run_ok("nft", &["flush", "table", "ip", &env.table]);
    assert_eq!(fetch(("127.0.0.1", host_port)), "");
    env.stop();
    env.start().await;
    assert_eq!(fetch(("127.0.0.1", host_port)), "still here\n");

    let mut c = env.client().await;
    for id in ["ctr-a", "ctr-c", "ctr-d"] {
        c.detach(pb::DetachRequest {
            container_id: id.into(),
            network: String::new(),
        })
        .await
        .expect("detach");
    }
    assert!(veths_gone(&env.bridge), "no veth left");
    assert!(env.ep_chains().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_networks_are_isolated_and_removable() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    // Names that are not containers' go to this fake upstream on loopback.
    let upstream = fake_upstream().await;
    env.extra_args = vec!["--dns-upstream".into(), upstream.to_string()];
    env.start().await;
    let mut admin = env.admin().await;
    let mut c = env.client().await;
    let front = admin
        .create_network(pb::CreateNetworkRequest {
            name: "front".into(),
            subnet: String::new(),
        })
        .await
        .expect("create front")
        .into_inner();
    let pool_base = env.pool.split('/').next().unwrap().to_string();
    assert_eq!(front.subnet, format!("{pool_base}/24"));
    assert!(front.bridge.starts_with("rdk-"));
    assert!(Env::link_exists(&front.bridge));
    let back = admin
        .create_network(pb::CreateNetworkRequest {
            name: "back".into(),
            subnet: String::new(),
        })
        .await
        .expect("create back")
        .into_inner();
    assert_ne!(back.subnet, front.subnet);
    // Bad input.
    for (name, subnet, code) in [
        ("x", "10.0.0.0/33", tonic::Code::InvalidArgument),
        ("x", front.subnet.as_str(), tonic::Code::InvalidArgument),
        ("front", "", tonic::Code::AlreadyExists),
        ("bad name", "", tonic::Code::InvalidArgument),
    ] {
        let e = admin
            .create_network(pb::CreateNetworkRequest {
                name: name.into(),
                subnet: subnet.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), code, "{name} {subnet}: {e:?}");
        assert_eq!(e.message().lines().count(), 1);
    }
    // The runtime daemon may not create networks.
    let e = c
        .create_network(pb::CreateNetworkRequest {
            name: "y".into(),
            subnet: String::new(),
        })
        .await
        .expect_err("denied");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    let on = |id: &str, ns: &std::path::Path, net: &str| pb::AttachRequest {
        network: net.into(),
        ..attach_req(id, ns, vec![])
    };
    let ns1 = env.netns("f1");
    let ns2 = env.netns("f2");
    let ns3 = env.netns("b1");
    let ns4 = env.netns("d1");
    let f1 = c
        .attach(on("ctr-f1", &ns1, "front"))
        .await
        .expect("f1")
        .into_inner();
    let f2 = c
        .attach(pb::AttachRequest {
            aliases: vec!["api".into()],
            ..on("ctr-f2", &ns2, "front")
        })
        .await
        .expect("f2")
        .into_inner();
    let b1 = c
        .attach(on("ctr-b1", &ns3, "back"))
        .await
        .expect("b1")
        .into_inner();
    let d1 = c
        .attach(on("ctr-d1", &ns4, ""))
        .await
        .expect("d1")
        .into_inner();
    assert_eq!(f1.dns_servers, vec![front.gateway.clone()]);
    assert!(d1.dns_servers.is_empty());
    let ip = |r: &pb::AttachResponse| r.endpoint.as_ref().unwrap().ip_address.clone();
    assert!(Env::ping(&ns1, &ip(&f2)), "same network");
    assert!(!Env::ping(&ns1, &ip(&b1)), "front cannot reach back");
    assert!(!Env::ping(&ns3, &ip(&f1)), "back cannot reach front");
    assert!(!Env::ping(&ns4, &ip(&f1)), "bridge cannot reach front");

    // Names on the network's DNS server: container names and aliases of
    // that network only; others are forwarded.
    let gw: std::net::Ipv4Addr = front.gateway.parse().unwrap();
    assert_eq!(
        resolve(&ns1, gw, "ctr-f2"),
        Some((0, vec![ip(&f2).parse().unwrap()]))
    );
    assert_eq!(
        resolve(&ns1, gw, "API"),
        Some((0, vec![ip(&f2).parse().unwrap()]))
    );
    assert_eq!(
        resolve(&ns2, gw, "ctr-f1"),
        Some((0, vec![ip(&f1).parse().unwrap()]))
    );
    assert_eq!(
        resolve(&ns1, gw, "ctr-b1"),
        Some((0, vec![UPSTREAM_ANSWER])),
        "a container of another network is not known here"
    );
    assert_eq!(
        resolve(&ns1, gw, "example.org"),
        Some((0, vec![UPSTREAM_ANSWER]))
    );
    let busybox = run(
        "ip",
        &[
            "netns",
            "exec",
            &Env::netns_name(&ns1),
            "busybox",
            "nslookup",
            "ctr-f2",
            &front.gateway,
        ],
    );
    let text = String::from_utf8_lossy(&busybox.stdout);
    assert!(text.contains(&ip(&f2)), "busybox nslookup: {text}");

    // Connecting f1 to back too (`network connect`): a second interface,
    // and back's containers become reachable from it; disconnecting
    // removes just that one.
    let f1b = c
        .attach(on("ctr-f1", &ns1, "back"))
        .await
        .expect("connect")
        .into_inner();
    let links = run_ok(
        "ip",
        &[
            "netns",
            "exec",
            &Env::netns_name(&ns1),
            "ip",
            "-o",
            "-4",
            "addr",
        ],
    );
    assert!(
        links.contains(&format!("eth1    inet {}/", ip(&f1b))),
        "{links}"
    );
    assert!(Env::ping(&ns1, &ip(&b1)), "connected to back");
    // front's DNS server now answers f1 for back's containers too, and
    // only f1: f2 is not on back.
    assert_eq!(
        resolve(&ns1, gw, "ctr-b1"),
        Some((0, vec![ip(&b1).parse().unwrap()]))
    );
    assert_eq!(
        resolve(&ns2, gw, "ctr-b1"),
        Some((0, vec![UPSTREAM_ANSWER])),
        "f2 is not on back"
    );
    c.detach(pb::DetachRequest {
        container_id: "ctr-f1".into(),
        network: "back".into(),
    })
    .await
    .expect("disconnect");
    let links = run_ok(
        "ip",
        &["netns", "exec", &Env::netns_name(&ns1), "ip", "-o", "link"],
    );
    assert!(links.contains("eth0") && !links.contains("eth1"), "{links}");
    assert!(Env::ping(&ns1, &ip(&f2)), "still on front");

    let inspected = admin
        .inspect_network(pb::InspectNetworkRequest {
            network: front.id[..10].into(),
        })
        .await
        .expect("inspect")
        .into_inner();
    assert_eq!(inspected.name, "front");
    assert_eq!(inspected.endpoints.len(), 2);

    let e = admin
        .remove_network(pb::RemoveNetworkRequest {
            network: "front".into(),
        })
        .await
        .expect_err("in use");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = admin
        .remove_network(pb::RemoveNetworkRequest {
            network: "bridge".into(),
        })
        .await
        .expect_err("builtin");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);

    for id in ["ctr-f1", "ctr-f2", "ctr-b1", "ctr-d1"] {
        c.detach(pb::DetachRequest {
            container_id: id.into(),
            network: String::new(),
        })
        .await
        .expect("detach");
    }
    for n in [&front, &back] {
        admin
            .remove_network(pb::RemoveNetworkRequest {
                network: n.name.clone(),
            })
            .await
            .expect("remove");
        assert!(!Env::link_exists(&n.bridge), "bridge {} removed", n.bridge);
    }
    let table = env.nft_table().unwrap_or_default();
    assert!(!table.contains("rdk-"), "{table}");
    let nets = admin
        .list_networks(pb::ListNetworksRequest {})
        .await
        .expect("list")
        .into_inner()
        .networks;
    assert_eq!(nets.len(), 1);
}

/// The namespace's default route, as `ip route` shows it.
fn default_route(ns: &std::path::Path) -> String {
    run_ok(
        "ip",
        &[
            "netns",
            "exec",
            &Env::netns_name(ns),
            "ip",
            "-4",
            "route",
            "show",
            "default",
        ],
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_default_routes_network_keeps_the_container_routed() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.start().await;
    let mut admin = env.admin().await;
    let mut c = env.client().await;
    let side = admin
        .create_network(pb::CreateNetworkRequest {
            name: "side".into(),
            subnet: String::new(),
        })
        .await
        .expect("create side")
        .into_inner();
    let ns = env.netns("multi");
    let peer_ns = env.netns("peer");
    c.attach(attach_req("ctr-multi", &ns, vec![]))
        .await
        .expect("attach bridge");
    c.attach(pb::AttachRequest {
        network: "side".into(),
        ..attach_req("ctr-multi", &ns, vec![])
    })
    .await
    .expect("connect side");
    let peer = c
        .attach(pb::AttachRequest {
            network: "side".into(),
            ..attach_req("ctr-peer", &peer_ns, vec![])
        })
        .await
        .expect("peer on side")
        .into_inner();
    let gw = env.gateway().to_string();
    let route = default_route(&ns);
    assert!(
        route.starts_with(&format!("default via {gw} dev eth0 ")),
        "the first network keeps the default route: {route}"
    );

    // Leaving the default network: side's gateway routes now.
    c.detach(pb::DetachRequest {
        container_id: "ctr-multi".into(),
        network: "bridge".into(),
    })
    .await
    .expect("disconnect bridge");
    let route = default_route(&ns);
    assert!(
        route.starts_with(&format!("default via {} dev eth1 ", side.gateway)),
        "{route}"
    );
    let links = run_ok(
        "ip",
        &["netns", "exec", &Env::netns_name(&ns), "ip", "-o", "link"],
    );
    assert!(!links.contains("eth0") && links.contains("eth1"), "{links}");
    let peer_ip = peer.endpoint.unwrap().ip_address;
    assert!(Env::ping(&ns, &peer_ip), "still on side");

    for id in ["ctr-multi", "ctr-peer"] {
        c.detach(pb::DetachRequest {
            container_id: id.into(),
            network: String::new(),
        })
        .await
        .expect("detach");
    }
    admin
        .remove_network(pb::RemoveNetworkRequest {
            network: "side".into(),
        })
        .await
        .expect("remove side");
    assert!(!Env::link_exists(&side.bridge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_bridge_table_and_links() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.start().await;
    let mut c = env.client().await;
    let ns = env.netns("a");
    c.attach(attach_req("ctr-a", &ns, vec![tcp("127.0.0.1", 0, 80)]))
        .await
        .expect("attach");
    env.stop();
    // SIGTERM leaves everything in place.
    assert!(Env::link_exists(&env.bridge));
    assert_eq!(Env::ports_of(&env.bridge).len(), 1);
    assert_eq!(env.ep_chains().len(), 1);
    let d = env.dir.path();
    let out = run(
        env!("CARGO_BIN_EXE_rdock-netd"),
        &[
            "--config",
            "/dev/null",
            "--cleanup",
            "--state-dir",
            &d.join("state").display().to_string(),
            "--bridge",
            &env.bridge,
            "--subnet",
            &env.subnet,
            "--nft-table",
            &env.table,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Env::link_exists(&env.bridge));
    assert!(env.nft_table().is_none());
    let name = Env::netns_name(&ns);
    let links = run_ok("ip", &["netns", "exec", &name, "ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "{links}");
}

const UPSTREAM_ANSWER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 9);

/// A DNS server on loopback that answers every A query with
/// [`UPSTREAM_ANSWER`].
async fn fake_upstream() -> std::net::SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            if let Ok(q) = rdock_netd::dns::parse_query(&buf[..n]) {
                let r = rdock_netd::dns::answer(&q, &[UPSTREAM_ANSWER], 5);
                let _ = sock.send_to(&r, peer).await;
            }
        }
    });
    addr
}

/// Asks `server`:53 for `name` (A) from inside `netns`.
fn resolve(
    netns: &std::path::Path,
    server: std::net::Ipv4Addr,
    name: &str,
) -> Option<(u8, Vec<std::net::Ipv4Addr>)> {
    let q = rdock_netd::dns::build_query(0x4242, name, rdock_netd::dns::TYPE_A);
    in_netns(netns, move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        s.send_to(&q, (server, 53)).ok()?;
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).ok()?;
        rdock_netd::dns::read_answers(&buf[..n])
    })
    .join()
    .ok()
    .flatten()
}

/// Detach frees the address and ports at once and deletes the veth in the
/// background (the kernel takes tens of ms a pair): it must be gone soon.
fn veths_gone(bridge: &str) -> bool {
    for _ in 0..150 {
        if Env::ports_of(bridge).is_empty() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
