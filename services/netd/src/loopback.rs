//! Bringing a network namespace's loopback interface up.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::libc;
use nix::sched::{setns, CloneFlags};

/// Sets `lo` up inside the network namespace bind-mounted at `netns`.
/// Runs on a short-lived thread, since entering a namespace is per thread.
pub fn up(netns: &Path) -> Result<(), String> {
    let ns =
        std::fs::File::open(netns).map_err(|e| format!("open netns {}: {e}", netns.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("enter netns {}: {e}", netns.display()))?;
            let sock = nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Datagram,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(|e| format!("socket: {e}"))?;
            // SAFETY: ifreq is plain old data; the name fits (3 bytes + NUL).
            let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
            for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
                *dst = *src as libc::c_char;
            }
            // SAFETY: a valid socket fd and a properly initialised ifreq.
            if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
                return Err(format!(
                    "read lo flags: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
            unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
            // SAFETY: as above.
            if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
                return Err(format!("set lo up: {}", std::io::Error::last_os_error()));
            }
            Ok(())
        })
        .join()
        .map_err(|_| "loopback thread panicked".to_string())?
    })
}
