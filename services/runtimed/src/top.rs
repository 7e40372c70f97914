//! `top`: the container's processes, as `ps -ef` shows them on the host.

use rdock_proto::runtime::v1::{TopResponse, TopRow};

use crate::error::{Error, Result};
use crate::model::Status;
use crate::runtime::Runtime;

/// Pids in the container's cgroup (any v1 hierarchy, or the unified one).
fn cgroup_pids(cgroup: &str) -> Vec<u32> {
    for base in [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        let p = format!("{base}{cgroup}/cgroup.procs");
        if let Ok(text) = std::fs::read_to_string(&p) {
            let mut pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            pids.sort_unstable();
            return pids;
        }
    }
    vec![]
}

fn stat_fields(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((ppid, ticks))
}

fn uid_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

impl Runtime {
    pub fn top(&self, key: &str) -> Result<TopResponse> {
        let c = self.find(key)?;
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!("container {key} is not running")));
        }
        let hz = 100;
        let processes = cgroup_pids(&self.cgroup(&c.id))
            .into_iter()
            .filter_map(|pid| {
                let (ppid, ticks) = stat_fields(pid)?;
                let secs = ticks / hz;
                Some(TopRow {
                    fields: vec![
                        uid_of(pid),
                        pid.to_string(),
                        ppid.to_string(),
                        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
                        cmdline(pid),
                    ],
                })
            })
            .collect();
        Ok(TopResponse {
            titles: ["UID", "PID", "PPID", "TIME", "CMD"]
                .map(String::from)
                .to_vec(),
            processes,
        })
    }
}
