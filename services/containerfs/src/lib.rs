//! Filesystem work on rdock containers, for the runtime daemon: named and
//! anonymous volumes, the container's own mounts (`-v`, `--mount`,
//! `--tmpfs`, `--volumes-from`), seeding new volumes from the image, and
//! `docker cp` in both directions.
//!
//! Everything here is blocking and must run as root; call it from
//! `tokio::task::spawn_blocking`. Paths inside a container are always
//! resolved inside its root directory (`openat2` with `RESOLVE_IN_ROOT`,
//! or an equivalent walk over descriptors): symlinks resolve as if that
//! directory were `/`, `..` never climbs above it, and nothing is opened,
//! written or chowned through a symlink (see [`archive`], [`extract`] and
//! [`seed`]).
//!
//! # How the runtime daemon uses it
//!
//! At start-up: `let volumes = VolumeStore::open(state.join("volumes"))?;`
//! (one per daemon, shared behind an `Arc`).
//!
//! Volume RPCs:
//! - `CreateVolume` → [`VolumeStore::create`]`(name, labels)` (empty name:
//!   random 64-hex) → [`Volume::to_proto`]`(used_by)`.
//! - `InspectVolume` / `ListVolumes` → [`VolumeStore::get`] /
//!   [`VolumeStore::list`]; `used_by` comes from the container records (the
//!   [`MountPoint::name`]s of their volume mounts).
//! - `RemoveVolume` → [`VolumeStore::remove`]`(name, &users)`, with the ids
//!   of the containers using it; with `force`, treat [`Error::NotFound`] as
//!   success. Hold the daemon's container lock across the use check and the
//!   call so no container starts using it in between.
//! - `PruneVolumes` → [`VolumeStore::prune`]`(all, |name| in_use(name))`.
//!
//! `CreateContainer`:
//! 1. For each `volumes_from` entry: [`parse_volumes_from`], look the
//!    container up, then [`inherit`]`(&spec, &other.mount_points)`.
//! 2. [`mounts::plan`]`(&volumes, &req.mounts, &inherited)` validates
//!    everything and creates the volumes; keep `plan.points` in the
//!    container record (the type is serde-serializable). If creating the
//!    container fails later, call `plan.rollback(&volumes, |name| in_use(name))`.
//!
//! Each start (`prepare_run`, after the root filesystem is mounted, before
//! the bundle is written):
//! 1. [`prepare_start`]`(&points, None)`: bind sources created or checked,
//!    propagation checked, `z`/`Z` relabelled where SELinux enforces.
//! 2. [`seed_volumes`]`(&volumes, &rootfs, &points)`: new volumes get the
//!    image's content at their target, once.
//! 3. In `spec.rs`: `mounts = `[`oci_mounts`]`(default_and_etc_mounts,
//!    &points, read_only)?` (`read_only` is `--read-only`: it makes the
//!    default and /etc mounts read-only, as Docker does; `root.readonly`
//!    stays runtimed's) and, if [`rootfs_propagation`]`(&points)` is
//!    `Some(p)`, set `linux.rootfsPropagation = p`.
//!
//! `inspect`'s `Mounts` is `points.iter().map(MountPoint::inspect)`.
//! `rm -v` removes the points with `anonymous` set
//! ([`VolumeStore::remove`] with no users; ignore an in-use refusal, the
//! volume is shared through `--volumes-from`).
//!
//! `docker cp` (root = `/proc/<pid>/root` of a running container, or a
//! mount of a stopped container's root filesystem):
//! - `StatPath` → [`stat_path`]`(root, path)`.
//! - `CopyFrom` → [`PathArchive::open`]`(root, path, follow_link)`, send
//!   [`PathArchive::stat`] first, then [`PathArchive::write_to`]`(writer)`
//!   with a channel-backed writer.
//! - `CopyTo` → [`extract_into`]`(root, path, reader, keep_owner,
//!   &ExtractLimits::default())` with a channel-backed reader.
//! - [`Error::PathNotFound`]`(path)` becomes Docker's `Could not find the
//!   file PATH in container NAME` (gRPC NotFound).
//!
//! Errors map one to one onto the daemon's: [`Error::InvalidArgument`],
//! [`Error::NotFound`], [`Error::Conflict`] (volume in use),
//! [`Error::Internal`].

pub mod archive;
mod dirfd;
pub mod error;
pub mod extract;
mod inroot;
pub mod mounts;
pub mod seed;
pub mod selinux;
mod tmpfs;
pub mod volume;

pub use archive::{archive_path, go_file_mode, stat_path, PathArchive};
pub use error::{Error, Result};
pub use extract::{extract_into, ExtractLimits, Extracted};
pub use mounts::{
    inherit, oci_mounts, parse_volumes_from, plan, prepare_start, rootfs_propagation, MountKind,
    MountPoint, Plan, VolumesFrom,
};
pub use seed::seed_volumes;
pub use volume::{validate_name, Pruned, Volume, VolumeStore};
