//! Pieces every rdock process shares: PKI and mutual TLS, authorization by
//! certificate role, telemetry, gRPC connectors and serving, config files.

pub mod authz;
pub mod client;
pub mod config;
pub mod db;
pub mod identity;
pub mod mountinfo;
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

/// Implements `From` for each of redb's specific error types on a daemon's
/// error type, through its `From<redb::Error>` (the caller depends on redb).
#[macro_export]
macro_rules! from_redb_errors {
    ($err:ty) => {
        $crate::from_redb_errors!(
            $err;
            redb::DatabaseError,
            redb::TransactionError,
            redb::TableError,
            redb::StorageError,
            redb::CommitError
        );
    };
    ($err:ty; $($t:ty),*) => {$(
        impl From<$t> for $err {
            fn from(e: $t) -> Self {
                <$err>::from(redb::Error::from(e))
            }
        }
    )*};
}
