//! One interactive stream to a container process (Attach or Exec): its
//! output copied to ours, local stdin forwarded, the terminal in raw mode
//! with a tty, the window size sent on every SIGWINCH, the detach keys
//! watched, and signals either forwarded to the container or ending the
//! session cleanly. Docker's `hijack.go`, over gRPC streams.

use std::io::Read as _;

use anyhow::{Context as _, Result};
use futures::stream::BoxStream;
use futures::StreamExt as _;
use rdock_proto::runtime::v1::{
    attach_input, attach_output, exec_input, exec_output, AttachInput, AttachOutput, ExecInput,
    ExecOutput, TerminalSize,
};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::escape::EscapeDetector;
use crate::term::{self, RawTerminal};

/// Size of the stdin chunks sent to the container.
const STDIN_CHUNK: usize = 32 * 1024;

/// An input message of a stream (AttachInput, ExecInput).
pub trait Input: Send + 'static {
    fn stdin(bytes: Vec<u8>) -> Self;
    fn close_stdin() -> Self;
    fn resize(size: TerminalSize) -> Self;
}

impl Input for AttachInput {
    fn stdin(bytes: Vec<u8>) -> Self {
        AttachInput {
            input: Some(attach_input::Input::Stdin(bytes)),
        }
    }
    fn close_stdin() -> Self {
        AttachInput {
            input: Some(attach_input::Input::CloseStdin(true)),
        }
    }
    fn resize(size: TerminalSize) -> Self {
        AttachInput {
            input: Some(attach_input::Input::Resize(size)),
        }
    }
}

impl Input for ExecInput {
    fn stdin(bytes: Vec<u8>) -> Self {
        ExecInput {
            input: Some(exec_input::Input::Stdin(bytes)),
        }
    }
    fn close_stdin() -> Self {
        ExecInput {
            input: Some(exec_input::Input::CloseStdin(true)),
        }
    }
    fn resize(size: TerminalSize) -> Self {
        ExecInput {
            input: Some(exec_input::Input::Resize(size)),
        }
    }
}

/// An output message of a stream, as the session sees it.
#[derive(Debug)]
pub enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
    Other,
}

impl From<AttachOutput> for Event {
    fn from(o: AttachOutput) -> Self {
        match o.output {
            Some(attach_output::Output::Stdout(b)) => Event::Stdout(b),
            Some(attach_output::Output::Stderr(b)) => Event::Stderr(b),
            Some(attach_output::Output::ExitCode(c)) => Event::Exit(c),
            None => Event::Other,
        }
    }
}

impl From<ExecOutput> for Event {
    fn from(o: ExecOutput) -> Self {
        match o.output {
            Some(exec_output::Output::Stdout(b)) => Event::Stdout(b),
            Some(exec_output::Output::Stderr(b)) => Event::Stderr(b),
            Some(exec_output::Output::ExitCode(c)) => Event::Exit(c),
            Some(exec_output::Output::Started(_)) | None => Event::Other,
        }
    }
}

pub type Output = BoxStream<'static, Result<Event, tonic::Status>>;

/// A request stream for a call, its sender, and word of when the transport
/// has taken the stream's end (so everything before it is on its way).
pub fn request<I: Send + 'static>() -> (
    mpsc::Sender<I>,
    BoxStream<'static, I>,
    oneshot::Receiver<()>,
) {
    let (tx, rx) = mpsc::channel(16);
    let (sent_tx, sent_rx) = oneshot::channel();
    let stream = futures::stream::unfold((rx, Some(sent_tx)), |(mut rx, mut sent)| async move {
        match rx.recv().await {
            Some(msg) => Some((msg, (rx, sent))),
            None => {
                if let Some(s) = sent.take() {
                    let _ = s.send(());
                }
                None
            }
        }
    })
    .boxed();
    (tx, stream, sent_rx)
}

/// An open interactive call: its output, its input, and the signal that
/// the input's end was taken (see [`request`]).
pub struct Call<I> {
    pub output: Output,
    pub input: mpsc::Sender<I>,
    pub sent: oneshot::Receiver<()>,
}

/// How long a detach waits for the typed input to leave.
const DETACH_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// How the session ended.
#[derive(Debug)]
pub enum Ended {
    /// The process exited with this code.
    Exit(i32),
    /// The stream ended without an exit code.
    Closed,
    /// The stream broke.
    Broken(tonic::Status),
    /// The user typed the detach keys: the process keeps running.
    Detached,
    /// A signal ended the session (not forwarded): its number.
    Signal(i32),
}

/// What the session does.
pub struct Options {
    /// The process has a tty: output is one stream, the terminal goes raw
    /// (when stdin is forwarded and is a terminal) and follows resizes.
    pub tty: bool,
    /// Forward local stdin (`-i`); its end closes the process's stdin.
    pub stdin: bool,
    /// The detach sequence (watched with a tty and stdin, as Docker does).
    pub detach_keys: Vec<u8>,
    /// Send the window size now and on every SIGWINCH (tty, and our stdout
    /// is a terminal).
    pub resize: bool,
}

/// The signals a session catches for its length.
pub struct Signals {
    caught: Vec<(Signal, &'static str, i32)>,
    /// Forward them (`--sig-proxy`); otherwise they end the session.
    pub forward: bool,
}

/// Forwarded as Docker's client forwards them (SIGCHLD, SIGPIPE, SIGURG
/// and SIGWINCH excepted).
const FORWARDED: [(SignalKind, &str, i32); 6] = [
    (SignalKind::interrupt(), "INT", 2),
    (SignalKind::terminate(), "TERM", 15),
    (SignalKind::hangup(), "HUP", 1),
    (SignalKind::quit(), "QUIT", 3),
    (SignalKind::user_defined1(), "USR1", 10),
    (SignalKind::user_defined2(), "USR2", 12),
];

/// Caught so that a raw terminal is restored before the CLI goes.
const ENDING: [(SignalKind, &str, i32); 3] = [
    (SignalKind::interrupt(), "INT", 2),
    (SignalKind::terminate(), "TERM", 15),
    (SignalKind::hangup(), "HUP", 1),
];

impl Signals {
    /// Catch the signals to forward to the container.
    pub fn forwarding() -> Result<Signals> {
        Signals::catch(&FORWARDED, true)
    }

    /// Catch the signals that would otherwise kill the CLI mid-session.
    pub fn ending() -> Result<Signals> {
        Signals::catch(&ENDING, false)
    }

    /// Catch nothing: signals keep their default action.
    pub fn none() -> Signals {
        Signals {
            caught: Vec::new(),
            forward: false,
        }
    }

    fn catch(kinds: &[(SignalKind, &'static str, i32)], forward: bool) -> Result<Signals> {
        let mut caught = Vec::with_capacity(kinds.len());
        for (kind, name, num) in kinds {
            let s = signal(*kind).with_context(|| format!("catch SIG{name}"))?;
            caught.push((s, *name, *num));
        }
        Ok(Signals { caught, forward })
    }

    /// The next caught signal's name and number; pending forever when none
    /// are caught.
    pub async fn next(&mut self) -> (&'static str, i32) {
        if self.caught.is_empty() {
            return std::future::pending().await;
        }
        let futures = self.caught.iter_mut().map(|(s, name, num)| {
            let (name, num) = (*name, *num);
            Box::pin(async move {
                s.recv().await;
                (name, num)
            })
        });
        futures::future::select_all(futures).await.0
    }
}

enum StdinEvent {
    Data(Vec<u8>),
    End,
}

/// Reads local stdin on a thread of its own (a blocking read cannot be
/// cancelled, and must not hold up the exit).
fn read_stdin() -> mpsc::Receiver<StdinEvent> {
    let (tx, rx) = mpsc::channel(4);
    let fallback = tx.clone();
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
                if tx
                    .blocking_send(StdinEvent::Data(buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
            let _ = tx.blocking_send(StdinEvent::End);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot read stdin");
        let _ = fallback.try_send(StdinEvent::End);
    }
    rx
}

async fn write_chunk<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<()> {
    w.write_all(bytes).await?;
    w.flush().await?;
    Ok(())
}

/// Copies until the process exits, the stream ends, the user detaches or a
/// caught signal ends the session. `on_signal` is called for each signal
/// to forward. The terminal, when made raw here, is restored before this
/// returns.
pub async fn run<I: Input>(
    call: Call<I>,
    opts: Options,
    signals: &mut Signals,
    on_signal: &(dyn Fn(&'static str) + Sync),
) -> Result<Ended> {
    let Call {
        mut output,
        input,
        sent,
    } = call;
    let mut raw = if opts.tty && opts.stdin {
        RawTerminal::stdin()?
    } else {
        None
    };
    // Docker watches for the keys whenever a tty session forwards stdin,
    // a terminal or not.
    let mut detector = EscapeDetector::new(if opts.tty && opts.stdin {
        opts.detach_keys
    } else {
        Vec::new()
    });
    let mut stdin = opts.stdin.then(read_stdin);
    let mut winch = if opts.tty && opts.resize {
        Some(signal(SignalKind::window_change()).context("catch SIGWINCH")?)
    } else {
        None
    };
    let mut last_size = None;
    if winch.is_some() {
        if let Some(size) = term::size() {
            last_size = Some(size);
            let _ = input.send(I::resize(size)).await;
        }
    }
    let mut input = Some(input);
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let ended = loop {
        tokio::select! {
            msg = output.next() => match msg {
                Some(Ok(Event::Stdout(b))) => write_chunk(&mut stdout, &b).await?,
                // With a tty the process has one stream; Docker prints
                // anything else that comes on stdout too.
                Some(Ok(Event::Stderr(b))) if opts.tty => write_chunk(&mut stdout, &b).await?,
                Some(Ok(Event::Stderr(b))) => write_chunk(&mut stderr, &b).await?,
                Some(Ok(Event::Exit(code))) => break Ended::Exit(code),
                Some(Ok(Event::Other)) => {}
                None => break Ended::Closed,
                Some(Err(status)) => break Ended::Broken(status),
            },
            ev = recv_stdin(&mut stdin) => match ev {
                StdinEvent::Data(bytes) => {
                    let scanned = detector.feed(&bytes);
                    if let Some(tx) = &input {
                        if !scanned.forward.is_empty() && tx.send(I::stdin(scanned.forward)).await.is_err() {
                            // The call is over; its output says how.
                            stdin = None;
                        }
                    }
                    if scanned.detach {
                        // End the request stream without close_stdin: the
                        // process keeps its stdin for the next attach.
                        input = None;
                        break Ended::Detached;
                    }
                }
                StdinEvent::End => {
                    stdin = None;
                    if let Some(tx) = &input {
                        let _ = tx.send(I::close_stdin()).await;
                    }
                }
            },
            (name, num) = signals.next() => {
                if signals.forward {
                    on_signal(name);
                } else {
                    break Ended::Signal(num);
                }
            }
            _ = recv_winch(&mut winch) => {
                if let (Some(size), Some(tx)) = (term::size(), &input) {
                    if last_size != Some(size) {
                        last_size = Some(size);
                        let _ = tx.send(I::resize(size)).await;
                    }
                }
            }
        }
    };
    drop(input);
    if let Some(raw) = raw.as_mut() {
        raw.restore();
    }
    if matches!(ended, Ended::Detached) {
        // What was typed before the keys must reach the process: wait for
        // the transport to take the stream's end, then give the daemon a
        // moment to close its side (the output after a detach is dropped,
        // as Docker drops it).
        let _ = tokio::time::timeout(DETACH_FLUSH, sent).await;
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            while let Some(Ok(_)) = output.next().await {}
        })
        .await;
    }
    Ok(ended)
}

async fn recv_stdin(rx: &mut Option<mpsc::Receiver<StdinEvent>>) -> StdinEvent {
    match rx {
        Some(rx) => rx.recv().await.unwrap_or(StdinEvent::End),
        None => std::future::pending().await,
    }
}

async fn recv_winch(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
