//! `docker history`: an image's history entries, newest first.
//!
//! As Docker shows an image it pulled: the image id on the newest row and
//! `<missing>` on the others (rdock keeps no intermediate images), each
//! row with the size of the layer its entry made (0 for an empty layer).

use rdock_proto::image::v1::HistoryEntry;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::images::ImageStore;
use crate::manifest;
use crate::snapshot::chain_ids;

const MISSING: &str = "<missing>";

/// The rows for the image `id` with config `config`; `layer_size(i)` is the
/// unpacked size of the image's layer `i` (bottom first).
pub fn rows(
    id: &str,
    config: &[u8],
    layer_size: impl Fn(usize) -> u64,
) -> Result<Vec<HistoryEntry>> {
    let info = manifest::config_info(config)?;
    let v: Value = serde_json::from_slice(config)
        .map_err(|e| Error::BadContent(format!("image config is not valid JSON: {e}")))?;
    let empty = Vec::new();
    let history = v.get("history").and_then(Value::as_array).unwrap_or(&empty);
    let text = |h: &Value, k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut layer = 0usize;
    let mut out = Vec::with_capacity(history.len());
    for h in history {
        let empty_layer = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty_layer {
            0
        } else {
            if layer >= info.diff_ids.len() {
                return Err(Error::BadContent(
                    "image config has more non-empty history entries than layers".into(),
                ));
            }
            layer += 1;
            layer_size(layer - 1)
        };
        let created = h
            .get("created")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0);
        out.push(HistoryEntry {
            id: MISSING.to_string(),
            created,
            created_by: text(h, "created_by"),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            comment: text(h, "comment"),
            empty_layer,
            author: text(h, "author"),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = id.to_string();
    }
    Ok(out)
}

impl ImageStore {
    /// `docker history NAME`.
    #[tracing::instrument(skip_all, fields(reference = %name))]
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let id = self.resolve(name)?;
        let config = self.content.read(&id)?;
        let chains = chain_ids(&manifest::config_info(&config)?.diff_ids);
        rows(&id, &config, |i| {
            chains
                .get(i)
                .and_then(|c| self.meta.snapshot(c).ok().flatten())
                .map_or(0, |s| s.size)
        })
        .map_err(|e| e.context(format!("history of {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn newest_first_with_sizes_of_non_empty_layers() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let cfg = json!({
            "rootfs": {"type": "layers", "diff_ids": [d('a'), d('b')]},
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs.tar /"},
                {"created": "2024-01-01T00:00:01Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
                {"created": "2024-02-01T00:00:00.5Z", "created_by": "sh", "comment": "fix", "author": "me"}
            ]
        });
        let rows = rows("sha256:top", cfg.to_string().as_bytes(), |i| [100, 7][i]).unwrap();
        let shown: Vec<(&str, i64, &str, i64)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.created, r.created_by.as_str(), r.size))
            .collect();
        assert_eq!(
            shown,
            [
                ("sha256:top", 1_706_745_600, "sh", 7),
                ("<missing>", 1_704_067_201, "CMD [\"sh\"]", 0),
                ("<missing>", 1_704_067_200, "ADD rootfs.tar /", 100),
            ]
        );
        assert_eq!(
            (rows[0].comment.as_str(), rows[0].author.as_str()),
            ("fix", "me")
        );
        assert!(rows[1].empty_layer);

        let too_many = json!({"rootfs": {"type": "layers", "diff_ids": [d('a')]},
            "history": [{"created_by": "a"}, {"created_by": "b"}]});
        assert!(super::rows("x", too_many.to_string().as_bytes(), |_| 0).is_err());
        let none = json!({"rootfs": {"type": "layers", "diff_ids": [d('a')]}});
        assert!(super::rows("x", none.to_string().as_bytes(), |_| 0)
            .unwrap()
            .is_empty());
    }
}
