//! The network daemon's errors and the gRPC codes they map to.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the state refuses it (port taken, network
    /// in use).
    #[error("{0}")]
    Conflict(String),
    /// No address or subnet left.
    #[error("{0}")]
    Exhausted(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Prefixes the message with what was being done, keeping the kind.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::AlreadyExists(m) => Error::AlreadyExists(wrap(m)),
            Error::Conflict(m) => Error::Conflict(wrap(m)),
            Error::Exhausted(m) => Error::Exhausted(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
        }
    }
}

/// Wraps any displayable error as internal, with what was being done.
pub fn internal<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Internal(format!("network store: {e}"))
    }
}

rdock_common::from_redb_errors!(Error);

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        let code = match e {
            Error::InvalidArgument(_) => tonic::Code::InvalidArgument,
            Error::NotFound(_) => tonic::Code::NotFound,
            Error::AlreadyExists(_) => tonic::Code::AlreadyExists,
            Error::Conflict(_) => tonic::Code::FailedPrecondition,
            Error::Exhausted(_) => tonic::Code::ResourceExhausted,
            Error::Internal(_) => tonic::Code::Internal,
        };
        tonic::Status::new(code, msg)
    }
}
