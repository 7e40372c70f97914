//! `pki init` and `pki issue`: the CA, daemon and client certificates.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Result};
use rdock_common::identity::Role;
use rdock_common::pki;

use crate::args::{PkiInitArgs, PkiIssueArgs};

/// Prints every file written: each certificate followed by its key.
pub fn init(args: &PkiInitArgs) -> Result<()> {
    let certs = pki::init(&args.dir, &args.hosts)?;
    let mut out = io::stdout().lock();
    for cert in certs {
        writeln!(out, "{}", cert.display())?;
        if let Some(key) = key_for(&args.dir, &cert) {
            writeln!(out, "{}", key.display())?;
        }
    }
    Ok(())
}

/// The key `pki` writes beside a certificate (`ca.crt` → `ca.key`).
fn key_for(dir: &Path, cert: &Path) -> Option<std::path::PathBuf> {
    let stem = cert.file_stem()?.to_str()?;
    let key = pki::key_path(dir, stem);
    key.exists().then_some(key)
}

/// Only people's roles can be issued here; daemon certificates come from
/// `pki init`.
fn parse_role(s: &str) -> Result<Role> {
    match s {
        "admin" => Ok(Role::Admin),
        "viewer" => Ok(Role::Viewer),
        other => bail!("unknown role {other:?}: expected admin or viewer"),
    }
}

/// Prints the certificate and key paths.
pub fn issue(args: &PkiIssueArgs) -> Result<()> {
    let role = parse_role(&args.role)?;
    let cert = pki::issue(&args.dir, &args.name, role, &[])?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", cert.display())?;
    writeln!(out, "{}", pki::key_path(&args.dir, &args.name).display())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(parse_role("admin").unwrap(), Role::Admin);
        assert_eq!(parse_role("viewer").unwrap(), Role::Viewer);
        assert!(parse_role("daemon").is_err());
        assert!(parse_role("root").is_err());
    }

    #[test]
    fn keys_beside_certs() {
        let dir = tempfile::tempdir().unwrap();
        pki::init(dir.path(), &[]).unwrap();
        let key = key_for(dir.path(), &pki::ca_path(dir.path())).unwrap();
        assert_eq!(key, dir.path().join("ca.key"));
        assert!(key_for(dir.path(), &dir.path().join("nope.crt")).is_none());
    }
}
