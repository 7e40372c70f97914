//! The rdock network daemon: networks, IPAM, netns attachment and published
//! ports.
//!
//! Attaching containers arrives with the networking issue; today the daemon
//! serves its configured networks, health and authorization table over
//! mutual TLS.

pub mod authz;
pub mod config;
pub mod grpc;
pub mod loopback;

use std::future::Future;

use rdock_proto::net::v1::net_service_server::NetServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

/// Serves the network API on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.daemon.state_dir)?;
    std::fs::create_dir_all(&config.daemon.run_dir)?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<NetServiceServer<grpc::GrpcNet>>()
        .await;
    let router = rdock_common::server::builder(&config.daemon.tls("netd"), authz::POLICY)?
        .add_service(health)
        .add_service(NetServiceServer::new(grpc::GrpcNet::new(config.clone())));
    tracing::info!(listen = %listener.local_addr()?, "rdock-netd serving");
    rdock_common::server::serve(router, listener, shutdown).await?;
    Ok(())
}
