//! Volumes: `volume create/ls/inspect/rm/prune`, and the volumes a
//! container's create, failed create and removal make or remove.
//!
//! Whether a volume is in use is read from the container records, running
//! or not (as Docker does). Those decisions hold [`Runtime::volume_lock`]
//! exclusively; a create holds it shared from planning its mounts until its
//! record is stored, so a volume is never removed between a create choosing
//! it and the record that names it.

use std::collections::{BTreeMap, HashMap};

use rdock_containerfs::{MountKind, Plan};
use rdock_proto::runtime::v1 as pb;

use crate::error::{join, Error, Result};
use crate::model::Container;
use crate::runtime::Runtime;

/// The containers (ids, in record order) using each volume.
pub fn volume_users(containers: &[Container]) -> HashMap<String, Vec<String>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for c in containers {
        for name in c.volume_names() {
            let ids = users.entry(name.to_string()).or_default();
            if !ids.contains(&c.id) {
                ids.push(c.id.clone());
            }
        }
    }
    users
}

/// The volumes `c` mounts, its own and those it inherited through
/// `--volumes-from`: `rm -v` removes the anonymous ones among them that no
/// other container uses (as Docker does, the last user removes an
/// inherited anonymous volume).
pub fn mounted_volumes(c: &Container) -> Vec<String> {
    c.mount_points
        .iter()
        .filter(|p| p.kind == MountKind::Volume)
        .map(|p| p.name.clone())
        .collect()
}

impl Runtime {
    /// Who uses which volume, from the container records.
    fn users(&self) -> Result<HashMap<String, Vec<String>>> {
        Ok(volume_users(&self.store.all()?))
    }

    /// Creates volume `name` (empty: a random name), or answers the
    /// existing one of that name, as Docker does.
    #[tracing::instrument(skip_all, fields(volume = %name))]
    pub async fn create_volume(
        &self,
        name: String,
        labels: BTreeMap<String, String>,
    ) -> Result<pb::Volume> {
        let volumes = self.volumes.clone();
        let (v, _) = tokio::task::spawn_blocking(move || volumes.create(&name, labels))
            .await
            .map_err(join("create volume"))??;
        let used_by = self.users()?.remove(&v.name).unwrap_or_default();
        Ok(v.to_proto(used_by))
    }

    /// Every volume, in name order, with the containers using it.
    #[tracing::instrument(skip_all)]
    pub async fn list_volumes(&self) -> Result<Vec<pb::Volume>> {
        let volumes = self.volumes.clone();
        let list = tokio::task::spawn_blocking(move || volumes.list())
            .await
            .map_err(join("list volumes"))??;
        let mut users = self.users()?;
        Ok(list
            .into_iter()
            .map(|v| {
                let used_by = users.remove(&v.name).unwrap_or_default();
                v.to_proto(used_by)
            })
            .collect())
    }

    /// Volume `name`; Docker's `get NAME: no such volume` when missing.
    #[tracing::instrument(skip_all, fields(volume = %name))]
    pub async fn inspect_volume(&self, name: &str) -> Result<pb::Volume> {
        let volumes = self.volumes.clone();
        let n = name.to_string();
        let v = tokio::task::spawn_blocking(move || volumes.get(&n))
            .await
            .map_err(join("inspect volume"))??;
        let used_by = self.users()?.remove(&v.name).unwrap_or_default();
        Ok(v.to_proto(used_by))
    }

    /// Removes volume `name`, refused while any container uses it (Docker's
    /// `remove NAME: volume is in use - [IDS]`, with or without `force`).
    /// With `force` a volume that does not exist is not an error.
    #[tracing::instrument(skip_all, fields(volume = %name, force))]
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let _w = self.volume_lock.write().await;
        let users = self.users()?.remove(name).unwrap_or_default();
        let volumes = self.volumes.clone();
        let n = name.to_string();
        let res = tokio::task::spawn_blocking(move || volumes.remove(&n, &users))
            .await
            .map_err(join("remove volume"))?;
        match res {
            Err(rdock_containerfs::Error::NotFound(_)) if force => Ok(()),
            other => other.map_err(Error::from),
        }
    }

    /// Removes the volumes no container uses: anonymous ones, and named
    /// ones too with `all`. The names removed and the bytes they held.
    #[tracing::instrument(skip_all, fields(all))]
    pub async fn prune_volumes(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let _w = self.volume_lock.write().await;
        let users = self.users()?;
        let volumes = self.volumes.clone();
        let pruned =
            tokio::task::spawn_blocking(move || volumes.prune(all, |n| users.contains_key(n)))
                .await
                .map_err(join("prune volumes"))??;
        Ok((pruned.deleted, pruned.space_reclaimed))
    }

    /// Removes the anonymous volumes removed container `c` mounted (its
    /// own or inherited) that no other container uses.
    /// Failures are logged: the container is gone already.
    pub(crate) async fn remove_anonymous_volumes(&self, c: &Container) {
        let names = mounted_volumes(c);
        if names.is_empty() {
            return;
        }
        let _w = self.volume_lock.write().await;
        let users = match self.users() {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(container = %c.short_id(), error = %e, "cannot tell which volumes are in use; keeping them");
                return;
            }
        };
        let volumes = self.volumes.clone();
        let id = c.short_id().to_string();
        let done = tokio::task::spawn_blocking(move || {
            for name in names.iter().filter(|n| !users.contains_key(*n)) {
                let anonymous = volumes.get(name).is_ok_and(|v| v.anonymous);
                if !anonymous {
                    continue;
                }
                match volumes.remove(name, &[]) {
                    Ok(()) | Err(rdock_containerfs::Error::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(container = %id, volume = %name, error = %e, "remove anonymous volume")
                    }
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(container = %c.short_id(), error = %e, "remove anonymous volumes");
        }
    }

    /// Removes the volumes a failed create made, unless another container
    /// started using one meanwhile. Call without holding the shared lock.
    pub(crate) async fn rollback_mounts(&self, plan: &Plan) {
        if plan.new_volumes.is_empty() {
            return;
        }
        let _w = self.volume_lock.write().await;
        let users = match self.users() {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which volumes are in use; keeping the failed create's volumes");
                return;
            }
        };
        let volumes = self.volumes.clone();
        let plan = plan.clone();
        let done = tokio::task::spawn_blocking(move || {
            plan.rollback(&volumes, |n| users.contains_key(n));
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "remove the volumes of a failed create");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdock_containerfs::MountPoint;

    fn point(kind: MountKind, name: &str, anonymous: bool) -> MountPoint {
        MountPoint {
            kind,
            source: format!("/v/{name}/_data").into(),
            destination: format!("/{name}"),
            name: name.into(),
            read_only: false,
            propagation: String::new(),
            relabel: String::new(),
            no_copy: false,
            create_host_path: false,
            anonymous,
            tmpfs_options: vec![],
        }
    }

    fn container(id: &str, points: Vec<MountPoint>) -> Container {
        Container {
            id: id.into(),
            mount_points: points,
            ..Default::default()
        }
    }

    #[test]
    fn users_come_from_every_record_and_rm_v_considers_every_mounted_volume() {
        let a = container(
            "aaa",
            vec![
                point(MountKind::Volume, "data", false),
                point(MountKind::Volume, "anon1", true),
                point(MountKind::Bind, "host", false),
                point(MountKind::Tmpfs, "", false),
            ],
        );
        // Inherited through --volumes-from: not anonymous for this one.
        let b = container(
            "bbb",
            vec![
                point(MountKind::Volume, "anon1", false),
                point(MountKind::Volume, "data", false),
            ],
        );
        let c = container("ccc", vec![]);
        let users = volume_users(&[a.clone(), b.clone(), c]);
        assert_eq!(users["data"], ["aaa", "bbb"]);
        assert_eq!(users["anon1"], ["aaa", "bbb"]);
        assert!(!users.contains_key("host"));
        assert_eq!(users.len(), 2);
        // Which of them are anonymous is the volume store's to say.
        assert_eq!(mounted_volumes(&a), ["data", "anon1"]);
        assert_eq!(mounted_volumes(&b), ["anon1", "data"]);
    }
}
