//! Test images as OCI image layouts, built byte by byte so layers can hold
//! what no well-behaved tool writes (`../x`, links out of the tree, broken
//! gzip), and pushed to a registry with `skopeo`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flate2::Compression;
use serde_json::json;

use crate::registry::Registry;
use crate::{procs, sha256_digest};

const MTIME: u64 = 1_700_000_000;
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    HardLink,
}

/// One tar entry with a name written as raw bytes into the header, so it can
/// be anything a hostile layer would carry.
#[derive(Debug, Clone)]
pub struct Entry {
    name: Vec<u8>,
    kind: Kind,
    data: Vec<u8>,
    link: Vec<u8>,
    mode: u32,
}

impl Entry {
    fn new(name: &[u8], kind: Kind, mode: u32) -> Entry {
        Entry {
            name: name.to_vec(),
            kind,
            data: Vec::new(),
            link: Vec::new(),
            mode,
        }
    }

    pub fn dir(name: &str) -> Entry {
        let mut n = name.trim_end_matches('/').as_bytes().to_vec();
        n.push(b'/');
        Entry::new(&n, Kind::Dir, 0o755)
    }

    pub fn file(name: &str, data: impl AsRef<[u8]>) -> Entry {
        Entry::raw(name.as_bytes(), data)
    }

    /// A regular file whose name is exactly these bytes.
    pub fn raw(name: &[u8], data: impl AsRef<[u8]>) -> Entry {
        Entry {
            data: data.as_ref().to_vec(),
            ..Entry::new(name, Kind::File, 0o644)
        }
    }

    pub fn symlink(name: &str, target: &str) -> Entry {
        Entry {
            link: target.as_bytes().to_vec(),
            ..Entry::new(name.as_bytes(), Kind::Symlink, 0o777)
        }
    }

    pub fn hardlink(name: &str, target: &str) -> Entry {
        Entry {
            link: target.as_bytes().to_vec(),
            ..Entry::new(name.as_bytes(), Kind::HardLink, 0o644)
        }
    }

    /// The OCI whiteout deleting `path` of a lower layer: `dir/.wh.name`.
    pub fn whiteout(path: &str) -> Entry {
        let name = match path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/.wh.{base}"),
            None => format!(".wh.{path}"),
        };
        Entry::file(&name, b"")
    }

    /// The OCI opaque marker hiding everything lower layers put in `dir`.
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
    }

    fn header(&self) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(match self.kind {
            Kind::Dir => tar::EntryType::Directory,
            Kind::File => tar::EntryType::Regular,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::HardLink => tar::EntryType::Link,
        });
        h.set_mode(self.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(self.data.len() as u64);
        let old = h.as_old_mut();
        assert!(
            self.name.len() < old.name.len(),
            "entry name too long for a test layer"
        );
        assert!(
            self.link.len() < old.linkname.len(),
            "link name too long for a test layer"
        );
        old.name[..self.name.len()].copy_from_slice(&self.name);
        old.linkname[..self.link.len()].copy_from_slice(&self.link);
        h.set_cksum();
        h
    }
}

/// An uncompressed tar of `entries`, in order.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        b.append(&e.header(), e.data.as_slice())
            .unwrap_or_else(|err| {
                panic!("tar entry {:?}: {err}", String::from_utf8_lossy(&e.name))
            });
    }
    b.into_inner().unwrap_or_else(|e| panic!("finish tar: {e}"))
}

fn gzip(bytes: &[u8], level: Compression) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().mtime(0).write(Vec::new(), level);
    enc.write_all(bytes)
        .and_then(|_| enc.finish())
        .unwrap_or_else(|e| panic!("gzip: {e}"))
}

/// A layer blob and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// A gzip layer of `entries`.
    pub fn gzip(entries: &[Entry]) -> Layer {
        let tar = tar_of(entries);
        Layer {
            blob: gzip(&tar, Compression::default()),
            diff_id: sha256_digest(&tar),
        }
    }

    /// A gzip layer without compression: entries of the same sizes give
    /// blobs of the same length, so one can stand in for another.
    pub fn gzip_stored(entries: &[Entry]) -> Layer {
        let tar = tar_of(entries);
        Layer {
            blob: gzip(&tar, Compression::none()),
            diff_id: sha256_digest(&tar),
        }
    }

    /// The same layer cut after `len` bytes of gzip; its digest is that of
    /// the cut bytes, so only the gzip stream is bad.
    pub fn truncated(mut self, len: usize) -> Layer {
        self.blob.truncate(len);
        self
    }

    /// `sha256:<hex>` of the blob.
    pub fn digest(&self) -> String {
        sha256_digest(&self.blob)
    }
}

/// Chain ids of a layer stack: the first is its diff id, each next one
/// `sha256(parent + " " + diff_id)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256_digest(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// What a written layout holds.
#[derive(Debug, Clone)]
pub struct LayoutInfo {
    /// The config digest, which is the image id.
    pub image_id: String,
    pub manifest_digest: String,
    pub layer_digests: Vec<String>,
    pub diff_ids: Vec<String>,
}

/// A linux/amd64 image of gzip layers, written as an OCI image layout.
#[derive(Debug, Clone)]
pub struct OciLayout {
    layers: Vec<Layer>,
    cmd: Vec<String>,
}

impl Default for OciLayout {
    fn default() -> Self {
        OciLayout {
            layers: Vec::new(),
            cmd: vec!["sh".into()],
        }
    }
}

impl OciLayout {
    pub fn new() -> OciLayout {
        OciLayout::default()
    }

    pub fn layer(mut self, layer: Layer) -> OciLayout {
        self.layers.push(layer);
        self
    }

    pub fn cmd(mut self, cmd: &[&str]) -> OciLayout {
        self.cmd = cmd.iter().map(|s| s.to_string()).collect();
        self
    }

    fn config_json(&self) -> Vec<u8> {
        let diff_ids: Vec<&str> = self.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<serde_json::Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("rdock-tests layer {i}")}))
            .collect();
        let config = json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Cmd": self.cmd,
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        serde_json::to_vec(&config).unwrap_or_else(|e| panic!("config json: {e}"))
    }

    /// Writes the layout (oci-layout, index.json, blobs/sha256/...) to `dir`
    /// with one manifest named `tag`.
    pub fn write(&self, dir: &Path, tag: &str) -> LayoutInfo {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)
            .unwrap_or_else(|e| panic!("create {}: {e}", blobs.display()));
        let put = |bytes: &[u8]| -> (String, usize) {
            let digest = sha256_digest(bytes);
            let path = blobs.join(digest.trim_start_matches("sha256:"));
            std::fs::write(&path, bytes)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            (digest, bytes.len())
        };
        let (config_digest, config_size) = put(&self.config_json());
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| {
                let (digest, size) = put(&l.blob);
                json!({"mediaType": LAYER_MEDIA_TYPE, "digest": digest, "size": size})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let manifest =
            serde_json::to_vec(&manifest).unwrap_or_else(|e| panic!("manifest json: {e}"));
        let (manifest_digest, manifest_size) = put(&manifest);
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        let write = |name: &str, v: &serde_json::Value| {
            let p = dir.join(name);
            std::fs::write(&p, v.to_string())
                .unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        };
        write("index.json", &index);
        write("oci-layout", &json!({"imageLayoutVersion": "1.0.0"}));
        LayoutInfo {
            image_id: config_digest,
            manifest_digest,
            layer_digests: self.layers.iter().map(Layer::digest).collect(),
            diff_ids: self.layers.iter().map(|l| l.diff_id.clone()).collect(),
        }
    }

    /// Writes the layout into a fresh directory under `scratch` and pushes it
    /// to `registry` as `repo:tag`.
    pub fn push(&self, scratch: &Path, registry: &Registry, reference: &str) -> LayoutInfo {
        let dir = tempfile::Builder::new()
            .prefix("layout-")
            .tempdir_in(scratch)
            .unwrap_or_else(|e| panic!("create a layout dir in {}: {e}", scratch.display()));
        let (_, tag) = split_tag(reference);
        let info = self.write(dir.path(), tag);
        push_layout(dir.path(), registry, reference);
        info
    }
}

fn split_tag(reference: &str) -> (&str, &str) {
    reference
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{reference:?}: expected repo:tag"))
}

/// Pushes the layout in `dir` (manifest named by the tag of `reference`) to
/// `registry` as `repo:tag`, unchanged, with skopeo.
#[track_caller]
pub fn push_layout(dir: &Path, registry: &Registry, reference: &str) {
    let (_, tag) = split_tag(reference);
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ])
    .arg(format!("oci:{}:{tag}", dir.display()))
    .arg(format!("docker://{}/{reference}", registry.addr()));
    let out = procs::run(&mut cmd, Duration::from_secs(120));
    assert_eq!(
        out.code,
        0,
        "skopeo copy to {}/{reference} failed:\n{out}",
        registry.addr()
    );
}
