//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` a container
//! sees: written by rdock on the host and bind-mounted in.

use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// Writes the three files into `dir`, returning (host file, container path).
pub fn write(
    dir: &Path,
    hostname: &str,
    ip: &str,
    host_resolv: &str,
) -> Result<Vec<(PathBuf, String)>> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if !ip.is_empty() {
        hosts.push_str(&format!("{ip}\t{hostname}\n"));
    } else {
        hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv_conf(host_resolv), "/etc/resolv.conf"),
    ];
    let mut out = Vec::new();
    for (name, text, dst) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io(format!("write {}", p.display())))?;
        out.push((p, dst.to_string()));
    }
    Ok(out)
}

/// The host's resolver config without loopback name servers, which cannot
/// be reached from the container's own network namespace (as Docker does).
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let ip = words.next().unwrap_or("");
            if ip.starts_with("127.") || ip == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_dropped() {
        let r = resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n");
        assert_eq!(r, "search lan\nnameserver 10.0.0.1\n");
        assert!(resolv_conf("nameserver 127.0.0.1\n").contains("8.8.8.8"));
        let d = tempfile::tempdir().unwrap();
        let files = write(d.path(), "abc", "", "").unwrap();
        assert_eq!(files.len(), 3);
        let hosts = std::fs::read_to_string(d.path().join("hosts")).unwrap();
        assert!(hosts.contains("\tabc\n"));
    }
}
