//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` a container
//! sees: written by rdock on the host and bind-mounted in.

use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// What goes into a container's etc files.
#[derive(Debug, Default)]
pub struct EtcInput<'a> {
    pub hostname: &'a str,
    /// The container's own address; empty without a network.
    pub ip: &'a str,
    /// (address, names) for links.
    pub extra_hosts: Vec<(String, Vec<String>)>,
    /// Name servers from the network daemon; empty = the host's.
    pub dns_servers: &'a [String],
    /// The host's /etc/resolv.conf.
    pub host_resolv: &'a str,
    /// With the host's network: its /etc/hosts as is.
    pub host_hosts: Option<&'a str>,
}

/// Writes the three files into `dir`, returning (host file, container path).
pub fn write(dir: &Path, input: &EtcInput<'_>) -> Result<Vec<(PathBuf, String)>> {
    let hostname = input.hostname;
    let hosts = match input.host_hosts {
        Some(h) => h.to_string(),
        None => {
            let mut hosts = String::from(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
            );
            for (ip, names) in &input.extra_hosts {
                hosts.push_str(&format!("{ip}\t{}\n", names.join(" ")));
            }
            if !input.ip.is_empty() {
                hosts.push_str(&format!("{}\t{hostname}\n", input.ip));
            } else {
                hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
            }
            hosts
        }
    };
    let resolv = if input.host_hosts.is_some() {
        input.host_resolv.to_string()
    } else if input.dns_servers.is_empty() {
        resolv_conf(input.host_resolv)
    } else {
        let mut r: String = input
            .dns_servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect();
        for line in input.host_resolv.lines() {
            if line.starts_with("search") || line.starts_with("options") {
                r.push_str(line);
                r.push('\n');
            }
        }
        r
    };
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
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
        let input = EtcInput {
            hostname: "abc",
            ip: "10.123.0.2",
            extra_hosts: vec![("10.123.0.3".into(), vec!["db".into(), "data".into()])],
            dns_servers: &["10.124.0.1".to_string()],
            host_resolv: "search lan\nnameserver 127.0.0.53\n",
            host_hosts: None,
        };
        let files = write(d.path(), &input).unwrap();
        assert_eq!(files.len(), 3);
        let hosts = std::fs::read_to_string(d.path().join("hosts")).unwrap();
        assert!(hosts.contains("10.123.0.2\tabc\n"), "{hosts}");
        assert!(hosts.contains("10.123.0.3\tdb data\n"), "{hosts}");
        let resolv = std::fs::read_to_string(d.path().join("resolv.conf")).unwrap();
        assert_eq!(resolv, "nameserver 10.124.0.1\nsearch lan\n");
    }
}
