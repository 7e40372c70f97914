//! The runtime daemon's errors, their gRPC codes, and the exit code a CLI
//! should use for them (Docker's 125 / 126 / 127).

/// Metadata key carrying the exit code a CLI should exit with.
pub const EXIT_CODE_KEY: &str = "rdock-exit-code";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The command cannot be found in the container (exit 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The command cannot be invoked (exit 126).
    #[error("{0}")]
    CannotInvoke(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::Conflict(m) => Error::Conflict(wrap(m)),
            Error::AlreadyExists(m) => Error::AlreadyExists(wrap(m)),
            Error::CommandNotFound(m) => Error::CommandNotFound(wrap(m)),
            Error::CannotInvoke(m) => Error::CannotInvoke(wrap(m)),
            Error::Unavailable(m) => Error::Unavailable(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
        }
    }
}

/// Wraps an I/O error with what was being done.
pub fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

/// Wraps any displayable error as internal.
pub fn internal(what: impl std::fmt::Display) -> impl FnOnce(&dyn std::fmt::Display) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Internal(format!("container store: {e}"))
    }
}

rdock_common::from_redb_errors!(Error);

impl From<rdock_containerfs::Error> for Error {
    /// Volume, mount and copy errors keep their kind. A path missing in a
    /// container is worded by the caller, who knows the container's name
    /// (see `copy.rs`); this is the generic wording.
    fn from(e: rdock_containerfs::Error) -> Self {
        use rdock_containerfs::Error as F;
        match e {
            F::InvalidArgument(m) => Error::InvalidArgument(m),
            F::NotFound(m) => Error::NotFound(m),
            e @ F::PathNotFound(_) => Error::NotFound(e.to_string()),
            F::Conflict(m) => Error::Conflict(m),
            F::Internal(m) => Error::Internal(m),
        }
    }
}

/// A blocking task that did not finish (it panicked or was cancelled).
pub fn join(what: impl std::fmt::Display) -> impl FnOnce(tokio::task::JoinError) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl From<tonic::Status> for Error {
    /// An error from another daemon keeps its meaning.
    fn from(s: tonic::Status) -> Self {
        let m = s.message().to_string();
        match s.code() {
            tonic::Code::NotFound => Error::NotFound(m),
            tonic::Code::InvalidArgument => Error::InvalidArgument(m),
            tonic::Code::AlreadyExists => Error::AlreadyExists(m),
            tonic::Code::FailedPrecondition => Error::Conflict(m),
            tonic::Code::Unavailable => Error::Unavailable(m),
            _ => Error::Internal(m),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        let (code, exit) = match e {
            Error::InvalidArgument(_) => (tonic::Code::InvalidArgument, 125),
            Error::NotFound(_) => (tonic::Code::NotFound, 125),
            Error::Conflict(_) => (tonic::Code::FailedPrecondition, 125),
            Error::AlreadyExists(_) => (tonic::Code::AlreadyExists, 125),
            Error::CommandNotFound(_) => (tonic::Code::NotFound, 127),
            Error::CannotInvoke(_) => (tonic::Code::PermissionDenied, 126),
            Error::Unavailable(_) => (tonic::Code::Unavailable, 125),
            Error::Internal(_) => (tonic::Code::Internal, 125),
        };
        let mut s = tonic::Status::new(code, msg);
        if let Ok(v) = exit.to_string().parse() {
            s.metadata_mut().insert(EXIT_CODE_KEY, v);
        }
        s
    }
}
