//! `exec`: a second process in a running container, started by its shim
//! (`runc exec`) with the container's identity and limits.
//!
//! Kept lean for the `exec c true` budget: one record read, the user looked
//! up in the container's passwd, one shim connection, nothing written.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use rdock_proto::runtime::v1 as pb;
use rdock_proto::shim::v1 as shimpb;
use tonic::Code;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::model::{Container, Status};
use crate::runtime::Runtime;
use crate::{spec, tty, users};

/// What an exec streams back after `started`: output, then the exit code.
pub type ExecEvents = Pin<Box<dyn Stream<Item = Result<pb::ExecOutput>> + Send>>;

/// The client's messages after its start.
pub type ClientInput = Pin<Box<dyn Stream<Item = pb::exec_input::Input> + Send>>;

/// The process an exec starts, from the request and the container.
pub fn process_for(
    c: &Container,
    start: &pb::ExecStart,
    user: &users::ExecUser,
    nofile_hard: u64,
) -> Result<spec::ExecInput> {
    if start.cmd.is_empty() {
        return Err(Error::InvalidArgument("no exec command specified".into()));
    }
    if start.cmd.iter().any(|a| a.contains('\0')) {
        return Err(Error::InvalidArgument(
            "invalid exec command: an argument contains a NUL byte".into(),
        ));
    }
    for e in &start.env {
        if e.is_empty() || e.starts_with('=') || e.contains('\0') {
            return Err(Error::InvalidArgument(format!(
                "invalid environment variable: {e:?}"
            )));
        }
    }
    let env = spec::merge_env(&c.config.env, &start.env);
    Ok(spec::ExecInput {
        args: start.cmd.clone(),
        env: spec::process_env(&c.link_env, &env, &c.config.hostname, start.tty, &user.home),
        cwd: if start.workdir.is_empty() {
            c.config.working_dir.clone()
        } else {
            start.workdir.clone()
        },
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids.clone(),
        tty: start.tty,
        privileged: start.privileged,
        nofile_hard,
    })
}

/// A shim's refusal as the runtime daemon reports it: a command that does
/// not exist (127) or cannot be run (126) keeps its meaning.
fn shim_error(id: &str, s: tonic::Status) -> Error {
    let m = s.message().to_string();
    match s.code() {
        Code::NotFound => Error::CommandNotFound(m),
        Code::PermissionDenied => Error::CannotInvoke(m),
        Code::FailedPrecondition => Error::Conflict(format!("container {id} is not running")),
        Code::InvalidArgument => Error::InvalidArgument(m),
        _ => Error::Internal(format!("exec in {}: {m}", &id[..id.len().min(12)])),
    }
}

/// One message of the client for the shim (after the start).
pub fn exec_input(i: pb::exec_input::Input, stdin: bool) -> Option<shimpb::ExecIn> {
    use pb::exec_input::Input as I;
    use shimpb::exec_in::Input as S;
    let input = match i {
        I::Stdin(b) if stdin => S::Stdin(b),
        I::CloseStdin(v) if stdin => S::CloseStdin(v),
        I::Resize(s) => S::Resize(tty::window_size(&s).ok()?),
        I::Stdin(_) | I::CloseStdin(_) | I::Start(_) => return None,
    };
    Some(shimpb::ExecIn { input: Some(input) })
}

fn output(o: shimpb::exec_out::Output) -> pb::ExecOutput {
    use pb::exec_output::Output as O;
    use shimpb::exec_out::Output as S;
    let o = match o {
        S::Pid(pid) => O::Started(pb::ExecStarted {
            exec_id: String::new(),
            pid,
        }),
        S::Stdout(b) => O::Stdout(b),
        S::Stderr(b) => O::Stderr(b),
        S::ExitCode(c) => O::ExitCode(c),
    };
    pb::ExecOutput { output: Some(o) }
}

/// An exec ready to be handed to the shim.
struct Planned {
    container_id: String,
    socket: std::path::PathBuf,
    exec_id: String,
    first: shimpb::ExecIn,
    stdin: bool,
    detach: bool,
    tty: bool,
}

impl Runtime {
    /// Starts `start.cmd` in the container; returns what started (exec id
    /// and pid) and, unless detached, the process's output and exit code.
    /// `input` is the client's stream after its start message.
    ///
    /// The work that needs the daemon's state is done before the returned
    /// future is polled; the future itself only talks to the shim.
    pub fn exec(
        &self,
        start: pb::ExecStart,
        input: ClientInput,
    ) -> impl std::future::Future<Output = Result<(pb::ExecStarted, Option<ExecEvents>)>> + Send + 'static
    {
        let span = tracing::info_span!(
            "exec",
            container = %start.id,
            exec_id = tracing::field::Empty
        );
        let planned = span.in_scope(|| self.plan_exec(&start));
        async move { run(planned?, input).await }.instrument(span)
    }

    fn plan_exec(&self, start: &pb::ExecStart) -> Result<Planned> {
        let c = self.find(&start.id)?;
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let size = match (&start.size, start.tty) {
            (Some(s), true) => Some(tty::window_size(s)?),
            _ => None,
        };
        let user_spec = if start.user.is_empty() {
            &c.config.user
        } else {
            &start.user
        };
        // Docker reports a user the container does not know as a process
        // that cannot be started (126).
        let user = users::resolve(&self.rootfs(&c.id), user_spec).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::CannotInvoke(m),
            other => other,
        })?;
        let process = spec::exec_process(&process_for(&c, start, &user, self.nofile_hard)?)?;
        let process_json = serde_json::to_string(&process)
            .map_err(|e| Error::Internal(format!("encode the exec process: {e}")))?;
        let exec_id = hex::encode(rand::random::<[u8; 32]>());
        tracing::Span::current().record("exec_id", exec_id.as_str());
        let stdin = start.stdin && !start.detach;
        Ok(Planned {
            socket: self.socket(&c.id),
            container_id: c.id,
            first: shimpb::ExecIn {
                input: Some(shimpb::exec_in::Input::Start(shimpb::ExecStart {
                    exec_id: exec_id.clone(),
                    process_json,
                    stdin,
                    size,
                })),
            },
            exec_id,
            stdin,
            detach: start.detach,
            tty: start.tty,
        })
    }
}

/// Feeds the client's messages to the shim until the client's stream ends
/// or the shim's request does.
async fn forward_input(
    mut input: ClientInput,
    tx: tokio::sync::mpsc::Sender<shimpb::ExecIn>,
    stdin: bool,
) {
    while let Some(i) = input.next().await {
        if let Some(msg) = exec_input(i, stdin) {
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    }
}

/// Hands the planned exec to the shim and waits for its pid.
async fn run(p: Planned, input: ClientInput) -> Result<(pb::ExecStarted, Option<ExecEvents>)> {
    let id = p.container_id;
    let short = id[..id.len().min(12)].to_string();
    let stdin = p.stdin;
    // The shim's input: the start, then what the client sends (a task
    // forwards it until either side ends). Detached, the shim sees the
    // start alone and the end of input.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let _ = tx.try_send(p.first);
    if !p.detach {
        tokio::spawn(forward_input(input, tx, stdin));
    }
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    rdock_common::telemetry::inject_current(req.metadata_mut());
    let mut shim = rdock_shim::client::connect(&p.socket)
        .await
        .map_err(|e| Error::Unavailable(format!("shim of {short}: {e}")))?;
    let mut out = shim
        .exec(req)
        .await
        .map_err(|s| shim_error(&id, s))?
        .into_inner();
    let pid = match out.message().await.map_err(|s| shim_error(&id, s))? {
        Some(shimpb::ExecOut {
            output: Some(shimpb::exec_out::Output::Pid(pid)),
        }) => pid,
        _ => {
            return Err(Error::Internal(format!(
                "exec in {short}: the shim did not report the process"
            )))
        }
    };
    tracing::info!(pid, tty = p.tty, detach = p.detach, "exec started");
    let started = pb::ExecStarted {
        exec_id: p.exec_id,
        pid,
    };
    if p.detach {
        // Dropping the shim's stream leaves the process running.
        return Ok((started, None));
    }
    // Output until the exit code; a stream that ends without one lost its
    // shim (the container went away).
    let events = futures::stream::unfold(Some(out), move |out| {
        let (id, short) = (id.clone(), short.clone());
        async move {
            let mut out = out?;
            let next = match out.message().await {
                Ok(Some(shimpb::ExecOut {
                    output: Some(o @ shimpb::exec_out::Output::ExitCode(_)),
                })) => (Ok(output(o)), None),
                Ok(Some(shimpb::ExecOut { output: Some(o) })) => (Ok(output(o)), Some(out)),
                Ok(Some(shimpb::ExecOut { output: None })) => (
                    Err(Error::Internal(format!(
                        "exec in {short}: an empty message from the shim"
                    ))),
                    None,
                ),
                Ok(None) => (
                    Err(Error::Unavailable(format!(
                        "exec in {short}: the shim ended before the process exited"
                    ))),
                    None,
                ),
                Err(s) => (Err(shim_error(&id, s)), None),
            };
            Some(next)
        }
    });
    Ok((started, Some(Box::pin(events))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        let mut c = Container {
            id: "0123456789abcdef".into(),
            link_env: vec!["DB_NAME=/web/db".into()],
            ..Default::default()
        };
        c.config.env = vec!["PATH=/usr/bin:/bin".into(), "MODE=prod".into()];
        c.config.hostname = "web".into();
        c.config.working_dir = "/srv".into();
        c
    }

    fn start(cmd: &[&str]) -> pb::ExecStart {
        pb::ExecStart {
            id: "web".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_process_takes_the_containers_settings() {
        let user = users::ExecUser {
            uid: 33,
            gid: 33,
            additional_gids: vec![50],
            home: "/var/www".into(),
        };
        let mut s = start(&["env"]);
        s.env = vec!["MODE=dev".into(), "EXTRA=1".into()];
        let p = process_for(&container(), &s, &user, 20_000).unwrap();
        assert_eq!(p.args, vec!["env"]);
        assert_eq!(
            p.env,
            [
                "DB_NAME=/web/db",
                "PATH=/usr/bin:/bin",
                "MODE=dev",
                "EXTRA=1",
                "HOSTNAME=web",
                "HOME=/var/www"
            ]
        );
        assert_eq!(p.cwd, "/srv");
        assert_eq!(
            (p.uid, p.gid, p.additional_gids.clone()),
            (33, 33, vec![50])
        );
        assert!(!p.tty && !p.privileged);
        assert_eq!(p.nofile_hard, 20_000);

        s.workdir = "/tmp".into();
        s.tty = true;
        s.privileged = true;
        let p = process_for(&container(), &s, &user, 1024).unwrap();
        assert_eq!(p.cwd, "/tmp");
        assert!(p.tty && p.privileged);
        assert!(p.env.contains(&"TERM=xterm".to_string()));
    }

    #[test]
    fn bad_requests_are_refused() {
        let user = users::ExecUser::default();
        let c = container();
        let e = process_for(&c, &start(&[]), &user, 1024).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert_eq!(e.to_string(), "no exec command specified");
        assert!(process_for(&c, &start(&["a\0b"]), &user, 1024).is_err());
        for bad in ["", "=x", "A=\0"] {
            let mut s = start(&["true"]);
            s.env = vec![bad.into()];
            let e = process_for(&c, &s, &user, 1024).unwrap_err();
            assert!(
                e.to_string().contains("invalid environment variable"),
                "{e}"
            );
        }
    }

    #[test]
    fn shim_refusals_keep_their_exit_codes() {
        let id = "0123456789abcdef";
        let code = |e: Error| {
            let s = tonic::Status::from(e);
            let exit = s
                .metadata()
                .get(crate::error::EXIT_CODE_KEY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (s.code(), exit, s.message().to_string())
        };
        let (c, exit, m) = code(shim_error(
            id,
            tonic::Status::not_found("exec: \"nosuch\": executable file not found in $PATH"),
        ));
        assert_eq!((c, exit.as_str()), (Code::NotFound, "127"));
        assert!(m.contains("nosuch"), "{m}");
        let (c, exit, _) = code(shim_error(id, tonic::Status::permission_denied("denied")));
        assert_eq!((c, exit.as_str()), (Code::PermissionDenied, "126"));
        let (c, exit, m) = code(shim_error(id, tonic::Status::failed_precondition("x")));
        assert_eq!((c, exit.as_str()), (Code::FailedPrecondition, "125"));
        assert_eq!(m, format!("container {id} is not running"));
    }

    #[test]
    fn client_input_for_the_shim() {
        use pb::exec_input::Input as I;
        use shimpb::exec_in::Input as S;
        assert!(matches!(
            exec_input(I::Stdin(b"x".to_vec()), true).and_then(|m| m.input),
            Some(S::Stdin(_))
        ));
        assert!(exec_input(I::Stdin(b"x".to_vec()), false).is_none());
        assert!(exec_input(I::Start(pb::ExecStart::default()), true).is_none());
        assert!(matches!(
            exec_input(
                I::Resize(pb::TerminalSize {
                    width: 100,
                    height: 30
                }),
                false
            )
            .and_then(|m| m.input),
            Some(S::Resize(_))
        ));
    }
}
