//! Containers through the CLI, and what they may leave on the host: records,
//! directories, mounts, network namespaces, shims, runc state, cgroups and
//! the processes in them.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::env::{Env, DAEMONS};
use crate::procs::Output;
use crate::{mounts, procs};

/// How long things a removed container owned may take to go (a shim exits
/// a moment after it answered its last call).
const SETTLE: Duration = Duration::from_secs(5);

/// One line of `rdockctl ps -a --no-trunc --format json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    pub id: String,
    pub names: String,
    pub image: String,
    pub command: String,
    /// `created`, `running`, `restarting`, `exited`.
    pub state: String,
    /// `Up 2 seconds`, `Exited (3) 1 second ago`, ...
    pub status: String,
}

/// Polls `probe` every 50 ms until it returns `Some`, and returns that;
/// fails the test after `timeout`, saying what it was waiting for.
#[track_caller]
pub fn wait_until<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Env {
    /// `rdockctl run -d ARGS`; returns the id it printed.
    #[track_caller]
    pub fn run_detached(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        let id = out.ok().trim().to_string();
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "`run -d` must print the container id (64 hex digits):\n{out}"
        );
        id
    }

    /// Every container, as `ps -a --no-trunc --format json` lists them.
    #[track_caller]
    pub fn containers(&self) -> Vec<ContainerRow> {
        let out = self.cli(&["ps", "-a", "--no-trunc", "--format", "json"]);
        out.ok()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("`ps --format json` line {l:?}: {e}\n{out}"));
                let field = |k: &str| {
                    v.get(k)
                        .and_then(|x| x.as_str())
                        .unwrap_or_else(|| panic!("`ps --format json` line without {k}: {l}"))
                        .to_string()
                };
                ContainerRow {
                    id: field("ID"),
                    names: field("Names"),
                    image: field("Image"),
                    command: field("Command"),
                    state: field("State"),
                    status: field("Status"),
                }
            })
            .collect()
    }

    /// The `ps -a` row of the container with this full id or name.
    #[track_caller]
    pub fn container_row(&self, id_or_name: &str) -> ContainerRow {
        let rows = self.containers();
        rows.iter()
            .find(|r| r.id == id_or_name || r.names == id_or_name)
            .cloned()
            .unwrap_or_else(|| panic!("`ps -a` does not list {id_or_name}: {rows:#?}"))
    }

    /// `rdockctl inspect --type container C`, the one element of its array.
    #[track_caller]
    pub fn inspect_container(&self, container: &str) -> serde_json::Value {
        let out = self.cli(&["inspect", "--type", "container", container]);
        let v: serde_json::Value = serde_json::from_str(out.ok())
            .unwrap_or_else(|e| panic!("`inspect {container}` is not JSON: {e}\n{out}"));
        match v {
            serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
            other => panic!("`inspect {container}` is not a one-element array: {other}"),
        }
    }

    /// `inspect -f TEMPLATE C`, trimmed.
    #[track_caller]
    pub fn inspect_format(&self, container: &str, template: &str) -> String {
        self.cli(&["inspect", "-f", template, container])
            .ok()
            .trim()
            .to_string()
    }

    /// Waits until the container's `State.Status` is `status`; returns its
    /// inspect JSON then.
    #[track_caller]
    pub fn wait_for_status(
        &self,
        container: &str,
        status: &str,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.inspect_container(container);
            if v["State"]["Status"] == status {
                return v;
            }
            if Instant::now() > deadline {
                panic!("{container} did not become {status} within {timeout:?}; last: {v:#}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Removes every container (`rm -f`), retrying for a while: one that
    /// is exiting (being removed by `--rm`, restarting) may refuse at
    /// first. Returns what could not be removed, with the last error.
    /// Never panics (teardown uses it).
    pub fn remove_all_containers(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last_rm: Option<Output> = None;
        loop {
            let ids: Vec<String> = match self.try_cli(&["ps", "-a", "-q", "--no-trunc"]) {
                Ok(out) if out.code == 0 => {
                    out.stdout.split_whitespace().map(String::from).collect()
                }
                Ok(out) | Err(out) => return vec![format!("`ps -a -q` failed:\n{out}")],
            };
            if ids.is_empty() {
                return Vec::new();
            }
            if Instant::now() > deadline {
                let last = last_rm.map(|o| o.to_string()).unwrap_or_default();
                return vec![format!(
                    "containers not removed by `rm -f` within 15 s: {ids:?}; last `rm -f`:\n{last}"
                )];
            }
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            match self.try_cli(&args) {
                Ok(out) if out.code == 0 => {}
                Ok(out) | Err(out) => {
                    last_rm = Some(out);
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// What containers have on the host, looked up without the daemons:
    /// directories under the runtime daemon's `containers/`, root
    /// filesystem snapshots in the image daemon, network namespaces, shim
    /// sockets and processes, runc state, cgroups below this environment's
    /// parent and processes in them, and mounts of either daemon. When no
    /// container should exist, each of these is a leak.
    pub fn container_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let rs = self.runtimed_state();
        for id in rs.container_dirs() {
            found.push(format!(
                "container directory: {}",
                rs.container_dir(&id).display()
            ));
        }
        for id in self.imaged_state().container_snapshots() {
            found.push(format!("root filesystem snapshot in rdock-imaged: {id}"));
        }
        for n in rs.netns_entries() {
            found.push(format!("network namespace: {}", rs.netns(&n).display()));
        }
        for n in rs.shim_sockets() {
            found.push(format!(
                "shim socket: {}",
                rs.run.join("shims").join(n).display()
            ));
        }
        match rs.runc_containers() {
            Ok(ids) => found.extend(ids.into_iter().map(|id| format!("runc state: {id}"))),
            Err(e) => found.push(e),
        }
        for (pid, cmdline) in self.shim_processes() {
            found.push(format!("shim process: {pid} {cmdline}"));
        }
        for pid in self.cgroup_parent().pids() {
            found.push(format!(
                "process in a container cgroup: {pid} {}",
                procs::cmdline(pid)
            ));
        }
        for d in self.cgroup_parent().children() {
            found.push(format!("cgroup: {}", d.display()));
        }
        for dir in [rs.state.clone(), rs.run.clone(), self.imaged_state().dir] {
            for m in mounts::mounts_under(&dir) {
                found.push(format!("mount: {}", m.display()));
            }
        }
        found
    }

    /// `rdock-shim` processes of this environment (their command lines name
    /// its directories); they are not the daemon's children after it
    /// restarted.
    pub fn shim_processes(&self) -> Vec<(i32, String)> {
        procs::processes_mentioning(&self.root().to_string_lossy())
            .into_iter()
            .filter(|(_, cmdline)| cmdline.contains("rdock-shim"))
            .collect()
    }

    /// Does to this environment what a host reboot would, while its daemons
    /// are down: kills every shim (its whole process group) and every
    /// process in the containers' cgroups, removes those cgroups, detaches
    /// every mount (root filesystems, network namespaces) and removes the
    /// daemons' run directories (`/run` is a tmpfs). State directories stay.
    #[track_caller]
    pub fn simulate_host_reboot(&self) {
        for d in DAEMONS {
            assert!(
                self.pid(d).is_none(),
                "stop rdock-{} before simulating a reboot",
                d.name()
            );
        }
        for (pid, _) in self.shim_processes() {
            // A shim leads its own session and process group.
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
            procs::kill_hard(pid);
        }
        let stuck = self.cgroup_parent().remove_all();
        assert!(stuck.is_empty(), "cannot remove cgroups {stuck:?}");
        mounts::unmount_all_under(self.root());
        for d in DAEMONS {
            let run = self.run_dir(d);
            if run.exists() {
                std::fs::remove_dir_all(&run)
                    .unwrap_or_else(|e| panic!("remove {}: {e}", run.display()));
            }
        }
    }

    /// Everything containers have on this host, as sorted descriptions: the
    /// ids `ps -a` lists and all [`Env::container_leftovers`] finds. Equal
    /// before and after a failed command means it left nothing behind.
    #[track_caller]
    pub fn container_footprint(&self) -> Vec<String> {
        let ps = self.cli(&["ps", "-a", "-q", "--no-trunc"]);
        let mut v: Vec<String> = ps
            .ok()
            .split_whitespace()
            .map(|id| format!("container record: {id}"))
            .collect();
        v.extend(self.container_leftovers());
        v.sort();
        v
    }

    /// Fails the test unless the footprint (see
    /// [`Env::container_footprint`]) is back to `before` within a few
    /// seconds.
    #[track_caller]
    pub fn assert_footprint(&self, before: &[String]) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = self.container_footprint();
            if now == before {
                return;
            }
            if Instant::now() > deadline {
                let added: Vec<&String> = now.iter().filter(|x| !before.contains(x)).collect();
                let gone: Vec<&String> = before.iter().filter(|x| !now.contains(x)).collect();
                panic!(
                    "containers' footprint changed ({SETTLE:?} after):\n  new: {added:#?}\n  gone: {gone:#?}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` until `ps -a` is empty and nothing any
    /// container had is left (see [`Env::container_leftovers`]); fails the
    /// test with what is still there otherwise.
    #[track_caller]
    pub fn wait_no_containers(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ps = self.cli(&["ps", "-a", "-q", "--no-trunc"]);
            let mut left: Vec<String> = ps
                .ok()
                .split_whitespace()
                .map(|id| format!("container record: {id}"))
                .collect();
            left.extend(self.container_leftovers());
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "containers left things behind ({timeout:?} after):\n  {}",
                    left.join("\n  ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails the test unless `ps -a` is empty right now and, within a few
    /// seconds, nothing any container had is left (see
    /// [`Env::container_leftovers`]).
    #[track_caller]
    pub fn assert_no_containers(&self) {
        let ps = self.cli(&["ps", "-a", "-q", "--no-trunc"]);
        assert_eq!(ps.ok().trim(), "", "`ps -a` must list no container:\n{ps}");
        let deadline = Instant::now() + SETTLE;
        loop {
            let left = self.container_leftovers();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "containers left things behind ({SETTLE:?} after):\n  {}",
                    left.join("\n  ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
