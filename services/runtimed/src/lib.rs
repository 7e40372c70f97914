//! The rdock runtime daemon: containers, their shims, stdio and logs.

pub mod authz;
pub mod commit;
pub mod config;
pub mod copy;
pub mod create;
pub mod error;
pub mod etcfiles;
pub mod exec;
pub mod grpc;
pub mod inspect;
pub mod lifecycle;
pub mod links;
pub mod logs;
pub mod model;
pub mod mounts;
pub mod names;
pub mod netconnect;
pub mod rootpath;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod top;
pub mod tty;
pub mod users;
pub mod volumes;

use std::future::Future;

use rdock_proto::runtime::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

/// Reconnects to running containers and serves the runtime API on
/// `listener` until `shutdown`. Containers keep running after it returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = config.daemon.tls("runtimed");
    let rt = runtime::Runtime::open(config)?;
    rt.reconcile().await?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<RuntimeServiceServer<grpc::GrpcRuntime>>()
        .await;
    let router = rdock_common::server::builder(&tls, authz::POLICY)?
        .add_service(health)
        .add_service(RuntimeServiceServer::new(grpc::GrpcRuntime::new(rt)));
    tracing::info!(listen = %listener.local_addr()?, "rdock-runtimed serving");
    rdock_common::server::serve(router, listener, shutdown).await?;
    Ok(())
}
