//! A private rdock host: a fresh PKI, three daemons on three consecutive
//! loopback ports with their own state and run directories and their own
//! cgroup parent, and a CLI wired to them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdock_common::client::{connect, Conn, Daemon, HostAddr};
use rdock_common::tls::TlsFiles;
use rdock_proto::image::v1::image_service_client::ImageServiceClient;
use tempfile::TempDir;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::cgroups::CgroupParent;
use crate::procs::{self, Output, Running};
use crate::state::{ImagedState, RuntimedState};
use crate::{bins, mounts, ports};

pub(crate) const DAEMONS: [Daemon; 3] = [Daemon::Imaged, Daemon::Runtimed, Daemon::Netd];
const HEALTHY_WITHIN: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long one CLI command may take before the test fails.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

fn binary_name(d: Daemon) -> String {
    format!("rdock-{}", d.name())
}

/// Options for an [`Env`] before it starts.
#[derive(Default)]
pub struct EnvBuilder {
    env: Vec<(String, String)>,
    busybox: bool,
}

impl EnvBuilder {
    /// Exports the daemons' and the CLI's traces to an OTLP collector
    /// (`http://127.0.0.1:PORT`), in batches sent every 100 ms.
    pub fn otlp(mut self, endpoint: &str) -> Self {
        self.env
            .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.into()));
        self.env
            .push(("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()));
        self
    }

    /// Imports the busybox test image as `busybox:latest` once the daemons
    /// are up (see [`Env::import_busybox`]).
    pub fn busybox(mut self) -> Self {
        self.busybox = true;
        self
    }

    /// Starts the daemons and waits until each answers health over mTLS.
    #[track_caller]
    pub fn start(self) -> Env {
        rdock_common::tls::install_crypto_provider();
        let root = tempfile::Builder::new()
            .prefix("rdock-e2e-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let path = root
            .path()
            .canonicalize()
            .unwrap_or_else(|e| panic!("canonicalize {}: {e}", root.path().display()));
        let pki = path.join("pki");
        rdock_common::pki::init(&pki, &[])
            .unwrap_or_else(|e| panic!("pki init in {}: {e}", pki.display()));
        let home = path.join("home");
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("create {}: {e}", home.display()));
        let mut env = Env {
            path,
            pki,
            base_port: ports::free_ports(3),
            extra_env: self.env,
            cgroup: CgroupParent::unique(),
            net: NetSettings::unique(),
            busybox_id: OnceLock::new(),
            children: DAEMONS.iter().map(|_| None).collect(),
            torn_down: false,
            _root: root,
        };
        for d in DAEMONS {
            env.spawn(d);
        }
        for d in DAEMONS {
            env.wait_healthy(d);
        }
        if self.busybox {
            env.import_busybox();
        }
        env
    }
}

/// A running rdock host for one test. Dropping it stops the daemons and
/// fails the test if they left a mount or a process behind.
pub struct Env {
    path: PathBuf,
    pki: PathBuf,
    base_port: u16,
    extra_env: Vec<(String, String)>,
    cgroup: CgroupParent,
    net: NetSettings,
    busybox_id: OnceLock<String>,
    children: Vec<Option<Child>>,
    /// Set by [`Env::shutdown`]: `drop` has nothing left to do.
    torn_down: bool,
    // Last, so the directory is removed after the leak checks in `drop`.
    _root: TempDir,
}

impl Env {
    /// An environment with default options; see [`EnvBuilder`].
    #[track_caller]
    pub fn new() -> Env {
        EnvBuilder::default().start()
    }

    pub fn builder() -> EnvBuilder {
        EnvBuilder::default()
    }

    /// An environment with the busybox test image imported as `busybox`.
    #[track_caller]
    pub fn with_busybox() -> Env {
        EnvBuilder::default().busybox().start()
    }

    /// The temp root everything of this environment lives under.
    pub fn root(&self) -> &Path {
        &self.path
    }

    pub fn pki_dir(&self) -> &Path {
        &self.pki
    }

    /// `127.0.0.1:BASE`, the host address the CLI is given.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.base_port)
    }

    pub fn host_addr(&self) -> HostAddr {
        HostAddr {
            host: "127.0.0.1".into(),
            base_port: self.base_port,
        }
    }

    pub fn port(&self, d: Daemon) -> u16 {
        self.host_addr().port(d)
    }

    pub fn state_dir(&self, d: Daemon) -> PathBuf {
        self.path.join(d.name()).join("state")
    }

    pub fn run_dir(&self, d: Daemon) -> PathBuf {
        self.path.join(d.name()).join("run")
    }

    pub fn log_path(&self, d: Daemon) -> PathBuf {
        self.path.join(format!("{}.log", binary_name(d)))
    }

    /// What the daemon wrote to stderr so far (all its runs).
    pub fn log(&self, d: Daemon) -> String {
        std::fs::read_to_string(self.log_path(d)).unwrap_or_default()
    }

    /// The image daemon's state directory, for checks of what is on disk.
    pub fn imaged_state(&self) -> ImagedState {
        ImagedState {
            dir: self.state_dir(Daemon::Imaged),
        }
    }

    /// The runtime daemon's state and run directories.
    pub fn runtimed_state(&self) -> RuntimedState {
        RuntimedState {
            state: self.state_dir(Daemon::Runtimed),
            run: self.run_dir(Daemon::Runtimed),
        }
    }

    /// The cgroup parent the runtime daemon puts this environment's
    /// containers under.
    pub fn cgroup_parent(&self) -> &CgroupParent {
        &self.cgroup
    }

    /// Imports the busybox rootfs (see [`crate::busybox_rootfs_tar`]) as
    /// `busybox:latest` with `CMD ["sh"]`, once per environment; returns the
    /// image id.
    #[track_caller]
    pub fn import_busybox(&self) -> String {
        if let Some(id) = self.busybox_id.get() {
            return id.clone();
        }
        let tar = self.write_file("busybox.tar", &crate::busybox_rootfs_tar());
        let out = self.cli(&[
            "import",
            &tar.to_string_lossy(),
            "busybox:latest",
            "--change",
            r#"CMD ["sh"]"#,
        ]);
        let id = out.ok().trim().to_string();
        assert!(
            id.starts_with("sha256:"),
            "`import` must print the image id:\n{out}"
        );
        self.busybox_id.get_or_init(|| id).clone()
    }

    /// The TLS files of identity `name` in this environment's PKI.
    pub fn tls(&self, name: &str) -> TlsFiles {
        TlsFiles::in_dir(&self.pki, name)
    }

    /// Writes `bytes` to `<root>/files/<name>` and returns the path.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = self.path.join("files");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    fn base_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("RDOCK_") || k.starts_with("OTEL_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("HOME", self.path.join("home"));
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn daemon_command(&self, d: Daemon) -> Command {
        let mut cmd = self.base_command(&bins::bin(&binary_name(d)));
        cmd.env("RDOCK_LOG", "info")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port(d)))
            .arg("--pki-dir")
            .arg(&self.pki)
            .arg("--state-dir")
            .arg(self.state_dir(d))
            .arg("--run-dir")
            .arg(self.run_dir(d))
            .args(["--log-format", "text"]);
        if d == Daemon::Runtimed {
            cmd.arg("--imaged")
                .arg(format!("127.0.0.1:{}", self.port(Daemon::Imaged)))
                .arg("--netd")
                .arg(format!("127.0.0.1:{}", self.port(Daemon::Netd)))
                .arg("--cgroup-parent")
                .arg(&self.cgroup.name);
        }
        if d == Daemon::Netd {
            cmd.args(self.net.flags());
        }
        cmd
    }

    /// The network settings this environment's netd runs with.
    pub fn net(&self) -> &NetSettings {
        &self.net
    }

    fn slot(d: Daemon) -> usize {
        DAEMONS.iter().position(|x| *x == d).unwrap_or(0)
    }

    fn spawn(&mut self, d: Daemon) {
        let i = Self::slot(d);
        if self.children[i].is_some() {
            panic!("{} is already running", binary_name(d));
        }
        for dir in [self.state_dir(d), self.run_dir(d)] {
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        let log = self.log_path(d);
        let mut file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let _ = writeln!(file, "==== harness: starting {} ====", binary_name(d));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("dup {}: {e}", log.display()));
        let mut cmd = self.daemon_command(d);
        let child = procs::die_with_parent(&mut cmd)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        self.children[i] = Some(child);
    }

    /// Waits until daemon `d` answers the gRPC health check with SERVING
    /// over mutual TLS (admin certificate); fails the test after 20 s or
    /// when the daemon exits first.
    #[track_caller]
    fn wait_healthy(&mut self, d: Daemon) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        let host = self.host_addr();
        let tls = self.tls("admin");
        loop {
            let i = Self::slot(d);
            let Some(child) = self.children[i].as_mut() else {
                panic!("{} is not running", binary_name(d));
            };
            if let Ok(Some(status)) = child.try_wait() {
                self.children[i] = None;
                panic!(
                    "{} exited during start-up ({status}); its log:\n{}",
                    binary_name(d),
                    self.log(d)
                );
            }
            let last = match crate::block_on(health_check(&host, d, &tls)) {
                Ok(ServingStatus::Serving) => return,
                Ok(other) => format!("health status {other:?}"),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                panic!(
                    "{} did not answer health over mTLS within {HEALTHY_WITHIN:?} (last: {last}); its log:\n{}",
                    binary_name(d),
                    self.log(d)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts daemon `d` again with the same directories and port, and waits
    /// until it is healthy.
    #[track_caller]
    pub fn start(&mut self, d: Daemon) {
        self.spawn(d);
        self.wait_healthy(d);
    }

    /// SIGKILLs daemon `d` and reaps it.
    pub fn kill(&mut self, d: Daemon) {
        if let Some(mut child) = self.children[Self::slot(d)].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs daemon `d` and waits up to 10 s (then SIGKILLs it); returns
    /// its exit status and whether SIGTERM alone stopped it.
    pub fn terminate(&mut self, d: Daemon) -> Option<(ExitStatus, bool)> {
        let mut child = self.children[Self::slot(d)].take()?;
        Some(procs::terminate(&mut child, STOP_GRACE))
    }

    /// SIGTERM, then start again.
    #[track_caller]
    pub fn restart(&mut self, d: Daemon) {
        self.terminate(d);
        self.start(d);
    }

    /// The process id of daemon `d`, when running.
    pub fn pid(&self, d: Daemon) -> Option<u32> {
        self.children[Self::slot(d)].as_ref().map(Child::id)
    }

    fn cli_command(&self, ca: &Path, cert: &Path, key: &Path, args: &[&str]) -> Command {
        let mut cmd = self.base_command(&bins::bin("rdockctl"));
        cmd.arg("-H")
            .arg(self.host())
            .arg("--tlscacert")
            .arg(ca)
            .arg("--tlscert")
            .arg(cert)
            .arg("--tlskey")
            .arg(key)
            .args(args);
        cmd
    }

    fn cli_command_as(&self, name: &str, args: &[&str]) -> Command {
        let tls = self.tls(name);
        self.cli_command(&tls.ca, &tls.cert, &tls.key, args)
    }

    /// Runs `rdockctl -H <this host> <admin cert flags> ARGS`.
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as("admin", args)
    }

    /// Like [`Env::cli`], but a command that hangs is killed after 30 s and
    /// returned as the error instead of failing the test (for teardown).
    pub fn try_cli(&self, args: &[&str]) -> Result<Output, Output> {
        procs::run_within(
            &mut self.cli_command_as("admin", args),
            Duration::from_secs(30),
        )
    }

    /// Like [`Env::cli`] with the certificate of identity `name`.
    #[track_caller]
    pub fn cli_as(&self, name: &str, args: &[&str]) -> Output {
        procs::run(&mut self.cli_command_as(name, args), CLI_TIMEOUT)
    }

    /// Like [`Env::cli`] with explicit TLS files (e.g. from another CA).
    #[track_caller]
    pub fn cli_with_tls(&self, tls: &TlsFiles, args: &[&str]) -> Output {
        procs::run(
            &mut self.cli_command(&tls.ca, &tls.cert, &tls.key, args),
            CLI_TIMEOUT,
        )
    }

    /// Runs `rdockctl` without `-H` or certificate flags (e.g. `pki init`).
    #[track_caller]
    pub fn cli_bare(&self, args: &[&str]) -> Output {
        let mut cmd = self.base_command(&bins::bin("rdockctl"));
        cmd.args(args);
        procs::run(&mut cmd, CLI_TIMEOUT)
    }

    /// Starts `rdockctl ARGS` (admin) in the background.
    pub fn cli_spawn(&self, args: &[&str]) -> Running {
        Running::start(&mut self.cli_command_as("admin", args))
    }

    /// Starts `rdockctl ARGS` (admin) on a terminal of its own of
    /// `rows`×`cols`, as a user at a terminal would run it.
    pub fn cli_pty(&self, args: &[&str], rows: u16, cols: u16) -> crate::PtySession {
        crate::PtySession::start(&mut self.cli_command_as("admin", args), rows, cols)
    }

    /// Starts `rdockctl ARGS` once per element of `args`, each from its own
    /// thread, all released at the same moment; their outputs in order.
    pub fn cli_all_at_once(&self, args: &[Vec<String>], timeout: Duration) -> Vec<Output> {
        let barrier = std::sync::Barrier::new(args.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = args
                .iter()
                .map(|a| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let a: Vec<&str> = a.iter().map(String::as_str).collect();
                        barrier.wait();
                        self.cli_spawn(&a).wait(timeout)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// `rdockctl images --format json`, parsed.
    #[track_caller]
    pub fn images(&self) -> Vec<ImageRow> {
        let out = self.cli(&["images", "--format", "json"]);
        out.ok()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("`images --format json` line {l:?}: {e}\n{out}"));
                let field = |k: &str| {
                    v.get(k)
                        .and_then(|x| x.as_str())
                        .unwrap_or_else(|| panic!("`images --format json` line without {k}: {l}"))
                        .to_string()
                };
                ImageRow {
                    repository: field("Repository"),
                    tag: field("Tag"),
                    id: field("ID"),
                }
            })
            .collect()
    }

    /// `rdockctl image inspect IMG`, the first element of its JSON array.
    #[track_caller]
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.cli(&["image", "inspect", image]);
        let v: serde_json::Value = serde_json::from_str(out.ok())
            .unwrap_or_else(|e| panic!("`image inspect {image}` is not JSON: {e}\n{out}"));
        match v {
            serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
            other => panic!("`image inspect {image}` is not a one-element array: {other}"),
        }
    }

    /// A gRPC client of the image daemon, with the admin certificate. Call it
    /// inside the runtime that will use it, and let that runtime end before
    /// the `Env` drops (e.g. use it inside [`crate::block_on`]): a connection
    /// whose runtime is blocked never answers the daemon's shutdown, and the
    /// teardown then reports that the daemon did not stop on SIGTERM.
    pub async fn image_client(&self) -> ImageServiceClient<Conn> {
        let conn = connect(&self.host_addr(), Daemon::Imaged, &self.tls("admin"))
            .await
            .unwrap_or_else(|e| panic!("connect to rdock-imaged: {e}"));
        ImageServiceClient::new(conn)
    }

    fn print_logs(&self) {
        for d in DAEMONS {
            let log = self.log(d);
            let tail: Vec<&str> = log.lines().rev().take(300).collect();
            eprintln!(
                "==== {} ({}) ====",
                binary_name(d),
                self.log_path(d).display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }

    /// Tears the environment down now, as dropping it would, and returns
    /// what leaked instead of failing the test (to test the leak checks).
    pub fn shutdown(mut self) -> Vec<String> {
        let problems = self.teardown();
        self.torn_down = true;
        problems
    }

    /// Removes the test's containers, stops the daemons and returns what
    /// leaked.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // Containers outlive the runtime daemon by design: remove them while
        // it runs. Their directories must go with them.
        if self.pid(Daemon::Runtimed).is_some() {
            problems.extend(self.remove_all_containers());
        }
        let mut tracked = Vec::new();
        for d in DAEMONS {
            if let Some(pid) = self.pid(d) {
                tracked.extend(
                    procs::descendants(pid as i32)
                        .into_iter()
                        .map(|p| (p, procs::cmdline(p))),
                );
            }
        }
        for d in DAEMONS {
            match self.terminate(d) {
                Some((_, false)) => problems.push(format!(
                    "{} did not exit within {STOP_GRACE:?} of SIGTERM",
                    binary_name(d)
                )),
                Some((status, true)) if !status.success() => problems.push(format!(
                    "{} did not stop cleanly on SIGTERM: {status}",
                    binary_name(d)
                )),
                _ => {}
            }
        }
        // Give children of the daemons a moment to go with them. Shims are
        // found by their command lines: they run in their own sessions and
        // are nobody's children after a daemon restart.
        let deadline = Instant::now() + Duration::from_secs(2);
        let root = self.path.to_string_lossy().into_owned();
        let leftovers = loop {
            let mut left: Vec<(i32, String)> = tracked
                .iter()
                .filter(|(p, _)| procs::alive(*p))
                .cloned()
                .collect();
            for p in procs::processes_mentioning(&root) {
                if !left.iter().any(|(q, _)| *q == p.0) {
                    left.push(p);
                }
            }
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for (pid, cmdline) in leftovers {
            procs::kill_hard(pid);
            let what = if cmdline.contains("rdock-shim") {
                "shim"
            } else {
                "process"
            };
            problems.push(format!("{what} left running: {pid} {cmdline}"));
        }
        for m in mounts::unmount_all_under(&self.path) {
            problems.push(format!("mount left behind: {}", m.display()));
        }
        problems.extend(self.network_leftovers());
        // What is left now is the containers' own: their processes (in
        // their cgroups), runc state, cgroups, directories, namespaces.
        problems.extend(self.container_leftovers());
        self.runtimed_state().runc_delete_all();
        for d in self.cgroup.remove_all() {
            problems.push(format!("cannot remove cgroup {}", d.display()));
        }
        problems
    }
}

/// A private network setup per environment, so tests run side by side:
/// bridge, subnets and nft table of its own.
#[derive(Debug, Clone)]
pub struct NetSettings {
    pub bridge: String,
    pub subnet: String,
    pub pool: String,
    pub table: String,
}

impl NetSettings {
    fn unique() -> NetSettings {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        // 10.160-191.x.0/24 for the default network and a /22 pool at
        // 10.192-223.x.0/22; a per-process counter keeps parallel tests of
        // one binary apart.
        let slot = (std::process::id().wrapping_mul(7) + n) % (32 * 64);
        let (a, b) = (160 + slot / 64, (slot % 64) * 4);
        NetSettings {
            bridge: format!("rdkt{tag}"),
            subnet: format!("10.{a}.{b}.0/24"),
            pool: format!("10.{}.{b}.0/22", a + 32),
            table: format!("rdock_t{tag}"),
        }
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--bridge".into(),
            self.bridge.clone(),
            "--subnet".into(),
            self.subnet.clone(),
            "--pool".into(),
            self.pool.clone(),
            "--nft-table".into(),
            self.table.clone(),
            "--dns-upstream".into(),
            "none".into(),
        ]
    }
}

impl Env {
    /// After the daemons stopped: a bridge or nft table of this
    /// environment still there is a leak (they go with their networks),
    /// and netd's cleanup removes them so the next run starts clean.
    fn network_leftovers(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let run = |prog: &str, args: &[&str]| {
            Command::new(prog)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        // The default bridge stays while netd lives (like docker0); the
        // containers' veths must be gone with them.
        let links = run("ip", &["-o", "link", "show"]);
        for l in links.lines() {
            if l.contains(&format!("master {}", self.net.bridge)) {
                problems.push(format!("veth left on the bridge: {l}"));
            }
        }
        // Then remove the bridges and table so the next run starts clean.
        let cleanup = Command::new(bins::bin("rdock-netd"))
            .args(self.net.flags())
            .arg("--pki-dir")
            .arg(&self.pki)
            .arg("--state-dir")
            .arg(self.state_dir(Daemon::Netd))
            .arg("--run-dir")
            .arg(self.run_dir(Daemon::Netd))
            .arg("--cleanup")
            .output();
        if let Ok(o) = &cleanup {
            if !o.status.success() {
                problems.push(format!(
                    "rdock-netd --cleanup failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
        problems
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        let failing = std::thread::panicking();
        let problems = self.teardown();
        if failing || !problems.is_empty() {
            self.print_logs();
        }
        if problems.is_empty() {
            return;
        }
        let report = format!(
            "environment teardown found leaks:\n  {}",
            problems.join("\n  ")
        );
        if failing {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}

/// One row of `rdockctl images --format json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    pub id: String,
}

impl ImageRow {
    /// Whether this row's (possibly shortened) ID is a prefix of the full
    /// image id `sha256:<hex>`.
    pub fn is_image(&self, full_id: &str) -> bool {
        let short = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        let full = full_id.strip_prefix("sha256:").unwrap_or(full_id);
        short.len() >= 12 && full.starts_with(short)
    }
}

async fn health_check(host: &HostAddr, d: Daemon, tls: &TlsFiles) -> Result<ServingStatus, String> {
    let call = async {
        let conn = connect(host, d, tls).await.map_err(|e| e.to_string())?;
        let resp = HealthClient::new(conn)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| format!("health check: {s}"))?;
        Ok(ServingStatus::try_from(resp.into_inner().status).unwrap_or(ServingStatus::Unknown))
    };
    tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .map_err(|_| "health check timed out".to_string())?
}
