//! The crate's one error type. Variants name what went wrong the way the
//! runtime daemon's own errors do, so mapping them is one `match`.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user: a mount, a name, a tar stream.
    #[error("{0}")]
    InvalidArgument(String),
    /// A volume that does not exist (`get NAME: no such volume`).
    #[error("{0}")]
    NotFound(String),
    /// A path that does not exist inside a container's root. Carries the
    /// path as the user gave it; the caller words the message (Docker:
    /// `Could not find the file PATH in container NAME`).
    #[error("no such file or directory: {0}")]
    PathNotFound(String),
    /// The operation conflicts with current state (a volume in use).
    #[error("{0}")]
    Conflict(String),
    /// A local failure (I/O, metadata).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Prefixes the message with `what`, keeping the kind.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::PathNotFound(p) => Error::PathNotFound(p),
            Error::Conflict(m) => Error::Conflict(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
        }
    }
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

/// Wraps a nix error with what was being done.
pub(crate) fn sys(what: impl std::fmt::Display) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |e| Error::Internal(format!("{what}: {}", io::Error::from(e)))
}
