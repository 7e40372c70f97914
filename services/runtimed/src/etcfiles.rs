//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` a container
//! sees: written by rdock on the host and bind-mounted in.

use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// What goes into a container's etc files.
#[derive(Debug, Default)]
pub struct EtcInput<'a> {
    pub hostname: &'a str,
    /// The container's own addresses, one per network; none without a
    /// network.
    pub ips: &'a [String],
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
            with_own_addresses(&hosts, hostname, input.ips)
        }
    };
    let resolv = if input.host_hosts.is_some() {
        input.host_resolv.to_string()
    } else {
        resolv_for(input.dns_servers, input.host_resolv)
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

/// `hosts` with the container's own lines (`ADDRESS<TAB>HOSTNAME`, one per
/// network, or `127.0.1.1` without any) replaced by lines for `ips`. Link
/// lines carry two names or more, so they are never taken for its own.
pub fn with_own_addresses(hosts: &str, hostname: &str, ips: &[String]) -> String {
    let mut out = String::with_capacity(hosts.len() + 32);
    for line in hosts.lines() {
        let own = line
            .split_once('\t')
            .is_some_and(|(_, names)| names == hostname);
        if !own {
            out.push_str(line);
            out.push('\n');
        }
    }
    if ips.is_empty() {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for ip in ips {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// The container's resolv.conf: the networks' name servers with the host's
/// search and options lines, or the host's own config without them.
pub fn resolv_for(dns_servers: &[String], host_resolv: &str) -> String {
    if dns_servers.is_empty() {
        return resolv_conf(host_resolv);
    }
    let mut r: String = dns_servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    for line in host_resolv.lines() {
        if line.starts_with("search") || line.starts_with("options") {
            r.push_str(line);
            r.push('\n');
        }
    }
    r
}

/// Rewrites a container's hosts and resolv.conf after it joined or left a
/// network while running. The files are bind-mounted into the container,
/// so they are rewritten in place (a rename would leave the container with
/// the old file).
pub fn update(dir: &Path, hostname: &str, ips: &[String], dns_servers: &[String]) -> Result<()> {
    let hosts_path = dir.join("hosts");
    let hosts = std::fs::read_to_string(&hosts_path)
        .map_err(io(format!("read {}", hosts_path.display())))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for (p, text) in [
        (hosts_path, with_own_addresses(&hosts, hostname, ips)),
        (
            dir.join("resolv.conf"),
            resolv_for(dns_servers, &host_resolv),
        ),
    ] {
        std::fs::write(&p, text).map_err(io(format!("write {}", p.display())))?;
    }
    Ok(())
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
            ips: &["10.123.0.2".to_string()],
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

    #[test]
    fn own_addresses_are_replaced_and_links_kept() {
        let hosts = "127.0.0.1\tlocalhost\n10.0.0.3\tdb abc\n10.0.0.2\tabc\n";
        let two = with_own_addresses(hosts, "abc", &["10.0.0.2".into(), "10.1.0.2".into()]);
        assert_eq!(
            two,
            "127.0.0.1\tlocalhost\n10.0.0.3\tdb abc\n10.0.0.2\tabc\n10.1.0.2\tabc\n"
        );
        let none = with_own_addresses(&two, "abc", &[]);
        assert_eq!(
            none,
            "127.0.0.1\tlocalhost\n10.0.0.3\tdb abc\n127.0.1.1\tabc\n"
        );
        assert_eq!(with_own_addresses(&none, "abc", &[]), none);
        assert_eq!(
            resolv_for(
                &["10.1.0.1".into(), "10.2.0.1".into()],
                "options ndots:2\nnameserver 1.1.1.1\n"
            ),
            "nameserver 10.1.0.1\nnameserver 10.2.0.1\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_for(&[], "nameserver 1.1.1.1\n"),
            "nameserver 1.1.1.1\n"
        );
    }

    #[test]
    fn update_rewrites_in_place() {
        let d = tempfile::tempdir().unwrap();
        let input = EtcInput {
            hostname: "abc",
            ips: &["10.0.0.2".to_string()],
            host_resolv: "nameserver 10.9.9.9\n",
            ..Default::default()
        };
        write(d.path(), &input).unwrap();
        let ino = |n: &str| {
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(d.path().join(n)).unwrap())
        };
        let before = (ino("hosts"), ino("resolv.conf"));
        update(
            d.path(),
            "abc",
            &["10.0.0.2".into(), "10.1.0.2".into()],
            &["10.1.0.1".into()],
        )
        .unwrap();
        assert_eq!((ino("hosts"), ino("resolv.conf")), before);
        let hosts = std::fs::read_to_string(d.path().join("hosts")).unwrap();
        assert!(hosts.ends_with("10.0.0.2\tabc\n10.1.0.2\tabc\n"), "{hosts}");
        let resolv = std::fs::read_to_string(d.path().join("resolv.conf")).unwrap();
        assert!(resolv.starts_with("nameserver 10.1.0.1\n"), "{resolv}");
    }
}
