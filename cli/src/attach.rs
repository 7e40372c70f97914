//! An attached container session (`run` without `-d`, `start -a`): the
//! Attach stream is opened before the container starts, so no output is
//! lost; then stdout and stderr chunks are copied to ours as they come,
//! local stdin is forwarded with `-i`, and SIGINT/SIGTERM are forwarded to
//! the container. The container's exit ends the session.

use std::io::Read as _;

use anyhow::{anyhow, Context as _, Result};
use rdock_common::client::Conn;
use rdock_proto::runtime::v1::runtime_service_client::RuntimeServiceClient;
use rdock_proto::runtime::v1::{
    attach_input, attach_output, AttachInput, AttachOutput, AttachStart, KillContainerRequest,
    WaitRequest,
};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

type Runtime = RuntimeServiceClient<Conn>;

/// Size of the stdin chunks sent to the container.
const STDIN_CHUNK: usize = 32 * 1024;

/// An open Attach stream, not yet copying.
pub struct Session {
    id: String,
    output: Streaming<AttachOutput>,
    /// Keeps the request stream open (its end would read as a hang-up).
    input: mpsc::Sender<AttachInput>,
    stdin: bool,
}

/// SIGINT and SIGTERM, caught for the session's length: they go to the
/// container instead of ending the CLI.
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    pub fn catch() -> Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("catch SIGINT")?,
            term: signal(SignalKind::terminate()).context("catch SIGTERM")?,
        })
    }

    /// The next caught signal's name, as KillContainer takes it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "INT",
            _ = self.term.recv() => "TERM",
        }
    }
}

/// Opens the Attach stream for `id` (stdout and stderr, stdin too when
/// `stdin`). When this returns, the daemon has the attachment.
pub async fn open(rt: &mut Runtime, id: &str, stdin: bool) -> Result<Session> {
    let (tx, rx) = mpsc::channel(16);
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
    let output = rt.attach(ReceiverStream::new(rx)).await?.into_inner();
    Ok(Session {
        id: id.to_string(),
        output,
        input: tx,
        stdin,
    })
}

impl Session {
    /// Copies the container's output until it exits (after StartContainer);
    /// returns its exit code.
    pub async fn copy_until_exit(self, rt: &Runtime, mut signals: Signals) -> Result<i32> {
        let Session {
            id,
            mut output,
            input,
            stdin,
        } = self;
        if stdin {
            forward_stdin(input.clone());
        }
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        loop {
            tokio::select! {
                msg = output.message() => match msg {
                    Ok(Some(AttachOutput { output: Some(out) })) => match out {
                        attach_output::Output::Stdout(b) => write_chunk(&mut stdout, &b).await?,
                        attach_output::Output::Stderr(b) => write_chunk(&mut stderr, &b).await?,
                        attach_output::Output::ExitCode(code) => return Ok(code),
                    },
                    Ok(Some(AttachOutput { output: None })) => {}
                    Ok(None) => break,
                    // The stream broke (say, the daemon restarted): Wait
                    // still tells how the container ended.
                    Err(status) => {
                        tracing::debug!(error = %status, "attach stream ended");
                        break;
                    }
                },
                sig = signals.next() => forward_signal(rt, &id, sig),
            }
        }
        drop(input);
        let mut wait_rt = rt.clone();
        let wait = wait_rt.wait(WaitRequest {
            id: id.clone(),
            removed: false,
        });
        tokio::pin!(wait);
        loop {
            tokio::select! {
                res = &mut wait => return Ok(res?.into_inner().exit_code),
                sig = signals.next() => forward_signal(rt, &id, sig),
            }
        }
    }
}

async fn write_chunk<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<()> {
    w.write_all(bytes).await?;
    w.flush().await?;
    Ok(())
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

/// Reads local stdin on a thread of its own (a blocking read cannot be
/// cancelled, and must not hold up the exit) and sends it on; at its end,
/// `close_stdin`.
fn forward_stdin(tx: mpsc::Sender<AttachInput>) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; STDIN_CHUNK];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "read stdin");
                        break;
                    }
                };
                let msg = AttachInput {
                    input: Some(attach_input::Input::Stdin(buf[..n].to_vec())),
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
            }
            let _ = tx.blocking_send(AttachInput {
                input: Some(attach_input::Input::CloseStdin(true)),
            });
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot read stdin");
    }
}
