//! `diff` and `commit`: a container's filesystem changes, listed or made
//! into a new image (the runtime daemon asks the image daemon, which owns
//! the snapshot). Failures exit 1, as Docker's do.

use std::io::{self, Write as _};

use anyhow::Result;
use rdock_proto::runtime::v1::{Change, CommitRequest, DiffRequest};

use crate::args::{CommitArgs, DiffArgs};
use crate::conn::Target;

/// `docker diff`'s lines: `C /etc`, `A /etc/x`, `D /y`, in the daemon's
/// order (sorted by path).
pub fn render_diff(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        out.push_str(&c.kind);
        out.push(' ');
        out.push_str(&c.path);
        out.push('\n');
    }
    out
}

pub async fn diff(target: &Target, args: &DiffArgs) -> Result<()> {
    let mut rt = target.runtime().await?;
    let resp = rt
        .diff(DiffRequest {
            id: args.container.clone(),
        })
        .await?
        .into_inner();
    let mut out = io::stdout().lock();
    out.write_all(render_diff(&resp.changes).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Prints the new image's id (`sha256:<hex>`), as Docker does.
pub async fn commit(target: &Target, args: &CommitArgs) -> Result<()> {
    let mut rt = target.runtime().await?;
    let resp = rt
        .commit(CommitRequest {
            id: args.container.clone(),
            reference: args.reference.clone().unwrap_or_default(),
            message: args.message.clone().unwrap_or_default(),
            author: args.author.clone().unwrap_or_default(),
            changes: args.changes.clone(),
            pause: args.pause,
        })
        .await?
        .into_inner();
    let mut out = io::stdout().lock();
    writeln!(out, "{}", resp.image_id)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_like_docker() {
        let c = |k: &str, p: &str| Change {
            kind: k.into(),
            path: p.into(),
        };
        assert_eq!(
            render_diff(&[c("C", "/etc"), c("A", "/etc/x"), c("D", "/y")]),
            "C /etc\nA /etc/x\nD /y\n"
        );
        assert_eq!(render_diff(&[]), "");
    }
}
