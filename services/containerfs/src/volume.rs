//! Named and anonymous volumes: a directory per volume under one root
//! (`<root>/<name>/_data` holds the data, `<root>/<name>/volume.json` the
//! metadata), created and removed atomically.
//!
//! A volume appears in one `rename(2)`: it is assembled under a temporary
//! name (`.tmp-*`) with its data directory and fsynced metadata, then renamed
//! into place with `RENAME_NOREPLACE`, so a crash never leaves half a volume
//! and two concurrent creates of one name agree on a single volume. Removal
//! renames the volume to `.trash-*` first (it disappears at once) and then
//! deletes it; leftovers of either kind are swept when the store is opened.
//! Names starting with `.` are not valid volume names, so these never clash.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::dirfd;
use crate::error::{io, Error, Result};

/// The metadata file in each volume's directory.
const META_FILE: &str = "volume.json";
/// The data directory in each volume's directory (Docker's layout).
const DATA_DIR: &str = "_data";
const TMP_PREFIX: &str = ".tmp-";
const TRASH_PREFIX: &str = ".trash-";

/// Characters allowed in a volume name, as Docker words them.
const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";
/// Longest name a directory entry can have.
const MAX_NAME_LEN: usize = 255;

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// The host directory holding the data (`<root>/<name>/_data`).
    pub mountpoint: PathBuf,
    /// RFC 3339, seconds, UTC.
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    /// Created for a mount without a volume name.
    pub anonymous: bool,
    /// The image's content has been copied in (done once).
    pub seeded: bool,
}

impl Volume {
    /// The volume as the runtime API shows it.
    pub fn to_proto(&self, used_by: Vec<String>) -> rdock_proto::runtime::v1::Volume {
        rdock_proto::runtime::v1::Volume {
            name: self.name.clone(),
            driver: "local".into(),
            mountpoint: self.mountpoint.display().to_string(),
            created_at: self.created_at.clone(),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
            anonymous: self.anonymous,
            used_by,
        }
    }
}

/// What [`VolumeStore::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Names of the removed volumes, in name order.
    pub deleted: Vec<String>,
    /// Bytes their files held.
    pub space_reclaimed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    seeded: bool,
}

/// Checks a volume name against Docker's rule for local volumes.
pub fn validate_name(name: &str) -> Result<()> {
    if name.len() == 1 {
        return Err(Error::InvalidArgument(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "create {name}: volume name is too long, names should be at most {MAX_NAME_LEN} characters"
        )));
    }
    if !is_valid_name(name) {
        return Err(Error::InvalidArgument(format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \"{NAME_CHARS}\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn no_such_volume(name: &str) -> Error {
    Error::NotFound(format!("get {name}: no such volume"))
}

fn random_suffix() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// The volumes under one directory. Operations that change the set are
/// serialised inside the process; creates are also safe against other
/// processes (see the module docs).
#[derive(Debug)]
pub struct VolumeStore {
    root: PathBuf,
    lock: Mutex<()>,
    /// Held while a volume is seeded, so two containers starting at once
    /// do not both copy into it.
    pub(crate) seed_lock: Mutex<()>,
}

impl VolumeStore {
    /// Opens (creating it 0700 if needed) the store at `root`, e.g.
    /// `<state>/volumes`, and sweeps leftovers of interrupted creates and
    /// removals.
    pub fn open(root: impl Into<PathBuf>) -> Result<VolumeStore> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(io(format!("create volume root {}", root.display())))?;
        let store = VolumeStore {
            root,
            lock: Mutex::new(()),
            seed_lock: Mutex::new(()),
        };
        let dir = store.root_fd()?;
        for name in dirfd::list(&dir).map_err(io(format!("list {}", store.root.display())))? {
            let s = name.to_string_lossy();
            if s.starts_with(TMP_PREFIX) || s.starts_with(TRASH_PREFIX) {
                tracing::debug!(entry = %s, "removing leftover volume directory");
                if let Err(e) = dirfd::remove_tree_at(&dir, &name) {
                    tracing::warn!(entry = %s, error = %e, "cannot remove leftover volume directory");
                }
            }
        }
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where volume `name`'s data lives (whether or not it exists).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join(DATA_DIR)
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn root_fd(&self) -> Result<OwnedFd> {
        nix::fcntl::open(
            &self.root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(crate::error::sys(format!("open {}", self.root.display())))
    }

    /// Creates volume `name` with `labels`, or returns the existing one of
    /// that name unchanged (as Docker does); the flag says whether it was
    /// created now. An empty name gets a random 64-hex one; such a volume
    /// is still a named one for pruning (only [`Self::create_anonymous`]
    /// makes anonymous volumes).
    pub fn create(&self, name: &str, labels: BTreeMap<String, String>) -> Result<(Volume, bool)> {
        if name.is_empty() {
            let name = hex::encode(rand::random::<[u8; 32]>());
            return self.create_inner(&name, labels, false);
        }
        validate_name(name)?;
        self.create_inner(name, labels, false)
    }

    /// Creates a new anonymous volume with a random 64-hex name.
    pub fn create_anonymous(&self, labels: BTreeMap<String, String>) -> Result<Volume> {
        let name = hex::encode(rand::random::<[u8; 32]>());
        self.create_inner(&name, labels, true).map(|(v, _)| v)
    }

    fn create_inner(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool)> {
        let _g = self.guard();
        if let Some(v) = self.load(name)? {
            return Ok((v, false));
        }
        let what = || format!("create {name}");
        let tmp_name = format!("{TMP_PREFIX}{}", random_suffix());
        let tmp = self.root.join(&tmp_name);
        let meta = Meta {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            anonymous,
            seeded: false,
        };
        // The root's descriptor first: the temporary directory is removed
        // through it if anything after its creation fails.
        let root = self.root_fd()?;
        let built = (|| -> Result<()> {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&tmp)
                .map_err(io(what()))?;
            let data = tmp.join(DATA_DIR);
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&data)
                .map_err(io(what()))?;
            // The process umask may have narrowed the mode.
            fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).map_err(io(what()))?;
            write_meta(&tmp, &meta).map_err(|e| e.context(what()))?;
            sync_dir(&tmp).map_err(io(what()))
        })();
        let renamed = built.and_then(|()| {
            nix::fcntl::renameat2(
                &root,
                OsStr::new(&tmp_name),
                &root,
                OsStr::new(name),
                RenameFlags::RENAME_NOREPLACE,
            )
            .map_err(|e| match e {
                Errno::EEXIST | Errno::ENOTEMPTY => Error::Conflict(String::new()),
                e => crate::error::sys(what())(e),
            })
        });
        match renamed {
            Ok(()) => {
                sync_dir(&self.root).map_err(io(what()))?;
                tracing::info!(volume = %name, anonymous, "volume created");
                let v = self.load(name)?.ok_or_else(|| {
                    Error::Internal(format!("{}: volume vanished after creation", what()))
                })?;
                Ok((v, true))
            }
            Err(e) => {
                let _ = dirfd::remove_tree_at(&root, OsStr::new(&tmp_name));
                if let Error::Conflict(_) = e {
                    // Another process created it first.
                    return match self.load(name)? {
                        Some(v) => Ok((v, false)),
                        None => Err(Error::Internal(format!(
                            "{}: {} exists but holds no volume",
                            what(),
                            self.root.join(name).display()
                        ))),
                    };
                }
                Err(e)
            }
        }
    }

    /// Reads volume `name`, `None` if there is none.
    fn load(&self, name: &str) -> Result<Option<Volume>> {
        if !is_valid_name(name) {
            return Ok(None);
        }
        let dir = self.root.join(name);
        let raw = match fs::read(dir.join(META_FILE)) {
            Ok(raw) => raw,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                return Ok(None)
            }
            Err(e) => return Err(io(format!("read volume {name}"))(e)),
        };
        let meta: Meta = serde_json::from_slice(&raw)
            .map_err(|e| Error::Internal(format!("volume {name}: bad metadata: {e}")))?;
        Ok(Some(Volume {
            name: name.to_string(),
            mountpoint: dir.join(DATA_DIR),
            created_at: meta.created_at,
            labels: meta.labels,
            anonymous: meta.anonymous,
            seeded: meta.seeded,
        }))
    }

    /// Volume `name`; Docker's `get NAME: no such volume` when missing.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.load(name)?.ok_or_else(|| no_such_volume(name))
    }

    /// Every volume, in name order.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let dir = self.root_fd()?;
        let mut out = Vec::new();
        for name in dirfd::list(&dir).map_err(io(format!("list {}", self.root.display())))? {
            let Some(name) = name.to_str() else { continue };
            if !is_valid_name(name) {
                continue;
            }
            match self.load(name) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => {}
                Err(e) => tracing::warn!(volume = %name, error = %e, "skipping unreadable volume"),
            }
        }
        Ok(out)
    }

    /// Removes volume `name` and its data. `users` are the containers that
    /// use it (ids or names); if there are any the volume stays and the
    /// error is Docker's `remove NAME: volume is in use - [A, B]`.
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        let _g = self.guard();
        if self.load(name)?.is_none() {
            return Err(no_such_volume(name));
        }
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.remove_locked(name)
    }

    fn remove_locked(&self, name: &str) -> Result<()> {
        let root = self.root_fd()?;
        let trash = format!("{TRASH_PREFIX}{}", random_suffix());
        nix::fcntl::renameat2(
            &root,
            OsStr::new(name),
            &root,
            OsStr::new(&trash),
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(crate::error::sys(format!("remove {name}")))?;
        if let Err(e) = sync_dir(&self.root) {
            tracing::warn!(volume = %name, error = %e, "cannot sync the volume root");
        }
        // Gone for every reader now; a failure below leaves trash that the
        // next open sweeps.
        if let Err(e) = dirfd::remove_tree_at(&root, OsStr::new(&trash)) {
            tracing::warn!(volume = %name, error = %e, "cannot delete removed volume's data");
        }
        tracing::info!(volume = %name, "volume removed");
        Ok(())
    }

    /// Removes unused volumes: anonymous ones, and named ones too if `all`.
    /// `in_use(name)` says whether a container uses a volume; those stay.
    pub fn prune(&self, all: bool, in_use: impl Fn(&str) -> bool) -> Result<Pruned> {
        let _g = self.guard();
        let mut pruned = Pruned::default();
        for v in self.list()? {
            if (!all && !v.anonymous) || in_use(&v.name) {
                continue;
            }
            let size = match open_dir(&v.mountpoint) {
                Ok(fd) => dirfd::tree_size(&fd).unwrap_or_else(|e| {
                    tracing::warn!(volume = %v.name, error = %e, "cannot size volume");
                    0
                }),
                Err(_) => 0,
            };
            self.remove_locked(&v.name)?;
            pruned.deleted.push(v.name);
            pruned.space_reclaimed = pruned.space_reclaimed.saturating_add(size);
        }
        Ok(pruned)
    }

    /// Records that volume `name` has been seeded.
    pub fn mark_seeded(&self, name: &str) -> Result<()> {
        let _g = self.guard();
        let v = self.load(name)?.ok_or_else(|| no_such_volume(name))?;
        if v.seeded {
            return Ok(());
        }
        let meta = Meta {
            created_at: v.created_at,
            labels: v.labels,
            anonymous: v.anonymous,
            seeded: true,
        };
        write_meta(&self.root.join(name), &meta)
    }
}

/// A readable descriptor on directory `path`, refusing a symlink there.
pub(crate) fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(dirfd::err)
}

/// Writes `meta` to `dir/volume.json` atomically: temp file, fsync, rename,
/// fsync of the directory.
fn write_meta(dir: &Path, meta: &Meta) -> Result<()> {
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|e| Error::Internal(format!("encode volume metadata: {e}")))?;
    let tmp = dir.join(format!("{META_FILE}.tmp"));
    let what = || format!("write {}", dir.join(META_FILE).display());
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io(what()))?;
    f.write_all(&json).map_err(io(what()))?;
    f.sync_all().map_err(io(what()))?;
    drop(f);
    fs::rename(&tmp, dir.join(META_FILE)).map_err(io(what()))?;
    sync_dir(dir).map_err(io(what()))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let f = File::open(dir)?;
    nix::unistd::fsync(f.as_fd()).map_err(dirfd::err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path().join("volumes")).unwrap();
        (d, s)
    }

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["ab", "a1", "my_vol.2-x", "0abc"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "-ab", "_ab", ".ab", "a/b", "a b", "../x", "ab/", "é1", "a:b",
        ] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("create {bad}: {bad:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
            );
        }
        assert!(validate_name("a")
            .unwrap_err()
            .to_string()
            .contains("volume name is too short"));
        assert!(validate_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn create_get_list_and_same_name_again() {
        let (_d, s) = store();
        let labels: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
        let (v, created) = s.create("data", labels.clone()).unwrap();
        assert!(created);
        assert!(!v.anonymous && !v.seeded);
        assert_eq!(v.labels, labels);
        assert!(v.mountpoint.is_dir());
        assert_eq!(v.mountpoint, s.data_dir("data"));
        chrono::DateTime::parse_from_rfc3339(&v.created_at).unwrap();
        let mode = fs::metadata(&v.mountpoint).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);

        // Same name: the existing volume, labels unchanged.
        let (again, created) = s.create("data", BTreeMap::new()).unwrap();
        assert!(!created);
        assert_eq!(again, v);
        assert_eq!(s.get("data").unwrap(), v);

        let anon = s.create_anonymous(BTreeMap::new()).unwrap();
        assert!(anon.anonymous);
        assert_eq!(anon.name.len(), 64);
        assert!(anon.name.bytes().all(|c| c.is_ascii_hexdigit()));
        let (unnamed, _) = s.create("", BTreeMap::new()).unwrap();
        assert_eq!(unnamed.name.len(), 64);
        assert!(!unnamed.anonymous);

        let names: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
        let mut want = vec![anon.name.clone(), unnamed.name.clone(), "data".to_string()];
        want.sort();
        assert_eq!(names, want);

        assert_eq!(
            s.get("nope").unwrap_err().to_string(),
            "get nope: no such volume"
        );
        assert!(matches!(s.get("../etc"), Err(Error::NotFound(_))));
        // Reopening keeps everything.
        let s2 = VolumeStore::open(s.root()).unwrap();
        assert_eq!(s2.get("data").unwrap(), v);
    }

    #[test]
    fn remove_refuses_in_use_and_unknown() {
        let (_d, s) = store();
        let (v, _) = s.create("busy", BTreeMap::new()).unwrap();
        fs::write(v.mountpoint.join("f"), "x").unwrap();
        let e = s
            .remove("busy", &["c1".to_string(), "c2".to_string()])
            .unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
        assert_eq!(e.to_string(), "remove busy: volume is in use - [c1, c2]");
        assert!(v.mountpoint.join("f").exists());
        s.remove("busy", &[]).unwrap();
        assert!(!s.root().join("busy").exists());
        let e = s.remove("busy", &[]).unwrap_err();
        assert_eq!(e.to_string(), "get busy: no such volume");
        // Nothing but the store's own entries remain.
        assert_eq!(fs::read_dir(s.root()).unwrap().count(), 0);
    }

    #[test]
    fn prune_takes_unused_anonymous_volumes_unless_all() {
        let (_d, s) = store();
        let a1 = s.create_anonymous(BTreeMap::new()).unwrap();
        let a2 = s.create_anonymous(BTreeMap::new()).unwrap();
        s.create("named", BTreeMap::new()).unwrap();
        s.create("kept", BTreeMap::new()).unwrap();
        fs::write(a1.mountpoint.join("f"), vec![0u8; 1000]).unwrap();
        fs::create_dir(a1.mountpoint.join("d")).unwrap();
        fs::write(a1.mountpoint.join("d/g"), vec![0u8; 24]).unwrap();
        fs::hard_link(a1.mountpoint.join("f"), a1.mountpoint.join("d/h")).unwrap();

        let busy = a2.name.clone();
        let p = s.prune(false, |n| n == busy).unwrap();
        assert_eq!(p.deleted, vec![a1.name.clone()]);
        assert_eq!(p.space_reclaimed, 1024);
        assert!(s.get(&a2.name).is_ok());
        assert!(s.get("named").is_ok());

        let p = s.prune(true, |n| n == "kept").unwrap();
        let mut want = vec![a2.name.clone(), "named".to_string()];
        want.sort();
        assert_eq!(p.deleted, want);
        let left: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(left, vec!["kept".to_string()]);
    }

    #[test]
    fn concurrent_creates_of_one_name_agree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("volumes");
        // Separate stores: the in-process lock does not help them.
        let stores: Vec<Arc<VolumeStore>> = (0..8)
            .map(|_| Arc::new(VolumeStore::open(&root).unwrap()))
            .collect();
        let results: Vec<(Volume, bool)> = std::thread::scope(|sc| {
            let handles: Vec<_> = stores
                .iter()
                .map(|s| sc.spawn(|| s.create("shared", BTreeMap::new()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
        let first = &results[0].0;
        assert!(results.iter().all(|(v, _)| v == first));
        // No temporary directories are left behind.
        let entries: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("shared")]);
    }

    #[test]
    fn seeded_flag_persists_and_leftovers_are_swept() {
        let (_d, s) = store();
        s.create("vol", BTreeMap::new()).unwrap();
        s.mark_seeded("vol").unwrap();
        assert!(s.get("vol").unwrap().seeded);
        fs::create_dir_all(s.root().join(".tmp-dead/_data")).unwrap();
        fs::create_dir_all(s.root().join(".trash-dead/_data/x")).unwrap();
        let s2 = VolumeStore::open(s.root()).unwrap();
        let names: Vec<_> = fs::read_dir(s2.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("vol")]);
        assert!(s2.get("vol").unwrap().seeded);
        assert!(matches!(s2.mark_seeded("gone"), Err(Error::NotFound(_))));
    }
}
