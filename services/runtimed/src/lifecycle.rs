//! Starting, watching, stopping, killing and removing containers; restart
//! policies; and reconnecting to the shims after the daemon restarts.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use rdock_proto::image::v1::RemoveRootfsRequest;
use rdock_proto::shim::v1 as shimpb;
use rdock_proto::shim::v1::shim_client::ShimClient;
use tonic::transport::Channel;

use crate::error::{Error, Result};
use crate::model::{Container, Status};
use crate::runtime::{Live, Runtime};
use rdock_shim::ExitRecord;

/// Exit code recorded when a container's end was not seen (host reboot).
const UNKNOWN_EXIT: i32 = 255;

/// The longest an attached client's exit waits for the daemon's record.
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(10);

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Resolves once the container's exit is recorded.
async fn exited(rx: &mut tokio::sync::watch::Receiver<Option<i32>>) {
    while rx.borrow_and_update().is_none() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Parses `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Signal::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| Error::InvalidArgument(format!("invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::InvalidArgument(format!("invalid signal: {s}")))
}

impl Runtime {
    pub(crate) async fn shim(&self, id: &str) -> Result<ShimClient<Channel>> {
        rdock_shim::client::connect(&self.socket(id))
            .await
            .map_err(|e| Error::Unavailable(format!("shim of {}: {e}", &id[..id.len().min(12)])))
    }

    /// Starts a created or stopped container.
    #[tracing::instrument(skip_all, fields(container = %key))]
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let live = self.live(&c.id);
        let _op = live.op.lock().await;
        self.start_locked(c).await
    }

    /// Whether the container's shim is up with its container created (not
    /// started yet).
    async fn shim_created(&self, id: &str) -> bool {
        match self.shim(id).await {
            Ok(mut s) => s
                .state(shimpb::StateRequest {})
                .await
                .is_ok_and(|r| r.get_ref().status == "created"),
            Err(_) => false,
        }
    }

    /// Prepares the next run of a stopped container (root filesystem,
    /// network, bundle, shim with the container created) unless its shim
    /// is up already.
    async fn ensure_created(self: &Arc<Self>, c: &mut Container) -> Result<bool> {
        if self.shim_created(&c.id).await {
            return Ok(false);
        }
        // A copy out of the stopped container has its root filesystem
        // mounted: it finishes first.
        let live = self.live(&c.id);
        let _copies = live.copies.lock().await;
        self.prepare_run(c).await?;
        Ok(true)
    }

    /// The container an Attach is for, with its shim up: `start -a` attaches
    /// before it starts a stopped container, so that container's next run
    /// is prepared now (as `create` does for a new one) and its output from
    /// the first byte reaches the client; the start then only starts it.
    #[tracing::instrument(skip_all, fields(container = %key))]
    pub async fn attachable(self: &Arc<Self>, key: &str) -> Result<Container> {
        let c = self.find(key)?;
        if c.state.status == Status::Running {
            return Ok(c);
        }
        let live = self.live(&c.id);
        let _op = live.op.lock().await;
        let mut c = self.find(&c.id)?;
        if c.state.status != Status::Running && self.ensure_created(&mut c).await? {
            self.store.update(&c)?;
        }
        Ok(c)
    }

    async fn start_locked(self: &Arc<Self>, mut c: Container) -> Result<()> {
        if c.state.status == Status::Running {
            return Ok(());
        }
        self.ensure_created(&mut c).await?;
        let started = async {
            self.shim(&c.id)
                .await?
                .start(shimpb::StartRequest {})
                .await
                .map_err(Error::from)
        }
        .await;
        let pid = match started {
            Ok(r) => r.into_inner().pid,
            Err(e) => {
                self.shutdown_shim(&c.id).await;
                self.teardown_run(&c).await;
                return Err(e.context("start"));
            }
        };
        c.state.status = Status::Running;
        c.state.pid = pid;
        c.state.started_at = now();
        c.state.finished_at.clear();
        c.state.stopped_by_user = false;
        c.state.error.clear();
        self.store.update(&c)?;
        self.live(&c.id).exit.send_replace(None);
        self.spawn_monitor(c.id.clone());
        Ok(())
    }

    /// Watches a running container until it exits, then records the exit.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, id: String) {
        let rt = self.clone();
        tokio::spawn(async move {
            let code = rt.wait_shim(&id).await;
            if let Err(e) = rt.on_exit(&id, code).await {
                tracing::warn!(container = %id, error = %e, "record container exit");
            }
        });
    }

    /// The exit code from the shim, or from what it left behind.
    async fn wait_shim(&self, id: &str) -> i32 {
        if let Ok(mut s) = self.shim(id).await {
            if let Ok(r) = s.wait(shimpb::WaitRequest {}).await {
                return r.into_inner().exit_code;
            }
        }
        match ExitRecord::read(&self.shim_dir(id)) {
            Ok(Some(r)) => r.exit_code,
            _ => UNKNOWN_EXIT,
        }
    }

    pub(crate) async fn shutdown_shim(&self, id: &str) {
        if let Ok(mut s) = self.shim(id).await {
            let _ = s.shutdown(shimpb::ShutdownRequest {}).await;
        }
    }

    /// Records an exit, releases the run's resources, then removes or
    /// restarts the container as its settings say.
    async fn on_exit(self: &Arc<Self>, id: &str, code: i32) -> Result<()> {
        let live = self.live(id);
        let op = live.op.lock().await;
        let Some(mut c) = self.store.get(id)? else {
            return Ok(());
        };
        // The shim deletes the runtime's state while the run's mounts and
        // network go: connected first, as the teardown removes its socket.
        let shim = self.shim(id).await.ok();
        let shutdown = async {
            if let Some(mut s) = shim {
                let _ = s.shutdown(shimpb::ShutdownRequest {}).await;
            }
        };
        tokio::join!(shutdown, self.teardown_run(&c));
        c.state.status = Status::Exited;
        c.state.exit_code = code;
        c.state.pid = 0;
        c.clear_network_state();
        c.state.finished_at = now();
        self.store.update(&c)?;
        live.exit.send_replace(Some(code));
        live.exits.send_modify(|n| *n += 1);
        tracing::info!(container = %c.short_id(), exit_code = code, "container exited");
        if c.host.auto_remove {
            if let Err(e) = self.remove_locked(c, true).await {
                tracing::warn!(container = %id, error = %e, "auto-remove failed; will retry");
                self.retry_remove(id.to_string());
            }
            return Ok(());
        }
        if !self.should_restart(&c) {
            return Ok(());
        }
        c.state.restart_count += 1;
        c.state.status = Status::Restarting;
        self.store.update(&c)?;
        drop(op);
        let delay = Duration::from_millis(100u64 << c.state.restart_count.min(10))
            .min(Duration::from_secs(60));
        let rt = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let live = rt.live(&id);
            let _op = live.op.lock().await;
            let Ok(Some(c)) = rt.store.get(&id) else {
                return;
            };
            if c.state.status != Status::Restarting {
                return;
            }
            if let Err(e) = rt.start_locked(c.clone()).await {
                tracing::warn!(container = %id, error = %e, "restart failed");
                let mut c = c;
                c.state.status = Status::Exited;
                c.state.error = e.to_string();
                let _ = rt.store.update(&c);
            }
        });
        Ok(())
    }

    /// Retries removing an exited `--rm` container (say, while the image
    /// daemon is down), for a while; the next daemon start retries too.
    fn retry_remove(self: &Arc<Self>, id: String) {
        let rt = self.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let live = rt.live(&id);
                let _op = live.op.lock().await;
                match rt.store.get(&id) {
                    Ok(Some(c)) => {
                        if rt.remove_locked(c, true).await.is_ok() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
    }

    fn should_restart(&self, c: &Container) -> bool {
        let p = &c.host.restart;
        match p.name.as_str() {
            "always" | "unless-stopped" => !c.state.stopped_by_user,
            "on-failure" => {
                c.state.exit_code != 0
                    && !c.state.stopped_by_user
                    && (p.max_retries == 0 || c.state.restart_count < p.max_retries)
            }
            _ => false,
        }
    }

    /// Blocks until the container is not running (with `removed`, until it
    /// is gone too); its exit code.
    pub async fn wait(&self, key: &str, removed: bool) -> Result<i32> {
        let c = self.find(key)?;
        let live = self.live(&c.id);
        let mut rx = live.exit.subscribe();
        let mut gone = live.removed.subscribe();
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            loop {
                if rx.borrow_and_update().is_some() {
                    break;
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        let code = (*rx.borrow()).unwrap_or(c.state.exit_code);
        if removed {
            while !*gone.borrow_and_update() {
                if self.store.get(&c.id)?.is_none() || gone.changed().await.is_err() {
                    break;
                }
            }
        }
        Ok(code)
    }

    /// Waits (a while at most) until an exit after the `seen`-th one is
    /// recorded or the container is removed: an attached client is told
    /// of the exit only once `ps` and `rm` see it.
    pub async fn exit_recorded(&self, live: &Live, seen: u64) {
        let mut exits = live.exits.subscribe();
        let mut removed = live.removed.subscribe();
        let recorded = async {
            tokio::select! {
                _ = exits.wait_for(|n| *n > seen) => {}
                _ = removed.wait_for(|r| *r) => {}
            }
        };
        if tokio::time::timeout(EXIT_RECORD_WAIT, recorded)
            .await
            .is_err()
        {
            tracing::warn!("an exit was not recorded in time; telling the client anyway");
        }
    }

    /// Records that a user stopped the container, so restart policies leave
    /// it stopped. Under the container's lock: the exit may be recorded
    /// concurrently, and must not be overwritten.
    async fn mark_stopped_by_user(&self, id: &str) -> Result<()> {
        let live = self.live(id);
        let _op = live.op.lock().await;
        if let Some(mut c) = self.store.get(id)? {
            if !c.state.stopped_by_user {
                c.state.stopped_by_user = true;
                self.store.update(&c)?;
            }
        }
        Ok(())
    }

    /// Sends `signal` to the container's init.
    pub async fn kill(&self, key: &str, signal: &str) -> Result<()> {
        let sig = parse_signal(signal)?;
        let c = self.find(key)?;
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!("container {key} is not running")));
        }
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            self.mark_stopped_by_user(&c.id).await?;
        }
        self.shim(&c.id)
            .await?
            .kill(shimpb::KillRequest {
                signal: sig as i32,
                all: false,
            })
            .await
            .map_err(Error::from)?;
        Ok(())
    }

    /// The stop signal, then SIGKILL after `timeout` seconds.
    pub async fn stop(&self, key: &str, timeout: Option<u32>) -> Result<()> {
        let c = self.find(key)?;
        if c.state.status == Status::Restarting {
            let live = self.live(&c.id);
            let _op = live.op.lock().await;
            if let Some(mut c) = self.store.get(&c.id)? {
                if c.state.status == Status::Restarting {
                    c.state.status = Status::Exited;
                    c.state.stopped_by_user = true;
                    self.store.update(&c)?;
                }
            }
            return Ok(());
        }
        if c.state.status != Status::Running {
            return Ok(());
        }
        self.mark_stopped_by_user(&c.id).await?;
        let sig = if c.config.stop_signal.is_empty() {
            Signal::SIGTERM
        } else {
            parse_signal(&c.config.stop_signal).unwrap_or(Signal::SIGTERM)
        };
        let live = self.live(&c.id);
        let mut rx = live.exit.subscribe();
        // A shim that cannot be reached has exited or is exiting: its
        // monitor records the exit, which is what we wait for below.
        let mut shim = self.shim(&c.id).await.ok();
        if let Some(s) = shim.as_mut() {
            let _ = s
                .kill(shimpb::KillRequest {
                    signal: sig as i32,
                    all: false,
                })
                .await;
        }
        let grace = Duration::from_secs(u64::from(timeout.unwrap_or(10)));
        if tokio::time::timeout(grace, exited(&mut rx)).await.is_err() {
            if let Some(s) = shim.as_mut() {
                let _ = s
                    .kill(shimpb::KillRequest {
                        signal: Signal::SIGKILL as i32,
                        all: true,
                    })
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), exited(&mut rx))
                .await
                .is_err()
            {
                return Err(Error::Internal(format!("container {key} did not stop")));
            }
        }
        Ok(())
    }

    /// Removes a container; a running one only with `force` (killed first).
    /// With `volumes` (`rm -v`) its anonymous volumes go too.
    #[tracing::instrument(skip_all, fields(container = %key, force, volumes))]
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.find(key)?;
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container {key}: container is running: stop the container before removing or force remove"
                )));
            }
            self.stop(&c.id, Some(0)).await?;
        }
        let live = self.live(&c.id);
        let _op = live.op.lock().await;
        let Some(c) = self.store.get(&c.id)? else {
            return Ok(());
        };
        self.remove_locked(c, volumes).await
    }

    /// Removes a container under its `op` lock; `volumes` removes its
    /// anonymous volumes too (`rm -v`, `run --rm`).
    async fn remove_locked(&self, c: Container, volumes: bool) -> Result<()> {
        // A copy out of the stopped container finishes first.
        let live = self.live(&c.id);
        let _copies = live.copies.lock().await;
        self.shutdown_shim(&c.id).await;
        self.teardown_run(&c).await;
        self.imaged
            .clone()
            .remove_rootfs(RemoveRootfsRequest {
                container_id: c.id.clone(),
            })
            .await
            .map_err(|s| Error::from(s).context("remove root filesystem"))?;
        let dir = self.dir(&c.id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(crate::error::io(format!("remove {}", dir.display())))?;
        }
        self.store.remove(&c)?;
        if volumes {
            self.remove_anonymous_volumes(&c).await;
        }
        self.live(&c.id).removed.send_replace(true);
        self.forget(&c.id);
        Ok(())
    }

    /// After a daemon start: reconnect to live shims, record exits that
    /// happened meanwhile, and apply restart policies.
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        self.sweep_copy_roots();
        for c in self.store.all()? {
            let live = self.live(&c.id);
            let alive = match self.shim(&c.id).await {
                Ok(mut s) => s
                    .state(shimpb::StateRequest {})
                    .await
                    .ok()
                    .map(|r| r.into_inner()),
                Err(_) => None,
            };
            match (c.state.status, alive) {
                (Status::Running, Some(st)) if st.status != "exited" => {
                    live.exit.send_replace(None);
                    self.spawn_monitor(c.id.clone());
                }
                (Status::Running | Status::Restarting, st) => {
                    live.exit.send_replace(None);
                    let code = match st {
                        Some(st) => st.exit_code,
                        None => ExitRecord::read(&self.shim_dir(&c.id))
                            .ok()
                            .flatten()
                            .map_or(UNKNOWN_EXIT, |r| r.exit_code),
                    };
                    self.on_exit(&c.id, code).await?;
                }
                (Status::Created, Some(_)) => {}
                (Status::Exited, _) if c.host.auto_remove => {
                    let _op = live.op.lock().await;
                    if let Err(e) = self.remove_locked(c.clone(), true).await {
                        tracing::warn!(container = %c.short_id(), error = %e, "auto-remove failed; will retry");
                        self.retry_remove(c.id.clone());
                    }
                }
                (Status::Created | Status::Exited, _) => {
                    self.teardown_run(&c).await;
                    live.exit.send_replace(Some(c.state.exit_code));
                    let always = c.host.restart.name == "always"
                        || (c.host.restart.name == "unless-stopped" && !c.state.stopped_by_user);
                    if c.state.status == Status::Exited && always {
                        let _op = live.op.lock().await;
                        if let Err(e) = self.start_locked(c.clone()).await {
                            tracing::warn!(container = %c.short_id(), error = %e, "start on daemon start");
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigint").unwrap(), Signal::SIGINT);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
