//! Published ports: `-p`/`--publish` parsed as Docker's `nat.ParsePortSpec`
//! parses it, `--link` checked as Docker's `ParseLink` checks it, and the
//! `port` command (from the container's `NetworkSettings.Ports`).

use std::cmp::Ordering;
use std::io::{self, Write as _};
use std::net::IpAddr;

use anyhow::{anyhow, bail, Context as _, Result};
use rdock_proto::runtime::v1::{InspectContainerRequest, PortBinding};

use crate::args::PortArgs;
use crate::conn::Target;

/// `[0-9]+` as a 16-bit port (Go's `strconv.ParseUint(s, 10, 16)`: no sign,
/// no spaces).
fn port_number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `N` or `N-M` (M ≥ N).
fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        None => port_number(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port_number(a)?, port_number(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

/// Docker's `splitParts`: `[IP:]HOSTPORT:CTRPORT` split at the last two
/// colons, so an unbracketed IPv6 address keeps its own.
fn split_parts(raw: &str) -> (&str, &str, &str) {
    let mut it = raw.rsplitn(3, ':');
    let container = it.next().unwrap_or_default();
    match (it.next(), it.next()) {
        (None, _) => ("", "", container),
        (Some(host), None) => ("", host, container),
        (Some(host), Some(ip)) => (ip, host, container),
    }
}

/// Docker's `SplitProtoPort`: `80/udp` → ("udp", "80"), `80` and `80/` →
/// ("tcp", "80"), nothing before the slash → ("", ""). (Docker ignores what
/// follows a second slash; here it is part of the protocol, and invalid.)
fn split_proto_port(raw: &str) -> (&str, &str) {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    if port.is_empty() {
        return ("", "");
    }
    if proto.is_empty() {
        ("tcp", port)
    } else {
        (proto, port)
    }
}

/// One `-p` value → its bindings (a range gives one per port). Errors are
/// Docker's messages.
pub fn parse_publish(raw: &str) -> Result<Vec<PortBinding>> {
    let (ip, host, container) = split_parts(raw);
    let (proto, container) = split_proto_port(container);
    let ip = if let Some(inner) = ip.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .filter(|i| !i.contains(['[', ']']))
            .ok_or_else(|| anyhow!("invalid IP address: {ip}"))?
    } else {
        ip
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        bail!("no port specified: {raw}<empty>");
    }
    let (start, end) = port_range(container)
        .filter(|(s, _)| *s != 0)
        .ok_or_else(|| anyhow!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(host).ok_or_else(|| anyhow!("invalid hostPort: {host}"))?)
    };
    if let Some((hs, he)) = host_range {
        if he - hs != end - start {
            if start == end {
                // Docker picks a free port in the range; one host port is
                // all rdock's API carries.
                bail!(
                    "invalid hostPort: {host}: a host port range needs a container port range of the same length"
                );
            }
            bail!("invalid ranges specified for container and host Ports: {container} and {host}");
        }
    }
    let protocol = proto.to_ascii_lowercase();
    match protocol.as_str() {
        "tcp" | "udp" => {}
        "sctp" => bail!("invalid proto: {proto}: rdock publishes tcp and udp ports only"),
        _ => bail!("invalid proto: {proto}"),
    }
    Ok((start..=end)
        .enumerate()
        .map(|(i, container_port)| PortBinding {
            host_ip: ip.to_string(),
            host_port: host_range.map_or(0, |(hs, _)| u32::from(hs) + i as u32),
            container_port: u32::from(container_port),
            protocol: protocol.clone(),
        })
        .collect())
}

/// Every `-p` value, in order.
pub fn parse_publish_all(specs: &[String]) -> Result<Vec<PortBinding>> {
    let mut out = Vec::new();
    for s in specs {
        out.extend(parse_publish(s)?);
    }
    Ok(out)
}

/// Docker's `ParseLink` check: `NAME` or `NAME:ALIAS`.
pub fn check_link(link: &str) -> Result<()> {
    if link.is_empty() {
        bail!("empty string specified for links");
    }
    let mut parts = link.split(':');
    let (name, alias) = (parts.next().unwrap_or_default(), parts.next());
    if parts.next().is_some() || name.is_empty() || alias == Some("") {
        bail!("bad format for links: {link}");
    }
    Ok(())
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Docker's `sortorder.NaturalLess`: runs of digits compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (na, nb) = (&a[si..i], &b[sj..j]);
            let trim = |n: &[u8]| -> usize { n.iter().take_while(|c| **c == b'0').count() };
            let (ta, tb) = (&na[trim(na)..], &nb[trim(nb)..]);
            let ord = ta
                .len()
                .cmp(&tb.len())
                .then_with(|| ta.cmp(tb))
                .then_with(|| na.len().cmp(&nb.len()));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// The host side of each binding of one `NetworkSettings.Ports` entry.
fn frontends(bindings: &serde_json::Value) -> Vec<String> {
    let field = |b: &serde_json::Value, k: &str| {
        b.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    bindings
        .as_array()
        .map(|list| {
            list.iter()
                .map(|b| join_host_port(&field(b, "HostIp"), &field(b, "HostPort")))
                .collect()
        })
        .unwrap_or_default()
}

/// `PRIVATE_PORT[/PROTO]` → `80/tcp`.
pub fn private_port(spec: &str) -> Result<String> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
    if port_number(port).is_none() {
        bail!("invalid port: {port}");
    }
    let proto = if proto.is_empty() {
        "tcp".to_string()
    } else {
        proto.to_ascii_lowercase()
    };
    Ok(format!("{port}/{proto}"))
}

/// What `port` prints for a container's inspect JSON: every mapping as
/// `80/tcp -> 0.0.0.0:8080`, or the host addresses of one private port.
/// Lines sorted naturally, as Docker's.
pub fn render_port(
    info: &serde_json::Value,
    container: &str,
    asked: Option<&str>,
) -> Result<String> {
    let ports = info.get("NetworkSettings").and_then(|n| n.get("Ports"));
    let mut lines = Vec::new();
    match asked {
        Some(spec) => {
            let key = private_port(spec)?;
            let hosts = ports.and_then(|p| p.get(&key)).map(frontends);
            match hosts {
                Some(h) if !h.is_empty() => lines = h,
                _ => bail!("no public port '{key}' published for {container}"),
            }
        }
        None => {
            if let Some(map) = ports.and_then(serde_json::Value::as_object) {
                for (private, bindings) in map {
                    for host in frontends(bindings) {
                        lines.push(format!("{private} -> {host}"));
                    }
                }
            }
        }
    }
    lines.sort_by(|a, b| natural_cmp(a, b));
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    Ok(out)
}

pub async fn port(target: &Target, args: &PortArgs) -> Result<()> {
    if let Some(p) = &args.private_port {
        private_port(p)?;
    }
    let mut rt = target.runtime().await?;
    let info = rt
        .inspect_container(InspectContainerRequest {
            id: args.container.clone(),
        })
        .await?
        .into_inner();
    let value: serde_json::Value = serde_json::from_str(&info.json).with_context(|| {
        format!(
            "container {}: invalid inspect JSON from the runtime daemon",
            args.container
        )
    })?;
    let text = render_port(&value, &args.container, args.private_port.as_deref())?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, host: u32, container: u32, proto: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: host,
            container_port: container,
            protocol: proto.into(),
        }
    }

    fn ok(spec: &str) -> Vec<PortBinding> {
        parse_publish(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> String {
        parse_publish(spec).unwrap_err().to_string()
    }

    #[test]
    fn publish_forms_like_docker() {
        assert_eq!(ok("8080:80"), [b("", 8080, 80, "tcp")]);
        assert_eq!(ok("127.0.0.1:8080:80"), [b("127.0.0.1", 8080, 80, "tcp")]);
        assert_eq!(ok("127.0.0.1::80"), [b("127.0.0.1", 0, 80, "tcp")]);
        assert_eq!(ok("80"), [b("", 0, 80, "tcp")]);
        assert_eq!(ok("0:80"), [b("", 0, 80, "tcp")]);
        assert_eq!(ok("53:53/udp"), [b("", 53, 53, "udp")]);
        assert_eq!(ok("53/udp"), [b("", 0, 53, "udp")]);
        assert_eq!(ok("8080:80/tcp"), [b("", 8080, 80, "tcp")]);
        assert_eq!(ok("8080:80/TCP"), [b("", 8080, 80, "tcp")]);
        assert_eq!(ok("8080:80/"), [b("", 8080, 80, "tcp")]);
        assert_eq!(ok("10.0.0.1:53:53/udp"), [b("10.0.0.1", 53, 53, "udp")]);
        assert_eq!(ok("65535:65535"), [b("", 65535, 65535, "tcp")]);
        // Ranges: one binding per port.
        assert_eq!(
            ok("8000-8001:80-81"),
            [b("", 8000, 80, "tcp"), b("", 8001, 81, "tcp")]
        );
        assert_eq!(
            ok("127.0.0.1:8000-8002:80-82/udp"),
            [
                b("127.0.0.1", 8000, 80, "udp"),
                b("127.0.0.1", 8001, 81, "udp"),
                b("127.0.0.1", 8002, 82, "udp")
            ]
        );
        assert_eq!(ok("80-81"), [b("", 0, 80, "tcp"), b("", 0, 81, "tcp")]);
        assert_eq!(
            ok("127.0.0.1::80-81"),
            [b("127.0.0.1", 0, 80, "tcp"), b("127.0.0.1", 0, 81, "tcp")]
        );
        assert_eq!(ok("8080:80-80"), [b("", 8080, 80, "tcp")]);
        // IPv6 host addresses, bracketed (or not, as Docker allows).
        assert_eq!(ok("[::1]:8080:80"), [b("::1", 8080, 80, "tcp")]);
        assert_eq!(ok("[::1]::80/udp"), [b("::1", 0, 80, "udp")]);
        assert_eq!(ok("[fe80::1]:53:53/udp"), [b("fe80::1", 53, 53, "udp")]);
        assert_eq!(ok("::1:8080:80"), [b("::1", 8080, 80, "tcp")]);
        assert_eq!(ok("[::]:8080:80"), [b("::", 8080, 80, "tcp")]);
    }

    #[test]
    fn bad_publish_values_get_dockers_messages() {
        assert_eq!(err("70000:80"), "invalid hostPort: 70000");
        assert_eq!(err("abc"), "invalid containerPort: abc");
        assert_eq!(err("80:80/sctpx"), "invalid proto: sctpx");
        assert_eq!(err("80:abc"), "invalid containerPort: abc");
        assert_eq!(err("80:70000"), "invalid containerPort: 70000");
        assert_eq!(err("80:0"), "invalid containerPort: 0");
        assert_eq!(err("x:80"), "invalid hostPort: x");
        assert_eq!(err("-1:80"), "invalid hostPort: -1");
        assert_eq!(err("+80:80"), "invalid hostPort: +80");
        assert_eq!(err(" 80:80"), "invalid hostPort:  80");
        assert_eq!(err("127.0.0.1:80"), "invalid hostPort: 127.0.0.1");
        assert_eq!(err("81-80:80-81"), "invalid hostPort: 81-80");
        assert_eq!(err("80:81-80"), "invalid containerPort: 81-80");
        assert_eq!(err("80:80-81-82"), "invalid containerPort: 80-81-82");
        assert_eq!(err("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(err("localhost:80:80"), "invalid IP address: localhost");
        assert_eq!(err("[::1:8080:80"), "invalid IP address: [::1");
        assert_eq!(err("[1.2.3.4.5]:80:80"), "invalid IP address: 1.2.3.4.5");
        assert_eq!(err(""), "no port specified: <empty>");
        assert_eq!(err("80:"), "no port specified: 80:<empty>");
        assert_eq!(err("80:/udp"), "no port specified: 80:/udp<empty>");
        assert_eq!(
            err("8000-8002:80-81"),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
        assert_eq!(
            err("8000-8010:80"),
            "invalid hostPort: 8000-8010: a host port range needs a container port range of the same length"
        );
        assert_eq!(
            err("80:80/sctp"),
            "invalid proto: sctp: rdock publishes tcp and udp ports only"
        );
        // Docker checks the ports before the protocol.
        assert_eq!(err("70000:80/sctpx"), "invalid hostPort: 70000");
        assert_eq!(err("80:80/udp/x"), "invalid proto: udp/x");

        assert_eq!(
            parse_publish_all(&["80".into(), "8080:80".into()]).unwrap(),
            [b("", 0, 80, "tcp"), b("", 8080, 80, "tcp")]
        );
        assert!(parse_publish_all(&["80".into(), "abc".into()]).is_err());
    }

    #[test]
    fn links_like_docker() {
        check_link("db").unwrap();
        check_link("db:alias").unwrap();
        assert_eq!(
            check_link("").unwrap_err().to_string(),
            "empty string specified for links"
        );
        for bad in ["a:b:c", ":x", "x:"] {
            assert_eq!(
                check_link(bad).unwrap_err().to_string(),
                format!("bad format for links: {bad}")
            );
        }
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "8080/tcp -> 0.0.0.0:1",
            "443/tcp -> 0.0.0.0:1",
            "80/udp -> 0.0.0.0:1",
            "80/tcp -> [::]:1",
            "80/tcp -> 0.0.0.0:1",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "80/tcp -> 0.0.0.0:1",
                "80/tcp -> [::]:1",
                "80/udp -> 0.0.0.0:1",
                "443/tcp -> 0.0.0.0:1",
                "8080/tcp -> 0.0.0.0:1"
            ]
        );
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn port_lines_like_docker() {
        let info: serde_json::Value = serde_json::from_str(
            r#"{"NetworkSettings":{"Ports":{
                "80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],
                "443/tcp":[{"HostIp":"127.0.0.1","HostPort":"32768"}],
                "53/udp":[{"HostIp":"0.0.0.0","HostPort":"5353"}],
                "81/tcp":null}}}"#,
        )
        .unwrap();
        assert_eq!(
            render_port(&info, "web", None).unwrap(),
            "53/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n443/tcp -> 127.0.0.1:32768\n"
        );
        assert_eq!(
            render_port(&info, "web", Some("80")).unwrap(),
            "0.0.0.0:8080\n[::]:8080\n"
        );
        assert_eq!(
            render_port(&info, "web", Some("80/tcp")).unwrap(),
            "0.0.0.0:8080\n[::]:8080\n"
        );
        assert_eq!(
            render_port(&info, "web", Some("53/UDP")).unwrap(),
            "0.0.0.0:5353\n"
        );
        for asked in ["81", "81/tcp", "53", "9999/udp"] {
            let key = private_port(asked).unwrap();
            assert_eq!(
                render_port(&info, "web", Some(asked))
                    .unwrap_err()
                    .to_string(),
                format!("no public port '{key}' published for web")
            );
        }
        assert_eq!(
            render_port(&info, "web", Some("http"))
                .unwrap_err()
                .to_string(),
            "invalid port: http"
        );
        let none: serde_json::Value =
            serde_json::from_str(r#"{"NetworkSettings":{"Ports":{}}}"#).unwrap();
        assert_eq!(render_port(&none, "web", None).unwrap(), "");
        let null: serde_json::Value = serde_json::from_str(r#"{"NetworkSettings":null}"#).unwrap();
        assert_eq!(render_port(&null, "web", None).unwrap(), "");
    }
}
