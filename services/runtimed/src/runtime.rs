//! The runtime daemon's logic, independent of gRPC: the container table,
//! where each container's files live, and the clients of the other daemons.
//! Lifecycle operations live in `create.rs`, `lifecycle.rs`, `logs.rs`,
//! `inspect.rs` and `top.rs` as further `impl Runtime` blocks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rdock_common::client::{connect_lazy, Conn};
use rdock_containerfs::VolumeStore;
use rdock_proto::image::v1::image_service_client::ImageServiceClient;
use rdock_proto::net::v1::net_service_client::NetServiceClient;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Container;
use crate::store::Store;

/// What the daemon keeps in memory about a container it knows.
pub struct Live {
    /// `None` while running, the exit code once it stopped.
    pub exit: watch::Sender<Option<i32>>,
    /// Becomes true when the container has been removed.
    pub removed: watch::Sender<bool>,
    /// How many exits this daemon has recorded (grows once per run).
    pub exits: watch::Sender<u64>,
    /// Serializes lifecycle operations on the container.
    pub op: tokio::sync::Mutex<()>,
    /// Held by a `cp` that has the stopped container's root filesystem
    /// mounted for the length of its stream, and by a start or removal
    /// while they mount or remove it, so the two never share the overlay's
    /// upper directory (see `copy.rs`). Taken after `op`, never before.
    pub copies: Arc<tokio::sync::Mutex<()>>,
}

pub struct Runtime {
    pub(crate) store: Store,
    pub(crate) cfg: Config,
    pub(crate) imaged: ImageServiceClient<Conn>,
    pub(crate) netd: NetServiceClient<Conn>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// The host's hard RLIMIT_NOFILE: containers never ask for more.
    pub(crate) nofile_hard: u64,
    pub(crate) shim_bin: PathBuf,
    /// Named and anonymous volumes, `<state>/volumes`.
    pub(crate) volumes: Arc<VolumeStore>,
    /// Orders decisions about volumes in use against the records that use
    /// them: a create holds it shared from planning its mounts until its
    /// record is stored; removing or pruning volumes (and rolling back a
    /// failed create) holds it exclusively while checking the records and
    /// removing. Taken after a container's `op` lock, never before.
    pub(crate) volume_lock: tokio::sync::RwLock<()>,
}

impl Runtime {
    pub fn open(cfg: Config) -> Result<Arc<Self>> {
        let d = &cfg.daemon;
        for dir in [d.state_dir.join("containers"), d.run_dir.clone()] {
            std::fs::create_dir_all(&dir)
                .map_err(crate::error::io(format!("create {}", dir.display())))?;
        }
        for dir in [d.run_dir.join("shims"), d.run_dir.join("runc")] {
            std::fs::create_dir_all(&dir)
                .map_err(crate::error::io(format!("create {}", dir.display())))?;
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(crate::error::io(format!("chmod {}", dir.display())))?;
        }
        let tls = d.tls("runtimed");
        let imaged = connect_lazy(&cfg.imaged.host, cfg.imaged.base_port, &tls)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let netd = connect_lazy(&cfg.netd.host, cfg.netd.base_port, &tls)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let nofile_hard =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map(|(_, hard)| hard)
                .unwrap_or(1024);
        let shim_bin = match &cfg.shim_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(crate::error::io("locate the daemon's binary"))?
                .with_file_name("rdock-shim"),
        };
        let volumes = Arc::new(VolumeStore::open(d.state_dir.join("volumes"))?);
        Ok(Arc::new(Runtime {
            store: Store::open(&d.state_dir.join("containers.redb"))?,
            volumes,
            volume_lock: tokio::sync::RwLock::new(()),
            imaged: ImageServiceClient::new(imaged),
            netd: NetServiceClient::new(netd),
            live: Mutex::new(HashMap::new()),
            nofile_hard,
            shim_bin,
            cfg,
        }))
    }

    /// The in-memory state of a container, made on first use.
    pub(crate) fn live(&self, id: &str) -> Arc<Live> {
        let mut m = self.live.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Live {
                    exit: watch::channel(Some(0)).0,
                    removed: watch::channel(false).0,
                    exits: watch::channel(0).0,
                    op: tokio::sync::Mutex::new(()),
                    copies: Arc::new(tokio::sync::Mutex::new(())),
                })
            })
            .clone()
    }

    pub(crate) fn forget(&self, id: &str) {
        let mut m = self.live.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(id);
    }

    pub fn find(&self, key: &str) -> Result<Container> {
        self.store.find(key)
    }

    /// `state/containers/<id>`: bundle, rootfs mount point, logs, etc files.
    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.cfg.daemon.state_dir.join("containers").join(id)
    }

    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.dir(id).join("rootfs")
    }

    /// Where the shim keeps its files (exit.json, runc.log, shim.log).
    pub(crate) fn shim_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("shim")
    }

    pub(crate) fn log_file(&self, id: &str) -> PathBuf {
        self.dir(id).join("container.log")
    }

    pub(crate) fn socket(&self, id: &str) -> PathBuf {
        self.cfg
            .daemon
            .run_dir
            .join("shims")
            .join(format!("{}.sock", &id[..id.len().min(32)]))
    }

    pub(crate) fn netns(&self, id: &str) -> PathBuf {
        self.cfg.daemon.run_dir.join("netns").join(id)
    }

    pub(crate) fn runc_root(&self) -> PathBuf {
        self.cfg.daemon.run_dir.join("runc")
    }

    pub(crate) fn runtime_bin(&self, c: &Container) -> String {
        if c.host.runtime.is_empty() {
            self.cfg.runtime.clone()
        } else {
            c.host.runtime.clone()
        }
    }

    /// The cgroup (cgroupfs path) a container runs in.
    pub(crate) fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.cfg.cgroup_parent)
    }

    pub fn state_dir(&self) -> &Path {
        &self.cfg.daemon.state_dir
    }
}
