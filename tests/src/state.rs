//! Reading the image daemon's state directory, to check what a pull or a
//! removal left on disk: `blobs/sha256/<hex>`, `ingest/`, `snapshots/`.

use std::path::{Path, PathBuf};

/// The image daemon's state directory.
#[derive(Debug, Clone)]
pub struct ImagedState {
    pub dir: PathBuf,
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_below(&p)),
            _ => out.push(p),
        }
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl ImagedState {
    /// Everything under `ingest/` (in-flight downloads).
    pub fn ingest_files(&self) -> Vec<PathBuf> {
        files_below(&self.dir.join("ingest"))
    }

    /// Names of the complete blobs, `<hex>` under `blobs/sha256/`.
    pub fn blobs(&self) -> Vec<String> {
        names_in(&self.dir.join("blobs/sha256"))
    }

    /// Whether the blob `sha256:<hex>` is in the content store.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.dir.join("blobs/sha256").join(hex_of(digest)).exists()
    }

    /// Blobs whose content does not hash to their name: `(name, actual)`.
    pub fn blobs_not_matching_their_digest(&self) -> Vec<(String, String)> {
        self.blobs()
            .into_iter()
            .filter_map(|hex| {
                let bytes = std::fs::read(self.dir.join("blobs/sha256").join(&hex)).ok()?;
                let actual = crate::sha256_digest(&bytes);
                (actual != format!("sha256:{hex}")).then_some((hex, actual))
            })
            .collect()
    }

    /// Names of the entries of `snapshots/`.
    pub fn snapshots(&self) -> Vec<String> {
        names_in(&self.dir.join("snapshots"))
    }

    /// In-flight snapshots (`tmp-*`).
    pub fn tmp_snapshots(&self) -> Vec<String> {
        self.snapshots()
            .into_iter()
            .filter(|n| n.starts_with("tmp-"))
            .collect()
    }

    /// The `fs` directory of the snapshot of chain id `sha256:<hex>`: the
    /// entry of `snapshots/` whose name ends with the hex.
    #[track_caller]
    pub fn snapshot_fs(&self, chain_id: &str) -> PathBuf {
        let hex = hex_of(chain_id);
        let names = self.snapshots();
        let found: Vec<&String> = names.iter().filter(|n| n.ends_with(hex)).collect();
        match found.as_slice() {
            [one] => self.dir.join("snapshots").join(one).join("fs"),
            _ => panic!(
                "expected one snapshot named by chain id {chain_id} under {}, found {:?}",
                self.dir.join("snapshots").display(),
                names
            ),
        }
    }
}
