//! Manifests, indexes and image configs: what the daemon reads of them, and
//! building new ones (import).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::reference::is_sha256_digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Media types the daemon asks a registry for.
pub const ACCEPTED: [&str; 4] = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// What a registry's manifest endpoint returned.
pub enum Fetched {
    Manifest(Manifest),
    Index(Vec<Descriptor>),
}

/// Parses a manifest or an index, checking every digest it names.
pub fn parse(bytes: &[u8]) -> Result<Fetched> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadContent(format!("manifest is not valid JSON: {e}")))?;
    match v.get("schemaVersion").and_then(Value::as_i64) {
        Some(2) => {}
        Some(1) => {
            return Err(Error::BadContent(
                "schema 1 manifests are not supported".into(),
            ))
        }
        _ => return Err(Error::BadContent("manifest has no schemaVersion 2".into())),
    }
    let check = |d: &Descriptor| {
        if is_sha256_digest(&d.digest) {
            Ok(())
        } else {
            Err(Error::BadContent(format!(
                "manifest names an unsupported digest {:?}",
                d.digest
            )))
        }
    };
    if v.get("manifests").is_some() {
        #[derive(Deserialize)]
        struct Index {
            manifests: Vec<Descriptor>,
        }
        let i: Index = serde_json::from_value(v)
            .map_err(|e| Error::BadContent(format!("malformed index: {e}")))?;
        i.manifests.iter().try_for_each(check)?;
        return Ok(Fetched::Index(i.manifests));
    }
    let m: Manifest = serde_json::from_value(v)
        .map_err(|e| Error::BadContent(format!("malformed manifest: {e}")))?;
    check(&m.config)?;
    m.layers.iter().try_for_each(check)?;
    if m.layers.is_empty() {
        return Err(Error::BadContent("manifest has no layers".into()));
    }
    for l in &m.layers {
        layer_compression(&l.media_type)?;
    }
    Ok(Fetched::Manifest(m))
}

/// Picks linux/amd64 from an index.
pub fn select_platform(manifests: &[Descriptor]) -> Result<&Descriptor> {
    manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .ok_or_else(|| {
            Error::NotFound("no matching manifest for linux/amd64 in the manifest list".into())
        })
}

/// How a layer is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    None,
}

pub fn layer_compression(media_type: &str) -> Result<Compression> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Ok(Compression::None),
        other => Err(Error::BadContent(format!(
            "unsupported layer media type {other:?}"
        ))),
    }
}

/// The parts of an image config the daemon needs.
#[derive(Debug, Clone)]
pub struct ConfigInfo {
    pub diff_ids: Vec<String>,
    pub created: i64,
    pub architecture: String,
    pub os: String,
}

pub fn config_info(bytes: &[u8]) -> Result<ConfigInfo> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::BadContent(format!("image config is not valid JSON: {e}")))?;
    let diff_ids: Vec<String> = v
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::BadContent("image config has no rootfs.diff_ids".into()))?
        .iter()
        .map(|d| {
            d.as_str()
                .filter(|s| is_sha256_digest(s))
                .map(str::to_string)
                .ok_or_else(|| Error::BadContent(format!("image config has a bad diff_id {d}")))
        })
        .collect::<Result<_>>()?;
    let created = v
        .get("created")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(ConfigInfo {
        diff_ids,
        created,
        architecture: s("architecture"),
        os: s("os"),
    })
}

/// Applies Dockerfile-style instructions (`CMD ["sh"]`, `ENV A=b`, ...) to
/// the `config` object of an image config.
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        let (instr, rest) = change
            .split_once(char::is_whitespace)
            .unwrap_or((change, ""));
        let rest = rest.trim();
        let bad = |why: &str| Error::InvalidArgument(format!("invalid change {change:?}: {why}"));
        if rest.is_empty() {
            return Err(bad("missing value"));
        }
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), command_form(rest).map_err(|w| bad(&w))?);
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), command_form(rest).map_err(|w| bad(&w))?);
            }
            "ENV" => {
                let env = config
                    .entry("Env")
                    .or_insert_with(|| Value::Array(vec![]));
                let list = env.as_array_mut().ok_or_else(|| bad("Env is not a list"))?;
                for (k, v) in key_values(rest).map_err(|w| bad(&w))? {
                    list.retain(|e| e.as_str().and_then(|s| s.split_once('=')).map(|p| p.0) != Some(k.as_str()));
                    list.push(Value::String(format!("{k}={v}")));
                }
            }
            "LABEL" => {
                let labels = config
                    .entry("Labels")
                    .or_insert_with(|| Value::Object(Map::new()));
                let map = labels.as_object_mut().ok_or_else(|| bad("Labels is not a map"))?;
                for (k, v) in key_values(rest).map_err(|w| bad(&w))? {
                    map.insert(k, Value::String(v));
                }
            }
            "WORKDIR" => {
                if !rest.starts_with('/') {
                    return Err(bad("WORKDIR must be an absolute path"));
                }
                config.insert("WorkingDir".into(), Value::String(rest.into()));
            }
            "USER" => {
                config.insert("User".into(), Value::String(rest.into()));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), Value::String(rest.into()));
            }
            "EXPOSE" => {
                let ports = config
                    .entry("ExposedPorts")
                    .or_insert_with(|| Value::Object(Map::new()));
                let map = ports.as_object_mut().ok_or_else(|| bad("ExposedPorts is not a map"))?;
                for p in rest.split_whitespace() {
                    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    if num.parse::<u16>().map_or(true, |n| n == 0) || !["tcp", "udp", "sctp"].contains(&proto) {
                        return Err(bad("EXPOSE takes PORT[/tcp|udp|sctp]"));
                    }
                    map.insert(format!("{num}/{proto}"), json!({}));
                }
            }
            "VOLUME" => {
                let vols = config
                    .entry("Volumes")
                    .or_insert_with(|| Value::Object(Map::new()));
                let map = vols.as_object_mut().ok_or_else(|| bad("Volumes is not a map"))?;
                let paths: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest).map_err(|_| bad("expected a JSON list of paths"))?
                } else {
                    rest.split_whitespace().map(str::to_string).collect()
                };
                for p in paths {
                    map.insert(p, json!({}));
                }
            }
            _ => return Err(bad("unknown instruction (expected CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR)")),
        }
    }
    Ok(())
}

/// `["a","b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn command_form(s: &str) -> std::result::Result<Value, String> {
    if s.starts_with('[') {
        let v: Vec<String> =
            serde_json::from_str(s).map_err(|_| "expected a JSON list of strings".to_string())?;
        Ok(json!(v))
    } else {
        Ok(json!(["/bin/sh", "-c", s]))
    }
}

/// `A=b C="d e"` or the legacy `A b c` (one pair).
fn key_values(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    if !s.split_whitespace().next().is_some_and(|w| w.contains('=')) {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .ok_or("expected KEY=VALUE")?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err("expected KEY=VALUE".into());
        }
        let mut val = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, c) => val.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push((key, val));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker_import() {
        let mut c = Map::new();
        apply_changes(
            &mut c,
            &[
                r#"CMD ["sh"]"#.into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV A=3".into(),
                "WORKDIR /srv".into(),
                "EXPOSE 80 53/udp".into(),
                "ENTRYPOINT echo hi".into(),
            ],
        )
        .unwrap();
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert!(c["ExposedPorts"].get("53/udp").is_some());
        for bad in ["FROM x", "CMD", "CMD [1", "WORKDIR rel", "EXPOSE 70000"] {
            assert!(apply_changes(&mut c, &[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_index_and_refuses_schema1() {
        let d = format!("sha256:{}", "a".repeat(64));
        let idx = json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 2, "platform": {"architecture": "amd64", "os": "linux"}}
        ]});
        let Fetched::Index(m) = parse(idx.to_string().as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(select_platform(&m).unwrap().size, 2);
        assert!(parse(br#"{"schemaVersion":1}"#).is_err());
        let zstd = json!({"schemaVersion": 2, "config": {"mediaType": OCI_CONFIG, "digest": d, "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": d, "size": 1}]});
        assert!(parse(zstd.to_string().as_bytes()).is_err());
    }
}
