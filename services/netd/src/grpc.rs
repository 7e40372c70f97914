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
            }],
        }))
    }

    async fn attach(
        &self,
        _req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachResponse>, Status> {
        Err(Status::unimplemented(
            "attaching containers to networks is not available yet",
        ))
    }

    async fn detach(
        &self,
        _req: Request<pb::DetachRequest>,
    ) -> Result<Response<pb::DetachResponse>, Status> {
        Err(Status::unimplemented(
            "detaching containers from networks is not available yet",
        ))
    }
}
