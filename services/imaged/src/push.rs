//! Pushing a local image to the registry its reference names: layers the
//! registry lacks, the config, then the stored manifest byte for byte, so
//! the digest a registry serves is the digest rdock has.

use std::sync::Arc;

use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::error::{Error, Result};
use crate::images::{send, ImageStore, Progress, ProgressTx};
use crate::manifest::{self, Descriptor};
use crate::meta::ImageRecord;
use crate::reference;
use crate::registry::map_err;

impl ImageStore {
    /// Pushes the image tagged `name`; returns the manifest digest.
    #[tracing::instrument(skip_all, fields(reference = %name))]
    pub async fn push(self: &Arc<Self>, name: &str, tx: ProgressTx) -> Result<String> {
        let r = reference::parse(name)?;
        let shown = reference::canonical(&r);
        let _shared = self.gc_lock.read().await;
        let id = self.meta.tag(&shown)?.ok_or_else(|| {
            Error::NotFound(format!(
                "an image does not exist locally with the tag: {name}"
            ))
        })?;
        let rec = self
            .meta
            .image(&id)?
            .ok_or_else(|| Error::NotFound(format!("no such image: {name}")))?;
        self.push_image(&r, &id, &rec, &tx)
            .await
            .map_err(|e| e.context(format!("push {shown}")))
    }

    async fn push_image(
        &self,
        r: &Reference,
        id: &str,
        rec: &ImageRecord,
        tx: &ProgressTx,
    ) -> Result<String> {
        let bytes = self.content.read(&rec.manifest_digest)?;
        let m = self.manifest_of(&rec.manifest_digest)?;
        let client = self.registries.client(r);
        client
            .store_auth_if_needed(r.resolve_registry(), &RegistryAuth::Anonymous)
            .await;
        let uploads = m.layers.iter().chain(std::iter::once(&m.config)).map(|l| {
            let client = &client;
            async move { self.push_blob(client, r, l, tx).await }
        });
        futures::future::try_join_all(uploads).await?;
        let media_type = m
            .media_type
            .clone()
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
        let content_type = media_type
            .parse()
            .map_err(|_| Error::BadContent(format!("bad manifest media type {media_type:?}")))?;
        client
            .push_manifest_raw(r, bytes, content_type)
            .await
            .map_err(|e| map_err(e, r, "upload manifest"))?;
        let digest = rec.manifest_digest.clone();
        let rd = reference::repo_digest(r, &digest);
        if !rec.repo_digests.contains(&rd) {
            let mut rec = rec.clone();
            rec.repo_digests.push(rd);
            let mut b = self.meta.batch()?;
            b.put_image(id, &rec)?;
            b.commit()?;
        }
        Ok(digest)
    }

    async fn push_blob(
        &self,
        client: &Client,
        r: &Reference,
        l: &Descriptor,
        tx: &ProgressTx,
    ) -> Result<()> {
        let what = format!("upload layer {}", l.digest);
        let exists = client
            .blob_exists(r, &l.digest)
            .await
            .map_err(|e| map_err(e, r, &what))?;
        let progress = |current, phase| {
            send(
                tx,
                Progress::Layer {
                    digest: l.digest.clone(),
                    current,
                    total: l.size,
                    phase,
                },
            )
        };
        if exists {
            progress(l.size, "exists");
            return Ok(());
        }
        progress(0, "pushing");
        let path = self.content.path(&l.digest)?;
        let data = tokio::fs::read(&path)
            .await
            .map_err(crate::error::io(format!("read blob {}", l.digest)))?;
        client
            .push_blob(r, data, &l.digest)
            .await
            .map_err(|e| map_err(e, r, &what))?;
        progress(l.size, "pushed");
        Ok(())
    }
}
