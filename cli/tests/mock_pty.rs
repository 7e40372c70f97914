//! Tty sessions on a real pseudo-terminal: the real `rdockctl` runs with a
//! pty as its stdin, stdout and stderr, against the mock daemons. Raw mode,
//! the window size and its changes, the detach keys, and the terminal put
//! back on every way out.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{start, text, Env, MockContainer};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, LocalFlags, Termios};

const WEB_ID: &str = "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

nix::ioctl_write_ptr_bad!(tiocswinsz, nix::libc::TIOCSWINSZ, nix::libc::winsize);

struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
    /// Everything read from the master so far.
    seen: Arc<Mutex<Vec<u8>>>,
    cooked: Termios,
}

fn pty(cols: u16, rows: u16) -> Pty {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = openpty(Some(&size), None).unwrap();
    let cooked = termios::tcgetattr(p.slave.as_fd()).unwrap();
    let master = std::fs::File::from(p.master);
    let mut reader = master.try_clone().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    Pty {
        master,
        slave: p.slave,
        seen,
        cooked,
    }
}

impl Pty {
    fn spawn(&self, env: &Env, args: &[&str]) -> tokio::process::Child {
        let mut cmd = env.command(args);
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(io(&self.slave))
            .stdout(io(&self.slave))
            .stderr(io(&self.slave));
        cmd.spawn().unwrap()
    }

    fn is_raw(&self) -> bool {
        !termios::tcgetattr(self.slave.as_fd())
            .unwrap()
            .local_flags
            .contains(LocalFlags::ICANON)
    }

    fn assert_restored(&self) {
        let now = termios::tcgetattr(self.slave.as_fd()).unwrap();
        assert_eq!(now.local_flags, self.cooked.local_flags);
        assert_eq!(now.input_flags, self.cooked.input_flags);
        assert_eq!(now.output_flags, self.cooked.output_flags);
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    fn resize(&self, cols: u16, rows: u16) {
        let ws = nix::libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        unsafe { tiocswinsz(self.master.as_raw_fd(), &ws) }.unwrap();
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn exit_code(child: tokio::process::Child) -> Option<i32> {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    out.status.code()
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn env() -> Env {
    let env = start().await;
    env.images.seen.lock().unwrap().pulled = true;
    env.runtime.add(MockContainer::new(
        WEB_ID,
        "web",
        &["sleep"],
        60,
        "running",
        "Up 1 minute",
    ));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_it_raw_mode_size_detach_and_restore() {
    let env = env().await;
    let mut pty = pty(100, 30);
    let child = pty.spawn(&env, &["exec", "-it", "web", "cat"]);
    wait_for("raw mode", || pty.is_raw()).await;
    {
        let st = env.runtime.state.lock().unwrap();
        let e = st.more.execs.last().unwrap();
        assert!(e.tty && e.stdin);
        let size = e.size.unwrap();
        assert_eq!((size.width, size.height), (100, 30));
    }
    // Keys go through unprocessed (no echo, no line editing).
    pty.type_keys(b"hi\x03");
    wait_for("the echo", || pty.seen().contains("hi\u{3}")).await;
    assert_eq!(env.runtime.state.lock().unwrap().more.exec_stdin, b"hi\x03");
    // ctrl-p ctrl-q: detached, Docker's message, exit 0, terminal back.
    pty.type_keys(b"\x10\x11");
    assert_eq!(exit_code(child).await, Some(0));
    pty.assert_restored();
    wait_for("the message", || {
        pty.seen().contains("read escape sequence\r\n")
    })
    .await;
    let st = env.runtime.state.lock().unwrap();
    assert!(!st.more.exec_stdin_closed);
    assert_eq!(st.more.exec_stdin, b"hi\x03");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_in_raw_mode_restores_the_terminal() {
    let env = env().await;
    let pty = pty(80, 24);
    let child = pty.spawn(&env, &["exec", "-it", "web", "cat"]);
    wait_for("raw mode", || pty.is_raw()).await;
    signal(&child, "-TERM");
    assert_eq!(exit_code(child).await, Some(143));
    pty.assert_restored();

    let child = pty.spawn(&env, &["exec", "-it", "web", "cat"]);
    wait_for("raw mode", || pty.is_raw()).await;
    signal(&child, "-HUP");
    assert_eq!(exit_code(child).await, Some(129));
    pty.assert_restored();
}

#[tokio::test(flavor = "multi_thread")]
async fn start_ai_follows_the_window_size_and_detaches() {
    let env = env().await;
    let out = env
        .run(
            &["create", "-ti", "--name", "tt", "busybox", "cat"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut pty = pty(100, 30);
    let child = pty.spawn(
        &env,
        &["start", "-ai", "--detach-keys", "ctrl-x,ctrl-y", "tt"],
    );
    wait_for("raw mode", || pty.is_raw()).await;
    let resized = |env: &Env, w: u32, h: u32| {
        env.runtime
            .state
            .lock()
            .unwrap()
            .more
            .resizes
            .contains(&("tt".to_string(), w, h))
    };
    wait_for("the first size", || resized(&env, 100, 30)).await;
    pty.resize(120, 40);
    signal(&child, "-WINCH");
    wait_for("the new size", || resized(&env, 120, 40)).await;

    pty.type_keys(b"abc");
    wait_for("the echo", || pty.seen().contains("abc")).await;
    // The default keys are just input now; the chosen ones detach.
    pty.type_keys(b"\x10\x11\x18\x19");
    assert_eq!(exit_code(child).await, Some(0));
    pty.assert_restored();
    assert!(env.runtime.is_running("tt"));
    wait_for("the detach", || {
        env.runtime
            .state
            .lock()
            .unwrap()
            .detached
            .contains(&"tt".to_string())
    })
    .await;
    assert_eq!(
        env.runtime
            .state
            .lock()
            .unwrap()
            .stdin_seen
            .get("tt")
            .map(Vec::as_slice),
        Some(&b"abc\x10\x11"[..])
    );
    assert!(!pty.seen().contains("read escape sequence"));

    // attach: the same, with Docker's message.
    let mut pty = pty;
    let child = pty.spawn(&env, &["attach", "tt"]);
    wait_for("raw mode", || pty.is_raw()).await;
    pty.type_keys(b"\x10\x11");
    assert_eq!(exit_code(child).await, Some(0));
    pty.assert_restored();
    wait_for("the message", || {
        pty.seen().contains("read escape sequence")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_refuses_a_terminal() {
    let env = env().await;
    let pty = pty(80, 24);
    let child = pty.spawn(&env, &["export", "web"]);
    assert_eq!(exit_code(child).await, Some(1));
    wait_for("the refusal", || {
        pty.seen().contains(
            "rdockctl: cowardly refusing to save to a terminal. Use the -o flag or redirect\r\n",
        )
    })
    .await;
    pty.assert_restored();
}
