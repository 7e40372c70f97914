//! The rdock image daemon: registry client, content store, image records and
//! snapshots, served over gRPC with mutual TLS.

pub mod archive;
pub mod authz;
pub mod commit;
pub mod config;
pub mod diff;
pub mod error;
pub mod export;
pub mod grpc;
pub mod history;
pub mod images;
pub mod import;
pub mod initlayer;
pub mod manifest;
pub mod meta;
pub mod overlay;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod unpack;

use std::future::Future;

use rdock_proto::image::v1::image_service_server::ImageServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

/// Opens the store and serves the image API on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = images::ImageStore::open(
        &config.daemon.state_dir,
        registry::Registries::new(config.insecure_registries.clone()),
    )?;
    std::fs::create_dir_all(&config.daemon.run_dir)?;
    let tls = config.daemon.tls("imaged");
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<ImageServiceServer<grpc::GrpcImages>>()
        .await;
    let svc = ImageServiceServer::new(grpc::GrpcImages::new(store))
        .max_decoding_message_size(8 << 20)
        .max_encoding_message_size(64 << 20);
    let router = rdock_common::server::builder(&tls, authz::POLICY)?
        .add_service(health)
        .add_service(svc);
    tracing::info!(listen = %listener.local_addr()?, state = %config.daemon.state_dir.display(), "rdock-imaged serving");
    rdock_common::server::serve(router, listener, shutdown).await?;
    Ok(())
}
