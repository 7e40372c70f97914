//! Pulling an image: manifest (an index resolves to linux/amd64), config,
//! layers downloaded in parallel and digest-verified while they stream,
//! then unpacked in order into the snapshot chain. Records are committed
//! last, after everything they name is on disk.

use std::io::BufReader;
use std::sync::Arc;

use futures::StreamExt;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use rdock_proto::image::v1::Image;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::images::{send, ImageStore, Progress, ProgressTx};
use crate::manifest::{self, Descriptor, Fetched};
use crate::meta::{ImageRecord, SnapshotRecord};
use crate::reference;
use crate::registry::map_err;
use crate::snapshot::{chain_ids, sync_filesystem};
use crate::store::{digest_of, MAX_METADATA_BLOB};
use crate::unpack::unpack_layer;

/// Send a download progress event at most every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

fn layer(tx: &ProgressTx, digest: &str, current: u64, total: u64, phase: &'static str) {
    send(
        tx,
        Progress::Layer {
            digest: digest.to_string(),
            current,
            total,
            phase,
        },
    );
}

impl ImageStore {
    /// Pulls `reference`; on failure nothing of it is left behind.
    #[tracing::instrument(skip_all, fields(reference = %name))]
    pub async fn pull(self: &Arc<Self>, name: &str, tx: ProgressTx) -> Result<Image> {
        let r = reference::parse(name)?;
        let shown = reference::canonical(&r);
        let res = {
            let _shared = self.gc_lock.read().await;
            self.pull_locked(&r, &tx).await
        };
        match res {
            Ok(id) => self.image(&id),
            Err(e) => {
                if let Err(gc) = self.gc().await {
                    tracing::warn!(error = %gc, "cleanup after failed pull");
                }
                Err(e.context(format!("pull {shown}")))
            }
        }
    }

    async fn fetch_manifest(
        &self,
        client: &Client,
        r: &Reference,
    ) -> Result<(bytes::Bytes, String)> {
        let (bytes, _) = client
            .pull_manifest_raw(r, &RegistryAuth::Anonymous, &manifest::ACCEPTED)
            .await
            .map_err(|e| map_err(e, r, "fetch manifest"))?;
        if bytes.len() as u64 > MAX_METADATA_BLOB {
            return Err(Error::BadContent("manifest is larger than 4 MiB".into()));
        }
        let digest = digest_of(&bytes);
        if let Some(want) = r.digest() {
            if want != digest {
                return Err(Error::BadContent(format!(
                    "manifest digest mismatch: asked for {want}, registry sent {digest}"
                )));
            }
        }
        Ok((bytes, digest))
    }

    async fn pull_locked(self: &Arc<Self>, r: &Reference, tx: &ProgressTx) -> Result<String> {
        let client = self.registries.client(r);
        let (mut bytes, top_digest) = self.fetch_manifest(&client, r).await?;
        let mut manifest_digest = top_digest.clone();
        let m = match manifest::parse(&bytes)? {
            Fetched::Manifest(m) => m,
            Fetched::Index(list) => {
                let d = manifest::select_platform(&list)?;
                let by_digest = r.clone_with_digest(d.digest.clone());
                let (b, digest) = self.fetch_manifest(&client, &by_digest).await?;
                bytes = b;
                manifest_digest = digest;
                match manifest::parse(&bytes)? {
                    Fetched::Manifest(m) => m,
                    Fetched::Index(_) => {
                        return Err(Error::BadContent("an index points at another index".into()))
                    }
                }
            }
        };

        // The config: small, fetched into memory and checked before use.
        let id = m.config.digest.clone();
        if m.config.size > MAX_METADATA_BLOB {
            return Err(Error::BadContent(
                "image config is larger than 4 MiB".into(),
            ));
        }
        let config = if self.content.contains(&id) {
            self.content.read(&id)?
        } else {
            let mut buf = Vec::with_capacity(m.config.size as usize);
            client
                .pull_blob(r, id.as_str(), &mut buf)
                .await
                .map_err(|e| map_err(e, r, "fetch config"))?;
            self.content
                .put(&buf, Some(&id))
                .map_err(|e| e.context("config"))?;
            buf
        };
        let info = manifest::config_info(&config)?;
        if info.diff_ids.len() != m.layers.len() {
            return Err(Error::BadContent(format!(
                "manifest has {} layers but the config lists {} diff_ids",
                m.layers.len(),
                info.diff_ids.len()
            )));
        }
        let chains = chain_ids(&info.diff_ids);

        // Start every missing download at once; unpack in order as they land.
        let mut downloads: Vec<Option<JoinHandle<Result<()>>>> = Vec::new();
        for (i, l) in m.layers.iter().enumerate() {
            let cached =
                self.meta.snapshot(&chains[i])?.is_some() && self.snapshots.exists(&chains[i]);
            if cached || self.content.contains(&l.digest) {
                layer(
                    tx,
                    &l.digest,
                    l.size,
                    l.size,
                    if cached { "exists" } else { "downloaded" },
                );
                downloads.push(None);
                continue;
            }
            layer(tx, &l.digest, 0, l.size, "waiting");
            let (store, client, r, l, tx) = (
                self.clone(),
                client.clone(),
                r.clone(),
                l.clone(),
                tx.clone(),
            );
            downloads.push(Some(tokio::spawn(async move {
                store.download(&client, &r, &l, &tx).await
            })));
        }
        let mut new_snapshots = Vec::new();
        let mut size = 0u64;
        let mut failure = None;
        for (i, l) in m.layers.iter().enumerate() {
            if failure.is_some() {
                if let Some(h) = downloads[i].take() {
                    h.abort();
                }
                continue;
            }
            if let Some(h) = downloads[i].take() {
                match h.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        failure = Some(e);
                        continue;
                    }
                    Err(e) => {
                        failure = Some(Error::Store(format!("download task: {e}")));
                        continue;
                    }
                }
            }
            if let Some(rec) = self.meta.snapshot(&chains[i])? {
                if self.snapshots.exists(&chains[i]) {
                    size += rec.size;
                    continue;
                }
            }
            match self.unpack(l, &chains[..=i], &info.diff_ids[i], tx).await {
                Ok(rec) => {
                    size += rec.size;
                    new_snapshots.push((chains[i].clone(), rec));
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }

        // Everything is on disk: make it durable, then record it.
        let root = self.state_dir().to_path_buf();
        tokio::task::spawn_blocking(move || sync_filesystem(&root))
            .await
            .map_err(|e| Error::Store(format!("sync: {e}")))??;
        self.content.put(&bytes, Some(&manifest_digest))?;
        let mut repo_digests = self
            .meta
            .image(&id)?
            .map(|rec| rec.repo_digests)
            .unwrap_or_default();
        let rd = reference::repo_digest(r, &top_digest);
        if !repo_digests.contains(&rd) {
            repo_digests.push(rd);
        }
        let mut b = self.meta.batch()?;
        for (chain, rec) in &new_snapshots {
            b.put_snapshot(chain, rec)?;
        }
        b.put_image(
            &id,
            &ImageRecord {
                manifest_digest,
                size,
                repo_digests,
            },
        )?;
        if r.tag().is_some() {
            b.put_tag(&reference::canonical(r), &id)?;
        }
        b.commit()?;
        Ok(id)
    }

    /// Streams one layer blob into the content store, verifying it.
    async fn download(
        &self,
        client: &Client,
        r: &Reference,
        l: &Descriptor,
        tx: &ProgressTx,
    ) -> Result<()> {
        let what = format!("layer {}", l.digest);
        let mut stream = client
            .pull_blob_stream(r, l.digest.as_str())
            .await
            .map_err(|e| map_err(e, r, &format!("fetch {what}")))?;
        let mut w = self.content.writer(&l.digest, Some(l.size)).await?;
        let mut next_report = PROGRESS_STEP;
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| Error::Registry(format!("download {what}: {e}")))?;
            w.write(&chunk).await.map_err(|e| e.context(&what))?;
            if w.written() >= next_report {
                layer(tx, &l.digest, w.written(), l.size, "downloading");
                next_report = w.written() + PROGRESS_STEP;
            }
        }
        layer(tx, &l.digest, w.written(), l.size, "verifying");
        w.commit().await.map_err(|e| e.context(&what))?;
        layer(tx, &l.digest, l.size, l.size, "downloaded");
        Ok(())
    }

    /// Unpacks a stored layer blob as the top of `chains`, checking that its
    /// content hashes to `diff_id`.
    async fn unpack(
        self: &Arc<Self>,
        l: &Descriptor,
        chains: &[String],
        diff_id: &str,
        tx: &ProgressTx,
    ) -> Result<SnapshotRecord> {
        layer(tx, &l.digest, 0, l.size, "extracting");
        let store = self.clone();
        let (digest, diff_id) = (l.digest.clone(), diff_id.to_string());
        let chains = chains.to_vec();
        let rec =
            tokio::task::spawn_blocking(move || store.unpack_blocking(&digest, &chains, &diff_id))
                .await
                .map_err(|e| Error::Store(format!("unpack task: {e}")))??;
        layer(tx, &l.digest, l.size, l.size, "complete");
        Ok(rec)
    }

    pub(crate) fn unpack_blocking(
        &self,
        digest: &str,
        chains: &[String],
        diff_id: &str,
    ) -> Result<SnapshotRecord> {
        let what = format!("layer {digest}");
        let (top, parents) = chains
            .split_last()
            .ok_or_else(|| Error::Store("unpack without a chain".into()))?;
        let lowers = parents
            .iter()
            .rev()
            .map(|c| self.snapshots.fs(c))
            .collect::<Result<Vec<_>>>()?;
        let file = std::fs::File::open(self.content.path(digest)?)
            .map_err(crate::error::io(format!("open {what}")))?;
        let tmp = self.snapshots.tmp()?;
        let out = unpack_layer(
            BufReader::with_capacity(1 << 20, file),
            &tmp.fs(),
            &lowers,
            &self.limits,
        )
        .map_err(|e| Error::BadContent(format!("{what}: {e}")))?;
        if out.diff_id != diff_id {
            return Err(Error::BadContent(format!(
                "{what}: content hashes to {}, but the config says {diff_id}",
                out.diff_id
            )));
        }
        self.snapshots.commit(tmp, top)?;
        Ok(SnapshotRecord {
            diff_id: out.diff_id,
            size: out.size,
        })
    }
}
