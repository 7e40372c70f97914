//! The one container a shim runs: its lifecycle (created → running ⇄
//! paused → exited), the handling of its exit, and the operations the gRPC
//! adapter (`server.rs`) exposes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::console::WindowSize;
use super::exec::{ExecEvent, ExecHandle, ExecRequest};
use super::exit::{rfc3339, ExitRecord};
use super::logfile::Stream;
use super::reaper::{ExitWaiter, Reaper};
use super::runc::Runtime;
use super::stdio::{drain, Event, Output, ProcessStdio};
use super::Error;

/// How long an exited shim waits for `Shutdown` before it leaves anyway.
pub const LINGER: Duration = Duration::from_secs(30);
/// Output chunks queued for an exec's client before its process waits.
const EXEC_EVENTS: usize = 32;

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    /// Every process frozen (`runtime pause`).
    Paused,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

/// How and when the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited {
    pub code: i32,
    pub at: DateTime<Utc>,
}

/// A snapshot for `State`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub pid: u32,
    pub status: Status,
    pub started_at: Option<DateTime<Utc>>,
    pub exited: Option<Exited>,
}

struct State {
    status: Status,
    /// A `Start` is running the runtime's start.
    starting: bool,
    started_at: Option<DateTime<Utc>>,
    exited: Option<Exited>,
}

/// One container and everything the shim holds for it.
pub struct Container {
    id: String,
    init_pid: u32,
    state_dir: PathBuf,
    runtime: Runtime,
    reaper: Arc<Reaper>,
    output: Arc<Output>,
    /// Its stdin and its terminal (held for the container's whole life).
    stdio: ProcessStdio,
    /// The exec processes running: id → pid (0 while it starts).
    execs: Mutex<HashMap<String, u32>>,
    /// Serializes pause and resume, and each with the start of an exec.
    freezer: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    exited_tx: watch::Sender<Option<Exited>>,
    shutdown_tx: watch::Sender<bool>,
    /// Becomes true once the runtime's state of the exited container is
    /// deleted.
    deleted_tx: watch::Sender<bool>,
}

impl Container {
    /// A created container whose init is `init_pid`.
    pub fn new(
        id: &str,
        init_pid: u32,
        state_dir: PathBuf,
        runtime: Runtime,
        reaper: Arc<Reaper>,
        output: Arc<Output>,
        stdio: ProcessStdio,
    ) -> Arc<Container> {
        Arc::new(Container {
            id: id.to_string(),
            init_pid,
            state_dir,
            runtime,
            reaper,
            output,
            stdio,
            execs: Mutex::new(HashMap::new()),
            freezer: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                status: Status::Created,
                starting: false,
                started_at: None,
                exited: None,
            }),
            exited_tx: watch::Sender::new(None),
            shutdown_tx: watch::Sender::new(false),
            deleted_tx: watch::Sender::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `runtime start`; the init pid.
    pub async fn start(&self) -> Result<u32, Error> {
        {
            let mut st = self.state();
            match st.status {
                Status::Created if !st.starting => {
                    st.starting = true;
                    // Set before the runtime call: a quick container can exit
                    // (and be recorded) before that call returns.
                    st.started_at = Some(Utc::now());
                }
                Status::Created | Status::Running | Status::Paused => {
                    return Err(Error::FailedPrecondition(format!(
                        "container {} is already started",
                        self.id
                    )))
                }
                Status::Exited => {
                    return Err(Error::FailedPrecondition(format!(
                        "container {} has exited",
                        self.id
                    )))
                }
            }
        }
        let r = self.runtime.start(&self.reaper).await;
        let mut st = self.state();
        st.starting = false;
        match r {
            Ok(()) => {
                if st.status == Status::Created {
                    st.status = Status::Running;
                }
                tracing::info!(pid = self.init_pid, "container started");
                Ok(self.init_pid)
            }
            Err(e) => {
                if st.status == Status::Created {
                    st.started_at = None;
                }
                Err(e)
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let st = self.state();
        Snapshot {
            pid: self.init_pid,
            status: st.status,
            started_at: st.started_at,
            exited: st.exited,
        }
    }

    /// Resolves when the container has exited and its output is drained.
    pub async fn wait(&self) -> Exited {
        let mut rx = self.exited_tx.subscribe();
        loop {
            if let Some(e) = *rx.borrow_and_update() {
                return e;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`; not reached.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sends `signal` to the init, or to every process of the container.
    /// Signalling an exited container is not an error.
    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), Error> {
        if !(0..=64).contains(&signal) {
            return Err(Error::InvalidArgument(format!("invalid signal {signal}")));
        }
        if self.state().status == Status::Exited {
            return Ok(());
        }
        if self.state().status == Status::Paused {
            return self.kill_paused(signal, all).await;
        }
        self.signal(signal, all).await
    }

    async fn signal(&self, signal: i32, all: bool) -> Result<(), Error> {
        if all {
            match self.runtime.kill(&self.reaper, signal, true).await {
                Err(_) if self.state().status == Status::Exited => Ok(()),
                r => r,
            }
        } else {
            // SAFETY: kill(2) takes plain integers and touches no memory.
            let rc = unsafe { nix::libc::kill(self.init_pid as i32, signal) };
            match Errno::result(rc) {
                Ok(_) | Err(Errno::ESRCH) => Ok(()),
                Err(e) => Err(Error::io(
                    format!("signal {signal} to pid {}", self.init_pid),
                    e.into(),
                )),
            }
        }
    }

    /// Signals a paused container. Frozen processes act on a signal only
    /// once thawed: SIGKILL thaws the container so that it dies, as Docker
    /// does; other signals wait for `Resume`. The runtime's `kill --all`
    /// thaws the container to signal it, so it is frozen again after.
    async fn kill_paused(&self, signal: i32, all: bool) -> Result<(), Error> {
        let _freezer = self.freezer.lock().await;
        if self.state().status != Status::Paused {
            drop(_freezer);
            return self.signal(signal, all).await;
        }
        self.signal(signal, all).await?;
        if signal == nix::libc::SIGKILL {
            match self.runtime.resume(&self.reaper).await {
                Ok(()) => self.set_paused(false),
                Err(e) => tracing::warn!(error = %e, "resume after SIGKILL"),
            }
        } else if all {
            if let Err(e) = self.runtime.pause(&self.reaper).await {
                tracing::warn!(error = %e, "pause again after kill --all");
                self.set_paused(false);
            }
        }
        Ok(())
    }

    fn set_paused(&self, paused: bool) {
        let mut st = self.state();
        match (st.status, paused) {
            (Status::Running, true) => st.status = Status::Paused,
            (Status::Paused, false) => st.status = Status::Running,
            _ => {}
        }
    }

    /// Refuses unless the container runs (and is not paused: then
    /// `paused` says why, after the container's id).
    fn require_running(&self, paused: &str) -> Result<(), Error> {
        let why = match self.state().status {
            Status::Running => return Ok(()),
            Status::Paused => paused,
            Status::Created | Status::Exited => "is not running",
        };
        Err(Error::FailedPrecondition(format!(
            "container {} {why}",
            self.id
        )))
    }

    /// Freezes every process of the container (`runtime pause`).
    pub async fn pause(&self) -> Result<(), Error> {
        let _freezer = self.freezer.lock().await;
        self.require_running("is already paused")?;
        match self.runtime.pause(&self.reaper).await {
            Ok(()) => {
                self.set_paused(true);
                tracing::info!("container paused");
                Ok(())
            }
            Err(_) if self.state().status == Status::Exited => Err(Error::FailedPrecondition(
                format!("container {} is not running", self.id),
            )),
            Err(e) => Err(e),
        }
    }

    /// Thaws a paused container (`runtime resume`).
    pub async fn resume(&self) -> Result<(), Error> {
        let _freezer = self.freezer.lock().await;
        if self.state().status != Status::Paused {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not paused",
                self.id
            )));
        }
        self.runtime.resume(&self.reaper).await?;
        self.set_paused(false);
        tracing::info!("container resumed");
        Ok(())
    }

    /// Sets the size of the container's terminal; without one there is
    /// nothing to do (as with Docker).
    pub fn resize(&self, size: WindowSize) -> Result<(), Error> {
        if self.state().status == Status::Exited {
            return Ok(());
        }
        self.stdio.resize(size)
    }

    /// Its stdin and terminal.
    pub fn stdio(&self) -> &ProcessStdio {
        &self.stdio
    }

    /// Starts a second process in the running container. Returns its handle
    /// (pid, input, terminal) and its output, which ends with its exit code.
    pub async fn exec(
        self: &Arc<Self>,
        req: ExecRequest,
        span: tracing::Span,
    ) -> Result<(Arc<ExecHandle>, mpsc::Receiver<ExecEvent>), Error> {
        // Held from the status check until the process has started: a
        // pause in between would freeze the container under `runtime
        // exec`, which would then wait for it for ever. It also makes
        // exec starts one at a time, so the processes of the others are
        // known (see `exec::start`).
        let _freezer = self.freezer.lock().await;
        self.require_running("is paused, unpause the container before exec")?;
        let exec_id = req.exec_id.clone();
        let known: Vec<u32> = {
            let mut execs = self.execs();
            if execs.contains_key(&exec_id) {
                return Err(Error::AlreadyExists(format!(
                    "exec {exec_id} is already running in container {}",
                    self.id
                )));
            }
            execs.insert(exec_id.clone(), 0);
            execs
                .values()
                .copied()
                .filter(|p| *p != 0)
                .chain([self.init_pid])
                .collect()
        };
        let started =
            super::exec::start(&self.runtime, &self.reaper, &self.state_dir, &req, &known).await;
        if let (Ok(s), Some(p)) = (&started, self.execs().get_mut(&exec_id)) {
            *p = s.handle.pid;
        }
        drop(_freezer);
        let started = match started {
            Ok(s) => s,
            Err(e) => {
                self.execs().remove(&exec_id);
                // The container may have exited meanwhile.
                return Err(match (&e, self.state().status) {
                    (Error::Runtime { .. }, Status::Exited) => {
                        Error::FailedPrecondition(format!("container {} is not running", self.id))
                    }
                    _ => e,
                });
            }
        };
        let handle = started.handle.clone();
        let pid = handle.pid;
        tracing::info!(exec_id = %exec_id, pid, terminal = req.terminal(), "exec started");
        let (tx, rx) = mpsc::channel(EXEC_EVENTS);
        let c = self.clone();
        let s = span.clone();
        tokio::spawn(
            async move {
                let code = started.run(tx, s).await;
                tracing::info!(exec_id = %exec_id, pid, code, "exec exited");
                c.execs().remove(&exec_id);
            }
            .instrument(span),
        );
        Ok((handle, rx))
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client attaching now: the exit when the container is gone already,
    /// else the events from now on. Atomic with the exit's publication, so
    /// a client cannot miss it.
    pub fn attach(&self) -> Result<Exited, broadcast::Receiver<Event>> {
        let st = self.state();
        match st.exited {
            Some(e) => Ok(e),
            None => Err(self.output.subscribe()),
        }
    }

    /// Lets the shim exit: at once after the exit; a created container is
    /// killed first; a running one must be stopped by the caller.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let (status, starting) = {
            let st = self.state();
            (st.status, st.starting)
        };
        match status {
            Status::Running | Status::Paused => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is running: stop it before shutting its shim down",
                    self.id
                )))
            }
            Status::Created if starting => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is starting",
                    self.id
                )))
            }
            Status::Created => {
                self.kill(nix::libc::SIGKILL, false).await?;
                self.wait().await;
            }
            Status::Exited => {}
        }
        // The exit is published before the runtime's state is deleted.
        let _ = self.deleted_tx.subscribe().wait_for(|d| *d).await;
        self.shutdown_tx.send_replace(true);
        Ok(())
    }

    /// Resolves once the shim should stop serving.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Handles the init's exit: drains output, records `exit.json`, deletes
    /// the runtime's state, then answers waiters and attached clients; and
    /// lets the shim go after [`LINGER`] without a `Shutdown`.
    pub async fn monitor(self: Arc<Self>, init: ExitWaiter, pumps: Vec<JoinHandle<()>>) {
        let exit = match init.await {
            Ok(e) => e,
            Err(_) => {
                // Only if the reaper task died, which it does not.
                tracing::error!("lost the container's exit status");
                super::exit::Exit::Code(255)
            }
        };
        let at = Utc::now();
        let code = exit.code();
        tracing::info!(pid = self.init_pid, code, %exit, "container exited");

        drain(pumps, "the container's").await;
        self.output.finish(Stream::Stdout);
        self.output.finish(Stream::Stderr);
        self.stdio.close_stdin().await;

        let started_at = self.state().started_at;
        let record = ExitRecord {
            exit_code: code,
            exited_at: rfc3339(at),
            started_at: started_at.map(rfc3339).unwrap_or_default(),
        };
        if let Err(e) = record.write(&self.state_dir) {
            tracing::error!(error = %e, "cannot write exit.json");
        }
        // The exit is told first, the runtime's state deleted after: a
        // `Shutdown` waits for that deletion (see `shutdown`), so nothing is
        // left behind, and the runtime daemon tears down the rest of the run
        // meanwhile.
        let exited = Exited { code, at };
        {
            let mut st = self.state();
            st.status = Status::Exited;
            st.exited = Some(exited);
            self.output.publish(Event::Exit(code));
        }
        self.exited_tx.send_replace(Some(exited));

        // A quick container can exit while `runtime start` is still
        // cleaning up after itself (it removes its exec fifo): deleting the
        // runtime's state under it would fail that start.
        let wait_start = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.state().starting && tokio::time::Instant::now() < wait_start {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // `delete --force` can lose a race with a concurrent `kill --all`
        // (both take the runtime's state lock): try again before giving up,
        // or the container's cgroup and runtime state would be left behind.
        for attempt in 1..=20 {
            match self.runtime.delete(&self.reaper).await {
                Ok(()) => break,
                Err(e) if e.to_string().contains("does not exist") => break,
                Err(e) if attempt == 20 => tracing::error!(error = %e, "runtime delete"),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "runtime delete failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }

        self.deleted_tx.send_replace(true);

        tokio::time::sleep(LINGER).await;
        if !*self.shutdown_tx.borrow() {
            tracing::info!("no shutdown {LINGER:?} after the exit; leaving");
            self.shutdown_tx.send_replace(true);
        }
    }
}
