//! Mutual TLS and authorization: who the daemons refuse, and how.
//!
//! gRPC calls run in `block_on`, on a runtime of their own that is gone (and
//! its connections closed) before the environment is torn down: a daemon
//! draining on SIGTERM waits for its clients to hang up.

use rdock_common::tls::TlsFiles;
use rdock_proto::image::v1::image_service_client::ImageServiceClient;
use rdock_proto::image::v1::ListImagesRequest;
use rdock_tests::{block_on, busybox_rootfs_tar, Daemon, Env};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `ListImages` on the image daemon over a channel with `tls`; the error
/// when the connection or the call fails.
async fn list_images_with(env: &Env, tls: ClientTlsConfig) -> Result<usize, tonic::Status> {
    let url = format!("https://127.0.0.1:{}", env.port(Daemon::Imaged));
    let channel = Channel::from_shared(url)
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .tls_config(tls)
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e:?}")))?;
    let resp = ImageServiceClient::new(channel)
        .list_images(ListImagesRequest {})
        .await?;
    Ok(resp.into_inner().images.len())
}

fn trusting_ca(env: &Env) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&env.tls("admin").ca)))
        .domain_name("127.0.0.1")
}

fn with_identity(cfg: ClientTlsConfig, tls: &TlsFiles) -> ClientTlsConfig {
    cfg.identity(Identity::from_pem(read(&tls.cert), read(&tls.key)))
}

#[test]
fn client_without_a_certificate_is_refused() {
    let env = Env::new();
    let refused = block_on(list_images_with(&env, trusting_ca(&env)));
    let status = refused.expect_err("a client without a certificate was served");
    assert!(
        !matches!(
            status.code(),
            tonic::Code::PermissionDenied | tonic::Code::Ok
        ),
        "the TLS handshake must fail, not the call: {status:?}"
    );
    // The same channel with the admin identity works, so it was the missing
    // certificate that was refused.
    let admin = with_identity(trusting_ca(&env), &env.tls("admin"));
    if let Err(status) = block_on(list_images_with(&env, admin)) {
        panic!("the admin certificate was refused too: {status:?}");
    }
}

#[test]
fn certificate_from_another_ca_is_refused() {
    let env = Env::new();
    let other = env.root().join("other-pki");
    env.cli_bare(&["pki", "init", "--dir", &other.to_string_lossy()])
        .ok();
    let foreign = TlsFiles::in_dir(&other, "admin");

    // A client certificate from another CA, trusting the right CA.
    let client = TlsFiles {
        ca: env.tls("admin").ca,
        ..foreign.clone()
    };
    let out = env.cli_with_tls(&client, &["images"]);
    out.error_line();
    let status = block_on(list_images_with(
        &env,
        with_identity(trusting_ca(&env), &foreign),
    ))
    .expect_err("a certificate from another CA was accepted");
    assert_ne!(status.code(), tonic::Code::Ok);

    // The right client certificate, but trusting only the other CA: the
    // client must refuse the daemon.
    let wrong_trust = TlsFiles {
        ca: foreign.ca.clone(),
        ..env.tls("admin")
    };
    env.cli_with_tls(&wrong_trust, &["images"]).error_line();
}

#[test]
fn viewer_can_read_but_not_write() {
    let env = Env::new();
    let tar = env.write_file("busybox.tar", &busybox_rootfs_tar());
    let tar = tar.to_string_lossy().into_owned();
    env.cli(&["import", &tar, "busybox"]).ok();
    let before = env.images();

    let list = env.cli_as("viewer", &["images"]);
    assert!(list.ok().contains("busybox"), "{list}");
    env.cli_as("viewer", &["image", "inspect", "busybox"]).ok();

    for (args, call) in [
        (vec!["rmi", "busybox"], "RemoveImage"),
        (vec!["tag", "busybox", "other:v1"], "TagImage"),
        (vec!["import", tar.as_str(), "other:v2"], "Import"),
    ] {
        let out = env.cli_as("viewer", &args);
        let line = out.error_line().to_lowercase();
        assert!(line.contains("permission denied"), "{out}");
        assert!(
            line.contains("viewer"),
            "the refusal must name the caller:\n{out}"
        );
        assert!(
            line.contains(&call.to_lowercase()),
            "the refusal must name the call {call}:\n{out}"
        );
    }
    assert_eq!(env.images(), before, "a refused call changed the images");

    // A viewer issued later is refused the same way, under its own name.
    env.cli_bare(&[
        "pki",
        "issue",
        "--name",
        "alice",
        "--role",
        "viewer",
        "--dir",
        &env.pki_dir().to_string_lossy(),
    ])
    .ok();
    env.cli_as("alice", &["images"]).ok();
    let out = env.cli_as("alice", &["rmi", "busybox"]);
    let line = out.error_line().to_lowercase();
    assert!(
        line.contains("permission denied") && line.contains("alice"),
        "{out}"
    );
    assert_eq!(env.images(), before);
}

/// The health status of daemon `d` over mTLS with the admin certificate.
async fn health_over_mtls(env: &Env, d: Daemon) -> Result<i32, String> {
    let conn = rdock_common::client::connect(&env.host_addr(), d, &env.tls("admin"))
        .await
        .map_err(|e| e.to_string())?;
    let resp = HealthClient::new(conn)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| format!("{s:?}"))?;
    Ok(resp.into_inner().status)
}

/// Whether daemon `d` answers a health check over plaintext HTTP/2.
async fn answers_plaintext(env: &Env, d: Daemon) -> bool {
    let call = async {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{}", env.port(d)))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| s.to_string())
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(10), call).await,
        Ok(Ok(_))
    )
}

#[test]
fn daemons_answer_health_over_mtls_only() {
    let env = Env::new();
    for d in [Daemon::Imaged, Daemon::Runtimed, Daemon::Netd] {
        let status = block_on(health_over_mtls(&env, d));
        assert_eq!(
            status,
            Ok(ServingStatus::Serving as i32),
            "health of rdock-{} over mTLS",
            d.name()
        );
        assert!(
            !block_on(answers_plaintext(&env, d)),
            "rdock-{} answered health over plaintext",
            d.name()
        );
    }
}
