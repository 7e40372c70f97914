//! Image, tag, snapshot and rootfs records in `redb`.
//!
//! Records are written only after the data they describe is durable, so a
//! record never points at something missing.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};

/// image id (`sha256:` of the config) → [`ImageRecord`]
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
/// canonical reference → image id
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// chain id → [`SnapshotRecord`]
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// container id → [`RootfsRecord`]
const ROOTFS: TableDefinition<&str, &[u8]> = TableDefinition::new("rootfs");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    pub manifest_digest: String,
    /// Unpacked size in bytes.
    pub size: u64,
    /// `registry/repo@digest` entries this image was pulled or pushed as.
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotRecord {
    pub diff_id: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootfsRecord {
    pub image_id: String,
}

pub struct Meta {
    db: Database,
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Store(format!("encode record: {e}")))
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::Store(format!("decode record: {e}")))
}

/// Changes made in one transaction.
pub struct Batch<'a> {
    txn: redb::WriteTransaction,
    _meta: &'a Meta,
}

impl Batch<'_> {
    pub fn put_image(&mut self, id: &str, rec: &ImageRecord) -> Result<()> {
        let mut t = self.txn.open_table(IMAGES)?;
        t.insert(id, enc(rec)?.as_slice())?;
        Ok(())
    }

    pub fn remove_image(&mut self, id: &str) -> Result<()> {
        self.txn.open_table(IMAGES)?.remove(id)?;
        Ok(())
    }

    /// Points `reference` at `id`, returning the id it pointed at before.
    pub fn put_tag(&mut self, reference: &str, id: &str) -> Result<Option<String>> {
        let mut t = self.txn.open_table(TAGS)?;
        let old = t.insert(reference, id)?.map(|g| g.value().to_string());
        Ok(old)
    }

    pub fn remove_tag(&mut self, reference: &str) -> Result<()> {
        self.txn.open_table(TAGS)?.remove(reference)?;
        Ok(())
    }

    pub fn put_snapshot(&mut self, chain: &str, rec: &SnapshotRecord) -> Result<()> {
        let mut t = self.txn.open_table(SNAPSHOTS)?;
        t.insert(chain, enc(rec)?.as_slice())?;
        Ok(())
    }

    pub fn remove_snapshot(&mut self, chain: &str) -> Result<()> {
        self.txn.open_table(SNAPSHOTS)?.remove(chain)?;
        Ok(())
    }

    pub fn put_rootfs(&mut self, container: &str, rec: &RootfsRecord) -> Result<()> {
        let mut t = self.txn.open_table(ROOTFS)?;
        t.insert(container, enc(rec)?.as_slice())?;
        Ok(())
    }

    pub fn remove_rootfs(&mut self, container: &str) -> Result<()> {
        self.txn.open_table(ROOTFS)?.remove(container)?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.txn.commit()?;
        Ok(())
    }
}

impl Meta {
    pub fn open(path: &Path) -> Result<Self> {
        let db = rdock_common::db::open(path)?;
        // Create the tables so that readers never see them missing.
        let txn = db.begin_write()?;
        txn.open_table(IMAGES)?;
        txn.open_table(TAGS)?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(ROOTFS)?;
        txn.commit()?;
        Ok(Meta { db })
    }

    pub fn batch(&self) -> Result<Batch<'_>> {
        Ok(Batch {
            txn: self.db.begin_write()?,
            _meta: self,
        })
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRecord>> {
        let t = self.db.begin_read()?.open_table(IMAGES)?;
        t.get(id)?.map(|g| dec(g.value())).transpose()
    }

    pub fn images(&self) -> Result<Vec<(String, ImageRecord)>> {
        let t = self.db.begin_read()?.open_table(IMAGES)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_string(), dec(v.value())?));
        }
        Ok(out)
    }

    pub fn tag(&self, reference: &str) -> Result<Option<String>> {
        let t = self.db.begin_read()?.open_table(TAGS)?;
        Ok(t.get(reference)?.map(|g| g.value().to_string()))
    }

    /// All (reference, image id) pairs.
    pub fn tags(&self) -> Result<Vec<(String, String)>> {
        let t = self.db.begin_read()?.open_table(TAGS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    pub fn snapshot(&self, chain: &str) -> Result<Option<SnapshotRecord>> {
        let t = self.db.begin_read()?.open_table(SNAPSHOTS)?;
        t.get(chain)?.map(|g| dec(g.value())).transpose()
    }

    pub fn snapshots(&self) -> Result<Vec<String>> {
        let t = self.db.begin_read()?.open_table(SNAPSHOTS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(item?.0.value().to_string());
        }
        Ok(out)
    }

    pub fn rootfs(&self, container: &str) -> Result<Option<RootfsRecord>> {
        let t = self.db.begin_read()?.open_table(ROOTFS)?;
        t.get(container)?.map(|g| dec(g.value())).transpose()
    }

    pub fn rootfses(&self) -> Result<Vec<(String, RootfsRecord)>> {
        let t = self.db.begin_read()?.open_table(ROOTFS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_string(), dec(v.value())?));
        }
        Ok(out)
    }
}
