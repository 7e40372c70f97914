//! Connecting to an rdock daemon: one host address, three ports, mutual TLS,
//! and the caller's trace context on every call.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::tls::TlsFiles;
use crate::{telemetry, Error};

/// The default port of the image daemon; the runtime and network daemons
/// listen on the next two.
pub const DEFAULT_BASE_PORT: u16 = 7701;

/// Which daemon of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Imaged,
    Runtimed,
    Netd,
}

impl Daemon {
    fn offset(self) -> u16 {
        match self {
            Daemon::Imaged => 0,
            Daemon::Runtimed => 1,
            Daemon::Netd => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Daemon::Imaged => "imaged",
            Daemon::Runtimed => "runtimed",
            Daemon::Netd => "netd",
        }
    }
}

/// A host running the three daemons: `HOST[:PORT]`, where PORT is the image
/// daemon's and the next two are the runtime and network daemons'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    pub host: String,
    pub base_port: u16,
}

impl std::str::FromStr for HostAddr {
    type Err = Error;
    /// Accepts `node1`, `node1:7701`, `tcp://10.0.0.5:7701`, `[::1]:7701`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| Error::Config(format!("invalid host {s:?}: {why}"));
        let rest = s.strip_prefix("tcp://").unwrap_or(s);
        if rest.is_empty() {
            return Err(bad("empty"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after ']'")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() || host.contains('/') || host.chars().any(char::is_whitespace) {
            return Err(bad("not a host name or address"));
        }
        let base_port = match port {
            None => DEFAULT_BASE_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0 && *p <= u16::MAX - 2)
                .ok_or_else(|| bad("port must be a number from 1 to 65533"))?,
        };
        Ok(HostAddr { host, base_port })
    }
}

impl HostAddr {
    pub fn local() -> Self {
        HostAddr {
            host: "127.0.0.1".into(),
            base_port: DEFAULT_BASE_PORT,
        }
    }

    pub fn port(&self, d: Daemon) -> u16 {
        self.base_port + d.offset()
    }

    fn uri(&self, d: Daemon) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port(d))
        } else {
            format!("https://{}:{}", self.host, self.port(d))
        }
    }
}

/// Puts the caller's trace context on every outgoing call.
#[derive(Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        telemetry::inject_current(req.metadata_mut());
        Ok(req)
    }
}

/// A channel to one daemon, with trace propagation.
pub type Conn = InterceptedService<Channel, TraceInterceptor>;

/// Connects to daemon `d` of `host` with mutual TLS.
pub async fn connect(host: &HostAddr, d: Daemon, tls: &TlsFiles) -> Result<Conn, Error> {
    let endpoint = channel_endpoint(host, d, tls)?;
    let channel = endpoint.connect().await.map_err(|e| {
        Error::Connect(format!(
            "cannot reach rdock-{} at {}:{}: {}",
            d.name(),
            host.host,
            host.port(d),
            error_chain(&e)
        ))
    })?;
    Ok(InterceptedService::new(channel, TraceInterceptor))
}

/// Like [`connect`], but to `host:port` and on first use: for daemons that
/// call each other and must not depend on the other being up at start.
pub fn connect_lazy(host: &str, port: u16, tls: &TlsFiles) -> Result<Conn, Error> {
    let addr = HostAddr {
        host: host.to_string(),
        base_port: port,
    };
    let channel = channel_endpoint(&addr, Daemon::Imaged, tls)?.connect_lazy();
    Ok(InterceptedService::new(channel, TraceInterceptor))
}

fn channel_endpoint(host: &HostAddr, d: Daemon, tls: &TlsFiles) -> Result<Endpoint, Error> {
    let uri = host.uri(d);
    Endpoint::from_shared(uri.clone())
        .map_err(|e| Error::Config(format!("invalid address {uri}: {e}")))?
        .tls_config(tls.client_config(&host.host)?)
        .map_err(|e| Error::Tls(format!("client TLS for {uri}: {e}")))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
        })
}

/// An error with all its sources, on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses() {
        let h: HostAddr = "node1".parse().unwrap();
        assert_eq!((h.host.as_str(), h.base_port), ("node1", 7701));
        let h: HostAddr = "tcp://10.0.0.5:9000".parse().unwrap();
        assert_eq!((h.host.as_str(), h.port(Daemon::Netd)), ("10.0.0.5", 9002));
        let h: HostAddr = "[::1]:8000".parse().unwrap();
        assert_eq!(h.uri(Daemon::Runtimed), "https://[::1]:8001");
        for bad in ["", "a:b", "x:0", "x:65535", "tcp://", "[::1", "a/b:1"] {
            assert!(bad.parse::<HostAddr>().is_err(), "{bad}");
        }
    }
}
