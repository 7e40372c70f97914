//! The gRPC face of the runtime daemon: thin adapters over [`Runtime`].

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rdock_proto::runtime::v1 as pb;
use rdock_proto::runtime::v1::runtime_service_server::RuntimeService;
use rdock_proto::shim::v1 as shimpb;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::logs::Filter;
use crate::runtime::Runtime;

pub struct GrpcRuntime {
    rt: Arc<Runtime>,
}

impl GrpcRuntime {
    pub fn new(rt: Arc<Runtime>) -> Self {
        GrpcRuntime { rt }
    }
}

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn attach_out(o: shimpb::AttachOut) -> Option<pb::AttachOutput> {
    use pb::attach_output::Output as O;
    use shimpb::attach_out::Output as S;
    let output = match o.output? {
        S::Stdout(b) => O::Stdout(b),
        S::Stderr(b) => O::Stderr(b),
        S::ExitCode(c) => O::ExitCode(c),
    };
    Some(pb::AttachOutput {
        output: Some(output),
    })
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
            runtime: self.rt.cfg.runtime.clone(),
        }))
    }

    async fn create_container(
        &self,
        r: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let c = self.rt.create(r.into_inner()).await?;
        Ok(Response::new(pb::CreateContainerResponse {
            id: c.id,
            warnings: vec![],
        }))
    }

    async fn start_container(
        &self,
        r: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        self.rt.start(&r.into_inner().id).await?;
        Ok(Response::new(pb::StartContainerResponse {}))
    }

    async fn attach(
        &self,
        r: Request<Streaming<pb::AttachInput>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut input = r.into_inner();
        let start = match input.message().await? {
            Some(pb::AttachInput {
                input: Some(pb::attach_input::Input::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "attach: the first message must name the container",
                ))
            }
        };
        let c = self.rt.attachable(&start.id).await?;
        let mut shim = self.rt.shim(&c.id).await?;
        // The client's stream ending without close_stdin is a detach: the
        // shim keeps the container's stdin open for the next attach.
        let want_stdin = start.stdin;
        let stdin = input.filter_map(move |m| {
            let msg = m
                .ok()
                .and_then(|m| m.input)
                .and_then(|i| crate::tty::attach_input(i, want_stdin));
            futures::future::ready(msg)
        });
        let out = shim
            .attach(stdin)
            .await
            .map_err(|s| Status::unavailable(format!("attach: {}", s.message())))?;
        let (want_out, want_err) = (start.stdout || !start.stderr, start.stderr || !start.stdout);
        let stream = out.into_inner().filter_map(move |m| {
            let o = m.ok().and_then(attach_out);
            let keep = match o.as_ref().and_then(|o| o.output.as_ref()) {
                Some(pb::attach_output::Output::Stdout(_)) => want_out,
                Some(pb::attach_output::Output::Stderr(_)) => want_err,
                Some(_) => true,
                None => false,
            };
            futures::future::ready(o.filter(|_| keep).map(Ok))
        });
        // The exit reaches the client once the daemon has recorded it, so
        // that what the client does next (`rm`, `ps`) sees it exited.
        let rt = self.rt.clone();
        let live = self.rt.live(&c.id);
        let seen = *live.exits.borrow();
        let stream = stream.then(move |o| {
            let rt = rt.clone();
            let live = live.clone();
            async move {
                if let Ok(pb::AttachOutput {
                    output: Some(pb::attach_output::Output::ExitCode(_)),
                }) = &o
                {
                    rt.exit_recorded(&live, seen).await;
                }
                o
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn wait(
        &self,
        r: Request<pb::WaitRequest>,
    ) -> Result<Response<pb::WaitResponse>, Status> {
        let r = r.into_inner();
        let exit_code = self.rt.wait(&r.id, r.removed).await?;
        Ok(Response::new(pb::WaitResponse { exit_code }))
    }

    async fn stop_container(
        &self,
        r: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        let r = r.into_inner();
        let timeout = u32::try_from(r.timeout).ok();
        self.rt.stop(&r.id, timeout).await?;
        Ok(Response::new(pb::StopContainerResponse {}))
    }

    async fn kill_container(
        &self,
        r: Request<pb::KillContainerRequest>,
    ) -> Result<Response<pb::KillContainerResponse>, Status> {
        let r = r.into_inner();
        self.rt.kill(&r.id, &r.signal).await?;
        Ok(Response::new(pb::KillContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        let r = r.into_inner();
        self.rt.remove(&r.id, r.force, r.volumes).await?;
        Ok(Response::new(pb::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let all = r.into_inner().all;
        let now = chrono::Utc::now();
        let mut containers: Vec<pb::ContainerSummary> = self
            .rt
            .store
            .all()
            .map_err(Status::from)?
            .iter()
            .filter(|c| all || c.state.status == crate::model::Status::Running)
            .map(|c| crate::inspect::summary(c, now))
            .collect();
        containers.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    async fn inspect_container(
        &self,
        r: Request<pb::InspectContainerRequest>,
    ) -> Result<Response<pb::ContainerInfo>, Status> {
        let c = self.rt.find(&r.into_inner().id)?;
        let v = crate::inspect::inspect(
            &c,
            &self.rt.rootfs(&c.id).display().to_string(),
            &self.rt.log_file(&c.id).display().to_string(),
        );
        Ok(Response::new(pb::ContainerInfo {
            id: c.id,
            json: v.to_string(),
        }))
    }

    async fn logs(
        &self,
        r: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let r = r.into_inner();
        self.rt.find(&r.id)?;
        let filter = Filter {
            stdout: r.stdout || !r.stderr,
            stderr: r.stderr || !r.stdout,
            tail: usize::try_from(r.tail).ok(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let (etx, erx) = tokio::sync::oneshot::channel::<Result<(), Error>>();
        let rt = self.rt.clone();
        tokio::spawn(async move {
            let _ = etx.send(rt.logs(&r.id, filter, r.follow, tx).await);
        });
        let entries = ReceiverStream::new(rx).map(|e| {
            Ok(pb::LogEntry {
                stream: e.stream,
                line: e.log.into_bytes(),
                time: e.time,
            })
        });
        let tail = futures::stream::once(async move {
            match erx.await {
                Ok(Err(e)) => Some(Err(Status::from(e))),
                _ => None,
            }
        })
        .filter_map(|x| async move { x });
        Ok(Response::new(Box::pin(entries.chain(tail))))
    }

    async fn top(&self, r: Request<pb::TopRequest>) -> Result<Response<pb::TopResponse>, Status> {
        Ok(Response::new(self.rt.top(&r.into_inner().id)?))
    }

    async fn resize(
        &self,
        r: Request<pb::ResizeRequest>,
    ) -> Result<Response<pb::ResizeResponse>, Status> {
        let r = r.into_inner();
        self.rt.resize(&r.id, r.size.as_ref()).await?;
        Ok(Response::new(pb::ResizeResponse {}))
    }

    type ExecStream = Pin<Box<dyn Stream<Item = Result<pb::ExecOutput, Status>> + Send>>;

    async fn exec(
        &self,
        r: Request<Streaming<pb::ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let mut input = r.into_inner();
        let start = match input.message().await? {
            Some(pb::ExecInput {
                input: Some(pb::exec_input::Input::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "exec: the first message must name the container and the command",
                ))
            }
        };
        let rest: crate::exec::ClientInput =
            Box::pin(input.filter_map(|m| futures::future::ready(m.ok().and_then(|m| m.input))));
        let (started, events) = self.rt.exec(start, rest).await?;
        let first = futures::stream::once(futures::future::ready(Ok(pb::ExecOutput {
            output: Some(pb::exec_output::Output::Started(started)),
        })));
        let out: Self::ExecStream = match events {
            Some(ev) => Box::pin(first.chain(ev.map(|e| e.map_err(Status::from)))),
            None => Box::pin(first),
        };
        Ok(Response::new(out))
    }

    async fn diff(
        &self,
        r: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        let changes = self.rt.diff(&r.into_inner().id).await?;
        Ok(Response::new(pb::DiffResponse { changes }))
    }

    async fn commit(
        &self,
        r: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let image_id = self.rt.commit(r.into_inner()).await?;
        Ok(Response::new(pb::CommitResponse { image_id }))
    }

    type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::DataChunk, Status>> + Send>>;

    async fn export(
        &self,
        r: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let tar = self.rt.export(&r.into_inner().id).await?;
        Ok(Response::new(Box::pin(tar.map(|chunk| {
            chunk
                .map(|data| pb::DataChunk { data })
                .map_err(Status::from)
        }))))
    }

    async fn stat_path(
        &self,
        r: Request<pb::StatPathRequest>,
    ) -> Result<Response<pb::PathStat>, Status> {
        let r = r.into_inner();
        Ok(Response::new(self.rt.stat_path(&r.id, &r.path).await?))
    }

    type CopyFromStream = Pin<Box<dyn Stream<Item = Result<pb::CopyFromOutput, Status>> + Send>>;

    async fn copy_from(
        &self,
        r: Request<pb::CopyFromRequest>,
    ) -> Result<Response<Self::CopyFromStream>, Status> {
        use pb::copy_from_output::Output;
        let r = r.into_inner();
        let (stat, tar) = self.rt.copy_from(&r.id, &r.path, r.follow_link).await?;
        let first = futures::stream::once(futures::future::ready(Ok(pb::CopyFromOutput {
            output: Some(Output::Stat(stat)),
        })));
        let data = tar.map(|chunk| {
            chunk
                .map(|d| pb::CopyFromOutput {
                    output: Some(Output::Data(d)),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(first.chain(data))))
    }

    async fn copy_to(
        &self,
        r: Request<Streaming<pb::CopyToInput>>,
    ) -> Result<Response<pb::CopyToResponse>, Status> {
        use pb::copy_to_input::Input;
        let mut input = r.into_inner();
        let start = match input.message().await? {
            Some(pb::CopyToInput {
                input: Some(Input::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "cp: the first message must name the container and the directory",
                ))
            }
        };
        // A broken stream, or a second start, fails the extraction rather
        // than ending the tar early.
        let data = input.filter_map(|m| {
            futures::future::ready(match m {
                Ok(pb::CopyToInput {
                    input: Some(Input::Data(d)),
                }) => Some(Ok(d)),
                Ok(pb::CopyToInput {
                    input: Some(Input::Start(_)),
                }) => Some(Err(std::io::Error::other("cp: the copy was started twice"))),
                Ok(pb::CopyToInput { input: None }) => None,
                Err(s) => Some(Err(std::io::Error::other(format!(
                    "cp: the client's stream broke: {}",
                    s.message()
                )))),
            })
        });
        self.rt.copy_to(start, data).await?;
        Ok(Response::new(pb::CopyToResponse {}))
    }

    async fn connect_network(
        &self,
        r: Request<pb::ConnectNetworkRequest>,
    ) -> Result<Response<pb::ConnectNetworkResponse>, Status> {
        let r = r.into_inner();
        self.rt
            .connect_network(&r.id, &r.network, r.aliases)
            .await?;
        Ok(Response::new(pb::ConnectNetworkResponse {}))
    }

    async fn disconnect_network(
        &self,
        r: Request<pb::DisconnectNetworkRequest>,
    ) -> Result<Response<pb::DisconnectNetworkResponse>, Status> {
        let r = r.into_inner();
        self.rt
            .disconnect_network(&r.id, &r.network, r.force)
            .await?;
        Ok(Response::new(pb::DisconnectNetworkResponse {}))
    }

    async fn create_volume(
        &self,
        r: Request<pb::CreateVolumeRequest>,
    ) -> Result<Response<pb::Volume>, Status> {
        let r = r.into_inner();
        let v = self
            .rt
            .create_volume(r.name, r.labels.into_iter().collect())
            .await?;
        Ok(Response::new(v))
    }

    async fn list_volumes(
        &self,
        _: Request<pb::ListVolumesRequest>,
    ) -> Result<Response<pb::ListVolumesResponse>, Status> {
        let volumes = self.rt.list_volumes().await?;
        Ok(Response::new(pb::ListVolumesResponse { volumes }))
    }

    async fn inspect_volume(
        &self,
        r: Request<pb::InspectVolumeRequest>,
    ) -> Result<Response<pb::Volume>, Status> {
        Ok(Response::new(
            self.rt.inspect_volume(&r.into_inner().name).await?,
        ))
    }

    async fn remove_volume(
        &self,
        r: Request<pb::RemoveVolumeRequest>,
    ) -> Result<Response<pb::RemoveVolumeResponse>, Status> {
        let r = r.into_inner();
        self.rt.remove_volume(&r.name, r.force).await?;
        Ok(Response::new(pb::RemoveVolumeResponse {}))
    }

    async fn prune_volumes(
        &self,
        r: Request<pb::PruneVolumesRequest>,
    ) -> Result<Response<pb::PruneVolumesResponse>, Status> {
        let (deleted, space_reclaimed) = self.rt.prune_volumes(r.into_inner().all).await?;
        Ok(Response::new(pb::PruneVolumesResponse {
            deleted,
            space_reclaimed,
        }))
    }
}
