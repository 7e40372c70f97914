//! An in-test OTLP trace collector: a plain-HTTP/2 gRPC server on loopback
//! (the test's own, so no TLS) that records every span it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::oneshot;

/// One received span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// The resource's `service.name`.
    pub service: String,
    /// Lowercase hex.
    pub trace_id: String,
    pub name: String,
}

#[derive(Clone, Default)]
struct Sink {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = Vec::new();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| s.spans.iter()) {
                got.push(SpanRecord {
                    service: service.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    name: span.name.clone(),
                });
            }
        }
        if let Ok(mut spans) = self.spans.lock() {
            spans.extend(got);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running collector; stops when dropped.
pub struct Collector {
    addr: SocketAddr,
    sink: Sink,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Serves on `127.0.0.1:<free port>` from its own thread and runtime, so
    /// it keeps receiving while the test blocks on a command.
    pub fn start() -> Collector {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("bind the OTLP collector: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("collector address: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("collector socket: {e}"));
        let sink = Sink::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(sink.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("collector runtime: {e}"));
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("collector listener: {e}"));
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let server = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming);
                // Stop at once, without waiting for clients to hang up: a
                // client on a runtime that is blocked in this drop never will.
                tokio::select! {
                    served = server => {
                        if let Err(e) = served {
                            eprintln!("OTLP collector stopped: {e}");
                        }
                    }
                    _ = stopped => {}
                }
            });
        });
        Collector {
            addr,
            sink,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.sink
            .spans
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Polls until `found` returns `Some` for the spans received so far, or
    /// `timeout` passes.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        found: impl Fn(&[SpanRecord]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = found(&self.spans()) {
                return Some(t);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
