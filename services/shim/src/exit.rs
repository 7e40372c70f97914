//! Exit statuses: the wait status → exit code mapping (a shell's: the code,
//! or 128 + signal), and `exit.json`, the record a shim leaves behind so the
//! runtime daemon learns the code even when it was down at the time.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use nix::sys::wait::WaitStatus;
use serde::{Deserialize, Serialize};

/// The name of the exit record inside a shim's state dir.
pub const EXIT_FILE: &str = "exit.json";

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The end a wait status reports, `None` for stop/continue reports.
    pub fn from_wait_status(ws: WaitStatus) -> Option<Exit> {
        match ws {
            WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig as i32)),
            _ => None,
        }
    }

    /// The exit code a shell (and Docker) reports: the code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }

    /// Whether the process exited with code 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// RFC 3339 with nanoseconds, UTC (`2026-11-27T18:00:00.123456789Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    /// RFC 3339.
    pub exited_at: String,
    /// RFC 3339; empty when the container was never started.
    #[serde(default)]
    pub started_at: String,
}

impl ExitRecord {
    /// Writes `dir/exit.json` atomically and durably: temp file, fsync,
    /// rename, fsync of the directory.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!(".{EXIT_FILE}.tmp"));
        let body = serde_json::to_vec(self).map_err(io::Error::other)?;
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, dir.join(EXIT_FILE))?;
        File::open(dir)?.sync_all()
    }

    /// Reads `dir/exit.json`; `Ok(None)` when there is none (yet).
    pub fn read(dir: &Path) -> io::Result<Option<ExitRecord>> {
        match fs::read(exit_file(dir)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `dir/exit.json`.
pub fn exit_file(dir: &Path) -> PathBuf {
    dir.join(EXIT_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn status_mapping() {
        let p = Pid::from_raw(10);
        let e = |ws| Exit::from_wait_status(ws).map(Exit::code);
        assert_eq!(e(WaitStatus::Exited(p, 0)), Some(0));
        assert_eq!(e(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            e(WaitStatus::Signaled(p, Signal::SIGTERM, false)),
            Some(143)
        );
        assert_eq!(e(WaitStatus::Signaled(p, Signal::SIGKILL, true)), Some(137));
        assert_eq!(e(WaitStatus::Stopped(p, Signal::SIGSTOP)), None);
        assert_eq!(e(WaitStatus::StillAlive), None);
        assert!(Exit::Code(0).success());
        assert!(!Exit::Signal(9).success());
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9");
    }

    #[test]
    fn record_round_trip() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(ExitRecord::read(d.path()).unwrap(), None);
        let t = DateTime::from_timestamp(1_795_802_400, 123_456_789).unwrap();
        assert_eq!(rfc3339(t), "2026-11-27T18:00:00.123456789Z");
        let r = ExitRecord {
            exit_code: 143,
            exited_at: rfc3339(t),
            started_at: String::new(),
        };
        r.write(d.path()).unwrap();
        assert_eq!(ExitRecord::read(d.path()).unwrap(), Some(r));
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(EXIT_FILE)]);
    }
}
