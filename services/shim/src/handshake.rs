//! The one JSON line a shim prints on its stdout once `runtime create` is
//! done: `{"pid":N}` or `{"error":"…","kind":"not_found"|"permission"|"other"}`.

use serde::{Deserialize, Serialize};

/// Why a container could not be created, as the caller maps it to an exit
/// code (Docker's: 127 not found, 126 cannot invoke, 125 engine error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchErrorKind {
    /// The command is not in the container.
    NotFound,
    /// The command exists but cannot be run.
    Permission,
    /// Anything else: the engine failed.
    Other,
}

impl LaunchErrorKind {
    /// Docker's exit code for this failure.
    pub fn exit_code(self) -> i32 {
        match self {
            LaunchErrorKind::NotFound => 127,
            LaunchErrorKind::Permission => 126,
            LaunchErrorKind::Other => 125,
        }
    }
}

/// The shim's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Handshake {
    Created {
        pid: u32,
    },
    Failed {
        error: String,
        kind: LaunchErrorKind,
    },
}

impl Handshake {
    /// The line to print, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"error":"cannot encode the shim's report","kind":"other"}"#.to_string()
        });
        s.push('\n');
        s
    }

    /// Parses a line the shim printed.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(Handshake::Created { pid: 42 }.to_line(), "{\"pid\":42}\n");
        let f = Handshake::Failed {
            error: "exec: \"x\": executable file not found in $PATH".into(),
            kind: LaunchErrorKind::NotFound,
        };
        let line = f.to_line();
        assert!(line.contains(r#""kind":"not_found""#), "{line}");
        assert_eq!(Handshake::parse(&line).unwrap(), f);
        assert_eq!(
            Handshake::parse(r#"{"pid":7}"#).unwrap(),
            Handshake::Created { pid: 7 }
        );
        assert!(Handshake::parse("garbage").is_err());
        assert_eq!(LaunchErrorKind::NotFound.exit_code(), 127);
        assert_eq!(LaunchErrorKind::Permission.exit_code(), 126);
        assert_eq!(LaunchErrorKind::Other.exit_code(), 125);
    }
}
