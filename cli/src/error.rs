//! Errors as the user sees them: one line, `rdockctl: <message>`.

use std::io::{self, Write};

use rdock_common::client::error_chain;

/// A failure whose lines were already printed (a command that goes on after
/// one argument fails, then exits 1).
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Reported {}

/// A gRPC status as one message: the daemon's message (not the debug form),
/// followed by the transport cause when there is one.
pub fn status_message(status: &tonic::Status) -> String {
    let mut msg = status.message().to_string();
    if msg.is_empty() {
        msg = status.code().description().to_string();
    }
    if let Some(src) = std::error::Error::source(status) {
        let cause = error_chain(src);
        if !msg.contains(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    msg
}

/// The whole error on one line: context first, then causes; a gRPC status
/// shows only its message.
pub fn message(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let (text, last) = match cause.downcast_ref::<tonic::Status>() {
            Some(st) => (status_message(st), true),
            None => (cause.to_string(), false),
        };
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if last {
            break;
        }
    }
    let line = parts.join(": ");
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the error is a write to a closed pipe (`rdockctl images | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints `rdockctl: <message>` to stderr.
pub fn print_line(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "rdockctl: {msg}");
}

/// Prints an error as one line.
pub fn print(err: &anyhow::Error) {
    print_line(&message(err));
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn status_shows_only_its_message() {
        let err = anyhow::Error::new(tonic::Status::not_found("no such image: x"));
        assert_eq!(message(&err), "no such image: x");
        let err: anyhow::Error =
            Err::<(), _>(tonic::Status::permission_denied("viewer may not call Pull"))
                .context("pull busybox")
                .unwrap_err();
        assert_eq!(message(&err), "pull busybox: viewer may not call Pull");
        let err = anyhow::Error::new(tonic::Status::unavailable(""));
        assert_eq!(message(&err), "The service is currently unavailable");
    }

    #[test]
    fn one_line() {
        let err = anyhow::anyhow!("two\nlines");
        assert_eq!(message(&err), "two lines");
        let io_err = io::Error::new(io::ErrorKind::BrokenPipe, "pipe");
        assert!(is_broken_pipe(&anyhow::Error::new(io_err)));
    }
}
