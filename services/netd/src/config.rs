//! The network daemon's settings: `/etc/rdock/netd.toml`, overridden by flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use rdock_common::config::{DaemonArgs, DaemonConfig, DaemonFile};
use serde::Deserialize;

use crate::subnet::Subnet;

#[derive(Debug, Parser)]
#[command(name = "rdock-netd", version, about = "The rdock network daemon")]
pub struct Args {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Name of the default network's bridge interface [default: rdock0]
    #[arg(long)]
    pub bridge: Option<String>,
    /// Subnet of the default network (IPv4 CIDR) [default: 10.123.0.0/16]
    #[arg(long)]
    pub subnet: Option<String>,
    /// Address pool that user-defined networks get a /24 of when created
    /// without a subnet [default: 10.124.0.0/16]
    #[arg(long)]
    pub pool: Option<String>,
    /// Name of rdock's nftables table (family ip) [default: rdock]
    #[arg(long)]
    pub nft_table: Option<String>,
    /// Where the DNS servers of user-defined networks forward other names:
    /// IP or IP:PORT, repeatable or comma-separated; "none" answers them
    /// with SERVFAIL [default: the nameservers of --resolv-conf]
    #[arg(long, value_delimiter = ',')]
    pub dns_upstream: Option<Vec<String>>,
    /// The host's resolver configuration [default: /etc/resolv.conf]
    #[arg(long)]
    pub resolv_conf: Option<PathBuf>,
    /// Remove everything netd made (container links, bridges, the nftables
    /// table, leases) and exit, instead of serving. Containers lose their
    /// network.
    #[arg(long)]
    pub cleanup: bool,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    daemon: DaemonFile,
    bridge: Option<String>,
    subnet: Option<String>,
    pool: Option<String>,
    nft_table: Option<String>,
    dns_upstream: Option<Vec<String>>,
    resolv_conf: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    /// The default network's bridge.
    pub bridge: String,
    pub subnet: Subnet,
    pub pool: Subnet,
    pub nft_table: String,
    /// None = the nameservers of `resolv_conf`.
    pub dns_upstream: Option<Vec<SocketAddr>>,
    pub resolv_conf: PathBuf,
    pub cleanup: bool,
}

/// The default network avoids Docker's 172.17.0.0/16 and podman's 10.88.0.0/16.
pub const DEFAULT_SUBNET: &str = "10.123.0.0/16";
/// User-defined networks get /24s of this.
pub const DEFAULT_POOL: &str = "10.124.0.0/16";
pub const DEFAULT_BRIDGE: &str = "rdock0";
pub const DEFAULT_TABLE: &str = "rdock";

fn config_err(e: impl std::fmt::Display) -> rdock_common::Error {
    rdock_common::Error::Config(e.to_string())
}

/// Interface names: at most 15 bytes (IFNAMSIZ - 1), and only characters
/// that are safe in nft rules and `ip` commands.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "invalid bridge name {name:?}: 1 to 15 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

fn check_table(name: &str) -> Result<(), String> {
    let mut b = name.bytes();
    let ok = matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 32
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !ok {
        return Err(format!(
            "invalid nft table name {name:?}: a letter, then up to 31 letters, digits or '_'"
        ));
    }
    Ok(())
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`; `none` alone means no
/// upstream at all.
fn parse_upstreams(v: &[String]) -> Result<Vec<SocketAddr>, String> {
    if v.len() == 1 && v[0] == "none" {
        return Ok(Vec::new());
    }
    v.iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("invalid DNS upstream {s:?}: expected IP or IP:PORT"))
        })
        .collect()
}

impl Config {
    pub fn load(args: Args) -> Result<Self, rdock_common::Error> {
        let f: File = rdock_common::config::load_file("netd", &args.daemon)?;
        let subnet = args
            .subnet
            .or(f.subnet)
            .unwrap_or_else(|| DEFAULT_SUBNET.into());
        let subnet = Subnet::parse(&subnet).map_err(config_err)?;
        let pool = args.pool.or(f.pool).unwrap_or_else(|| DEFAULT_POOL.into());
        let pool = Subnet::parse(&pool).map_err(|e| config_err(format!("--pool: {e}")))?;
        if pool.prefix() > 24 {
            return Err(config_err(format!(
                "invalid pool {pool}: it must hold at least one /24"
            )));
        }
        let bridge = args
            .bridge
            .or(f.bridge)
            .unwrap_or_else(|| DEFAULT_BRIDGE.into());
        check_ifname(&bridge).map_err(config_err)?;
        let nft_table = args
            .nft_table
            .or(f.nft_table)
            .unwrap_or_else(|| DEFAULT_TABLE.into());
        check_table(&nft_table).map_err(config_err)?;
        let dns_upstream = args
            .dns_upstream
            .or(f.dns_upstream)
            .map(|v| parse_upstreams(&v))
            .transpose()
            .map_err(config_err)?;
        Ok(Config {
            daemon: DaemonConfig::resolve("netd", 7703, &args.daemon, &f.daemon)?,
            bridge,
            subnet,
            pool,
            nft_table,
            dns_upstream,
            resolv_conf: args
                .resolv_conf
                .or(f.resolv_conf)
                .unwrap_or_else(|| "/etc/resolv.conf".into()),
            cleanup: args.cleanup,
        })
    }

    /// The default network's gateway: the subnet's first address.
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        self.subnet.gateway()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &[&str]) -> Result<Config, rdock_common::Error> {
        let mut argv = vec!["rdock-netd", "--config", "/dev/null"];
        argv.extend_from_slice(extra);
        Config::load(Args::parse_from(argv))
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.bridge, "rdock0");
        assert_eq!(c.subnet.to_string(), DEFAULT_SUBNET);
        assert_eq!(c.gateway().to_string(), "10.123.0.1");
        assert_eq!(c.pool.to_string(), DEFAULT_POOL);
        assert_eq!(c.nft_table, "rdock");
        assert_eq!(c.dns_upstream, None);
        // Neither Docker's nor podman's default subnet.
        for other in ["172.17.0.0/16", "10.88.0.0/16"] {
            let o = Subnet::parse(other).unwrap();
            assert!(!c.subnet.overlaps(&o) && !c.pool.overlaps(&o));
        }
    }

    #[test]
    fn flags_are_checked() {
        let c = load(&[
            "--bridge",
            "rdkt1a2b",
            "--subnet",
            "10.199.3.0/24",
            "--pool",
            "10.198.0.0/20",
            "--nft-table",
            "rdock_t1",
            "--dns-upstream",
            "127.0.0.1:5353,10.0.0.2",
        ])
        .unwrap();
        assert_eq!(c.bridge, "rdkt1a2b");
        assert_eq!(c.gateway().to_string(), "10.199.3.1");
        let up: Vec<String> = c
            .dns_upstream
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(up, ["127.0.0.1:5353", "10.0.0.2:53"]);
        assert_eq!(
            load(&["--dns-upstream", "none"]).unwrap().dns_upstream,
            Some(vec![])
        );
        for (bad, want) in [
            (
                vec!["--subnet", "10.0.0.0/33"],
                "invalid subnet \"10.0.0.0/33\"",
            ),
            (vec!["--pool", "10.0.0.0/25"], "at least one /24"),
            (
                vec!["--bridge", "a-very-long-bridge-name"],
                "invalid bridge name",
            ),
            (vec!["--bridge", "br;drop"], "invalid bridge name"),
            (vec!["--nft-table", "1x"], "invalid nft table name"),
            (vec!["--nft-table", "a-b"], "invalid nft table name"),
            (vec!["--dns-upstream", "x"], "invalid DNS upstream"),
        ] {
            let e = load(&bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }
}
