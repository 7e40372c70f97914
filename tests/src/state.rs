//! Reading the daemons' state and run directories, to check what a pull, a
//! container or a removal left on disk. The image daemon's: `blobs/sha256/<hex>`,
//! `ingest/`, `snapshots/`, `containers/<id>/`. The runtime daemon's: state
//! `containers.redb` and `containers/<id>/` (bundle, `rootfs`, `container.log`,
//! etc files, `shim/exit.json`); run `shims/<id>.sock`, `netns/<id>`, `runc/`.

use std::path::{Path, PathBuf};

/// The image daemon's state directory.
#[derive(Debug, Clone)]
pub struct ImagedState {
    pub dir: PathBuf,
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_below(&p)),
            _ => out.push(p),
        }
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl ImagedState {
    /// Everything under `ingest/` (in-flight downloads).
    pub fn ingest_files(&self) -> Vec<PathBuf> {
        files_below(&self.dir.join("ingest"))
    }

    /// Names of the complete blobs, `<hex>` under `blobs/sha256/`.
    pub fn blobs(&self) -> Vec<String> {
        names_in(&self.dir.join("blobs/sha256"))
    }

    /// Whether the blob `sha256:<hex>` is in the content store.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.dir.join("blobs/sha256").join(hex_of(digest)).exists()
    }

    /// Blobs whose content does not hash to their name: `(name, actual)`.
    pub fn blobs_not_matching_their_digest(&self) -> Vec<(String, String)> {
        self.blobs()
            .into_iter()
            .filter_map(|hex| {
                let bytes = std::fs::read(self.dir.join("blobs/sha256").join(&hex)).ok()?;
                let actual = crate::sha256_digest(&bytes);
                (actual != format!("sha256:{hex}")).then_some((hex, actual))
            })
            .collect()
    }

    /// Names of the entries of `snapshots/`.
    pub fn snapshots(&self) -> Vec<String> {
        names_in(&self.dir.join("snapshots"))
    }

    /// Containers' root filesystem snapshots, `containers/<id>`.
    pub fn container_snapshots(&self) -> Vec<String> {
        names_in(&self.dir.join("containers"))
    }

    /// In-flight snapshots (`tmp-*`).
    pub fn tmp_snapshots(&self) -> Vec<String> {
        self.snapshots()
            .into_iter()
            .filter(|n| n.starts_with("tmp-"))
            .collect()
    }

    /// The `fs` directory of the snapshot of chain id `sha256:<hex>`: the
    /// entry of `snapshots/` whose name ends with the hex.
    #[track_caller]
    pub fn snapshot_fs(&self, chain_id: &str) -> PathBuf {
        let hex = hex_of(chain_id);
        let names = self.snapshots();
        let found: Vec<&String> = names.iter().filter(|n| n.ends_with(hex)).collect();
        match found.as_slice() {
            [one] => self.dir.join("snapshots").join(one).join("fs"),
            _ => panic!(
                "expected one snapshot named by chain id {chain_id} under {}, found {:?}",
                self.dir.join("snapshots").display(),
                names
            ),
        }
    }
}

/// The runtime daemon's state and run directories.
#[derive(Debug, Clone)]
pub struct RuntimedState {
    pub state: PathBuf,
    pub run: PathBuf,
}

impl RuntimedState {
    /// `containers/<id>/` of the state directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.state.join("containers").join(id)
    }

    /// The ids that have a directory under `containers/`.
    pub fn container_dirs(&self) -> Vec<String> {
        names_in(&self.state.join("containers"))
    }

    /// The container's root filesystem mount point.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// The shim's record of how the container ended (`shim/exit.json`).
    pub fn exit_record(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("shim/exit.json")
    }

    /// The container's log file.
    pub fn log_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("container.log")
    }

    /// The network namespace bind mount of container `id`.
    pub fn netns(&self, id: &str) -> PathBuf {
        self.run.join("netns").join(id)
    }

    /// Entries of `netns/` (one per container that has a namespace).
    pub fn netns_entries(&self) -> Vec<String> {
        names_in(&self.run.join("netns"))
    }

    /// Entries of `shims/` (one socket per live shim).
    pub fn shim_sockets(&self) -> Vec<String> {
        names_in(&self.run.join("shims"))
    }

    /// The OCI runtime's state root (`runc --root`).
    pub fn runc_root(&self) -> PathBuf {
        self.run.join("runc")
    }

    /// The containers `runc --root <run>/runc list -q` knows (`Err` when runc
    /// fails).
    pub fn runc_containers(&self) -> Result<Vec<String>, String> {
        let root = self.runc_root();
        if !root.exists() {
            return Ok(Vec::new());
        }
        let out = std::process::Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
            .map_err(|e| format!("runc list: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "runc --root {} list: {}: {}",
                root.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// `runc delete --force` of every container runc knows here.
    pub fn runc_delete_all(&self) {
        for id in self.runc_containers().unwrap_or_default() {
            let _ = std::process::Command::new("runc")
                .arg("--root")
                .arg(self.runc_root())
                .args(["delete", "--force", &id])
                .output();
        }
    }
}
