//! The gRPC face of the image daemon: thin adapters over [`ImageStore`].

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rdock_proto::image::v1 as pb;
use rdock_proto::image::v1::image_service_server::ImageService;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::commit::CommitOptions;
use crate::error::Error;
use crate::images::{ImageStore, Progress};

pub struct GrpcImages {
    store: Arc<ImageStore>,
}

impl GrpcImages {
    pub fn new(store: Arc<ImageStore>) -> Self {
        GrpcImages { store }
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn layer_progress(p: Progress) -> Result<pb::LayerProgress, String> {
    match p {
        Progress::Layer {
            digest,
            current,
            total,
            phase,
        } => Ok(pb::LayerProgress {
            digest,
            current,
            total,
            phase: phase.to_string(),
        }),
        Progress::Status(s) => Err(s),
    }
}

/// Runs `job` in its own task (it goes on if the client goes away, as a
/// Docker pull does) and streams its progress, then its outcome.
fn stream_job<T, R, F>(
    job: impl FnOnce(crate::images::ProgressTx) -> F,
    event: fn(Result<pb::LayerProgress, String>) -> T,
    done: fn(R) -> T,
) -> EventStream<T>
where
    T: Send + 'static,
    R: Send + 'static,
    F: std::future::Future<Output = Result<R, Error>> + Send + 'static,
{
    let (ptx, prx) = tokio::sync::mpsc::unbounded_channel();
    let (otx, orx) = tokio::sync::oneshot::channel();
    let fut = job(ptx);
    tokio::spawn(
        async move {
            let _ = otx.send(fut.await);
        }
        .instrument(tracing::Span::current()),
    );
    let progress = UnboundedReceiverStream::new(prx).map(move |p| Ok(event(layer_progress(p))));
    let outcome = futures::stream::once(async move {
        match orx.await {
            Ok(Ok(r)) => Ok(done(r)),
            Ok(Err(e)) => Err(Status::from(e)),
            Err(_) => Err(Status::internal("the job ended without an outcome")),
        }
    });
    Box::pin(progress.chain(outcome))
}

#[tonic::async_trait]
impl ImageService for GrpcImages {
    type PullStream = EventStream<pb::PullProgress>;
    type PushStream = EventStream<pb::PushProgress>;

    async fn pull(
        &self,
        req: Request<pb::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let reference = req.into_inner().reference;
        crate::reference::parse(&reference)?;
        let store = self.store.clone();
        Ok(Response::new(stream_job(
            move |tx| async move { store.pull(&reference, tx).await },
            |e| pb::PullProgress {
                event: Some(match e {
                    Ok(l) => pb::pull_progress::Event::Layer(l),
                    Err(s) => pb::pull_progress::Event::Status(s),
                }),
            },
            |image| pb::PullProgress {
                event: Some(pb::pull_progress::Event::Done(image)),
            },
        )))
    }

    async fn push(
        &self,
        req: Request<pb::PushRequest>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let reference = req.into_inner().reference;
        crate::reference::parse(&reference)?;
        let store = self.store.clone();
        Ok(Response::new(stream_job(
            move |tx| async move { store.push(&reference, tx).await },
            |e| pb::PushProgress {
                event: Some(match e {
                    Ok(l) => pb::push_progress::Event::Layer(l),
                    Err(s) => pb::push_progress::Event::Status(s),
                }),
            },
            |digest| pb::PushProgress {
                event: Some(pb::push_progress::Event::Digest(digest)),
            },
        )))
    }

    async fn import(
        &self,
        req: Request<Streaming<pb::ImportChunk>>,
    ) -> Result<Response<pb::ImportResponse>, Status> {
        let mut stream = req.into_inner();
        let header = match stream.message().await? {
            Some(pb::ImportChunk {
                part: Some(pb::import_chunk::Part::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "import: the first message must be the header",
                ))
            }
        };
        let data = stream.map(|m| match m {
            Ok(pb::ImportChunk {
                part: Some(pb::import_chunk::Part::Data(d)),
            }) => Ok(d),
            Ok(_) => Err(Error::InvalidArgument(
                "import: expected tarball data after the header".into(),
            )),
            Err(s) => Err(Error::Unavailable(format!(
                "import: upload interrupted: {}",
                s.message()
            ))),
        });
        let image = self
            .store
            .import(
                &header.reference,
                &header.changes,
                &header.message,
                Box::pin(data),
            )
            .await?;
        Ok(Response::new(pb::ImportResponse { image: Some(image) }))
    }

    async fn list_images(
        &self,
        _req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        Ok(Response::new(pb::ListImagesResponse {
            images: self.store.list()?,
        }))
    }

    async fn get_image(
        &self,
        req: Request<pb::GetImageRequest>,
    ) -> Result<Response<pb::Image>, Status> {
        let id = self.store.resolve(&req.into_inner().reference)?;
        Ok(Response::new(self.store.image(&id)?))
    }

    async fn tag_image(
        &self,
        req: Request<pb::TagImageRequest>,
    ) -> Result<Response<pb::TagImageResponse>, Status> {
        let r = req.into_inner();
        self.store.tag(&r.source, &r.target)?;
        Ok(Response::new(pb::TagImageResponse {}))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let r = req.into_inner();
        let (untagged, deleted) = self.store.remove(&r.reference, r.force).await?;
        Ok(Response::new(pb::RemoveImageResponse { untagged, deleted }))
    }

    async fn prepare_rootfs(
        &self,
        req: Request<pb::PrepareRootfsRequest>,
    ) -> Result<Response<pb::PrepareRootfsResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(
            self.store.prepare_rootfs(&r.container_id, &r.image).await?,
        ))
    }

    async fn remove_rootfs(
        &self,
        req: Request<pb::RemoveRootfsRequest>,
    ) -> Result<Response<pb::RemoveRootfsResponse>, Status> {
        self.store
            .remove_rootfs(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(pb::RemoveRootfsResponse {}))
    }

    async fn diff_rootfs(
        &self,
        req: Request<pb::DiffRootfsRequest>,
    ) -> Result<Response<pb::DiffRootfsResponse>, Status> {
        let changes = self
            .store
            .diff_rootfs(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(pb::DiffRootfsResponse { changes }))
    }

    async fn commit_rootfs(
        &self,
        req: Request<pb::CommitRootfsRequest>,
    ) -> Result<Response<pb::Image>, Status> {
        let r = req.into_inner();
        let opts = CommitOptions {
            reference: r.reference,
            message: r.message,
            author: r.author,
            changes: r.changes,
            container_config_json: r.container_config_json,
            created_by: r.created_by,
        };
        Ok(Response::new(
            self.store.commit_rootfs(&r.container_id, opts).await?,
        ))
    }

    type ExportRootfsStream = EventStream<pb::ExportChunk>;

    async fn export_rootfs(
        &self,
        req: Request<pb::ExportRootfsRequest>,
    ) -> Result<Response<Self::ExportRootfsStream>, Status> {
        let rx = self
            .store
            .export_rootfs(&req.into_inner().container_id)
            .await?;
        let chunks = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|c| c.map(|data| pb::ExportChunk { data }).map_err(Status::from));
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn history(
        &self,
        req: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let entries = self.store.history(&req.into_inner().reference)?;
        Ok(Response::new(pb::HistoryResponse { entries }))
    }
}
