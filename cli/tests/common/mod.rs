//! Mock daemons for the CLI's integration tests: an image daemon, a
//! runtime daemon and (with [`start_with_net`]) a network daemon served over
//! mutual TLS with a fresh PKI, and a way to run the real `rdockctl` binary
//! against them.

#![allow(dead_code)] // each test binary uses part of it

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};

use futures::Stream;
use rdock_common::tls::TlsFiles;
use rdock_proto::image::v1::image_service_server::{ImageService, ImageServiceServer};
use rdock_proto::image::v1::*;
use rdock_proto::net::v1::net_service_server::NetServiceServer;
use rdock_proto::runtime::v1::runtime_service_server::RuntimeServiceServer;
use tonic::{Request, Response, Status, Streaming};

mod net;
mod runtime;
mod runtime_more;
#[allow(unused_imports)]
pub use net::{MockNet, BRIDGE_NET_ID};
#[allow(unused_imports)] // mock_daemons uses only the runtime
pub use runtime::{MockContainer, MockRuntime};
#[allow(unused_imports)]
pub use runtime_more::{uid_of, COMMIT_ID};

pub type Events<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub const BB_ID: &str = "sha256:27a71e19c95622dbd4a6e4e3c1e8b9f2a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6";
pub const BB_REF: &str = "docker.io/library/busybox:latest";

#[derive(Default)]
pub struct Seen {
    pub histories: Vec<String>,
    pub pulled: bool,
    pub traceparent: Vec<String>,
    pub import_header: Option<ImportHeader>,
}

#[derive(Clone, Default)]
pub struct MockImages {
    pub seen: Arc<Mutex<Seen>>,
}

pub fn busybox() -> Image {
    Image {
        id: BB_ID.into(),
        references: vec![BB_REF.into(), "127.0.0.1:5000/test/bb:v1".into()],
        manifest_digest: "sha256:d1d1".into(),
        created: 1_700_000_000,
        size: 4_261_550,
        config_json: r#"{"created":"2023-11-14T22:13:20Z","architecture":"amd64","os":"linux",
            "config":{"Env":["PATH=/bin"],"Cmd":["sh"]},
            "rootfs":{"type":"layers","diff_ids":["sha256:l1"]}}"#
            .into(),
        manifest_json: "{}".into(),
        repo_digests: vec!["docker.io/library/busybox@sha256:d1d1".into()],
        architecture: "amd64".into(),
        os: "linux".into(),
    }
}

fn layer(digest: &str, phase: &str, current: u64, total: u64) -> LayerProgress {
    LayerProgress {
        digest: digest.into(),
        current,
        total,
        phase: phase.into(),
    }
}

impl MockImages {
    fn note_trace<T>(&self, req: &Request<T>) {
        if let Some(tp) = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
        {
            self.seen.lock().unwrap().traceparent.push(tp.to_string());
        }
    }
}

#[tonic::async_trait]
impl ImageService for MockImages {
    type PullStream = Events<PullProgress>;
    type PushStream = Events<PushProgress>;

    async fn pull(&self, req: Request<PullRequest>) -> Result<Response<Self::PullStream>, Status> {
        self.note_trace(&req);
        let r = req.into_inner().reference;
        if r != "busybox" {
            return Err(Status::not_found(format!("pull {r}: manifest unknown")));
        }
        self.seen.lock().unwrap().pulled = true;
        let l = "sha256:a1b2c3d4e5f6a7b8c9d0";
        let ev = |e| Ok(PullProgress { event: Some(e) });
        use pull_progress::Event;
        let events = vec![
            ev(Event::Status("latest: Pulling from library/busybox".into())),
            ev(Event::Layer(layer(l, "waiting", 0, 0))),
            ev(Event::Layer(layer(l, "downloading", 0, 3_400_000))),
            ev(Event::Layer(layer(l, "downloading", 1_200_000, 3_400_000))),
            ev(Event::Layer(layer(l, "downloading", 3_400_000, 3_400_000))),
            ev(Event::Layer(layer(l, "verifying", 3_400_000, 3_400_000))),
            ev(Event::Layer(layer(l, "extracting", 0, 3_400_000))),
            ev(Event::Layer(layer(l, "complete", 3_400_000, 3_400_000))),
            ev(Event::Done(busybox())),
        ];
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }

    async fn push(&self, req: Request<PushRequest>) -> Result<Response<Self::PushStream>, Status> {
        let _ = req;
        let ev = |e| Ok(PushProgress { event: Some(e) });
        use push_progress::Event;
        let events = vec![
            ev(Event::Layer(layer(
                "sha256:a1b2c3d4e5f6ff",
                "waiting",
                0,
                0,
            ))),
            ev(Event::Layer(layer(
                "sha256:a1b2c3d4e5f6ff",
                "uploading",
                10,
                100,
            ))),
            ev(Event::Layer(layer(
                "sha256:a1b2c3d4e5f6ff",
                "complete",
                100,
                100,
            ))),
            ev(Event::Digest("sha256:feed".into())),
        ];
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }

    async fn import(
        &self,
        req: Request<Streaming<ImportChunk>>,
    ) -> Result<Response<ImportResponse>, Status> {
        let mut stream = req.into_inner();
        let Some(ImportChunk {
            part: Some(import_chunk::Part::Header(h)),
        }) = stream.message().await?
        else {
            return Err(Status::invalid_argument("first message must be the header"));
        };
        self.seen.lock().unwrap().import_header = Some(h);
        let (mut bytes, mut chunks) = (0u64, 0u64);
        while let Some(c) = stream.message().await? {
            match c.part {
                Some(import_chunk::Part::Data(d)) => {
                    if d.len() > 1 << 20 {
                        return Err(Status::invalid_argument("chunk too big"));
                    }
                    bytes += d.len() as u64;
                    chunks += 1;
                }
                _ => return Err(Status::invalid_argument("header twice")),
            }
        }
        Ok(Response::new(ImportResponse {
            image: Some(Image {
                id: format!("sha256:{bytes:032x}{chunks:032x}"),
                ..Default::default()
            }),
        }))
    }

    async fn list_images(
        &self,
        _req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let untagged = Image {
            id: "sha256:0123456789abcdef0000".into(),
            size: 512,
            ..Default::default()
        };
        Ok(Response::new(ListImagesResponse {
            images: vec![busybox(), untagged],
        }))
    }

    async fn get_image(&self, req: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        let r = req.into_inner().reference;
        let pulled = self.seen.lock().unwrap().pulled;
        if pulled && (r == "busybox" || r == BB_REF || BB_ID.starts_with(&r)) {
            Ok(Response::new(busybox()))
        } else {
            Err(Status::not_found(format!("no such image: {r}")))
        }
    }

    async fn tag_image(
        &self,
        req: Request<TagImageRequest>,
    ) -> Result<Response<TagImageResponse>, Status> {
        let r = req.into_inner();
        if r.source != "busybox" {
            return Err(Status::not_found(format!("no such image: {}", r.source)));
        }
        Ok(Response::new(TagImageResponse {}))
    }

    async fn remove_image(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let r = req.into_inner().reference;
        if r != "busybox" {
            return Err(Status::not_found(format!("no such image: {r}")));
        }
        Ok(Response::new(RemoveImageResponse {
            untagged: vec![BB_REF.into()],
            deleted: vec![BB_ID.into()],
        }))
    }

    async fn prepare_rootfs(
        &self,
        _req: Request<PrepareRootfsRequest>,
    ) -> Result<Response<PrepareRootfsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn remove_rootfs(
        &self,
        _req: Request<RemoveRootfsRequest>,
    ) -> Result<Response<RemoveRootfsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn diff_rootfs(
        &self,
        _: Request<DiffRootfsRequest>,
    ) -> Result<Response<DiffRootfsResponse>, Status> {
        Err(Status::unimplemented("diff_rootfs"))
    }

    async fn commit_rootfs(
        &self,
        _: Request<CommitRootfsRequest>,
    ) -> Result<Response<Image>, Status> {
        Err(Status::unimplemented("commit_rootfs"))
    }

    type ExportRootfsStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<ExportChunk, Status>> + Send>>;

    async fn export_rootfs(
        &self,
        _: Request<ExportRootfsRequest>,
    ) -> Result<Response<Self::ExportRootfsStream>, Status> {
        Err(Status::unimplemented("export_rootfs"))
    }

    async fn history(
        &self,
        req: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let r = req.into_inner().reference;
        self.seen.lock().unwrap().histories.push(r.clone());
        if r != "busybox" {
            return Err(Status::not_found(format!("no such image: {r}")));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let entry = |id: &str, created: i64, by: &str, size: i64, comment: &str| HistoryEntry {
            id: id.into(),
            created,
            created_by: by.into(),
            size,
            comment: comment.into(),
            empty_layer: size == 0,
            author: String::new(),
        };
        Ok(Response::new(HistoryResponse {
            entries: vec![
                entry(
                    BB_ID,
                    now - 3 * 3600,
                    "rdockctl commit -m tweak\tweb",
                    2048,
                    "tweak",
                ),
                entry(
                    "<missing>",
                    now - 2 * 86_400,
                    "/bin/sh -c #(nop)  CMD [\"sh\"]",
                    0,
                    "",
                ),
                entry(
                    "<missing>",
                    now - 2 * 86_400,
                    "/bin/sh -c #(nop) ADD file:9b2f5e7c1a3d4b6e8f0a2c4e6b8d0f1a3c5e7b9d in / ",
                    4_261_550,
                    "",
                ),
            ],
        }))
    }
}

/// Three consecutive free ports (imaged, runtimed, netd), bound.
fn free_base_port() -> (u16, StdListener, StdListener, StdListener) {
    for _ in 0..200 {
        let Ok(first) = StdListener::bind("127.0.0.1:0") else {
            continue;
        };
        let base = first.local_addr().unwrap().port();
        if base > 65000 {
            continue;
        }
        let (Ok(second), Ok(third)) = (
            StdListener::bind(("127.0.0.1", base + 1)),
            StdListener::bind(("127.0.0.1", base + 2)),
        ) else {
            continue;
        };
        return (base, first, second, third);
    }
    panic!("no three consecutive free ports");
}

fn serve_on(
    listener: StdListener,
    tls: &TlsFiles,
    router: impl FnOnce(tonic::transport::Server) -> tonic::transport::server::Router,
) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let server = tonic::transport::Server::builder()
        .tls_config(tls.server_config().unwrap())
        .unwrap();
    let router = router(server);
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router.serve_with_incoming(incoming).await;
    });
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub pki: PathBuf,
    pub base: u16,
    pub images: MockImages,
    pub runtime: MockRuntime,
    pub net: MockNet,
}

/// The image and runtime daemons; netd is left down.
pub async fn start() -> Env {
    start_daemons(false).await
}

/// All three daemons.
pub async fn start_with_net() -> Env {
    start_daemons(true).await
}

async fn start_daemons(with_net: bool) -> Env {
    rdock_common::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    rdock_common::pki::init(&pki, &[]).unwrap();
    let (base, img_l, rt_l, net_l) = free_base_port();
    let images = MockImages::default();
    let runtime = MockRuntime::default();
    runtime.state.lock().unwrap().more.fs_root = Some(dir.path().join("containers"));
    let net = MockNet::default();

    let (_, health) = tonic_health::server::health_reporter();
    let svc = ImageServiceServer::new(images.clone());
    let h = health.clone();
    serve_on(img_l, &TlsFiles::in_dir(&pki, "imaged"), move |mut s| {
        s.add_service(h).add_service(svc)
    });
    let rt = runtime.clone();
    let h = health.clone();
    serve_on(rt_l, &TlsFiles::in_dir(&pki, "runtimed"), move |mut s| {
        s.add_service(h).add_service(RuntimeServiceServer::new(rt))
    });
    if with_net {
        let n = net.clone();
        serve_on(net_l, &TlsFiles::in_dir(&pki, "netd"), move |mut s| {
            s.add_service(health).add_service(NetServiceServer::new(n))
        });
    } else {
        drop(net_l);
    }
    Env {
        dir,
        pki,
        base,
        images,
        runtime,
        net,
    }
}

impl Env {
    /// The `rdockctl` command against this environment's daemons.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_on(&format!("127.0.0.1:{}", self.base), args)
    }

    /// The `rdockctl` command against `host`, with this environment's PKI.
    pub fn command_on(&self, host: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rdockctl"));
        cmd.args(["-H", host])
            .env_remove("RDOCK_HOST")
            .env_remove("RDOCK_CERT_PATH")
            .env_remove("RDOCK_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("HOME", self.dir.path())
            .env("RDOCK_CERT_PATH", &self.pki)
            .args(args);
        cmd
    }

    pub async fn run(&self, args: &[&str], stdin: Option<&Path>, env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        match stdin {
            Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
            None => cmd.stdin(std::process::Stdio::null()),
        };
        cmd.output().await.unwrap()
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
