//! Starting a shim, from the runtime daemon: spawn `rdock-shim`, read its one
//! report line, and leave it running on its own.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::handshake::{Handshake, LaunchErrorKind};
use super::options::LaunchOptions;
use super::process::SHIM_LOG;

/// How long a shim may take to create its container and report.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest report line read.
const REPORT_MAX: u64 = 64 * 1024;

/// A shim that created its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    pub shim_pid: u32,
    /// The container's init (created, not started).
    pub init_pid: u32,
}

/// Why no container was created. Nothing is left behind: the shim removed
/// the runtime's state and exited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LaunchError {
    pub kind: LaunchErrorKind,
    pub message: String,
}

impl LaunchError {
    fn other(message: String) -> LaunchError {
        LaunchError {
            kind: LaunchErrorKind::Other,
            message,
        }
    }

    /// Docker's exit code: 127 not found, 126 cannot invoke, 125 other.
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
}

/// Starts a shim for `opts` and waits (up to [`REPORT_TIMEOUT`]) until it
/// has created the container. The shim then runs in its own session; a
/// detached task reaps it when it exits, so it never lingers as a zombie of
/// the daemon (after a daemon restart, init reaps it).
#[tracing::instrument(skip_all, fields(container = %opts.id))]
pub async fn launch(opts: &LaunchOptions) -> Result<Launched, LaunchError> {
    let mut cmd = Command::new(&opts.shim_bin);
    cmd.args(opts.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    let mut child = cmd
        .spawn()
        .map_err(|e| LaunchError::other(format!("start shim {}: {e}", opts.shim_bin.display())))?;
    let shim_pid = child.id().unwrap_or(0);
    let Some(stdout) = child.stdout.take() else {
        abandon(opts, child).await;
        return Err(LaunchError::other("shim stdout not captured".into()));
    };
    let mut line = String::new();
    let mut reader = BufReader::new(stdout.take(REPORT_MAX));
    let read = tokio::time::timeout(REPORT_TIMEOUT, reader.read_line(&mut line)).await;
    drop(reader);
    let shim_log = opts.state_dir.join(SHIM_LOG);
    match read {
        Ok(Ok(n)) if n > 0 => match Handshake::parse(&line) {
            Ok(Handshake::Created { pid }) => {
                tracing::debug!(shim_pid, init_pid = pid, "shim created the container");
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
                Ok(Launched {
                    shim_pid,
                    init_pid: pid,
                })
            }
            Ok(Handshake::Failed { error, kind }) => {
                // The shim cleans up and exits; wait for that so nothing is
                // left when the caller hears of the failure.
                if tokio::time::timeout(REPORT_TIMEOUT, child.wait())
                    .await
                    .is_err()
                {
                    abandon(opts, child).await;
                }
                Err(LaunchError {
                    kind,
                    message: error,
                })
            }
            Err(e) => {
                abandon(opts, child).await;
                Err(LaunchError::other(format!(
                    "shim reported nonsense ({e}): {:?}",
                    line.trim()
                )))
            }
        },
        Ok(Ok(_)) => {
            let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            let how = match status {
                Ok(Ok(s)) => s.to_string(),
                _ => {
                    abandon(opts, child).await;
                    "no report".into()
                }
            };
            Err(LaunchError::other(format!(
                "shim exited ({how}) before reporting; see {}",
                shim_log.display()
            )))
        }
        Ok(Err(e)) => {
            abandon(opts, child).await;
            Err(LaunchError::other(format!("read the shim's report: {e}")))
        }
        Err(_) => {
            abandon(opts, child).await;
            Err(LaunchError::other(format!(
                "shim did not report within {REPORT_TIMEOUT:?}; see {}",
                shim_log.display()
            )))
        }
    }
}

/// Kills a shim that misbehaved and removes what it may have created.
async fn abandon(opts: &LaunchOptions, mut child: Child) {
    let _ = child.kill().await;
    let _ = Command::new(&opts.runtime)
        .arg("--root")
        .arg(&opts.runtime_root)
        .args(["delete", "--force", &opts.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    let _ = std::fs::remove_file(&opts.socket);
}
