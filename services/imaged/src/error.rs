//! The image daemon's errors and their gRPC codes.

/// Everything that can go wrong in the image daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Registry(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadContent(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata store: {0}")]
    Store(String),
}

impl Error {
    /// Prefixes the message with what was being done.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{what}: {m}")),
            Error::NotFound(m) => Error::NotFound(format!("{what}: {m}")),
            Error::Conflict(m) => Error::Conflict(format!("{what}: {m}")),
            Error::Registry(m) => Error::Registry(format!("{what}: {m}")),
            Error::Unavailable(m) => Error::Unavailable(format!("{what}: {m}")),
            Error::BadContent(m) => Error::BadContent(format!("{what}: {m}")),
            Error::Io { context, source } => Error::Io {
                context: format!("{what}: {context}"),
                source,
            },
            Error::Store(m) => Error::Store(format!("{what}: {m}")),
        }
    }
}

/// Wraps an I/O error with what was being done.
pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Store(e.to_string())
    }
}

rdock_common::from_redb_errors!(Error);

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::Conflict(_) => tonic::Status::failed_precondition(msg),
            Error::Registry(_) | Error::BadContent(_) => tonic::Status::aborted(msg),
            Error::Unavailable(_) => tonic::Status::unavailable(msg),
            Error::Io { .. } | Error::Store(_) => tonic::Status::internal(msg),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
