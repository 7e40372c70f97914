//! Creating a container: records, root filesystem, network namespace,
//! bundle, and a shim with the OCI runtime's `create` done.

use std::sync::Arc;

use rdock_containerfs::{inherit, parse_volumes_from, seed_volumes, Plan};
use rdock_proto::image::v1::{PrepareRootfsRequest, RemoveRootfsRequest};
use rdock_proto::net::v1::{AttachRequest, DetachRequest, Endpoint, PortMapping};
use rdock_proto::runtime::v1::{CreateContainerRequest, Mount};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{
    Container, ContainerConfig, HostConfig, NetworkAttachment, NetworkState, PortBinding,
    RestartPolicy, RootfsMount,
};
use crate::runtime::Runtime;
use crate::{etcfiles, links, mounts, names, spec, users};
use rdock_shim::{self as shim, LaunchOptions};

/// The parts of an image config a container starts from.
#[derive(Debug, Default)]
struct ImageDefaults {
    env: Vec<String>,
    cmd: Vec<String>,
    entrypoint: Vec<String>,
    working_dir: String,
    user: String,
    stop_signal: String,
    exposed_ports: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn image_defaults(config_json: &str) -> Result<ImageDefaults> {
    let v: Value = serde_json::from_str(config_json)
        .map_err(|e| Error::Internal(format!("image config is not JSON: {e}")))?;
    let c = v.get("config");
    let s = |k: &str| {
        c.and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(ImageDefaults {
        env: strings(c.and_then(|c| c.get("Env"))),
        cmd: strings(c.and_then(|c| c.get("Cmd"))),
        entrypoint: strings(c.and_then(|c| c.get("Entrypoint"))),
        working_dir: s("WorkingDir"),
        user: s("User"),
        stop_signal: s("StopSignal"),
        exposed_ports: c
            .and_then(|c| c.get("ExposedPorts"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    })
}

/// Docker's `HostConfig.Binds` for the requested mounts: host directories
/// and named volumes as `SOURCE:TARGET[:OPTIONS]`. (`-v` and `--mount`
/// arrive alike for volumes, so a `--mount` of a named volume is listed
/// too; Docker keeps that one in `HostConfig.Mounts`.)
fn binds(mounts: &[Mount]) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| (m.r#type == "bind" || m.r#type == "volume") && !m.source.is_empty())
        .map(|m| {
            let mut opts: Vec<&str> = Vec::new();
            if m.read_only {
                opts.push("ro");
            }
            if !m.relabel.is_empty() {
                opts.push(&m.relabel);
            }
            if !matches!(m.propagation.as_str(), "" | "rprivate") {
                opts.push(&m.propagation);
            }
            if m.no_copy {
                opts.push("nocopy");
            }
            let mut b = format!("{}:{}", m.source, m.target);
            if !opts.is_empty() {
                b.push(':');
                b.push_str(&opts.join(","));
            }
            b
        })
        .collect()
}

fn restart_policy(r: Option<&rdock_proto::runtime::v1::RestartPolicy>) -> Result<RestartPolicy> {
    let (name, max) = r
        .map(|r| (r.name.as_str(), r.max_retries))
        .unwrap_or(("no", 0));
    match name {
        "" | "no" => Ok(RestartPolicy {
            name: "no".into(),
            max_retries: 0,
        }),
        "always" | "unless-stopped" if max == 0 => Ok(RestartPolicy {
            name: name.into(),
            max_retries: 0,
        }),
        "on-failure" => Ok(RestartPolicy {
            name: name.into(),
            max_retries: max,
        }),
        "always" | "unless-stopped" => Err(Error::InvalidArgument(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        ))),
        other => Err(Error::InvalidArgument(format!(
            "invalid restart policy '{other}'"
        ))),
    }
}

impl Runtime {
    /// Creates a container; nothing is left behind when it fails.
    #[tracing::instrument(skip_all, fields(image = %req.image, name = %req.name))]
    pub async fn create(self: &Arc<Self>, req: CreateContainerRequest) -> Result<Container> {
        if !req.name.is_empty() {
            names::validate(&req.name).map_err(Error::InvalidArgument)?;
        }
        let restart = restart_policy(req.restart.as_ref())?;
        if req.auto_remove && restart.name != "no" {
            return Err(Error::InvalidArgument(
                "conflicting options: --restart and --rm".into(),
            ));
        }
        for (what, v) in [
            ("memory", req.memory),
            ("cpus", req.nano_cpus),
            ("pids-limit", req.pids_limit),
        ] {
            if v < 0 {
                return Err(Error::InvalidArgument(format!(
                    "invalid {what}: must not be negative"
                )));
            }
        }
        if req.memory > 0 && req.memory < 6 << 20 {
            return Err(Error::InvalidArgument(
                "minimum memory limit allowed is 6MB".into(),
            ));
        }
        for e in &req.env {
            if e.is_empty() || e.starts_with('=') || e.contains('\0') {
                return Err(Error::InvalidArgument(format!(
                    "invalid environment variable: {e:?}"
                )));
            }
        }
        // The mounts are checked, and their volumes made, first. Volume
        // removals wait until the record naming those volumes is stored.
        let volumes_guard = self.volume_lock.read().await;
        let plan = self.plan_mounts(&req).await?;
        let id = hex::encode(rand::random::<[u8; 32]>());
        let prepared = self
            .imaged
            .clone()
            .prepare_rootfs(PrepareRootfsRequest {
                container_id: id.clone(),
                image: req.image.clone(),
            })
            .await
            .map_err(|s| self.peer_error("imaged", s));
        let prepared = match prepared {
            Ok(p) => p.into_inner(),
            Err(e) => {
                drop(volumes_guard);
                self.rollback_mounts(&plan).await;
                return Err(e);
            }
        };
        let res = self
            .create_with_rootfs(
                &id,
                req,
                restart,
                prepared,
                plan.points.clone(),
                volumes_guard,
            )
            .await;
        if res.is_err() {
            let _ = self
                .imaged
                .clone()
                .remove_rootfs(RemoveRootfsRequest {
                    container_id: id.clone(),
                })
                .await;
            let _ = std::fs::remove_dir_all(self.dir(&id));
            self.rollback_mounts(&plan).await;
        }
        res
    }

    /// Validates the request's mounts and those it inherits through
    /// `--volumes-from`, and creates the volumes they name (see
    /// [`rdock_containerfs::plan`]). Nothing is left when it fails.
    async fn plan_mounts(&self, req: &CreateContainerRequest) -> Result<Plan> {
        let mut inherited = Vec::new();
        for spec in &req.volumes_from {
            let from = parse_volumes_from(spec)?;
            let other = self.store.find(&from.container)?;
            inherited.extend(inherit(&from, &other.mount_points));
        }
        if req.mounts.is_empty() && inherited.is_empty() {
            return Ok(Plan::default());
        }
        let volumes = self.volumes.clone();
        let mounts = req.mounts.clone();
        tokio::task::spawn_blocking(move || rdock_containerfs::plan(&volumes, &mounts, &inherited))
            .await
            .map_err(crate::error::join("plan mounts"))?
            .map_err(Error::from)
    }

    async fn create_with_rootfs(
        self: &Arc<Self>,
        id: &str,
        req: CreateContainerRequest,
        restart: RestartPolicy,
        prepared: rdock_proto::image::v1::PrepareRootfsResponse,
        mount_points: Vec<rdock_containerfs::MountPoint>,
        volumes_guard: tokio::sync::RwLockReadGuard<'_, ()>,
    ) -> Result<Container> {
        let img = image_defaults(&prepared.config_json)?;
        let binds = binds(&req.mounts);
        let entrypoint = if req.entrypoint_set {
            req.entrypoint
        } else {
            img.entrypoint
        };
        let cmd = if !req.cmd.is_empty() {
            req.cmd
        } else if req.entrypoint_set {
            vec![]
        } else {
            img.cmd
        };
        if entrypoint.is_empty() && cmd.is_empty() {
            return Err(Error::InvalidArgument("no command specified".into()));
        }
        let network = if req.network.is_empty() {
            "bridge".to_string()
        } else {
            req.network.clone()
        };
        let hostname = match (req.hostname.is_empty(), network.as_str()) {
            (false, _) => req.hostname,
            (true, "host") => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| id[..12].to_string()),
            (true, _) => id[..12].to_string(),
        };
        for l in &req.links {
            links::parse(l).map_err(Error::InvalidArgument)?;
        }
        if !req.network_aliases.is_empty() && ["bridge", "none", "host"].contains(&network.as_str())
        {
            return Err(Error::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        let mut port_bindings: Vec<PortBinding> = req
            .ports
            .iter()
            .map(|p| PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: if p.protocol.is_empty() {
                    "tcp".into()
                } else {
                    p.protocol.clone()
                },
            })
            .collect();
        if req.publish_all {
            for e in &img.exposed_ports {
                let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
                let Ok(port) = port.parse::<u32>() else {
                    continue;
                };
                if !port_bindings
                    .iter()
                    .any(|b| b.container_port == port && b.protocol == proto)
                {
                    port_bindings.push(PortBinding {
                        host_ip: String::new(),
                        host_port: 0,
                        container_port: port,
                        protocol: proto.to_string(),
                    });
                }
            }
        }
        let network_name = network.clone();
        let network_aliases = req.network_aliases.clone();
        let mut c = Container {
            id: id.to_string(),
            name: req.name.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            image_id: prepared.image_id.clone(),
            config: ContainerConfig {
                hostname,
                user: if req.user.is_empty() {
                    img.user
                } else {
                    req.user
                },
                env: spec::merge_env(&img.env, &req.env),
                cmd,
                entrypoint,
                working_dir: if req.workdir.is_empty() {
                    img.working_dir
                } else {
                    req.workdir
                },
                tty: req.tty,
                open_stdin: req.open_stdin,
                labels: req.labels.into_iter().collect(),
                image: req.image,
                stop_signal: img.stop_signal,
            },
            host: HostConfig {
                restart,
                auto_remove: req.auto_remove,
                memory: req.memory,
                nano_cpus: req.nano_cpus,
                pids_limit: req.pids_limit,
                init: req.init,
                runtime: req.runtime,
                network_mode: network,
                port_bindings,
                links: req.links,
                network_aliases: req.network_aliases,
                read_only: req.read_only,
                volumes_from: req.volumes_from,
                binds,
            },
            mount_points,
            networks: Some(vec![NetworkAttachment::new(&network_name, network_aliases)]),
            exposed_ports: img.exposed_ports,
            rootfs: RootfsMount {
                lowerdirs: prepared.lowerdirs,
                upperdir: prepared.upperdir,
                workdir: prepared.workdir,
            },
            ..Default::default()
        };
        std::fs::create_dir_all(self.dir(id)).map_err(crate::error::io("create container dir"))?;
        self.claim_name(&mut c)?;
        // The record names its volumes now: they count as in use.
        drop(volumes_guard);
        if let Err(e) = self.prepare_run(&mut c).await {
            let _ = self.store.remove(&c);
            return Err(e);
        }
        self.store.update(&c)?;
        Ok(c)
    }

    /// An error from another daemon; "cannot reach" when it is down.
    pub(crate) fn peer_error(&self, daemon: &str, s: tonic::Status) -> Error {
        if s.code() != tonic::Code::Unavailable {
            return Error::from(s);
        }
        let addr = if daemon == "netd" {
            &self.cfg.netd
        } else {
            &self.cfg.imaged
        };
        let cause = std::error::Error::source(&s)
            .map(rdock_common::client::error_chain)
            .unwrap_or_else(|| s.message().to_string());
        Error::Unavailable(format!(
            "cannot reach rdock-{daemon} at {}:{}: {cause}",
            addr.host, addr.base_port
        ))
    }

    /// Records the container under its name, generating one if none given.
    fn claim_name(&self, c: &mut Container) -> Result<()> {
        if !c.name.is_empty() {
            return self.store.insert(c);
        }
        for attempt in 0..10 {
            c.name = names::generate(attempt);
            match self.store.insert(c) {
                Err(Error::AlreadyExists(_)) => continue,
                other => return other,
            }
        }
        Err(Error::Internal(
            "could not generate a free container name".into(),
        ))
    }

    /// Everything a run of the container needs, up to the runtime's
    /// `create`: mounted rootfs, network namespace, etc files, bundle, shim.
    /// Undone completely on failure.
    pub(crate) async fn prepare_run(self: &Arc<Self>, c: &mut Container) -> Result<()> {
        let res = self.prepare_run_inner(c).await;
        if res.is_err() {
            self.teardown_run(c).await;
        }
        res
    }

    async fn prepare_run_inner(self: &Arc<Self>, c: &mut Container) -> Result<()> {
        let id = c.id.clone();
        let rootfs = self.rootfs(&id);
        if !mounts::is_mounted(&rootfs) {
            mounts::mount_overlay(
                &c.rootfs.lowerdirs,
                &c.rootfs.upperdir,
                &c.rootfs.workdir,
                &rootfs,
            )?;
        }
        if !c.mount_points.is_empty() {
            // Bind sources made or checked, new volumes seeded from the
            // image, before the runtime mounts them.
            let volumes = self.volumes.clone();
            let points = c.mount_points.clone();
            let root = rootfs.clone();
            tokio::task::spawn_blocking(move || {
                rdock_containerfs::prepare_start(&points, None)?;
                seed_volumes(&volumes, &root, &points).map(drop)
            })
            .await
            .map_err(crate::error::join("prepare mounts"))?
            .map_err(Error::from)?;
        }
        let user = users::resolve(&rootfs, &c.config.user)?;
        let host_net = c.host.network_mode == "host";
        let netns = self.netns(&id);
        if !host_net && !netns.exists() {
            mounts::create_netns(&netns)?;
        }
        let mut link_hosts = Vec::new();
        let mut link_env = Vec::new();
        for l in &c.host.links {
            let (name, alias) = links::parse(l).map_err(Error::InvalidArgument)?;
            let target = self.store.find(&name).map_err(|_| {
                Error::InvalidArgument(format!("could not get container for {name}"))
            })?;
            if target.state.status != crate::model::Status::Running || target.ip().is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "cannot link to {name}: the container is not running with a network address"
                )));
            }
            let mut names = vec![alias.clone()];
            if alias != target.name {
                names.push(target.name.clone());
            }
            names.push(target.config.hostname.clone());
            link_hosts.push((target.ip().to_string(), names));
            link_env.extend(links::env(&alias, &c.name, &target));
        }
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let host_hosts = if host_net {
            std::fs::read_to_string("/etc/hosts").ok()
        } else {
            None
        };
        // The addresses and name servers come from the network daemon,
        // which attaches the namespace while the runtime creates the
        // container (below); the files are completed in place after.
        let files = etcfiles::write(
            &self.dir(&id),
            &etcfiles::EtcInput {
                hostname: &c.config.hostname,
                ips: &[],
                extra_hosts: link_hosts,
                dns_servers: &[],
                host_resolv: &host_resolv,
                host_hosts: host_hosts.as_deref(),
            },
        )?;
        let env = spec::process_env(
            &link_env,
            &c.config.env,
            &c.config.hostname,
            c.config.tty,
            &user.home,
        );
        c.link_env = link_env;
        let init = if c.host.init {
            Some(init_binary().ok_or_else(|| {
                Error::Conflict("--init needs tini-static (Debian package tini) on the host".into())
            })?)
        } else {
            None
        };
        let bundle_spec = spec::build(&spec::SpecInput {
            args: c.args(),
            env,
            cwd: c.config.working_dir.clone(),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            hostname: c.config.hostname.clone(),
            tty: c.config.tty,
            rootfs: rootfs.clone(),
            netns: (!host_net).then(|| netns.clone()),
            host_network: host_net,
            cgroups_path: self.cgroup(&id),
            memory: c.host.memory,
            nano_cpus: c.host.nano_cpus,
            pids_limit: c.host.pids_limit,
            init,
            files,
            nofile_hard: self.nofile_hard,
            mounts: c.mount_points.clone(),
            read_only: c.host.read_only,
        })?;
        let config_path = self.dir(&id).join("config.json");
        bundle_spec
            .save(&config_path)
            .map_err(|e| Error::Internal(format!("write {}: {e}", config_path.display())))?;
        let shim_dir = self.shim_dir(&id);
        let _ = std::fs::remove_dir_all(&shim_dir);
        std::fs::create_dir_all(&shim_dir).map_err(crate::error::io("create shim dir"))?;
        let opts = LaunchOptions {
            shim_bin: self.shim_bin.clone(),
            id: id.clone(),
            bundle: self.dir(&id),
            state_dir: shim_dir,
            runtime: self.runtime_bin(c),
            runtime_root: self.runc_root(),
            socket: self.socket(&id),
            log_file: self.log_file(&id),
            log_max_size: self.cfg.log_max_size,
            log_max_files: self.cfg.log_max_files,
            stdin: c.config.open_stdin,
            tty: c.config.tty,
            traceparent: current_traceparent(),
        };
        // The network is joined while the runtime creates the container:
        // neither needs the other, and the process only runs at start.
        let attach = async {
            if host_net {
                Ok(())
            } else {
                self.attach_networks(c, &netns).await
            }
        };
        let (attached, launched) = tokio::join!(attach, shim::launch(&opts));
        let launched = launched.map_err(|e| match e.kind {
            shim::LaunchErrorKind::NotFound => Error::CommandNotFound(e.message),
            shim::LaunchErrorKind::Permission => Error::CannotInvoke(e.message),
            shim::LaunchErrorKind::Other => Error::Internal(e.message),
        })?;
        let completed = attached.and_then(|()| {
            if host_net {
                return Ok(());
            }
            etcfiles::update(
                &self.dir(&id),
                &c.config.hostname,
                &c.ips(),
                &c.dns_servers(),
            )
        });
        if let Err(e) = completed {
            self.shutdown_shim(&id).await;
            return Err(e);
        }
        c.state.pid = launched.init_pid;
        Ok(())
    }

    /// Joins the container's namespace to each of its networks, in order;
    /// the first one publishes the ports. Without any network, only the
    /// loopback comes up.
    async fn attach_networks(&self, c: &mut Container, netns: &std::path::Path) -> Result<()> {
        let ports: Vec<PortMapping> = c
            .host
            .port_bindings
            .iter()
            .map(|p| PortMapping {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.clone(),
            })
            .collect();
        let name = c.name.clone();
        let id = c.id.clone();
        let nets = c.networks_mut();
        if nets.is_empty() {
            self.netd_attach(&id, netns, "none", vec![], &name, vec![])
                .await?;
        }
        let mut ports = Some(ports);
        for a in nets.iter_mut() {
            let p = if a.network == "none" {
                vec![]
            } else {
                ports.take().unwrap_or_default()
            };
            a.state = self
                .netd_attach(&id, netns, &a.network, p, &name, a.aliases.clone())
                .await?;
        }
        Ok(())
    }

    /// One netd `Attach`: the container's state on that network.
    pub(crate) async fn netd_attach(
        &self,
        id: &str,
        netns: &std::path::Path,
        network: &str,
        ports: Vec<PortMapping>,
        name: &str,
        aliases: Vec<String>,
    ) -> Result<NetworkState> {
        let attached = self
            .netd
            .clone()
            .attach(AttachRequest {
                container_id: id.to_string(),
                netns_path: netns.display().to_string(),
                network: network.to_string(),
                ports,
                name: name.to_string(),
                aliases,
            })
            .await
            .map_err(|s| self.peer_error("netd", s))?
            .into_inner();
        Ok(attached
            .endpoint
            .map(|ep| network_state(ep, attached.dns_servers))
            .unwrap_or_default())
    }

    /// Undoes [`Runtime::prepare_run`]: no mount, netns or socket is left.
    /// The shim must be gone (or going) already.
    pub(crate) async fn teardown_run(&self, c: &Container) {
        let id = &c.id;
        let _ = std::fs::remove_file(self.socket(id));
        if let Err(e) = mounts::unmount(&self.rootfs(id)) {
            tracing::warn!(container = %id, error = %e, "unmount root filesystem");
        }
        let netns = self.netns(id);
        if netns.exists() {
            let _ = self
                .netd
                .clone()
                .detach(DetachRequest {
                    container_id: id.clone(),
                    network: String::new(),
                })
                .await;
            if let Err(e) = mounts::remove_netns(&netns) {
                tracing::warn!(container = %id, error = %e, "remove network namespace");
            }
        }
    }
}

/// What the network daemon answered to an attach, as recorded.
fn network_state(ep: Endpoint, dns_servers: Vec<String>) -> NetworkState {
    NetworkState {
        dns_servers,
        network: ep.network,
        network_id: String::new(),
        ip_address: ep.ip_address,
        prefix_len: ep.prefix_len,
        gateway: ep.gateway,
        mac_address: ep.mac_address,
        ports: ep
            .ports
            .into_iter()
            .map(|p| PortBinding {
                host_ip: p.host_ip,
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol,
            })
            .collect(),
        aliases: ep.aliases,
    }
}

/// The reaper `--init` runs as PID 1, as Docker's docker-init is tini.
fn init_binary() -> Option<std::path::PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/local/bin/tini-static",
        "/usr/bin/docker-init",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file())
}

/// The current trace context, for the shim.
fn current_traceparent() -> Option<String> {
    let mut md = tonic::metadata::MetadataMap::new();
    rdock_common::telemetry::inject_current(&mut md);
    md.get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_like_dockers_host_config() {
        let m = |typ: &str, source: &str, target: &str| Mount {
            r#type: typ.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        };
        let mut ro = m("bind", "/host/dir", "/mnt");
        ro.read_only = true;
        ro.relabel = "z".into();
        let mut shared = m("bind", "/srv", "/srv");
        shared.propagation = "rshared".into();
        let mut nocopy = m("volume", "data", "/data");
        nocopy.no_copy = true;
        let got = binds(&[
            ro,
            m("volume", "", "/anon"),
            m("tmpfs", "", "/tmp"),
            shared,
            nocopy,
            m("volume", "logs", "/logs"),
        ]);
        assert_eq!(
            got,
            [
                "/host/dir:/mnt:ro,z",
                "/srv:/srv:rshared",
                "data:/data:nocopy",
                "logs:/logs"
            ]
        );
    }

    #[test]
    fn image_defaults_and_policies() {
        let d =
            image_defaults(r#"{"config":{"Cmd":["sh"],"Env":["A=1"],"User":"nobody"}}"#).unwrap();
        assert_eq!(d.cmd, vec!["sh"]);
        assert_eq!(d.user, "nobody");
        assert!(image_defaults("x").is_err());
        let p = |n: &str, m| {
            restart_policy(Some(&rdock_proto::runtime::v1::RestartPolicy {
                name: n.into(),
                max_retries: m,
            }))
        };
        assert_eq!(p("on-failure", 3).unwrap().max_retries, 3);
        assert!(p("always", 2).is_err());
        assert!(p("sometimes", 0).is_err());
        assert_eq!(restart_policy(None).unwrap().name, "no");
    }
}
