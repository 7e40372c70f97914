//! A container's own mounts (`-v`, `--mount`, `--tmpfs`, `--volumes-from`):
//! validated once at create into [`MountPoint`]s that the container record
//! keeps, turned into OCI mounts for each start, and prepared on the host
//! before each start.
//!
//! Validation follows Docker's rules and words: the target is absolute and
//! not `/`, no two mounts share a target, a bind source is absolute and
//! exists unless `create_host_path` (`-v` creates it 0755 at start, like
//! Docker), volumes are created on first use (anonymous ones when the source
//! is empty), tmpfs options come from a known list.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount as OciMount, MountBuilder};
use rdock_proto::runtime::v1::Mount;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::volume::{validate_name, VolumeStore};
use crate::{selinux, tmpfs};

/// What a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// Bind propagation modes Docker accepts.
const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];
/// Docker's default bind propagation.
const DEFAULT_PROPAGATION: &str = "rprivate";

/// One validated mount of a container. Serializable, so the container
/// record can keep it and later starts rebuild their OCI mounts from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: MountKind,
    /// bind: the host path; volume: the volume's data directory; tmpfs:
    /// empty.
    pub source: PathBuf,
    /// Absolute, cleaned path in the container.
    pub destination: String,
    /// volume: its name; else empty.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub read_only: bool,
    /// bind: one of private, rprivate (default), shared, rshared, slave,
    /// rslave; else empty.
    #[serde(default)]
    pub propagation: String,
    /// "", "z" or "Z".
    #[serde(default)]
    pub relabel: String,
    /// volume: never seed it from the image.
    #[serde(default)]
    pub no_copy: bool,
    /// bind: create the source directory at start when it is missing.
    #[serde(default)]
    pub create_host_path: bool,
    /// volume: created anonymous for this container (so `rm -v` removes it).
    #[serde(default)]
    pub anonymous: bool,
    /// tmpfs: the complete mount options (defaults, `ro`, `mode=`, `size=`,
    /// the user's), merged.
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
}

impl MountPoint {
    /// The OCI runtime mount for this mount point.
    pub fn to_oci(&self) -> Result<OciMount> {
        let (typ, source, options) = match self.kind {
            MountKind::Tmpfs => ("tmpfs", PathBuf::from("tmpfs"), self.tmpfs_options.clone()),
            MountKind::Bind | MountKind::Volume => {
                let mut opts = vec!["rbind".to_string()];
                if self.read_only {
                    opts.push("ro".into());
                }
                opts.push(if self.propagation.is_empty() {
                    DEFAULT_PROPAGATION.into()
                } else {
                    self.propagation.clone()
                });
                ("bind", self.source.clone(), opts)
            }
        };
        MountBuilder::default()
            .destination(&self.destination)
            .typ(typ)
            .source(source)
            .options(options)
            .build()
            .map_err(|e| Error::Internal(format!("mount {}: {e}", self.destination)))
    }

    /// The entry of Docker's `inspect` `Mounts` array.
    pub fn inspect(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "Type": self.kind.as_str(),
            "Source": self.source.display().to_string(),
            "Destination": self.destination,
            "Mode": self.relabel,
            "RW": !self.read_only,
            "Propagation": if self.kind == MountKind::Bind { self.propagation.as_str() } else { "" },
        });
        if self.kind == MountKind::Volume {
            v["Name"] = self.name.clone().into();
            v["Driver"] = "local".into();
        }
        v
    }
}

/// What [`plan`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The container's mounts: inherited ones (not overridden) first, then
    /// the requested ones, in order.
    pub points: Vec<MountPoint>,
    /// Volumes this plan created (named ones seen for the first time and
    /// anonymous ones); [`Plan::rollback`] removes them.
    pub new_volumes: Vec<String>,
}

impl Plan {
    /// Removes the volumes this plan created, when the container that would
    /// have used them is not created after all. `in_use(name)` says whether
    /// another container has started using one meanwhile; those stay.
    pub fn rollback(&self, store: &VolumeStore, in_use: impl Fn(&str) -> bool) {
        for name in &self.new_volumes {
            if in_use(name) {
                continue;
            }
            if let Err(e) = store.remove(name, &[]) {
                tracing::warn!(volume = %name, error = %e, "cannot remove volume of a failed create");
            }
        }
    }
}

fn config_error(kind: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("invalid mount config for type \"{kind}\": {msg}"))
}

/// Cleans an absolute path lexically (`.`, `..`, repeated and trailing
/// slashes), as Go's `path.Clean`.
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A request validated, before anything is created.
enum Checked {
    Bind(MountPoint),
    Volume(MountPoint),
    Tmpfs(MountPoint),
}

fn check(m: &Mount) -> Result<Checked> {
    let kind = m.r#type.as_str();
    if !matches!(kind, "bind" | "volume" | "tmpfs") {
        return Err(config_error(kind, "mount type unknown"));
    }
    if m.target.is_empty() {
        return Err(config_error(kind, "field Target must not be empty"));
    }
    if !m.target.starts_with('/') || m.target.contains('\0') {
        return Err(config_error(
            kind,
            format!(
                "invalid mount path: '{}' mount path must be absolute",
                m.target.replace('\0', "\\0")
            ),
        ));
    }
    let destination = clean_abs(&m.target);
    if destination == "/" {
        return Err(config_error(
            kind,
            "invalid specification: destination can't be '/'",
        ));
    }
    if !matches!(m.relabel.as_str(), "" | "z" | "Z") {
        return Err(Error::InvalidArgument(format!(
            "invalid mode: {}",
            m.relabel
        )));
    }
    let tmpfs_fields = m.tmpfs_size != 0 || m.tmpfs_mode != 0 || !m.tmpfs_options.is_empty();
    let mut point = MountPoint {
        kind: MountKind::Bind,
        source: PathBuf::new(),
        destination,
        name: String::new(),
        read_only: m.read_only,
        propagation: String::new(),
        relabel: m.relabel.clone(),
        no_copy: false,
        create_host_path: false,
        anonymous: false,
        tmpfs_options: Vec::new(),
    };
    match kind {
        "bind" => {
            if !m.propagation.is_empty() && !PROPAGATIONS.contains(&m.propagation.as_str()) {
                return Err(config_error(
                    kind,
                    format!("invalid propagation mode: {}", m.propagation),
                ));
            }
            if m.no_copy {
                return Err(config_error(
                    kind,
                    "field VolumeOptions must not be specified",
                ));
            }
            if tmpfs_fields {
                return Err(config_error(
                    kind,
                    "field TmpfsOptions must not be specified",
                ));
            }
            if m.source.is_empty() {
                return Err(config_error(kind, "field Source must not be empty"));
            }
            if !m.source.starts_with('/') || m.source.contains('\0') {
                return Err(config_error(
                    kind,
                    format!(
                        "invalid mount path: '{}' mount path must be absolute",
                        m.source.replace('\0', "\\0")
                    ),
                ));
            }
            let source = clean_abs(&m.source);
            if !m.create_host_path {
                check_bind_source(Path::new(&source))?;
            }
            point.source = source.into();
            point.propagation = if m.propagation.is_empty() {
                DEFAULT_PROPAGATION.into()
            } else {
                m.propagation.clone()
            };
            point.create_host_path = m.create_host_path;
            Ok(Checked::Bind(point))
        }
        "volume" => {
            if !m.propagation.is_empty() {
                return Err(config_error(
                    kind,
                    "field BindOptions must not be specified",
                ));
            }
            if tmpfs_fields {
                return Err(config_error(
                    kind,
                    "field TmpfsOptions must not be specified",
                ));
            }
            if m.source.is_empty() {
                if m.read_only {
                    return Err(config_error(
                        kind,
                        "must not set ReadOnly mode when using anonymous volumes",
                    ));
                }
            } else {
                validate_name(&m.source)?;
            }
            point.kind = MountKind::Volume;
            point.name = m.source.clone();
            point.no_copy = m.no_copy;
            Ok(Checked::Volume(point))
        }
        _ => {
            if !m.source.is_empty() {
                return Err(config_error(kind, "field Source must not be specified"));
            }
            if !m.propagation.is_empty() {
                return Err(config_error(
                    kind,
                    "field BindOptions must not be specified",
                ));
            }
            if m.no_copy {
                return Err(config_error(
                    kind,
                    "field VolumeOptions must not be specified",
                ));
            }
            if !m.relabel.is_empty() {
                return Err(config_error(kind, "relabeling a tmpfs is not supported"));
            }
            point.kind = MountKind::Tmpfs;
            point.tmpfs_options =
                tmpfs::options(m.read_only, m.tmpfs_size, m.tmpfs_mode, &m.tmpfs_options)
                    .map_err(|e| config_error(kind, e))?;
            Ok(Checked::Tmpfs(point))
        }
    }
}

fn check_bind_source(source: &Path) -> Result<()> {
    match std::fs::metadata(source) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(config_error(
            "bind",
            format!("bind source path does not exist: {}", source.display()),
        )),
        Err(e) => Err(config_error(
            "bind",
            format!("stat {}: {e}", source.display()),
        )),
    }
}

/// Validates a container's requested `mounts` (in the order given) and the
/// mounts it inherits through `--volumes-from` (see [`inherit`]), then
/// creates the volumes they name. All validation happens before anything is
/// created; if creating a volume fails, the ones created so far are removed.
///
/// Errors are Docker's: `invalid mount config for type "bind": bind source
/// path does not exist: /x`, `Duplicate mount point: /x`, a volume name's
/// `create NAME: "NAME" includes invalid characters ...`, and so on.
#[tracing::instrument(skip_all, fields(mounts = mounts.len(), inherited = inherited.len()))]
pub fn plan(store: &VolumeStore, mounts: &[Mount], inherited: &[MountPoint]) -> Result<Plan> {
    let mut checked = Vec::with_capacity(mounts.len());
    let mut targets = HashSet::new();
    for m in mounts {
        let c = check(m)?;
        let dest = match &c {
            Checked::Bind(p) | Checked::Volume(p) | Checked::Tmpfs(p) => p.destination.clone(),
        };
        if !targets.insert(dest.clone()) {
            return Err(Error::InvalidArgument(format!(
                "Duplicate mount point: {dest}"
            )));
        }
        checked.push(c);
    }
    let mut plan = Plan::default();
    // Inherited mounts, later ones overriding earlier ones at the same
    // target, requested ones overriding both.
    let mut inherited_kept: Vec<MountPoint> = Vec::new();
    for p in inherited {
        if targets.contains(&p.destination) {
            continue;
        }
        inherited_kept.retain(|q| q.destination != p.destination);
        inherited_kept.push(p.clone());
    }
    plan.points = inherited_kept;
    for c in checked {
        let point = match c {
            Checked::Bind(p) | Checked::Tmpfs(p) => p,
            Checked::Volume(mut p) => {
                let created = if p.name.is_empty() {
                    store.create_anonymous(BTreeMap::new()).map(|v| {
                        p.anonymous = true;
                        (v, true)
                    })
                } else {
                    store.create(&p.name, BTreeMap::new())
                };
                let (v, new) = match created {
                    Ok(r) => r,
                    Err(e) => {
                        plan.rollback(store, |_| false);
                        return Err(e);
                    }
                };
                if new {
                    plan.new_volumes.push(v.name.clone());
                }
                p.name = v.name;
                p.source = v.mountpoint;
                p
            }
        };
        plan.points.push(point);
    }
    Ok(plan)
}

/// A parsed `--volumes-from CONTAINER[:MODE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumesFrom {
    /// The container to take mounts from, as the user named it.
    pub container: String,
    /// `ro`: every inherited mount is read-only (`rw`, the default, keeps
    /// each mount's own mode).
    pub read_only: bool,
    /// `z` / `Z`, or empty.
    pub relabel: String,
}

/// Parses `--volumes-from CONTAINER[:MODE]`, MODE being `ro` or `rw` and/or
/// `z` or `Z`, comma-separated (Docker's rule: no propagation or copy
/// modes).
pub fn parse_volumes_from(spec: &str) -> Result<VolumesFrom> {
    if spec.is_empty() {
        return Err(Error::InvalidArgument(
            "volumes-from specification cannot be an empty string".into(),
        ));
    }
    let (container, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if container.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "invalid volumes-from specification: {spec}"
        )));
    }
    let mut out = VolumesFrom {
        container: container.to_string(),
        read_only: false,
        relabel: String::new(),
    };
    if mode.is_empty() {
        return Ok(out);
    }
    let (mut rw_seen, mut label_seen) = (false, false);
    for o in mode.split(',') {
        match o {
            "ro" | "rw" if !rw_seen => {
                rw_seen = true;
                out.read_only = o == "ro";
            }
            "z" | "Z" if !label_seen => {
                label_seen = true;
                out.relabel = o.to_string();
            }
            _ => return Err(Error::InvalidArgument(format!("invalid mode: {mode}"))),
        }
    }
    Ok(out)
}

/// The mounts a container inherits from another one's (`points`) through
/// `from`: its bind and volume mounts, read-only if either side says so,
/// never seeded again, and not the inheriting container's own anonymous
/// volumes. tmpfs mounts are not inherited.
pub fn inherit(from: &VolumesFrom, points: &[MountPoint]) -> Vec<MountPoint> {
    points
        .iter()
        .filter(|p| p.kind != MountKind::Tmpfs)
        .map(|p| {
            let mut q = p.clone();
            q.read_only = p.read_only || from.read_only;
            if !from.relabel.is_empty() {
                q.relabel = from.relabel.clone();
            }
            q.no_copy = true;
            q.anonymous = false;
            q
        })
        .collect()
}

fn depth(dest: &str) -> usize {
    dest.split('/').filter(|c| !c.is_empty()).count()
}

/// Targets of default mounts that stay writable under `--read-only`.
const WRITABLE_UNDER_READ_ONLY: [&str; 5] =
    ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"];

/// The container's mount list: `base` (the runtime's defaults and its own
/// files such as /etc/hosts) minus what the user's mounts replace (the same
/// target; everything under /dev when the user mounts /dev), then the
/// user's mounts. Those keep their order but a parent always comes before
/// what is mounted inside it (Docker sorts by depth the same way). With
/// `readonly_rootfs` (`--read-only`), the remaining `base` mounts become
/// read-only too, except /proc and /dev and its mounts (Docker's rule); the
/// user's mounts keep their own mode.
pub fn oci_mounts(
    base: Vec<OciMount>,
    points: &[MountPoint],
    readonly_rootfs: bool,
) -> Result<Vec<OciMount>> {
    let user: HashSet<&str> = points.iter().map(|p| p.destination.as_str()).collect();
    let dev = user.contains("/dev");
    let mut out: Vec<OciMount> = Vec::with_capacity(base.len() + points.len());
    for mut m in base {
        let d = clean_abs(&m.destination().to_string_lossy());
        if user.contains(d.as_str()) || (dev && d.starts_with("/dev/")) {
            continue;
        }
        if readonly_rootfs && !WRITABLE_UNDER_READ_ONLY.contains(&d.as_str()) {
            let mut opts = m.options().clone().unwrap_or_default();
            if !opts.iter().any(|o| o == "ro") {
                opts.retain(|o| o != "rw");
                opts.push("ro".into());
                m.set_options(Some(opts));
            }
        }
        out.push(m);
    }
    let mut sorted: Vec<&MountPoint> = points.iter().collect();
    sorted.sort_by_key(|p| depth(&p.destination));
    for p in sorted {
        out.push(p.to_oci()?);
    }
    Ok(out)
}

/// The root filesystem propagation a container needs for its bind mounts
/// (Docker's rule): `shared` if any bind is shared, else `rslave` if any is
/// a slave, else none (the runtime's default).
pub fn rootfs_propagation(points: &[MountPoint]) -> Option<&'static str> {
    let binds = || points.iter().filter(|p| p.kind == MountKind::Bind);
    if binds().any(|p| matches!(p.propagation.as_str(), "shared" | "rshared")) {
        Some("shared")
    } else if binds().any(|p| matches!(p.propagation.as_str(), "slave" | "rslave")) {
        Some("rslave")
    } else {
        None
    }
}

/// Host-side work before each start of a container with these mounts:
/// missing bind sources are created (0755) when `create_host_path`, else
/// refused with Docker's `bind source path does not exist`; a shared or
/// slave bind needs its source's mount to be shared (or a slave); `z`/`Z`
/// sources are relabelled where SELinux is enforcing, to `mount_label` (the
/// container's file label) or the generic container label.
pub fn prepare_start(points: &[MountPoint], mount_label: Option<&str>) -> Result<()> {
    for p in points {
        if p.kind == MountKind::Bind {
            prepare_bind_source(p)?;
            check_propagation(p)?;
        }
        if !p.relabel.is_empty() && p.kind != MountKind::Tmpfs {
            selinux::relabel(&p.source, &selinux::label_for(&p.relabel, mount_label))?;
        }
    }
    Ok(())
}

fn prepare_bind_source(p: &MountPoint) -> Result<()> {
    if !p.create_host_path {
        return check_bind_source(&p.source);
    }
    match std::fs::symlink_metadata(&p.source) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&p.source)
                .map_err(|e| {
                    Error::Internal(format!("create bind source {}: {e}", p.source.display()))
                })
        }
        Err(e) => Err(config_error(
            "bind",
            format!("stat {}: {e}", p.source.display()),
        )),
    }
}

/// The mount holding `path` in a mountinfo text: its mount point and
/// optional fields (the last, longest match: later lines are mounted over
/// earlier ones).
fn mount_of(path: &Path, mountinfo: &str) -> Option<(String, String)> {
    let want = path.to_string_lossy();
    let mut best: Option<(String, String)> = None;
    for e in rdock_common::mountinfo::parse(mountinfo) {
        let mp = e.mount_point;
        let inside = want == mp
            || mp == "/"
            || (want.starts_with(&mp) && want.as_bytes().get(mp.len()) == Some(&b'/'));
        if inside && best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, e.optional));
        }
    }
    best
}

fn check_propagation(p: &MountPoint) -> Result<()> {
    let shared = matches!(p.propagation.as_str(), "shared" | "rshared");
    let slave = matches!(p.propagation.as_str(), "slave" | "rslave");
    if !shared && !slave {
        return Ok(());
    }
    let real = std::fs::canonicalize(&p.source)
        .map_err(|e| Error::Internal(format!("resolve {}: {e}", p.source.display())))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::Internal(format!("read mountinfo: {e}")))?;
    let Some((mp, optional)) = mount_of(&real, &info) else {
        return Err(Error::Internal(format!(
            "cannot find the mount of {}",
            real.display()
        )));
    };
    let is_shared = optional.split(' ').any(|o| o.starts_with("shared:"));
    let is_slave = optional.split(' ').any(|o| o.starts_with("master:"));
    if shared && !is_shared {
        return Err(Error::InvalidArgument(format!(
            "path {} is mounted on {mp} but it is not a shared mount",
            p.source.display()
        )));
    }
    if slave && !is_shared && !is_slave {
        return Err(Error::InvalidArgument(format!(
            "path {} is mounted on {mp} but it is not a shared or slave mount",
            p.source.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(typ: &str, source: &str, target: &str) -> Mount {
        Mount {
            r#type: typ.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        }
    }

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path().join("volumes")).unwrap();
        (d, s)
    }

    fn err(s: &VolumeStore, m: Mount) -> String {
        plan(s, &[m], &[]).unwrap_err().to_string()
    }

    #[test]
    fn validation_errors_are_dockers() {
        let (d, s) = store();
        let missing = d.path().join("missing");
        let missing = missing.to_str().unwrap();
        assert_eq!(
            err(&s, mount("bind", missing, "/x")),
            format!("invalid mount config for type \"bind\": bind source path does not exist: {missing}")
        );
        assert_eq!(
            err(&s, mount("bind", "rel/path", "/x")),
            "invalid mount config for type \"bind\": invalid mount path: 'rel/path' mount path must be absolute"
        );
        assert_eq!(
            err(&s, mount("bind", "", "/x")),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err(&s, mount("volume", "v1", "rel")),
            "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            err(&s, mount("volume", "v1", "/a/..")),
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err(&s, mount("volume", "v1", "")),
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        assert_eq!(
            err(&s, mount("nfs", "", "/x")),
            "invalid mount config for type \"nfs\": mount type unknown"
        );
        assert_eq!(
            err(&s, mount("volume", "bad/name", "/x")),
            "create bad/name: \"bad/name\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert_eq!(
            err(&s, mount("tmpfs", "src", "/x")),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        let mut m = mount("tmpfs", "", "/x");
        m.tmpfs_options = vec!["size=1m".into(), "evil".into()];
        assert_eq!(
            err(&s, m),
            "invalid mount config for type \"tmpfs\": invalid tmpfs option \"evil\""
        );
        let mut m = mount("bind", "/", "/x");
        m.propagation = "bogus".into();
        assert_eq!(
            err(&s, m),
            "invalid mount config for type \"bind\": invalid propagation mode: bogus"
        );
        let mut m = mount("volume", "", "/x");
        m.read_only = true;
        assert_eq!(
            err(&s, m),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
        );
        let mut m = mount("volume", "v1", "/x");
        m.relabel = "q".into();
        assert_eq!(err(&s, m), "invalid mode: q");
        // Nothing was created by any of these.
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn duplicate_targets_are_refused_before_anything_is_created() {
        let (_d, s) = store();
        let e = plan(
            &s,
            &[mount("volume", "v1", "/data"), mount("tmpfs", "", "/data/")],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Duplicate mount point: /data");
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn plan_creates_volumes_and_builds_oci_mounts() {
        let (d, s) = store();
        s.create("existing", BTreeMap::new()).unwrap();
        let host = d.path().join("host");
        std::fs::create_dir(&host).unwrap();
        let mut ro_bind = mount("bind", host.to_str().unwrap(), "/srv/");
        ro_bind.read_only = true;
        ro_bind.relabel = "z".into();
        let mut tmp = mount("tmpfs", "", "/run/x");
        tmp.tmpfs_size = 1 << 20;
        tmp.tmpfs_options = vec!["exec".into()];
        let mut created_later = mount("bind", "/nonexistent/rdock-test", "/later");
        created_later.create_host_path = true;
        let p = plan(
            &s,
            &[
                mount("volume", "named", "/data/deep"),
                mount("volume", "", "/anon"),
                mount("volume", "existing", "/data"),
                ro_bind,
                tmp,
                created_later,
            ],
            &[],
        )
        .unwrap();
        assert_eq!(p.points.len(), 6);
        let anon = &p.points[1];
        assert!(anon.anonymous && anon.name.len() == 64);
        assert_eq!(p.new_volumes, vec!["named".to_string(), anon.name.clone()]);
        assert_eq!(p.points[0].source, s.data_dir("named"));
        assert_eq!(p.points[3].destination, "/srv");
        assert_eq!(p.points[3].propagation, "rprivate");

        let base = oci_spec::runtime::Spec::default().mounts().clone().unwrap();
        let n_base = base.len();
        let all = oci_mounts(base, &p.points, false).unwrap();
        assert_eq!(all.len(), n_base + 6);
        let user: Vec<serde_json::Value> = all[n_base..]
            .iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        // Parents before children: /data before /data/deep.
        let dests: Vec<&str> = user
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            ["/anon", "/data", "/srv", "/later", "/data/deep", "/run/x"]
        );
        assert_eq!(
            user[2]["options"],
            serde_json::json!(["rbind", "ro", "rprivate"])
        );
        assert_eq!(user[2]["type"], "bind");
        assert_eq!(
            user[5]["options"],
            serde_json::json!(["nosuid", "nodev", "rprivate", "size=1m", "exec"])
        );
        assert_eq!(user[5]["source"], "tmpfs");
        assert_eq!(
            user[1]["source"],
            s.data_dir("existing").display().to_string()
        );

        let insp = p.points[3].inspect();
        assert_eq!(insp["RW"], false);
        assert_eq!(insp["Mode"], "z");
        assert_eq!(p.points[2].inspect()["Name"], "existing");

        p.rollback(&s, |n| n == "named");
        assert!(s.get("named").is_ok());
        p.rollback(&s, |_| false);
        let left: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(left, vec!["existing".to_string()]);
    }

    #[test]
    fn user_mounts_replace_defaults() {
        let base = oci_spec::runtime::Spec::default().mounts().clone().unwrap();
        assert!(base
            .iter()
            .any(|m| m.destination() == Path::new("/dev/shm")));
        let points = vec![MountPoint {
            kind: MountKind::Tmpfs,
            source: PathBuf::new(),
            destination: "/dev".into(),
            name: String::new(),
            read_only: false,
            propagation: String::new(),
            relabel: String::new(),
            no_copy: false,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec!["nosuid".into()],
        }];
        let all = oci_mounts(base.clone(), &points, false).unwrap();
        let devs: Vec<_> = all
            .iter()
            .filter(|m| m.destination().starts_with("/dev"))
            .collect();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].typ().as_deref(), Some("tmpfs"));

        // --read-only: default mounts become read-only but /proc and /dev
        // stay writable; the user's mounts keep their mode.
        let hosts = MountBuilder::default()
            .destination("/etc/hosts")
            .typ("bind")
            .source("/run/x/hosts")
            .options(vec!["rbind".to_string(), "rprivate".to_string()])
            .build()
            .unwrap();
        let mut with_hosts = base;
        with_hosts.push(hosts);
        let all = oci_mounts(with_hosts, &[], true).unwrap();
        let opts = |d: &str| {
            all.iter()
                .find(|m| m.destination() == Path::new(d))
                .and_then(|m| m.options().clone())
                .unwrap_or_default()
        };
        assert!(opts("/etc/hosts").contains(&"ro".to_string()));
        assert!(opts("/sys").contains(&"ro".to_string()));
        assert!(!opts("/dev/shm").contains(&"ro".to_string()));
        assert!(!opts("/proc").contains(&"ro".to_string()));
        let all = oci_mounts(vec![], &points, true).unwrap();
        assert!(!all[0]
            .options()
            .clone()
            .unwrap()
            .contains(&"ro".to_string()));
    }

    #[test]
    fn volumes_from_copies_binds_and_volumes_with_the_mode() {
        assert_eq!(
            parse_volumes_from("web:ro,z").unwrap(),
            VolumesFrom {
                container: "web".into(),
                read_only: true,
                relabel: "z".into()
            }
        );
        assert!(!parse_volumes_from("web").unwrap().read_only);
        assert_eq!(
            parse_volumes_from("web:shared").unwrap_err().to_string(),
            "invalid mode: shared"
        );
        assert_eq!(
            parse_volumes_from("web:ro,rw").unwrap_err().to_string(),
            "invalid mode: ro,rw"
        );
        assert!(parse_volumes_from("").is_err());

        let (_d, s) = store();
        let mut tmp = mount("tmpfs", "", "/t");
        tmp.tmpfs_size = 4096;
        let src = plan(
            &s,
            &[
                mount("volume", "", "/anon"),
                mount("volume", "shared", "/data"),
                tmp,
                mount("bind", "/", "/host"),
            ],
            &[],
        )
        .unwrap();
        let from = parse_volumes_from("web:ro").unwrap();
        let got = inherit(&from, &src.points);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|p| p.read_only && p.no_copy && !p.anonymous));
        assert_eq!(got[0].source, src.points[0].source);

        // A requested mount at the same target replaces the inherited one.
        let p = plan(&s, &[mount("tmpfs", "", "/data")], &got).unwrap();
        let dests: Vec<&str> = p.points.iter().map(|p| p.destination.as_str()).collect();
        assert_eq!(dests, ["/anon", "/host", "/data"]);
        assert_eq!(p.points[2].kind, MountKind::Tmpfs);
        assert!(p.new_volumes.is_empty());
    }

    #[test]
    fn start_creates_missing_bind_sources_and_checks_them() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a/b");
        let mut p = MountPoint {
            kind: MountKind::Bind,
            source: src.clone(),
            destination: "/x".into(),
            name: String::new(),
            read_only: false,
            propagation: "rprivate".into(),
            relabel: "Z".into(),
            no_copy: false,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec![],
        };
        let e = prepare_start(std::slice::from_ref(&p), None).unwrap_err();
        assert!(e.to_string().contains("bind source path does not exist"));
        p.create_host_path = true;
        prepare_start(std::slice::from_ref(&p), None).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&src).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
    }

    #[test]
    fn propagation_needs_a_shared_source_mount() {
        let info = "22 1 0:21 / / rw shared:1 - ext4 /dev/sda rw\n\
                    30 22 0:30 / /mnt/priv rw - tmpfs t rw\n\
                    31 22 0:31 / /mnt/my\\040dir rw master:4 - tmpfs t rw\n";
        assert_eq!(
            mount_of(Path::new("/srv/x"), info),
            Some(("/".into(), "shared:1".into()))
        );
        assert_eq!(
            mount_of(Path::new("/mnt/priv/x"), info),
            Some(("/mnt/priv".into(), String::new()))
        );
        assert_eq!(
            mount_of(Path::new("/mnt/my dir"), info),
            Some(("/mnt/my dir".into(), "master:4".into()))
        );
        assert_eq!(
            mount_of(Path::new("/mnt/privy"), info),
            Some(("/".into(), "shared:1".into()))
        );
        assert_eq!(
            rootfs_propagation(&[MountPoint {
                kind: MountKind::Bind,
                source: "/".into(),
                destination: "/x".into(),
                name: String::new(),
                read_only: false,
                propagation: "rslave".into(),
                relabel: String::new(),
                no_copy: false,
                create_host_path: false,
                anonymous: false,
                tmpfs_options: vec![],
            }]),
            Some("rslave")
        );
    }
}
