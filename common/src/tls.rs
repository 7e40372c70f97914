//! Mutual TLS material for servers and clients, loaded from PEM files.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::{pki, Error};

struct Pems {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Where an identity's certificate, key and the trusted CA live.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files `pki init` writes for `name` in `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        TlsFiles {
            ca: pki::ca_path(dir),
            cert: pki::cert_path(dir, name),
            key: pki::key_path(dir, name),
        }
    }

    fn read(&self) -> Result<Pems, Error> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| Error::Tls(format!("read {}: {e}", p.display())))
        };
        Ok(Pems {
            ca: read(&self.ca)?,
            cert: read(&self.cert)?,
            key: read(&self.key)?,
        })
    }

    /// A server config that requires a client certificate signed by the CA.
    pub fn server_config(&self) -> Result<ServerTlsConfig, Error> {
        let Pems { ca, cert, key } = self.read()?;
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(ca)))
    }

    /// A client config presenting this identity and trusting only the CA.
    pub fn client_config(&self, server_name: &str) -> Result<ClientTlsConfig, Error> {
        let Pems { ca, cert, key } = self.read()?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key))
            .domain_name(server_name.to_string()))
    }
}

/// Installs the ring crypto provider as rustls' default; call first thing in
/// `main`. A provider already installed is kept.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
