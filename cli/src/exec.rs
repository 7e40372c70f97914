//! `exec`: a second process in a running container, over one Exec stream
//! (no other round trip: the daemon finds the container, starts the
//! process and streams it). Exit codes as Docker's: the process's own, 127
//! when the command is not found, 126 when it cannot be invoked, 1 for
//! other daemon errors.

use std::io::{self, Write as _};

use anyhow::{anyhow, Result};
use futures::StreamExt as _;
use rdock_proto::runtime::v1::{exec_input, exec_output, ExecInput, ExecOutput, ExecStart};

use crate::args::ExecArgs;
use crate::attach::{check_tty, DETACHED_MESSAGE};
use crate::conn::Target;
use crate::error::{self, Exit, EXIT_CODE_KEY};
use crate::escape::parse_detach_keys;
use crate::options::{parse_env, parse_env_file, process_env, Lookup};
use crate::session::{self, Ended, Event, Signals};
use crate::term;

/// Docker's message around a runtime's refusal to start the process.
const OCI_PREFIX: &str = "OCI runtime exec failed: exec failed: unable to start container process";

/// The ExecStart for these arguments (env files read here).
pub fn exec_start(args: &ExecArgs, lookup: Lookup<'_>) -> Result<ExecStart> {
    let mut env = Vec::new();
    for path in &args.env_file {
        let display = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| anyhow!("open {display}: {e}"))?;
        env.extend(parse_env_file(&display, &text, lookup)?);
    }
    for e in &args.env {
        env.extend(parse_env(e, lookup)?);
    }
    let size = if args.tty && !args.detach {
        term::size()
    } else {
        None
    };
    Ok(ExecStart {
        id: args.container().to_string(),
        cmd: args.command().to_vec(),
        env,
        workdir: args.workdir.clone().unwrap_or_default(),
        user: args.user.clone().unwrap_or_default(),
        tty: args.tty,
        stdin: args.interactive && !args.detach,
        detach: args.detach,
        privileged: args.privileged,
        size,
    })
}

/// A failed Exec call as the user sees it: Docker's message and code.
pub fn exec_error(status: &tonic::Status) -> Exit {
    let from_meta = status
        .metadata()
        .get(EXIT_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u8>().ok());
    let authz = status.message().starts_with("permission denied: ");
    let code = match (from_meta, status.code()) {
        (Some(c @ (126 | 127)), _) => c,
        (Some(_), _) => 1,
        (None, tonic::Code::NotFound) if !is_missing_container(status.message()) => 127,
        (None, tonic::Code::PermissionDenied) if !authz => 126,
        _ => 1,
    };
    let mut message = error::status_message(status);
    if matches!(code, 126 | 127) && !message.starts_with("OCI runtime exec failed") {
        message = format!("{OCI_PREFIX}: {message}: unknown");
    }
    Exit::with_message(code, message)
}

fn is_missing_container(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.starts_with("no such container") || m.contains(": no such container")
}

pub async fn exec(target: &Target, args: &ExecArgs) -> Result<()> {
    let detach_keys = parse_detach_keys(args.detach_keys.as_deref())?;
    if !args.detach {
        check_tty(args.interactive, args.tty)?;
    }
    let start = exec_start(args, &process_env)?;
    let mut rt = target.runtime().await?;
    let (tx, requests, sent) = session::request::<ExecInput>();
    tx.send(ExecInput {
        input: Some(exec_input::Input::Start(start)),
    })
    .await
    .map_err(|_| anyhow!("exec: request stream closed"))?;
    let mut output = match rt.exec(requests).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => return Err(exec_error(&status).into()),
    };
    // The first message says the process started (or the call failed).
    loop {
        match output.message().await {
            Ok(Some(ExecOutput {
                output: Some(exec_output::Output::Started(_)),
            })) => break,
            Ok(Some(ExecOutput {
                output: Some(exec_output::Output::ExitCode(code)),
            })) => return exit_with(code),
            Ok(Some(_)) => continue,
            Ok(None) if args.detach => return Ok(()),
            Ok(None) => {
                return Err(anyhow!(
                    "exec: the runtime daemon ended the stream before the process started"
                ))
            }
            Err(status) => return Err(exec_error(&status).into()),
        }
    }
    if args.detach {
        // Docker's `exec -d` prints nothing.
        return Ok(());
    }
    let opts = session::Options {
        tty: args.tty,
        stdin: args.interactive,
        detach_keys,
        // Docker follows the size when its stdin is a terminal.
        resize: args.tty && term::stdin_is_terminal(),
    };
    // Docker's exec forwards no signals; with a raw terminal they end the
    // session, so the terminal is restored.
    let mut signals = if args.tty && args.interactive && term::stdin_is_terminal() {
        Signals::ending()?
    } else {
        Signals::none()
    };
    let call = session::Call {
        output: output.map(|m| m.map(Event::from)).boxed(),
        input: tx,
        sent,
    };
    match session::run(call, opts, &mut signals, &|_| {}).await? {
        Ended::Exit(code) => exit_with(code),
        Ended::Detached => {
            let _ = writeln!(io::stderr().lock(), "{DETACHED_MESSAGE}");
            Ok(())
        }
        Ended::Signal(n) => Err(Exit::container(128 + n).into()),
        Ended::Closed => Err(anyhow!(
            "exec: the runtime daemon ended the stream without the process's exit code"
        )),
        Ended::Broken(status) => Err(exec_error(&status).into()),
    }
}

fn exit_with(code: i32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Exit::container(code).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code, msg: &str, exit: Option<&str>) -> tonic::Status {
        let mut s = tonic::Status::new(code, msg);
        if let Some(e) = exit {
            s.metadata_mut().insert(EXIT_CODE_KEY, e.parse().unwrap());
        }
        s
    }

    #[test]
    fn exec_errors_like_docker() {
        let not_found = "exec: \"nosuch\": executable file not found in $PATH";
        for s in [
            status(tonic::Code::NotFound, not_found, None),
            status(tonic::Code::FailedPrecondition, not_found, Some("127")),
            status(tonic::Code::NotFound, not_found, Some("127")),
        ] {
            let e = exec_error(&s);
            assert_eq!(e.code, 127);
            assert_eq!(
                e.message.as_deref(),
                Some("OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown")
            );
        }
        let e = exec_error(&status(
            tonic::Code::PermissionDenied,
            "exec: \"/etc\": permission denied",
            None,
        ));
        assert_eq!(e.code, 126);
        // A message already in Docker's form is kept.
        let full = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/x\": permission denied: unknown";
        let e = exec_error(&status(tonic::Code::FailedPrecondition, full, Some("126")));
        assert_eq!((e.code, e.message.as_deref()), (126, Some(full)));

        // The container itself, or the caller's rights: 1, message as is.
        for s in [
            status(tonic::Code::NotFound, "no such container: c9", None),
            status(tonic::Code::NotFound, "no such container: c9", Some("125")),
            status(
                tonic::Code::FailedPrecondition,
                "container c1 is not running",
                Some("125"),
            ),
            status(
                tonic::Code::PermissionDenied,
                "permission denied: viewer may not call /rdock.runtime.v1.RuntimeService/Exec",
                None,
            ),
        ] {
            let e = exec_error(&s);
            assert_eq!(e.code, 1, "{s:?}");
            assert_eq!(e.message.as_deref(), Some(s.message()));
        }
    }
}
