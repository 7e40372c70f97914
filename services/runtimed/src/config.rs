//! The runtime daemon's settings: `/etc/rdock/runtimed.toml`, overridden by flags.

use clap::Parser;
use rdock_common::client::HostAddr;
use rdock_common::config::{DaemonArgs, DaemonConfig, DaemonFile};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "rdock-runtimed", version, about = "The rdock runtime daemon")]
pub struct Args {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// The image daemon, HOST:PORT.
    #[arg(long)]
    pub imaged: Option<String>,
    /// The network daemon, HOST:PORT.
    #[arg(long)]
    pub netd: Option<String>,
    /// The OCI runtime binary.
    #[arg(long)]
    pub runtime: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    daemon: DaemonFile,
    imaged: Option<String>,
    netd: Option<String>,
    runtime: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub imaged: HostAddr,
    pub netd: HostAddr,
    pub runtime: String,
}

fn addr(s: Option<String>, default_port: u16) -> Result<HostAddr, rdock_common::Error> {
    match s {
        Some(s) => s.parse(),
        None => Ok(HostAddr {
            host: "127.0.0.1".into(),
            base_port: default_port,
        }),
    }
}

impl Config {
    pub fn load(args: Args) -> Result<Self, rdock_common::Error> {
        let f: File = rdock_common::config::load_file("runtimed", &args.daemon)?;
        Ok(Config {
            daemon: DaemonConfig::resolve("runtimed", 7702, &args.daemon, &f.daemon)?,
            imaged: addr(args.imaged.or(f.imaged), 7701)?,
            netd: addr(args.netd.or(f.netd), 7703)?,
            runtime: args.runtime.or(f.runtime).unwrap_or_else(|| "runc".into()),
        })
    }
}
