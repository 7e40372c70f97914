//! Who is calling: the identity carried by a peer's client certificate.

use std::fmt;

use x509_parser::prelude::{FromDer, X509Certificate};

/// The role a certificate grants, from its organizational unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May call everything.
    Admin,
    /// May call read-only methods.
    Viewer,
    /// One of the rdock daemons; may call what the policy grants its name.
    Daemon,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Daemon => "daemon",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            "daemon" => Ok(Role::Daemon),
            other => Err(format!("unknown role {other:?}: expected admin or viewer")),
        }
    }
}

/// A caller, as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.role.as_str())
    }
}

impl Identity {
    /// Reads the identity from a DER certificate: CN is the name, OU the role.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("unreadable client certificate: {e}"))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .ok_or("client certificate has no common name")?
            .to_string();
        let role = subject
            .iter_organizational_unit()
            .next()
            .and_then(|a| a.as_str().ok())
            .ok_or("client certificate has no role (organizational unit)")?
            .parse()?;
        Ok(Identity { name, role })
    }

    /// Reads the identity from the first certificate of a PEM file's contents.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        Self::from_der(&p.contents)
    }
}
