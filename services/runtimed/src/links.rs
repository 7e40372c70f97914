//! Legacy container links (`--link name:alias`): the target's address under
//! its name and alias in `/etc/hosts`, and Docker's link variables.

use crate::model::Container;

/// `name` or `name:alias` → (name, alias).
pub fn parse(link: &str) -> Result<(String, String), String> {
    let (name, alias) = match link.split_once(':') {
        Some((n, a)) => (n, a),
        None => (link, link),
    };
    let name = name.trim_start_matches('/');
    if name.is_empty() || alias.is_empty() || alias.contains(['/', ':', ' ']) {
        return Err(format!("invalid link {link:?}: expected NAME[:ALIAS]"));
    }
    Ok((name.to_string(), alias.to_string()))
}

/// Docker's variables for a link to `target` under `alias`, seen from a
/// container named `own_name`: `ALIAS_PORT_80_TCP_ADDR=…` and the rest.
pub fn env(alias: &str, own_name: &str, target: &Container) -> Vec<String> {
    let prefix: String = alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let ip = target.ip();
    let mut out = vec![format!("{prefix}_NAME=/{own_name}/{alias}")];
    let mut ports: Vec<(u32, String)> = target
        .exposed_ports
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            n.parse().ok().map(|n| (n, proto.to_string()))
        })
        .collect();
    ports.sort();
    if let Some((port, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let p = format!("{prefix}_PORT_{port}_{}", proto.to_ascii_uppercase());
        out.push(format!("{p}={proto}://{ip}:{port}"));
        out.push(format!("{p}_ADDR={ip}"));
        out.push(format!("{p}_PORT={port}"));
        out.push(format!("{p}_PROTO={proto}"));
    }
    for e in &target.config.env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if ["PATH", "HOME", "HOSTNAME"].contains(&k) {
            continue;
        }
        out.push(format!("{prefix}_ENV_{k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_variables_like_docker() {
        assert_eq!(parse("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse("/db:data").unwrap(), ("db".into(), "data".into()));
        assert!(parse(":x").is_err());
        let mut t = Container::default();
        let mut a = crate::model::NetworkAttachment::new("bridge", vec![]);
        a.state.ip_address = "10.123.0.5".into();
        t.networks = Some(vec![a]);
        t.exposed_ports = vec!["80/tcp".into(), "53/udp".into()];
        t.config.env = vec!["PATH=/bin".into(), "MODE=prod".into()];
        let e = env("web-1", "client", &t);
        assert!(e.contains(&"WEB_1_NAME=/client/web-1".to_string()));
        assert!(e.contains(&"WEB_1_PORT=udp://10.123.0.5:53".to_string()));
        assert!(e.contains(&"WEB_1_PORT_80_TCP_ADDR=10.123.0.5".to_string()));
        assert!(e.contains(&"WEB_1_PORT_80_TCP=tcp://10.123.0.5:80".to_string()));
        assert!(e.contains(&"WEB_1_ENV_MODE=prod".to_string()));
        assert!(!e.iter().any(|v| v.starts_with("WEB_1_ENV_PATH")));
    }
}
