//! Snapshots: unpacked layers by chain id under `snapshots/<hex>/fs`, and
//! container root filesystems (overlay upper and work dirs, and the init
//! layer below them) under `containers/<id>/`.
//!
//! A layer is unpacked into `snapshots/tmp-<random>/fs` and renamed to its
//! chain id once complete; `tmp-*` dirs and dirs without a record are
//! removed on start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};
use crate::reference::is_sha256_digest;

#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
    containers: PathBuf,
}

/// The chain ids of a layer stack, bottom first (OCI image spec: the chain
/// id of layer n is sha256 of "chain(n-1) diff_id(n)").
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

fn hex_of(chain: &str) -> Result<&str> {
    if is_sha256_digest(chain) {
        Ok(&chain[7..])
    } else {
        Err(Error::BadContent(format!("malformed chain id {chain:?}")))
    }
}

/// A container id as the runtime daemon hands it over: 1 to 64 lowercase hex
/// digits or a name made of `[a-z0-9_.-]`.
pub fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// A layer being unpacked; deleted on drop unless committed.
pub struct TmpSnapshot {
    dir: PathBuf,
}

impl TmpSnapshot {
    /// Where the layer's files go.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for TmpSnapshot {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Snapshots {
    pub fn open(state: &Path) -> Result<Self> {
        let s = Snapshots {
            root: state.join("snapshots"),
            containers: state.join("containers"),
        };
        for d in [&s.root, &s.containers] {
            std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
        }
        Ok(s)
    }

    /// The unpacked files of a committed snapshot.
    pub fn fs(&self, chain: &str) -> Result<PathBuf> {
        Ok(self.root.join(hex_of(chain)?).join("fs"))
    }

    pub fn exists(&self, chain: &str) -> bool {
        self.fs(chain).is_ok_and(|p| p.is_dir())
    }

    pub fn tmp(&self) -> Result<TmpSnapshot> {
        let dir = self
            .root
            .join(format!("tmp-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("fs")).map_err(io(format!("create {}", dir.display())))?;
        Ok(TmpSnapshot { dir })
    }

    /// Moves a finished layer into place. If another pull committed the same
    /// chain meanwhile, ours is discarded.
    pub fn commit(&self, mut tmp: TmpSnapshot, chain: &str) -> Result<()> {
        let dst = self.root.join(hex_of(chain)?);
        if dst.exists() {
            return Ok(());
        }
        match std::fs::rename(&tmp.dir, &dst) {
            Ok(()) => {
                tmp.dir = PathBuf::new();
                Ok(())
            }
            Err(_) if dst.exists() => Ok(()),
            Err(e) => Err(Error::Io {
                context: format!("commit snapshot {chain}"),
                source: e,
            }),
        }
    }

    pub fn remove(&self, chain: &str) -> Result<()> {
        remove_tree(&self.root.join(hex_of(chain)?))
    }

    /// Removes interrupted unpacks and snapshot dirs no record knows.
    pub fn reconcile(&self, known: &HashSet<String>) -> Result<()> {
        for e in std::fs::read_dir(&self.root).map_err(io("list snapshots"))? {
            let e = e.map_err(io("list snapshots"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&format!("sha256:{name}")) {
                tracing::info!(snapshot = %name, "removing incomplete snapshot");
                remove_tree(&e.path())?;
            }
        }
        Ok(())
    }

    /// The upper and work dirs of a container's root filesystem.
    pub fn container_dirs(&self, id: &str) -> Result<(PathBuf, PathBuf)> {
        if !valid_container_id(id) {
            return Err(Error::InvalidArgument(format!(
                "invalid container id {id:?}"
            )));
        }
        let base = self.containers.join(id);
        Ok((base.join("upper"), base.join("work")))
    }

    /// The init layer of a container's root filesystem (see `initlayer`).
    pub fn init_dir(&self, id: &str) -> Result<PathBuf> {
        if !valid_container_id(id) {
            return Err(Error::InvalidArgument(format!(
                "invalid container id {id:?}"
            )));
        }
        Ok(self.containers.join(id).join("init"))
    }

    pub fn create_container_dirs(&self, id: &str) -> Result<(PathBuf, PathBuf)> {
        let (upper, work) = self.container_dirs(id)?;
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
        }
        Ok((upper, work))
    }

    pub fn remove_container_dirs(&self, id: &str) -> Result<()> {
        if !valid_container_id(id) {
            return Err(Error::InvalidArgument(format!(
                "invalid container id {id:?}"
            )));
        }
        remove_tree(&self.containers.join(id))
    }

    /// Removes init layers a crash left half made in a container's dir.
    pub fn remove_partial_init(&self, id: &str) -> Result<()> {
        let (upper, _) = self.container_dirs(id)?;
        let Some(dir) = upper.parent() else {
            return Ok(());
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(Error::Io {
                    context: format!("list {}", dir.display()),
                    source: e,
                })
            }
        };
        for e in entries {
            let e = e.map_err(io(format!("list {}", dir.display())))?;
            if e.file_name().to_string_lossy().starts_with("init.tmp-") {
                remove_tree(&e.path())?;
            }
        }
        Ok(())
    }

    /// Container dirs that no record knows (left by a crash between the two).
    pub fn container_ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.containers).map_err(io("list containers"))? {
            let e = e.map_err(io("list containers"))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }
}

fn remove_tree(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            context: format!("remove {}", p.display()),
            source: e,
        }),
    }
}

/// Flushes everything written to the filesystem holding `dir`.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(io(format!("open {}", dir.display())))?;
    nix::unistd::syncfs(&f).map_err(|e| Error::Io {
        context: format!("sync {}", dir.display()),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let want = format!("sha256:{}", hex::encode(Sha256::digest(format!("{a} {b}"))));
        assert_eq!(c[1], want);
    }

    #[test]
    fn tmp_is_removed_unless_committed_and_reconcile_drops_strays() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshots::open(dir.path()).unwrap();
        let t = s.tmp().unwrap();
        std::fs::write(t.fs().join("x"), b"1").unwrap();
        drop(t);
        assert_eq!(
            std::fs::read_dir(dir.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );
        let chain = format!("sha256:{}", "c".repeat(64));
        let t = s.tmp().unwrap();
        s.commit(t, &chain).unwrap();
        assert!(s.exists(&chain));
        let stray = s.tmp().unwrap();
        std::mem::forget(stray);
        s.reconcile(&HashSet::from([chain.clone()])).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("snapshots"))
                .unwrap()
                .count(),
            1
        );
        assert!(s.container_dirs("../x").is_err());
    }
}
