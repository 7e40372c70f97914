//! Debian's `docker-registry` on a private loopback port and storage dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{http, ports, procs};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running registry; killed when dropped.
pub struct Registry {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Registry {
    /// Starts the registry and waits until `GET /v2/` answers 200.
    #[track_caller]
    pub fn start() -> Registry {
        if !Path::new(REGISTRY_BIN).exists() {
            panic!("{REGISTRY_BIN} is missing: apt-get install docker-registry");
        }
        let dir = tempfile::Builder::new()
            .prefix("rdock-e2e-registry-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let port = ports::free_ports(1);
        let storage = dir.path().join("storage");
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        std::fs::write(&config, yaml).unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("dup {}: {e}", log_path.display()));
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve").arg(&config);
        let child = procs::die_with_parent(&mut cmd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REGISTRY_BIN}: {e}"));
        let mut reg = Registry {
            dir,
            port,
            child: Some(child),
        };
        reg.wait_ready();
        reg
    }

    #[track_caller]
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "docker-registry exited during start-up ({status}):\n{}",
                    self.log()
                );
            }
            if let Ok(200) = http::get_status(&self.addr(), "/v2/", None) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "docker-registry did not answer GET /v2/ within {READY_WITHIN:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The filesystem driver's root directory.
    pub fn storage_root(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the bytes of blob `sha256:<hex>`.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage_root()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Whether the registry serves a manifest for `repo:tag`.
    pub fn has_manifest(&self, repo: &str, tag: &str) -> bool {
        let accept = "application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
        matches!(
            http::get_status(
                &self.addr(),
                &format!("/v2/{repo}/manifests/{tag}"),
                Some(accept)
            ),
            Ok(200)
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            procs::terminate(&mut child, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!(
                "==== docker-registry ({}) ====\n{}",
                self.addr(),
                self.log()
            );
        }
    }
}
