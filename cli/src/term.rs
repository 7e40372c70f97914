//! The local terminal: raw mode for tty sessions, and its size.
//!
//! [`RawTerminal`] is the one place the terminal's settings change. It puts a
//! terminal in raw mode (as `cfmakeraw`, which is what Docker's client
//! does) and restores the saved settings when it is dropped: on a normal
//! end, an error, a detach, or a panic unwinding through it. A panic hook,
//! installed once, restores them too when a panic happens elsewhere (another
//! thread, or `panic = "abort"`). Signals that would end the process are
//! caught by the session while a terminal is raw (see `session.rs`), so they
//! end it through the guard's drop as well.

use std::io::IsTerminal as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Mutex, Once};

use anyhow::{Context as _, Result};
use nix::sys::termios::{self, SetArg, Termios};
use rdock_proto::runtime::v1::TerminalSize;

/// The settings to put back if the process panics while a terminal is raw.
static SAVED: Mutex<Option<(RawFd, nix::libc::termios)>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// A terminal in raw mode; dropping it restores the terminal's settings.
pub struct RawTerminal {
    fd: RawFd,
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Puts the terminal on stdin in raw mode. `None` when stdin is not a
    /// terminal (a pipe or a file): nothing changes then.
    pub fn stdin() -> Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        RawTerminal::enter(stdin.as_fd()).map(Some)
    }

    /// Puts the terminal open on `fd` in raw mode. The fd must stay open
    /// while the guard lives (stdin does; tests keep their pty).
    pub fn enter(fd: BorrowedFd<'_>) -> Result<RawTerminal> {
        let saved = termios::tcgetattr(fd).context("read the terminal's settings")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        install_panic_hook();
        if let Ok(mut slot) = SAVED.lock() {
            *slot = Some((fd.as_raw_fd(), saved.clone().into()));
        }
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).context("set the terminal to raw mode")?;
        Ok(RawTerminal {
            fd: fd.as_raw_fd(),
            saved: Some(saved),
        })
    }

    /// Restores the saved settings (once; later calls do nothing).
    pub fn restore(&mut self) {
        if let Some(saved) = self.saved.take() {
            // SAFETY: the fd outlives the guard (see `enter`).
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            if let Err(e) = termios::tcsetattr(fd, SetArg::TCSANOW, &saved) {
                tracing::debug!(error = %e, "restore the terminal");
            }
            if let Ok(mut slot) = SAVED.lock() {
                *slot = None;
            }
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Restores a raw terminal before the default panic message is printed.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // try_lock: the panic may have happened while SAVED was held.
            if let Ok(mut slot) = SAVED.try_lock() {
                if let Some((fd, saved)) = slot.take() {
                    // SAFETY: the fd is stdin (or a test's pty), still open.
                    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &Termios::from(saved));
                }
            }
            previous(info);
        }));
    });
}

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// The size of the terminal open on `fd`; `None` when it is not a terminal
/// or reports no size.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<TerminalSize> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives here.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }.ok()?;
    if ws.ws_col == 0 || ws.ws_row == 0 {
        return None;
    }
    Some(TerminalSize {
        width: u32::from(ws.ws_col),
        height: u32::from(ws.ws_row),
    })
}

/// The size of the local terminal (stdout's, as Docker's client asks, else
/// stdin's).
pub fn size() -> Option<TerminalSize> {
    size_of(std::io::stdout().as_fd()).or_else(|| size_of(std::io::stdin().as_fd()))
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::{openpty, Winsize};
    use nix::sys::termios::LocalFlags;

    #[test]
    fn raw_mode_is_restored_on_drop_and_on_unwind() {
        let size = Winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).unwrap();
        let fd = pty.slave.as_fd();
        let cooked = termios::tcgetattr(fd).unwrap();
        assert!(cooked.local_flags.contains(LocalFlags::ICANON));

        {
            let _raw = RawTerminal::enter(fd).unwrap();
            let now = termios::tcgetattr(fd).unwrap();
            assert!(!now.local_flags.contains(LocalFlags::ICANON));
            assert!(!now.local_flags.contains(LocalFlags::ECHO));
            assert!(!now.local_flags.contains(LocalFlags::ISIG));
        }
        let after = termios::tcgetattr(fd).unwrap();
        assert_eq!(after.local_flags, cooked.local_flags);
        assert_eq!(after.input_flags, cooked.input_flags);
        assert_eq!(after.output_flags, cooked.output_flags);

        // A panic while raw: the guard's drop runs during the unwind.
        let raw_fd = fd.as_raw_fd();
        let result = std::panic::catch_unwind(|| {
            let fd = unsafe { BorrowedFd::borrow_raw(raw_fd) };
            let _raw = RawTerminal::enter(fd).unwrap();
            panic!("boom");
        });
        assert!(result.is_err());
        let after = termios::tcgetattr(fd).unwrap();
        assert_eq!(after.local_flags, cooked.local_flags);

        // restore() twice is harmless, and the size is read from the pty.
        let mut raw = RawTerminal::enter(fd).unwrap();
        raw.restore();
        raw.restore();
        assert_eq!(
            termios::tcgetattr(fd).unwrap().local_flags,
            cooked.local_flags
        );
        assert_eq!(
            size_of(fd),
            Some(TerminalSize {
                width: 101,
                height: 33
            })
        );
    }

    #[test]
    fn not_a_terminal() {
        let file = tempfile::tempfile().unwrap();
        assert!(RawTerminal::enter(file.as_fd()).is_err());
        assert_eq!(size_of(file.as_fd()), None);
    }
}
