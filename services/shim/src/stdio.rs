//! The container's stdio: pipes the shim creates and holds (stdin's write
//! end for Attach, the read ends of stdout and stderr) or the pty master of
//! a container with a terminal, and the pumps that copy the output into the
//! log file and to every attached client.
//!
//! Clients get output through a broadcast channel: sending never waits, so a
//! slow client can never block the container; one that falls behind is
//! dropped (see `server.rs`). Output is only copied for clients while there
//! are any.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::broadcast;

use super::console::Pty;
use super::logfile::{LogWriter, Stream};

/// Chunks kept for attached clients before a slow one lags.
const EVENTS: usize = 128;
/// One read from a pipe.
const READ_BUF: usize = 16 * 1024;

/// What attached clients receive.
#[derive(Debug, Clone)]
pub enum Event {
    Output(Stream, Arc<[u8]>),
    /// The container exited (output is drained); nothing follows.
    Exit(i32),
}

/// The container's ends of its stdio, to hand to `runtime create`.
pub struct ContainerEnds {
    pub stdin: Stdio,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ContainerEnds {
    /// As `[stdin, stdout, stderr]` for a `Command`.
    pub fn into_stdio(self) -> [Stdio; 3] {
        [self.stdin, self.stdout.into(), self.stderr.into()]
    }
}

/// The shim's ends.
pub struct ShimEnds {
    /// Write end of the container's stdin, when it has one.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Creates the container's stdio: a stdin pipe when `with_stdin` (else
/// /dev/null), stdout and stderr pipes. All close on exec in the shim.
pub fn pipes(with_stdin: bool) -> std::io::Result<(ContainerEnds, ShimEnds)> {
    let (stdin_c, stdin_s) = if with_stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        (Stdio::from(r), Some(w))
    } else {
        (Stdio::null(), None)
    };
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    Ok((
        ContainerEnds {
            stdin: stdin_c,
            stdout: out_w,
            stderr: err_w,
        },
        ShimEnds {
            stdin: stdin_s,
            stdout: out_r,
            stderr: err_r,
        },
    ))
}

/// Where a client's input goes: the write end of a stdin pipe, or the
/// terminal the process runs on.
pub enum Input {
    Pipe(pipe::Sender),
    Pty(Arc<Pty>),
}

impl Input {
    /// A pipe's write end as an `Input`.
    pub fn pipe(fd: OwnedFd) -> std::io::Result<Input> {
        Ok(Input::Pipe(pipe::Sender::from_owned_fd(fd)?))
    }

    /// Writes all of `data`.
    pub async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Input::Pipe(p) => p.write_all(data).await,
            Input::Pty(t) => t.write_all(data).await,
        }
    }
}

/// Where output goes: the log file and attached clients.
pub struct Output {
    log: Mutex<LogWriter>,
    events: broadcast::Sender<Event>,
    log_failing: AtomicBool,
}

impl Output {
    pub fn new(log: LogWriter) -> Output {
        let (events, _) = broadcast::channel(EVENTS);
        Output {
            log: Mutex::new(log),
            events,
            log_failing: AtomicBool::new(false),
        }
    }

    fn log(&self) -> MutexGuard<'_, LogWriter> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a chunk read from `stream` and passes it to attached clients.
    pub fn chunk(&self, stream: Stream, data: &[u8]) {
        let r = self.log().write(stream, data, Utc::now());
        self.note_log_result(r);
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(Event::Output(stream, Arc::from(data)));
        }
    }

    /// Writes out the unfinished lines of both streams (at EOF or exit).
    pub fn finish(&self, stream: Stream) {
        let r = self.log().finish(stream, Utc::now());
        self.note_log_result(r);
    }

    /// Warns once per run of failures, not once per chunk.
    fn note_log_result(&self, r: std::io::Result<()>) {
        match r {
            Ok(()) => {
                if self.log_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("container log writable again");
                }
            }
            Err(e) => {
                if !self.log_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot write the container log; output is lost until it works again");
                }
            }
        }
    }

    /// Sends an event to every attached client.
    pub fn publish(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// A new client's view, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

/// Copies one output pipe into `out` until EOF.
pub async fn pump(stream: Stream, fd: OwnedFd, out: Arc<Output>) {
    let mut rx = match pipe::Receiver::from_owned_fd(fd) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(stream = stream.name(), error = %e, "cannot read the container's output");
            return;
        }
    };
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => out.chunk(stream, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(stream = stream.name(), error = %e, "reading the container's output");
                break;
            }
        }
    }
    out.finish(stream);
}

/// Copies a terminal's output into `out`, as stdout (a terminal has one
/// output stream), until its end.
pub async fn pump_pty(pty: Arc<Pty>, out: Arc<Output>) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match pty.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => out.chunk(Stream::Stdout, &buf[..n]),
            Err(e) => {
                tracing::warn!(error = %e, "reading the container's terminal");
                break;
            }
        }
    }
    out.finish(Stream::Stdout);
}
