//! Terminals: the console socket through which the OCI runtime hands the
//! shim a pty master (`runc create|exec --console-socket PATH`), and the
//! master the shim then holds, reads, writes and resizes.
//!
//! The protocol is runc's (`libcontainer/utils/cmsg.go`, `SendFd`), which
//! crun and youki speak too: the runtime connects to the Unix socket and
//! sends one message whose payload is the pty's name and whose `SCM_RIGHTS`
//! carries the master. containerd's shim receives it the same way
//! (go-runc `console.go`, `ReceiveMaster`).

use std::fs::{self, File};
use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UnixListener;

use super::Error;

/// How long the runtime may take to hand over the master once it has
/// exited successfully (it sends it before exiting, so this is a guard
/// against a runtime that never does, not a wait).
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// `sizeof(sockaddr_un.sun_path)`, the terminating NUL included.
const SUN_PATH_MAX: usize = 108;
/// The longest pty name accepted with the master (runc's `MaxNameLen`).
const NAME_MAX: usize = 4096;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub width: u16,
    pub height: u16,
}

impl WindowSize {
    /// From the API's size; cells past 65535 cannot be expressed.
    pub fn from_proto(s: &rdock_proto::shim::v1::WindowSize) -> Result<WindowSize, Error> {
        match (u16::try_from(s.width), u16::try_from(s.height)) {
            (Ok(width), Ok(height)) => Ok(WindowSize { width, height }),
            _ => Err(Error::InvalidArgument(format!(
                "invalid terminal size {}x{}",
                s.width, s.height
            ))),
        }
    }
}

/// A listening console socket in a directory of the shim's. Dropping it
/// removes the socket file.
pub struct ConsoleSocket {
    listener: UnixListener,
    /// The socket file.
    path: PathBuf,
    /// What the runtime connects to: `path`, or, when that does not fit in
    /// a socket address, the same file reached through the directory's fd
    /// under `/proc/<shim pid>/fd/`.
    connect_path: PathBuf,
    /// The directory, held open while `connect_path` goes through it.
    _dir: Option<OwnedFd>,
}

impl ConsoleSocket {
    /// Listens on `dir/name` (mode 0600; a stale file of that name is
    /// replaced).
    pub fn bind(dir: &Path, name: &str) -> io::Result<ConsoleSocket> {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let (listener, connect_path, dir_fd) = if path.as_os_str().len() < SUN_PATH_MAX - 1 {
            (UnixListener::bind(&path)?, path.clone(), None)
        } else {
            // Deep state dirs (a 64-hex container id under a long root)
            // do not fit in sun_path: go through the directory's fd.
            let d = File::from(nix::fcntl::open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?);
            let fd = d.as_raw_fd();
            let own = PathBuf::from(format!("/proc/self/fd/{fd}/{name}"));
            let theirs = PathBuf::from(format!("/proc/{}/fd/{fd}/{name}", std::process::id()));
            if theirs.as_os_str().len() >= SUN_PATH_MAX - 1 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("console socket name too long: {name:?}"),
                ));
            }
            (UnixListener::bind(&own)?, theirs, Some(OwnedFd::from(d)))
        };
        let sock = ConsoleSocket {
            listener,
            path,
            connect_path,
            _dir: dir_fd,
        };
        fs::set_permissions(&sock.path, fs::Permissions::from_mode(0o600))?;
        Ok(sock)
    }

    /// The path to give the runtime as `--console-socket`.
    pub fn connect_path(&self) -> &Path {
        &self.connect_path
    }

    /// Accepts the runtime's connection and receives the pty master. The
    /// master is checked to be a terminal and made non-blocking.
    pub async fn receive(&self) -> io::Result<OwnedFd> {
        let recv = async {
            let (stream, _) = self.listener.accept().await?;
            loop {
                stream.readable().await?;
                match stream.try_io(Interest::READABLE, || recv_fd(stream.as_raw_fd())) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            }
        };
        let master = tokio::time::timeout(RECEIVE_TIMEOUT, recv)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no terminal received within {RECEIVE_TIMEOUT:?}"),
                )
            })??;
        if !nix::unistd::isatty(&master).unwrap_or(false) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the runtime sent a descriptor that is not a terminal",
            ));
        }
        set_nonblocking(&master)?;
        Ok(master)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// One `recvmsg` carrying exactly one descriptor (close-on-exec).
fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut name = vec![0u8; NAME_MAX];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(io::Error::from)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(r) = c {
            fds.extend(r);
        }
    }
    // SAFETY: the kernel just installed these descriptors in this process
    // for us alone; each is owned exactly once from here on.
    let mut owned: Vec<OwnedFd> = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    match owned.len() {
        1 => Ok(owned.remove(0)),
        0 if msg.bytes == 0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the runtime closed the console socket without sending a terminal",
        )),
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected one terminal descriptor, got {n}"),
        )),
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

nix::ioctl_write_ptr_bad!(set_winsize, nix::libc::TIOCSWINSZ, nix::libc::winsize);

/// Sets the window size of the terminal `fd` (a master or slave): the
/// foreground process group gets SIGWINCH.
pub fn resize(fd: impl AsFd, size: WindowSize) -> io::Result<()> {
    let ws = nix::libc::winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which lives
    // across the call; the descriptor is borrowed, so it is open.
    unsafe { set_winsize(fd.as_fd().as_raw_fd(), &ws) }?;
    Ok(())
}

/// A pty master the shim holds: output is read from it, input written to
/// it. Reads end (`Ok(0)`) with the `EIO` a master returns once every
/// holder of the slave has closed it, i.e. after the processes on the
/// terminal have exited.
pub struct Pty {
    fd: AsyncFd<OwnedFd>,
}

impl Pty {
    /// Takes a non-blocking master (as [`ConsoleSocket::receive`] gives).
    pub fn new(master: OwnedFd) -> io::Result<Pty> {
        set_nonblocking(&master)?;
        // SAFETY: the `OwnedFd` is owned by the `AsyncFd` from here on and
        // is never replaced or closed while registered (`Pty` only reads,
        // writes and ioctls it).
        let fd = unsafe { AsyncFd::register(master) }?;
        Ok(Pty { fd })
    }

    /// Reads output; `Ok(0)` at the end.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), buf)?)) {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` as input.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), data)?)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        resize(self.fd.get_ref(), size)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::io::IoSlice;
    use std::os::unix::net::UnixStream;

    nix::ioctl_read_bad!(get_winsize, nix::libc::TIOCGWINSZ, nix::libc::winsize);

    fn winsize(fd: &OwnedFd) -> (u16, u16) {
        let mut ws = nix::libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }.unwrap();
        (ws.ws_col, ws.ws_row)
    }

    /// What runc's `SendFd` does.
    fn send_fd(path: &Path, name: &str, fd: RawFd) {
        let s = UnixStream::connect(path).unwrap();
        let fds = [fd];
        sendmsg::<()>(
            s.as_raw_fd(),
            &[IoSlice::new(name.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    }

    async fn round_trip(dir: &Path) {
        let sock = ConsoleSocket::bind(dir, "console.sock").unwrap();
        assert!(sock.connect_path().as_os_str().len() < SUN_PATH_MAX);
        let pty = nix::pty::openpty(None, None).unwrap();
        let path = sock.connect_path().to_path_buf();
        let master_raw = pty.master.as_raw_fd();
        let sender = std::thread::spawn(move || send_fd(&path, "/dev/ptmx", master_raw));
        let master = sock.receive().await.unwrap();
        sender.join().unwrap();
        drop(pty.master);

        // The received master drives the same terminal.
        let p = Pty::new(master).unwrap();
        p.resize(WindowSize {
            width: 132,
            height: 43,
        })
        .unwrap();
        assert_eq!(winsize(&pty.slave), (132, 43));
        p.write_all(b"hi\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = nix::unistd::read(&pty.slave, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi\n");
        nix::unistd::write(&pty.slave, b"out").unwrap();
        // Every slave closed: the end of output (the echo of the input, then
        // what was written).
        drop(pty.slave);
        let mut all = Vec::new();
        loop {
            let n = p.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&all).ends_with("out"), "{all:?}");
        let file = dir.join("console.sock");
        assert!(file.exists());
        drop(sock);
        assert!(!file.exists(), "socket removed on drop");
    }

    #[tokio::test]
    async fn master_over_the_console_socket() {
        let d = tempfile::tempdir().unwrap();
        round_trip(d.path()).await;
    }

    #[tokio::test]
    async fn deep_directories_go_through_proc() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(60)).join("y".repeat(60));
        fs::create_dir_all(&deep).unwrap();
        round_trip(&deep).await;
    }

    #[tokio::test]
    async fn a_descriptor_that_is_not_a_terminal_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let sock = ConsoleSocket::bind(d.path(), "c.sock").unwrap();
        let f = File::open("/dev/null").unwrap();
        let path = sock.connect_path().to_path_buf();
        let raw = f.as_raw_fd();
        std::thread::spawn(move || send_fd(&path, "x", raw))
            .join()
            .unwrap();
        let e = sock.receive().await.unwrap_err();
        assert!(e.to_string().contains("not a terminal"), "{e}");

        // A connection that closes without a descriptor.
        let sock = ConsoleSocket::bind(d.path(), "c2.sock").unwrap();
        drop(UnixStream::connect(sock.connect_path()).unwrap());
        let e = sock.receive().await.unwrap_err();
        assert!(e.to_string().contains("without sending"), "{e}");
    }

    #[test]
    fn window_sizes() {
        use rdock_proto::shim::v1::WindowSize as W;
        assert_eq!(
            WindowSize::from_proto(&W {
                width: 80,
                height: 24
            })
            .unwrap(),
            WindowSize {
                width: 80,
                height: 24
            }
        );
        assert!(WindowSize::from_proto(&W {
            width: 70000,
            height: 24
        })
        .is_err());
    }
}
