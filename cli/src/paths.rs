//! Path handling the way Docker's client does it (Go's `path/filepath`):
//! lexical cleaning, absolute paths with a preserved trailing `/` or `/.`,
//! and splitting into directory and entry.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::format::go_quote;

/// Go's `filepath.Clean`: the shortest lexically equal path (`.` for empty).
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(p) if *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base` of a path.
pub fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `filepath.Dir`.
pub fn dir(path: &str) -> String {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    clean(&path[..cut])
}

pub fn has_trailing_separator(path: &str) -> bool {
    path.ends_with('/')
}

/// Whether the last element is `.` (`/x/.`, `.`).
pub fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

/// Whether the path says it is a directory: a trailing `/` or `/.`.
pub fn asserts_directory(path: &str) -> bool {
    has_trailing_separator(path) || specifies_current_dir(path)
}

/// Docker's `PreserveTrailingDotOrSeparator`: the cleaned path gets back
/// the original's trailing `/.` or `/`.
pub fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !has_trailing_separator(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if !has_trailing_separator(&out) && has_trailing_separator(original) {
        out.push('/');
    }
    out
}

/// Docker's `SplitPathDirEntry`: directory and base of the cleaned path,
/// keeping a trailing `.`.
pub fn split_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        if cleaned == "/" {
            cleaned = "/.".into();
        } else {
            cleaned.push_str("/.");
        }
    }
    (dir(&cleaned), base(&cleaned))
}

/// Joins `rel` to `base` and cleans the result (Go's `filepath.Join`).
pub fn join(base: &str, rel: &str) -> String {
    if base.is_empty() {
        return clean(rel);
    }
    clean(&format!("{base}/{rel}"))
}

/// An absolute version of a local path (relative to the current
/// directory), cleaned, with its trailing `/` or `/.` kept.
pub fn absolute(path: &str) -> Result<String> {
    let joined = if path.starts_with('/') {
        clean(path)
    } else {
        let cwd = std::env::current_dir().context("find the current directory")?;
        let cwd = cwd
            .to_str()
            .context("the current directory is not valid UTF-8")?
            .to_string();
        join(&cwd, path)
    };
    Ok(preserve_trailing(&joined, path))
}

/// An absolute local path from `cwd` (no trailing handling).
pub fn absolute_from(cwd: &Path, path: &str) -> String {
    if path.starts_with('/') {
        clean(path)
    } else {
        join(&cwd.to_string_lossy(), path)
    }
}

/// Docker's `ValidateOutputPath` for a local destination (`export -o`,
/// `cp` from a container): its directory must exist, and an existing path
/// must be a directory or a regular file (or a pipe).
pub fn validate_output_path(path: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let parent = dir(&clean(path));
    if parent != "." && !parent.is_empty() {
        if let Err(e) = std::fs::metadata(&parent) {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::bail!(
                    "invalid output path: directory {} does not exist",
                    go_quote(&parent)
                );
            }
        }
    }
    match std::fs::metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            if t.is_block_device() || t.is_char_device() {
                anyhow::bail!(
                    "invalid output path: {} must be a directory or a regular file: got a device",
                    go_quote(path)
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("{}", os_error("stat", path, &e))),
    }
}

/// An OS error the way Go prints it: `lstat /x/: not a directory`.
pub fn os_error(op: &str, path: &str, e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(n) => {
            let desc = nix::errno::Errno::from_raw(n).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    };
    format!("{op} {path}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("a/./b/..", "a"),
            ("/../a", "/a"),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("./", "."),
            ("/a/b/.", "/a/b"),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base(""), ".");
        assert_eq!(base("/a/."), ".");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(dir("/b"), "/");
    }

    #[test]
    fn trailing_dot_and_separator_kept() {
        assert_eq!(preserve_trailing("/a/b", "a/b/"), "/a/b/");
        assert_eq!(preserve_trailing("/a/b", "a/b/."), "/a/b/.");
        assert_eq!(preserve_trailing("/", "/."), "/.");
        assert_eq!(preserve_trailing("/", "/"), "/");
        assert_eq!(preserve_trailing("/a", "a"), "/a");
        assert!(asserts_directory("/x/") && asserts_directory("/x/.") && !asserts_directory("/x"));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a"), ("/".into(), "a".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "/".into()));
        assert_eq!(split_dir_entry("/."), ("/".into(), ".".into()));
        assert_eq!(absolute_from(Path::new("/w"), "./x/../y"), "/w/y");
        assert_eq!(absolute_from(Path::new("/w"), "/abs/"), "/abs");
        let abs = absolute("some/dir/.").unwrap();
        assert!(
            abs.starts_with('/') && abs.ends_with("/some/dir/."),
            "{abs}"
        );
    }

    #[test]
    fn output_paths_like_docker() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_str().unwrap();
        validate_output_path(&format!("{d}/new.tar")).unwrap();
        validate_output_path(d).unwrap();
        assert_eq!(
            validate_output_path(&format!("{d}/nope/x.tar"))
                .unwrap_err()
                .to_string(),
            format!("invalid output path: directory \"{d}/nope\" does not exist")
        );
        assert_eq!(
            validate_output_path("/dev/null").unwrap_err().to_string(),
            "invalid output path: \"/dev/null\" must be a directory or a regular file: got a device"
        );
        let file = format!("{d}/file");
        std::fs::write(&file, "x").unwrap();
        let e = std::fs::symlink_metadata(format!("{file}/")).unwrap_err();
        assert_eq!(
            os_error("lstat", &format!("{file}/"), &e),
            format!("lstat {file}/: not a directory")
        );
    }
}
