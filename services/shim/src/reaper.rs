//! One reaper for every child of the shim, as containerd's shim
//! (`pkg/sys/reaper`) and conmon (`check_child_processes`) do: on SIGCHLD,
//! `waitpid(-1, WNOHANG)` until nothing is left, and hand each status to
//! whoever waits for that pid.
//!
//! As child subreaper the shim also inherits orphans it never spawned — the
//! container's init among them, whose pid it learns only from runc's pid
//! file, possibly after init already exited. Exits nobody waits for yet are
//! kept (a bounded, oldest-first list) so a waiter that registers late still
//! gets its status, like conmon's `exit_status_cache`.
//!
//! After [`Reaper::start`] nothing in the process may wait for a child any
//! other way (`std::process::Child::wait`, `Command::output`, tokio's
//! process module): the reaper would steal the status. Spawn through
//! [`Reaper::spawn`] instead.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use super::exit::Exit;

/// Exits of pids nobody waited for that are kept for a late waiter.
const UNCLAIMED_MAX: usize = 64;

/// Resolves to the exit of one child.
pub type ExitWaiter = oneshot::Receiver<Exit>;

/// Hands reaped statuses to their waiters.
#[derive(Default)]
pub struct Reaper {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    waiters: HashMap<i32, oneshot::Sender<Exit>>,
    /// `(pid, exit, seq)`, oldest first.
    unclaimed: VecDeque<(i32, Exit, u64)>,
    /// Exits reaped so far: the `seq` of the latest.
    seq: u64,
}

impl Reaper {
    /// Reaps on every SIGCHLD from now on. Must run inside a Tokio runtime,
    /// before the first child is spawned.
    pub fn start() -> io::Result<Arc<Reaper>> {
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Arc::new(Reaper::default());
        let r = reaper.clone();
        tokio::spawn(async move {
            loop {
                r.reap();
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(reaper)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned map is still a consistent map: every update is one call.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Collects every child that has ended.
    pub fn reap(&self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return,
                Ok(ws) => {
                    if let (Some(pid), Some(exit)) = (ws.pid(), Exit::from_wait_status(ws)) {
                        self.deliver(pid.as_raw(), exit);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid");
                    return;
                }
            }
        }
    }

    /// Gives `exit` to the waiter of `pid`, or keeps it for a late one.
    pub fn deliver(&self, pid: i32, exit: Exit) {
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        match inner.waiters.remove(&pid) {
            Some(tx) => {
                let _ = tx.send(exit);
            }
            None => {
                tracing::debug!(pid, %exit, "reaped a process nobody waits for");
                if inner.unclaimed.len() >= UNCLAIMED_MAX {
                    inner.unclaimed.pop_front();
                }
                inner.unclaimed.push_back((pid, exit, seq));
            }
        }
    }

    /// Waits for `pid`, a child the shim did not spawn itself (an adopted
    /// orphan such as the container's init). Resolves at once when it was
    /// reaped already.
    pub fn watch(&self, pid: i32) -> ExitWaiter {
        self.watch_since(pid, 0)
    }

    /// Where the reaper is now: exits reaped after this point are newer
    /// than the mark (see [`Reaper::watch_since`]).
    pub fn mark(&self) -> u64 {
        self.lock().seq
    }

    /// Like [`Reaper::watch`], for a process known to have been born after
    /// `mark` was taken (a `runtime exec` process, adopted when the runtime
    /// exits): a kept exit of an older process that had the same pid is not
    /// taken for its.
    pub fn watch_since(&self, pid: i32, mark: u64) -> ExitWaiter {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        match inner
            .unclaimed
            .iter()
            .rposition(|(p, _, seq)| *p == pid && *seq > mark)
        {
            Some(i) => {
                if let Some((_, exit, _)) = inner.unclaimed.remove(i) {
                    let _ = tx.send(exit);
                }
            }
            None => {
                inner.waiters.insert(pid, tx);
            }
        }
        rx
    }

    /// Spawns `cmd`; the waiter resolves when it exits. The child is
    /// registered before the reaper can see it, so its exit cannot be lost,
    /// and an older exit of a process that had the same pid is not mistaken
    /// for it.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(u32, ExitWaiter)> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let child = cmd.spawn()?;
        let pid = child.id();
        // Dropping a std Child neither waits nor kills.
        drop(child);
        let raw = pid as i32;
        inner.unclaimed.retain(|(p, _, _)| *p != raw);
        inner.waiters.insert(raw, tx);
        Ok((pid, rx))
    }

    /// Spawns `cmd` and waits for it to exit.
    pub async fn run(&self, cmd: &mut Command) -> io::Result<Exit> {
        let (_, waiter) = self.spawn(cmd)?;
        waiter
            .await
            .map_err(|_| io::Error::other("the reaper stopped before the child exited"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real waitpid(-1) would steal other tests' children; the bookkeeping is
    // what is tested here, the reaping itself by the integration tests.

    #[tokio::test]
    async fn exit_before_and_after_watch() {
        let r = Reaper::default();
        // Exit first, waiter later.
        r.deliver(100, Exit::Code(3));
        assert_eq!(r.watch(100).await.unwrap(), Exit::Code(3));
        // Waiter first.
        let w = r.watch(101);
        r.deliver(101, Exit::Signal(15));
        assert_eq!(w.await.unwrap().code(), 143);
        // Claimed exits are gone.
        assert!(r.lock().unclaimed.is_empty());
        assert!(r.lock().waiters.is_empty());
    }

    #[tokio::test]
    async fn watch_since_ignores_exits_older_than_the_mark() {
        let r = Reaper::default();
        // An old process with pid 200 exited and nobody claimed it.
        r.deliver(200, Exit::Code(1));
        let mark = r.mark();
        // A new process got pid 200 again: its waiter must not get the old
        // exit...
        let mut w = r.watch_since(200, mark);
        assert!(w.try_recv().is_err());
        // ...but its own, whether it comes after the watch or before.
        r.deliver(200, Exit::Code(7));
        assert_eq!(w.await.unwrap(), Exit::Code(7));
        let mark = r.mark();
        r.deliver(201, Exit::Code(4));
        assert_eq!(r.watch_since(201, mark).await.unwrap(), Exit::Code(4));
        // The old one is still there for a plain watch.
        assert_eq!(r.watch(200).await.unwrap(), Exit::Code(1));
    }

    #[test]
    fn unclaimed_is_bounded_oldest_first() {
        let r = Reaper::default();
        for pid in 0..(UNCLAIMED_MAX as i32 + 10) {
            r.deliver(pid, Exit::Code(pid));
        }
        let inner = r.lock();
        assert_eq!(inner.unclaimed.len(), UNCLAIMED_MAX);
        assert_eq!(inner.unclaimed.front().map(|e| e.0), Some(10));
    }
}
