//! The runtime daemon's settings: `/etc/rdock/runtimed.toml`, overridden by flags.

use std::path::PathBuf;

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
    /// The shim binary [default: rdock-shim beside this binary].
    #[arg(long)]
    pub shim: Option<PathBuf>,
    /// Parent cgroup of the containers.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    daemon: DaemonFile,
    imaged: Option<String>,
    netd: Option<String>,
    runtime: Option<String>,
    shim: Option<PathBuf>,
    cgroup_parent: Option<String>,
    log_max_size: Option<u64>,
    log_max_files: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub imaged: HostAddr,
    pub netd: HostAddr,
    pub runtime: String,
    pub shim_bin: Option<PathBuf>,
    pub cgroup_parent: String,
    /// Each container's log is rotated at this size...
    pub log_max_size: u64,
    /// ...keeping this many files.
    pub log_max_files: u32,
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

fn cgroup_parent(s: Option<String>) -> Result<String, rdock_common::Error> {
    let s = s.unwrap_or_else(|| "rdock".into());
    let ok = !s.is_empty()
        && s.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(s)
    } else {
        Err(rdock_common::Error::Config(format!(
            "invalid cgroup parent {s:?}"
        )))
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
            shim_bin: args.shim.or(f.shim),
            cgroup_parent: cgroup_parent(args.cgroup_parent.or(f.cgroup_parent))?,
            log_max_size: f.log_max_size.unwrap_or(10 << 20).max(4096),
            log_max_files: f.log_max_files.unwrap_or(3).max(1),
        })
    }
}
