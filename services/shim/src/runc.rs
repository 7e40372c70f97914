//! The OCI runtime's command line (`runc`, or anything that speaks it, such
//! as `crun`): every call logs JSON to `STATE/runc.log`, from which a failure
//! is explained, as containerd's go-runc does (`getLastRuntimeError`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::io::AsyncReadExt;

use super::handshake::LaunchErrorKind;
use super::reaper::{ExitWaiter, Reaper};
use super::Error;

/// One container under one OCI runtime.
#[derive(Debug, Clone)]
pub struct Runtime {
    binary: String,
    root: PathBuf,
    log: PathBuf,
    id: String,
}

impl Runtime {
    /// `binary --root ROOT --log LOG --log-format json … ID`.
    pub fn new(binary: &str, root: &Path, log: &Path, id: &str) -> Runtime {
        Runtime {
            binary: binary.to_string(),
            root: root.to_path_buf(),
            log: log.to_path_buf(),
            id: id.to_string(),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Where the runtime's log ends now: errors of the next call come after.
    fn log_mark(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// Spawns `create --bundle BUNDLE --pid-file PID_FILE
    /// [--console-socket SOCKET] ID` with the given stdio (the container's;
    /// unused with a console socket). The `Command`, and with it the shim's
    /// copies of the container's pipe ends, is dropped before this returns.
    pub fn spawn_create(
        &self,
        reaper: &Reaper,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: [Stdio; 3],
    ) -> Result<(u64, ExitWaiter), Error> {
        let mark = self.log_mark();
        let [stdin, stdout, stderr] = stdio;
        let mut c = self.command();
        c.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(&self.id).stdin(stdin).stdout(stdout).stderr(stderr);
        let (_, waiter) = reaper
            .spawn(&mut c)
            .map_err(|e| self.spawn_error("create", e))?;
        Ok((mark, waiter))
    }

    /// Runs `exec --process PROCESS --detach --pid-file PID_FILE
    /// [--console-socket SOCKET] ID` with the given stdio (the process's,
    /// without a terminal) and waits for it: the process runs on, adopted by
    /// the shim. On failure the error is classified as [`exec_error`] does.
    pub async fn exec(
        &self,
        reaper: &Reaper,
        process: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: [Stdio; 3],
        argv0: &str,
    ) -> Result<(), Error> {
        let mark = self.log_mark();
        let [stdin, stdout, stderr] = stdio;
        let mut c = self.command();
        c.arg("exec")
            .arg("--process")
            .arg(process)
            .arg("--detach")
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg(&self.id).stdin(stdin).stdout(stdout).stderr(stderr);
        let exit = reaper
            .run(&mut c)
            .await
            .map_err(|e| self.spawn_error("exec", e))?;
        if exit.success() {
            return Ok(());
        }
        Err(match last_error(&self.log, mark) {
            Some(message) => exec_error(&self.id, &message, argv0),
            None => self.failure("exec", mark, &exit.to_string()),
        })
    }

    /// `ps --format json ID`: the pids of the container's processes.
    pub async fn ps(&self, reaper: &Reaper) -> Result<Vec<u32>, Error> {
        let mark = self.log_mark();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| self.spawn_error("ps", e.into()))?;
        let mut c = self.command();
        c.args(["ps", "--format", "json", &self.id])
            .stdout(Stdio::from(w));
        let spawned = reaper.spawn(&mut c);
        // With it the shim's copy of the write end: EOF once the runtime
        // has exited.
        drop(c);
        let (_, waiter) = spawned.map_err(|e| self.spawn_error("ps", e))?;
        let mut out = Vec::new();
        let read = match tokio::net::unix::pipe::Receiver::from_owned_fd(r) {
            Ok(mut rx) => rx.read_to_end(&mut out).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let exit = waiter
            .await
            .map_err(|_| self.spawn_error("ps", io::Error::other("the reaper stopped")))?;
        if !exit.success() {
            return Err(self.failure("ps", mark, &exit.to_string()));
        }
        read.map_err(|e| Error::io(format!("read the output of {} ps", self.binary), e))?;
        serde_json::from_slice(&out).map_err(|e| Error::Runtime {
            op: format!("{} ps", self.binary),
            message: format!("unreadable list of processes: {e}"),
        })
    }

    /// `pause ID`: freezes every process of the container.
    pub async fn pause(&self, reaper: &Reaper) -> Result<(), Error> {
        self.run(reaper, "pause", &[]).await
    }

    /// `resume ID`: thaws them.
    pub async fn resume(&self, reaper: &Reaper) -> Result<(), Error> {
        self.run(reaper, "resume", &[]).await
    }

    /// `start ID`.
    pub async fn start(&self, reaper: &Reaper) -> Result<(), Error> {
        self.run(reaper, "start", &[]).await
    }

    /// `kill [--all] ID SIGNAL`.
    pub async fn kill(&self, reaper: &Reaper, signal: i32, all: bool) -> Result<(), Error> {
        let sig = signal.to_string();
        if all {
            self.run(reaper, "kill", &["--all", &self.id, &sig]).await
        } else {
            self.run(reaper, "kill", &[&self.id, &sig]).await
        }
    }

    /// `delete --force ID`: kills what is left, removes the runtime's state
    /// and the container's cgroup.
    pub async fn delete(&self, reaper: &Reaper) -> Result<(), Error> {
        self.run(reaper, "delete", &["--force", &self.id]).await
    }

    async fn run(&self, reaper: &Reaper, op: &str, args: &[&str]) -> Result<(), Error> {
        let mark = self.log_mark();
        let mut c = self.command();
        c.arg(op);
        if args.is_empty() {
            c.arg(&self.id);
        } else {
            c.args(args);
        }
        let exit = reaper
            .run(&mut c)
            .await
            .map_err(|e| self.spawn_error(op, e))?;
        if exit.success() {
            Ok(())
        } else {
            Err(self.failure(op, mark, &exit.to_string()))
        }
    }

    fn spawn_error(&self, op: &str, e: io::Error) -> Error {
        Error::Runtime {
            op: format!("{} {op}", self.binary),
            message: e.to_string(),
        }
    }

    /// The error of a failed call: the runtime's last logged error since
    /// `mark`, else `fallback` (its exit status).
    pub fn failure(&self, op: &str, mark: u64, fallback: &str) -> Error {
        let message = last_error(&self.log, mark).unwrap_or_else(|| fallback.to_string());
        // runc says "runc create failed: …"; the op already says that much.
        let name = Path::new(&self.binary)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let message = match message.strip_prefix(&format!("{name} {op} failed: ")) {
            Some(rest) => rest.to_string(),
            None => message,
        };
        Error::Runtime {
            op: format!("{} {op}", self.binary),
            message,
        }
    }
}

/// The message of the last `"level":"error"` (or fatal) line of a runtime's
/// JSON log, from byte `from` on.
pub fn last_error(log: &Path, from: u64) -> Option<String> {
    let mut f = File::open(log).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut last = None;
    for line in BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if matches!(v["level"].as_str(), Some("error" | "fatal")) {
            if let Some(msg) = v["msg"].as_str() {
                last = Some(msg.trim().to_string());
            }
        }
    }
    last
}

/// What kind of failure a runtime's create error is, as Docker decides it.
pub fn classify(message: &str) -> LaunchErrorKind {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        LaunchErrorKind::NotFound
    } else if m.contains("permission denied") {
        LaunchErrorKind::Permission
    } else {
        LaunchErrorKind::Other
    }
}

/// A failed `runtime exec`, as Docker reports it: a missing command is
/// [`Error::NotFound`] (Docker's 127), one that cannot be run
/// [`Error::PermissionDenied`] (126), a container that is not running
/// [`Error::FailedPrecondition`]; the message is the runtime's own reason
/// (`exec: "nosuch": executable file not found in $PATH`), without the
/// runtime's wrapping.
pub fn exec_error(id: &str, message: &str, argv0: &str) -> Error {
    let mut m = message.trim();
    for prefix in ["exec failed: ", "unable to start container process: "] {
        if let Some(rest) = m.strip_prefix(prefix) {
            m = rest;
        }
    }
    let lower = m.to_ascii_lowercase();
    // As Docker decides it (`translateContainerdStartErr`): "not found" only
    // when the message is about the command itself, not e.g. the cwd.
    let names_command = !argv0.is_empty() && m.contains(&format!("\"{argv0}\""));
    if names_command
        && (lower.contains("executable file not found")
            || lower.contains("no such file or directory"))
    {
        Error::NotFound(m.to_string())
    } else if lower.contains("permission denied") {
        Error::PermissionDenied(m.to_string())
    } else if lower.contains("paused container") {
        Error::FailedPrecondition(format!(
            "container {id} is paused, unpause the container before exec"
        ))
    } else if lower.contains("stopped container")
        || lower.contains("does not exist")
        || lower.contains("not running")
    {
        Error::FailedPrecondition(format!("container {id} is not running"))
    } else {
        Error::Runtime {
            op: "exec".into(),
            message: m.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn last_error_from_json_log() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runc.log");
        let mut f = File::create(&p).unwrap();
        writeln!(f, r#"{{"level":"error","msg":"old failure","time":"t"}}"#).unwrap();
        let mark = f.metadata().unwrap().len();
        writeln!(f, r#"{{"level":"warning","msg":"a warning","time":"t"}}"#).unwrap();
        writeln!(f, "not json").unwrap();
        writeln!(
            f,
            r#"{{"level":"error","msg":"runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH","time":"t"}}"#
        )
        .unwrap();
        writeln!(f, r#"{{"level":"info","msg":"bye","time":"t"}}"#).unwrap();
        let e = last_error(&p, mark).unwrap();
        assert_eq!(
            e,
            "runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(classify(&e), LaunchErrorKind::NotFound);
        assert_eq!(last_error(&p, 0).as_deref(), Some(e.as_str()));
        let end = f.metadata().unwrap().len();
        assert_eq!(last_error(&p, end), None);
        assert_eq!(last_error(&d.path().join("missing"), 0), None);

        let rt = Runtime::new("/usr/sbin/runc", d.path(), &p, "c");
        assert_eq!(
            rt.failure("create", mark, "exit status 1").to_string(),
            "/usr/sbin/runc create: unable to start container process: exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(
            rt.failure("start", end, "exit status 1").to_string(),
            "/usr/sbin/runc start: exit status 1"
        );
    }

    #[test]
    fn exec_failures_in_dockers_words() {
        let e = exec_error(
            "c",
            "exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH",
            "nosuch",
        );
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        let e = exec_error(
            "c",
            "exec failed: unable to start container process: exec: \"/bin/x\": stat /bin/x: no such file or directory",
            "/bin/x",
        );
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        let e = exec_error(
            "c",
            "exec failed: unable to start container process: exec: \"/etc\": permission denied",
            "/etc",
        );
        assert!(matches!(e, Error::PermissionDenied(_)), "{e:?}");
        assert_eq!(e.to_string(), "exec: \"/etc\": permission denied");
        // A missing cwd is not a missing command.
        let e = exec_error(
            "c",
            "exec failed: unable to start container process: chdir to cwd (\"/nope\") set in config.json failed: no such file or directory",
            "true",
        );
        assert!(matches!(e, Error::Runtime { .. }), "{e:?}");
        let e = exec_error(
            "c",
            "exec failed: cannot exec in a paused container (use --ignore-paused to override)",
            "true",
        );
        assert_eq!(
            e.to_string(),
            "container c is paused, unpause the container before exec"
        );
        let e = exec_error(
            "c",
            "exec failed: cannot exec in a stopped container",
            "true",
        );
        assert!(matches!(e, Error::FailedPrecondition(_)), "{e:?}");
        assert_eq!(e.to_string(), "container c is not running");
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify("exec: \"/etc\": permission denied"),
            LaunchErrorKind::Permission
        );
        assert_eq!(
            classify("exec /bin/x: no such file or directory"),
            LaunchErrorKind::NotFound
        );
        assert_eq!(
            classify("executable file `x` not found in $PATH: No such file or directory"),
            LaunchErrorKind::NotFound
        );
        assert_eq!(
            classify("cgroup: cannot set memory limit"),
            LaunchErrorKind::Other
        );
    }
}
