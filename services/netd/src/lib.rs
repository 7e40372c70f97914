//! The rdock network daemon: networks (a default bridge and user-defined
//! ones), IPAM, attaching containers' network namespaces with veth pairs
//! over netlink, published ports in one nftables table of rdock's own, and
//! a DNS server per user-defined network.

pub mod authz;
pub mod config;
pub mod dns;
pub mod error;
pub mod grpc;
pub mod ipam;
pub mod kernel;
pub mod loopback;
pub mod names;
pub mod netlink;
pub mod nft;
pub mod portmap;
pub mod resolver;
pub mod service;
pub mod store;
pub mod subnet;

use std::future::Future;

use rdock_proto::net::v1::net_service_server::NetServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

/// Serves the network API on `listener` until `shutdown`. Before serving,
/// records are reconciled with the kernel. Stopping leaves bridges, veths
/// and rules as they are: containers keep their network.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.daemon.state_dir)?;
    std::fs::create_dir_all(&config.daemon.run_dir)?;
    let kernel = netlink::Netlink::new()?;
    let net = service::Net::start(config.clone(), kernel, true).await?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<NetServiceServer<grpc::GrpcNet<netlink::Netlink>>>()
        .await;
    let router = rdock_common::server::builder(&config.daemon.tls("netd"), authz::POLICY)?
        .add_service(health)
        .add_service(NetServiceServer::new(grpc::GrpcNet::new(net.clone())));
    tracing::info!(listen = %listener.local_addr()?, "rdock-netd serving");
    let served = rdock_common::server::serve(router, listener, shutdown).await;
    net.finish_pending().await;
    served?;
    Ok(())
}

/// Removes every link, bridge and rule netd made, and the endpoints'
/// records (`rdock-netd --cleanup`, for uninstalling).
pub async fn cleanup(config: Config) -> anyhow::Result<()> {
    let kernel = netlink::Netlink::new()?;
    let net = service::Net::open(config, kernel, false)?;
    net.cleanup().await?;
    Ok(())
}
