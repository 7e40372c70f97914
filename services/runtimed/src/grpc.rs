//! The gRPC face of the runtime daemon.

use rdock_proto::runtime::v1 as pb;
use rdock_proto::runtime::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

pub struct GrpcRuntime {
    runtime: String,
}

impl GrpcRuntime {
    pub fn new(runtime: String) -> Self {
        GrpcRuntime { runtime }
    }
}

#[tonic::async_trait]
impl RuntimeService for GrpcRuntime {
    async fn version(
        &self,
        _req: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            runtime: self.runtime.clone(),
        }))
    }
}
