//! Driving `rdockctl` through a real pseudo-terminal, as a user at a
//! terminal does: the command's stdin, stdout and stderr are the slave side
//! of a fresh pty (its controlling terminal, in a session of its own); the
//! test types into the master, reads what the terminal shows, and resizes
//! the window (the kernel then sends SIGWINCH to the command).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::procs::die_with_parent;

/// Ctrl-P then Ctrl-Q: Docker's default detach keys.
pub const DETACH_KEYS: &[u8] = b"\x10\x11";

/// Output shown on the terminal so far, and whether the master hit EOF.
#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    closed: bool,
}

/// A command running on a pty of its own.
pub struct PtySession {
    child: Child,
    what: String,
    master: File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    reader: Option<JoinHandle<()>>,
    /// Where the next [`PtySession::expect`] starts looking.
    mark: usize,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A new pty pair of `rows`×`cols`: (master, slave).
fn open_pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let ws = winsize(rows, cols);
    // SAFETY: openpty writes two fds into the out-pointers; name and termios
    // are optional (null); `ws` outlives the call.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just returned by openpty and are owned here.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

impl PtySession {
    /// Starts `cmd` on a new `rows`×`cols` terminal.
    pub fn start(cmd: &mut Command, rows: u16, cols: u16) -> PtySession {
        let what = format!("{cmd:?}");
        let (master, slave) = open_pty(rows, cols);
        let stdio = |fd: &OwnedFd| -> Stdio {
            Stdio::from(
                fd.try_clone()
                    .unwrap_or_else(|e| panic!("dup pty slave: {e}")),
            )
        };
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe; fd 0
        // is the slave at this point (set up by Command before pre_exec).
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = die_with_parent(cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        // The child holds the slave now; the master sees EOF (EIO) once it
        // and everything it started have closed it.
        drop(slave);
        let master = File::from(master);
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let reader = {
            let mut r = master
                .try_clone()
                .unwrap_or_else(|e| panic!("dup pty master: {e}"));
            let screen = screen.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                loop {
                    let n = r.read(&mut chunk).unwrap_or(0);
                    let (lock, cv) = &*screen;
                    let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if n == 0 {
                        s.closed = true;
                        cv.notify_all();
                        return;
                    }
                    s.bytes.extend_from_slice(&chunk[..n]);
                    cv.notify_all();
                }
            })
        };
        PtySession {
            child,
            what,
            master,
            screen,
            reader: Some(reader),
            mark: 0,
        }
    }

    /// Types `bytes` on the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("type into {}: {e}", self.what));
    }

    /// Types `line` and Enter.
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r").as_bytes());
    }

    /// Everything the terminal showed so far, lossily decoded.
    pub fn screen(&self) -> String {
        let s = self.screen.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&s.bytes).into_owned()
    }

    /// Waits until `needle` appears on the terminal after the previous
    /// match; fails the test (showing the screen) after `timeout`. Returns
    /// the text between the previous match and the end of this one.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.screen;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let from = self.mark.min(s.bytes.len());
            let tail = &s.bytes[from..];
            if let Some(pos) = find(tail, needle.as_bytes()) {
                let end = from + pos + needle.len();
                let seen = String::from_utf8_lossy(&s.bytes[from..end]).into_owned();
                self.mark = end;
                return seen;
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                let shown = String::from_utf8_lossy(&s.bytes).into_owned();
                drop(s);
                panic!(
                    "{:?} did not appear on the terminal of {} ({}); the terminal shows:\n{shown}",
                    needle,
                    self.what,
                    if now >= deadline {
                        "timed out"
                    } else {
                        "the terminal closed"
                    }
                );
            }
            s = cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Changes the window size, as a terminal emulator does when its
    /// window is resized (the command gets SIGWINCH).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which lives
        // across the call; the fd is the open master.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Waits for the command to exit (killing it after `timeout`, which
    /// fails the test) and returns its status.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not exit within {timeout:?}; the terminal shows:\n{}",
                        self.what,
                        self.screen()
                    );
                }
                Err(e) => panic!("wait for {}: {e}", self.what),
            }
        }
    }

    /// The terminal's settings as the command left them (e.g. whether it
    /// restored cooked mode): `(ICANON set, ECHO set)`.
    pub fn line_discipline(&self) -> (bool, bool) {
        // SAFETY: an all-zero termios is a valid value to be overwritten by
        // tcgetattr on the open master (the pair shares its settings).
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: the fd is the open master; `t` is a valid out-pointer.
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        (t.c_lflag & libc::ICANON != 0, t.c_lflag & libc::ECHO != 0)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // The reader ends at EOF once no process holds the slave; it is not
        // joined, as a container process may still hold it until teardown.
        drop(self.reader.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_on_a_pty_sees_a_terminal_of_the_given_size_and_its_resizes() {
        let mut cmd = Command::new("/bin/busybox");
        cmd.args(["sh", "-c", "stty size; read x; stty size; echo got $x"]);
        let mut s = PtySession::start(&mut cmd, 24, 80);
        s.expect("24 80", Duration::from_secs(10));
        s.resize(40, 100);
        s.send_line("hi");
        s.expect("40 100", Duration::from_secs(10));
        s.expect("got hi", Duration::from_secs(10));
        assert!(s.wait(Duration::from_secs(10)).success());
    }
}
