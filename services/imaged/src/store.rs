//! The content store: blobs by digest under `blobs/sha256/<hex>`.
//!
//! A blob is written to `ingest/`, hashed while it streams, checked against
//! its expected digest and size, fsynced, and only then renamed into place,
//! so `blobs/` only ever holds complete, verified content. `ingest/` is
//! emptied on start: whatever is there was interrupted.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{io, Error, Result};
use crate::reference::is_sha256_digest;

/// Largest manifest or config accepted from a registry or a client.
pub const MAX_METADATA_BLOB: u64 = 4 << 20;

/// A file in `ingest/` that is removed unless kept (its path taken).
pub(crate) struct Ingested {
    pub(crate) path: PathBuf,
}

impl Drop for Ingested {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Hashes and counts what goes through it.
pub(crate) struct HashingWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Sha256,
    pub(crate) written: u64,
}

impl<W> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// `sha256:<hex>` of what was written.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn hex_of(digest: &str) -> Result<&str> {
    if is_sha256_digest(digest) {
        Ok(&digest[7..])
    } else {
        Err(Error::BadContent(format!(
            "unsupported or malformed digest {digest:?}"
        )))
    }
}

fn tmp_name() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("sync {}", dir.display())))
}

impl ContentStore {
    /// Opens the store under `state`, dropping interrupted downloads.
    pub fn open(state: &Path) -> Result<Self> {
        let s = ContentStore {
            blobs: state.join("blobs").join("sha256"),
            ingest: state.join("ingest"),
        };
        if s.ingest.exists() {
            std::fs::remove_dir_all(&s.ingest).map_err(io("clear ingest"))?;
        }
        for d in [&s.blobs, &s.ingest] {
            std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
        }
        Ok(s)
    }

    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs.join(hex_of(digest)?))
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Reads a small blob (manifest, config).
    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.path(digest)?;
        std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::NotFound(format!("blob {digest} is not in the content store"))
            }
            _ => Error::Io {
                context: format!("read blob {digest}"),
                source: e,
            },
        })
    }

    /// Size of a stored blob.
    pub fn size(&self, digest: &str) -> Result<u64> {
        let p = self.path(digest)?;
        std::fs::metadata(&p)
            .map(|m| m.len())
            .map_err(io(format!("stat blob {digest}")))
    }

    /// Stores `data`, returning its digest; checks it against `expected`.
    pub fn put(&self, data: &[u8], expected: Option<&str>) -> Result<String> {
        let digest = digest_of(data);
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::BadContent(format!(
                    "digest mismatch: expected {e}, content is {digest}"
                )));
            }
        }
        if self.contains(&digest) {
            return Ok(digest);
        }
        let tmp = self.ingest.join(tmp_name());
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Io {
                context: format!("write blob {digest}"),
                source: e,
            });
        }
        self.install(&tmp, &digest)?;
        Ok(digest)
    }

    fn install(&self, tmp: &Path, digest: &str) -> Result<()> {
        let dst = self.path(digest)?;
        std::fs::rename(tmp, &dst).map_err(|e| {
            let _ = std::fs::remove_file(tmp);
            Error::Io {
                context: format!("install blob {digest}"),
                source: e,
            }
        })?;
        fsync_dir(&self.blobs)
    }

    /// Starts writing a blob that must hash to `expected` and, when given,
    /// be exactly `size` bytes long.
    pub async fn writer(&self, expected: &str, size: Option<u64>) -> Result<BlobWriter> {
        hex_of(expected)?;
        let tmp = self.ingest.join(tmp_name());
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io(format!("create {}", tmp.display())))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(file),
            tmp,
            hasher: Sha256::new(),
            written: 0,
            expected: expected.to_string(),
            size,
        })
    }

    /// Starts writing a blob whose digest is not known in advance.
    pub fn ingest_file(&self) -> Result<(PathBuf, std::fs::File)> {
        let tmp = self.ingest.join(tmp_name());
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(format!("create {}", tmp.display())))?;
        Ok((tmp, f))
    }

    /// Moves a finished ingest file (fsynced by the caller) into the store.
    pub fn commit_ingested(&self, tmp: &Path, digest: &str) -> Result<()> {
        if self.contains(digest) {
            let _ = std::fs::remove_file(tmp);
            return Ok(());
        }
        self.install(tmp, digest)
    }

    pub fn remove(&self, digest: &str) -> Result<()> {
        match std::fs::remove_file(self.path(digest)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                context: format!("remove blob {digest}"),
                source: e,
            }),
        }
    }

    /// Every stored digest.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.blobs).map_err(io("list blobs"))? {
            let e = e.map_err(io("list blobs"))?;
            if let Some(name) = e.file_name().to_str() {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }
}

/// A blob being written; removed unless [`BlobWriter::commit`] succeeds.
pub struct BlobWriter {
    store: ContentStore,
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    hasher: Sha256,
    written: u64,
    expected: String,
    size: Option<u64>,
}

impl BlobWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.written += chunk.len() as u64;
        if let Some(size) = self.size {
            if self.written > size {
                return Err(Error::BadContent(format!(
                    "blob {} is larger than its declared {size} bytes",
                    self.expected
                )));
            }
        }
        self.hasher.update(chunk);
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Store("blob writer already closed".into()))?;
        f.write_all(chunk)
            .await
            .map_err(io(format!("write blob {}", self.expected)))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies digest and size, syncs and moves the blob into place.
    pub async fn commit(mut self) -> Result<()> {
        let got = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if got != self.expected {
            return Err(Error::BadContent(format!(
                "digest mismatch: expected {}, downloaded content is {got}",
                self.expected
            )));
        }
        if let Some(size) = self.size {
            if self.written != size {
                return Err(Error::BadContent(format!(
                    "blob {} is {} bytes, expected {size}",
                    self.expected, self.written
                )));
            }
        }
        if let Some(mut f) = self.file.take() {
            f.flush().await.map_err(io("flush blob"))?;
            f.sync_all().await.map_err(io("sync blob"))?;
        }
        let store = self.store.clone();
        let tmp = std::mem::take(&mut self.tmp);
        let digest = self.expected.clone();
        tokio::task::spawn_blocking(move || store.commit_ingested(&tmp, &digest))
            .await
            .map_err(|e| Error::Store(format!("commit blob: {e}")))?
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writer_verifies_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let good = digest_of(b"hello");
        let mut w = s.writer(&good, Some(5)).await.unwrap();
        w.write(b"hello").await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(s.read(&good).unwrap(), b"hello");

        let mut w = s.writer(&digest_of(b"other"), Some(5)).await.unwrap();
        w.write(b"hello").await.unwrap();
        let e = w.commit().await.unwrap_err().to_string();
        assert!(e.contains("digest mismatch"), "{e}");
        let mut w = s.writer(&good, Some(3)).await.unwrap();
        assert!(w.write(b"hello").await.is_err());
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(s.list().unwrap(), vec![good]);
        assert!(s.path("sha256:../../etc").is_err());
    }
}
