//! The gRPC face of the network daemon.

use rdock_proto::net::v1 as pb;
use rdock_proto::net::v1::net_service_server::NetService;
use tonic::{Request, Response, Status};

use crate::config::Config;

pub struct GrpcNet {
    config: Config,
}

impl GrpcNet {
    pub fn new(config: Config) -> Self {
        GrpcNet { config }
    }
}

#[tonic::async_trait]
impl NetService for GrpcNet {
    async fn list_networks(
        &self,
        _req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let c = &self.config;
        Ok(Response::new(pb::ListNetworksResponse {
            networks: vec![pb::Network {
                id: c.bridge.clone(),
                name: "bridge".into(),
                driver: "bridge".into(),
                subnet: c.subnet.clone(),
                gateway: c.gateway.clone(),
                bridge: c.bridge.clone(),
                builtin: true,
                ..Default::default()
            }],
        }))
    }

    /// Loopback only for now: `lo` is brought up in the container's netns.
    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachResponse>, Status> {
        let r = req.into_inner();
        match r.network.as_str() {
            "" | "none" => {}
            other => return Err(Status::not_found(format!("network {other} not found"))),
        }
        let path = std::path::PathBuf::from(&r.netns_path);
        if !path.is_absolute() {
            return Err(Status::invalid_argument("netns_path must be absolute"));
        }
        tokio::task::spawn_blocking(move || crate::loopback::up(&path))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::internal)?;
        Ok(Response::new(pb::AttachResponse::default()))
    }

    async fn create_network(
        &self,
        _req: Request<pb::CreateNetworkRequest>,
    ) -> Result<Response<pb::Network>, Status> {
        Err(Status::unimplemented(
            "user-defined networks are not available yet",
        ))
    }

    async fn inspect_network(
        &self,
        _req: Request<pb::InspectNetworkRequest>,
    ) -> Result<Response<pb::Network>, Status> {
        Err(Status::unimplemented(
            "network inspect is not available yet",
        ))
    }

    async fn remove_network(
        &self,
        _req: Request<pb::RemoveNetworkRequest>,
    ) -> Result<Response<pb::RemoveNetworkResponse>, Status> {
        Err(Status::unimplemented(
            "user-defined networks are not available yet",
        ))
    }

    async fn detach(
        &self,
        _req: Request<pb::DetachRequest>,
    ) -> Result<Response<pb::DetachResponse>, Status> {
        Ok(Response::new(pb::DetachResponse {}))
    }
}
