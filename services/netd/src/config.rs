//! The network daemon's settings: `/etc/rdock/netd.toml`, overridden by flags.

use clap::Parser;
use rdock_common::config::{DaemonArgs, DaemonConfig, DaemonFile};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "rdock-netd", version, about = "The rdock network daemon")]
pub struct Args {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Name of the default bridge interface.
    #[arg(long)]
    pub bridge: Option<String>,
    /// Subnet of the default network (CIDR).
    #[arg(long)]
    pub subnet: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    daemon: DaemonFile,
    bridge: Option<String>,
    subnet: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
}

/// The default network avoids Docker's 172.17.0.0/16 and podman's 10.88.0.0/16.
pub const DEFAULT_SUBNET: &str = "10.123.0.0/16";

fn parse_subnet(s: &str) -> Result<(std::net::Ipv4Addr, u8), rdock_common::Error> {
    let bad = || {
        rdock_common::Error::Config(format!(
            "invalid subnet {s:?}: expected an IPv4 CIDR like 10.123.0.0/16"
        ))
    };
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&len) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - len);
    if u32::from(ip) & !mask != 0 {
        return Err(bad());
    }
    Ok((ip, len))
}

impl Config {
    pub fn load(args: Args) -> Result<Self, rdock_common::Error> {
        let f: File = rdock_common::config::load_file("netd", &args.daemon)?;
        let subnet = args
            .subnet
            .or(f.subnet)
            .unwrap_or_else(|| DEFAULT_SUBNET.into());
        let (net, _) = parse_subnet(&subnet)?;
        let bridge = args.bridge.or(f.bridge).unwrap_or_else(|| "rdock0".into());
        if bridge.is_empty()
            || bridge.len() > 15
            || !bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(rdock_common::Error::Config(format!(
                "invalid bridge name {bridge:?}: 1 to 15 letters, digits, '-' or '_'"
            )));
        }
        Ok(Config {
            daemon: DaemonConfig::resolve("netd", 7703, &args.daemon, &f.daemon)?,
            bridge,
            subnet,
            gateway: std::net::Ipv4Addr::from(u32::from(net) + 1).to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_checked() {
        assert!(parse_subnet("10.123.0.0/16").is_ok());
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/16",
            "x/16",
            "10.0.0.0",
            "10.0.0.0/31",
        ] {
            assert!(parse_subnet(bad).is_err(), "{bad}");
        }
    }
}
