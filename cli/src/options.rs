//! `create`/`run` options → a `CreateContainerRequest`, parsed the way
//! Docker's CLI parses them: sizes (`64m`), `--cpus` (`1.5`), `-e`,
//! `--env-file`, `-l`, `--restart`, `-p`, `--link`, and the mounts (see
//! `mounts.rs`). Every error here is a bad argument, which `run`/`create`
//! report with exit code 125.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context as _, Result};
use rdock_proto::runtime::v1::{CreateContainerRequest, RestartPolicy};

use crate::args::CreateOptions;
use crate::mounts::{check_volumes_from, parse_all};
use crate::ports::{check_link, parse_publish_all};

/// Looks up a variable of the CLI's own environment (`-e KEY`).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for [`Lookup`].
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// Builds the request; env files are read here.
pub fn create_request(o: &CreateOptions, lookup: Lookup<'_>) -> Result<CreateContainerRequest> {
    let memory = match &o.memory {
        Some(v) => ram_in_bytes(v).map_err(|e| flag_error(v, "-m, --memory", &e))?,
        None => 0,
    };
    let nano_cpus = match &o.cpus {
        Some(v) => nano_cpus(v).map_err(|e| flag_error(v, "--cpus", &e))?,
        None => 0,
    };
    let pids_limit = match &o.pids_limit {
        Some(v) => pids_limit(v).map_err(|e| flag_error(v, "--pids-limit", &e))?,
        None => 0,
    };
    let restart = o.restart.as_deref().map(parse_restart).transpose()?;
    let ports = parse_publish_all(&o.publish)?;
    for link in &o.links {
        check_link(link)?;
    }
    // The current directory resolves `-v ./data:/x`; asked for only then.
    let cwd = if o.volumes.is_empty() && o.mounts.is_empty() {
        std::path::PathBuf::new()
    } else {
        std::env::current_dir().context("find the current directory")?
    };
    let mounts = parse_all(&o.volumes, &o.mounts, &o.tmpfs, &cwd)?;
    for v in &o.volumes_from {
        check_volumes_from(v)?;
    }
    let mut env = Vec::new();
    for path in &o.env_file {
        let display = path.display().to_string();
        let text = std::fs::read(path).with_context(|| format!("open {display}"))?;
        env.extend(parse_env_file(&display, &text, lookup)?);
    }
    for e in &o.env {
        env.extend(parse_env(e, lookup)?);
    }
    let (entrypoint, entrypoint_set) = match &o.entrypoint {
        Some(ep) if ep.is_empty() => (Vec::new(), true),
        Some(ep) => (vec![ep.clone()], true),
        None => (Vec::new(), false),
    };
    Ok(CreateContainerRequest {
        name: o.name.clone().unwrap_or_default(),
        image: o.image().to_string(),
        cmd: o.command().to_vec(),
        entrypoint,
        entrypoint_set,
        env,
        workdir: o.workdir.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        hostname: o.hostname.clone().unwrap_or_default(),
        tty: o.tty,
        open_stdin: o.interactive,
        init: o.init,
        restart,
        auto_remove: o.rm,
        memory,
        nano_cpus,
        pids_limit,
        labels: parse_labels(&o.labels)?,
        runtime: o.runtime.clone().unwrap_or_default(),
        network: o.network.clone().unwrap_or_default(),
        ports,
        publish_all: o.publish_all,
        links: o.links.clone(),
        network_aliases: o.network_aliases.clone(),
        mounts,
        volumes_from: o.volumes_from.clone(),
        read_only: o.read_only,
    })
}

/// Docker's (pflag's) message for a value a flag cannot take.
fn flag_error(value: &str, flag: &str, why: &anyhow::Error) -> anyhow::Error {
    anyhow!("invalid argument \"{value}\" for \"{flag}\" flag: {why}")
}

/// Docker's `units.RAMInBytes`: `N[.N] [kmgtp][i][b]`, binary multiples,
/// case-insensitive ("64m", "1.5g", "512k", "1024b", "1 GiB", "100").
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let invalid = || anyhow!("invalid size: '{s}'");
    let num_end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    // The number: digits, then groups of "." and digits (Go's regexp); more
    // than one dot then fails the float parse, as in Docker.
    if !num.starts_with(|c: char| c.is_ascii_digit())
        || num.split('.').skip(1).any(|g| g.is_empty())
    {
        return Err(invalid());
    }
    let size: f64 = num.parse().map_err(|_| invalid())?;
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut mul: f64 = 1.0;
    if let Some(c) = rest.chars().next() {
        let power = match c.to_ascii_lowercase() {
            'k' => 1,
            'm' => 2,
            'g' => 3,
            't' => 4,
            'p' => 5,
            _ => 0,
        };
        if power > 0 {
            mul = 1024f64.powi(power);
            rest = &rest[1..];
        }
    }
    rest = rest.strip_prefix(['i', 'I']).unwrap_or(rest);
    rest = rest.strip_prefix(['b', 'B']).unwrap_or(rest);
    if !rest.is_empty() {
        return Err(invalid());
    }
    let bytes = size * mul;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

/// `--cpus` as Docker reads it (a rational number: `1.5`, `.5`, `2e-1`,
/// `3/2`) → billionths of a CPU, exactly.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let unparsable = || anyhow!("failed to parse {s} as a rational number");
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let is_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    // value = mantissa * 10^exp10 / denominator
    let (mantissa, exp10, denominator): (i128, i32, i128) =
        if let Some((n, d)) = body.split_once('/') {
            if !is_digits(n) || !is_digits(d) {
                return Err(unparsable());
            }
            let d: i128 = d.parse().map_err(|_| unparsable())?;
            if d == 0 {
                return Err(unparsable());
            }
            (n.parse().map_err(|_| unparsable())?, 0, d)
        } else {
            let (num, exp) = match body.split_once(['e', 'E']) {
                Some((n, e)) => {
                    let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                    if !is_digits(digits) {
                        return Err(unparsable());
                    }
                    (n, e.parse::<i32>().map_err(|_| unparsable())?)
                }
                None => (body, 0),
            };
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            if (int.is_empty() && frac.is_empty())
                || !(int.is_empty() || is_digits(int))
                || !(frac.is_empty() || is_digits(frac))
            {
                return Err(unparsable());
            }
            let digits = format!("{int}{frac}");
            let digits = digits.trim_start_matches('0');
            if digits.len() > 30 {
                bail!("value is out of range");
            }
            let m = if digits.is_empty() {
                0
            } else {
                digits.parse().map_err(|_| unparsable())?
            };
            let scale = i32::try_from(frac.len()).map_err(|_| unparsable())?;
            (m, exp.saturating_sub(scale), 1)
        };
    let shift = exp10.saturating_add(9);
    let out_of_range = || anyhow!("value is out of range");
    let mut numerator = mantissa;
    let mut denominator = denominator;
    if shift >= 0 {
        if shift > 30 && mantissa != 0 {
            return Err(out_of_range());
        }
        numerator = numerator
            .checked_mul(10i128.pow(shift.min(30) as u32))
            .ok_or_else(out_of_range)?;
    } else {
        if -shift > 30 {
            if mantissa != 0 {
                bail!("value is too precise");
            }
        } else {
            denominator = denominator
                .checked_mul(10i128.pow((-shift) as u32))
                .ok_or_else(out_of_range)?;
        }
    }
    if numerator % denominator != 0 {
        bail!("value is too precise");
    }
    let nano = i64::try_from(numerator / denominator).map_err(|_| out_of_range())?;
    if negative && nano != 0 {
        bail!("value must not be negative");
    }
    Ok(nano)
}

/// `--pids-limit`: an integer; 0 or negative means unlimited (0).
fn pids_limit(s: &str) -> Result<i64> {
    let n: i64 = s.trim().parse().map_err(|_| anyhow!("not an integer"))?;
    Ok(n.max(0))
}

/// `--restart`, checked as Docker's client and daemon check it.
pub fn parse_restart(policy: &str) -> Result<RestartPolicy> {
    let (name, count) = match policy.split_once(':') {
        Some(("", _)) => bail!("invalid restart policy format: no policy provided before colon"),
        Some((name, count)) => (name, count),
        None => (policy, ""),
    };
    let max_retries: i64 = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            anyhow!("invalid restart policy format: maximum retry count must be an integer")
        })?
    };
    match name {
        "" | "no" | "always" | "unless-stopped" => {
            if max_retries != 0 {
                bail!("invalid restart policy: maximum retry count can only be used with 'on-failure'");
            }
        }
        "on-failure" => {
            if max_retries < 0 {
                bail!("invalid restart policy: maximum retry count cannot be negative");
            }
        }
        other => bail!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ),
    }
    Ok(RestartPolicy {
        name: if name.is_empty() { "no" } else { name }.to_string(),
        max_retries: u32::try_from(max_retries)
            .map_err(|_| anyhow!("invalid restart policy: maximum retry count is too large"))?,
    })
}

/// One `-e`: `KEY=VAL` as is; `KEY` takes KEY's value from the CLI's
/// environment and is dropped when KEY is unset.
pub fn parse_env(e: &str, lookup: Lookup<'_>) -> Result<Option<String>> {
    let (key, value) = match e.split_once('=') {
        Some(("", _)) => bail!("invalid environment variable: {e}"),
        Some(_) => return Ok(Some(e.to_string())),
        None => (e, lookup(e)),
    };
    if key.is_empty() {
        bail!("invalid environment variable: {e}");
    }
    Ok(value.map(|v| format!("{key}={v}")))
}

/// Docker's env-file format: one `KEY=VAL` per line, the value verbatim;
/// leading whitespace ignored; blank lines and `#` comments skipped; `KEY`
/// alone as for `-e KEY`.
pub fn parse_env_file(name: &str, text: &[u8], lookup: Lookup<'_>) -> Result<Vec<String>> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        anyhow!("env file {name} contains invalid utf8 bytes at line {line}")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if var.contains([' ', '\t']) {
            bail!("env file {name}: poorly formatted environment: variable '{var}' contains whitespaces");
        }
        if var.is_empty() {
            bail!(
                "env file {name}: poorly formatted environment: no variable name on line '{line}'"
            );
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None => {
                if let Some(v) = lookup(var) {
                    out.push(format!("{var}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// `-l KEY=VAL` (or `-l KEY`, an empty value).
fn parse_labels(labels: &[String]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.trim().is_empty() {
            bail!("invalid label '{l}': empty name");
        }
        if k.contains(char::is_whitespace) {
            bail!("label '{l}' contains whitespaces");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn some_env(k: &str) -> Option<String> {
        (k == "HOMEY").then(|| "/home/me".to_string())
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("64M").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 1_610_612_736);
        assert_eq!(ram_in_bytes("512k").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("1 GiB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1024b").unwrap(), 1024);
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("0").unwrap(), 0);
        assert_eq!(ram_in_bytes("2t").unwrap(), 2 << 40);
        for bad in [
            "1x", "", "m", "-1m", "1.2.3m", "1..5m", "1.m", "1mm", "1  m", " 1m", "1e3",
        ] {
            let err = ram_in_bytes(bad).unwrap_err().to_string();
            assert_eq!(err, format!("invalid size: '{bad}'"), "{bad:?}");
        }
        assert!(ram_in_bytes("99999999p").is_err());

        let o = CreateOptions {
            image_and_command: vec!["busybox".into()],
            memory: Some("1x".into()),
            ..Default::default()
        };
        assert_eq!(
            create_request(&o, &no_env).unwrap_err().to_string(),
            "invalid argument \"1x\" for \"-m, --memory\" flag: invalid size: '1x'"
        );
    }

    #[test]
    fn cpus_like_docker() {
        assert_eq!(nano_cpus("1").unwrap(), 1_000_000_000);
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus(".5").unwrap(), 500_000_000);
        assert_eq!(nano_cpus("0.01").unwrap(), 10_000_000);
        assert_eq!(nano_cpus("2.").unwrap(), 2_000_000_000);
        assert_eq!(nano_cpus("0").unwrap(), 0);
        assert_eq!(nano_cpus("3/2").unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus("15e-1").unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus("0.000000001").unwrap(), 1);
        assert_eq!(nano_cpus("1.5000000000000").unwrap(), 1_500_000_000);
        for bad in ["abc", "", "1.5x", ".", "1/0", "1/x", "1e", "--1"] {
            assert_eq!(
                nano_cpus(bad).unwrap_err().to_string(),
                format!("failed to parse {bad} as a rational number"),
                "{bad:?}"
            );
        }
        assert_eq!(
            nano_cpus("0.0000000001").unwrap_err().to_string(),
            "value is too precise"
        );
        assert_eq!(
            nano_cpus("1/3").unwrap_err().to_string(),
            "value is too precise"
        );
        assert!(nano_cpus("-1").is_err());
        assert!(nano_cpus("1e40").is_err());
        let o = CreateOptions {
            image_and_command: vec!["busybox".into()],
            cpus: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(
            create_request(&o, &no_env).unwrap_err().to_string(),
            "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number"
        );
    }

    #[test]
    fn restart_policies() {
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.max_retries), ("on-failure", 3));
        let p = parse_restart("on-failure").unwrap();
        assert_eq!((p.name.as_str(), p.max_retries), ("on-failure", 0));
        for name in ["no", "always", "unless-stopped"] {
            let p = parse_restart(name).unwrap();
            assert_eq!((p.name.as_str(), p.max_retries), (name, 0));
        }
        assert_eq!(parse_restart("always:0").unwrap().name, "always");
        let err = |p: &str| parse_restart(p).unwrap_err().to_string();
        assert_eq!(
            err("bogus"),
            "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        );
        assert_eq!(
            err("on-failure:x"),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert_eq!(
            err("always:3"),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert_eq!(
            err("on-failure:-1"),
            "invalid restart policy: maximum retry count cannot be negative"
        );
        assert_eq!(
            err(":3"),
            "invalid restart policy format: no policy provided before colon"
        );
    }

    #[test]
    fn env_and_env_files() {
        assert_eq!(parse_env("A=1", &no_env).unwrap().as_deref(), Some("A=1"));
        assert_eq!(parse_env("A=", &no_env).unwrap().as_deref(), Some("A="));
        assert_eq!(
            parse_env("A=b=c", &no_env).unwrap().as_deref(),
            Some("A=b=c")
        );
        assert_eq!(parse_env("HOMEY", &no_env).unwrap(), None);
        assert_eq!(
            parse_env("HOMEY", &some_env).unwrap().as_deref(),
            Some("HOMEY=/home/me")
        );
        assert!(parse_env("=x", &no_env).is_err());
        assert!(parse_env("", &no_env).is_err());

        let file = "\u{feff}# a comment\n\nA=1\n  B=two words  \r\nC=\nHOMEY\nUNSET\n   # indented comment\nD=x=y\n";
        assert_eq!(
            parse_env_file("f", file.as_bytes(), &some_env).unwrap(),
            ["A=1", "B=two words  ", "C=", "HOMEY=/home/me", "D=x=y"]
        );
        assert_eq!(
            parse_env_file("f", b"A B=1\n", &no_env)
                .unwrap_err()
                .to_string(),
            "env file f: poorly formatted environment: variable 'A B' contains whitespaces"
        );
        assert_eq!(
            parse_env_file("f", b"KEY \n", &no_env)
                .unwrap_err()
                .to_string(),
            "env file f: poorly formatted environment: variable 'KEY ' contains whitespaces"
        );
        assert_eq!(
            parse_env_file("f", b"=1\n", &no_env)
                .unwrap_err()
                .to_string(),
            "env file f: poorly formatted environment: no variable name on line '=1'"
        );
        assert_eq!(
            parse_env_file("f", b"A=1\nB=\xff\n", &no_env)
                .unwrap_err()
                .to_string(),
            "env file f contains invalid utf8 bytes at line 2"
        );
    }

    #[test]
    fn network_options() {
        let o = CreateOptions {
            image_and_command: vec!["busybox".into()],
            publish: vec!["127.0.0.1:8080:80".into(), "53-54/udp".into()],
            publish_all: true,
            links: vec!["db:database".into(), "cache".into()],
            network: Some("app".into()),
            network_aliases: vec!["web".into()],
            ..Default::default()
        };
        let r = create_request(&o, &no_env).unwrap();
        let ports: Vec<(&str, u32, u32, &str)> = r
            .ports
            .iter()
            .map(|p| {
                (
                    p.host_ip.as_str(),
                    p.host_port,
                    p.container_port,
                    p.protocol.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("127.0.0.1", 8080, 80, "tcp"),
                ("", 0, 53, "udp"),
                ("", 0, 54, "udp")
            ]
        );
        assert!(r.publish_all);
        assert_eq!(r.links, ["db:database", "cache"]);
        assert_eq!(r.network, "app");
        assert_eq!(r.network_aliases, ["web"]);

        for (publish, links, want) in [
            ("70000:80", "db", "invalid hostPort: 70000"),
            ("abc", "db", "invalid containerPort: abc"),
            ("80:80/sctpx", "db", "invalid proto: sctpx"),
            ("80", "a:b:c", "bad format for links: a:b:c"),
        ] {
            let o = CreateOptions {
                image_and_command: vec!["busybox".into()],
                publish: vec![publish.into()],
                links: vec![links.into()],
                ..Default::default()
            };
            assert_eq!(create_request(&o, &no_env).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn request_from_options() {
        let dir = tempfile::tempdir().unwrap();
        let envfile = dir.path().join("env");
        std::fs::write(&envfile, "A=from-file\nB=2\n").unwrap();
        let o = CreateOptions {
            name: Some("web".into()),
            image_and_command: ["busybox", "sh", "-c", "echo $A"]
                .map(String::from)
                .to_vec(),
            env: vec!["A=from-flag".into(), "HOMEY".into(), "NOPE".into()],
            env_file: vec![envfile.clone()],
            entrypoint: Some(String::new()),
            memory: Some("64m".into()),
            cpus: Some("1.5".into()),
            pids_limit: Some("-1".into()),
            restart: Some("on-failure:3".into()),
            labels: vec!["a=b".into(), "flag".into()],
            rm: true,
            interactive: true,
            tty: true,
            init: true,
            ..Default::default()
        };
        let r = create_request(&o, &some_env).unwrap();
        assert_eq!(r.name, "web");
        assert_eq!(r.image, "busybox");
        assert_eq!(r.cmd, ["sh", "-c", "echo $A"]);
        // Files first, then -e, so -e wins in the container.
        assert_eq!(
            r.env,
            ["A=from-file", "B=2", "A=from-flag", "HOMEY=/home/me"]
        );
        assert!(r.entrypoint_set && r.entrypoint.is_empty());
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(r.nano_cpus, 1_500_000_000);
        assert_eq!(r.pids_limit, 0);
        let restart = r.restart.unwrap();
        assert_eq!(
            (restart.name.as_str(), restart.max_retries),
            ("on-failure", 3)
        );
        assert_eq!(r.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(r.labels.get("flag").map(String::as_str), Some(""));
        assert!(r.auto_remove && r.open_stdin && r.tty && r.init);

        let o = CreateOptions {
            image_and_command: vec!["busybox".into()],
            entrypoint: Some("/bin/sh".into()),
            pids_limit: Some("100".into()),
            ..Default::default()
        };
        let r = create_request(&o, &no_env).unwrap();
        assert_eq!(r.network, "");
        assert!(r.ports.is_empty() && !r.publish_all && r.links.is_empty());
        assert_eq!(r.entrypoint, ["/bin/sh"]);
        assert!(r.entrypoint_set);
        assert_eq!(r.pids_limit, 100);
        assert!(r.restart.is_none());
        assert_eq!(r.hostname, "");

        let o = CreateOptions {
            image_and_command: vec!["busybox".into()],
            env_file: vec![dir.path().join("missing")],
            ..Default::default()
        };
        let err = crate::error::message(&create_request(&o, &no_env).unwrap_err());
        assert_eq!(
            err,
            format!(
                "open {}: No such file or directory (os error 2)",
                dir.path().join("missing").display()
            )
        );
        let o = CreateOptions {
            image_and_command: vec!["busybox".into()],
            pids_limit: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(
            create_request(&o, &no_env).unwrap_err().to_string(),
            "invalid argument \"x\" for \"--pids-limit\" flag: not an integer"
        );
    }
}
