//! Terminals: the size of a tty container's terminal (the shim holds its
//! pty master), and what an attached client sends on to the shim.

use rdock_proto::runtime::v1 as pb;
use rdock_proto::shim::v1 as shimpb;

use crate::error::{Error, Result};
use crate::model::Status;
use crate::runtime::Runtime;

/// A client's terminal size as the shim takes it. A pty's size is two
/// 16-bit numbers; anything larger is refused.
pub fn window_size(s: &pb::TerminalSize) -> Result<shimpb::WindowSize> {
    if s.width > u32::from(u16::MAX) || s.height > u32::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "invalid terminal size {}x{}: at most {}x{}",
            s.width,
            s.height,
            u16::MAX,
            u16::MAX
        )));
    }
    Ok(shimpb::WindowSize {
        width: s.width,
        height: s.height,
    })
}

/// One message of an attached client for the shim; `None` for what the
/// shim is not to see (stdin when the client did not ask to send it, a
/// bad size, a repeated start).
pub fn attach_input(i: pb::attach_input::Input, stdin: bool) -> Option<shimpb::AttachIn> {
    use pb::attach_input::Input as I;
    use shimpb::attach_in::Input as S;
    let input = match i {
        I::Stdin(b) if stdin => S::Stdin(b),
        I::CloseStdin(v) if stdin => S::CloseStdin(v),
        I::Resize(s) => S::Resize(window_size(&s).ok()?),
        I::Stdin(_) | I::CloseStdin(_) | I::Start(_) => return None,
    };
    Some(shimpb::AttachIn { input: Some(input) })
}

impl Runtime {
    /// Sets the size of a running container's terminal. A container
    /// without a terminal has no size to set: nothing happens (as with
    /// Docker).
    #[tracing::instrument(skip_all, fields(container = %key))]
    pub async fn resize(&self, key: &str, size: Option<&pb::TerminalSize>) -> Result<()> {
        let size = window_size(size.ok_or_else(|| {
            Error::InvalidArgument("resize: the terminal size is missing".into())
        })?)?;
        let c = self.find(key)?;
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if !c.config.tty {
            return Ok(());
        }
        self.shim(&c.id)
            .await?
            .resize(shimpb::ResizeRequest { size: Some(size) })
            .await
            .map_err(|s| {
                Error::from(s).context(format!("resize the terminal of {}", c.short_id()))
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_attach_input() {
        let s = window_size(&pb::TerminalSize {
            width: 120,
            height: 40,
        })
        .unwrap();
        assert_eq!((s.width, s.height), (120, 40));
        let e = window_size(&pb::TerminalSize {
            width: 70000,
            height: 1,
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid terminal size 70000x1"),
            "{e}"
        );

        use pb::attach_input::Input as I;
        use shimpb::attach_in::Input as S;
        let resize = I::Resize(pb::TerminalSize {
            width: 80,
            height: 24,
        });
        assert!(matches!(
            attach_input(resize.clone(), false).and_then(|m| m.input),
            Some(S::Resize(shimpb::WindowSize {
                width: 80,
                height: 24
            }))
        ));
        assert!(matches!(
            attach_input(I::Stdin(b"x".to_vec()), true).and_then(|m| m.input),
            Some(S::Stdin(_))
        ));
        assert!(attach_input(I::Stdin(b"x".to_vec()), false).is_none());
        assert!(attach_input(I::CloseStdin(true), false).is_none());
        assert!(matches!(
            attach_input(I::CloseStdin(true), true).and_then(|m| m.input),
            Some(S::CloseStdin(true))
        ));
        assert!(attach_input(
            I::Resize(pb::TerminalSize {
                width: 1 << 20,
                height: 1
            }),
            true
        )
        .is_none());
    }
}
