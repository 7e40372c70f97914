//! Attached container sessions: `run` without `-d`, `start -a`, and
//! `attach`. The Attach stream is opened before the container starts, so
//! no output is lost; the session (see `session.rs`) copies until the
//! container exits, and the Wait call says how it ended when the stream
//! breaks first.

use std::io::{self, Write as _};

use anyhow::{anyhow, bail, Context as _, Result};
use futures::StreamExt as _;
use rdock_common::client::Conn;
use rdock_proto::runtime::v1::runtime_service_client::RuntimeServiceClient;
use rdock_proto::runtime::v1::{
    attach_input, AttachInput, AttachStart, InspectContainerRequest, KillContainerRequest,
    TerminalSize, WaitRequest,
};

use crate::args::AttachArgs;
use crate::conn::Target;
use crate::error::Exit;
use crate::escape::parse_detach_keys;
use crate::session::{self, Ended, Event, Input as _, Signals};
use crate::term;

type Runtime = RuntimeServiceClient<Conn>;

/// What Docker prints when `attach` and `exec` are detached.
pub const DETACHED_MESSAGE: &str = "read escape sequence";

/// An open Attach stream, not yet copying. Its input keeps the request
/// stream open (its end would read as a detach).
pub struct Attached {
    id: String,
    call: session::Call<AttachInput>,
}

/// How an attached session ended, for the caller's exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The container exited with this code.
    Exit(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
    /// A signal ended the session (and the CLI): its number.
    Signal(i32),
}

impl Outcome {
    /// The CLI's exit: the container's code, 0 for a detach, 128 + the
    /// signal's number.
    pub fn into_result(self) -> Result<()> {
        match self {
            Outcome::Exit(0) | Outcome::Detached => Ok(()),
            Outcome::Exit(code) => Err(Exit::container(code).into()),
            Outcome::Signal(n) => Err(Exit::container(128 + n).into()),
        }
    }
}

/// The attach-relevant settings of a container, from its inspect JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
}

impl ContainerState {
    pub fn from_inspect(json: &str) -> Result<ContainerState> {
        let v: serde_json::Value =
            serde_json::from_str(json).context("invalid inspect JSON from the runtime daemon")?;
        let flag = |a: &str, b: &str| v[a][b].as_bool().unwrap_or(false);
        let id = v["Id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("the runtime daemon's inspect JSON has no Id"))?;
        Ok(ContainerState {
            id: id.to_string(),
            running: flag("State", "Running"),
            paused: flag("State", "Paused"),
            restarting: flag("State", "Restarting"),
            tty: flag("Config", "Tty"),
            open_stdin: flag("Config", "OpenStdin"),
            auto_remove: flag("HostConfig", "AutoRemove"),
        })
    }
}

/// The container's settings (for `start -a` and `attach`).
pub async fn inspect_state(rt: &mut Runtime, name: &str) -> Result<ContainerState> {
    let info = rt
        .inspect_container(InspectContainerRequest {
            id: name.to_string(),
        })
        .await?
        .into_inner();
    ContainerState::from_inspect(&info.json).with_context(|| format!("container {name}"))
}

/// Opens the Attach stream for `id` (stdout and stderr, stdin too when
/// `stdin`). When this returns, the daemon has the attachment.
pub async fn open(rt: &mut Runtime, id: &str, stdin: bool) -> Result<Attached> {
    let (tx, requests, sent) = session::request();
    tx.send(AttachInput {
        input: Some(attach_input::Input::Start(AttachStart {
            id: id.to_string(),
            stdin,
            stdout: true,
            stderr: true,
        })),
    })
    .await
    .map_err(|_| anyhow!("attach {id}: request stream closed"))?;
    let output = rt
        .attach(requests)
        .await?
        .into_inner()
        .map(|m| m.map(Event::from))
        .boxed();
    Ok(Attached {
        id: id.to_string(),
        call: session::Call {
            output,
            input: tx,
            sent,
        },
    })
}

/// How to run an attached session.
pub struct Settings {
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
}

impl Attached {
    /// Sends a window size now (before the session's own first one).
    pub async fn resize(&self, size: TerminalSize) {
        let _ = self.call.input.send(AttachInput::resize(size)).await;
    }

    /// Copies until the container exits, the user detaches or a caught
    /// signal ends the session. When the stream ends without the exit code
    /// (say, the daemon restarted), Wait tells it, signals still forwarded.
    pub async fn copy_until_exit(
        self,
        rt: &Runtime,
        settings: Settings,
        signals: &mut Signals,
    ) -> Result<Outcome> {
        let Attached { id, call } = self;
        let opts = session::Options {
            tty: settings.tty,
            stdin: settings.stdin,
            detach_keys: settings.detach_keys,
            resize: settings.tty && term::stdout_is_terminal(),
        };
        let forward = |sig: &'static str| forward_signal(rt, &id, sig);
        match session::run(call, opts, signals, &forward).await? {
            Ended::Exit(code) => return Ok(Outcome::Exit(code)),
            Ended::Detached => return Ok(Outcome::Detached),
            Ended::Signal(n) => return Ok(Outcome::Signal(n)),
            Ended::Closed => {}
            Ended::Broken(status) => tracing::debug!(error = %status, "attach stream ended"),
        }
        let mut wait_rt = rt.clone();
        let wait = wait_rt.wait(WaitRequest {
            id: id.clone(),
            removed: false,
        });
        tokio::pin!(wait);
        loop {
            tokio::select! {
                res = &mut wait => return Ok(Outcome::Exit(res?.into_inner().exit_code)),
                (name, num) = signals.next() => {
                    if signals.forward {
                        forward_signal(rt, &id, name);
                    } else {
                        return Ok(Outcome::Signal(num));
                    }
                }
            }
        }
    }
}

/// The signals a session catches: forwarded to the container with
/// `--sig-proxy` (and no tty, for `start`/`attach`), else, with a tty,
/// caught so the terminal is restored; else left alone.
pub fn session_signals(forward: bool, tty: bool) -> Result<Signals> {
    if forward {
        Signals::forwarding()
    } else if tty {
        Signals::ending()
    } else {
        Ok(Signals::none())
    }
}

/// Sends the signal without holding up the output; a failure is only
/// logged (the container may have exited already), as Docker's proxy does.
fn forward_signal(rt: &Runtime, id: &str, signal: &'static str) {
    let mut rt = rt.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        if let Err(e) = rt
            .kill_container(KillContainerRequest {
                id: id.clone(),
                signal: signal.to_string(),
            })
            .await
        {
            tracing::debug!(container = %id, signal, error = %e, "forward signal");
        }
    });
}

/// Docker's check before attaching stdin to a tty: it must be a terminal.
/// (Its exit code is 1, as Docker's.)
pub fn check_tty(stdin: bool, tty: bool) -> Result<()> {
    if stdin && tty && !term::stdin_is_terminal() {
        return Err(Exit::with_message(1, "the input device is not a TTY").into());
    }
    Ok(())
}

/// `attach CONTAINER`: the running container's streams, until it exits or
/// the user detaches (Docker's message, exit 0).
pub async fn attach(target: &Target, args: &AttachArgs) -> Result<()> {
    let detach_keys = parse_detach_keys(args.detach_keys.as_deref())?;
    let mut rt = target.runtime().await?;
    let state = inspect_state(&mut rt, &args.container).await?;
    if !state.running {
        bail!("cannot attach to a stopped container, start it first");
    }
    if state.paused {
        bail!("cannot attach to a paused container, unpause it first");
    }
    if state.restarting {
        bail!("cannot attach to a restarting container, wait until it is running");
    }
    let stdin = !args.no_stdin && state.open_stdin;
    check_tty(stdin, state.tty)?;
    let mut signals = session_signals(args.sig_proxy && !state.tty, state.tty)?;
    let attached = open(&mut rt, &state.id, stdin).await?;
    if state.tty && term::stdout_is_terminal() {
        // One size off first, as Docker does, so that a program that is
        // already drawing redraws for the new attachment.
        if let Some(size) = term::size() {
            attached
                .resize(TerminalSize {
                    width: size.width + 1,
                    height: size.height + 1,
                })
                .await;
        }
    }
    let settings = Settings {
        tty: state.tty,
        stdin,
        detach_keys,
    };
    let outcome = attached
        .copy_until_exit(&rt, settings, &mut signals)
        .await?;
    if outcome == Outcome::Detached {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "{DETACHED_MESSAGE}");
    }
    outcome.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_from_inspect() {
        let s = ContainerState::from_inspect(
            r#"{"Id":"abc","State":{"Running":true,"Paused":false},"Config":{"Tty":true,"OpenStdin":true},"HostConfig":{"AutoRemove":true}}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            ContainerState {
                id: "abc".into(),
                running: true,
                paused: false,
                restarting: false,
                tty: true,
                open_stdin: true,
                auto_remove: true,
            }
        );
        let s = ContainerState::from_inspect(r#"{"Id":"x"}"#).unwrap();
        assert!(!s.running && !s.tty && !s.open_stdin);
        assert!(ContainerState::from_inspect("{}").is_err());
        assert!(ContainerState::from_inspect("nope").is_err());
    }

    #[test]
    fn outcomes_to_exit_codes() {
        assert!(Outcome::Exit(0).into_result().is_ok());
        assert!(Outcome::Detached.into_result().is_ok());
        let code = |o: Outcome| {
            o.into_result()
                .unwrap_err()
                .downcast::<Exit>()
                .unwrap()
                .code
        };
        assert_eq!(code(Outcome::Exit(3)), 3);
        assert_eq!(code(Outcome::Signal(15)), 143);
    }
}
