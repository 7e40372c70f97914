//! The image daemon's settings: `/etc/rdock/imaged.toml`, overridden by flags.

use clap::Parser;
use rdock_common::config::{DaemonArgs, DaemonConfig, DaemonFile};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "rdock-imaged", version, about = "The rdock image daemon")]
pub struct Args {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP;
    /// registries on 127.0.0.0/8 always may.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    daemon: DaemonFile,
    #[serde(default)]
    insecure_registries: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub insecure_registries: Vec<String>,
}

impl Config {
    pub fn load(args: Args) -> Result<Self, rdock_common::Error> {
        let f: File = rdock_common::config::load_file("imaged", &args.daemon)?;
        let mut insecure = f.insecure_registries;
        insecure.extend(args.insecure_registries);
        Ok(Config {
            daemon: DaemonConfig::resolve("imaged", 7701, &args.daemon, &f.daemon)?,
            insecure_registries: insecure,
        })
    }
}
