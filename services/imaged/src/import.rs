//! Importing a root filesystem tarball (plain or gzip) as a one-layer image,
//! like `docker import`.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rdock_proto::image::v1::Image;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};
use crate::images::ImageStore;
use crate::manifest;
use crate::meta::{ImageRecord, SnapshotRecord};
use crate::reference;
use crate::snapshot::sync_filesystem;
use crate::store::{digest_of, HashingWriter, Ingested};

/// Largest tarball accepted.
const MAX_IMPORT: u64 = 64 << 30;

impl ImageStore {
    /// Imports a tarball streamed as `data`, tagging it `name` (if not empty).
    #[tracing::instrument(skip_all, fields(reference = %name))]
    pub async fn import<S>(
        self: &Arc<Self>,
        name: &str,
        changes: &[String],
        message: &str,
        data: S,
    ) -> Result<Image>
    where
        S: Stream<Item = Result<Vec<u8>>> + Unpin,
    {
        let tag = if name.is_empty() {
            None
        } else {
            let r = reference::parse(name)?;
            if r.digest().is_some() {
                return Err(Error::InvalidArgument(format!(
                    "import: cannot tag with a digest reference: {name}"
                )));
            }
            Some(reference::canonical(&r))
        };
        let mut config = Map::new();
        manifest::apply_changes(&mut config, changes)?;
        let res = {
            let _shared = self.gc_lock.read().await;
            self.import_locked(tag.as_deref(), config, message, data)
                .await
        };
        match res {
            Ok(id) => self.image(&id),
            Err(e) => {
                if let Err(gc) = self.gc().await {
                    tracing::warn!(error = %gc, "cleanup after failed import");
                }
                Err(e.context("import"))
            }
        }
    }

    async fn import_locked<S>(
        self: &Arc<Self>,
        tag: Option<&str>,
        config: Map<String, Value>,
        message: &str,
        mut data: S,
    ) -> Result<String>
    where
        S: Stream<Item = Result<Vec<u8>>> + Unpin,
    {
        let (raw_path, raw_file) = self.content.ingest_file()?;
        let raw = Ingested { path: raw_path };
        let mut file = tokio::fs::File::from_std(raw_file);
        let mut total = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            total += chunk.len() as u64;
            if total > MAX_IMPORT {
                return Err(Error::InvalidArgument(
                    "tarball is larger than 64 GiB".into(),
                ));
            }
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(io("write tarball"))?;
        }
        if total == 0 {
            return Err(Error::InvalidArgument("the tarball is empty".into()));
        }
        let file = file.into_std().await;
        let store = self.clone();
        let (tag, message) = (tag.map(str::to_string), message.to_string());
        tokio::task::spawn_blocking(move || {
            store.import_blocking(raw, file, tag.as_deref(), config, &message)
        })
        .await
        .map_err(|e| Error::Store(format!("import task: {e}")))?
    }

    fn import_blocking(
        &self,
        raw: Ingested,
        mut file: std::fs::File,
        tag: Option<&str>,
        mut config: Map<String, Value>,
        message: &str,
    ) -> Result<String> {
        // The layer blob is the upload itself when gzip, else its gzip.
        file.seek(SeekFrom::Start(0)).map_err(io("read tarball"))?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(io("read tarball"))?;
        file.seek(SeekFrom::Start(0)).map_err(io("read tarball"))?;
        let blob = if n == 2 && magic == [0x1f, 0x8b] {
            file.sync_all().map_err(io("sync tarball"))?;
            raw
        } else {
            let (path, out) = self.content.ingest_file()?;
            let gz = Ingested { path };
            let mut w = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            std::io::copy(&mut BufReader::with_capacity(1 << 20, &file), &mut w)
                .map_err(io("compress tarball"))?;
            let out = w.finish().map_err(io("compress tarball"))?;
            out.sync_all().map_err(io("sync layer"))?;
            drop(raw);
            gz
        };
        let (layer_digest, layer_size) = hash_file(&blob.path)?;

        // Unpack it: this also computes the diff_id and rejects a bad tarball.
        let tmp = self.snapshots.tmp()?;
        let f = std::fs::File::open(&blob.path).map_err(io("open layer"))?;
        let out = crate::unpack::unpack_layer(
            BufReader::with_capacity(1 << 20, f),
            &tmp.fs(),
            &[],
            &self.limits,
        )
        .map_err(|e| Error::BadContent(format!("tarball: {e}")))?;
        let chain = out.diff_id.clone();

        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        config.entry("Env").or_insert_with(|| {
            json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        });
        let mut history = json!({"created": now, "created_by": "rdockctl import"});
        if !message.is_empty() {
            history["comment"] = json!(message);
        }
        let cfg = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": now,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [out.diff_id]},
            "history": [history],
        });
        let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| Error::Store(e.to_string()))?;
        let id = digest_of(&cfg_bytes);
        let man = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": id, "size": cfg_bytes.len()},
            "layers": [{"mediaType": manifest::OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
        });
        let man_bytes = serde_json::to_vec(&man).map_err(|e| Error::Store(e.to_string()))?;

        // Durable first, recorded last.
        self.snapshots.commit(tmp, &chain)?;
        sync_filesystem(self.state_dir())?;
        let mut blob = blob;
        self.content
            .commit_ingested(&std::mem::take(&mut blob.path), &layer_digest)?;
        self.content.put(&cfg_bytes, Some(&id))?;
        let manifest_digest = self.content.put(&man_bytes, None)?;
        let mut b = self.meta.batch()?;
        b.put_snapshot(
            &chain,
            &SnapshotRecord {
                diff_id: chain.clone(),
                size: out.size,
            },
        )?;
        b.put_image(
            &id,
            &ImageRecord {
                manifest_digest,
                size: out.size,
                repo_digests: vec![],
            },
        )?;
        if let Some(t) = tag {
            b.put_tag(t, &id)?;
        }
        b.commit()?;
        Ok(id)
    }
}

fn hash_file(p: &Path) -> Result<(String, u64)> {
    let f = std::fs::File::open(p).map_err(io("open layer"))?;
    let mut w = HashingWriter {
        inner: std::io::sink(),
        hasher: Sha256::new(),
        written: 0,
    };
    std::io::copy(&mut BufReader::with_capacity(1 << 20, f), &mut w).map_err(io("hash layer"))?;
    Ok((
        format!("sha256:{}", hex::encode(w.hasher.finalize())),
        w.written,
    ))
}
