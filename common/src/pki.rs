//! The rdock PKI: one CA, a certificate per daemon and per person.
//!
//! Identities are carried in the certificate subject: the common name is the
//! identity's name and the organizational unit its role (`daemon`, `admin`,
//! `viewer`). Keys are written 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::identity::Role;
use crate::Error;

/// The daemon identities, each with a certificate of role `daemon`.
pub const DAEMONS: [&str; 3] = ["imaged", "runtimed", "netd"];

/// File names of an identity's certificate and key inside a PKI directory.
pub fn cert_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.crt"))
}

/// See [`cert_path`].
pub fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.key"))
}

/// The CA certificate inside a PKI directory.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.crt")
}

fn pki_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Pki(format!("{what}: {e}"))
}

/// Creates a CA, the three daemon certificates (SANs: `localhost`,
/// `127.0.0.1` and `hosts`), and `admin` and `viewer` client certificates.
/// Refuses to overwrite an existing CA.
pub fn init(dir: &Path, hosts: &[String]) -> Result<Vec<PathBuf>, Error> {
    if ca_path(dir).exists() {
        return Err(Error::Pki(format!(
            "a CA already exists in {}; remove it first to start over",
            dir.display()
        )));
    }
    fs::create_dir_all(dir).map_err(|e| pki_err(&format!("create {}", dir.display()), e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| pki_err("set permissions", e))?;

    let ca_key = KeyPair::generate().map_err(|e| pki_err("generate CA key", e))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_err("CA", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "rdock CA");
    dn.push(DnType::OrganizationName, "rdock");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca_cert = params
        .self_signed(&ca_key)
        .map_err(|e| pki_err("sign CA", e))?;
    write_key(&key_path(dir, "ca"), &ca_key.serialize_pem())?;
    write_public(&ca_path(dir), &ca_cert.pem())?;

    let issuer = Issuer::new(params, ca_key);
    let mut written = vec![ca_path(dir)];
    for daemon in DAEMONS {
        written.push(issue_with(dir, &issuer, daemon, Role::Daemon, hosts)?);
    }
    for role in [Role::Admin, Role::Viewer] {
        written.push(issue_with(dir, &issuer, role.as_str(), role, hosts)?);
    }
    Ok(written)
}

/// Issues one more certificate from the CA in `dir`.
pub fn issue(dir: &Path, name: &str, role: Role, hosts: &[String]) -> Result<PathBuf, Error> {
    validate_name(name)?;
    let ca_pem = fs::read_to_string(ca_path(dir))
        .map_err(|e| pki_err(&format!("read {}", ca_path(dir).display()), e))?;
    let key_pem = fs::read_to_string(key_path(dir, "ca"))
        .map_err(|e| pki_err(&format!("read {}", key_path(dir, "ca").display()), e))?;
    let ca_key = KeyPair::from_pem(&key_pem).map_err(|e| pki_err("parse CA key", e))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| pki_err("parse CA", e))?;
    if cert_path(dir, name).exists() {
        return Err(Error::Pki(format!(
            "a certificate named {name:?} already exists"
        )));
    }
    issue_with(dir, &issuer, name, role, hosts)
}

fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.')
        && name != "ca";
    if ok {
        Ok(())
    } else {
        Err(Error::Pki(format!(
            "invalid certificate name {name:?}: use letters, digits, '-', '_' or '.'"
        )))
    }
}

fn issue_with(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    role: Role,
    hosts: &[String],
) -> Result<PathBuf, Error> {
    let key = KeyPair::generate().map_err(|e| pki_err("generate key", e))?;
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_err("params", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationalUnitName, role.as_str());
    dn.push(DnType::OrganizationName, "rdock");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    if role == Role::Daemon {
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
        for h in hosts {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
        params.subject_alt_names = names
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => h
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e| pki_err(&format!("host name {h:?}"), e)),
            })
            .collect::<Result<_, _>>()?;
    } else {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| pki_err(&format!("sign {name}"), e))?;
    write_key(&key_path(dir, name), &key.serialize_pem())?;
    let path = cert_path(dir, name);
    write_public(&path, &cert.pem())?;
    Ok(path)
}

fn write_key(path: &Path, pem: &str) -> Result<(), Error> {
    write_file(path, pem, 0o600)
}

fn write_public(path: &Path, pem: &str) -> Result<(), Error> {
    write_file(path, pem, 0o644)
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| pki_err(&format!("write {}", tmp.display()), e))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|_| f.write_all(contents.as_bytes()))
        .and_then(|_| f.sync_all())
        .map_err(|e| pki_err(&format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| pki_err(&format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_keys_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &["node1".into(), "10.1.2.3".into()]).unwrap();
        for name in ["ca", "imaged", "runtimed", "netd", "admin", "viewer"] {
            let mode = fs::metadata(key_path(dir.path(), name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}.key");
            assert!(cert_path(dir.path(), name).exists() || name == "ca");
        }
        assert!(init(dir.path(), &[]).is_err());
        issue(dir.path(), "alice", Role::Viewer, &[]).unwrap();
        assert!(issue(dir.path(), "alice", Role::Viewer, &[]).is_err());
        assert!(issue(dir.path(), "../x", Role::Admin, &[]).is_err());
        let pem = fs::read(cert_path(dir.path(), "alice")).unwrap();
        let id = crate::identity::Identity::from_pem(&pem).unwrap();
        assert_eq!(id.name, "alice");
        assert_eq!(id.role, Role::Viewer);
    }
}
