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
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::libc;
use rdock_proto::shim::v1::ExecStart;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use super::console::WindowSize;
use super::logfile::Stream;
use super::process::read_pid;
use super::reaper::{ExitWaiter, Reaper};
use super::runc::Runtime;
use super::stdio::{drain, ProcessIo, ProcessStdio, Setup, Sink};
use super::Error;

/// The longest exec id (it names files in the state dir).
pub const MAX_EXEC_ID: usize = 64;

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

/// The client's hold on a running exec: its input and its terminal, until
/// it has ended.
pub struct ExecHandle {
    pub pid: u32,
    stdio: ProcessStdio,
    ended: watch::Sender<bool>,
}

impl ExecHandle {
    /// Its stdin and terminal.
    pub fn stdio(&self) -> &ProcessStdio {
        &self.stdio
    }

    /// Resolves once the process has exited and its output is drained:
    /// nothing can be written to it any more.
    pub async fn ended(&self) {
        let mut rx = self.ended.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }
}

/// A process `runtime exec` started.
pub struct Started {
    pub handle: Arc<ExecHandle>,
    /// Its output (its input is the handle's).
    io: ProcessIo,
    exit: ExitWaiter,
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
/// process. `known` are the pids of the container's init and its other
/// exec processes; no other exec may be starting meanwhile (the caller
/// makes them one at a time), so that a process whose pid file cannot be
/// read can still be told from the others and ended.
pub async fn start(
    runtime: &Runtime,
    reaper: &Reaper,
    state_dir: &Path,
    req: &ExecRequest,
    known: &[u32],
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

    let (setup, stdio) = Setup::new(
        req.terminal(),
        req.stdin,
        state_dir,
        &format!("exec-{}.sock", req.exec_id),
    )?;
    let mark = reaper.mark();
    let since = boot_ticks();
    runtime
        .exec(
            reaper,
            &files.process,
            &files.pid,
            setup.console_path(),
            stdio,
            req.argv0(),
        )
        .await?;
    let pid = match read_pid(&files.pid) {
        Ok(pid) => pid,
        Err(e) => {
            let e = Error::io(format!("read the exec pid from {}", files.pid.display()), e);
            tracing::error!(error = %e, "the exec process started but its pid is unknown");
            end_unknown(runtime, reaper, since, known).await;
            return Err(e);
        }
    };
    let exit = reaper.watch_since(pid as i32, mark);
    drop(files);

    let mut io = match setup.finish().await {
        Ok(io) => io,
        Err(e) => {
            // The process runs on a terminal nobody holds: end it.
            kill(pid);
            return Err(Error::io("receive the exec process's terminal", e));
        }
    };
    if let (Some(pty), Some(size)) = (io.pty(), req.size) {
        if let Err(e) = pty.resize(size) {
            tracing::warn!(error = %e, "cannot size the exec process's terminal");
        }
    }
    let stdin = match io.take_input() {
        Ok(s) => s,
        Err(e) => {
            kill(pid);
            return Err(Error::io("exec stdin", e));
        }
    };
    let stdio = ProcessStdio::new(
        stdin,
        io.pty(),
        format!("exec process {pid}"),
        "the exec process's",
    );
    Ok(Started {
        handle: Arc::new(ExecHandle {
            pid,
            stdio,
            ended: watch::Sender::new(false),
        }),
        io,
        exit,
    })
}

fn kill(pid: u32) {
    // SAFETY: kill(2) takes plain integers and touches no memory.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// Ends a process that `runtime exec` started but whose pid file could not
/// be read: the one process of the container that the shim adopted (the
/// runtime, its parent, has exited), that started since `since` and is
/// none of `known`. When that is not exactly one process, none is killed
/// (it ends with the container), and the log says so.
async fn end_unknown(runtime: &Runtime, reaper: &Reaper, since: u64, known: &[u32]) {
    let pids = match runtime.ps(reaper).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the container's processes; the exec process runs on until the container stops");
            return;
        }
    };
    let shim = std::process::id();
    let found: Vec<u32> = pids
        .into_iter()
        .filter(|p| !known.contains(p))
        .filter(|p| matches!(proc_stat(*p), Some((ppid, start)) if ppid == shim && start >= since))
        .collect();
    match found.as_slice() {
        [pid] => {
            kill(*pid);
            tracing::error!(
                pid,
                "killed the exec process whose pid file could not be read"
            );
        }
        [] => tracing::error!("the exec process whose pid file could not be read is not found"),
        many => tracing::error!(
            candidates = ?many,
            "cannot tell which process is the exec process whose pid file could not be read; it runs on until the container stops"
        ),
    }
}

/// Now, in the clock ticks since boot in which `/proc/PID/stat` gives a
/// process's start time; 0 if the clock cannot be read.
fn boot_ticks() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through the pointer, which
    // is valid across the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf takes a plain integer and touches no memory.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    match (
        rc,
        u64::try_from(hz),
        u64::try_from(ts.tv_sec),
        u64::try_from(ts.tv_nsec),
    ) {
        (0, Ok(hz), Ok(s), Ok(ns)) if hz > 0 => s * hz + ns * hz / 1_000_000_000,
        _ => 0,
    }
}

/// A process's parent pid and start time (clock ticks since boot), from
/// `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold anything: fields are
    // counted after its last ")", from the third (the state) on.
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

impl Started {
    /// Sends the process's output to `tx` until it has exited and its
    /// output is drained (or the drain timed out: something it started
    /// still holds its output), then its exit code. Returns the code.
    pub async fn run(self, tx: mpsc::Sender<ExecEvent>, span: tracing::Span) -> i32 {
        let pumps = self.io.pump(
            Forward {
                tx: tx.clone(),
                gone: false,
            },
            &span,
        );
        let code = match self.exit.await {
            Ok(e) => e.code(),
            Err(_) => {
                tracing::error!("lost the exec process's exit status");
                255
            }
        };
        drain(pumps, "the exec process's").await;
        self.handle.stdio.close_stdin().await;
        // Before the exit code is sent: a client that does not read it
        // must not keep the process's input (its terminal) held.
        self.handle.ended.send_replace(true);
        let _ = tx.send(ExecEvent::Exit(code)).await;
        code
    }
}

/// Forwards what is read to the client; once the client is gone, reads on
/// and drops it.
#[derive(Clone)]
struct Forward {
    tx: mpsc::Sender<ExecEvent>,
    gone: bool,
}

impl Sink for Forward {
    const WHOSE: &'static str = "the exec process's";

    fn chunk(&mut self, stream: Stream, data: &[u8]) -> impl Future<Output = ()> + Send {
        let ev = match stream {
            Stream::Stdout => ExecEvent::Stdout(data.to_vec()),
            Stream::Stderr => ExecEvent::Stderr(data.to_vec()),
        };
        async move {
            if !self.gone && self.tx.send(ev).await.is_err() {
                tracing::debug!("exec client gone; discarding the process's output");
                self.gone = true;
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
    fn start_times_and_parents_from_proc() {
        let before = boot_ticks();
        let (ppid, start) = proc_stat(std::process::id()).unwrap();
        assert_eq!(ppid, std::os::unix::process::parent_id());
        assert!(start > 0 && start <= before, "{start} > {before}");
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let (ppid, start) = proc_stat(child.id()).unwrap();
        assert_eq!(ppid, std::process::id());
        assert!(
            start >= before,
            "a child started at {start}, before {before}"
        );
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        assert_eq!(proc_stat(u32::MAX), None);
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
