//! Errors of the shim, its client and the gRPC status each one becomes.

use std::io;
use std::path::PathBuf;

/// What went wrong in the shim or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call does not fit the container's state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A bad argument from the caller.
    #[error("{0}")]
    InvalidArgument(String),
    /// What was asked for does not exist (an exec's command).
    #[error("{0}")]
    NotFound(String),
    /// It exists but cannot be used (an exec's command cannot be run).
    #[error("{0}")]
    PermissionDenied(String),
    /// A name in use (an exec id).
    #[error("{0}")]
    AlreadyExists(String),
    /// The OCI runtime failed; `message` is its own last error.
    #[error("{op}: {message}")]
    Runtime { op: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("connect to shim at {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::FailedPrecondition(_) => tonic::Status::failed_precondition(msg),
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::PermissionDenied(_) => tonic::Status::permission_denied(msg),
            Error::AlreadyExists(_) => tonic::Status::already_exists(msg),
            Error::Connect { .. } => tonic::Status::unavailable(msg),
            Error::Runtime { .. } | Error::Io { .. } => tonic::Status::internal(msg),
        }
    }
}
