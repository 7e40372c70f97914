//! Talking to OCI distribution registries with `oci-client`: which may be
//! plain HTTP, and what their errors mean to a user.

use std::net::IpAddr;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, Reference};

use crate::error::Error;

/// Registries the daemon may reach over plain HTTP.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    insecure: Vec<String>,
}

/// Whether a registry host (`host[:port]`) is on the loopback network.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => registry.split(':').next().unwrap_or(""),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Registries {
    pub fn new(insecure: Vec<String>) -> Self {
        Registries { insecure }
    }

    /// Registries on 127.0.0.0/8 and those configured as insecure use HTTP.
    pub fn plain_http(&self, registry: &str) -> bool {
        is_loopback(registry) || self.insecure.iter().any(|r| r == registry)
    }

    /// A client for the registry `reference` names.
    pub fn client(&self, reference: &Reference) -> Client {
        let registry = reference.resolve_registry();
        let protocol = if self.plain_http(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            max_concurrent_download: 4,
            max_concurrent_upload: 4,
            ..Default::default()
        })
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    rdock_common::client::error_chain(e)
}

/// Turns a registry client error into a user-facing one, saying what was
/// being fetched (`what`) from which registry.
pub fn map_err(e: OciDistributionError, reference: &Reference, what: &str) -> Error {
    let registry = reference.registry();
    let repo = reference.repository();
    match &e {
        OciDistributionError::ImageManifestNotFoundError(_) => Error::NotFound(format!(
            "{what}: manifest for {registry}/{repo} not found: manifest unknown"
        )),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<_> = envelope.errors.iter().map(|e| &e.code).collect();
            let msg = envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                Error::NotFound(format!("{what}: {registry}/{repo}: {msg}"))
            } else {
                Error::Registry(format!("{what}: registry {registry}: {msg}"))
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => {
            Error::NotFound(format!("{what}: {registry}/{repo} not found"))
        }
        OciDistributionError::ServerError { code, message, .. } => Error::Registry(format!(
            "{what}: registry {registry} answered {code}: {}",
            message.lines().next().unwrap_or("").trim()
        )),
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Error::Registry(format!(
            "{what}: registry {registry} refused access to {repo}: not authorized"
        )),
        OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
            Error::Unavailable(format!(
                "{what}: cannot reach registry {registry}: {}",
                chain(r)
            ))
        }
        _ => Error::Registry(format!("{what}: registry {registry}: {}", chain(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        let r = Registries::new(vec!["registry.lan:5000".into()]);
        assert!(r.plain_http("127.0.0.1:5000"));
        assert!(r.plain_http("127.8.9.1"));
        assert!(r.plain_http("localhost:5000"));
        assert!(r.plain_http("[::1]:5000"));
        assert!(r.plain_http("registry.lan:5000"));
        assert!(!r.plain_http("registry.lan"));
        assert!(!r.plain_http("index.docker.io"));
        assert!(!r.plain_http("10.0.0.1:5000"));
    }
}
