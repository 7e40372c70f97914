//! The DNS server of a user-defined network (like aardvark-dns and
//! Docker's embedded DNS): on the network's gateway address, port 53, it
//! answers A queries for the names and aliases of the containers on that
//! network and forwards every other query to the host's resolvers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::dns::{self, Bad};
use crate::error::{internal, Result};

/// Looks a (lower-case) name up for the container asking (its address on
/// the network, when the query came over IPv4): Some with the addresses
/// when the name is a container's.
pub type Lookup = Arc<dyn Fn(&str, Option<Ipv4Addr>) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// Where queries for other names go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstreams {
    /// Given by the daemon's settings.
    Fixed(Vec<SocketAddr>),
    /// The `nameserver` lines of a resolv.conf, read at each query so a
    /// change on the host is seen.
    ResolvConf(PathBuf),
}

impl Upstreams {
    fn resolve(&self) -> Vec<SocketAddr> {
        match self {
            Upstreams::Fixed(v) => v.clone(),
            Upstreams::ResolvConf(p) => std::fs::read_to_string(p)
                .map(|t| nameservers(&t))
                .unwrap_or_default(),
        }
    }
}

/// The name servers of a resolv.conf, on port 53. Loopback ones are kept:
/// netd forwards from the host's namespace, where the host's stub resolver
/// (127.0.0.53 and the like) is reachable, unlike from inside a container.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next()) {
                (Some("nameserver"), Some(a)) => {
                    // Drop a zone index (fe80::1%eth0), which IpAddr refuses.
                    a.split('%').next()?.parse::<IpAddr>().ok()
                }
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// TTL of answers for containers: short, since containers come and go.
const TTL: u32 = 60;
/// How long one upstream gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Forwarded queries in flight at once; more are refused with SERVFAIL.
const MAX_IN_FLIGHT: usize = 256;

/// A running server; stops when dropped.
pub struct DnsServer {
    task: JoinHandle<()>,
    pub addr: SocketAddr,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` (UDP) and serves until the returned server is dropped.
pub async fn start(addr: SocketAddr, lookup: Lookup, upstreams: Upstreams) -> Result<DnsServer> {
    let sock = Arc::new(
        UdpSocket::bind(addr)
            .await
            .map_err(internal(format!("bind DNS server on {addr}")))?,
    );
    let addr = sock.local_addr().map_err(internal("DNS server address"))?;
    let task = tokio::spawn(serve(sock, lookup, upstreams));
    Ok(DnsServer { task, addr })
}

async fn serve(sock: Arc<UdpSocket>, lookup: Lookup, upstreams: Upstreams) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                // ICMP errors of earlier replies surface here; keep serving.
                tracing::debug!(error = %e, "dns receive");
                continue;
            }
        };
        let packet = &buf[..n];
        let q = match dns::parse_query(packet) {
            Ok(q) => q,
            Err(Bad::Junk | Bad::NotAQuery) => continue,
            Err(Bad::Reply { id, flags, rcode }) => {
                let _ = sock.send_to(&dns::bare_error(id, flags, rcode), peer).await;
                continue;
            }
        };
        if q.qclass == dns::CLASS_IN {
            let asker = match peer.ip() {
                std::net::IpAddr::V4(ip) => Some(ip),
                std::net::IpAddr::V6(_) => None,
            };
            if let Some(ips) = lookup(&q.name, asker) {
                // The name is a container's: A records for A, an empty
                // answer for other types (no AAAA), never forwarded.
                let ips = if q.qtype == dns::TYPE_A {
                    ips
                } else {
                    Vec::new()
                };
                let _ = sock.send_to(&dns::answer(&q, &ips, TTL), peer).await;
                continue;
            }
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = sock
                .send_to(&dns::error(&q, dns::RCODE_SERVFAIL), peer)
                .await;
            continue;
        };
        let sock = sock.clone();
        let query = packet.to_vec();
        let servers = upstreams.resolve();
        tokio::spawn(async move {
            let reply = match forward(&query, q.id, &servers).await {
                Some(r) => r,
                None => dns::error(&q, dns::RCODE_SERVFAIL),
            };
            let _ = sock.send_to(&reply, peer).await;
            drop(permit);
        });
    }
}

/// Sends `query` to each server in turn until one answers with the same id.
async fn forward(query: &[u8], id: u16, servers: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in servers {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.connect(server).await.is_err() || s.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let got = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            loop {
                match s.recv(&mut buf).await {
                    Ok(n) if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id => {
                        return Some(n);
                    }
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        })
        .await;
        if let Ok(Some(n)) = got {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> Lookup {
        Arc::new(|name: &str, _| match name {
            "web" | "www" => Some(vec![Ipv4Addr::new(10, 1, 0, 2)]),
            _ => None,
        })
    }

    async fn ask(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(packet, server).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_from(&mut buf))
            .await
            .expect("no reply")
            .unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# comment\nnameserver 10.0.0.53\nsearch x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\n";
        let v: Vec<String> = nameservers(t).iter().map(|s| s.to_string()).collect();
        assert_eq!(v, ["10.0.0.53:53", "127.0.0.53:53", "[fe80::1]:53"]);
    }

    #[tokio::test]
    async fn answers_own_names_and_forwards_others() {
        // A fake upstream on loopback that answers every query with 203.0.113.7.
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = up.recv_from(&mut buf).await {
                if let Ok(q) = dns::parse_query(&buf[..n]) {
                    let r = dns::answer(&q, &[Ipv4Addr::new(203, 0, 113, 7)], 5);
                    let _ = up.send_to(&r, peer).await;
                }
            }
        });
        let srv = start(
            "127.0.0.1:0".parse().unwrap(),
            lookup(),
            Upstreams::Fixed(vec![up_addr]),
        )
        .await
        .unwrap();
        let r = ask(srv.addr, &dns::build_query(1, "WEB", dns::TYPE_A)).await;
        assert_eq!(
            dns::read_answers(&r),
            Some((0, vec![Ipv4Addr::new(10, 1, 0, 2)]))
        );
        let r = ask(srv.addr, &dns::build_query(2, "www.", 28)).await;
        assert_eq!(dns::read_answers(&r), Some((0, vec![])));
        let r = ask(srv.addr, &dns::build_query(3, "example.org", dns::TYPE_A)).await;
        assert_eq!(
            dns::read_answers(&r),
            Some((0, vec![Ipv4Addr::new(203, 0, 113, 7)]))
        );
        // Malformed: a FORMERR with the same id; then the server still works.
        let r = ask(srv.addr, &[0xab, 0xcd, 1, 0, 0, 1, 0, 0]).await;
        assert_eq!(
            (&r[0..2], r[3] & 0xf),
            (&[0xab, 0xcd][..], dns::RCODE_FORMERR)
        );
        let r = ask(srv.addr, &dns::build_query(4, "web", dns::TYPE_A)).await;
        assert_eq!(dns::read_answers(&r).unwrap().1.len(), 1);
    }

    #[tokio::test]
    async fn no_upstream_is_servfail() {
        let srv = start(
            "127.0.0.1:0".parse().unwrap(),
            lookup(),
            Upstreams::Fixed(vec![]),
        )
        .await
        .unwrap();
        let r = ask(srv.addr, &dns::build_query(9, "elsewhere", dns::TYPE_A)).await;
        assert_eq!(dns::read_answers(&r), Some((dns::RCODE_SERVFAIL, vec![])));
    }
}
