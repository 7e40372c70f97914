//! Running processes with timeouts, and finding the ones a test left behind.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What a finished command printed, and its exit code (128 + signal when a
/// signal ended it).
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    /// Fails the test unless the command succeeded; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "command failed:\n{self}");
        &self.stdout
    }

    /// Fails the test unless the command failed with exit code 1 and exactly
    /// one line on stderr starting `rdockctl: `; returns that line.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        assert_eq!(self.code, 1, "expected exit code 1:\n{self}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr:\n{self}"
        );
        assert!(
            lines[0].starts_with("rdockctl: "),
            "the error line must start with `rdockctl: `:\n{self}"
        );
        lines[0]
    }
}

/// Exit code of a status, 128 + signal for a signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Makes the child get SIGKILL when the thread that spawned it ends, so a
/// test process that dies abruptly does not leave daemons behind.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        })
    }
}

/// Copies everything `r` yields into `buf` until end of file.
fn collect_into(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    })
}

fn text_of(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// A started command whose stdout and stderr are being collected.
pub struct Running {
    pub child: Child,
    what: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Starts `cmd` with stdin closed and stdout/stderr captured.
    pub fn start(cmd: &mut Command) -> Running {
        let what = format!("{cmd:?}");
        let mut child = die_with_parent(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect_into(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect_into(err, stderr.clone()));
        }
        Running {
            child,
            what,
            stdout,
            stderr,
            readers,
        }
    }

    /// What the command printed on stdout so far (it may still be running).
    pub fn stdout_so_far(&self) -> String {
        text_of(&self.stdout)
    }

    /// Whether the command has not finished yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout`; kills the process and fails the test when it
    /// runs longer.
    #[track_caller]
    pub fn wait(self, timeout: Duration) -> Output {
        let what = self.what.clone();
        match self.wait_within(timeout) {
            Ok(out) => out,
            Err(out) => panic!("{what} did not finish within {timeout:?}:\n{out}"),
        }
    }

    /// Waits up to `timeout`; when the command runs longer, kills it and
    /// returns what it printed as the error instead of failing the test.
    pub fn wait_within(mut self, timeout: Duration) -> Result<Output, Output> {
        match wait_timeout(&mut self.child, timeout) {
            Some(status) => Ok(self.collect(exit_code(status))),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(self.collect(-1))
            }
        }
    }

    fn collect(&mut self, code: i32) -> Output {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Output {
            code,
            stdout: text_of(&self.stdout),
            stderr: text_of(&self.stderr),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion within `timeout`.
#[track_caller]
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    Running::start(cmd).wait(timeout)
}

/// Like [`run`], but a command that runs longer than `timeout` is killed
/// and returned as the error instead of failing the test (for teardown).
pub fn run_within(cmd: &mut Command, timeout: Duration) -> Result<Output, Output> {
    Running::start(cmd).wait_within(timeout)
}

/// Waits for `child` up to `timeout`; `None` when it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return None,
            Err(e) => panic!("wait for pid {}: {e}", child.id()),
        }
    }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL. Returns the exit status
/// and whether SIGTERM was enough.
pub fn terminate(child: &mut Child, grace: Duration) -> (ExitStatus, bool) {
    if let Ok(Some(status)) = child.try_wait() {
        return (status, true);
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    if let Some(status) = wait_timeout(child, grace) {
        return (status, true);
    }
    let _ = child.kill();
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("wait for pid {pid}: {e}"));
    (status, false)
}

fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: i32) -> bool {
    matches!(stat_fields(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// All live descendants of `pid`.
pub fn descendants(pid: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, stat_fields(p)?.1)))
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found.retain(|p| alive(*p));
    found
}

/// The one-letter state of `pid` (`R`, `S`, `Z`, ...), `None` when gone.
pub fn state(pid: i32) -> Option<char> {
    stat_fields(pid).map(|(state, _)| state)
}

/// Every descendant of `pid`, zombies included, with its state.
pub fn descendants_with_state(pid: i32) -> Vec<(i32, char)> {
    let procs: Vec<(i32, char, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| {
            let (state, ppid) = stat_fields(p)?;
            Some((p, state, ppid))
        })
        .collect();
    let mut found: Vec<(i32, char)> = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for (p, state, _) in procs.iter().filter(|(_, _, pp)| *pp == parent) {
            found.push((*p, *state));
            parents.push(*p);
        }
    }
    found
}

/// Live processes (other than this one) whose command line mentions `text`,
/// with their command lines.
pub fn processes_mentioning(text: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|p| *p != me && alive(*p))
        .filter_map(|p| {
            let raw = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmdline
                .contains(text)
                .then(|| (p, cmdline.trim_end().to_string()))
        })
        .collect()
}

/// The command line of `pid`, for reports.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim_end()
                .to_string()
        })
        .unwrap_or_else(|_| format!("pid {pid}"))
}

/// SIGKILLs `pid`, ignoring a process that is already gone.
pub fn kill_hard(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}
