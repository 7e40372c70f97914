//! `--user`: names and numbers resolved against the container's own
//! `/etc/passwd` and `/etc/group`, as Docker does.

use std::path::Path;

use crate::error::{Error, Result};
use crate::rootpath;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

fn read(root: &Path, file: &str) -> String {
    rootpath::resolve(root, file)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`).
pub fn resolve(root: &Path, spec: &str) -> Result<ExecUser> {
    let passwd = read(root, "/etc/passwd");
    let group = read(root, "/etc/group");
    resolve_in(&passwd, &group, spec)
}

fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

pub fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<ExecUser> {
    let spec = if spec.is_empty() { "0" } else { spec };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = entries(passwd).find(|e| e.len() >= 4 && (e[0] == u || e[2] == u));
    let mut user = match (entry, u.parse::<u32>()) {
        (Some(e), _) => ExecUser {
            uid: e[2].parse().map_err(|_| {
                Error::InvalidArgument(format!("bad uid for user {u} in /etc/passwd"))
            })?,
            gid: e[3].parse().map_err(|_| {
                Error::InvalidArgument(format!("bad gid for user {u} in /etc/passwd"))
            })?,
            additional_gids: vec![],
            home: e.get(5).copied().unwrap_or("/").to_string(),
        },
        (None, Ok(uid)) => ExecUser {
            uid,
            gid: 0,
            additional_gids: vec![],
            home: "/".into(),
        },
        (None, Err(_)) => {
            return Err(Error::InvalidArgument(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = g {
        let ge = entries(group).find(|e| e.len() >= 3 && (e[0] == g || e[2] == g));
        user.gid = match (ge, g.parse::<u32>()) {
            (Some(e), _) => e[2].parse().map_err(|_| {
                Error::InvalidArgument(format!("bad gid for group {g} in /etc/group"))
            })?,
            (None, Ok(gid)) => gid,
            (None, Err(_)) => {
                return Err(Error::InvalidArgument(format!(
                    "unable to find group {g}: no matching entries in group file"
                )))
            }
        };
    } else {
        let name = entries(passwd)
            .find(|e| e.len() >= 3 && e[2] == user.uid.to_string())
            .map(|e| e[0].to_string());
        if let Some(name) = name {
            user.additional_gids = entries(group)
                .filter(|e| e.len() >= 4 && e[3].split(',').any(|m| m == name))
                .filter_map(|e| e[2].parse().ok())
                .filter(|gid| *gid != user.gid)
                .collect();
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:www-data\n";

    #[test]
    fn names_numbers_and_groups() {
        assert_eq!(resolve_in(PASSWD, GROUP, "").unwrap().uid, 0);
        let u = resolve_in(PASSWD, GROUP, "www-data").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (33, 33, vec![50])
        );
        assert_eq!(u.home, "/var/www");
        let u = resolve_in(PASSWD, GROUP, "1000:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let e = resolve_in(PASSWD, GROUP, "nosuchuser")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unable to find user nosuchuser"), "{e}");
        assert!(resolve_in(PASSWD, GROUP, "root:nogroup").is_err());
    }
}
