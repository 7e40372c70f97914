//! The gRPC face of the runtime daemon.

use std::pin::Pin;

use futures::Stream;
use rdock_proto::runtime::v1 as pb;
use rdock_proto::runtime::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status, Streaming};

pub struct GrpcRuntime {
    runtime: String,
}

impl GrpcRuntime {
    pub fn new(runtime: String) -> Self {
        GrpcRuntime { runtime }
    }
}

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn later<T>() -> Result<T, Status> {
    Err(Status::unimplemented("containers are not available yet"))
}

#[tonic::async_trait]
impl RuntimeService for GrpcRuntime {
    type AttachStream = Out<pb::AttachOutput>;
    type LogsStream = Out<pb::LogEntry>;

    async fn version(
        &self,
        _req: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            runtime: self.runtime.clone(),
        }))
    }
    async fn create_container(
        &self,
        _r: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        later()
    }
    async fn start_container(
        &self,
        _r: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        later()
    }
    async fn attach(
        &self,
        _r: Request<Streaming<pb::AttachInput>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        later()
    }
    async fn wait(
        &self,
        _r: Request<pb::WaitRequest>,
    ) -> Result<Response<pb::WaitResponse>, Status> {
        later()
    }
    async fn stop_container(
        &self,
        _r: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        later()
    }
    async fn kill_container(
        &self,
        _r: Request<pb::KillContainerRequest>,
    ) -> Result<Response<pb::KillContainerResponse>, Status> {
        later()
    }
    async fn remove_container(
        &self,
        _r: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        later()
    }
    async fn list_containers(
        &self,
        _r: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        later()
    }
    async fn inspect_container(
        &self,
        _r: Request<pb::InspectContainerRequest>,
    ) -> Result<Response<pb::ContainerInfo>, Status> {
        later()
    }
    async fn logs(
        &self,
        _r: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        later()
    }
    async fn top(&self, _r: Request<pb::TopRequest>) -> Result<Response<pb::TopResponse>, Status> {
        later()
    }
}
