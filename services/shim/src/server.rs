//! The Shim gRPC API over a [`Container`]: thin adapters, one span per call
//! (continuing the caller's `traceparent` when the call carries one, else the
//! shim's own trace).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rdock_proto::shim::v1::shim_server::Shim;
use rdock_proto::shim::v1::{
    attach_in, attach_out, exec_in, exec_out, AttachIn, AttachOut, ExecIn, ExecOut, KillRequest,
    KillResponse, PauseRequest, PauseResponse, ResizeRequest, ResizeResponse, ResumeRequest,
    ResumeResponse, ShutdownRequest, ShutdownResponse, StartRequest, StartResponse, StateRequest,
    StateResponse, WaitRequest, WaitResponse,
};
use tokio::sync::broadcast;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::console::WindowSize;
use super::container::Container;
use super::exec::{ExecEvent, ExecHandle, ExecRequest};
use super::exit::rfc3339;
use super::logfile::Stream as OutStream;
use super::stdio::{Event, ProcessStdio};
use super::Error;

type AttachStream = Pin<Box<dyn Stream<Item = Result<AttachOut, Status>> + Send>>;
type ExecStream = Pin<Box<dyn Stream<Item = Result<ExecOut, Status>> + Send>>;

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
        let span = tracing::info_span!(
            parent: &self.root,
            "shim",
            rpc = name,
            container = %self.container.id(),
            exec_id = tracing::field::Empty
        );
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

fn exec_out(o: exec_out::Output) -> Result<ExecOut, Status> {
    Ok(ExecOut { output: Some(o) })
}

/// Where a client's input goes: the container (Attach) or an exec process.
trait InputTarget: Send + Sync + 'static {
    fn stdio(&self) -> &ProcessStdio;

    fn resize(&self, size: WindowSize) -> Result<(), Error> {
        self.stdio().resize(size)
    }
}

impl InputTarget for Container {
    fn stdio(&self) -> &ProcessStdio {
        Container::stdio(self)
    }

    fn resize(&self, size: WindowSize) -> Result<(), Error> {
        Container::resize(self, size)
    }
}

impl InputTarget for ExecHandle {
    fn stdio(&self) -> &ProcessStdio {
        ExecHandle::stdio(self)
    }
}

/// One message of a client's input stream, Attach's or Exec's alike.
enum ClientInput {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize(rdock_proto::shim::v1::WindowSize),
    /// Nothing to do (an empty message, `close_stdin: false`).
    Nothing,
    /// A message that does not belong here, named for the log.
    Stray(&'static str),
}

fn attach_input(m: AttachIn) -> ClientInput {
    match m.input {
        Some(attach_in::Input::Stdin(data)) => ClientInput::Stdin(data),
        Some(attach_in::Input::CloseStdin(true)) => ClientInput::CloseStdin,
        Some(attach_in::Input::Resize(size)) => ClientInput::Resize(size),
        Some(attach_in::Input::CloseStdin(false)) | None => ClientInput::Nothing,
    }
}

fn exec_input(m: ExecIn) -> ClientInput {
    match m.input {
        Some(exec_in::Input::Stdin(data)) => ClientInput::Stdin(data),
        Some(exec_in::Input::CloseStdin(true)) => ClientInput::CloseStdin,
        Some(exec_in::Input::Resize(size)) => ClientInput::Resize(size),
        Some(exec_in::Input::Start(_)) => ClientInput::Stray("a second ExecStart on one stream"),
        Some(exec_in::Input::CloseStdin(false)) | None => ClientInput::Nothing,
    }
}

/// Feeds a client's input (`who` in the log) to `target` until the
/// client's stream ends or `until` resolves (the process has ended: the
/// target is let go then, whatever the client does). With
/// `close_at_end`, the end of the client's stream closes the process's
/// stdin (it reads EOF, as with Docker): no one can write to it any more.
async fn forward_input<T, M, S>(
    target: Arc<T>,
    mut incoming: S,
    decode: fn(M) -> ClientInput,
    until: impl Future<Output = ()>,
    who: &'static str,
    close_at_end: bool,
) where
    T: InputTarget,
    S: Stream<Item = Result<M, Status>> + Unpin,
{
    tokio::pin!(until);
    loop {
        let msg = tokio::select! {
            m = incoming.next() => m,
            () = &mut until => return,
        };
        let input = match msg {
            Some(Ok(m)) => decode(m),
            Some(Err(_)) | None => break,
        };
        match input {
            ClientInput::Stdin(data) => {
                if let Err(e) = target.stdio().write_stdin(&data).await {
                    tracing::debug!(error = %e, "stdin from {who} dropped");
                }
            }
            ClientInput::CloseStdin => target.stdio().close_stdin().await,
            ClientInput::Resize(size) => {
                if let Err(e) = WindowSize::from_proto(&size).and_then(|s| target.resize(s)) {
                    tracing::debug!(error = %e, "resize from {who} dropped");
                }
            }
            ClientInput::Nothing => {}
            ClientInput::Stray(what) => tracing::debug!("{what} from {who} ignored"),
        }
    }
    if close_at_end {
        target.stdio().close_stdin().await;
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
        // The container's stdin stays open when a client detaches.
        let input = forward_input(
            self.container.clone(),
            req.into_inner(),
            attach_input,
            std::future::pending(),
            "an attached client",
            false,
        );
        tokio::spawn(input.instrument(span));
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

    async fn resize(
        &self,
        req: Request<ResizeRequest>,
    ) -> Result<Response<ResizeResponse>, Status> {
        let span = self.span("Resize", &req);
        let Some(size) = req.get_ref().size.as_ref() else {
            return Err(Status::invalid_argument("resize: no size given"));
        };
        let size = WindowSize::from_proto(size)?;
        span.in_scope(|| {
            tracing::debug!(width = size.width, height = size.height, "resize");
            self.container.resize(size)
        })?;
        Ok(Response::new(ResizeResponse {}))
    }

    type ExecStream = ExecStream;

    async fn exec(
        &self,
        req: Request<Streaming<ExecIn>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let span = self.span("Exec", &req);
        let mut incoming = req.into_inner();
        let start = match incoming.next().await {
            Some(Ok(ExecIn {
                input: Some(exec_in::Input::Start(s)),
            })) => s,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Error::InvalidArgument(
                    "exec: the first message must be ExecStart".into(),
                )
                .into())
            }
        };
        let req = ExecRequest::parse(start)?;
        span.record("exec_id", req.exec_id.as_str());
        let (handle, events) = self
            .container
            .exec(req, span.clone())
            .instrument(span.clone())
            .await
            .inspect_err(|e| tracing::info!(parent: &span, error = %e, "exec refused"))?;
        let pid = handle.pid;
        let ended = {
            let h = handle.clone();
            async move { h.ended().await }
        };
        let input = forward_input(handle, incoming, exec_input, ended, "an exec client", true);
        tokio::spawn(input.instrument(span));
        let out = futures::stream::once(async move { exec_out(exec_out::Output::Pid(pid)) }).chain(
            ReceiverStream::new(events).map(|ev| {
                exec_out(match ev {
                    ExecEvent::Stdout(b) => exec_out::Output::Stdout(b),
                    ExecEvent::Stderr(b) => exec_out::Output::Stderr(b),
                    ExecEvent::Exit(code) => exec_out::Output::ExitCode(code),
                })
            }),
        );
        Ok(Response::new(Box::pin(out)))
    }

    async fn pause(&self, req: Request<PauseRequest>) -> Result<Response<PauseResponse>, Status> {
        let span = self.span("Pause", &req);
        self.container.pause().instrument(span).await?;
        Ok(Response::new(PauseResponse {}))
    }

    async fn resume(
        &self,
        req: Request<ResumeRequest>,
    ) -> Result<Response<ResumeResponse>, Status> {
        let span = self.span("Resume", &req);
        self.container.resume().instrument(span).await?;
        Ok(Response::new(ResumeResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Event {
        Event::Output(OutStream::Stdout, Arc::from(s.as_bytes()))
    }

    /// A process's stdin as a pipe the test reads.
    struct Fake {
        stdio: ProcessStdio,
    }

    impl InputTarget for Fake {
        fn stdio(&self) -> &ProcessStdio {
            &self.stdio
        }
    }

    fn fake() -> (Arc<Fake>, tokio::net::unix::pipe::Receiver) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let input = crate::stdio::Input::pipe(w).unwrap();
        let stdio = ProcessStdio::new(Some(input), None, "exec process 1".into(), "its");
        let r = tokio::net::unix::pipe::Receiver::from_owned_fd(r).unwrap();
        (Arc::new(Fake { stdio }), r)
    }

    fn stdin(data: &[u8]) -> Result<ExecIn, Status> {
        Ok(ExecIn {
            input: Some(exec_in::Input::Stdin(data.to_vec())),
        })
    }

    async fn read_all(r: &mut tokio::net::unix::pipe::Receiver) -> String {
        use tokio::io::AsyncReadExt;
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn input_is_let_go_when_the_process_ends_whatever_the_client_does() {
        let (target, mut r) = fake();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (end, ended) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(forward_input(
            target.clone(),
            ReceiverStream::new(rx),
            exec_input,
            async {
                let _ = ended.await;
            },
            "a test client",
            true,
        ));
        tx.send(stdin(b"one ")).await.unwrap();
        tx.send(Ok(ExecIn {
            input: Some(exec_in::Input::Start(Default::default())),
        }))
        .await
        .unwrap();
        tx.send(stdin(b"two")).await.unwrap();
        let mut buf = [0u8; 7];
        tokio::io::AsyncReadExt::read_exact(&mut r, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf, b"one two");
        // The process ended; the client's stream is still open.
        end.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the forwarder runs on after the end")
            .unwrap();
        assert_eq!(Arc::strong_count(&target), 1, "the process is let go");
        drop(tx);
    }

    #[tokio::test]
    async fn the_end_of_an_exec_clients_input_closes_stdin_and_an_attach_does_not() {
        let (target, mut r) = fake();
        let input = futures::stream::iter([stdin(b"bye")]);
        forward_input(
            target.clone(),
            input,
            exec_input,
            std::future::pending(),
            "a test client",
            true,
        )
        .await;
        // The process is still held here: the EOF is the forwarder's doing.
        assert_eq!(read_all(&mut r).await, "bye", "then EOF");
        assert_eq!(Arc::strong_count(&target), 1);

        let (target, mut r) = fake();
        let input = futures::stream::iter([Ok(AttachIn {
            input: Some(attach_in::Input::Stdin(b"still open".to_vec())),
        })]);
        forward_input(
            target.clone(),
            input,
            attach_input,
            std::future::pending(),
            "a test client",
            false,
        )
        .await;
        target.stdio().write_stdin(b", yes").await.unwrap();
        target.stdio().close_stdin().await;
        assert_eq!(read_all(&mut r).await, "still open, yes");
        let e = target.stdio().write_stdin(b"x").await.unwrap_err();
        assert_eq!(e.to_string(), "exec process 1 has no open stdin");
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
