//! What the runtime daemon records about a container.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The process and identity settings, Docker's `Config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerConfig {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    /// The command after the entrypoint.
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub labels: BTreeMap<String, String>,
    /// The image as the user named it.
    pub image: String,
    pub stop_signal: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always", "unless-stopped"
    pub name: String,
    pub max_retries: u32,
}

/// Docker's `HostConfig`: how the container is run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostConfig {
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub init: bool,
    pub runtime: String,
    /// "bridge", "none", "host" or a user-defined network.
    pub network_mode: String,
    /// Requested published ports (host port 0 = any).
    #[serde(default)]
    pub port_bindings: Vec<PortBinding>,
    /// `NAME[:ALIAS]` of containers to link to.
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub network_aliases: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

/// Where the network daemon put the container in its current run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkState {
    pub network: String,
    pub network_id: String,
    pub ip_address: String,
    pub prefix_len: u32,
    pub gateway: String,
    pub mac_address: String,
    /// Published ports as assigned.
    pub ports: Vec<PortBinding>,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i32,
    /// RFC 3339; empty when never started.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Set by `stop`/`kill` from a user: restart policies leave it stopped.
    pub stopped_by_user: bool,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootfsMount {
    /// Topmost first.
    pub lowerdirs: Vec<String>,
    pub upperdir: String,
    pub workdir: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    pub image_id: String,
    pub config: ContainerConfig,
    pub host: HostConfig,
    pub state: State,
    /// The overlay the root filesystem is mounted from.
    #[serde(default)]
    pub rootfs: RootfsMount,
    /// Network settings handed back by the network daemon (empty when not
    /// running).
    #[serde(default)]
    pub net: NetworkState,
    /// Ports the image exposes (`80/tcp`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// The full command line, entrypoint first.
    pub fn args(&self) -> Vec<String> {
        self.config
            .entrypoint
            .iter()
            .chain(self.config.cmd.iter())
            .cloned()
            .collect()
    }
}
