//! The harness's own pieces, checked without the rdock binaries: the
//! registry and image layouts, the busybox rootfs, the slow proxy and the
//! OTLP collector. When one of these breaks, the e2e tests' failures would
//! be misleading; these say where.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use rdock_tests::{
    busybox_rootfs_tar, chain_ids, sha256_digest, Collector, Entry, Layer, OciLayout, Registry,
    SlowProxy, SpanRecord,
};

#[test]
fn registry_serves_a_pushed_layout_byte_for_byte() {
    let registry = Registry::start();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let layer = Layer::gzip(&[Entry::dir("etc"), Entry::file("etc/hello", "hello\n")]);
    let info = OciLayout::new()
        .layer(layer.clone())
        .push(scratch.path(), &registry, "test/h:v1");
    assert!(registry.has_manifest("test/h", "v1"));
    assert!(!registry.has_manifest("test/h", "v2"));
    assert_eq!(info.layer_digests, [layer.digest()]);
    let stored = std::fs::read(registry.blob_data_path(&layer.digest()))
        .unwrap_or_else(|e| panic!("the registry has no data file for the layer: {e}"));
    assert_eq!(stored, layer.blob);
}

#[test]
fn layers_hold_raw_names_whiteouts_and_links() {
    let tar = rdock_tests::oci::tar_of(&[
        Entry::raw(b"../x", "escaped"),
        Entry::whiteout("etc/gone"),
        Entry::opaque("data/"),
        Entry::symlink("evil", "/tmp"),
        Entry::hardlink("pw", "../../etc/passwd"),
    ]);
    let mut archive = tar::Archive::new(tar.as_slice());
    let names: Vec<(String, String)> = archive
        .entries()
        .unwrap_or_else(|e| panic!("entries: {e}"))
        .map(|e| {
            let e = e.unwrap_or_else(|e| panic!("entry: {e}"));
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            (name, link)
        })
        .collect();
    let want = [
        ("../x", ""),
        ("etc/.wh.gone", ""),
        ("data/.wh..wh..opq", ""),
        ("evil", "/tmp"),
        ("pw", "../../etc/passwd"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(names, want);
    let layer = Layer::gzip(&[Entry::file("a", "1")]);
    let one = chain_ids(std::slice::from_ref(&layer.diff_id));
    assert_eq!(one, std::slice::from_ref(&layer.diff_id));
    let two = chain_ids(&["sha256:a".into(), "sha256:b".into()]);
    assert_eq!(two[1], sha256_digest(b"sha256:a sha256:b"));
}

#[test]
fn busybox_rootfs_has_busybox_its_applets_and_a_page() {
    let tar = busybox_rootfs_tar();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap_or_else(|e| panic!("entries: {e}")) {
        let e = e.unwrap_or_else(|e| panic!("entry: {e}"));
        let name = e
            .path()
            .map(|p| p.to_string_lossy().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned());
        entries.insert(name, (e.header().entry_type(), link, e.size()));
    }
    let busybox_len = std::fs::metadata("/bin/busybox")
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(entries.get("bin/busybox").map(|e| e.2), Some(busybox_len));
    assert_eq!(
        entries.get("bin/sh").and_then(|e| e.1.clone()).as_deref(),
        Some("busybox")
    );
    assert_eq!(
        entries
            .get("bin/httpd")
            .and_then(|e| e.1.clone())
            .as_deref(),
        Some("busybox")
    );
    for f in ["etc/passwd", "etc/group", "var/www/index.html"] {
        assert!(
            entries
                .get(f)
                .is_some_and(|e| e.0 == tar::EntryType::Regular && e.2 > 0),
            "{f}"
        );
    }
    assert!(entries
        .get("tmp")
        .is_some_and(|e| e.0 == tar::EntryType::Directory));
}

#[test]
fn slow_proxy_forwards_everything_at_its_rate() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let target = server
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .to_string();
    let payload: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let sent = payload.clone();
    let serve = std::thread::spawn(move || {
        if let Ok((mut s, _)) = server.accept() {
            let _ = s.write_all(&sent);
        }
    });
    let proxy = SlowProxy::start(&target, 64 * 1024);
    let started = Instant::now();
    let mut got = Vec::new();
    TcpStream::connect(proxy.addr())
        .and_then(|mut s| s.read_to_end(&mut got))
        .unwrap_or_else(|e| panic!("read through the proxy: {e}"));
    let took = started.elapsed();
    let _ = serve.join();
    assert_eq!(got, payload);
    assert_eq!(proxy.bytes_forwarded(), payload.len() as u64);
    assert!(
        took >= Duration::from_millis(800),
        "64 KiB at 64 KiB/s took only {took:?}"
    );
}

#[tokio::test]
async fn collector_records_service_trace_and_span_names() {
    let collector = Collector::start();
    let mut client = TraceServiceClient::connect(collector.endpoint())
        .await
        .unwrap_or_else(|e| panic!("connect to the collector: {e}"));
    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![1; 8],
        name: "pull".into(),
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("rdockctl".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    client
        .export(request)
        .await
        .unwrap_or_else(|s| panic!("export: {s:?}"));
    assert_eq!(
        collector.spans(),
        [SpanRecord {
            service: "rdockctl".into(),
            trace_id: "ab".repeat(16),
            name: "pull".into(),
        }]
    );
}

#[test]
fn env_teardown_fails_the_test_on_a_leaked_mount_or_process() {
    let env = rdock_tests::Env::new();
    let mnt = env.root().join("leaked-mount");
    std::fs::create_dir_all(&mnt).unwrap_or_else(|e| panic!("mkdir: {e}"));
    nix::mount::mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("mount a tmpfs: {e}"));
    // A process that names the environment's root, as a shim would.
    let follow = env.root().join("pki/ca.crt");
    let mut follower = std::process::Command::new("tail")
        .arg("-f")
        .arg(&follow)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn tail: {e}"));

    let teardown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(env)));
    let report = match teardown {
        Ok(()) => panic!("the teardown did not notice the leaks"),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    let _ = follower.wait();
    assert!(
        report.contains("mount left behind") && report.contains("leaked-mount"),
        "{report}"
    );
    assert!(
        report.contains("process left running")
            && report.contains(&format!("tail -f {}", follow.display())),
        "{report}"
    );
    assert!(
        !rdock_tests::mounts::mounts_under(&mnt)
            .iter()
            .any(|m| m == &mnt),
        "the mount is still there"
    );
}
