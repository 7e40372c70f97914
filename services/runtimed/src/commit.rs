//! `diff`, `export` and `commit`: the container's filesystem as the image
//! daemon sees it (it owns the snapshot). The runtime daemon adds what only
//! it knows: the container's settings for a new image, and pausing the
//! container while its changes are read.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use rdock_proto::image::v1 as imagepb;
use rdock_proto::runtime::v1 as pb;
use rdock_proto::shim::v1 as shimpb;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::{Container, Status};
use crate::runtime::Runtime;

/// The container's filesystem as a tar stream.
pub type ExportStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

/// The container's settings as an OCI image config `config` object: what
/// `docker commit` keeps (Cmd, Entrypoint, Env, WorkingDir, User, Labels,
/// ExposedPorts, StopSignal).
pub fn image_config(c: &Container) -> Value {
    let list = |v: &[String]| {
        if v.is_empty() {
            Value::Null
        } else {
            json!(v)
        }
    };
    let mut m = Map::new();
    if !c.config.user.is_empty() {
        m.insert("User".into(), json!(c.config.user));
    }
    if !c.exposed_ports.is_empty() {
        let ports: Map<String, Value> = c
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        m.insert("ExposedPorts".into(), Value::Object(ports));
    }
    m.insert("Env".into(), list(&c.config.env));
    m.insert("Entrypoint".into(), list(&c.config.entrypoint));
    m.insert("Cmd".into(), list(&c.config.cmd));
    if !c.config.working_dir.is_empty() {
        m.insert("WorkingDir".into(), json!(c.config.working_dir));
    }
    if !c.config.labels.is_empty() {
        m.insert("Labels".into(), json!(c.config.labels));
    }
    if !c.config.stop_signal.is_empty() {
        m.insert("StopSignal".into(), json!(c.config.stop_signal));
    }
    Value::Object(m)
}

/// The history entry's `created_by`: the container's command, as Docker
/// records it.
pub fn created_by(c: &Container) -> String {
    c.config.cmd.join(" ")
}

impl Runtime {
    /// What changed in the container's filesystem, sorted by path.
    #[tracing::instrument(skip_all, fields(container = %key))]
    pub async fn diff(&self, key: &str) -> Result<Vec<pb::Change>> {
        let c = self.find(key)?;
        let r = self
            .imaged
            .clone()
            .diff_rootfs(imagepb::DiffRootfsRequest {
                container_id: c.id.clone(),
            })
            .await
            .map_err(|s| self.peer_error("imaged", s))?
            .into_inner();
        Ok(r.changes
            .into_iter()
            .map(|ch| pb::Change {
                kind: ch.kind,
                path: ch.path,
            })
            .collect())
    }

    /// The container's whole filesystem as a tar, streamed from the image
    /// daemon as it is written.
    #[tracing::instrument(skip_all, fields(container = %key))]
    pub async fn export(&self, key: &str) -> Result<ExportStream> {
        let c = self.find(key)?;
        let stream = self
            .imaged
            .clone()
            .export_rootfs(imagepb::ExportRootfsRequest {
                container_id: c.id.clone(),
            })
            .await
            .map_err(|s| self.peer_error("imaged", s))?
            .into_inner();
        let what = format!("export {}", c.short_id());
        Ok(Box::pin(stream.map(move |chunk| {
            chunk
                .map(|c| c.data)
                .map_err(|s| Error::from(s).context(&what))
        })))
    }

    /// The container's changes as a new image; its id. With `pause`, a
    /// running container is frozen while the image daemon reads them, and
    /// thawed whatever happens.
    #[tracing::instrument(skip_all, fields(container = %req.id, reference = %req.reference))]
    pub async fn commit(&self, req: pb::CommitRequest) -> Result<String> {
        let c = self.find(&req.id)?;
        let commit = imagepb::CommitRootfsRequest {
            container_id: c.id.clone(),
            reference: req.reference,
            message: req.message,
            author: req.author,
            changes: req.changes,
            container_config_json: image_config(&c).to_string(),
            created_by: created_by(&c),
        };
        let paused = if req.pause && c.state.status == Status::Running {
            let mut shim = self.shim(&c.id).await?;
            shim.pause(shimpb::PauseRequest {})
                .await
                .map_err(|s| Error::from(s).context(format!("pause {}", c.short_id())))?;
            Some(shim)
        } else {
            None
        };
        let res = self
            .imaged
            .clone()
            .commit_rootfs(commit)
            .await
            .map_err(|s| self.peer_error("imaged", s));
        if let Some(mut shim) = paused {
            if let Err(s) = shim.resume(shimpb::ResumeRequest {}).await {
                // Gone meanwhile (killed, exited): nothing is frozen then.
                tracing::warn!(error = %s.message(), "resume after commit");
                if res.is_ok() && self.is_running(&c.id) {
                    return Err(Error::from(s).context(format!("resume {}", c.short_id())));
                }
            }
        }
        let image = res?.into_inner();
        tracing::info!(image = %image.id, "committed");
        Ok(image.id)
    }

    fn is_running(&self, id: &str) -> bool {
        matches!(self.store.get(id), Ok(Some(c)) if c.state.status == Status::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_config_keeps_what_docker_commit_keeps() {
        let mut c = Container::default();
        c.config.cmd = vec!["sh".into(), "-c".into(), "echo hi > /f".into()];
        c.config.env = vec!["PATH=/bin".into(), "A=1".into()];
        c.config.working_dir = "/srv".into();
        c.config.user = "nobody".into();
        c.config.labels.insert("team".into(), "web".into());
        c.config.stop_signal = "SIGQUIT".into();
        c.exposed_ports = vec!["80/tcp".into()];
        let v = image_config(&c);
        assert_eq!(v["Cmd"], json!(["sh", "-c", "echo hi > /f"]));
        assert_eq!(v["Entrypoint"], Value::Null);
        assert_eq!(v["Env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(v["WorkingDir"], "/srv");
        assert_eq!(v["User"], "nobody");
        assert_eq!(v["Labels"], json!({"team": "web"}));
        assert_eq!(v["StopSignal"], "SIGQUIT");
        assert_eq!(v["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(created_by(&c), "sh -c echo hi > /f");

        // An entrypoint is kept; what is unset is left out.
        let mut c = Container::default();
        c.config.entrypoint = vec!["/bin/app".into()];
        let v = image_config(&c);
        assert_eq!(v["Entrypoint"], json!(["/bin/app"]));
        assert_eq!(v["Cmd"], Value::Null);
        for k in ["User", "WorkingDir", "Labels", "StopSignal", "ExposedPorts"] {
            assert!(v.get(k).is_none(), "{k}: {v}");
        }
    }
}
