//! A process's stdio as the shim holds it, for the container's init and
//! for exec processes alike: pipes the shim creates and holds (stdin's
//! write end for clients, the read ends of stdout and stderr) or the pty
//! master the runtime hands over on a console socket ([`Setup`],
//! [`ProcessIo`]); what clients write to and resize ([`ProcessStdio`]); the
//! pumps that copy output to where it goes ([`Sink`]) and the drain after
//! the process exited.
//!
//! The container's output goes to the log file and to attached clients
//! through a broadcast channel ([`Output`]): sending never waits, so a slow
//! client can never block the container; one that falls behind is dropped
//! (see `server.rs`). Output is only copied for clients while there are
//! any.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::console::{ConsoleSocket, Pty, WindowSize};
use super::logfile::{LogWriter, Stream};
use super::Error;

/// How long output may take to drain after its process exited.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
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

/// The shim's side of a process's stdio while the runtime starts it.
pub enum Setup {
    /// A terminal: the runtime sends its master here.
    Console {
        socket: ConsoleSocket,
        stdin: bool,
    },
    Pipes(ShimEnds),
}

impl Setup {
    /// With a terminal, a console socket `dir/socket`, else pipes (with a
    /// stdin pipe when `stdin`); and the stdio to give the runtime (none
    /// with a terminal: the process gets the terminal's other end).
    pub fn new(
        terminal: bool,
        stdin: bool,
        dir: &Path,
        socket: &str,
    ) -> Result<(Setup, [Stdio; 3]), Error> {
        if terminal {
            let socket = ConsoleSocket::bind(dir, socket)
                .map_err(|e| Error::io("create the console socket", e))?;
            Ok((
                Setup::Console { socket, stdin },
                [Stdio::null(), Stdio::null(), Stdio::null()],
            ))
        } else {
            let (container_ends, shim_ends) =
                pipes(stdin).map_err(|e| Error::io("create stdio pipes", e))?;
            Ok((Setup::Pipes(shim_ends), container_ends.into_stdio()))
        }
    }

    /// What to give the runtime as `--console-socket`, with a terminal.
    pub fn console_path(&self) -> Option<&Path> {
        match self {
            Setup::Console { socket, .. } => Some(socket.connect_path()),
            Setup::Pipes(_) => None,
        }
    }

    /// Once the runtime has started the process: its terminal, received
    /// from the runtime, or its pipes. The console socket is removed.
    pub async fn finish(self) -> std::io::Result<ProcessIo> {
        match self {
            Setup::Console { socket, stdin } => {
                let pty = socket.receive().await.and_then(Pty::new)?;
                Ok(ProcessIo::Pty {
                    pty: Arc::new(pty),
                    stdin,
                })
            }
            Setup::Pipes(ends) => Ok(ProcessIo::Pipes(ends)),
        }
    }
}

/// A started process's stdio as the shim holds it.
pub enum ProcessIo {
    Pipes(ShimEnds),
    /// Its terminal, and whether clients may type into it.
    Pty {
        pty: Arc<Pty>,
        stdin: bool,
    },
}

impl ProcessIo {
    /// The terminal, if the process has one.
    pub fn pty(&self) -> Option<Arc<Pty>> {
        match self {
            ProcessIo::Pty { pty, .. } => Some(pty.clone()),
            ProcessIo::Pipes(_) => None,
        }
    }

    /// Takes where clients' input goes: the stdin pipe's write end, or
    /// the terminal; `None` when the process keeps no stdin open.
    pub fn take_input(&mut self) -> std::io::Result<Option<Input>> {
        match self {
            ProcessIo::Pipes(ends) => ends.stdin.take().map(Input::pipe).transpose(),
            ProcessIo::Pty { pty, stdin } => Ok(stdin.then(|| Input::Pty(pty.clone()))),
        }
    }

    /// Starts copying the output into `sink`: one pump per pipe, or one
    /// for the terminal (its single stream is stdout).
    pub fn pump<S: Sink + Clone>(self, sink: S, span: &tracing::Span) -> Vec<JoinHandle<()>> {
        match self {
            ProcessIo::Pipes(ends) => vec![
                tokio::spawn(
                    pump(Stream::Stdout, ends.stdout, sink.clone()).instrument(span.clone()),
                ),
                tokio::spawn(pump(Stream::Stderr, ends.stderr, sink).instrument(span.clone())),
            ],
            ProcessIo::Pty { pty, .. } => {
                vec![tokio::spawn(pump_pty(pty, sink).instrument(span.clone()))]
            }
        }
    }
}

/// Waits for the pumps of a process that exited until its output is at
/// its end, or [`DRAIN_TIMEOUT`] passed (something it started still holds
/// the output open), then stops reading it. `whose` names the output in
/// the log ("the container's").
pub async fn drain(pumps: Vec<JoinHandle<()>>, whose: &str) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    for mut p in pumps {
        if tokio::time::timeout_at(deadline, &mut p).await.is_err() {
            p.abort();
            tracing::warn!(
                "{whose} output still open {DRAIN_TIMEOUT:?} after it exited; stopped reading it"
            );
        }
    }
}

/// A started process's stdio as clients reach it: its stdin, until that is
/// closed (a write that fails because the reader is gone closes it too),
/// and its terminal, if it has one.
pub struct ProcessStdio {
    stdin: tokio::sync::Mutex<Option<Input>>,
    pty: Option<Arc<Pty>>,
    /// The process, in errors: "container ID", "exec process PID".
    who: String,
    /// Its stdio, in errors: "the container's".
    whose: &'static str,
}

impl ProcessStdio {
    pub fn new(
        stdin: Option<Input>,
        pty: Option<Arc<Pty>>,
        who: String,
        whose: &'static str,
    ) -> ProcessStdio {
        ProcessStdio {
            stdin: tokio::sync::Mutex::new(stdin),
            pty,
            who,
            whose,
        }
    }

    /// Writes all of `data` to the process's stdin.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<(), Error> {
        let mut stdin = self.stdin.lock().await;
        let Some(w) = stdin.as_mut() else {
            return Err(Error::FailedPrecondition(format!(
                "{} has no open stdin",
                self.who
            )));
        };
        if let Err(e) = w.write_all(data).await {
            // The reader is gone (it closed stdin or exited).
            *stdin = None;
            return Err(Error::io(format!("write to {} stdin", self.whose), e));
        }
        Ok(())
    }

    /// Closes the process's stdin: a pipe reads EOF; a terminal just gets
    /// no more input.
    pub async fn close_stdin(&self) {
        self.stdin.lock().await.take();
    }

    /// Sets the terminal's size; without a terminal there is nothing to do
    /// (as with Docker).
    pub fn resize(&self, size: WindowSize) -> Result<(), Error> {
        match &self.pty {
            Some(p) => p
                .resize(size)
                .map_err(|e| Error::io(format!("resize {} terminal", self.whose), e)),
            None => Ok(()),
        }
    }
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

/// Where a pump puts what it reads.
pub trait Sink: Send + 'static {
    /// Whose output it is, in log messages ("the container's").
    const WHOSE: &'static str;

    /// A chunk read from `stream`.
    fn chunk(&mut self, stream: Stream, data: &[u8]) -> impl Future<Output = ()> + Send;

    /// `stream` is at its end.
    fn end(&mut self, _stream: Stream) {}
}

/// The container's output: into the log and to attached clients, never
/// waiting.
impl Sink for Arc<Output> {
    const WHOSE: &'static str = "the container's";

    fn chunk(&mut self, stream: Stream, data: &[u8]) -> impl Future<Output = ()> + Send {
        Output::chunk(self, stream, data);
        std::future::ready(())
    }

    fn end(&mut self, stream: Stream) {
        self.finish(stream);
    }
}

/// Copies one output pipe into `sink` until EOF.
pub async fn pump<S: Sink>(stream: Stream, fd: OwnedFd, mut sink: S) {
    let mut rx = match pipe::Receiver::from_owned_fd(fd) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(stream = stream.name(), error = %e, "cannot read {} output", S::WHOSE);
            return;
        }
    };
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => sink.chunk(stream, &buf[..n]).await,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(stream = stream.name(), error = %e, "reading {} output", S::WHOSE);
                break;
            }
        }
    }
    sink.end(stream);
}

/// Copies a terminal's output into `sink`, as stdout (a terminal has one
/// output stream), until its end.
pub async fn pump_pty<S: Sink>(pty: Arc<Pty>, mut sink: S) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match pty.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => sink.chunk(Stream::Stdout, &buf[..n]).await,
            Err(e) => {
                tracing::warn!(error = %e, "reading {} terminal", S::WHOSE);
                break;
            }
        }
    }
    sink.end(Stream::Stdout);
}
