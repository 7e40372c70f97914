//! The cgroup parent of one environment's containers: a unique name the
//! runtime daemon is given (`--cgroup-parent`), so that the cgroups a test
//! made, and the processes in them, can be found in every hierarchy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `/sys/fs/cgroup/<name>` of every mounted hierarchy: the v1 controllers,
/// `systemd` and the cgroup2 `unified` one of a hybrid host.
pub fn hierarchies() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CGROUP_ROOT)
        .map(|rd| {
            rd.flatten()
                // Only real directories: cpu,cpuacct style symlinks repeat one.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Subdirectories of `dir` (not `dir`), deepest first.
fn dirs_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            out.extend(dirs_below(&p));
            out.push(p);
        }
    }
    out
}

fn procs_in(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// One environment's cgroup parent, `rdock-t<16 hex>`.
#[derive(Debug, Clone)]
pub struct CgroupParent {
    pub name: String,
}

impl CgroupParent {
    /// A fresh name, so that environments running side by side never share one.
    pub fn unique() -> CgroupParent {
        use rand::Rng;
        let n: u64 = rand::rng().random();
        CgroupParent {
            name: format!("rdock-t{n:016x}"),
        }
    }

    /// `<hierarchy>/<name>`.
    pub fn dir_in(&self, hierarchy: &Path) -> PathBuf {
        hierarchy.join(&self.name)
    }

    /// The cgroup directory of container `id` in `hierarchy` (`memory`,
    /// `pids`, `unified`, ...).
    pub fn container_dir(&self, hierarchy: &str, id: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join(hierarchy)
            .join(&self.name)
            .join(id)
    }

    /// Every cgroup left below the parent, in any hierarchy, deepest first.
    pub fn children(&self) -> Vec<PathBuf> {
        hierarchies()
            .iter()
            .flat_map(|h| dirs_below(&self.dir_in(h)))
            .collect()
    }

    /// Every process in a cgroup below the parent (any hierarchy), sorted.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = hierarchies()
            .iter()
            .flat_map(|h| {
                let parent = self.dir_in(h);
                let mut dirs = dirs_below(&parent);
                dirs.push(parent);
                dirs
            })
            .flat_map(|d| procs_in(&d))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process below the parent and removes its cgroups, the
    /// parent's own directories included; returns the cgroups that could
    /// not be removed.
    pub fn remove_all(&self) -> Vec<PathBuf> {
        for pid in self.pids() {
            crate::procs::kill_hard(pid);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut left = Vec::new();
            for h in hierarchies() {
                let parent = self.dir_in(&h);
                if !parent.exists() {
                    continue;
                }
                let mut dirs = dirs_below(&parent);
                dirs.push(parent);
                for d in dirs {
                    // A cgroup directory goes with rmdir even though it
                    // lists files; it fails while processes are in it.
                    if std::fs::remove_dir(&d).is_err() && d.exists() {
                        left.push(d);
                    }
                }
            }
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
