//! A private rdock-netd for root integration tests: its own PKI, state,
//! port, bridge, subnets and nft table, and network namespaces made with
//! `ip netns add`. Dropping the environment kills netd and removes every
//! namespace, bridge and table it made, whatever the test did.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use rdock_common::client::{connect, Conn, Daemon, HostAddr};
use rdock_common::tls::TlsFiles;
use rdock_proto::net::v1 as pb;
use rdock_proto::net::v1::net_service_client::NetServiceClient;

pub type Client = NetServiceClient<Conn>;

/// Whether the tests can run here (root, `ip` and `nft` present). Tests
/// print why and return early otherwise; CI runs as root.
pub fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["ip", "nft", "busybox"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !(root && tools) {
        eprintln!("skipped: needs root and the ip, nft and busybox commands");
    }
    root && tools
}

/// A number unique within this test process, from a random start so
/// parallel test binaries are unlikely to meet.
fn unique() -> u32 {
    static BASE: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = *BASE.get_or_init(rand::random::<u32>);
    base.wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst))
}

pub fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"))
}

#[track_caller]
pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub tag: String,
    pub bridge: String,
    /// 10.199.N.0/24
    pub subnet: String,
    /// 10.198.M.0/23: room for two user networks.
    pub pool: String,
    pub table: String,
    pub port: u16,
    pub extra_args: Vec<String>,
    child: Option<Child>,
    netns: Vec<String>,
}

impl Env {
    pub fn new() -> Env {
        let u = unique();
        let tag = format!("{:04x}", u & 0xffff);
        let n = u & 0xff;
        let dir = tempfile::tempdir().expect("temp dir");
        rdock_common::pki::init(&dir.path().join("pki"), &[]).expect("pki init");
        Env {
            bridge: format!("rdkt{tag}"),
            subnet: format!("10.199.{n}.0/24"),
            pool: format!("10.198.{}.0/23", n & 0xfe),
            table: format!("rdock_t{tag}"),
            tag,
            port: free_port(),
            extra_args: vec!["--dns-upstream".into(), "none".into()],
            dir,
            child: None,
            netns: Vec::new(),
        }
    }

    pub fn gateway(&self) -> Ipv4Addr {
        let base: Ipv4Addr = self
            .subnet
            .split('/')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("subnet address");
        Ipv4Addr::from(u32::from(base) + 1)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("netd.log")).unwrap_or_default()
    }

    /// Starts netd and waits until it answers.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "netd is running");
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("netd.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdock-netd"));
        cmd.env("RDOCK_LOG", "info")
            .args(["--config", "/dev/null", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--pki-dir")
            .arg(d.join("pki"))
            .arg("--state-dir")
            .arg(d.join("state"))
            .arg("--run-dir")
            .arg(d.join("run"))
            .args(["--bridge", &self.bridge, "--subnet", &self.subnet])
            .args(["--pool", &self.pool, "--nft-table", &self.table])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; netd dies with the test.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        self.child = Some(cmd.spawn().expect("start rdock-netd"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                if let Ok(mut c) = self.client_as("runtimed").await {
                    if c.list_networks(pb::ListNetworksRequest {}).await.is_ok() {
                        return;
                    }
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("rdock-netd exited ({st}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "rdock-netd did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: nothing is cleaned up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    pub async fn client_as(&self, who: &str) -> Result<Client, rdock_common::Error> {
        let host = HostAddr {
            host: "127.0.0.1".into(),
            base_port: self.port - 2,
        };
        let tls = TlsFiles::in_dir(&self.dir.path().join("pki"), who);
        Ok(NetServiceClient::new(
            connect(&host, Daemon::Netd, &tls).await?,
        ))
    }

    /// The runtime daemon's view.
    pub async fn client(&self) -> Client {
        self.client_as("runtimed")
            .await
            .expect("connect as runtimed")
    }

    pub async fn admin(&self) -> Client {
        self.client_as("admin").await.expect("connect as admin")
    }

    /// A new network namespace (`ip netns add`), removed on drop.
    pub fn netns(&mut self, what: &str) -> PathBuf {
        let name = format!("rdkt{}-{what}", self.tag);
        run_ok("ip", &["netns", "add", &name]);
        self.netns.push(name.clone());
        PathBuf::from(format!("/run/netns/{name}"))
    }

    pub fn netns_name(path: &Path) -> String {
        path.file_name()
            .expect("netns path has a name")
            .to_string_lossy()
            .into_owned()
    }

    pub fn remove_netns(&mut self, path: &Path) {
        let name = Self::netns_name(path);
        let _ = run("ip", &["netns", "del", &name]);
        self.netns.retain(|n| *n != name);
    }

    /// Host-side interfaces enslaved to `bridge`.
    pub fn ports_of(bridge: &str) -> Vec<String> {
        let out = run("ip", &["-o", "link", "show", "master", bridge]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|s| s.trim().split('@').next().unwrap_or("").to_string())
            .collect()
    }

    pub fn link_exists(name: &str) -> bool {
        run("ip", &["link", "show", name]).status.success()
    }

    /// The table as nft lists it, or None.
    pub fn nft_table(&self) -> Option<String> {
        let out = run("nft", &["list", "table", "ip", &self.table]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The endpoint chains in the table.
    pub fn ep_chains(&self) -> Vec<String> {
        self.nft_table()
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("chain ep_"))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    }

    /// Pings `ip` once from inside `netns`.
    pub fn ping(netns: &Path, ip: &str) -> bool {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &Self::netns_name(netns),
                "busybox",
                "ping",
                "-c1",
                "-W1",
                ip,
            ],
        )
        .status
        .success()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill9();
        for n in std::mem::take(&mut self.netns) {
            let _ = run("ip", &["netns", "del", &n]);
        }
        // User networks' bridges: rdk-<8 hex>, found from netd's records
        // would need netd; look for bridges addressed in our pool instead.
        let out = run("ip", &["-o", "-4", "addr", "show"]);
        let prefix = self.pool.split('.').take(2).collect::<Vec<_>>().join(".");
        let third: u32 = self
            .pool
            .split('.')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() > 3 && w[1].starts_with("rdk-") {
                let addr = w[3];
                let ours = [third, third + 1]
                    .iter()
                    .any(|t| addr.starts_with(&format!("{prefix}.{t}.")));
                if ours {
                    let _ = run("ip", &["link", "del", w[1]]);
                }
            }
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
        let _ = run("nft", &["delete", "table", "ip", &self.table]);
    }
}

/// Runs `f` on a thread inside the namespace at `netns`.
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = File::open(netns).expect("open netns");
    std::thread::spawn(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// A TCP server inside a namespace that answers every connection with
/// `reply`; stops when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(netns: &Path, port: u16, reply: &'static str) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = in_netns(netns, move || {
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind in netns");
            l.set_nonblocking(true).expect("nonblocking");
            let _ = tx.send(());
            while !flag.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server in netns did not start");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects to `addr` and reads what the server says (empty on failure).
pub fn fetch(addr: (&str, u16)) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(
        &format!("{}:{}", addr.0, addr.1).parse().expect("address"),
        Duration::from_secs(3),
    ) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

pub fn attach_req(id: &str, netns: &Path, ports: Vec<pb::PortMapping>) -> pb::AttachRequest {
    pb::AttachRequest {
        container_id: id.into(),
        netns_path: netns.display().to_string(),
        network: String::new(),
        ports,
        name: id.into(),
        aliases: vec![],
    }
}

/// Attach, which must succeed; the endpoint it made.
pub async fn attached(c: &mut Client, req: pb::AttachRequest) -> pb::Endpoint {
    let what = format!("attach {}", req.container_id);
    c.attach(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .into_inner()
        .endpoint
        .unwrap_or_else(|| panic!("{what}: no endpoint"))
}

pub fn tcp(host_ip: &str, host_port: u16, container_port: u32) -> pb::PortMapping {
    pb::PortMapping {
        host_ip: host_ip.into(),
        host_port: u32::from(host_port),
        container_port,
        protocol: "tcp".into(),
    }
}
