//! nftables rules for published ports, masquerading and isolation, as
//! `nft -f` scripts. Everything lives in one `ip` table of rdock's own:
//!
//! ```text
//! table ip rdock {
//!   chain prerouting  { type nat hook prerouting priority dstnat;  fib daddr type local jump ports }
//!   chain output      { type nat hook output priority -100;        fib daddr type local jump ports }
//!   chain ports       { jump ep_1a2b3c4d; ... }          one jump per endpoint with ports
//!   chain ep_1a2b3c4d { tcp dport 8080 dnat to 10.123.0.2:80 }
//!   chain postrouting { type nat hook postrouting priority srcnat;  per network:
//!                       ip saddr 127.0.0.0/8 oifname "rdock0" masquerade      (127.0.0.1:port -> container)
//!                       iifname "rdock0" oifname "rdock0" ct status dnat masquerade   (hairpin)
//!                       ip saddr 10.123.0.0/16 oifname != "rdock0" masquerade }      (outbound)
//!   chain forward     { type filter hook forward priority filter;
//!                       iifname "rdock0" oifname { "rdk-…", … } drop }      (isolation)
//! }
//! ```
//!
//! An endpoint's rules are its own chain plus one jump, added in one
//! transaction and removed exactly (the jump by its handle). Each script is
//! one nft transaction, so a rebuild after a restart never leaves traffic
//! without rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::store::{EndpointRecord, NetworkRecord, PortRecord};

/// A network as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: String,
}

impl From<&NetworkRecord> for NetRules {
    fn from(n: &NetworkRecord) -> Self {
        NetRules {
            bridge: n.bridge.clone(),
            subnet: n.subnet.clone(),
        }
    }
}

/// Creates the table and its base chains if missing, and (re)writes the
/// hooks' jump rules. Idempotent.
pub fn base(table: &str) -> String {
    let mut s = String::new();
    let t = format!("ip {table}");
    let _ = writeln!(s, "add table {t}");
    for (chain, def) in [
        (
            "prerouting",
            "type nat hook prerouting priority dstnat; policy accept;",
        ),
        (
            "output",
            "type nat hook output priority -100; policy accept;",
        ),
        (
            "postrouting",
            "type nat hook postrouting priority srcnat; policy accept;",
        ),
        (
            "forward",
            "type filter hook forward priority filter; policy accept;",
        ),
    ] {
        let _ = writeln!(s, "add chain {t} {chain} {{ {def} }}");
    }
    let _ = writeln!(s, "add chain {t} ports");
    for chain in ["prerouting", "output"] {
        let _ = writeln!(s, "flush chain {t} {chain}");
        let _ = writeln!(s, "add rule {t} {chain} fib daddr type local jump ports");
    }
    s
}

/// Rewrites the per-network rules (masquerade and isolation) for all
/// `nets` at once.
pub fn networks(table: &str, nets: &[NetRules]) -> String {
    let mut s = String::new();
    let t = format!("ip {table}");
    let _ = writeln!(s, "flush chain {t} postrouting");
    let _ = writeln!(s, "flush chain {t} forward");
    for n in nets {
        let b = &n.bridge;
        let _ = writeln!(
            s,
            "add rule {t} postrouting ip saddr 127.0.0.0/8 oifname \"{b}\" masquerade"
        );
        let _ = writeln!(
            s,
            "add rule {t} postrouting iifname \"{b}\" oifname \"{b}\" ct status dnat masquerade"
        );
        let _ = writeln!(
            s,
            "add rule {t} postrouting ip saddr {} oifname != \"{b}\" masquerade",
            n.subnet
        );
    }
    for n in nets {
        let others: Vec<String> = nets
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "add rule {t} forward iifname \"{}\" oifname {{ {} }} drop",
                n.bridge,
                others.join(", ")
            );
        }
    }
    s
}

/// One DNAT rule of an endpoint chain.
pub fn dnat_rule(ip: std::net::Ipv4Addr, p: &PortRecord) -> String {
    let mut r = String::new();
    if let Some(h) = p.host_ip {
        let _ = write!(r, "ip daddr {h} ");
    }
    let _ = write!(
        r,
        "{} dport {} dnat to {ip}:{}",
        p.proto.as_str(),
        p.host_port,
        p.container_port
    );
    r
}

/// Adds an endpoint's chain and its jump. With `fresh` false the chain may
/// exist and is emptied first (used when rebuilding).
fn endpoint_into(s: &mut String, table: &str, ep: &EndpointRecord, fresh: bool) {
    let t = format!("ip {table}");
    let c = ep.chain();
    let _ = writeln!(s, "add chain {t} {c}");
    if !fresh {
        let _ = writeln!(s, "flush chain {t} {c}");
    }
    for p in &ep.ports {
        let _ = writeln!(s, "add rule {t} {c} {}", dnat_rule(ep.ip, p));
    }
    let _ = writeln!(s, "add rule {t} ports jump {c}");
}

/// Publishes an endpoint's ports (nothing when it has none).
pub fn add_endpoint(table: &str, ep: &EndpointRecord) -> String {
    let mut s = String::new();
    if !ep.ports.is_empty() {
        endpoint_into(&mut s, table, ep, true);
    }
    s
}

/// Removes an endpoint's jump(s) and chain, given the table as listed.
/// Empty when none of it exists.
pub fn remove_endpoint(table: &str, chain: &str, listed: &Listing) -> String {
    let mut s = String::new();
    let t = format!("ip {table}");
    for h in listed.jumps.get(chain).into_iter().flatten() {
        let _ = writeln!(s, "delete rule {t} ports handle {h}");
    }
    if listed.chains.contains(chain) {
        let _ = writeln!(s, "flush chain {t} {chain}");
        let _ = writeln!(s, "delete chain {t} {chain}");
    }
    s
}

/// The whole table from records, as one transaction: base chains, network
/// rules, every endpoint's chain, and no chain of an endpoint that is gone.
pub fn rebuild(
    table: &str,
    nets: &[NetRules],
    eps: &[EndpointRecord],
    listed: Option<&Listing>,
) -> String {
    let mut s = base(table);
    s.push_str(&networks(table, nets));
    let t = format!("ip {table}");
    let _ = writeln!(s, "flush chain {t} ports");
    let mut live = BTreeSet::new();
    for ep in eps.iter().filter(|e| !e.ports.is_empty()) {
        endpoint_into(&mut s, table, ep, false);
        live.insert(ep.chain());
    }
    if let Some(l) = listed {
        for c in l
            .chains
            .iter()
            .filter(|c| c.starts_with("ep_") && !live.contains(*c))
        {
            let _ = writeln!(s, "flush chain {t} {c}");
            let _ = writeln!(s, "delete chain {t} {c}");
        }
    }
    s
}

/// What `nft -a list table ip T` shows that removal needs: the chains, and
/// the handles of the jump rules in `ports` by target.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub chains: BTreeSet<String>,
    pub jumps: BTreeMap<String, Vec<u64>>,
}

/// Reads `nft -a list table …` output.
pub fn parse_listing(text: &str) -> Listing {
    let mut l = Listing::default();
    let mut chain = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("chain ") {
            if let Some(name) = rest.split_whitespace().next() {
                chain = name.to_string();
                l.chains.insert(chain.clone());
            }
            continue;
        }
        if chain != "ports" {
            continue;
        }
        let (rule, handle) = match line.rsplit_once("# handle ") {
            Some((r, h)) => (r.trim(), h.trim()),
            None => continue,
        };
        let (Some(target), Ok(h)) = (rule.strip_prefix("jump "), handle.parse::<u64>()) else {
            continue;
        };
        l.jumps
            .entry(target.trim().to_string())
            .or_default()
            .push(h);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Proto;
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    fn ep(ports: Vec<PortRecord>) -> EndpointRecord {
        EndpointRecord {
            container_id: "c1".into(),
            network: "bridge".into(),
            ip: Ipv4Addr::new(10, 123, 0, 2),
            prefix_len: 16,
            gateway: Ipv4Addr::new(10, 123, 0, 1),
            mac: "02:42:0a:7b:00:02".into(),
            veth: "veth1a2b3c4d".into(),
            ports,
            name: "web".into(),
            aliases: vec![],
            netns: PathBuf::from("/run/rdock/netns/c1"),
            ifname: "eth0".into(),
        }
    }

    fn port(ip: Option<Ipv4Addr>, hp: u16, cp: u16, proto: Proto) -> PortRecord {
        PortRecord {
            host_ip: ip,
            host_port: hp,
            container_port: cp,
            proto,
        }
    }

    #[test]
    fn endpoint_rules() {
        let e = ep(vec![
            port(None, 8080, 80, Proto::Tcp),
            port(Some(Ipv4Addr::LOCALHOST), 5353, 53, Proto::Udp),
        ]);
        assert_eq!(
            add_endpoint("rdock", &e),
            "add chain ip rdock ep_1a2b3c4d\n\
             add rule ip rdock ep_1a2b3c4d tcp dport 8080 dnat to 10.123.0.2:80\n\
             add rule ip rdock ep_1a2b3c4d ip daddr 127.0.0.1 udp dport 5353 dnat to 10.123.0.2:53\n\
             add rule ip rdock ports jump ep_1a2b3c4d\n"
        );
        assert_eq!(add_endpoint("rdock", &ep(vec![])), "");
    }

    #[test]
    fn base_and_network_rules() {
        let b = base("t1");
        assert!(b.contains("add chain ip t1 prerouting { type nat hook prerouting priority dstnat; policy accept; }"));
        assert!(b.contains("add rule ip t1 output fib daddr type local jump ports"));
        let n = networks(
            "t1",
            &[
                NetRules {
                    bridge: "rdock0".into(),
                    subnet: "10.123.0.0/16".into(),
                },
                NetRules {
                    bridge: "rdk-aa".into(),
                    subnet: "10.124.0.0/24".into(),
                },
            ],
        );
        for want in [
            "flush chain ip t1 postrouting",
            "add rule ip t1 postrouting ip saddr 127.0.0.0/8 oifname \"rdock0\" masquerade",
            "add rule ip t1 postrouting ip saddr 10.124.0.0/24 oifname != \"rdk-aa\" masquerade",
            "add rule ip t1 forward iifname \"rdock0\" oifname { \"rdk-aa\" } drop",
            "add rule ip t1 forward iifname \"rdk-aa\" oifname { \"rdock0\" } drop",
        ] {
            assert!(n.contains(want), "missing {want:?} in\n{n}");
        }
        // A single network has nothing to be isolated from.
        let one = networks(
            "t1",
            &[NetRules {
                bridge: "b".into(),
                subnet: "10.1.0.0/24".into(),
            }],
        );
        assert!(!one.contains("drop"));
    }

    const LISTED: &str = "table ip rdock { # handle 12
	chain prerouting { # handle 1
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump ports # handle 7
	}
	chain ports { # handle 5
		jump ep_1a2b3c4d # handle 9
		jump ep_99999999 # handle 11
		jump ep_1a2b3c4d # handle 14
	}
	chain ep_1a2b3c4d { # handle 8
		tcp dport 8080 dnat to 10.123.0.2:80 # handle 10
	}
	chain ep_deadbeef { # handle 13
	}
}
";

    #[test]
    fn listing_and_exact_removal() {
        let l = parse_listing(LISTED);
        assert!(l.chains.contains("ports") && l.chains.contains("ep_deadbeef"));
        assert_eq!(l.jumps["ep_1a2b3c4d"], vec![9, 14]);
        assert_eq!(
            remove_endpoint("rdock", "ep_1a2b3c4d", &l),
            "delete rule ip rdock ports handle 9\n\
             delete rule ip rdock ports handle 14\n\
             flush chain ip rdock ep_1a2b3c4d\n\
             delete chain ip rdock ep_1a2b3c4d\n"
        );
        assert_eq!(remove_endpoint("rdock", "ep_00000000", &l), "");
        assert_eq!(parse_listing(""), Listing::default());
        assert_eq!(parse_listing("garbage # handle x\nchain\n}").jumps.len(), 0);
    }

    #[test]
    fn rebuild_drops_stale_chains_and_keeps_live_ones() {
        let l = parse_listing(LISTED);
        let e = ep(vec![port(None, 8080, 80, Proto::Tcp)]);
        let s = rebuild("rdock", &[], &[e], Some(&l));
        assert!(s.contains("flush chain ip rdock ports\n"));
        assert!(s.contains("add chain ip rdock ep_1a2b3c4d\nflush chain ip rdock ep_1a2b3c4d\n"));
        assert!(s.contains("add rule ip rdock ports jump ep_1a2b3c4d"));
        assert!(s.contains("delete chain ip rdock ep_deadbeef"));
        assert!(!s.contains("delete chain ip rdock ep_1a2b3c4d"));
    }
}
