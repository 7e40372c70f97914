//! `docker commit`: a container's changes as a new image.
//!
//! The upper dir is tarred into a layer (whiteouts and opaque dirs in their
//! OCI form), gzipped into the content store like a pulled blob, and
//! unpacked onto the image's layers with the same unpacker pulls use, so
//! the new image runs at once. Its config is the image's, with the
//! container's settings and the `changes` over its `config`, the new
//! diff_id and a history entry; its manifest is of the image's media type
//! family and lists the image's layer descriptors as they were, so a push
//! and a pull elsewhere give the same digests. An upper dir with nothing in
//! it adds no layer, only a history entry marked `empty_layer`, as Docker
//! does.

use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;

use rdock_proto::image::v1::Image;
use serde_json::{json, Map, Value};

use crate::archive::{self, TarOut};
use crate::error::{io, Error, Result};
use crate::images::{short_id, ImageStore};
use crate::manifest;
use crate::meta::{ImageRecord, SnapshotRecord};
use crate::reference;
use crate::snapshot::{chain_ids, sync_filesystem};
use crate::store::{digest_of, HashingWriter, Ingested};
use crate::unpack::unpack_layer;

/// What `rdockctl commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// REPO[:TAG]; empty leaves the image untagged.
    pub reference: String,
    /// History comment (`-m`).
    pub message: String,
    /// Image and history author (`-a`).
    pub author: String,
    /// Dockerfile instructions applied last (`-c`).
    pub changes: Vec<String>,
    /// The container's settings, an image config `config` object (JSON);
    /// empty keeps the image's.
    pub container_config_json: String,
    /// The command that made the container, for the history entry.
    pub created_by: String,
}

/// The container settings a commit takes, and whether a value fits.
fn setting_fits(key: &str, v: &Value) -> Option<bool> {
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    Some(match key {
        "Cmd" | "Entrypoint" | "Env" | "Shell" | "OnBuild" => strings(v),
        "User" | "WorkingDir" | "StopSignal" => v.is_string(),
        "ExposedPorts" | "Volumes" | "Healthcheck" => v.is_object(),
        "Labels" => v
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        "ArgsEscaped" => v.is_boolean(),
        _ => return None,
    })
}

/// The new image's `config`: the image's, then the container's settings
/// over it (a null removes a setting), then the changes.
pub fn new_config(base: &Value, container: &str, changes: &[String]) -> Result<Map<String, Value>> {
    let mut config = base
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !container.trim().is_empty() {
        let bad = |why: String| Error::InvalidArgument(format!("container config: {why}"));
        let v: Value =
            serde_json::from_str(container).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(settings) = v else {
            return Err(bad("not a JSON object".into()));
        };
        for (k, v) in settings {
            if v.is_null() {
                config.remove(&k);
                continue;
            }
            match setting_fits(&k, &v) {
                None => return Err(bad(format!("unknown setting {k:?}"))),
                Some(false) => return Err(bad(format!("{k} has the wrong type"))),
                Some(true) => {
                    config.insert(k, v);
                }
            }
        }
    }
    manifest::apply_changes(&mut config, changes)?;
    Ok(config)
}

/// The new image config: `base` with `config`, the new layer, a history
/// entry and `created`/`author`.
pub fn child_config(
    mut base: Value,
    config: Map<String, Value>,
    diff_id: Option<&str>,
    created: &str,
    opts: &CommitOptions,
) -> Result<Value> {
    let obj = base
        .as_object_mut()
        .ok_or_else(|| Error::BadContent("image config is not a JSON object".into()))?;
    obj.insert("config".into(), Value::Object(config));
    obj.insert("created".into(), json!(created));
    if opts.author.is_empty() {
        obj.remove("author");
    } else {
        obj.insert("author".into(), json!(opts.author));
    }
    // They described the container the base image was made from.
    obj.remove("container");
    obj.remove("container_config");
    if let Some(d) = diff_id {
        obj.get_mut("rootfs")
            .and_then(|r| r.get_mut("diff_ids"))
            .and_then(Value::as_array_mut)
            .ok_or_else(|| Error::BadContent("image config has no rootfs.diff_ids".into()))?
            .push(json!(d));
    }
    let mut entry = Map::new();
    entry.insert("created".into(), json!(created));
    for (k, v) in [
        ("created_by", &opts.created_by),
        ("author", &opts.author),
        ("comment", &opts.message),
    ] {
        if !v.is_empty() {
            entry.insert(k.into(), json!(v));
        }
    }
    if diff_id.is_none() {
        entry.insert("empty_layer".into(), json!(true));
    }
    match obj.get_mut("history").and_then(Value::as_array_mut) {
        Some(h) => h.push(Value::Object(entry)),
        None => {
            obj.insert("history".into(), json!([entry]));
        }
    }
    Ok(base)
}

/// The new manifest: the base manifest's media type family, its layer
/// descriptors as they were, then the new layer's.
pub fn child_manifest(
    base: &[u8],
    config: (&str, u64),
    layer: Option<(&str, u64)>,
) -> Result<Vec<u8>> {
    let v: Value = serde_json::from_slice(base)
        .map_err(|e| Error::BadContent(format!("image manifest is not valid JSON: {e}")))?;
    let docker = match v.get("mediaType").and_then(Value::as_str) {
        Some(t) => t == manifest::DOCKER_MANIFEST,
        None => {
            v.pointer("/config/mediaType").and_then(Value::as_str) == Some(manifest::DOCKER_CONFIG)
        }
    };
    let (media_type, config_type, layer_type) = if docker {
        (
            manifest::DOCKER_MANIFEST,
            manifest::DOCKER_CONFIG,
            manifest::DOCKER_LAYER_GZIP,
        )
    } else {
        (
            manifest::OCI_MANIFEST,
            manifest::OCI_CONFIG,
            manifest::OCI_LAYER_GZIP,
        )
    };
    let mut layers = v
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| Error::BadContent("image manifest has no layers".into()))?;
    if let Some((digest, size)) = layer {
        layers.push(json!({"mediaType": layer_type, "digest": digest, "size": size}));
    }
    let m = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config.0, "size": config.1},
        "layers": layers,
    });
    serde_json::to_vec(&m).map_err(|e| Error::Store(format!("encode manifest: {e}")))
}

/// A layer tarred and gzipped into `ingest/`, synced.
struct NewLayer {
    blob: Ingested,
    digest: String,
    size: u64,
    diff_id: String,
    entries: u64,
}

impl ImageStore {
    /// Commits a container's changes as a new image; on failure nothing of
    /// it is left behind.
    #[tracing::instrument(skip_all, fields(container = %container, reference = %opts.reference))]
    pub async fn commit_rootfs(
        self: &Arc<Self>,
        container: &str,
        opts: CommitOptions,
    ) -> Result<Image> {
        let what = format!("commit {container}");
        let tag = if opts.reference.is_empty() {
            None
        } else {
            let r = reference::parse(&opts.reference).map_err(|e| e.context(&what))?;
            if r.digest().is_some() {
                return Err(Error::InvalidArgument(format!(
                    "{what}: cannot tag with a digest reference: {}",
                    opts.reference
                )));
            }
            Some(reference::canonical(&r))
        };
        let res = {
            // Held while the upper dir is tarred: `remove_rootfs` waits, so
            // the layer cannot silently lack what it deleted. Taken before
            // the gc lock, as `remove_rootfs` does.
            let lock = self.rootfs_lock(container);
            let _rootfs = lock.rw.read().await;
            // Held until the records are in: garbage collection (and so
            // `rmi`) cannot take the layers this builds on meanwhile.
            let _shared = self.gc_lock.read().await;
            let store = self.clone();
            let container = container.to_string();
            tokio::task::spawn_blocking(move || {
                store.commit_blocking(&container, tag.as_deref(), &opts)
            })
            .await
            .map_err(|e| Error::Store(format!("commit task: {e}")))
            .and_then(|r| r)
        };
        match res {
            Ok(id) => self.image(&id),
            Err(e) => {
                if let Err(gc) = self.gc().await {
                    tracing::warn!(error = %gc, "cleanup after failed commit");
                }
                Err(e.context(what))
            }
        }
    }

    fn commit_blocking(
        &self,
        container: &str,
        tag: Option<&str>,
        opts: &CommitOptions,
    ) -> Result<String> {
        let layers = self.rootfs_layers(container)?;
        let base_id = layers.image_id.clone();
        let base = self.meta.image(&base_id)?.ok_or_else(|| {
            Error::Conflict(format!(
                "its image {} was removed, and with it the layers a new image would share",
                short_id(&base_id)
            ))
        })?;
        let base_config_bytes = self.content.read(&base_id)?;
        let info = manifest::config_info(&base_config_bytes)?;
        let base_config: Value = serde_json::from_slice(&base_config_bytes)
            .map_err(|e| Error::BadContent(format!("image config is not valid JSON: {e}")))?;
        let config = new_config(&base_config, &opts.container_config_json, &opts.changes)?;
        let base_manifest = self.content.read(&base.manifest_digest)?;
        for l in self.manifest_of(&base.manifest_digest)?.layers {
            if !self.content.contains(&l.digest) {
                return Err(Error::Conflict(format!(
                    "layer {} of image {} is not in the content store; pull the image again",
                    l.digest,
                    short_id(&base_id)
                )));
            }
        }

        let layer = self.tar_upper(&layers.upper)?;
        let mut new_snapshot = None;
        let mut layer_size = 0;
        let added = (layer.entries > 0).then_some(layer);
        if let Some(l) = &added {
            let mut diff_ids = info.diff_ids.clone();
            diff_ids.push(l.diff_id.clone());
            let chain = chain_ids(&diff_ids).pop().unwrap_or_default();
            match self.meta.snapshot(&chain)? {
                Some(rec) if self.snapshots.exists(&chain) => layer_size = rec.size,
                _ => {
                    let tmp = self.snapshots.tmp()?;
                    let f = std::fs::File::open(&l.blob.path).map_err(io("open the new layer"))?;
                    let out = unpack_layer(
                        BufReader::with_capacity(1 << 20, f),
                        &tmp.fs(),
                        &layers.image,
                        &self.limits,
                    )
                    .map_err(|e| {
                        if e.is_bad_content() {
                            Error::BadContent(format!("the new layer: {e}"))
                        } else {
                            Error::Store(format!("unpack the new layer: {e}"))
                        }
                    })?;
                    if out.diff_id != l.diff_id {
                        return Err(Error::Store(format!(
                            "the new layer unpacked as {} but was written as {}",
                            out.diff_id, l.diff_id
                        )));
                    }
                    self.snapshots.commit(tmp, &chain)?;
                    layer_size = out.size;
                    new_snapshot = Some((
                        chain,
                        SnapshotRecord {
                            diff_id: out.diff_id,
                            size: out.size,
                        },
                    ));
                }
            }
        }

        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let cfg = child_config(
            base_config,
            config,
            added.as_ref().map(|l| l.diff_id.as_str()),
            &created,
            opts,
        )?;
        let cfg_bytes =
            serde_json::to_vec(&cfg).map_err(|e| Error::Store(format!("encode config: {e}")))?;
        let id = digest_of(&cfg_bytes);
        let man_bytes = child_manifest(
            &base_manifest,
            (&id, cfg_bytes.len() as u64),
            added.as_ref().map(|l| (l.digest.as_str(), l.size)),
        )?;

        // Durable first, recorded last.
        if let Some(mut l) = added {
            sync_filesystem(self.state_dir())?;
            let path = std::mem::take(&mut l.blob.path);
            self.content.commit_ingested(&path, &l.digest)?;
        }
        self.content.put(&cfg_bytes, Some(&id))?;
        let manifest_digest = self.content.put(&man_bytes, None)?;
        let mut b = self.meta.batch()?;
        if let Some((chain, rec)) = &new_snapshot {
            b.put_snapshot(chain, rec)?;
        }
        b.put_image(
            &id,
            &ImageRecord {
                manifest_digest,
                size: base.size + layer_size,
                repo_digests: vec![],
            },
        )?;
        if let Some(t) = tag {
            b.put_tag(t, &id)?;
        }
        b.commit()?;
        tracing::info!(image = %id, "committed");
        Ok(id)
    }

    /// Tars and gzips `upper` into `ingest/`, hashing both streams.
    fn tar_upper(&self, upper: &Path) -> Result<NewLayer> {
        let (path, file) = self.content.ingest_file()?;
        let blob = Ingested { path };
        let written = (|| {
            let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
            let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
            let mut out = TarOut::new(HashingWriter::new(gz));
            archive::write_layer(upper, &mut out)?;
            let (plain, entries) = out.finish()?;
            let diff_id = plain.digest();
            let compressed = plain.inner.finish()?;
            let digest = compressed.digest();
            let size = compressed.written;
            let file = compressed.inner.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::io::Result::Ok((diff_id, digest, size, entries))
        })();
        let (diff_id, digest, size, entries) =
            written.map_err(io("write the layer from the upper dir"))?;
        Ok(NewLayer {
            blob,
            digest,
            size,
            diff_id,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_takes_container_settings_then_changes() {
        let base = json!({"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/",
            "Entrypoint": ["/init"], "Labels": {"a": "1"}}});
        let c = new_config(
            &base,
            r#"{"Cmd": ["top"], "Env": ["PATH=/bin", "X=1"], "Entrypoint": null}"#,
            &["ENV Y=2".into(), "LABEL b=2".into()],
        )
        .unwrap();
        assert_eq!(c["Cmd"], json!(["top"]));
        assert_eq!(c["Env"], json!(["PATH=/bin", "X=1", "Y=2"]));
        assert!(c.get("Entrypoint").is_none());
        assert_eq!(c["Labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(c["WorkingDir"], json!("/"));
        for bad in ["[1]", "{", r#"{"Cmd": "sh"}"#, r#"{"Privileged": true}"#] {
            let e = new_config(&base, bad, &[]).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        }
        assert!(new_config(&base, "", &["FROM x".into()]).is_err());
        assert_eq!(new_config(&base, "", &[]).unwrap()["Cmd"], json!(["sh"]));
    }

    #[test]
    fn child_config_appends_layer_and_history() {
        let base = json!({"architecture": "amd64", "os": "linux", "author": "old",
            "container": "abc", "rootfs": {"type": "layers", "diff_ids": ["sha256:a"]},
            "history": [{"created_by": "base"}]});
        let opts = CommitOptions {
            message: "msg".into(),
            created_by: "sh -c touch /x".into(),
            ..Default::default()
        };
        let c = child_config(base.clone(), Map::new(), Some("sha256:b"), "T", &opts).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b"]));
        assert_eq!(
            c["history"][1],
            json!({"created": "T", "created_by": "sh -c touch /x", "comment": "msg"})
        );
        assert_eq!(c["created"], json!("T"));
        assert!(c.get("author").is_none() && c.get("container").is_none());
        assert_eq!(c["architecture"], json!("amd64"));

        let opts = CommitOptions {
            author: "me".into(),
            ..Default::default()
        };
        let c = child_config(base, Map::new(), None, "T", &opts).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:a"]));
        assert_eq!(
            c["history"][1],
            json!({"created": "T", "author": "me", "empty_layer": true})
        );
        assert_eq!(c["author"], json!("me"));
    }

    #[test]
    fn manifest_keeps_the_family_and_the_base_layers() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let docker = json!({"schemaVersion": 2, "mediaType": manifest::DOCKER_MANIFEST,
            "config": {"mediaType": manifest::DOCKER_CONFIG, "digest": d('a'), "size": 1},
            "layers": [{"mediaType": manifest::DOCKER_LAYER_GZIP, "digest": d('b'), "size": 2,
                "urls": ["https://example.com/x"]}]});
        let m: Value = serde_json::from_slice(
            &child_manifest(
                docker.to_string().as_bytes(),
                (&d('c'), 3),
                Some((&d('e'), 4)),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(m["mediaType"], json!(manifest::DOCKER_MANIFEST));
        assert_eq!(m["config"]["mediaType"], json!(manifest::DOCKER_CONFIG));
        assert_eq!(
            m["layers"][0], docker["layers"][0],
            "base descriptors kept as they were"
        );
        assert_eq!(
            m["layers"][1]["mediaType"],
            json!(manifest::DOCKER_LAYER_GZIP)
        );
        assert_eq!(m["layers"][1]["size"], json!(4));
        let bytes = serde_json::to_vec(&m).unwrap();
        assert!(matches!(
            manifest::parse(&bytes).unwrap(),
            manifest::Fetched::Manifest(_)
        ));

        let oci = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": d('a'), "size": 1},
            "layers": [{"mediaType": manifest::OCI_LAYER_GZIP, "digest": d('b'), "size": 2}]});
        let m: Value = serde_json::from_slice(
            &child_manifest(oci.to_string().as_bytes(), (&d('c'), 3), None).unwrap(),
        )
        .unwrap();
        assert_eq!(m["mediaType"], json!(manifest::OCI_MANIFEST));
        assert_eq!(m["config"]["digest"], json!(d('c')));
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    }

    use std::io::Read;

    use crate::testutil::{can_run, change_things, fixture, mount, tar_names, CHANGES};

    fn shown(v: Vec<rdock_proto::image::v1::RootfsChange>) -> Vec<String> {
        v.into_iter()
            .map(|c| format!("{} {}", c.kind, c.path))
            .collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_makes_an_image_that_runs_at_once() {
        if !can_run() {
            return;
        }
        let (f, base) = fixture().await;
        let mnt = tempfile::tempdir().unwrap();
        let p = f.store.prepare_rootfs("c1", "base:1").await.unwrap();
        assert_eq!(
            p.lowerdirs.len(),
            2,
            "the init layer, then the image's layer"
        );
        {
            let _m = mount(&p, &mnt.path().join("c1"));
            let root = mnt.path().join("c1");
            assert!(root.join("etc/hosts").is_file() && root.join("proc").is_dir());
            change_things(&root);
            let running = shown(f.store.diff_rootfs("c1").await.unwrap());
            assert_eq!(running, CHANGES, "diff of a running container");
        }
        let stopped = shown(f.store.diff_rootfs("c1").await.unwrap());
        assert_eq!(stopped, CHANGES, "diff of a stopped container");

        let opts = CommitOptions {
            reference: "committed:1".into(),
            message: "add a user".into(),
            author: "Jane <jane@example.com>".into(),
            changes: vec!["ENV X=1".into()],
            container_config_json: r#"{"Cmd": ["/bin/sh", "-c", "echo hi"], "WorkingDir": "/tmp"}"#
                .into(),
            created_by: "/bin/sh -c change-things".into(),
        };
        let img = f.store.commit_rootfs("c1", opts).await.unwrap();
        assert_eq!(img.references, ["docker.io/library/committed:1"]);
        assert!(img.size > base.size);
        let cfg: Value = serde_json::from_str(&img.config_json).unwrap();
        let base_cfg: Value = serde_json::from_str(&base.config_json).unwrap();
        let diff_ids = cfg["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(diff_ids.len(), 2);
        assert_eq!(diff_ids[0], base_cfg["rootfs"]["diff_ids"][0]);
        let h = cfg["history"].as_array().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1]["comment"], json!("add a user"));
        assert_eq!(h[1]["author"], json!("Jane <jane@example.com>"));
        assert_eq!(h[1]["created_by"], json!("/bin/sh -c change-things"));
        assert!(h[1].get("empty_layer").is_none());
        assert_eq!(cfg["author"], json!("Jane <jane@example.com>"));
        assert_eq!(cfg["config"]["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(cfg["config"]["WorkingDir"], json!("/tmp"));
        let env = cfg["config"]["Env"].as_array().unwrap();
        assert!(
            env.contains(&json!("X=1"))
                && env.iter().any(|e| e.as_str().unwrap().starts_with("PATH="))
        );

        // The layer: stored like a pulled blob, whiteouts in OCI form.
        let m: Value = serde_json::from_str(&img.manifest_json).unwrap();
        assert_eq!(m["mediaType"], json!(manifest::OCI_MANIFEST));
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        let layer = &m["layers"][1];
        assert_eq!(layer["mediaType"], json!(manifest::OCI_LAYER_GZIP));
        let digest = layer["digest"].as_str().unwrap();
        let blob = f.store.content.read(digest).unwrap();
        assert_eq!(digest_of(&blob), digest);
        assert_eq!(layer["size"], json!(blob.len()));
        let plain = gunzip(&blob);
        assert_eq!(diff_ids[1], json!(digest_of(&plain)));
        assert_eq!(
            tar_names(&plain),
            [
                "etc/",
                "etc/.wh.group",
                "etc/new",
                "etc/new2",
                "etc/passwd",
                "opt/",
                "opt/o",
                "var/",
                "var/cache/",
                "var/cache/.wh..wh..opq",
                "var/cache/b"
            ]
        );
        assert_eq!(
            f.store
                .manifest_of(&img.manifest_digest)
                .unwrap()
                .layers
                .len(),
            2
        );

        // It runs at once: a container of it sees the changes.
        let p2 = f.store.prepare_rootfs("c2", "committed:1").await.unwrap();
        assert_eq!(p2.lowerdirs.len(), 3);
        {
            let root = mnt.path().join("c2");
            let _m = mount(&p2, &root);
            assert_eq!(std::fs::read(root.join("etc/new")).unwrap(), b"new\n");
            assert!(!root.join("etc/group").exists(), "deleted file gone");
            assert!(
                !root.join("var/cache/a").exists(),
                "hidden by the opaque dir"
            );
            assert_eq!(std::fs::read(root.join("var/cache/b")).unwrap(), b"b\n");
            let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
            assert!(passwd.ends_with("me:x:1000:1000::/:/bin/sh\n"));
            assert_eq!(
                std::os::unix::fs::MetadataExt::ino(
                    &std::fs::metadata(root.join("etc/new")).unwrap()
                ),
                std::os::unix::fs::MetadataExt::ino(
                    &std::fs::metadata(root.join("etc/new2")).unwrap()
                ),
                "hard link kept"
            );
        }
        assert!(
            shown(f.store.diff_rootfs("c2").await.unwrap()).is_empty(),
            "a fresh container of the new image has no changes"
        );

        // History: the new entry on top, with its layer's size.
        let rows = f.store.history("committed:1").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, img.id);
        assert_eq!(rows[0].comment, "add a user");
        assert_eq!(rows[0].size as u64, img.size - base.size);
        assert_eq!(rows[1].id, "<missing>");
        assert_eq!(rows[1].created_by, "rdockctl import");

        // The new image survives a restart of the daemon.
        let f = f.reopen();
        assert_eq!(f.store.resolve("committed:1").unwrap(), img.id);
        assert!(f.store.content.contains(digest));
        let p3 = f.store.prepare_rootfs("c3", &img.id).await.unwrap();
        assert!(Path::new(&p3.lowerdirs[1]).join("etc/new").is_file());
        for c in ["c1", "c2", "c3"] {
            f.store.remove_rootfs(c).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removal_waits_for_a_commit_in_progress() {
        if !can_run() {
            return;
        }
        let (f, _) = fixture().await;
        let p = f.store.prepare_rootfs("c1", "base:1").await.unwrap();
        let upper = Path::new(&p.upperdir).to_path_buf();
        std::fs::create_dir(upper.join("data")).unwrap();
        for i in 0..200 {
            std::fs::write(upper.join(format!("data/f{i:03}")), b"x").unwrap();
        }
        // Garbage collection held: the commit takes the container's lock,
        // then waits here, before it reads the upper dir.
        let gc = f.store.gc_lock.write().await;
        let store = f.store.clone();
        let opts = CommitOptions {
            reference: "raced:1".into(),
            ..Default::default()
        };
        let commit = tokio::spawn(async move { store.commit_rootfs("c1", opts).await });
        let lock = f.store.rootfs_lock("c1");
        for _ in 0..1000 {
            if lock.rw.try_write().is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(lock.rw.try_write().is_err(), "the commit holds the lock");
        drop(lock);
        let store = f.store.clone();
        let remove = tokio::spawn(async move { store.remove_rootfs("c1").await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!remove.is_finished(), "removal went ahead of the commit");
        assert!(upper.join("data/f199").is_file());
        drop(gc);

        let img = commit.await.unwrap().unwrap();
        remove.await.unwrap().unwrap();
        assert!(!upper.exists(), "removed after the commit");
        let m: Value = serde_json::from_str(&img.manifest_json).unwrap();
        let digest = m["layers"][1]["digest"].as_str().unwrap();
        let names = tar_names(&gunzip(&f.store.content.read(digest).unwrap()));
        assert_eq!(names.len(), 201, "the whole upper dir: {names:?}");
        // Nobody holds the container's lock any more: its entry is gone.
        f.store.rootfs_lock("c2");
        assert!(!f.store.rootfs_locks.lock().unwrap().contains_key("c1"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_without_changes_adds_only_a_history_entry() {
        if !can_run() {
            return;
        }
        let (f, base) = fixture().await;
        f.store.prepare_rootfs("c1", "base:1").await.unwrap();
        let (blobs, snapshots, ..) = f.counts();
        let img = f
            .store
            .commit_rootfs("c1", CommitOptions::default())
            .await
            .unwrap();
        assert!(img.references.is_empty(), "untagged");
        assert_ne!(img.id, base.id);
        let cfg: Value = serde_json::from_str(&img.config_json).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(cfg["history"][1]["empty_layer"], json!(true));
        assert_eq!(
            f.store
                .manifest_of(&img.manifest_digest)
                .unwrap()
                .layers
                .len(),
            1
        );
        assert_eq!(f.counts().0, blobs + 2, "a config and a manifest, no layer");
        assert_eq!(f.counts().1, snapshots);
        let rows = f.store.history(&img.id).unwrap();
        assert_eq!((rows[0].size, rows[0].empty_layer), (0, true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_input_leaves_nothing_behind() {
        if !can_run() {
            return;
        }
        let (f, _) = fixture().await;
        let p = f.store.prepare_rootfs("c1", "base:1").await.unwrap();
        std::fs::write(Path::new(&p.upperdir).join("added"), b"x").unwrap();
        let before = f.counts();
        let with = |o: CommitOptions| o;
        let cases = [
            ("nope", CommitOptions::default(), "no such container"),
            ("../x", CommitOptions::default(), "invalid container id"),
            (
                "c1",
                with(CommitOptions {
                    reference: "Bad Ref".into(),
                    ..Default::default()
                }),
                "invalid reference format",
            ),
            (
                "c1",
                with(CommitOptions {
                    reference: format!("x@sha256:{}", "a".repeat(64)),
                    ..Default::default()
                }),
                "digest reference",
            ),
            (
                "c1",
                with(CommitOptions {
                    changes: vec!["FROM scratch".into()],
                    ..Default::default()
                }),
                "unknown instruction",
            ),
            (
                "c1",
                with(CommitOptions {
                    container_config_json: "{".into(),
                    ..Default::default()
                }),
                "container config: not valid JSON",
            ),
        ];
        for (container, opts, want) in cases {
            let e = f.store.commit_rootfs(container, opts).await.unwrap_err();
            assert!(
                matches!(e, Error::InvalidArgument(_) | Error::NotFound(_)),
                "{container}: {e}"
            );
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("commit {container}: ")), "{msg}");
            assert!(msg.contains(want), "{msg}");
            assert_eq!(f.counts(), before, "{msg}");
        }
        assert!(matches!(
            f.store.diff_rootfs("nope").await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            f.store.export_rootfs("nope").await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            f.store.history("nope:1").unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            f.store.diff_rootfs("../x").await.unwrap_err(),
            Error::InvalidArgument(_)
        ));
        assert_eq!(f.counts(), before);
    }
}
