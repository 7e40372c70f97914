//! The rdock runtime daemon: containers, their shims, stdio and logs.

pub mod authz;
pub mod config;
pub mod error;
pub mod etcfiles;
pub mod grpc;
pub mod inspect;
pub mod model;
pub mod mounts;
pub mod names;
pub mod rootpath;
pub mod shim;
pub mod spec;
pub mod store;
pub mod users;

use std::future::Future;

use rdock_proto::runtime::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

/// Serves the runtime API on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.daemon.state_dir)?;
    std::fs::create_dir_all(&config.daemon.run_dir)?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<RuntimeServiceServer<grpc::GrpcRuntime>>()
        .await;
    let router = rdock_common::server::builder(&config.daemon.tls("runtimed"), authz::POLICY)?
        .add_service(health)
        .add_service(RuntimeServiceServer::new(grpc::GrpcRuntime::new(
            config.runtime.clone(),
        )));
    tracing::info!(listen = %listener.local_addr()?, "rdock-runtimed serving");
    rdock_common::server::serve(router, listener, shutdown).await?;
    Ok(())
}
