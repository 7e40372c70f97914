//! What `ps` and `inspect` show of a container, in Docker's shapes.

use chrono::{DateTime, Utc};
use rdock_containerfs::MountPoint;
use rdock_proto::runtime::v1::ContainerSummary;
use serde_json::{json, Value};

use crate::model::{Container, PortBinding, Status};

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Docker's "About a minute", "3 hours", "Less than a second".
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    match s {
        i64::MIN..=0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, `Restarting (1) …`.
pub fn status_line(c: &Container, now: DateTime<Utc>) -> String {
    let since = |t: &str| {
        parse_time(t)
            .map(|t| human_duration(now - t))
            .unwrap_or_default()
    };
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&c.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
    }
}

pub fn summary(c: &Container, now: DateTime<Utc>) -> ContainerSummary {
    ContainerSummary {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.config.image.clone(),
        command: c.args().join(" "),
        created: parse_time(&c.created).map_or(0, |t| t.timestamp()),
        state: c.state.status.as_str().into(),
        status: status_line(c, now),
        ports: ports_column(&c.ports()),
        exit_code: c.state.exit_code,
    }
}

/// Docker's PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`.
pub fn ports_column(ports: &[PortBinding]) -> String {
    let mut ports: Vec<&PortBinding> = ports.iter().collect();
    // Docker's order: container port, host address, host port, protocol.
    ports.sort_by(|a, b| {
        (a.container_port, &a.host_ip, a.host_port, &a.protocol).cmp(&(
            b.container_port,
            &b.host_ip,
            b.host_port,
            &b.protocol,
        ))
    });
    ports
        .iter()
        .map(|p| {
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                p.host_ip.as_str()
            };
            format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "81/tcp": null}`
fn port_map(bindings: &[PortBinding], exposed: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for e in exposed {
        m.insert(e.clone(), Value::Null);
    }
    for p in bindings {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let entry = json!({
            "HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() },
            "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
        });
        match m.get_mut(&key) {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                m.insert(key, json!([entry]));
            }
        }
    }
    Value::Object(m)
}

fn network_settings(c: &Container) -> Value {
    let mut networks = serde_json::Map::new();
    for a in c.networks() {
        let n = &a.state;
        networks.insert(
            a.network.clone(),
            json!({
                "NetworkID": n.network_id,
                "IPAddress": n.ip_address,
                "IPPrefixLen": n.prefix_len,
                "Gateway": n.gateway,
                "MacAddress": n.mac_address,
                "Aliases": if a.aliases.is_empty() { Value::Null } else { json!(a.aliases) },
            }),
        );
    }
    let none = crate::model::NetworkState::default();
    let n = c.primary_net().unwrap_or(&none);
    json!({
        "IPAddress": n.ip_address,
        "IPPrefixLen": n.prefix_len,
        "Gateway": n.gateway,
        "MacAddress": n.mac_address,
        "Ports": port_map(&c.ports(), &c.exposed_ports),
        "Networks": networks,
    })
}

fn or_zero_time(s: &str) -> &str {
    if s.is_empty() {
        "0001-01-01T00:00:00Z"
    } else {
        s
    }
}

/// The container as `docker inspect` shows it.
pub fn inspect(c: &Container, rootfs: &str, log_path: &str) -> Value {
    let st = &c.state;
    let (path, args) = match c.args().split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), vec![]),
    };
    let restart = &c.host.restart;
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": st.status.as_str(),
            "Running": st.status == Status::Running,
            "Paused": false,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": false,
            "Dead": false,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": or_zero_time(&st.started_at),
            "FinishedAt": or_zero_time(&st.finished_at),
        },
        "Image": c.image_id,
        "LogPath": log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": c.host.network_mode,
            "PortBindings": port_map(&c.host.port_bindings, &[]),
            "Links": c.host.links,
            "RestartPolicy": {"Name": restart.name, "MaximumRetryCount": restart.max_retries},
            "AutoRemove": c.host.auto_remove,
            "Memory": c.host.memory,
            "NanoCpus": c.host.nano_cpus,
            "PidsLimit": if c.host.pids_limit > 0 { json!(c.host.pids_limit) } else { Value::Null },
            "Init": c.host.init,
            "Runtime": if c.host.runtime.is_empty() { "runc" } else { c.host.runtime.as_str() },
            "LogConfig": {"Type": "json-file", "Config": {}},
            "Binds": if c.host.binds.is_empty() { Value::Null } else { json!(c.host.binds) },
            "VolumesFrom": if c.host.volumes_from.is_empty() { Value::Null } else { json!(c.host.volumes_from) },
            "ReadonlyRootfs": c.host.read_only,
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": c.rootfs.lowerdirs.join(":"),
                "UpperDir": c.rootfs.upperdir,
                "WorkDir": c.rootfs.workdir,
                "MergedDir": rootfs,
            },
        },
        "Mounts": c.mount_points.iter().map(MountPoint::inspect).collect::<Vec<_>>(),
        "Config": {
            "Hostname": c.config.hostname,
            "User": c.config.user,
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "Env": c.config.env,
            "Cmd": c.config.cmd,
            "Entrypoint": if c.config.entrypoint.is_empty() { Value::Null } else { json!(c.config.entrypoint) },
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "Labels": c.config.labels,
            "StopSignal": if c.config.stop_signal.is_empty() { "SIGTERM" } else { c.config.stop_signal.as_str() },
        },
        "NetworkSettings": network_settings(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_like_docker() {
        let now = Utc::now();
        let mut c = Container::default();
        assert_eq!(status_line(&c, now), "Created");
        c.state.status = Status::Running;
        c.state.started_at = (now - chrono::Duration::seconds(3)).to_rfc3339();
        assert_eq!(status_line(&c, now), "Up 3 seconds");
        c.state.status = Status::Exited;
        c.state.exit_code = 2;
        c.state.finished_at = (now - chrono::Duration::seconds(130)).to_rfc3339();
        assert_eq!(status_line(&c, now), "Exited (2) 2 minutes ago");
        c.config.cmd = vec!["sleep".into(), "5".into()];
        let v = inspect(&c, "/r", "/l");
        assert_eq!(v["Path"], "sleep");
        assert_eq!(v["State"]["ExitCode"], 2);
        assert_eq!(v["State"]["Running"], false);
    }

    #[test]
    fn mounts_binds_and_read_only_like_docker() {
        let mut c = Container::default();
        let v = inspect(&c, "/r", "/l");
        assert_eq!(v["Mounts"], json!([]));
        assert_eq!(v["HostConfig"]["Binds"], Value::Null);
        assert_eq!(v["HostConfig"]["ReadonlyRootfs"], false);
        c.host.read_only = true;
        c.host.binds = vec!["data:/data".into()];
        c.host.volumes_from = vec!["src:ro".into()];
        c.mount_points = vec![MountPoint {
            kind: rdock_containerfs::MountKind::Volume,
            source: "/var/lib/rdock/runtimed/volumes/data/_data".into(),
            destination: "/data".into(),
            name: "data".into(),
            read_only: true,
            propagation: String::new(),
            relabel: String::new(),
            no_copy: false,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec![],
        }];
        let v = inspect(&c, "/r", "/l");
        let m = &v["Mounts"][0];
        assert_eq!(m["Type"], "volume");
        assert_eq!(m["Name"], "data");
        assert_eq!(m["Destination"], "/data");
        assert_eq!(m["RW"], false);
        assert_eq!(v["HostConfig"]["Binds"], json!(["data:/data"]));
        assert_eq!(v["HostConfig"]["VolumesFrom"], json!(["src:ro"]));
        assert_eq!(v["HostConfig"]["ReadonlyRootfs"], true);
    }

    #[test]
    fn every_network_is_shown() {
        use crate::model::NetworkAttachment;
        let mut bridge = NetworkAttachment::new("bridge", vec![]);
        bridge.state.ip_address = "10.0.0.2".into();
        bridge.state.gateway = "10.0.0.1".into();
        bridge.state.ports = vec![PortBinding {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            ..Default::default()
        }];
        let mut front = NetworkAttachment::new("front", vec!["api".into()]);
        front.state.ip_address = "10.1.0.2".into();
        front.state.mac_address = "02:42:0a:01:00:02".into();
        let mut c = Container {
            networks: Some(vec![bridge, front]),
            ..Default::default()
        };
        c.host.network_mode = "bridge".into();
        let v = inspect(&c, "/r", "/l");
        let n = &v["NetworkSettings"];
        assert_eq!(n["IPAddress"], "10.0.0.2");
        assert_eq!(n["Gateway"], "10.0.0.1");
        assert_eq!(n["Networks"]["bridge"]["IPAddress"], "10.0.0.2");
        assert_eq!(n["Networks"]["bridge"]["Aliases"], Value::Null);
        assert_eq!(n["Networks"]["front"]["IPAddress"], "10.1.0.2");
        assert_eq!(n["Networks"]["front"]["MacAddress"], "02:42:0a:01:00:02");
        assert_eq!(n["Networks"]["front"]["Aliases"], json!(["api"]));
        assert_eq!(n["Ports"]["80/tcp"][0]["HostPort"], "8080");
        // Stopped: still on both, without addresses.
        c.clear_network_state();
        let v = inspect(&c, "/r", "/l");
        let n = &v["NetworkSettings"];
        assert_eq!(n["IPAddress"], "");
        assert_eq!(n["Networks"].as_object().unwrap().len(), 2);
        assert_eq!(n["Networks"]["front"]["IPAddress"], "");
        assert_eq!(summary(&c, Utc::now()).ports, "");
    }
}
