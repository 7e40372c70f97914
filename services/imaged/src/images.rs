//! The image daemon's logic, independent of gRPC: records, lookup, tags,
//! removal, container root filesystems. Pull, push, import and garbage
//! collection live in their own modules as further `impl ImageStore` blocks.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rdock_proto::image::v1::{Image, PrepareRootfsResponse};
use tokio::sync::RwLock;

use crate::error::{Error, Result};
use crate::manifest::{self, Fetched};
use crate::meta::{Meta, RootfsRecord};
use crate::reference;
use crate::registry::Registries;
use crate::snapshot::{chain_ids, Snapshots};
use crate::store::ContentStore;
use crate::unpack::Limits;

/// A progress event of a pull or push, per layer or for the whole image.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Layer {
        digest: String,
        current: u64,
        total: u64,
        phase: &'static str,
    },
    Status(String),
}

/// Where progress goes; a closed receiver (client gone) is fine.
pub type ProgressTx = tokio::sync::mpsc::UnboundedSender<Progress>;

/// Where a container's root filesystem lives.
pub(crate) struct RootfsLayers {
    pub image_id: String,
    pub upper: PathBuf,
    /// Everything below the upper dir, topmost first.
    pub lowers: Vec<PathBuf>,
    /// The image's layers alone, topmost first.
    pub image: Vec<PathBuf>,
}

/// One container's root filesystem, between the calls that read its upper
/// dir and the removal that deletes it.
#[derive(Default)]
pub(crate) struct RootfsLock {
    /// Commit and diff hold it shared while they read the upper dir;
    /// `remove_rootfs` holds it alone while it deletes it. Taken before the
    /// gc lock, never while holding it.
    pub rw: RwLock<()>,
    /// How many removals have started: export, which cannot hold the lock
    /// for as long as a client takes to read, checks that this did not
    /// change while it read.
    removals: AtomicU64,
}

impl RootfsLock {
    pub fn removals(&self) -> u64 {
        self.removals.load(Ordering::SeqCst)
    }
}

pub struct ImageStore {
    pub(crate) meta: Meta,
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Snapshots,
    pub(crate) registries: Registries,
    pub(crate) limits: Limits,
    /// Pulls, pushes and imports hold it shared; garbage collection alone.
    pub(crate) gc_lock: RwLock<()>,
    /// Per container, while anyone uses one (see [`RootfsLock`]).
    pub(crate) rootfs_locks: Mutex<HashMap<String, Weak<RootfsLock>>>,
    state_dir: PathBuf,
}

pub(crate) fn send(tx: &ProgressTx, p: Progress) {
    let _ = tx.send(p);
}

impl ImageStore {
    /// Opens the store under `state_dir` and reconciles it: interrupted
    /// downloads and unpacks are dropped, unreferenced content removed.
    pub fn open(state_dir: &Path, registries: Registries) -> Result<Arc<Self>> {
        std::fs::create_dir_all(state_dir)
            .map_err(crate::error::io(format!("create {}", state_dir.display())))?;
        let store = ImageStore {
            meta: Meta::open(&state_dir.join("meta.redb"))?,
            content: ContentStore::open(state_dir)?,
            snapshots: Snapshots::open(state_dir)?,
            registries,
            limits: Limits::default(),
            gc_lock: RwLock::new(()),
            rootfs_locks: Mutex::new(HashMap::new()),
            state_dir: state_dir.to_path_buf(),
        };
        store.collect_garbage()?;
        Ok(Arc::new(store))
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Finds an image by reference, full id, or unique id prefix.
    pub fn resolve(&self, name: &str) -> Result<String> {
        if let Ok(r) = reference::parse(name) {
            if let Some(id) = self.meta.tag(&reference::canonical(&r))? {
                return Ok(id);
            }
            if let Some(d) = r.digest() {
                let want = reference::repo_digest(&r, d);
                for (id, rec) in self.meta.images()? {
                    if rec.repo_digests.contains(&want) {
                        return Ok(id);
                    }
                }
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let matches: Vec<String> = self
                .meta
                .images()?
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| id[7..].starts_with(prefix))
                .collect();
            match matches.len() {
                1 => return Ok(matches.into_iter().next().unwrap_or_default()),
                0 => {}
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "image id prefix {name:?} is ambiguous"
                    )))
                }
            }
        }
        Err(Error::NotFound(format!("no such image: {name}")))
    }

    fn references_of(&self, id: &str) -> Result<Vec<String>> {
        let mut refs: Vec<String> = self
            .meta
            .tags()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(r, _)| r)
            .collect();
        refs.sort();
        Ok(refs)
    }

    /// The manifest of a stored image.
    pub(crate) fn manifest_of(&self, manifest_digest: &str) -> Result<manifest::Manifest> {
        match manifest::parse(&self.content.read(manifest_digest)?)? {
            Fetched::Manifest(m) => Ok(m),
            Fetched::Index(_) => Err(Error::BadContent(format!(
                "stored manifest {manifest_digest} is an index"
            ))),
        }
    }

    /// Everything the API says about one image.
    pub fn image(&self, id: &str) -> Result<Image> {
        let rec = self
            .meta
            .image(id)?
            .ok_or_else(|| Error::NotFound(format!("no such image: {id}")))?;
        let config = self.content.read(id)?;
        let info = manifest::config_info(&config)?;
        let manifest = self.content.read(&rec.manifest_digest)?;
        Ok(Image {
            id: id.to_string(),
            references: self.references_of(id)?,
            manifest_digest: rec.manifest_digest,
            created: info.created,
            size: rec.size,
            config_json: String::from_utf8_lossy(&config).into_owned(),
            manifest_json: String::from_utf8_lossy(&manifest).into_owned(),
            repo_digests: rec.repo_digests,
            architecture: info.architecture,
            os: info.os,
        })
    }

    pub fn list(&self) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for (id, _) in self.meta.images()? {
            out.push(self.image(&id)?);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Points `target` at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let id = self.resolve(source)?;
        let r = reference::parse(target)?;
        if r.digest().is_some() {
            return Err(Error::InvalidArgument(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let mut b = self.meta.batch()?;
        b.put_tag(&reference::canonical(&r), &id)?;
        b.commit()
    }

    /// Untags and deletes like `docker rmi`: a tag of an image with other
    /// tags is only untagged; otherwise the image is deleted, and with it
    /// whatever content no other image uses.
    pub async fn remove(&self, name: &str, force: bool) -> Result<(Vec<String>, Vec<String>)> {
        let tag = reference::parse(name)
            .ok()
            .map(|r| reference::canonical(&r))
            .filter(|c| self.meta.tag(c).ok().flatten().is_some());
        let id = match &tag {
            Some(t) => self.meta.tag(t)?.unwrap_or_default(),
            None => self.resolve(name)?,
        };
        let refs = self.references_of(&id)?;
        if let Some(t) = &tag {
            if refs.len() > 1 {
                let mut b = self.meta.batch()?;
                b.remove_tag(t)?;
                b.commit()?;
                return Ok((vec![t.clone()], vec![]));
            }
        } else if refs.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short_id(&id)
            )));
        }
        let users: Vec<String> = self
            .meta
            .rootfses()?
            .into_iter()
            .filter(|(_, r)| r.image_id == id)
            .map(|(c, _)| c)
            .collect();
        if let (Some(c), false) = (users.first(), force) {
            return Err(Error::Conflict(format!(
                "unable to delete {} (must be forced) - image is being used by container {}",
                name,
                &c[..c.len().min(12)]
            )));
        }
        let mut b = self.meta.batch()?;
        for r in &refs {
            b.remove_tag(r)?;
        }
        b.remove_image(&id)?;
        b.commit()?;
        self.gc().await?;
        Ok((refs, vec![id]))
    }

    /// The unpacked layers of an image, topmost first.
    pub(crate) fn image_layers(&self, id: &str) -> Result<Vec<PathBuf>> {
        let config = self.content.read(id)?;
        let info = manifest::config_info(&config)?;
        let mut lowers = Vec::with_capacity(info.diff_ids.len());
        for c in chain_ids(&info.diff_ids).iter().rev() {
            if !self.snapshots.exists(c) {
                return Err(Error::Conflict(format!(
                    "image {} is missing layer {c}; pull it again",
                    short_id(id)
                )));
            }
            lowers.push(self.snapshots.fs(c)?);
        }
        Ok(lowers)
    }

    /// Creates a container's root filesystem over the image's layers: the
    /// lowerdirs are the container's init layer, then the image's layers.
    pub async fn prepare_rootfs(
        &self,
        container: &str,
        image: &str,
    ) -> Result<PrepareRootfsResponse> {
        let _shared = self.gc_lock.read().await;
        let id = self.resolve(image)?;
        let config = self.content.read(&id)?;
        let image_lowers = self.image_layers(&id)?;
        if let Some(old) = self.meta.rootfs(container)? {
            if old.image_id != id {
                return Err(Error::Conflict(format!(
                    "container {container} already has a root filesystem from {}",
                    old.image_id
                )));
            }
        }
        let (upper, work) = self.snapshots.create_container_dirs(container)?;
        let init = self.snapshots.init_dir(container)?;
        if !init.is_dir() {
            if let Err(e) = crate::initlayer::create(&init, &image_lowers) {
                if self.meta.rootfs(container)?.is_none() {
                    let _ = self.snapshots.remove_container_dirs(container);
                }
                return Err(e);
            }
        }
        let mut b = self.meta.batch()?;
        b.put_rootfs(
            container,
            &RootfsRecord {
                image_id: id.clone(),
            },
        )?;
        b.commit()?;
        let lowerdirs = std::iter::once(&init)
            .chain(&image_lowers)
            .map(|p| p.display().to_string())
            .collect();
        Ok(PrepareRootfsResponse {
            lowerdirs,
            upperdir: upper.display().to_string(),
            workdir: work.display().to_string(),
            image_id: id,
            config_json: String::from_utf8_lossy(&config).into_owned(),
        })
    }

    /// A container's upper dir and the layers below it (its init layer, if
    /// it has one, then its image's), topmost first.
    pub(crate) fn rootfs_layers(&self, container: &str) -> Result<RootfsLayers> {
        let (upper, _) = self.snapshots.container_dirs(container)?;
        let rec = self
            .meta
            .rootfs(container)?
            .ok_or_else(|| Error::NotFound(format!("no such container: {container}")))?;
        let image = self.image_layers(&rec.image_id)?;
        if !upper.is_dir() {
            return Err(Error::Conflict(format!(
                "the root filesystem of container {container} has no upper dir"
            )));
        }
        let init = self.snapshots.init_dir(container)?;
        let lowers = std::iter::once(init)
            .filter(|p| p.is_dir())
            .chain(image.iter().cloned())
            .collect();
        Ok(RootfsLayers {
            image_id: rec.image_id,
            upper,
            lowers,
            image,
        })
    }

    /// The lock of a container's root filesystem: the same one for every
    /// caller while any holds it; entries nobody holds are dropped.
    pub(crate) fn rootfs_lock(&self, container: &str) -> Arc<RootfsLock> {
        let mut locks = self.rootfs_locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = locks.get(container).and_then(Weak::upgrade) {
            return l;
        }
        locks.retain(|_, l| l.strong_count() > 0);
        let l = Arc::new(RootfsLock::default());
        locks.insert(container.to_string(), Arc::downgrade(&l));
        l
    }

    /// Deletes a container's root filesystem (it must not be mounted).
    /// Waits for a commit or diff of it in progress: deleting the upper dir
    /// under a commit would make a layer that silently lacks files.
    pub async fn remove_rootfs(&self, container: &str) -> Result<()> {
        let had = {
            let lock = self.rootfs_lock(container);
            let _alone = lock.rw.write().await;
            lock.removals.fetch_add(1, Ordering::SeqCst);
            self.snapshots.remove_container_dirs(container)?;
            let had = self.meta.rootfs(container)?;
            let mut b = self.meta.batch()?;
            b.remove_rootfs(container)?;
            b.commit()?;
            had
            // Released before the gc lock is taken: commit takes them in
            // that order.
        };
        if let Some(r) = had {
            if self.meta.image(&r.image_id)?.is_none() {
                self.gc().await?;
            }
        }
        Ok(())
    }

    /// Content ids reachable from image and rootfs records: (blobs, chains).
    pub(crate) fn live_content(&self) -> Result<(HashSet<String>, HashSet<String>)> {
        let mut blobs = HashSet::new();
        let mut chains = HashSet::new();
        let mut configs: Vec<String> = Vec::new();
        for (id, rec) in self.meta.images()? {
            blobs.insert(rec.manifest_digest.clone());
            if let Ok(m) = self.manifest_of(&rec.manifest_digest) {
                blobs.extend(m.layers.into_iter().map(|l| l.digest));
            }
            configs.push(id);
        }
        configs.extend(self.meta.rootfses()?.into_iter().map(|(_, r)| r.image_id));
        for id in configs {
            if let Ok(cfg) = self.content.read(&id) {
                if let Ok(info) = manifest::config_info(&cfg) {
                    chains.extend(chain_ids(&info.diff_ids));
                }
            }
            blobs.insert(id);
        }
        Ok((blobs, chains))
    }

    /// Removes blobs, snapshots and container dirs nothing refers to. The
    /// caller must hold the gc lock exclusively, or be the only user.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let (blobs, chains) = self.live_content()?;
        for d in self.content.list()? {
            if !blobs.contains(&d) {
                tracing::debug!(blob = %d, "removing unreferenced blob");
                self.content.remove(&d)?;
            }
        }
        let mut b = self.meta.batch()?;
        let mut recorded = HashSet::new();
        for c in self.meta.snapshots()? {
            if chains.contains(&c) {
                recorded.insert(c);
            } else {
                b.remove_snapshot(&c)?;
            }
        }
        b.commit()?;
        self.snapshots.reconcile(&recorded)?;
        let live: HashSet<String> = self.meta.rootfses()?.into_iter().map(|(c, _)| c).collect();
        for c in self.snapshots.container_ids()? {
            if !live.contains(&c) {
                self.snapshots.remove_container_dirs(&c)?;
            } else {
                self.snapshots.remove_partial_init(&c)?;
            }
        }
        Ok(())
    }

    /// Garbage collection, waiting for pulls and pushes in flight.
    pub async fn gc(&self) -> Result<()> {
        let _excl = self.gc_lock.write().await;
        tokio::task::block_in_place(|| self.collect_garbage())
    }
}

/// The first 12 hex digits of an id.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
