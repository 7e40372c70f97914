#![allow(clippy::unwrap_used)]
use rdock_proto::shim::v1::{KillRequest, ShutdownRequest, StartRequest, WaitRequest};
use rdock_runtimed::shim::{self, LaunchOptions};
use std::time::Duration;

#[tokio::test]
async fn rss() {
    let bin = std::env::var("SHIM_BIN").unwrap();
    let d = std::path::Path::new("/tmp/rss");
    let _ = std::fs::remove_dir_all(d.join("state"));
    let _ = std::fs::remove_dir_all(d.join("runc"));
    let o = LaunchOptions {
        shim_bin: bin.clone().into(),
        id: "rss2".into(),
        bundle: d.join("bundle"),
        state_dir: d.join("state"),
        runtime: "runc".into(),
        runtime_root: d.join("runc"),
        socket: d.join("run/s.sock"),
        log_file: d.join("log/c.log"),
        log_max_size: 1 << 20,
        log_max_files: 2,
        stdin: false,
        traceparent: None,
    };
    let l = shim::launch(&o).await.unwrap();
    let rss = |what: &str| {
        let s = std::fs::read_to_string(format!("/proc/{}/status", l.shim_pid)).unwrap();
        let f: Vec<_> = s
            .lines()
            .filter(|l| {
                l.starts_with("VmRSS") || l.starts_with("RssAnon") || l.starts_with("RssFile")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let p = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", l.shim_pid)).unwrap();
        let pss: Vec<_> = p
            .lines()
            .filter(|l| l.starts_with("Pss:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        eprintln!("RSS {bin} [{what}] {} {}", f.join(" "), pss.join(" "));
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    rss("created, no client");
    let mut c = shim::client::connect(&o.socket).await.unwrap();
    c.start(StartRequest {}).await.unwrap();
    let mut c2 = c.clone();
    let w = tokio::spawn(async move { c2.wait(WaitRequest {}).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    rss("running, client connected, Wait pending");
    c.kill(KillRequest {
        signal: 9,
        all: false,
    })
    .await
    .unwrap();
    w.await.unwrap().unwrap();
    c.shutdown(ShutdownRequest {}).await.unwrap();
}
