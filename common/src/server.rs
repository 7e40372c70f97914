//! Serving a daemon's gRPC services: mutual TLS, the authorization layer,
//! health, graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tower::layer::util::{Identity, Stack};

use crate::authz::{AuthzLayer, Policy};
use crate::tls::TlsFiles;
use crate::Error;

/// A server builder with mutual TLS and `policy` in front of every service.
pub fn builder(
    tls: &TlsFiles,
    policy: Policy,
) -> Result<Server<Stack<AuthzLayer, Identity>>, Error> {
    Ok(Server::builder()
        .tls_config(tls.server_config()?)
        .map_err(|e| Error::Tls(format!("server TLS: {e}")))?
        .layer(AuthzLayer::new(policy)))
}

/// How long open connections may drain after shutdown is asked for.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// calls finish for at most [`DRAIN`]: a silent client cannot hold the
/// daemon up.
pub async fn serve(
    router: Router<Stack<AuthzLayer, Identity>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    // Small replies must not wait for Nagle's delayed-ACK dance (~40 ms a call).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    notify_ready();
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let serving = router.serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(serving);
    tokio::select! {
        res = &mut serving => res.map_err(|e| Error::Serve(crate::client::error_chain(&e))),
        _ = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!("connections still open after {}s; stopping anyway", DRAIN.as_secs());
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Tells systemd (when it started us with `Type=notify`) that we serve.
pub fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::warn!(error = %e, "systemd notify");
        }
    }
}

/// The body of a daemon's `main`: telemetry, bind, serve until SIGTERM or
/// SIGINT, flush telemetry, exit code. `name` is e.g. `rdock-imaged`.
pub async fn run_daemon<F, Fut>(
    name: &str,
    config: &crate::config::DaemonConfig,
    serve: F,
) -> std::process::ExitCode
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    limit_heap();
    let telemetry = crate::telemetry::init(name, config.log_format, "info");
    let res = async {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("listen on {}: {e}", config.listen))?;
        serve(listener).await
    }
    .await;
    if let Err(e) = &res {
        tracing::error!("{e:#}");
    }
    telemetry.shutdown().await;
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Keeps an idle daemon small: few malloc arenas (each thread would get its
/// own), and memory freed after a burst of work handed back to the system.
fn limit_heap() {
    // SAFETY: plain libc calls with constant arguments, made before the
    // runtime starts its threads (mallopt) or at any time (malloc_trim).
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
    std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(10));
            // SAFETY: see above.
            unsafe {
                nix::libc::malloc_trim(0);
            }
        })
        .ok();
}
