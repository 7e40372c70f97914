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

/// Exit code of a failed command (Docker's for pull, rmi, stop, ...).
/// `run`, `create` and `start` choose theirs through [`Exit`].
pub const EXIT_FAILED: u8 = 1;

/// Docker's exit code for an engine error of `run`, `create` and `start`.
pub const EXIT_ENGINE: u8 = 125;

/// gRPC metadata key on runtime daemon errors: the exit code a CLI should
/// use ("125", "126", "127").
pub const EXIT_CODE_KEY: &str = "rdock-exit-code";

/// Ends the command with `code`, printing `message` first as one line when
/// there is one (a container's own exit code has none).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

impl Exit {
    /// A container's exit status as a process exit code (its low 8 bits).
    pub fn container(code: i32) -> Exit {
        Exit {
            code: (code & 0xff) as u8,
            message: None,
        }
    }

    pub fn with_message(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: Some(message.into()),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// The exit code an engine error asks for: the `rdock-exit-code` metadata
/// when it holds a code from 1 to 255, else 125.
pub fn engine_exit_code(status: &tonic::Status) -> u8 {
    status
        .metadata()
        .get(EXIT_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u8>().ok())
        .filter(|c| *c != 0)
        .unwrap_or(EXIT_ENGINE)
}

/// An error of `run`/`create`/`start` as Docker reports it: one line, and
/// the exit code from the daemon's metadata (125 when there is none).
/// An [`Exit`], and a write to a closed pipe, pass through unchanged.
pub fn engine(err: anyhow::Error) -> anyhow::Error {
    if err.is::<Exit>() || is_broken_pipe(&err) {
        return err;
    }
    let code = err
        .chain()
        .find_map(|c| c.downcast_ref::<tonic::Status>())
        .map_or(EXIT_ENGINE, engine_exit_code);
    Exit::with_message(code, message(&err)).into()
}

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
/// A broken pipe under a gRPC status or transport error is the daemon's
/// connection going away, not our reader: that is a real failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let remote = err.chain().any(|c| {
        c.downcast_ref::<tonic::Status>().is_some()
            || c.downcast_ref::<tonic::transport::Error>().is_some()
    });
    !remote
        && err.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        })
}

/// Prints what is left to print of a command's error; returns the exit code.
pub fn report(err: &anyhow::Error) -> u8 {
    if let Some(exit) = err.downcast_ref::<Exit>() {
        if let Some(m) = &exit.message {
            print_line(m);
        }
        return exit.code;
    }
    if err.is::<Reported>() {
        return EXIT_FAILED;
    }
    // `rdockctl ps | head`: the reader is gone, nothing is wrong.
    if is_broken_pipe(err) {
        return 0;
    }
    print(err);
    EXIT_FAILED
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
    fn exit_code_from_metadata() {
        let with = |code: &str| {
            let mut s = tonic::Status::failed_precondition("exec: \"nope\": not found");
            s.metadata_mut()
                .insert(EXIT_CODE_KEY, code.parse().unwrap());
            s
        };
        assert_eq!(engine_exit_code(&with("127")), 127);
        assert_eq!(engine_exit_code(&with("126")), 126);
        assert_eq!(engine_exit_code(&with(" 125 ")), 125);
        assert_eq!(engine_exit_code(&with("0")), 125);
        assert_eq!(engine_exit_code(&with("300")), 125);
        assert_eq!(engine_exit_code(&with("x")), 125);
        assert_eq!(engine_exit_code(&tonic::Status::not_found("x")), 125);

        let err = engine(anyhow::Error::new(with("127")).context("start web"));
        let exit = err.downcast_ref::<Exit>().unwrap();
        assert_eq!(exit.code, 127);
        assert_eq!(
            exit.message.as_deref(),
            Some("start web: exec: \"nope\": not found")
        );
        let err = engine(anyhow::anyhow!("invalid size: '1x'"));
        let exit = err.downcast_ref::<Exit>().unwrap();
        assert_eq!(
            (exit.code, exit.message.as_deref()),
            (125, Some("invalid size: '1x'"))
        );
        // An Exit stays as it is.
        let err = engine(Exit::container(3).into());
        assert_eq!(err.downcast_ref::<Exit>().unwrap().code, 3);
        assert_eq!(Exit::container(-1).code, 255);
        assert_eq!(Exit::container(137).code, 137);
        assert_eq!(Exit::container(256 + 2).code, 2);
    }

    #[test]
    fn one_line() {
        let err = anyhow::anyhow!("two\nlines");
        assert_eq!(message(&err), "two lines");
        let io_err = io::Error::new(io::ErrorKind::BrokenPipe, "pipe");
        assert!(is_broken_pipe(&anyhow::Error::new(io_err)));
    }
}
