//! Authorization by certificate role, from one table per daemon, checked in
//! one tower layer that every daemon puts in front of all its services.
//!
//! The same layer opens the RPC's tracing span, parented on the caller's W3C
//! `traceparent`, so every RPC is one span of the caller's trace.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tracing::Instrument;

use crate::identity::{Identity, Role};
use crate::telemetry;

/// What a method does, for the roles that people hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Lists, inspects, logs, health: viewers may call it.
    Read,
    /// Changes state: only admins (and the daemons granted it).
    Write,
}

/// One method of a daemon's API and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The full gRPC path, `/package.Service/Method`.
    pub method: &'static str,
    pub access: Access,
    /// Daemon identities (certificate names) that may call it.
    pub daemons: &'static [&'static str],
}

/// A daemon's whole table. Methods not in it are refused to all but admins.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub rules: &'static [Rule],
}

/// The health service: every authenticated caller may ask.
pub const HEALTH_RULES: [Rule; 2] = [
    Rule {
        method: "/grpc.health.v1.Health/Check",
        access: Access::Read,
        daemons: &["imaged", "runtimed", "netd"],
    },
    Rule {
        method: "/grpc.health.v1.Health/Watch",
        access: Access::Read,
        daemons: &["imaged", "runtimed", "netd"],
    },
];

impl Policy {
    /// Whether `who` may call `method`.
    pub fn allows(&self, who: &Identity, method: &str) -> bool {
        let rule = self
            .rules
            .iter()
            .chain(HEALTH_RULES.iter())
            .find(|r| r.method == method);
        match (who.role, rule) {
            (Role::Admin, _) => true,
            (_, None) => false,
            (Role::Viewer, Some(r)) => r.access == Access::Read,
            (Role::Daemon, Some(r)) => r.daemons.contains(&who.name.as_str()),
        }
    }
}

/// The tower layer that enforces a [`Policy`] and opens the RPC span.
#[derive(Clone)]
pub struct AuthzLayer {
    policy: Arc<Policy>,
}

impl AuthzLayer {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> tower::Layer<S> for AuthzLayer {
    type Service = Authz<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authz {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// See [`AuthzLayer`].
#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    policy: Arc<Policy>,
}

fn peer_identity(req: &http::Request<Body>) -> Result<Identity, String> {
    let certs = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.peer_certs())
        .ok_or("no client certificate")?;
    let leaf = certs.first().ok_or("no client certificate")?;
    Identity::from_der(leaf.as_ref())
}

impl<S> tower::Service<http::Request<Body>> for Authz<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req.uri().path().to_string();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            rpc.method = %method,
            caller = tracing::field::Empty,
        );
        telemetry::set_parent_from_headers(&span, req.headers());
        let who = match peer_identity(&req) {
            Ok(who) => who,
            Err(why) => {
                let status = tonic::Status::unauthenticated(why);
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        span.record("caller", tracing::field::display(&who));
        if !self.policy.allows(&who, &method) {
            let _g = span.enter();
            tracing::warn!(caller = %who, method = %method, "permission denied");
            let status = tonic::Status::permission_denied(format!(
                "permission denied: {who} may not call {method}"
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // Take the service that was polled ready, leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(req).await }.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [Rule; 2] = [
        Rule {
            method: "/x.S/List",
            access: Access::Read,
            daemons: &[],
        },
        Rule {
            method: "/x.S/Prepare",
            access: Access::Write,
            daemons: &["runtimed"],
        },
    ];

    fn id(name: &str, role: Role) -> Identity {
        Identity {
            name: name.into(),
            role,
        }
    }

    #[test]
    fn table_decides_by_role() {
        let p = Policy { rules: &RULES };
        assert!(p.allows(&id("admin", Role::Admin), "/x.S/Prepare"));
        assert!(p.allows(&id("admin", Role::Admin), "/x.S/Unknown"));
        assert!(p.allows(&id("viewer", Role::Viewer), "/x.S/List"));
        assert!(!p.allows(&id("viewer", Role::Viewer), "/x.S/Prepare"));
        assert!(!p.allows(&id("viewer", Role::Viewer), "/x.S/Unknown"));
        assert!(p.allows(&id("runtimed", Role::Daemon), "/x.S/Prepare"));
        assert!(!p.allows(&id("netd", Role::Daemon), "/x.S/Prepare"));
        assert!(!p.allows(&id("netd", Role::Daemon), "/x.S/List"));
        assert!(p.allows(&id("netd", Role::Daemon), "/grpc.health.v1.Health/Check"));
        assert!(p.allows(&id("viewer", Role::Viewer), "/grpc.health.v1.Health/Check"));
    }
}
