//! Image references: parsed and normalized the way Docker does
//! (`busybox` is `docker.io/library/busybox:latest`).

use oci_client::Reference;

use crate::error::{Error, Result};

/// The longest repository name (Docker's `NameTotalLengthMax`).
const NAME_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;

/// Parses a user-supplied reference, with Docker's error wording.
///
/// The grammar is distribution's (`reference/regexp.go`), checked by hand:
/// the regular expression the registry client offers costs ~15 MB and
/// several milliseconds to build, once per daemon, for a few dozen bytes.
pub fn parse(s: &str) -> Result<Reference> {
    let bad = |why: &str| Error::InvalidArgument(format!("invalid reference format {s:?}: {why}"));
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.len() > 512 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    // A tag follows the last ':' after the last '/' (an earlier ':' is
    // the registry's port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    let invalid = || Error::InvalidArgument(format!("invalid reference format {s:?}"));
    let components: Vec<&str> = name.split('/').collect();
    let (domain, path) = match components.split_first() {
        Some((first, more)) if !more.is_empty() && is_domain(first) => (Some(*first), more),
        _ => (None, components.as_slice()),
    };
    if path.is_empty() || !path.iter().all(|c| is_path_component(c)) {
        let has_upper = path
            .iter()
            .any(|c| c.chars().any(|ch| ch.is_ascii_uppercase()));
        return Err(if has_upper {
            bad("repository name must be lowercase")
        } else {
            invalid()
        });
    }
    if tag.is_some_and(|t| !is_tag(t)) || digest.is_some_and(|d| !is_digest_syntax(d)) {
        return Err(invalid());
    }
    // Docker's split: the first component names a registry only when it
    // looks like a host; Docker Hub's single names are under "library/".
    let (registry, mut repository) = match domain {
        Some(d) if d.contains('.') || d.contains(':') || d == "localhost" => {
            (d.to_string(), path.join("/"))
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        "docker.io".to_string()
    } else {
        registry
    };
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository name must be lowercase"));
    }
    if repository.len() > NAME_MAX {
        return Err(bad("repository name must not be more than 255 characters"));
    }
    if let Some(d) = digest {
        check_digest_length(d).map_err(bad)?;
    }
    Ok(match (tag, digest) {
        (Some(t), Some(d)) => {
            Reference::with_tag_and_digest(registry, repository, t.to_string(), d.to_string())
        }
        (None, Some(d)) => Reference::with_digest(registry, repository, d.to_string()),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest").to_string()),
    })
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, dot-separated,
/// then an optional `:port`.
fn is_domain(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}` (ASCII word characters).
fn is_tag(t: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = t.as_bytes();
    b.len() <= TAG_MAX
        && b.first().is_some_and(|c| word(*c))
        && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

/// `algorithm:hex` with at least 32 hex digits; the algorithm is
/// `[A-Za-z][A-Za-z0-9]*` parts joined by `-`, `_`, `+` or `.`.
fn is_digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The digest lengths registries use; other algorithms are refused.
fn check_digest_length(d: &str) -> std::result::Result<(), &'static str> {
    let (alg, hex) = d.split_once(':').ok_or("invalid checksum digest format")?;
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() == want {
        Ok(())
    } else {
        Err("invalid checksum digest length")
    }
}

/// The canonical string of a reference: `registry/repo:tag` or `registry/repo@digest`.
pub fn canonical(r: &Reference) -> String {
    match (r.tag(), r.digest()) {
        (Some(t), _) => format!("{}/{}:{}", r.registry(), r.repository(), t),
        (None, Some(d)) => format!("{}/{}@{}", r.registry(), r.repository(), d),
        (None, None) => format!("{}/{}:latest", r.registry(), r.repository()),
    }
}

/// `registry/repo@digest`, as Docker's RepoDigests lists it.
pub fn repo_digest(r: &Reference, digest: &str) -> String {
    format!("{}/{}@{}", r.registry(), r.repository(), digest)
}

/// Whether `s` is a content digest `sha256:<64 hex>`.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let r = parse("busybox").unwrap();
        assert_eq!(canonical(&r), "docker.io/library/busybox:latest");
        let r = parse("127.0.0.1:5000/test/bb:v1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(canonical(&r), "127.0.0.1:5000/test/bb:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("alpine@{d}")).unwrap();
        assert_eq!(canonical(&r), format!("docker.io/library/alpine@{d}"));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "BUSYBOX",
            "a//b",
            "x:",
            "@sha256:zz",
            "",
            "a b",
            "Foo/bar",
            "x@sha256:zz",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid reference format"), "{bad}: {e}");
        }
        assert!(parse("MyRegistry.io:5000/lower/x").is_ok());
        for bad in [
            "a/b:",
            "a:b:c",
            "a/-b",
            "a/b-",
            "a/b..c",
            "a/b___c",
            ":tag",
            "host:port/x",
            "a@sha256:abc",
            "a:tag@",
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(parse(&long).unwrap_err().to_string().contains("255"));
        let e = parse(&format!("a@md5:{}", "a".repeat(32))).unwrap_err();
        assert!(
            e.to_string().contains("unsupported digest algorithm"),
            "{e}"
        );
    }

    #[test]
    fn accepts_what_docker_accepts() {
        let d = format!("sha256:{}", "0".repeat(64));
        for (given, canonical_form) in [
            ("a-b--c/d__e.f_g", "docker.io/a-b--c/d__e.f_g:latest"),
            ("index.docker.io/x", "docker.io/library/x:latest"),
            ("localhost/x:1.0", "localhost/x:1.0"),
            (
                "localhost:5000/a/b/c:T_9.x-y",
                "localhost:5000/a/b/c:T_9.x-y",
            ),
            ("my-host.example.com/x", "my-host.example.com/x:latest"),
            ("[::1]/x", ""),
        ] {
            match parse(given) {
                Ok(r) => assert_eq!(canonical(&r), canonical_form, "{given}"),
                Err(e) => assert_eq!(canonical_form, "", "{given}: {e}"),
            }
        }
        let r = parse(&format!("x:v1@{d}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("v1"), Some(d.as_str())));
        assert_eq!(repo_digest(&r, &d), format!("docker.io/library/x@{d}"));
    }
}
