//! Daemon settings: flags over a TOML file (`/etc/rdock/<name>.toml`) over
//! defaults. Every path and address can be overridden, so many private
//! instances can run side by side.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::telemetry::LogFormat;
use crate::Error;

/// Reads `path` as TOML. A missing file at the default location (when
/// `explicit` is false) gives the defaults; a missing explicit file is an error.
pub fn load<T: DeserializeOwned + Default>(path: &Path, explicit: bool) -> Result<T, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(T::default()),
        Err(e) => Err(Error::Config(format!("read {}: {e}", path.display()))),
    }
}

/// The flags every daemon takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Config file (TOML) [default: /etc/rdock/<daemon>.toml]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on (mutual TLS only).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding ca.crt and this daemon's certificate and key.
    #[arg(long)]
    pub pki_dir: Option<PathBuf>,
    /// Where the daemon keeps its state.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Where the daemon keeps runtime files.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Log format on stderr: text or json.
    #[arg(long)]
    pub log_format: Option<LogFormat>,
}

/// The file keys every daemon takes; daemons flatten it into their own.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DaemonFile {
    pub listen: Option<SocketAddr>,
    pub pki_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub log_format: Option<String>,
}

/// Settings every daemon has, resolved.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub pki_dir: PathBuf,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_format: LogFormat,
}

/// Loads the file named by `args` (or the daemon's default) into `T`.
pub fn load_file<T: DeserializeOwned + Default>(name: &str, args: &DaemonArgs) -> Result<T, Error> {
    match &args.config {
        Some(p) => load(p, true),
        None => load(Path::new(&format!("/etc/rdock/{name}.toml")), false),
    }
}

impl DaemonConfig {
    /// Flags over `file` over the defaults for daemon `name` on `port`.
    pub fn resolve(
        name: &str,
        port: u16,
        args: &DaemonArgs,
        file: &DaemonFile,
    ) -> Result<Self, Error> {
        let log_format = match (args.log_format, &file.log_format) {
            (Some(l), _) => l,
            (None, Some(s)) => s.parse().map_err(Error::Config)?,
            (None, None) => LogFormat::Text,
        };
        let pick = |a: &Option<PathBuf>, f: &Option<PathBuf>, d: String| {
            a.clone().or_else(|| f.clone()).unwrap_or_else(|| d.into())
        };
        Ok(DaemonConfig {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port))),
            pki_dir: pick(&args.pki_dir, &file.pki_dir, "/etc/rdock/pki".into()),
            state_dir: pick(
                &args.state_dir,
                &file.state_dir,
                format!("/var/lib/rdock/{name}"),
            ),
            run_dir: pick(&args.run_dir, &file.run_dir, format!("/run/rdock/{name}")),
            log_format,
        })
    }

    /// This daemon's TLS files.
    pub fn tls(&self, name: &str) -> crate::tls::TlsFiles {
        crate::tls::TlsFiles::in_dir(&self.pki_dir, name)
    }
}
