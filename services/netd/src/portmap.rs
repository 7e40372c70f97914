//! Published ports: checking the requested mappings and reserving host
//! ports. A DNAT rule does not bind its host port, so netd binds it and
//! holds the socket while the mapping lives (like Docker's port
//! allocator): a port another program or container already has is refused
//! instead of silently shadowed, and nobody else can take it meanwhile.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use rdock_proto::net::v1 as pb;

use crate::error::{Error, Result};
use crate::store::{PortRecord, Proto};

/// A mapping as asked for, checked. `host_port` 0 = any free port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// Checks one requested mapping.
pub fn validate(p: &pb::PortMapping) -> Result<Wanted> {
    let bad = |m: String| Error::InvalidArgument(m);
    let container_port = u16::try_from(p.container_port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            bad(format!(
                "invalid container port {}: must be from 1 to 65535",
                p.container_port
            ))
        })?;
    let host_port = u16::try_from(p.host_port).map_err(|_| {
        bad(format!(
            "invalid host port {}: must be from 0 (any) to 65535",
            p.host_port
        ))
    })?;
    let proto = match p.protocol.to_ascii_lowercase().as_str() {
        "" | "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(bad(format!(
                "invalid protocol {other:?} for port {container_port}: expected tcp or udp"
            )))
        }
    };
    let host_ip = match p.host_ip.as_str() {
        "" | "0.0.0.0" => None,
        s => match s.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => Some(ip),
            Ok(std::net::IpAddr::V6(_)) => {
                return Err(bad(format!(
                    "invalid host address {s:?}: only IPv4 addresses can be published"
                )))
            }
            Err(_) => {
                return Err(bad(format!(
                    "invalid host address {s:?}: not an IP address"
                )))
            }
        },
    };
    Ok(Wanted {
        host_ip,
        host_port,
        container_port,
        proto,
    })
}

/// A bound host port, held while its mapping lives.
#[derive(Debug)]
pub enum Held {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn shown(ip: Option<Ipv4Addr>) -> Ipv4Addr {
    ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// Binds the host side of a mapping (a listening TCP socket or a UDP
/// socket). Port 0 picks a free port; the record carries the port bound.
pub fn bind(w: &Wanted) -> Result<(Held, PortRecord)> {
    let addr = SocketAddrV4::new(shown(w.host_ip), w.host_port);
    let res = match w.proto {
        Proto::Tcp => TcpListener::bind(addr).and_then(|l| Ok((l.local_addr()?, Held::Tcp(l)))),
        Proto::Udp => UdpSocket::bind(addr).and_then(|s| Ok((s.local_addr()?, Held::Udp(s)))),
    };
    let (local, held) = res.map_err(|e| bind_error(w, &addr, e))?;
    Ok((
        held,
        PortRecord {
            host_ip: w.host_ip,
            host_port: local.port(),
            container_port: w.container_port,
            proto: w.proto,
        },
    ))
}

/// Binds the host port of an existing mapping again (after a restart).
pub fn rebind(p: &PortRecord) -> Result<Held> {
    bind(&Wanted {
        host_ip: p.host_ip,
        host_port: p.host_port,
        container_port: p.container_port,
        proto: p.proto,
    })
    .map(|(h, _)| h)
}

fn bind_error(w: &Wanted, addr: &SocketAddrV4, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::Conflict(format!(
            "port {}/{} is already in use on {}: Bind for {addr} failed: port is already allocated",
            w.host_port,
            w.proto.as_str(),
            addr.ip()
        )),
        std::io::ErrorKind::AddrNotAvailable => Error::InvalidArgument(format!(
            "cannot publish on {}: not an address of this host",
            addr.ip()
        )),
        _ => Error::Internal(format!("bind {addr}/{}: {e}", w.proto.as_str())),
    }
}

/// Binds every mapping, or none: on the first failure the ports bound so
/// far are released (dropped) and the error returned.
pub fn bind_all(wanted: &[Wanted]) -> Result<(Vec<Held>, Vec<PortRecord>)> {
    let mut held = Vec::new();
    let mut recs = Vec::new();
    for w in wanted {
        let (h, r) = bind(w)?;
        held.push(h);
        recs.push(r);
    }
    Ok((held, recs))
}

/// The wire form of an assigned mapping.
pub fn to_pb(p: &PortRecord) -> pb::PortMapping {
    pb::PortMapping {
        host_ip: shown(p.host_ip).to_string(),
        host_port: u32::from(p.host_port),
        container_port: u32::from(p.container_port),
        protocol: p.proto.as_str().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(ip: &str, hp: u32, cp: u32, proto: &str) -> pb::PortMapping {
        pb::PortMapping {
            host_ip: ip.into(),
            host_port: hp,
            container_port: cp,
            protocol: proto.into(),
        }
    }

    #[test]
    fn validation() {
        let w = validate(&pm("", 8080, 80, "")).unwrap();
        assert_eq!((w.host_ip, w.host_port, w.proto), (None, 8080, Proto::Tcp));
        let w = validate(&pm("127.0.0.1", 0, 53, "UDP")).unwrap();
        assert_eq!(w.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(w.proto, Proto::Udp);
        for (p, want) in [
            (pm("", 70000, 80, "tcp"), "invalid host port 70000"),
            (pm("", 80, 0, "tcp"), "invalid container port 0"),
            (pm("", 80, 65536, "tcp"), "invalid container port 65536"),
            (pm("", 80, 80, "sctpx"), "invalid protocol \"sctpx\""),
            (pm("abc", 80, 80, "tcp"), "invalid host address \"abc\""),
            (pm("::1", 80, 80, "tcp"), "only IPv4"),
        ] {
            let e = validate(&p).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn a_taken_port_is_refused_and_zero_picks_one() {
        let w = validate(&pm("127.0.0.1", 0, 80, "tcp")).unwrap();
        let (held, rec) = bind(&w).unwrap();
        assert_ne!(rec.host_port, 0);
        let again = Wanted {
            host_port: rec.host_port,
            ..w.clone()
        };
        let e = bind(&again).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains(&format!("port {}/tcp is already in use", rec.host_port)),
            "{m}"
        );
        // The wildcard address conflicts with a specific one too.
        let wild = Wanted {
            host_ip: None,
            ..again.clone()
        };
        assert!(matches!(bind(&wild), Err(Error::Conflict(_))));
        drop(held);
        bind(&again).unwrap();
    }

    #[test]
    fn bind_all_releases_on_failure() {
        let (h, r) = bind(&validate(&pm("127.0.0.1", 0, 1, "udp")).unwrap()).unwrap();
        let free = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let first = validate(&pm("127.0.0.1", u32::from(free), 2, "tcp")).unwrap();
        let clash = validate(&pm("127.0.0.1", u32::from(r.host_port), 3, "udp")).unwrap();
        assert!(bind_all(&[first.clone(), clash]).is_err());
        // The first port was released again.
        bind(&first).unwrap();
        drop(h);
    }

    #[test]
    fn a_foreign_address_is_invalid() {
        // TEST-NET-3 is never a local address here.
        let w = validate(&pm("203.0.113.7", 0, 80, "tcp")).unwrap();
        assert!(matches!(bind(&w), Err(Error::InvalidArgument(_))));
    }
}
