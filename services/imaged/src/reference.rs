//! Image references: parsed and normalized the way Docker does
//! (`busybox` is `docker.io/library/busybox:latest`).

use oci_client::Reference;

use crate::error::{Error, Result};

/// Parses a user-supplied reference, with Docker's error wording.
pub fn parse(s: &str) -> Result<Reference> {
    let bad =
        |why: String| Error::InvalidArgument(format!("invalid reference format {s:?}: {why}"));
    if s.is_empty() {
        return Err(bad("empty".into()));
    }
    if s.len() > 512 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("contains whitespace or control characters".into()));
    }
    let name = s.split('@').next().unwrap_or(s);
    let last = name.rsplit('/').next().unwrap_or(name);
    let repo = match last.split_once(':') {
        Some((r, _)) => &name[..name.len() - last.len() + r.len()],
        None => name,
    };
    let path = match repo.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => repo,
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository name must be lowercase".into()));
    }
    s.parse::<Reference>().map_err(|e| match e {
        oci_client::ParseError::ReferenceInvalidFormat => {
            Error::InvalidArgument(format!("invalid reference format {s:?}"))
        }
        e => bad(e.to_string()),
    })
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
    }
}
