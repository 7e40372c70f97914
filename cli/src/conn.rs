//! Connection options → a host and the TLS files to present, then clients.
//!
//! Host: `-H` flag > `RDOCK_HOST` > config file `host` > `127.0.0.1:7701`.
//! Each TLS file is looked up on its own: its flag; else the
//! `RDOCK_CERT_PATH` directory (`ca.crt`, and `cert.pem`/`key.pem` when
//! `cert.pem` is there, else `admin.crt`/`admin.key`); else the config file's
//! `tlscacert`/`tlscert`/`tlskey`; else `/etc/rdock/pki/{ca,admin}.*`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rdock_common::client::{self, Conn, Daemon, HostAddr};
use rdock_common::tls::TlsFiles;
use rdock_proto::image::v1::image_service_client::ImageServiceClient;
use rdock_proto::net::v1::net_service_client::NetServiceClient;
use rdock_proto::runtime::v1::runtime_service_client::RuntimeServiceClient;
use serde::Deserialize;

use crate::args::{ConnArgs, DEFAULT_PKI_DIR};

/// The client config file (`~/.rdock/config.toml`); every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    pub host: Option<String>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

impl ClientConfig {
    /// Loads the config: an explicit path must exist, the default may not.
    pub fn load(explicit: Option<&Path>, home: Option<&Path>) -> Result<Self> {
        let (path, is_explicit) = match (explicit, home) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(h)) => (h.join(".rdock").join("config.toml"), false),
            (None, None) => return Ok(Self::default()),
        };
        let mut cfg: ClientConfig = rdock_common::config::load(&path, is_explicit)?;
        // Relative paths in the file are relative to the file's directory.
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        for p in [&mut cfg.tlscacert, &mut cfg.tlscert, &mut cfg.tlskey]
            .into_iter()
            .flatten()
        {
            *p = resolve_path(p, &base, home);
        }
        Ok(cfg)
    }
}

fn resolve_path(p: &Path, base: &Path, home: Option<&Path>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (p.strip_prefix("~"), home) {
        return home.join(rest);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Where each TLS file may come from, highest precedence first.
#[derive(Debug, Clone)]
pub struct CertSources<'a> {
    pub flag_ca: Option<&'a Path>,
    pub flag_cert: Option<&'a Path>,
    pub flag_key: Option<&'a Path>,
    /// The `RDOCK_CERT_PATH` directory.
    pub cert_path: Option<&'a Path>,
    pub config: Option<&'a ClientConfig>,
    /// The system PKI directory (`/etc/rdock/pki`).
    pub default_dir: &'a Path,
}

impl Default for CertSources<'_> {
    fn default() -> Self {
        CertSources {
            flag_ca: None,
            flag_cert: None,
            flag_key: None,
            cert_path: None,
            config: None,
            default_dir: Path::new(DEFAULT_PKI_DIR),
        }
    }
}

/// Picks the CA, certificate and key, each by the documented order.
pub fn resolve_tls(src: &CertSources<'_>) -> TlsFiles {
    let dir_files = src.cert_path.map(|d| {
        let (cert, key) = if d.join("cert.pem").exists() {
            (d.join("cert.pem"), d.join("key.pem"))
        } else {
            (d.join("admin.crt"), d.join("admin.key"))
        };
        (d.join("ca.crt"), cert, key)
    });
    let cfg = src.config;
    let pick = |flag: Option<&Path>,
                from_dir: Option<&PathBuf>,
                from_cfg: Option<&PathBuf>,
                default: PathBuf| {
        flag.map(Path::to_path_buf)
            .or_else(|| from_dir.cloned())
            .or_else(|| from_cfg.cloned())
            .unwrap_or(default)
    };
    let d = src.default_dir;
    TlsFiles {
        ca: pick(
            src.flag_ca,
            dir_files.as_ref().map(|f| &f.0),
            cfg.and_then(|c| c.tlscacert.as_ref()),
            d.join("ca.crt"),
        ),
        cert: pick(
            src.flag_cert,
            dir_files.as_ref().map(|f| &f.1),
            cfg.and_then(|c| c.tlscert.as_ref()),
            d.join("admin.crt"),
        ),
        key: pick(
            src.flag_key,
            dir_files.as_ref().map(|f| &f.2),
            cfg.and_then(|c| c.tlskey.as_ref()),
            d.join("admin.key"),
        ),
    }
}

/// Picks the host: flag or `RDOCK_HOST` (clap merges the two), then config.
pub fn resolve_host(flag_or_env: Option<&str>, config: &ClientConfig) -> Result<HostAddr> {
    match flag_or_env
        .filter(|s| !s.is_empty())
        .or(config.host.as_deref())
    {
        Some(h) => Ok(h.parse::<HostAddr>()?),
        None => Ok(HostAddr::local()),
    }
}

/// One host's daemons and the identity to present to them.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: HostAddr,
    pub tls: TlsFiles,
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Target {
    /// Resolves the connection options against the environment and config.
    pub fn from_args(args: &ConnArgs) -> Result<Self> {
        let home = non_empty_env("HOME");
        let config = ClientConfig::load(args.config.as_deref(), home.as_deref())?;
        let cert_path = non_empty_env("RDOCK_CERT_PATH");
        let tls = resolve_tls(&CertSources {
            flag_ca: args.tlscacert.as_deref(),
            flag_cert: args.tlscert.as_deref(),
            flag_key: args.tlskey.as_deref(),
            cert_path: cert_path.as_deref(),
            config: Some(&config),
            default_dir: Path::new(DEFAULT_PKI_DIR),
        });
        let host = resolve_host(args.host.as_deref(), &config)?;
        Ok(Target { host, tls })
    }

    /// `host:port` of one daemon, for messages.
    pub fn addr(&self, d: Daemon) -> String {
        if self.host.host.contains(':') {
            format!("[{}]:{}", self.host.host, self.host.port(d))
        } else {
            format!("{}:{}", self.host.host, self.host.port(d))
        }
    }

    pub async fn connect(&self, d: Daemon) -> Result<Conn> {
        Ok(client::connect(&self.host, d, &self.tls).await?)
    }

    pub async fn image(&self) -> Result<ImageServiceClient<Conn>> {
        Ok(ImageServiceClient::new(self.connect(Daemon::Imaged).await?))
    }

    pub async fn runtime(&self) -> Result<RuntimeServiceClient<Conn>> {
        Ok(RuntimeServiceClient::new(
            self.connect(Daemon::Runtimed).await?,
        ))
    }

    pub async fn net(&self) -> Result<NetServiceClient<Conn>> {
        Ok(NetServiceClient::new(self.connect(Daemon::Netd).await?))
    }
}

/// Reads a file the user named, for commands that take one.
pub async fn open_input(file: &str) -> Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>> {
    if file == "-" {
        return Ok(Box::new(tokio::io::stdin()));
    }
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("open {file}"))?;
    Ok(Box::new(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::write(p, "x").unwrap();
    }

    #[test]
    fn cert_lookup_order() {
        let tmp = tempfile::tempdir().unwrap();
        let default_dir = tmp.path().join("etc");
        let certdir = tmp.path().join("certs");
        std::fs::create_dir_all(&certdir).unwrap();

        // Nothing given: the system PKI directory.
        let tls = resolve_tls(&CertSources {
            default_dir: &default_dir,
            ..Default::default()
        });
        assert_eq!(tls.ca, default_dir.join("ca.crt"));
        assert_eq!(tls.cert, default_dir.join("admin.crt"));
        assert_eq!(tls.key, default_dir.join("admin.key"));

        // The config file beats the default.
        let cfg = ClientConfig {
            host: None,
            tlscacert: Some("/cfg/ca.crt".into()),
            tlscert: Some("/cfg/me.crt".into()),
            tlskey: None,
        };
        let tls = resolve_tls(&CertSources {
            config: Some(&cfg),
            default_dir: &default_dir,
            ..Default::default()
        });
        assert_eq!(tls.ca, PathBuf::from("/cfg/ca.crt"));
        assert_eq!(tls.cert, PathBuf::from("/cfg/me.crt"));
        assert_eq!(tls.key, default_dir.join("admin.key"));

        // RDOCK_CERT_PATH beats the config: admin.* without cert.pem ...
        let tls = resolve_tls(&CertSources {
            cert_path: Some(&certdir),
            config: Some(&cfg),
            default_dir: &default_dir,
            ..Default::default()
        });
        assert_eq!(tls.ca, certdir.join("ca.crt"));
        assert_eq!(tls.cert, certdir.join("admin.crt"));
        assert_eq!(tls.key, certdir.join("admin.key"));

        // ... and cert.pem/key.pem when present.
        touch(&certdir.join("cert.pem"));
        let tls = resolve_tls(&CertSources {
            cert_path: Some(&certdir),
            config: Some(&cfg),
            default_dir: &default_dir,
            ..Default::default()
        });
        assert_eq!(tls.cert, certdir.join("cert.pem"));
        assert_eq!(tls.key, certdir.join("key.pem"));

        // Flags beat everything, one file at a time.
        let flag_cert = PathBuf::from("/flag/viewer.crt");
        let flag_key = PathBuf::from("/flag/viewer.key");
        let tls = resolve_tls(&CertSources {
            flag_ca: None,
            flag_cert: Some(&flag_cert),
            flag_key: Some(&flag_key),
            cert_path: Some(&certdir),
            config: Some(&cfg),
            default_dir: &default_dir,
        });
        assert_eq!(tls.ca, certdir.join("ca.crt"));
        assert_eq!(tls.cert, flag_cert);
        assert_eq!(tls.key, flag_key);
    }

    #[test]
    fn config_file_and_host_order() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        // A missing default file is fine; a missing explicit one is not.
        assert_eq!(
            ClientConfig::load(None, Some(home)).unwrap(),
            ClientConfig::default()
        );
        assert!(ClientConfig::load(Some(&home.join("nope.toml")), Some(home)).is_err());

        std::fs::create_dir_all(home.join(".rdock")).unwrap();
        std::fs::write(
            home.join(".rdock/config.toml"),
            "host = \"node1:9000\"\ntlscacert = \"pki/ca.crt\"\ntlscert = \"/abs/me.crt\"\ntlskey = \"~/k.key\"\n",
        )
        .unwrap();
        let cfg = ClientConfig::load(None, Some(home)).unwrap();
        assert_eq!(cfg.tlscacert, Some(home.join(".rdock/pki/ca.crt")));
        assert_eq!(cfg.tlscert, Some(PathBuf::from("/abs/me.crt")));
        assert_eq!(cfg.tlskey, Some(home.join("k.key")));

        let h = resolve_host(None, &cfg).unwrap();
        assert_eq!((h.host.as_str(), h.base_port), ("node1", 9000));
        let h = resolve_host(Some("tcp://10.0.0.5:8000"), &cfg).unwrap();
        assert_eq!((h.host.as_str(), h.base_port), ("10.0.0.5", 8000));
        let h = resolve_host(None, &ClientConfig::default()).unwrap();
        assert_eq!(h, HostAddr::local());
        assert!(resolve_host(Some("a:b"), &cfg).is_err());

        std::fs::write(home.join("bad.toml"), "host = [").unwrap();
        assert!(ClientConfig::load(Some(&home.join("bad.toml")), None).is_err());
    }
}
