//! The Shim gRPC API over a [`Container`]: thin adapters, one span per call
//! (continuing the caller's `traceparent` when the call carries one, else the
//! shim's own trace).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rdock_proto::shim::v1::shim_server::Shim;
use rdock_proto::shim::v1::{
    attach_in, attach_out, AttachIn, AttachOut, ExecIn, ExecOut, KillRequest, KillResponse,
    PauseRequest, PauseResponse, ResizeRequest, ResizeResponse, ResumeRequest, ResumeResponse,
    ShutdownRequest, ShutdownResponse, StartRequest, StartResponse, StateRequest, StateResponse,
    WaitRequest, WaitResponse,
};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::container::Container;
use super::exit::rfc3339;
use super::logfile::Stream as OutStream;
use super::stdio::Event;

type AttachStream = Pin<Box<dyn Stream<Item = Result<AttachOut, Status>> + Send>>;

/// Serves one container.
pub struct ShimService {
    container: Arc<Container>,
    /// The shim's own span: parent of calls that carry no trace context.
    root: tracing::Span,
}

impl ShimService {
    pub fn new(container: Arc<Container>, root: tracing::Span) -> ShimService {
        ShimService { container, root }
    }

    fn span<T>(&self, name: &'static str, req: &Request<T>) -> tracing::Span {
        let span = tracing::info_span!(parent: &self.root, "shim", rpc = name, container = %self.container.id());
        if req.metadata().contains_key("traceparent") {
            let headers = req.metadata().clone().into_headers();
            rdock_common::telemetry::set_parent_from_headers(&span, &headers);
        }
        span
    }
}

fn exit_out(code: i32) -> AttachOut {
    AttachOut {
        output: Some(attach_out::Output::ExitCode(code)),
    }
}

/// Output events as a client stream: chunks, then the exit code, then the
/// end. A client that falls behind is dropped rather than slowing anyone.
fn output_stream(rx: broadcast::Receiver<Event>, id: String) -> AttachStream {
    Box::pin(futures::stream::unfold(Some(rx), move |rx| {
        let id = id.clone();
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(Event::Output(s, data)) => {
                    let out = match s {
                        OutStream::Stdout => attach_out::Output::Stdout(data.to_vec()),
                        OutStream::Stderr => attach_out::Output::Stderr(data.to_vec()),
                    };
                    Some((Ok(AttachOut { output: Some(out) }), Some(rx)))
                }
                Ok(Event::Exit(code)) => Some((Ok(exit_out(code)), None)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(container = %id, missed = n, "attached client too slow; dropped");
                    Some((
                        Err(Status::resource_exhausted(format!(
                            "attach to {id}: client too slow, {n} output chunks dropped"
                        ))),
                        None,
                    ))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        }
    }))
}

/// Feeds a client's stdin messages to the container.
async fn forward_stdin(container: Arc<Container>, mut incoming: Streaming<AttachIn>) {
    while let Some(msg) = incoming.next().await {
        let input = match msg {
            Ok(AttachIn { input: Some(i) }) => i,
            Ok(AttachIn { input: None }) => continue,
            Err(_) => break,
        };
        match input {
            attach_in::Input::Stdin(data) => {
                if let Err(e) = container.write_stdin(&data).await {
                    tracing::debug!(error = %e, "stdin from an attached client dropped");
                }
            }
            attach_in::Input::CloseStdin(true) => container.close_stdin().await,
            attach_in::Input::CloseStdin(false) => {}
            attach_in::Input::Resize(_) => {}
        }
    }
}

#[tonic::async_trait]
impl Shim for ShimService {
    async fn start(&self, req: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let span = self.span("Start", &req);
        let pid = self.container.start().instrument(span).await?;
        Ok(Response::new(StartResponse { pid }))
    }

    async fn state(&self, req: Request<StateRequest>) -> Result<Response<StateResponse>, Status> {
        let s = self
            .span("State", &req)
            .in_scope(|| self.container.snapshot());
        Ok(Response::new(StateResponse {
            pid: s.pid,
            status: s.status.as_str().to_string(),
            exit_code: s.exited.map(|e| e.code).unwrap_or(0),
            exited_at: s.exited.map(|e| rfc3339(e.at)).unwrap_or_default(),
            started_at: s.started_at.map(rfc3339).unwrap_or_default(),
        }))
    }

    async fn wait(&self, req: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let span = self.span("Wait", &req);
        let e = self.container.wait().instrument(span).await;
        Ok(Response::new(WaitResponse {
            exit_code: e.code,
            exited_at: rfc3339(e.at),
        }))
    }

    async fn kill(&self, req: Request<KillRequest>) -> Result<Response<KillResponse>, Status> {
        let span = self.span("Kill", &req);
        let KillRequest { signal, all } = *req.get_ref();
        async {
            tracing::info!(signal, all, "kill");
            self.container.kill(signal, all).await
        }
        .instrument(span)
        .await?;
        Ok(Response::new(KillResponse {}))
    }

    type AttachStream = AttachStream;

    async fn attach(
        &self,
        req: Request<Streaming<AttachIn>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let span = self.span("Attach", &req);
        let out: AttachStream = match self.container.attach() {
            Ok(exited) => Box::pin(futures::stream::once(
                async move { Ok(exit_out(exited.code)) },
            )),
            Err(rx) => output_stream(rx, self.container.id().to_string()),
        };
        tracing::debug!(parent: &span, "client attached");
        tokio::spawn(forward_stdin(self.container.clone(), req.into_inner()).instrument(span));
        Ok(Response::new(out))
    }

    async fn shutdown(
        &self,
        req: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        let span = self.span("Shutdown", &req);
        self.container.shutdown().instrument(span).await?;
        Ok(Response::new(ShutdownResponse {}))
    }

    async fn resize(&self, _: Request<ResizeRequest>) -> Result<Response<ResizeResponse>, Status> {
        Err(Status::unimplemented("Resize"))
    }

    type ExecStream = Pin<Box<dyn Stream<Item = Result<ExecOut, Status>> + Send>>;

    async fn exec(
        &self,
        _: Request<Streaming<ExecIn>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        Err(Status::unimplemented("Exec"))
    }

    async fn pause(&self, _: Request<PauseRequest>) -> Result<Response<PauseResponse>, Status> {
        Err(Status::unimplemented("Pause"))
    }

    async fn resume(&self, _: Request<ResumeRequest>) -> Result<Response<ResumeResponse>, Status> {
        Err(Status::unimplemented("Resume"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Event {
        Event::Output(OutStream::Stdout, Arc::from(s.as_bytes()))
    }

    #[tokio::test]
    async fn chunks_then_exit_then_end() {
        let (tx, rx) = broadcast::channel(8);
        let mut s = output_stream(rx, "c".into());
        tx.send(ev("a")).unwrap();
        tx.send(Event::Output(OutStream::Stderr, Arc::from(&b"b"[..])))
            .unwrap();
        tx.send(Event::Exit(3)).unwrap();
        tx.send(ev("after")).unwrap();
        let got: Vec<_> = (&mut s).map(|r| r.unwrap().output.unwrap()).collect().await;
        assert_eq!(
            got,
            vec![
                attach_out::Output::Stdout(b"a".to_vec()),
                attach_out::Output::Stderr(b"b".to_vec()),
                attach_out::Output::ExitCode(3),
            ]
        );
    }

    #[tokio::test]
    async fn a_lagging_client_is_dropped_without_blocking_the_sender() {
        let (tx, rx) = broadcast::channel(2);
        let mut s = output_stream(rx, "c".into());
        // The sender never waits, however far behind the client is.
        for i in 0..10 {
            tx.send(ev(&i.to_string())).unwrap();
        }
        let first = s.next().await.unwrap().unwrap_err();
        assert_eq!(first.code(), tonic::Code::ResourceExhausted);
        assert!(s.next().await.is_none(), "the stream ends");
    }
}
