//! A second process in the running container (`runtime exec`), run the way
//! containerd's runc shim runs one (`pkg/process/exec.go`): the process spec
//! goes to a file in the state dir, `runtime exec --detach --pid-file`
//! starts the process and exits, and the process, orphaned, is adopted by
//! the shim (the child subreaper), whose one reaper hands its exit to the
//! exec's waiter by pid.
//!
//! Without a terminal the process gets pipes; with one (`process.terminal`)
//! the runtime hands over the pty master on a console socket, as for the
//! container itself. Output goes to the exec's client only (not to the
//! container log, as with Docker); a client that goes away leaves the
//! process running, and its output is then read and dropped so it never
//! blocks on a full pipe.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use rdock_proto::shim::v1::ExecStart;
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::console::{ConsoleSocket, Pty, WindowSize};
use super::container::DRAIN_TIMEOUT;
use super::process::read_pid;
use super::reaper::{ExitWaiter, Reaper};
use super::runc::Runtime;
use super::stdio::{pipes, Input, ShimEnds};
use super::Error;

/// The longest exec id (it names files in the state dir).
pub const MAX_EXEC_ID: usize = 64;
/// One read of the process's output.
const READ_BUF: usize = 16 * 1024;

/// What a client asks to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRequest {
    pub exec_id: String,
    /// The OCI `process` object.
    process: Map<String, Value>,
    /// Keep the process's stdin open for the client.
    pub stdin: bool,
    /// Initial terminal size.
    pub size: Option<WindowSize>,
}

impl ExecRequest {
    /// Checks an `ExecStart`: a usable id, a JSON object with `args`.
    pub fn parse(start: ExecStart) -> Result<ExecRequest, Error> {
        let id = &start.exec_id;
        let id_ok = !id.is_empty()
            && id.len() <= MAX_EXEC_ID
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(Error::InvalidArgument(format!("invalid exec id {id:?}")));
        }
        let process = match serde_json::from_str::<Value>(&start.process_json) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(Error::InvalidArgument(
                    "exec: the process spec is not a JSON object".into(),
                ))
            }
            Err(e) => {
                return Err(Error::InvalidArgument(format!(
                    "exec: invalid process spec: {e}"
                )))
            }
        };
        let args_ok = matches!(process.get("args"), Some(Value::Array(a))
            if !a.is_empty() && a.iter().all(Value::is_string));
        if !args_ok {
            return Err(Error::InvalidArgument(
                "exec: process.args must be a non-empty list of strings".into(),
            ));
        }
        if !matches!(process.get("terminal"), None | Some(Value::Bool(_))) {
            return Err(Error::InvalidArgument(
                "exec: process.terminal must be true or false".into(),
            ));
        }
        let size = start
            .size
            .as_ref()
            .map(WindowSize::from_proto)
            .transpose()?;
        Ok(ExecRequest {
            exec_id: start.exec_id,
            process,
            stdin: start.stdin,
            size,
        })
    }

    /// Whether the process runs on a terminal.
    pub fn terminal(&self) -> bool {
        matches!(self.process.get("terminal"), Some(Value::Bool(true)))
    }

    /// The command.
    pub fn argv0(&self) -> &str {
        self.process
            .get("args")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The spec handed to the runtime: with a terminal and a size, the size
    /// as `consoleSize`, so the process starts with it (a resize after the
    /// start could come after the process asked).
    pub fn process_json(&self) -> Vec<u8> {
        let mut p = self.process.clone();
        if let (true, Some(s)) = (self.terminal(), self.size) {
            if s.width > 0 && s.height > 0 {
                p.entry("consoleSize")
                    .or_insert_with(|| serde_json::json!({ "height": s.height, "width": s.width }));
            }
        }
        serde_json::to_vec(&Value::Object(p)).unwrap_or_default()
    }
}

/// What the exec's client is sent after the pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process exited and its output is drained; nothing follows.
    Exit(i32),
}

/// The client's hold on a running exec: its input and its terminal.
pub struct ExecHandle {
    pub pid: u32,
    stdin: Mutex<Option<Input>>,
    pty: Option<Arc<Pty>>,
}

impl ExecHandle {
    /// Writes to the process's stdin.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<(), Error> {
        let mut stdin = self.stdin.lock().await;
        let Some(w) = stdin.as_mut() else {
            return Err(Error::FailedPrecondition(format!(
                "exec process {} has no open stdin",
                self.pid
            )));
        };
        if let Err(e) = w.write_all(data).await {
            *stdin = None;
            return Err(Error::io("write to the exec process's stdin", e));
        }
        Ok(())
    }

    /// Closes the process's stdin (a pipe reads EOF; a terminal just gets
    /// no more input).
    pub async fn close_stdin(&self) {
        self.stdin.lock().await.take();
    }

    /// Sets the terminal size; without a terminal there is nothing to do
    /// (as with Docker).
    pub fn resize(&self, size: WindowSize) -> Result<(), Error> {
        match &self.pty {
            Some(p) => p
                .resize(size)
                .map_err(|e| Error::io("resize the exec process's terminal", e)),
            None => Ok(()),
        }
    }
}

enum Output {
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
    Pty(Arc<Pty>),
}

/// A process `runtime exec` started.
pub struct Started {
    pub handle: Arc<ExecHandle>,
    output: Output,
    exit: ExitWaiter,
}

/// The shim's side of the process's stdio while it starts.
enum Ours {
    Console(ConsoleSocket),
    Pipes(ShimEnds),
}

/// The exec's files in the state dir; removed on drop.
struct Files {
    process: PathBuf,
    pid: PathBuf,
}

impl Files {
    fn new(dir: &Path, exec_id: &str) -> Files {
        Files {
            process: dir.join(format!("exec-{exec_id}.json")),
            pid: dir.join(format!("exec-{exec_id}.pid")),
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.process);
        let _ = fs::remove_file(&self.pid);
    }
}

/// Starts the process. Nothing is left behind on failure: no file, no
/// process.
pub async fn start(
    runtime: &Runtime,
    reaper: &Reaper,
    state_dir: &Path,
    req: &ExecRequest,
) -> Result<Started, Error> {
    let files = Files::new(state_dir, &req.exec_id);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&files.process)
        .map_err(|e| Error::io(format!("create {}", files.process.display()), e))?;
    f.write_all(&req.process_json())
        .map_err(|e| Error::io(format!("write {}", files.process.display()), e))?;
    drop(f);

    let (ours, stdio) = if req.terminal() {
        let sock = ConsoleSocket::bind(state_dir, &format!("exec-{}.sock", req.exec_id))
            .map_err(|e| Error::io("create the console socket", e))?;
        (
            Ours::Console(sock),
            [Stdio::null(), Stdio::null(), Stdio::null()],
        )
    } else {
        let (container_ends, shim_ends) =
            pipes(req.stdin).map_err(|e| Error::io("create stdio pipes", e))?;
        (Ours::Pipes(shim_ends), container_ends.into_stdio())
    };
    let console = match &ours {
        Ours::Console(s) => Some(s.connect_path()),
        Ours::Pipes(_) => None,
    };
    let mark = reaper.mark();
    runtime
        .exec(
            reaper,
            &files.process,
            &files.pid,
            console,
            stdio,
            req.argv0(),
        )
        .await?;
    let pid = read_pid(&files.pid)
        .map_err(|e| Error::io(format!("read the exec pid from {}", files.pid.display()), e))?;
    let exit = reaper.watch_since(pid as i32, mark);
    drop(files);

    let (stdin, output, pty) = match ours {
        Ours::Console(sock) => {
            let pty = match sock.receive().await.and_then(Pty::new) {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    // The process runs on a terminal nobody holds: end it.
                    kill(pid);
                    return Err(Error::io("receive the exec process's terminal", e));
                }
            };
            if let Some(size) = req.size {
                if let Err(e) = pty.resize(size) {
                    tracing::warn!(error = %e, "cannot size the exec process's terminal");
                }
            }
            let stdin = req.stdin.then(|| Input::Pty(pty.clone()));
            (stdin, Output::Pty(pty.clone()), Some(pty))
        }
        Ours::Pipes(ends) => {
            let stdin = match ends.stdin.map(Input::pipe).transpose() {
                Ok(s) => s,
                Err(e) => {
                    kill(pid);
                    return Err(Error::io("exec stdin", e));
                }
            };
            let output = Output::Pipes {
                stdout: ends.stdout,
                stderr: ends.stderr,
            };
            (stdin, output, None)
        }
    };
    Ok(Started {
        handle: Arc::new(ExecHandle {
            pid,
            stdin: Mutex::new(stdin),
            pty,
        }),
        output,
        exit,
    })
}

fn kill(pid: u32) {
    // SAFETY: kill(2) takes plain integers and touches no memory.
    unsafe { nix::libc::kill(pid as i32, nix::libc::SIGKILL) };
}

impl Started {
    /// Sends the process's output to `tx` until it has exited and its
    /// output is drained (or [`DRAIN_TIMEOUT`] passed: something it started
    /// still holds its output), then its exit code. Returns the code.
    pub async fn run(self, tx: mpsc::Sender<ExecEvent>, span: tracing::Span) -> i32 {
        let pumps: Vec<JoinHandle<()>> = match self.output {
            Output::Pipes { stdout, stderr } => vec![
                tokio::spawn(
                    pump_pipe(stdout, ExecEvent::Stdout, tx.clone()).instrument(span.clone()),
                ),
                tokio::spawn(
                    pump_pipe(stderr, ExecEvent::Stderr, tx.clone()).instrument(span.clone()),
                ),
            ],
            Output::Pty(p) => vec![tokio::spawn(
                pump_pty(p, tx.clone()).instrument(span.clone()),
            )],
        };
        let code = match self.exit.await {
            Ok(e) => e.code(),
            Err(_) => {
                tracing::error!("lost the exec process's exit status");
                255
            }
        };
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        for mut p in pumps {
            if tokio::time::timeout_at(deadline, &mut p).await.is_err() {
                p.abort();
                tracing::warn!(
                    "exec output still open {DRAIN_TIMEOUT:?} after the process exited; stopped reading it"
                );
            }
        }
        self.handle.close_stdin().await;
        let _ = tx.send(ExecEvent::Exit(code)).await;
        code
    }
}

/// Forwards what is read to the client; once the client is gone, reads on
/// and drops it.
struct Forward {
    tx: mpsc::Sender<ExecEvent>,
    gone: bool,
}

impl Forward {
    async fn send(&mut self, ev: ExecEvent) {
        if !self.gone && self.tx.send(ev).await.is_err() {
            tracing::debug!("exec client gone; discarding the process's output");
            self.gone = true;
        }
    }
}

async fn pump_pipe(fd: OwnedFd, wrap: fn(Vec<u8>) -> ExecEvent, tx: mpsc::Sender<ExecEvent>) {
    let mut rx = match pipe::Receiver::from_owned_fd(fd) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the exec process's output");
            return;
        }
    };
    let mut out = Forward { tx, gone: false };
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => out.send(wrap(buf[..n].to_vec())).await,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading the exec process's output");
                break;
            }
        }
    }
}

async fn pump_pty(pty: Arc<Pty>, tx: mpsc::Sender<ExecEvent>) {
    let mut out = Forward { tx, gone: false };
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match pty.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => out.send(ExecEvent::Stdout(buf[..n].to_vec())).await,
            Err(e) => {
                tracing::warn!(error = %e, "reading the exec process's terminal");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn start(id: &str, json: &str) -> ExecStart {
        ExecStart {
            exec_id: id.into(),
            process_json: json.into(),
            stdin: false,
            size: None,
        }
    }

    #[test]
    fn requests_are_checked() {
        let ok = r#"{"args":["sh","-c","true"],"cwd":"/","terminal":false}"#;
        let r = ExecRequest::parse(start("e1", ok)).unwrap();
        assert_eq!(r.argv0(), "sh");
        assert!(!r.terminal());
        for bad_id in ["", "../x", "a/b", ".hidden", &"x".repeat(MAX_EXEC_ID + 1)] {
            let e = ExecRequest::parse(start(bad_id, ok)).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad_id}: {e}");
        }
        for bad in [
            "not json",
            "[1]",
            r#"{"args":[]}"#,
            r#"{"args":"sh"}"#,
            r#"{"args":[1]}"#,
            r#"{"cwd":"/"}"#,
            r#"{"args":["sh"],"terminal":"yes"}"#,
        ] {
            let e = ExecRequest::parse(start("e", bad)).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        }
        let mut s = start("e", ok);
        s.size = Some(rdock_proto::shim::v1::WindowSize {
            width: 1 << 20,
            height: 1,
        });
        assert!(ExecRequest::parse(s).is_err());
    }

    #[test]
    fn a_terminal_starts_with_the_initial_size() {
        let mut s = start("e", r#"{"args":["sh"],"terminal":true}"#);
        s.size = Some(rdock_proto::shim::v1::WindowSize {
            width: 100,
            height: 30,
        });
        let r = ExecRequest::parse(s.clone()).unwrap();
        let v: Value = serde_json::from_slice(&r.process_json()).unwrap();
        assert_eq!(
            v["consoleSize"],
            serde_json::json!({"height": 30, "width": 100})
        );
        assert_eq!(v["args"], serde_json::json!(["sh"]));
        // Not without a terminal, and a size the caller set wins.
        s.process_json = r#"{"args":["sh"],"terminal":false}"#.into();
        let v: Value =
            serde_json::from_slice(&ExecRequest::parse(s.clone()).unwrap().process_json()).unwrap();
        assert!(v.get("consoleSize").is_none());
        s.process_json =
            r#"{"args":["sh"],"terminal":true,"consoleSize":{"height":1,"width":2}}"#.into();
        let v: Value =
            serde_json::from_slice(&ExecRequest::parse(s).unwrap().process_json()).unwrap();
        assert_eq!(
            v["consoleSize"],
            serde_json::json!({"height": 1, "width": 2})
        );
    }
}
