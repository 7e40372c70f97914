//! Pieces every rdock process shares: PKI and mutual TLS, authorization by
//! certificate role, telemetry, gRPC connectors and serving, config files.

pub mod authz;
pub mod client;
pub mod config;
pub mod identity;
pub mod pki;
pub mod server;
pub mod telemetry;
pub mod tls;

/// Errors of the shared pieces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pki: {0}")]
    Pki(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("config: {0}")]
    Config(String),
    #[error("{0}")]
    Connect(String),
    #[error("serve: {0}")]
    Serve(String),
}
