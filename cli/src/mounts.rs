//! `-v/--volume`, `--mount`, `--tmpfs` and `--volumes-from`, parsed and
//! checked the way Docker's client and daemon do it (the client's
//! `loader.ParseVolume` and `opts.MountOpt`, the daemon's Linux mount
//! parser), with their messages, so a bad spec fails before anything is
//! created.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use rdock_proto::runtime::v1::Mount;

use crate::options::ram_in_bytes;
use crate::paths::{absolute_from, clean};

const BIND: &str = "bind";
const VOLUME: &str = "volume";
const TMPFS: &str = "tmpfs";

/// The Linux propagation modes.
const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];
const DEFAULT_PROPAGATION: &str = "rprivate";
/// Accepted for Docker Desktop compatibility and ignored, as on Linux.
const CONSISTENCIES: [&str; 4] = ["consistent", "cached", "delegated", "default"];

/// Every mount of `-v`, `--mount` and `--tmpfs`, in that order, each
/// checked; two on one target are refused. `cwd` resolves `./x` sources.
pub fn parse_all(
    volumes: &[String],
    mounts: &[String],
    tmpfs: &[String],
    cwd: &Path,
) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for v in volumes {
        out.push(parse_volume(v, cwd)?);
    }
    for m in mounts {
        out.push(parse_mount(m, cwd)?);
    }
    for t in tmpfs {
        out.push(parse_tmpfs(t)?);
    }
    let mut seen = HashSet::new();
    for m in &out {
        if !seen.insert(m.target.as_str()) {
            bail!("Duplicate mount point: {}", m.target);
        }
    }
    Ok(out)
}

/// One `-v`: `/host:/ctr[:opts]`, `name:/ctr[:opts]` or `/ctr`.
pub fn parse_volume(spec: &str, cwd: &Path) -> Result<Mount> {
    // The client's checks (Docker's loader.ParseVolume).
    let (source, rest) = split_volume_spec(spec)?;
    // A relative host path ("./data", "..") is made absolute, as Docker's
    // client does; another relative source is a volume name, checked below.
    let raw = match source {
        Some(src) if src.starts_with('.') => {
            format!("{}:{}", absolute_from(cwd, src), rest.unwrap_or_default())
        }
        _ => spec.to_string(),
    };
    parse_mount_raw(&raw)
}

/// The client's split: `Some(source)` and the rest after it, or `None` for
/// a target alone.
fn split_volume_spec(spec: &str) -> Result<(Option<&str>, Option<&str>)> {
    let invalid = |why: &str| anyhow!("invalid spec: {spec}: {why}");
    match spec.len() {
        0 => bail!("invalid empty volume spec"),
        1 | 2 => return Ok((None, None)),
        _ => {}
    }
    let sections: Vec<&str> = spec.split(':').collect();
    if sections.iter().any(|s| s.is_empty()) {
        return Err(invalid("empty section between colons"));
    }
    if sections.len() > 3 {
        return Err(invalid("too many colons"));
    }
    match spec.split_once(':') {
        Some((src, rest)) => Ok((Some(src), Some(rest))),
        None => Ok((None, None)),
    }
}

/// A mode of `-v` is a comma-separated list with at most one of each kind.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let (mut rw, mut label, mut prop, mut copy, mut consistency) = (0, 0, 0, 0, 0);
    for o in mode.split(',') {
        match o {
            "rw" | "ro" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            o if PROPAGATIONS.contains(&o) => prop += 1,
            o if CONSISTENCIES.contains(&o) => consistency += 1,
            _ => return false,
        }
    }
    rw <= 1 && label <= 1 && prop <= 1 && copy <= 1 && consistency <= 1
}

/// The daemon's part (Docker's `ParseMountRaw`) for a `-v` spec.
fn parse_mount_raw(raw: &str) -> Result<Mount> {
    let invalid_spec = || anyhow!("invalid volume specification: '{raw}'");
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec());
    }
    let (source, target, mode) = match arr.as_slice() {
        [target] => ("", *target, ""),
        [_, second] if valid_mode(second) => return Err(invalid_spec()),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(invalid_spec()),
    };
    if !valid_mode(mode) {
        bail!("invalid mode: {mode}");
    }
    let options: Vec<&str> = if mode.is_empty() {
        Vec::new()
    } else {
        mode.split(',').collect()
    };
    let kind = if source.starts_with('/') {
        BIND
    } else {
        VOLUME
    };
    let propagation = options
        .iter()
        .find(|o| PROPAGATIONS.contains(o))
        .map(|p| p.to_string());
    let spec = Spec {
        kind: kind.to_string(),
        source: source.to_string(),
        target: target.to_string(),
        read_only: options.contains(&"ro"),
        has_bind_options: propagation.is_some(),
        has_volume_options: options.contains(&"nocopy"),
    };
    spec.validate()
        .map_err(|e| anyhow!("invalid volume specification: '{raw}': {e}"))?;
    if kind == VOLUME && !source.is_empty() {
        check_volume_name(source)?;
    }
    Ok(Mount {
        r#type: kind.to_string(),
        source: if kind == BIND {
            clean(source)
        } else {
            source.to_string()
        },
        target: clean(target),
        read_only: spec.read_only,
        create_host_path: kind == BIND,
        propagation: if kind == BIND {
            propagation.unwrap_or_else(|| DEFAULT_PROPAGATION.to_string())
        } else {
            String::new()
        },
        relabel: options
            .iter()
            .find(|o| matches!(**o, "z" | "Z"))
            .map(|o| o.to_string())
            .unwrap_or_default(),
        no_copy: options.contains(&"nocopy"),
        ..Default::default()
    })
}

/// A mount as the daemon validates it (Docker's `validateMountConfig`,
/// without the host check: the daemon's host may not be this one).
struct Spec {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    has_bind_options: bool,
    has_volume_options: bool,
}

impl Spec {
    fn validate(&self) -> Result<()> {
        let config_err =
            |why: String| anyhow!("invalid mount config for type \"{}\": {why}", self.kind);
        if self.target.is_empty() {
            return Err(config_err("field Target must not be empty".into()));
        }
        check_target(&self.target).map_err(|e| config_err(e.to_string()))?;
        match self.kind.as_str() {
            BIND => {
                if self.source.is_empty() {
                    return Err(config_err("field Source must not be empty".into()));
                }
                if self.has_volume_options {
                    return Err(config_err(
                        "field VolumeOptions must not be specified".into(),
                    ));
                }
                if !self.source.starts_with('/') {
                    return Err(config_err(format!(
                        "invalid mount path: '{}' mount path must be absolute",
                        self.source
                    )));
                }
            }
            VOLUME => {
                if self.has_bind_options {
                    return Err(config_err("field BindOptions must not be specified".into()));
                }
                if self.read_only && self.source.is_empty() {
                    return Err(config_err(
                        "must not set ReadOnly mode when using anonymous volumes".into(),
                    ));
                }
            }
            TMPFS => {
                if self.has_bind_options {
                    return Err(config_err("field BindOptions must not be specified".into()));
                }
                if !self.source.is_empty() {
                    return Err(config_err("field Source must not be specified".into()));
                }
            }
            _ => return Err(config_err("mount type unknown".into())),
        }
        Ok(())
    }
}

/// A mount's target: absolute, not `/`.
fn check_target(target: &str) -> Result<()> {
    if clean(target) == "/" {
        bail!("invalid specification: destination can't be '/'");
    }
    if !target.starts_with('/') {
        bail!("invalid mount path: '{target}' mount path must be absolute");
    }
    Ok(())
}

/// A local volume's name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, Docker's message.
pub fn check_volume_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        return Ok(());
    }
    bail!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// One record of Go's `encoding/csv` (quotes, `""` escapes), with its
/// error messages.
pub fn csv_record(input: &str) -> Result<Vec<String>> {
    let line = input.split(['\n']).next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    if input.is_empty() {
        bail!("EOF");
    }
    let bytes = line.as_bytes();
    let err = |col: usize, why: &str| anyhow!("parse error on line 1, column {col}: {why}");
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match line[i..].find('"') {
                    None => {
                        return Err(err(
                            line.len() + 1,
                            "extraneous or missing \" in quoted-field",
                        ))
                    }
                    Some(j) => {
                        let q = i + j;
                        field.push_str(&line[i..q]);
                        i = q + 1;
                        match bytes.get(i) {
                            Some(b'"') => {
                                field.push('"');
                                i += 1;
                            }
                            None | Some(b',') => break,
                            Some(_) => {
                                return Err(err(q + 1, "extraneous or missing \" in quoted-field"))
                            }
                        }
                    }
                }
            }
        } else {
            let end = line[i..].find(',').map_or(line.len(), |j| i + j);
            if let Some(q) = line[i..end].find('"') {
                return Err(err(i + q + 1, "bare \" in non-quoted-field"));
            }
            field.push_str(&line[i..end]);
            i = end;
        }
        fields.push(field);
        match bytes.get(i) {
            Some(b',') => i += 1,
            _ => return Ok(fields),
        }
    }
}

/// One `--mount` (Docker's `MountOpt.Set`, then the daemon's checks).
pub fn parse_mount(spec: &str, cwd: &Path) -> Result<Mount> {
    let flag_err = |why: String| anyhow!("invalid argument \"{spec}\" for \"--mount\" flag: {why}");
    let fields = csv_record(spec).map_err(|e| flag_err(e.to_string()))?;
    let mut m = Mount {
        r#type: VOLUME.to_string(),
        ..Default::default()
    };
    let (mut bind_opts, mut volume_opts, mut tmpfs_opts) = (false, false, false);
    let unsupported = |key: &str| flag_err(format!("option '{key}' is not supported by rdock"));
    for field in &fields {
        let (key, val, has_value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v, true),
            None => (field.to_lowercase(), "", false),
        };
        if !has_value {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => {
                    volume_opts = true;
                    m.no_copy = true;
                }
                "bind-nonrecursive" => return Err(unsupported(&key)),
                _ => {
                    return Err(flag_err(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        }
        let bad_value = || flag_err(format!("invalid value for {key}: {val}"));
        match key.as_str() {
            "type" => m.r#type = val.to_lowercase(),
            "source" | "src" => {
                m.source = if val == "." || val.starts_with("./") {
                    absolute_from(cwd, val)
                } else {
                    val.to_string()
                };
            }
            "target" | "dst" | "destination" => m.target = val.to_string(),
            "readonly" | "ro" => m.read_only = go_bool(val).ok_or_else(bad_value)?,
            "consistency" => {}
            "bind-propagation" => {
                bind_opts = true;
                m.propagation = val.to_lowercase();
            }
            "bind-recursive" => match val {
                "enabled" => {}
                "disabled" | "writable" | "readonly" => {
                    return Err(unsupported(&format!("{key}={val}")))
                }
                _ => {
                    return Err(flag_err(format!(
                        "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                    )))
                }
            },
            "volume-nocopy" => {
                volume_opts = true;
                m.no_copy = go_bool(val)
                    .ok_or_else(|| flag_err(format!("invalid value for volume-nocopy: {val}")))?;
            }
            "volume-driver" => {
                volume_opts = true;
                if val != "local" {
                    return Err(flag_err(format!(
                        "volume driver \"{val}\" is not supported: rdock has only \"local\""
                    )));
                }
            }
            "volume-subpath" | "volume-label" | "volume-opt" | "image-subpath" => {
                return Err(unsupported(&key))
            }
            "tmpfs-size" => {
                tmpfs_opts = true;
                m.tmpfs_size = ram_in_bytes(val).map_err(|_| bad_value())?;
            }
            "tmpfs-mode" => {
                tmpfs_opts = true;
                m.tmpfs_mode = u32::from_str_radix(val, 8).map_err(|_| bad_value())?;
            }
            _ => return Err(flag_err(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if m.r#type.is_empty() {
        return Err(flag_err("type is required".into()));
    }
    if m.target.is_empty() {
        return Err(flag_err("target is required".into()));
    }
    for (set, kind, prefix) in [
        (volume_opts, VOLUME, "volume"),
        (bind_opts, BIND, "bind"),
        (tmpfs_opts, TMPFS, "tmpfs"),
    ] {
        if set && m.r#type != kind {
            return Err(flag_err(format!(
                "cannot mix '{prefix}-*' options with mount type '{}'",
                m.r#type
            )));
        }
    }
    // The daemon's checks.
    let spec = Spec {
        kind: m.r#type.clone(),
        source: m.source.clone(),
        target: m.target.clone(),
        read_only: m.read_only,
        has_bind_options: bind_opts,
        has_volume_options: volume_opts,
    };
    spec.validate()?;
    if m.r#type == BIND {
        if !m.propagation.is_empty() && !PROPAGATIONS.contains(&m.propagation.as_str()) {
            bail!(
                "invalid mount config for type \"bind\": invalid propagation mode: {}",
                m.propagation
            );
        }
        if m.propagation.is_empty() {
            m.propagation = DEFAULT_PROPAGATION.into();
        }
        m.source = clean(&m.source);
    }
    if m.r#type == VOLUME && !m.source.is_empty() {
        check_volume_name(&m.source)?;
    }
    m.target = clean(&m.target);
    Ok(m)
}

/// The options `--tmpfs` passes on to the kernel besides size and mode.
fn tmpfs_option_ok(o: &str) -> bool {
    const FLAGS: [&str; 20] = [
        "rw",
        "ro",
        "exec",
        "noexec",
        "suid",
        "nosuid",
        "dev",
        "nodev",
        "sync",
        "async",
        "dirsync",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "lazytime",
    ];
    if FLAGS.contains(&o) {
        return true;
    }
    match o.split_once('=') {
        Some(("uid" | "gid" | "nr_inodes" | "nr_blocks", v)) => {
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// The kernel's `memparse` for tmpfs `size=`: digits and a k/m/g/t/p/e
/// suffix.
fn tmpfs_size(v: &str) -> Option<i64> {
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &v[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    digits
        .parse::<i64>()
        .ok()?
        .checked_mul(1i64.checked_shl(shift)?)
}

/// One `--tmpfs /path[:opts]`: `size=`, `mode=` (octal), `ro`, and the
/// kernel's other tmpfs options.
pub fn parse_tmpfs(spec: &str) -> Result<Mount> {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let bad = |why: String| anyhow!("invalid --tmpfs \"{spec}\": {why}");
    check_target(target).map_err(|e| bad(e.to_string()))?;
    let mut m = Mount {
        r#type: TMPFS.to_string(),
        target: clean(target),
        ..Default::default()
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(v) = o.strip_prefix("size=") {
            if v.ends_with('%')
                && v.len() > 1
                && v[..v.len() - 1].bytes().all(|b| b.is_ascii_digit())
            {
                // A share of memory: the kernel works it out.
                m.tmpfs_options.push(o.to_string());
                continue;
            }
            m.tmpfs_size = tmpfs_size(v).ok_or_else(|| bad(format!("invalid size: {v}")))?;
        } else if let Some(v) = o.strip_prefix("mode=") {
            m.tmpfs_mode = u32::from_str_radix(v, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| bad(format!("invalid mode: {v}")))?;
        } else if o == "ro" {
            m.read_only = true;
        } else if o == "rw" {
            m.read_only = false;
        } else if tmpfs_option_ok(o) {
            m.tmpfs_options.push(o.to_string());
        } else {
            return Err(bad(format!("unknown option: {o}")));
        }
    }
    Ok(m)
}

/// `--volumes-from CONTAINER[:MODE]` (Docker's `ParseVolumesFrom`).
pub fn check_volumes_from(spec: &str) -> Result<()> {
    if spec.is_empty() {
        bail!("volumes-from specification cannot be an empty string");
    }
    let (_, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if mode.is_empty() {
        return Ok(());
    }
    let has = |set: &[&str]| mode.split(',').any(|o| set.contains(&o));
    if !valid_mode(mode) || has(&PROPAGATIONS) || has(&["nocopy"]) {
        bail!("invalid mode: {mode}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CWD: &str = "/work/dir";

    fn v(spec: &str) -> Result<Mount> {
        parse_volume(spec, Path::new(CWD))
    }

    fn m(spec: &str) -> Result<Mount> {
        parse_mount(spec, Path::new(CWD))
    }

    fn err(r: Result<Mount>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn volume_binds() {
        let b = v("/host/data/:/data:ro,z,rshared").unwrap();
        assert_eq!(
            (b.r#type.as_str(), b.source.as_str(), b.target.as_str()),
            ("bind", "/host/data", "/data")
        );
        assert!(b.read_only && b.create_host_path && !b.no_copy);
        assert_eq!(
            (b.propagation.as_str(), b.relabel.as_str()),
            ("rshared", "z")
        );
        let b = v("/h:/c").unwrap();
        assert!(!b.read_only);
        assert_eq!(b.propagation, "rprivate");
        let b = v("/h:/c:rw,Z,cached").unwrap();
        assert_eq!(b.relabel, "Z");
        // A host path relative to the current directory, as Docker's client.
        let b = v("./data:/c").unwrap();
        assert_eq!(b.source, "/work/dir/data");
        let b = v("../up:/c").unwrap();
        assert_eq!(b.source, "/work/up");
        let b = v(".:/c:ro").unwrap();
        assert_eq!(b.source, "/work/dir");
        assert!(b.read_only);
    }

    #[test]
    fn volume_named_and_anonymous() {
        let n = v("cache:/var/cache:nocopy").unwrap();
        assert_eq!(
            (n.r#type.as_str(), n.source.as_str(), n.target.as_str()),
            ("volume", "cache", "/var/cache")
        );
        assert!(n.no_copy && !n.create_host_path && n.propagation.is_empty());
        let a = v("/data").unwrap();
        assert_eq!((a.r#type.as_str(), a.source.as_str()), ("volume", ""));
        assert_eq!(a.target, "/data");
        let a = v("/d/").unwrap();
        assert_eq!(a.target, "/d");
        let n = v("my-vol.1:/x:ro").unwrap();
        assert!(n.read_only);
    }

    #[test]
    fn volume_errors_like_docker() {
        for (spec, want) in [
            ("", "invalid empty volume spec"),
            (":/x", "invalid spec: :/x: empty section between colons"),
            ("/a::/b", "invalid spec: /a::/b: empty section between colons"),
            ("/a:/b:", "invalid spec: /a:/b:: empty section between colons"),
            ("/a:/b:ro:x", "invalid spec: /a:/b:ro:x: too many colons"),
            ("/foo:rw", "invalid volume specification: '/foo:rw'"),
            ("/a:/b:bogus", "invalid mode: bogus"),
            ("/a:/b:ro,rw", "invalid mode: ro,rw"),
            ("/a:/b:shared,slave", "invalid mode: shared,slave"),
            (
                "/a:b",
                "invalid volume specification: '/a:b': invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute",
            ),
            (
                "/a:/",
                "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
            ),
            (
                "/a:/b:nocopy",
                "invalid volume specification: '/a:/b:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified",
            ),
            (
                "vol:/b:shared",
                "invalid volume specification: 'vol:/b:shared': invalid mount config for type \"volume\": field BindOptions must not be specified",
            ),
            (
                "data",
                "invalid volume specification: 'data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute",
            ),
            (
                "x",
                "invalid volume specification: 'x': invalid mount config for type \"volume\": invalid mount path: 'x' mount path must be absolute",
            ),
            (
                "rel/dir:/x",
                "create rel/dir: \"rel/dir\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
            ),
            (
                "~/dir:/x",
                "create ~/dir: \"~/dir\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
            ),
        ] {
            assert_eq!(err(v(spec)), want, "{spec:?}");
        }
    }

    #[test]
    fn csv_like_go() {
        assert_eq!(csv_record("a,b=c").unwrap(), ["a", "b=c"]);
        assert_eq!(csv_record("\"a,b\",c").unwrap(), ["a,b", "c"]);
        assert_eq!(csv_record("\"x\"\"y\"").unwrap(), ["x\"y"]);
        assert_eq!(csv_record(",").unwrap(), ["", ""]);
        assert_eq!(csv_record("").unwrap_err().to_string(), "EOF");
        assert_eq!(
            csv_record("type=bind,src=\"a,dst=/y")
                .unwrap_err()
                .to_string(),
            "parse error on line 1, column 15: bare \" in non-quoted-field"
        );
        assert_eq!(
            csv_record("type=bind,\"src=/a").unwrap_err().to_string(),
            "parse error on line 1, column 18: extraneous or missing \" in quoted-field"
        );
        assert_eq!(
            csv_record("\"a\"b,dst=/x").unwrap_err().to_string(),
            "parse error on line 1, column 3: extraneous or missing \" in quoted-field"
        );
    }

    #[test]
    fn mounts() {
        let b = m("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave").unwrap();
        assert_eq!(
            (b.r#type.as_str(), b.source.as_str(), b.target.as_str()),
            ("bind", "/h", "/c")
        );
        assert!(b.read_only && !b.create_host_path);
        assert_eq!(b.propagation, "rslave");
        let b = m("type=bind,src=./x,dst=/c,ro=false,consistency=cached").unwrap();
        assert_eq!(b.source, "/work/dir/x");
        assert!(!b.read_only);
        assert_eq!(b.propagation, "rprivate");
        let b = m("TYPE=BIND,SRC=/h,Destination=/c,ReadOnly=1").unwrap();
        assert!(b.read_only && b.r#type == "bind");
        let vol = m("src=data,dst=/d,volume-nocopy").unwrap();
        assert_eq!(
            (vol.r#type.as_str(), vol.source.as_str()),
            ("volume", "data")
        );
        assert!(vol.no_copy);
        let vol = m("type=volume,dst=/d,volume-nocopy=false,volume-driver=local").unwrap();
        assert!(!vol.no_copy && vol.source.is_empty());
        let t = m("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!((t.tmpfs_size, t.tmpfs_mode), (64 << 20, 0o1770));
        let q = m("type=bind,\"source=/a,b\",target=/c").unwrap();
        assert_eq!(q.source, "/a,b");
    }

    #[test]
    fn mount_errors_like_docker() {
        let flag = |spec: &str, why: &str| {
            format!("invalid argument \"{spec}\" for \"--mount\" flag: {why}")
        };
        for (spec, why) in [
            ("type=bind,src=/x", "target is required"),
            ("type=bind,readonly=bad,src=/x,dst=/y", "invalid value for readonly: bad"),
            ("type=volume,src=a,dst=/x,readonly=", "invalid value for readonly: "),
            ("type=tmpfs,tmpfs-size=x,dst=/y", "invalid value for tmpfs-size: x"),
            ("dst=/x,type=tmpfs,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
            ("dst=/x,type=volume,volume-nocopy=x", "invalid value for volume-nocopy: x"),
            ("foo,dst=/y", "invalid field 'foo' must be a key=value pair"),
            ("foo=bar,dst=/y", "unexpected key 'foo' in 'foo=bar'"),
            ("a=b=c", "unexpected key 'a' in 'a=b=c'"),
            (",", "invalid field '' must be a key=value pair"),
            (" type=bind,dst=/x", "unexpected key ' type' in ' type=bind'"),
            ("", "EOF"),
            (
                "type=tmpfs,bind-propagation=shared,dst=/y",
                "cannot mix 'bind-*' options with mount type 'tmpfs'",
            ),
            (
                "type=bind,src=/a,dst=/x,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=volume,src=a,dst=/x,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "type=volume,dst=/x,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "type=bind,src=\"a,dst=/y",
                "parse error on line 1, column 15: bare \" in non-quoted-field",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=sometimes",
                "invalid value for bind-recursive: sometimes (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")",
            ),
            ("type=volume,src=a,dst=/b,volume-label=x=y", "option 'volume-label' is not supported by rdock"),
        ] {
            assert_eq!(err(m(spec)), flag(spec, why), "{spec:?}");
        }
        for (spec, want) in [
            ("type=bind,dst=/x", "invalid mount config for type \"bind\": field Source must not be empty"),
            ("type=bind,src=rel,dst=/x", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
            ("type=bind,src=/a,dst=rel", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
            ("type=volume,dst=/", "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
            ("type=volume,dst=/x,ro", "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"),
            ("type=tmpfs,src=/a,dst=/x", "invalid mount config for type \"tmpfs\": field Source must not be specified"),
            ("type=image,src=busybox,dst=/x", "invalid mount config for type \"image\": mount type unknown"),
            ("type=bind,src=/a,dst=/x,bind-propagation=sideways", "invalid mount config for type \"bind\": invalid propagation mode: sideways"),
        ] {
            assert_eq!(err(m(spec)), want, "{spec:?}");
        }
        assert!(
            err(m("src=a/b,dst=/x")).starts_with("create a/b: \"a/b\" includes invalid characters")
        );
    }

    #[test]
    fn tmpfs() {
        let t = parse_tmpfs("/run").unwrap();
        assert_eq!((t.r#type.as_str(), t.target.as_str()), ("tmpfs", "/run"));
        assert_eq!((t.tmpfs_size, t.tmpfs_mode), (0, 0));
        let t = parse_tmpfs("/run:rw,noexec,nosuid,size=64m,mode=1777,uid=1000").unwrap();
        assert_eq!((t.tmpfs_size, t.tmpfs_mode), (64 << 20, 0o1777));
        assert_eq!(t.tmpfs_options, ["noexec", "nosuid", "uid=1000"]);
        assert!(!t.read_only);
        let t = parse_tmpfs("/x:ro,size=100k,size=50%").unwrap();
        assert!(t.read_only);
        assert_eq!(t.tmpfs_size, 100 << 10);
        assert_eq!(t.tmpfs_options, ["size=50%"]);
        assert_eq!(parse_tmpfs("/x:size=2G").unwrap().tmpfs_size, 2 << 30);
        for (spec, why) in [
            (
                "run",
                "invalid mount path: 'run' mount path must be absolute",
            ),
            ("/", "invalid specification: destination can't be '/'"),
            ("/x:size=abc", "invalid size: abc"),
            ("/x:size=1mb", "invalid size: 1mb"),
            ("/x:mode=999", "invalid mode: 999"),
            ("/x:bogus", "unknown option: bogus"),
            ("/x:uid=me", "unknown option: uid=me"),
        ] {
            assert_eq!(
                err(parse_tmpfs(spec)),
                format!("invalid --tmpfs \"{spec}\": {why}"),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn all_in_order_and_no_two_on_one_target() {
        let all = parse_all(
            &["/h:/a".into(), "/b".into()],
            &["type=tmpfs,dst=/c".into()],
            &["/d:size=1m".into()],
            Path::new(CWD),
        )
        .unwrap();
        let targets: Vec<&str> = all.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["/a", "/b", "/c", "/d"]);
        let dup = parse_all(
            &["/h:/a".into()],
            &["type=volume,dst=/a/".into()],
            &[],
            Path::new(CWD),
        )
        .unwrap_err();
        assert_eq!(dup.to_string(), "Duplicate mount point: /a");
    }

    #[test]
    fn volumes_from() {
        for ok in ["web", "web:ro", "web:rw", "web:ro,z"] {
            check_volumes_from(ok).unwrap();
        }
        assert_eq!(
            check_volumes_from("").unwrap_err().to_string(),
            "volumes-from specification cannot be an empty string"
        );
        for (spec, mode) in [
            ("web:bogus", "bogus"),
            ("web:shared", "shared"),
            ("web:nocopy", "nocopy"),
        ] {
            assert_eq!(
                check_volumes_from(spec).unwrap_err().to_string(),
                format!("invalid mode: {mode}")
            );
        }
    }
}
