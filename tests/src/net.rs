//! Networking as the host sees it: pages fetched through published ports,
//! IPv4 subnets, the links on an environment's bridges, its nft table, and
//! everything networks leave on the host (its "network footprint").

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::env::Env;

/// How long what a removed container or network owned may take to go.
const SETTLE: Duration = Duration::from_secs(5);

/// The whole response to `GET / HTTP/1.0` on `addr` (`IP:PORT`).
pub fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &addr
            .parse()
            .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?,
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `GET /` on `addr`, retried for up to `within` (while httpd starts)
/// until the answer is `200 OK`; returns the whole response. Fails the test
/// with the last error otherwise.
#[track_caller]
pub fn fetch_page(addr: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let last = match http_get(addr) {
            Ok(r)
                if r.starts_with("HTTP/1.")
                    && r.lines().next().is_some_and(|l| l.contains(" 200 ")) =>
            {
                return r
            }
            Ok(r) => format!("answer {r:?}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            panic!("GET / on {addr} gave no page within {within:?}; last: {last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An IPv4 CIDR such as `10.1.2.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    #[track_caller]
    pub fn parse(s: &str) -> Cidr {
        let (a, p) = s
            .split_once('/')
            .unwrap_or_else(|| panic!("{s:?} is not a CIDR"));
        let addr: Ipv4Addr = a.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let prefix: u8 = p.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert!(prefix <= 32, "{s:?}: prefix above 32");
        Cidr { addr, prefix }
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// The first host address (where the gateway sits, as in Docker).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from((u32::from(self.addr) & self.mask()) + 1)
    }

    /// The `i`-th subnet of length `prefix` inside this one.
    pub fn subnet(&self, prefix: u8, i: u32) -> Cidr {
        assert!(prefix >= self.prefix && prefix <= 32);
        let size = 1u64 << (32 - prefix);
        let base = u64::from(u32::from(self.addr) & self.mask()) + size * u64::from(i);
        assert!(
            self.contains(Ipv4Addr::from(base as u32)),
            "subnet {i} of /{prefix} is outside {self}"
        );
        Cidr {
            addr: Ipv4Addr::from(base as u32),
            prefix,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog} {args:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The interfaces enslaved to bridge `bridge` (the containers' veths).
pub fn links_on_bridge(bridge: &str) -> Vec<String> {
    run("ip", &["-o", "link", "show", "master", bridge])
        .lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?;
            Some(name.split('@').next().unwrap_or(name).to_string())
        })
        .collect()
}

/// Whether the host has a network interface called `name`.
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Host interfaces with an IPv4 address inside `cidr`, as `(name, addr)`.
pub fn links_with_address_in(cidr: &Cidr) -> Vec<(String, Ipv4Addr)> {
    run("ip", &["-o", "-4", "addr", "show"])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.get(1)?.to_string();
            let addr: Ipv4Addr = f.get(3)?.split('/').next()?.parse().ok()?;
            cidr.contains(addr).then_some((name, addr))
        })
        .collect()
}

impl Env {
    /// `nft list table ip <this environment's table>` (empty when there is
    /// no such table).
    pub fn nft_table(&self) -> String {
        run("nft", &["list", "table", "ip", &self.net().table])
    }

    /// The default network's subnet.
    pub fn subnet(&self) -> Cidr {
        Cidr::parse(&self.net().subnet)
    }

    /// The pool user-defined networks take their subnets from.
    pub fn pool(&self) -> Cidr {
        Cidr::parse(&self.net().pool)
    }

    /// `inspect -f '{{.NetworkSettings.IPAddress}}' C`, parsed.
    #[track_caller]
    pub fn container_ip(&self, container: &str) -> Ipv4Addr {
        let ip = self.inspect_format(container, "{{.NetworkSettings.IPAddress}}");
        ip.parse()
            .unwrap_or_else(|e| panic!("IPAddress of {container} is {ip:?}: {e}"))
    }

    /// `network inspect NAME`, the one element of its array.
    #[track_caller]
    pub fn network_inspect(&self, name: &str) -> serde_json::Value {
        let out = self.cli(&["network", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(out.ok())
            .unwrap_or_else(|e| panic!("`network inspect {name}` is not JSON: {e}\n{out}"));
        match v {
            serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
            other => panic!("`network inspect {name}` is not a one-element array: {other}"),
        }
    }

    /// The names `network ls` lists, sorted.
    #[track_caller]
    pub fn network_names(&self) -> Vec<String> {
        let out = self.cli(&["network", "ls", "--format", "json"]);
        let mut names: Vec<String> = out
            .ok()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("`network ls --format json` line {l:?}: {e}"));
                v["Name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("`network ls` line without Name: {l}"))
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    /// Everything this environment's networks have on the host, as sorted
    /// descriptions: the networks `network ls` lists, the interfaces with
    /// an address in its subnet or pool (its bridges), the links enslaved
    /// to those bridges (veths) and its nft table, rule by rule. Equal
    /// before and after a failed command means it configured nothing.
    #[track_caller]
    pub fn network_footprint(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .network_names()
            .into_iter()
            .map(|n| format!("network: {n}"))
            .collect();
        let mut bridges: Vec<(String, Ipv4Addr)> = links_with_address_in(&self.subnet());
        bridges.extend(links_with_address_in(&self.pool()));
        for (name, addr) in bridges {
            v.push(format!("bridge: {name} {addr}"));
            v.extend(
                links_on_bridge(&name)
                    .into_iter()
                    .map(|l| format!("link on {name}: {l}")),
            );
        }
        v.extend(
            self.nft_table()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| format!("nft: {l}")),
        );
        v.sort();
        v
    }

    /// Fails the test unless the network footprint (see
    /// [`Env::network_footprint`]) is back to `before` within a few
    /// seconds.
    #[track_caller]
    pub fn assert_network_footprint(&self, before: &[String]) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = self.network_footprint();
            if now == before {
                return;
            }
            if Instant::now() > deadline {
                let added: Vec<&String> = now.iter().filter(|x| !before.contains(x)).collect();
                let gone: Vec<&String> = before.iter().filter(|x| !now.contains(x)).collect();
                panic!(
                    "networks' footprint changed ({SETTLE:?} after):\n  new: {added:#?}\n  gone: {gone:#?}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
