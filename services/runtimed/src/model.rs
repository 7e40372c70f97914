//! What the runtime daemon records about a container.

use std::collections::BTreeMap;

use rdock_containerfs::MountPoint;
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
    /// `--read-only`: the root filesystem is mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// `--volumes-from` as given.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// Docker's `Binds`: the host directories and named volumes asked for,
    /// `SOURCE:TARGET[:OPTIONS]`.
    #[serde(default)]
    pub binds: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

/// Where the network daemon put the container on one network in its
/// current run.
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
    /// Name servers the network asks for (its own DNS server on
    /// user-defined networks).
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

/// One network the container is on (Docker's `EndpointSettings`): what was
/// asked, and where the network daemon put it while the container runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkAttachment {
    /// The network's name: "bridge", "none", "host" or a user-defined one.
    pub network: String,
    /// Extra names on this network (`--network-alias`, `connect --alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Empty while the container is not attached.
    #[serde(default)]
    pub state: NetworkState,
}

impl NetworkAttachment {
    pub fn new(network: &str, aliases: Vec<String>) -> Self {
        NetworkAttachment {
            network: network.to_string(),
            aliases,
            state: NetworkState::default(),
        }
    }
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
    /// Records written before a container could be on several networks:
    /// the one network's state. Moved into `networks` on load (see
    /// [`Container::migrate`]), never written.
    #[serde(default, rename = "net", skip_serializing)]
    pub legacy_net: NetworkState,
    /// Every network the container is on, in the order joined; the first
    /// one publishes the ports. `None` only in records written before
    /// `network connect` existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkAttachment>>,
    /// Ports the image exposes (`80/tcp`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// Variables of `--link`s as set at the last start (an exec sees them
    /// too, as Docker's does).
    #[serde(default)]
    pub link_env: Vec<String>,
    /// The container's own mounts (`-v`, `--mount`, `--tmpfs`,
    /// `--volumes-from`), validated at create; every start mounts these.
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// Brings a record written by an older daemon to today's shape: its one
    /// network (the network mode, its aliases, its state) becomes the list
    /// of networks.
    pub fn migrate(&mut self) {
        if self.networks.is_none() {
            let legacy = std::mem::take(&mut self.legacy_net);
            self.networks = Some(vec![NetworkAttachment {
                network: self.host.network_mode.clone(),
                aliases: self.host.network_aliases.clone(),
                state: legacy,
            }]);
        }
    }

    /// The networks the container is on.
    pub fn networks(&self) -> &[NetworkAttachment] {
        self.networks.as_deref().unwrap_or_default()
    }

    pub fn networks_mut(&mut self) -> &mut Vec<NetworkAttachment> {
        self.migrate();
        self.networks.get_or_insert_with(Vec::new)
    }

    /// The network named `name`, if the container is on it.
    pub fn network(&self, name: &str) -> Option<&NetworkAttachment> {
        self.networks().iter().find(|a| a.network == name)
    }

    /// The state of the first network that gave the container an address
    /// (Docker's top-level `NetworkSettings.IPAddress` and friends).
    pub fn primary_net(&self) -> Option<&NetworkState> {
        self.networks()
            .iter()
            .map(|a| &a.state)
            .find(|s| !s.ip_address.is_empty())
    }

    /// The container's first address; empty when it has none.
    pub fn ip(&self) -> &str {
        self.primary_net().map_or("", |s| s.ip_address.as_str())
    }

    /// Every address the container has, one per network.
    pub fn ips(&self) -> Vec<String> {
        self.networks()
            .iter()
            .filter(|a| !a.state.ip_address.is_empty())
            .map(|a| a.state.ip_address.clone())
            .collect()
    }

    /// Published ports as assigned, over all networks.
    pub fn ports(&self) -> Vec<PortBinding> {
        self.networks()
            .iter()
            .flat_map(|a| a.state.ports.iter().cloned())
            .collect()
    }

    /// Name servers of every network the container is on, first network
    /// first, without repeats.
    pub fn dns_servers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.networks().iter().flat_map(|a| &a.state.dns_servers) {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }

    /// Forgets where the network daemon put the container (after its run).
    pub fn clear_network_state(&mut self) {
        for a in self.networks_mut() {
            a.state = NetworkState::default();
        }
    }

    /// Names of the volumes the container mounts.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mount_points
            .iter()
            .filter(|p| p.kind == rdock_containerfs::MountKind::Volume)
            .map(|p| p.name.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_from_before_several_networks_keeps_its_network() {
        // As an older daemon wrote it: one network, no `networks`.
        let old = r#"{"id":"abc","name":"web","created":"","image_id":"",
            "config":{"hostname":"h","user":"","env":[],"cmd":["sh"],"entrypoint":[],
              "working_dir":"","tty":false,"open_stdin":false,"labels":{},"image":"busybox",
              "stop_signal":""},
            "host":{"restart":{"name":"no","max_retries":0},"auto_remove":false,"memory":0,
              "nano_cpus":0,"pids_limit":0,"init":false,"runtime":"","network_mode":"front",
              "network_aliases":["www"]},
            "state":{"status":"running","pid":7,"exit_code":0,"started_at":"","finished_at":"",
              "restart_count":0,"stopped_by_user":false,"error":""},
            "net":{"network":"front","network_id":"","ip_address":"10.1.0.2","prefix_len":24,
              "gateway":"10.1.0.1","mac_address":"02:42:0a:01:00:02",
              "ports":[{"host_ip":"","host_port":8080,"container_port":80,"protocol":"tcp"}],
              "aliases":["www"]}}"#;
        let mut c: Container = serde_json::from_str(old).unwrap();
        c.migrate();
        let nets = c.networks();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].network, "front");
        assert_eq!(nets[0].aliases, vec!["www"]);
        assert_eq!(nets[0].state.ip_address, "10.1.0.2");
        assert_eq!(c.ip(), "10.1.0.2");
        assert_eq!(c.ports()[0].host_port, 8080);
        // Written back in the new shape, it reads the same, and stays so.
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("\"net\""), "{text}");
        let mut again: Container = serde_json::from_str(&text).unwrap();
        again.migrate();
        assert_eq!(again, c);
        // Written before volumes: no mounts, a writable root.
        assert!(c.mount_points.is_empty());
        assert!(!c.host.read_only);
        assert!(c.host.binds.is_empty() && c.host.volumes_from.is_empty());
    }

    #[test]
    fn mount_points_are_kept_in_the_record() {
        let mut c = Container {
            mount_points: vec![rdock_containerfs::MountPoint {
                kind: rdock_containerfs::MountKind::Volume,
                source: "/v/x/_data".into(),
                destination: "/x".into(),
                name: "x".into(),
                read_only: false,
                propagation: String::new(),
                relabel: String::new(),
                no_copy: false,
                create_host_path: false,
                anonymous: true,
                tmpfs_options: vec![],
            }],
            ..Default::default()
        };
        c.host.read_only = true;
        let again: Container = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        assert_eq!(again.volume_names().collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn a_container_disconnected_from_every_network_stays_so() {
        let mut c = Container::default();
        c.host.network_mode = "bridge".into();
        c.networks = Some(vec![]);
        let mut again: Container =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        again.migrate();
        assert!(again.networks().is_empty());
        assert_eq!(again.ip(), "");
    }

    #[test]
    fn addresses_ports_and_name_servers_over_networks() {
        let mut c = Container::default();
        let mut a = NetworkAttachment::new("bridge", vec![]);
        a.state.ip_address = "10.0.0.2".into();
        a.state.ports = vec![PortBinding {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            ..Default::default()
        }];
        let mut b = NetworkAttachment::new("front", vec!["api".into()]);
        b.state.ip_address = "10.1.0.2".into();
        b.state.dns_servers = vec!["10.1.0.1".into()];
        let mut d = NetworkAttachment::new("back", vec![]);
        d.state.ip_address = "10.2.0.2".into();
        d.state.dns_servers = vec!["10.2.0.1".into(), "10.1.0.1".into()];
        c.networks = Some(vec![a, b, d]);
        assert_eq!(c.ip(), "10.0.0.2");
        assert_eq!(c.ips(), vec!["10.0.0.2", "10.1.0.2", "10.2.0.2"]);
        assert_eq!(c.ports().len(), 1);
        assert_eq!(c.dns_servers(), vec!["10.1.0.1", "10.2.0.1"]);
        assert_eq!(c.network("front").unwrap().aliases, vec!["api"]);
        c.clear_network_state();
        assert_eq!(c.ip(), "");
        assert!(c.dns_servers().is_empty());
        assert_eq!(c.networks().len(), 3);
    }
}
