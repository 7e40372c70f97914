//! Runs the real `rdockctl` binary against in-process mock daemons (mutual
//! TLS with a fresh PKI) and checks its exact output and exit codes.
//! End-to-end tests against the real daemons live in the workspace `tests/`.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};

use futures::Stream;
use rdock_common::tls::TlsFiles;
use rdock_proto::image::v1::image_service_server::{ImageService, ImageServiceServer};
use rdock_proto::image::v1::*;
use rdock_proto::runtime::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use rdock_proto::runtime::v1::{VersionRequest, VersionResponse};
use tonic::{Request, Response, Status, Streaming};

type Events<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

const BB_ID: &str = "sha256:27a71e19c95622dbd4a6e4e3c1e8b9f2a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6";
const BB_REF: &str = "docker.io/library/busybox:latest";

#[derive(Default)]
struct Seen {
    pulled: bool,
    traceparent: Vec<String>,
    import_header: Option<ImportHeader>,
}

#[derive(Clone, Default)]
struct MockImages {
    seen: Arc<Mutex<Seen>>,
}

fn busybox() -> Image {
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
}

struct MockRuntime;

#[tonic::async_trait]
impl RuntimeService for MockRuntime {
    async fn version(
        &self,
        _req: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: "9.9.9".into(),
            runtime: "runc".into(),
        }))
    }
}

/// Three consecutive free ports (imaged, runtimed, netd).
fn free_base_port() -> (u16, StdListener, StdListener) {
    for _ in 0..200 {
        let Ok(first) = StdListener::bind("127.0.0.1:0") else {
            continue;
        };
        let base = first.local_addr().unwrap().port();
        if base > 65000 {
            continue;
        }
        let (Ok(second), Ok(_third)) = (
            StdListener::bind(("127.0.0.1", base + 1)),
            StdListener::bind(("127.0.0.1", base + 2)),
        ) else {
            continue;
        };
        return (base, first, second);
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

struct Env {
    _dir: tempfile::TempDir,
    pki: PathBuf,
    base: u16,
    images: MockImages,
}

async fn start() -> Env {
    rdock_common::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    rdock_common::pki::init(&pki, &[]).unwrap();
    let (base, img_l, rt_l) = free_base_port();
    let images = MockImages::default();

    let (_, health) = tonic_health::server::health_reporter();
    let svc = ImageServiceServer::new(images.clone());
    let h = health.clone();
    serve_on(img_l, &TlsFiles::in_dir(&pki, "imaged"), move |mut s| {
        s.add_service(h).add_service(svc)
    });
    serve_on(rt_l, &TlsFiles::in_dir(&pki, "runtimed"), move |mut s| {
        s.add_service(health)
            .add_service(RuntimeServiceServer::new(MockRuntime))
    });
    // netd is left down on purpose.
    Env {
        _dir: dir,
        pki,
        base,
        images,
    }
}

impl Env {
    async fn run(&self, args: &[&str], stdin: Option<&Path>, env: &[(&str, &str)]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rdockctl"));
        let host = format!("127.0.0.1:{}", self.base);
        cmd.args(["-H", &host])
            .env_remove("RDOCK_HOST")
            .env_remove("RDOCK_CERT_PATH")
            .env_remove("RDOCK_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("HOME", self._dir.path())
            .env("RDOCK_CERT_PATH", &self.pki)
            .args(args);
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_against_mock_daemons() {
    let env = start().await;

    // pull: plain progress lines, one per phase, then Docker's closing lines.
    let out = env.run(&["pull", "busybox"], None, &[]).await;
    assert_eq!(text(&out.stderr), "");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "latest: Pulling from library/busybox\n\
         a1b2c3d4e5f6: Waiting\n\
         a1b2c3d4e5f6: Downloading 0B/3.4MB\n\
         a1b2c3d4e5f6: Verifying Checksum\n\
         a1b2c3d4e5f6: Extracting 0B/3.4MB\n\
         a1b2c3d4e5f6: Pull complete\n\
         Digest: sha256:d1d1\n\
         Status: Downloaded newer image for busybox:latest\n\
         docker.io/library/busybox:latest\n"
    );

    let out = env.run(&["pull", "nope"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: pull nope: manifest unknown\n");

    // push
    let out = env
        .run(&["push", "127.0.0.1:5000/test/bb:v1"], None, &[])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "The push refers to repository [127.0.0.1:5000/test/bb]\n\
         a1b2c3d4e5f6: Waiting\n\
         a1b2c3d4e5f6: Pushing 10B/100B\n\
         a1b2c3d4e5f6: Pushed\n\
         v1: digest: sha256:feed\n"
    );

    // images
    let out = env.run(&["images"], None, &[]).await;
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // CREATED depends on today's date: its column is as wide as its widest cell.
    let size_col = lines[0].find("SIZE").unwrap();
    assert!(
        lines[0].starts_with("REPOSITORY               TAG       IMAGE ID       CREATED   "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("127.0.0.1:5000/test/bb   v1        27a71e19c956   "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("busybox                  latest    27a71e19c956   "),
        "{stdout}"
    );
    assert!(lines[2].contains(" years ago   "), "{stdout}");
    assert_eq!(&lines[2][size_col..], "4.26MB");
    assert!(
        lines[3].starts_with("<none>                   <none>    0123456789ab   N/A   "),
        "{stdout}"
    );
    assert_eq!(&lines[3][size_col..], "512B");
    let out = env.run(&["image", "ls", "-q"], None, &[]).await;
    assert_eq!(text(&out.stdout), "27a71e19c956\n0123456789ab\n");

    // inspect
    let out = env.run(&["inspect", "busybox"], None, &[]).await;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["Id"], BB_ID);
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(v[0]["RootFS"]["Layers"][0], "sha256:l1");
    let out = env
        .run(
            &[
                "image",
                "inspect",
                "-f",
                "{{.Id}} {{.Config.Cmd}} {{json .Config.Env}}",
                "busybox",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stdout), format!("{BB_ID} [sh] [\"PATH=/bin\"]\n"));
    let out = env
        .run(&["inspect", "-f", "{{.Os}}", "busybox", "ghost"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "linux\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such image: ghost\n");
    let out = env
        .run(&["inspect", "-f", "{{.Id", "busybox"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: template parsing error"));

    // tag, rmi
    let out = env.run(&["tag", "busybox", "bb:2"], None, &[]).await;
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    let out = env.run(&["rmi", "ghost", "busybox"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("Untagged: busybox:latest\nDeleted: {BB_ID}\n")
    );
    assert_eq!(text(&out.stderr), "rdockctl: no such image: ghost\n");

    // import from a file and from stdin, in 1 MiB chunks after the header.
    let tar = env._dir.path().join("rootfs.tar");
    std::fs::write(&tar, vec![7u8; (5 << 19) + 3]).unwrap();
    let out = env
        .run(
            &[
                "import",
                tar.to_str().unwrap(),
                "mine:1",
                "--change",
                "CMD [\"sh\"]",
                "-m",
                "hi",
            ],
            None,
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("sha256:{:032x}{:032x}\n", (5u64 << 19) + 3, 3)
    );
    {
        let seen = env.images.seen.lock().unwrap();
        let h = seen.import_header.as_ref().unwrap();
        assert_eq!((h.reference.as_str(), h.message.as_str()), ("mine:1", "hi"));
        assert_eq!(h.changes, ["CMD [\"sh\"]"]);
    }
    let out = env.run(&["import", "-", "mine:2"], Some(&tar), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("sha256:{:032x}{:032x}\n", (5u64 << 19) + 3, 3)
    );
    let out = env
        .run(&["import", "/nonexistent.tar", "x"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: open /nonexistent.tar: "));

    // info: netd is down.
    let out = env.run(&["system", "info"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let b = env.base;
    assert_eq!(
        text(&out.stdout),
        format!(
            "imaged: SERVING (127.0.0.1:{b})\nruntimed: SERVING (127.0.0.1:{})\nnetd: UNREACHABLE (127.0.0.1:{})\n",
            b + 1,
            b + 2
        )
    );
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "rdockctl: cannot reach rdock-netd at 127.0.0.1:{}",
            b + 2
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    // version
    let out = env.run(&["version"], None, &[]).await;
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!(
            "Client:\n Version:  {}\nServer:\n Version:  9.9.9\n Runtime:  runc\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    // A viewer certificate through the flags; a missing key is one line.
    let out = env
        .run(&["--tlskey", "/nonexistent.key", "images"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: tls: read /nonexistent.key: No such file or directory (os error 2)\n"
    );

    // Usage errors are clap's: exit 2.
    let out = env.run(&["rmi"], None, &[]).await;
    assert_eq!(out.status.code(), Some(2));

    // With OTLP configured, the CLI's span context reaches the daemon.
    let out = env
        .run(
            &["pull", "busybox"],
            None,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\nStatus: Image is up to date for busybox:latest\n"),
        "{}",
        text(&out.stdout)
    );
    let seen = env.images.seen.lock().unwrap();
    assert!(
        seen.traceparent
            .iter()
            .any(|t| t.starts_with("00-") && !t.contains("00000000000000000000000000000000")),
        "{:?}",
        seen.traceparent
    );
}

#[tokio::test]
async fn pki_commands() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rdockctl"))
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let p = pki.to_str().unwrap().to_string();
    let out = run(vec![
        "pki".into(),
        "init".into(),
        "--dir".into(),
        p.clone(),
        "--host".into(),
        "node1".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expect: String = ["ca", "imaged", "runtimed", "netd", "admin", "viewer"]
        .iter()
        .map(|n| format!("{p}/{n}.crt\n{p}/{n}.key\n"))
        .collect();
    assert_eq!(text(&out.stdout), expect);

    let out = run(vec!["pki".into(), "init".into(), "--dir".into(), p.clone()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: pki: a CA already exists in "));
    assert_eq!(text(&out.stderr).lines().count(), 1);

    let issue = |name: &str, role: &str| {
        vec![
            "pki".into(),
            "issue".into(),
            "--name".into(),
            name.to_string(),
            "--role".into(),
            role.to_string(),
            "--dir".into(),
            p.clone(),
        ]
    };
    let out = run(issue("alice", "viewer")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{p}/alice.crt\n{p}/alice.key\n"));
    let out = run(issue("bob", "root")).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: unknown role \"root\": expected admin or viewer\n"
    );
    let out = run(issue("../x", "admin")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: pki: invalid certificate name"));
}
