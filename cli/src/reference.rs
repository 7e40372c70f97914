//! Image references as Docker shows them: `docker.io/library/busybox:latest`
//! is `busybox:latest`, other registries are shown in full.

/// Splits a reference into repository and tag at the last ':' after the last
/// '/'. A digest reference (`repo@sha256:…`) has no tag.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    if let Some((repo, _digest)) = reference.split_once('@') {
        return (repo, None);
    }
    let after_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[after_slash..].rfind(':') {
        Some(i) => {
            let at = after_slash + i;
            (&reference[..at], Some(&reference[at + 1..]))
        }
        None => (reference, None),
    }
}

/// Docker's familiar form: `docker.io/library/X` → `X`, `docker.io/U/X` →
/// `U/X`; anything else unchanged. Works on names with a tag or digest too.
pub fn familiar(reference: &str) -> String {
    let Some(rest) = reference.strip_prefix("docker.io/") else {
        return reference.to_string();
    };
    if let Some(name) = rest.strip_prefix("library/") {
        let path = name.split(['@', ':']).next().unwrap_or(name);
        if !path.contains('/') {
            return name.to_string();
        }
    }
    rest.to_string()
}

/// Docker's normalization of what a user typed: `busybox` →
/// `docker.io/library/busybox:latest`, `u/x:1` → `docker.io/u/x:1`,
/// `127.0.0.1:5000/t/bb` → `127.0.0.1:5000/t/bb:latest`.
pub fn normalize(reference: &str) -> String {
    let (name, suffix) = match reference.split_once('@') {
        Some((name, digest)) => (name, format!("@{digest}")),
        None => match split_tag(reference) {
            (name, Some(tag)) => (name, format!(":{tag}")),
            (name, None) => (name, ":latest".to_string()),
        },
    };
    let full = match name.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            name.to_string()
        }
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    };
    format!("{full}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox", Some("latest"))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/test/bb:v1"),
            ("127.0.0.1:5000/test/bb", Some("v1"))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/test/bb"),
            ("127.0.0.1:5000/test/bb", None)
        );
        assert_eq!(split_tag("localhost:5000/bb"), ("localhost:5000/bb", None));
        assert_eq!(split_tag("bb"), ("bb", None));
        assert_eq!(split_tag("bb@sha256:abcd"), ("bb", None));
    }

    #[test]
    fn names_shortened_like_docker() {
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(
            familiar("docker.io/library/busybox@sha256:ab"),
            "busybox@sha256:ab"
        );
        assert_eq!(familiar("docker.io/alice/tool"), "alice/tool");
        assert_eq!(familiar("docker.io/library/a/b"), "library/a/b");
        assert_eq!(familiar("127.0.0.1:5000/test/bb"), "127.0.0.1:5000/test/bb");
        assert_eq!(familiar("quay.io/library/x"), "quay.io/library/x");
    }

    #[test]
    fn references_normalized_like_docker() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(normalize("alice/tool"), "docker.io/alice/tool:latest");
        assert_eq!(
            normalize("127.0.0.1:5000/test/bb:v1"),
            "127.0.0.1:5000/test/bb:v1"
        );
        assert_eq!(normalize("localhost/bb"), "localhost/bb:latest");
        assert_eq!(normalize("bb@sha256:ab"), "docker.io/library/bb@sha256:ab");
        assert_eq!(
            normalize("docker.io/library/bb:1"),
            "docker.io/library/bb:1"
        );
    }
}
