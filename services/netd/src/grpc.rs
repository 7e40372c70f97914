//! The gRPC face of the network daemon: thin adapters over [`Net`].
//!
//! Calls that change state run in their own task, so a caller that goes
//! away mid-call (a timeout, a dropped connection) cannot cut an attach or
//! detach in half.

use std::sync::Arc;

use rdock_proto::net::v1 as pb;
use rdock_proto::net::v1::net_service_server::NetService;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::kernel::Kernel;
use crate::service::Net;

pub struct GrpcNet<K: Kernel> {
    net: Arc<Net<K>>,
}

impl<K: Kernel> GrpcNet<K> {
    pub fn new(net: Arc<Net<K>>) -> Self {
        GrpcNet { net }
    }
}

/// Runs `f` to completion in its own task, whatever happens to the call.
async fn detached<K, T, F, Fut>(net: &Arc<Net<K>>, f: F) -> Result<T, Status>
where
    K: Kernel,
    T: Send + 'static,
    F: FnOnce(Arc<Net<K>>) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let fut = f(net.clone());
    tokio::spawn(fut)
        .await
        .map_err(|e| Status::internal(format!("task failed: {e}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl<K: Kernel> NetService for GrpcNet<K> {
    async fn list_networks(
        &self,
        _req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let networks = self.net.list_networks()?;
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn create_network(
        &self,
        req: Request<pb::CreateNetworkRequest>,
    ) -> Result<Response<pb::Network>, Status> {
        let r = req.into_inner();
        let n = detached(&self.net, |net| async move {
            net.create_network(&r.name, &r.subnet).await
        })
        .await?;
        Ok(Response::new(n))
    }

    async fn inspect_network(
        &self,
        req: Request<pb::InspectNetworkRequest>,
    ) -> Result<Response<pb::Network>, Status> {
        Ok(Response::new(
            self.net.inspect_network(&req.into_inner().network)?,
        ))
    }

    async fn remove_network(
        &self,
        req: Request<pb::RemoveNetworkRequest>,
    ) -> Result<Response<pb::RemoveNetworkResponse>, Status> {
        let r = req.into_inner();
        detached(&self.net, |net| async move {
            net.remove_network(&r.network).await
        })
        .await?;
        Ok(Response::new(pb::RemoveNetworkResponse {}))
    }

    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachResponse>, Status> {
        let r = req.into_inner();
        let res = detached(&self.net, |net| async move { net.attach(r).await }).await?;
        Ok(Response::new(res))
    }

    async fn detach(
        &self,
        req: Request<pb::DetachRequest>,
    ) -> Result<Response<pb::DetachResponse>, Status> {
        let r = req.into_inner();
        detached(&self.net, |net| async move {
            net.detach(&r.container_id, &r.network).await
        })
        .await?;
        Ok(Response::new(pb::DetachResponse {}))
    }
}
