//! The real `rdock-shim` running real containers under `runc` (root only, as
//! CI runs). Each test builds a busybox bundle in a temp dir with its own
//! runc root, state dir and socket, and tears down whatever it started —
//! shim, runc state, cgroup — even when it fails.

// Test helpers outside #[test] fns: a failed setup should fail the test.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdock_proto::shim::v1::{
    attach_in, attach_out, exec_in, exec_out, AttachIn, AttachOut, ExecIn, ExecOut, ExecStart,
    KillRequest, PauseRequest, ResizeRequest, ResumeRequest, ShutdownRequest, StartRequest,
    StateRequest, WaitRequest, WindowSize,
};
use rdock_shim::{self as shim, ExitRecord, LaunchErrorKind, LaunchOptions};
use serde_json::{json, Value};
use tokio_stream::StreamExt;

const SHIM: &str = env!("CARGO_BIN_EXE_rdock-shim");
const T: Duration = Duration::from_secs(20);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips (loudly) where the test cannot run; CI runs as root with runc.
macro_rules! require_root {
    () => {
        if !is_root() || Command::new("runc").arg("--version").output().is_err() {
            eprintln!("skipped: needs root and runc");
            return;
        }
    };
}

/// One container's private world.
struct Env {
    dir: tempfile::TempDir,
    id: String,
    shim_pid: Cell<Option<u32>>,
}

impl Env {
    /// A bundle running `args`; `pid_ns: false` drops the PID namespace so
    /// the command is not a namespace init (which ignores signals it has no
    /// handler for, SIGTERM included).
    fn new(name: &str, args: &[&str], pid_ns: bool) -> Env {
        let dir = tempfile::Builder::new().prefix("shim-").tempdir().unwrap();
        let id = format!("shimtest-{name}-{}", std::process::id());
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "echo", "sleep", "cat", "true", "tty", "stty", "yes", "head", "touch",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let st = Command::new("runc")
            .args(["spec", "--rootless=false", "--bundle"])
            .arg(&bundle)
            .status()
            .unwrap();
        assert!(st.success(), "runc spec");
        let cfg = bundle.join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        spec["process"]["args"] = json!(args);
        spec["process"]["terminal"] = json!(false);
        // runc's default asks for RLIMIT_NOFILE the host may not grant.
        spec["process"].as_object_mut().unwrap().remove("rlimits");
        spec["root"] = json!({ "path": rootfs, "readonly": false });
        spec["hostname"] = json!("shimtest");
        spec["linux"]["cgroupsPath"] = json!(format!("/rdock-test/{id}"));
        if !pid_ns {
            spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid");
        }
        std::fs::write(&cfg, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        Env {
            dir,
            id,
            shim_pid: Cell::new(None),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Gives the container a terminal (`process.terminal`).
    fn set_terminal(&self) {
        let cfg = self.path("bundle/config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(true);
        std::fs::write(&cfg, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    }

    /// A file in the container's root filesystem.
    fn rootfs_file(&self, p: &str) -> PathBuf {
        self.path("bundle/rootfs").join(p)
    }

    fn runc_root(&self) -> PathBuf {
        self.path("runc")
    }

    fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    fn socket(&self) -> PathBuf {
        self.path("run/shim.sock")
    }

    fn log_file(&self) -> PathBuf {
        self.path("log/container-json.log")
    }

    fn opts(&self, stdin: bool) -> LaunchOptions {
        LaunchOptions {
            shim_bin: SHIM.into(),
            id: self.id.clone(),
            bundle: self.path("bundle"),
            state_dir: self.state_dir(),
            runtime: "runc".into(),
            runtime_root: self.runc_root(),
            socket: self.socket(),
            log_file: self.log_file(),
            log_max_size: 1024 * 1024,
            log_max_files: 2,
            stdin,
            tty: false,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    async fn launch(&self, stdin: bool) -> shim::Launched {
        self.launch_with(&self.opts(stdin)).await
    }

    async fn launch_with(&self, opts: &LaunchOptions) -> shim::Launched {
        let l = shim::launch(opts).await.unwrap();
        self.shim_pid.set(Some(l.shim_pid));
        l
    }

    /// `(stream, log)` of every entry of the container log.
    fn log_entries(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.log_file())
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                assert!(v["time"].as_str().unwrap().ends_with('Z'), "{l}");
                (
                    v["stream"].as_str().unwrap().to_string(),
                    v["log"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn runc_list(&self) -> String {
        let out = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                v.push(e.path().join("rdock-test").join(&self.id));
            }
        }
        v
    }

    /// Processes whose command line names this container.
    fn processes(&self) -> Vec<String> {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.parse::<u32>().is_err() || name == std::process::id().to_string() {
                continue;
            }
            if !alive(name.parse().unwrap()) {
                continue;
            }
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if c.contains(&self.id) {
                    found.push(format!("{name}: {c}"));
                }
            }
        }
        found
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid.get() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["delete", "--force", &self.id])
            .stderr(std::process::Stdio::null())
            .status();
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
            if let Some(p) = d.parent() {
                let _ = std::fs::remove_dir(p); // shared parent: only when empty
            }
        }
    }
}

/// Running (not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

async fn wait_gone(pid: u32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

type Client = rdock_proto::shim::v1::shim_client::ShimClient<tonic::transport::Channel>;

async fn client(env: &Env) -> Client {
    shim::client::connect(&env.socket()).await.unwrap()
}

async fn wait_code(c: &mut Client) -> i32 {
    tokio::time::timeout(T, c.wait(WaitRequest {}))
        .await
        .expect("wait timed out")
        .unwrap()
        .into_inner()
        .exit_code
}

/// Shutdown, then the shim is gone with its socket, and exit.json says `code`.
async fn shutdown_and_check(env: &Env, c: &mut Client, code: i32) {
    c.shutdown(ShutdownRequest {}).await.unwrap();
    let pid = env.shim_pid.get().unwrap();
    assert!(
        wait_gone(pid).await,
        "shim {pid} still running after Shutdown"
    );
    assert!(!env.socket().exists(), "socket left behind");
    let rec = ExitRecord::read(&env.state_dir()).unwrap().unwrap();
    assert_eq!(rec.exit_code, code);
    assert!(rec.exited_at.ends_with('Z'));
    assert_eq!(env.runc_list(), "", "runc state left behind");
    for d in env.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {d:?} left behind");
    }
    assert_no_transient_files(&env.state_dir());
}

/// Sends `signal` to the init, or with `all` to every process.
async fn kill(c: &mut Client, signal: i32, all: bool) {
    c.kill(KillRequest { signal, all }).await.unwrap();
}

/// The container's status, as State reports it.
async fn status(c: &mut Client) -> String {
    c.state(StateRequest {}).await.unwrap().into_inner().status
}

/// A started container of `args` (in a PID namespace, without stdin) and a
/// client of its shim.
async fn running(name: &str, args: &[&str]) -> (Env, Client) {
    let env = Env::new(name, args, true);
    env.launch(false).await;
    let mut c = client(&env).await;
    c.start(StartRequest {}).await.unwrap();
    (env, c)
}

/// Kills every process of the container, which then exits with 137, and
/// checks that the shim leaves and leaves nothing behind.
async fn kill_all_and_check(env: &Env, c: &mut Client) {
    kill(c, 9, true).await;
    assert_eq!(wait_code(c).await, 137);
    shutdown_and_check(env, c, 137).await;
}

/// Sends one input message on an exec's stream.
async fn send_input(tx: &tokio::sync::mpsc::Sender<ExecIn>, input: exec_in::Input) {
    tx.send(ExecIn { input: Some(input) }).await.unwrap();
}

/// No exec spec, pid file or console socket is left in a state dir.
fn assert_no_transient_files(dir: &std::path::Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("exec-") || n.ends_with(".sock"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "files left in {dir:?}");
}

/// An attach whose input the test sends.
struct Attached {
    tx: tokio::sync::mpsc::Sender<AttachIn>,
    out: tonic::Streaming<AttachOut>,
    text: String,
    /// Where the last match ended.
    seen: usize,
    code: Option<i32>,
}

impl Attached {
    async fn new(c: &mut Client) -> Attached {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let out = c
            .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Attached {
            tx,
            out,
            text: String::new(),
            seen: 0,
            code: None,
        }
    }

    async fn send(&self, i: attach_in::Input) {
        self.tx.send(AttachIn { input: Some(i) }).await.unwrap();
    }

    async fn type_line(&self, line: &str) {
        self.send(attach_in::Input::Stdin(format!("{line}\n").into_bytes()))
            .await;
    }

    /// Reads output until `want` appears after the last match, or the
    /// stream ends.
    async fn read_until(&mut self, want: &str) -> bool {
        loop {
            if let Some(i) = self.text[self.seen..].find(want) {
                self.seen += i + want.len();
                return true;
            }
            match tokio::time::timeout(T, self.out.next()).await {
                Err(_) => panic!("no {want:?} within {T:?}; got {:?}", self.text),
                Ok(None) => return false,
                Ok(Some(m)) => match m.unwrap().output {
                    Some(attach_out::Output::Stdout(b)) => {
                        self.text.push_str(&String::from_utf8_lossy(&b))
                    }
                    Some(attach_out::Output::Stderr(b)) => {
                        panic!("stderr on a terminal: {:?}", String::from_utf8_lossy(&b))
                    }
                    Some(attach_out::Output::ExitCode(c)) => self.code = Some(c),
                    None => {}
                },
            }
        }
    }
}

/// An OCI process spec for exec.
fn process(args: &[&str], terminal: bool) -> String {
    json!({
        "args": args,
        "cwd": "/",
        "env": ["PATH=/bin", "TERM=xterm"],
        "terminal": terminal,
        "user": { "uid": 0, "gid": 0 },
    })
    .to_string()
}

/// Starts an exec; its input channel and its output.
async fn exec(
    c: &mut Client,
    exec_id: &str,
    process_json: String,
    stdin: bool,
    size: Option<WindowSize>,
) -> Result<(tokio::sync::mpsc::Sender<ExecIn>, tonic::Streaming<ExecOut>), tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(ExecIn {
        input: Some(exec_in::Input::Start(ExecStart {
            exec_id: exec_id.into(),
            process_json,
            stdin,
            size,
        })),
    })
    .await
    .unwrap();
    let out = c
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, out))
}

/// Everything an exec sent, checked to be the pid first and the exit code
/// last.
#[derive(Debug, Default)]
struct ExecResult {
    pid: u32,
    stdout: String,
    stderr: String,
    code: i32,
}

async fn collect(out: &mut tonic::Streaming<ExecOut>) -> ExecResult {
    let mut r = ExecResult::default();
    let mut first = true;
    let mut ended = false;
    while let Some(m) = tokio::time::timeout(T, out.next()).await.unwrap() {
        assert!(!ended, "output after the exit code");
        let o = m.unwrap().output.unwrap();
        match (first, o) {
            (true, exec_out::Output::Pid(p)) => r.pid = p,
            (true, o) => panic!("first message is not the pid: {o:?}"),
            (false, exec_out::Output::Pid(_)) => panic!("a second pid"),
            (false, exec_out::Output::Stdout(b)) => r.stdout.push_str(&String::from_utf8_lossy(&b)),
            (false, exec_out::Output::Stderr(b)) => r.stderr.push_str(&String::from_utf8_lossy(&b)),
            (false, exec_out::Output::ExitCode(c)) => {
                r.code = c;
                ended = true;
            }
        }
        first = false;
    }
    assert!(ended, "the stream ended without an exit code");
    r
}

#[tokio::test]
async fn echo_hello_is_logged_and_exits_zero() {
    require_root!();
    let env = Env::new("echo", &["echo", "hello"], true);
    let l = env.launch(false).await;
    assert!(l.init_pid > 1);
    assert!(alive(l.shim_pid));
    let mut c = client(&env).await;

    let st = c.state(StateRequest {}).await.unwrap().into_inner();
    assert_eq!(st.status, "created");
    assert_eq!(st.pid, l.init_pid);

    let pid = c.start(StartRequest {}).await.unwrap().into_inner().pid;
    assert_eq!(pid, l.init_pid);
    assert_eq!(wait_code(&mut c).await, 0);
    // Wait answers after the output is drained: the log is complete now.
    assert_eq!(
        env.log_entries(),
        vec![("stdout".to_string(), "hello\n".to_string())]
    );

    let st = c.state(StateRequest {}).await.unwrap().into_inner();
    assert_eq!(st.status, "exited");
    assert_eq!(st.exit_code, 0);
    assert!(!st.started_at.is_empty() && !st.exited_at.is_empty());
    // Killing an exited container is fine.
    kill(&mut c, 9, false).await;
    // Late Attach answers at once.
    let mut out = c
        .attach(tokio_stream::empty::<AttachIn>())
        .await
        .unwrap()
        .into_inner();
    let first = out.next().await.unwrap().unwrap();
    assert_eq!(first.output, Some(attach_out::Output::ExitCode(0)));

    let rec = ExitRecord::read(&env.state_dir()).unwrap().unwrap();
    assert!(!rec.started_at.is_empty());
    let shim_log = std::fs::read_to_string(env.state_dir().join("shim.log")).unwrap();
    assert!(shim_log.contains("container exited"), "{shim_log}");
    // The caller's trace context reaches the shim.
    assert!(
        shim_log.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{shim_log}"
    );
    shutdown_and_check(&env, &mut c, 0).await;
}

#[tokio::test]
async fn attach_before_start_gets_both_streams_then_the_exit_code() {
    require_root!();
    let env = Env::new(
        "streams",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        true,
    );
    env.launch(false).await;
    let mut c = client(&env).await;
    let mut out = c
        .attach(tokio_stream::pending::<AttachIn>())
        .await
        .unwrap()
        .into_inner();
    c.start(StartRequest {}).await.unwrap();

    let (mut stdout, mut stderr, mut code) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = tokio::time::timeout(T, out.next()).await.unwrap() {
        match msg.unwrap().output {
            Some(attach_out::Output::Stdout(b)) => stdout.extend(b),
            Some(attach_out::Output::Stderr(b)) => stderr.extend(b),
            Some(attach_out::Output::ExitCode(c)) => code = Some(c),
            None => {}
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&stderr), "err\n");
    assert_eq!(code, Some(3), "the stream ends with the exit code");
    assert_eq!(wait_code(&mut c).await, 3);

    let mut log = env.log_entries();
    log.sort();
    assert_eq!(
        log,
        vec![
            ("stderr".to_string(), "err\n".to_string()),
            ("stdout".to_string(), "out\n".to_string()),
        ]
    );
    shutdown_and_check(&env, &mut c, 3).await;
}

#[tokio::test]
async fn sigterm_gives_143_and_the_shim_leaves_on_shutdown() {
    require_root!();
    // Not a PID-namespace init, so SIGTERM's default action applies.
    let env = Env::new("term", &["sleep", "100"], false);
    env.launch(false).await;
    let mut c = client(&env).await;
    // Shutdown of a running container is refused.
    c.start(StartRequest {}).await.unwrap();
    let err = c.shutdown(ShutdownRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status(&mut c).await, "running");
    let bad = c
        .kill(KillRequest {
            signal: 1000,
            all: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    kill(&mut c, 15, false).await;
    assert_eq!(wait_code(&mut c).await, 143);
    shutdown_and_check(&env, &mut c, 143).await;
}

#[tokio::test]
async fn kill_all_sigkill_in_a_pid_namespace_gives_137() {
    require_root!();
    let (env, mut c) = running("killall", &["sh", "-c", "sleep 100 & sleep 100"]).await;
    kill_all_and_check(&env, &mut c).await;
    assert_eq!(env.processes(), Vec::<String>::new());
}

#[tokio::test]
async fn shutdown_of_a_created_container_kills_it() {
    require_root!();
    let env = Env::new("created", &["sleep", "100"], true);
    env.launch(false).await;
    let mut c = client(&env).await;
    shutdown_and_check(&env, &mut c, 137).await;
    let rec = ExitRecord::read(&env.state_dir()).unwrap().unwrap();
    assert_eq!(rec.started_at, "", "never started");
    assert_eq!(env.processes(), Vec::<String>::new());
}

#[tokio::test]
async fn lots_of_output_is_drained_before_wait_and_rotated() {
    require_root!();
    let env = Env::new(
        "lots",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done; echo tail >&2",
        ],
        true,
    );
    let mut opts = env.opts(false);
    opts.log_max_size = 256 * 1024;
    opts.log_max_files = 3;
    let l = shim::launch(&opts).await.unwrap();
    env.shim_pid.set(Some(l.shim_pid));
    let mut c = client(&env).await;
    c.start(StartRequest {}).await.unwrap();
    assert_eq!(wait_code(&mut c).await, 0);

    let live = env.log_entries();
    // The last stdout line and the stderr line are in the live file.
    assert!(live.contains(&("stdout".into(), "line-19999\n".into())));
    assert!(live.contains(&("stderr".into(), "tail\n".into())));
    let log = env.log_file();
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "at most 3 files");
    for f in [log.clone(), rotated(1), rotated(2)] {
        assert!(std::fs::metadata(&f).unwrap().len() <= 256 * 1024, "{f:?}");
    }
    // No line is lost or torn across the kept files: they hold a contiguous
    // run ending at the last line.
    let mut lines = Vec::new();
    for f in [rotated(2), rotated(1), log.clone()] {
        for l in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["stream"] == "stdout" {
                lines.push(v["log"].as_str().unwrap().to_string());
            }
        }
    }
    let first: usize = lines[0]
        .trim_end()
        .trim_start_matches("line-")
        .parse()
        .unwrap();
    for (k, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("line-{}\n", first + k));
    }
    assert_eq!(first + lines.len(), 20000);
    shutdown_and_check(&env, &mut c, 0).await;
}

#[tokio::test]
async fn a_second_shim_for_the_same_container_touches_nothing() {
    require_root!();
    let env = Env::new("dup", &["sleep", "100"], true);
    let l = env.launch(false).await;
    let err = shim::launch(&env.opts(false)).await.unwrap_err();
    assert_eq!(err.kind, LaunchErrorKind::Other, "{err}");
    // The first shim and its container are untouched.
    assert!(alive(l.shim_pid) && alive(l.init_pid));
    let mut c = client(&env).await;
    assert_eq!(status(&mut c).await, "created");
    shutdown_and_check(&env, &mut c, 137).await;
}

#[tokio::test]
async fn missing_command_is_not_found_and_leaves_nothing() {
    require_root!();
    let env = Env::new("notfound", &["nosuchcmd"], true);
    let err = shim::launch(&env.opts(false)).await.unwrap_err();
    assert_eq!(err.kind, LaunchErrorKind::NotFound, "{err}");
    assert_eq!(err.exit_code(), 127);
    assert!(err.message.contains("nosuchcmd"), "{err}");
    assert!(
        err.message.starts_with("runc create: ") && !err.message.contains("create failed"),
        "one clear line: {err}"
    );
    assert_eq!(env.runc_list(), "");
    assert!(!env.runc_root().join(&env.id).exists());
    assert!(!env.socket().exists());
    for d in env.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {d:?} left behind");
    }
    assert_eq!(env.processes(), Vec::<String>::new(), "shim or runc left");

    // The same with a terminal: classified alike, no console socket left.
    env.set_terminal();
    let mut opts = env.opts(true);
    opts.tty = true;
    let err = shim::launch(&opts).await.unwrap_err();
    assert_eq!(err.kind, LaunchErrorKind::NotFound, "{err}");
    assert_eq!(env.runc_list(), "");
    assert!(!env.socket().exists());
    assert_no_transient_files(&env.state_dir());
    assert_eq!(env.processes(), Vec::<String>::new(), "shim or runc left");
}

#[tokio::test]
async fn shim_outlives_its_launcher_and_takes_stdin() {
    require_root!();
    let env = Env::new("orphan", &["cat"], true);
    // The launcher is a shell that starts the shim in the background and
    // exits, as a runtime daemon that dies would.
    let report = env.path("report.json");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"out="$1"; shift; "$@" >"$out" 2>/dev/null </dev/null & echo $!"#)
        .arg("launcher")
        .arg(&report)
        .arg(SHIM)
        .args(env.opts(true).to_args())
        .output()
        .unwrap();
    assert!(out.status.success());
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    env.shim_pid.set(Some(pid));
    let mut line = String::new();
    for _ in 0..200 {
        line = std::fs::read_to_string(&report).unwrap_or_default();
        if line.ends_with('\n') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = shim::handshake::Handshake::parse(&line).unwrap();
    assert!(
        matches!(h, shim::handshake::Handshake::Created { .. }),
        "{line}"
    );
    // Its launcher is gone; the shim is not, and it leads its own session.
    assert!(alive(pid));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "session id = own pid");

    let mut c = client(&env).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut out = c
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    c.start(StartRequest {}).await.unwrap();
    let send = |i| AttachIn { input: Some(i) };
    tx.send(send(attach_in::Input::Stdin(b"ping\n".to_vec())))
        .await
        .unwrap();
    tx.send(send(attach_in::Input::CloseStdin(true)))
        .await
        .unwrap();
    let (mut stdout, mut code) = (Vec::new(), None);
    while let Some(msg) = tokio::time::timeout(T, out.next()).await.unwrap() {
        match msg.unwrap().output {
            Some(attach_out::Output::Stdout(b)) => stdout.extend(b),
            Some(attach_out::Output::ExitCode(c)) => code = Some(c),
            _ => {}
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "ping\n");
    assert_eq!(code, Some(0));
    assert_eq!(
        env.log_entries(),
        vec![("stdout".to_string(), "ping\n".to_string())]
    );
    shutdown_and_check(&env, &mut c, 0).await;
}

#[test]
fn flags_parse_into_the_shim() {
    // The binary accepts exactly what launch passes (no root needed).
    let env_dir = tempfile::tempdir().unwrap();
    let opts = LaunchOptions {
        shim_bin: SHIM.into(),
        id: "x".into(),
        bundle: env_dir.path().into(),
        state_dir: env_dir.path().into(),
        runtime: "runc".into(),
        runtime_root: env_dir.path().into(),
        socket: env_dir.path().join("s"),
        log_file: env_dir.path().join("l"),
        log_max_size: 1,
        log_max_files: 1,
        stdin: false,
        tty: true,
        traceparent: None,
    };
    let help = Command::new(SHIM).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for a in opts.to_args() {
        let a = a.to_string_lossy().to_string();
        if a.starts_with("--") {
            assert!(help.contains(&a), "--help lacks {a}");
        }
    }
}

#[tokio::test]
async fn tty_container_speaks_through_its_pty_and_survives_a_detach() {
    require_root!();
    let env = Env::new("tty", &["sh"], true);
    env.set_terminal();
    // A state dir too deep for a socket address: the console socket is
    // reached through /proc.
    let mut opts = env.opts(true);
    opts.tty = true;
    opts.state_dir = env.path(&format!("{}/{}", "d".repeat(60), "e".repeat(60)));
    env.launch_with(&opts).await;
    let mut c = client(&env).await;
    let mut a = Attached::new(&mut c).await;
    c.start(StartRequest {}).await.unwrap();

    a.type_line("tty").await;
    assert!(a.read_until("/dev/pts/0").await, "{}", a.text);
    // Detach: the stream ends without close_stdin; everything stays open.
    drop(a);

    c.resize(ResizeRequest {
        size: Some(WindowSize {
            width: 123,
            height: 45,
        }),
    })
    .await
    .unwrap();
    let mut a = Attached::new(&mut c).await;
    a.type_line("stty size").await;
    assert!(a.read_until("45 123").await, "{}", a.text);
    // Resize through the attach stream.
    a.send(attach_in::Input::Resize(WindowSize {
        width: 90,
        height: 20,
    }))
    .await;
    a.type_line("stty size; echo $((6*7))").await;
    assert!(a.read_until("20 90").await, "{}", a.text);
    assert!(a.read_until("42\r\n").await, "{}", a.text);
    let bad = c
        .resize(ResizeRequest {
            size: Some(WindowSize {
                width: 1 << 17,
                height: 1,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    a.type_line("exit 5").await;
    assert!(!a.read_until("never printed").await);
    assert_eq!(a.code, Some(5));
    assert_eq!(wait_code(&mut c).await, 5);
    // The terminal's output is logged as stdout.
    let log = env.log_entries();
    assert!(log.iter().all(|(s, _)| s == "stdout"), "{log:?}");
    let text: String = log.iter().map(|(_, l)| l.as_str()).collect();
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("45 123"), "{text}");

    c.shutdown(ShutdownRequest {}).await.unwrap();
    assert!(wait_gone(env.shim_pid.get().unwrap()).await);
    assert_eq!(
        ExitRecord::read(&opts.state_dir)
            .unwrap()
            .unwrap()
            .exit_code,
        5
    );
    assert_no_transient_files(&opts.state_dir);
    assert_eq!(env.runc_list(), "");
    assert_eq!(env.processes(), Vec::<String>::new());
}

#[tokio::test]
async fn tty_output_without_stdin_ends_with_the_exit() {
    require_root!();
    let env = Env::new("ttyout", &["sh", "-c", "tty; stty size; exit 2"], true);
    env.set_terminal();
    let mut opts = env.opts(false);
    opts.tty = true;
    env.launch_with(&opts).await;
    let mut c = client(&env).await;
    let mut a = Attached::new(&mut c).await;
    c.start(StartRequest {}).await.unwrap();
    assert!(!a.read_until("never printed").await);
    assert!(a.text.contains("/dev/pts/0"), "{}", a.text);
    assert_eq!(a.code, Some(2));
    assert_eq!(wait_code(&mut c).await, 2);
    shutdown_and_check(&env, &mut c, 2).await;
}

#[tokio::test]
async fn exec_with_pipes_streams_output_and_the_exit_code() {
    require_root!();
    let env = Env::new("execpipes", &["sleep", "100"], true);
    env.launch(false).await;
    let mut c = client(&env).await;
    // Not before the container runs.
    let e = exec(&mut c, "early", process(&["true"], false), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    c.start(StartRequest {}).await.unwrap();

    let script = "echo out; echo err >&2; read x; echo in:$x; exit 3";
    let (tx, mut out) = exec(
        &mut c,
        "e1",
        process(&["sh", "-c", script], false),
        true,
        None,
    )
    .await
    .unwrap();
    send_input(&tx, exec_in::Input::Stdin(b"hello\n".to_vec())).await;
    send_input(&tx, exec_in::Input::CloseStdin(true)).await;
    let r = collect(&mut out).await;
    assert!(r.pid > 1);
    assert_eq!(r.stdout, "out\nin:hello\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.code, 3);
    // The exec's output is not the container's.
    assert_eq!(env.log_entries(), Vec::<(String, String)>::new());
    let shim_log = std::fs::read_to_string(env.state_dir().join("shim.log")).unwrap();
    assert!(
        shim_log.contains("exec exited") && shim_log.contains("exec_id=e1"),
        "{shim_log}"
    );

    // Stdin not kept: the process reads EOF at once.
    let (_tx, mut out) = exec(&mut c, "e2", process(&["cat"], false), false, None)
        .await
        .unwrap();
    let r = collect(&mut out).await;
    assert_eq!((r.stdout.as_str(), r.code), ("", 0));
    // The same id may be used again once its process is gone.
    let (_tx, mut out) = exec(&mut c, "e1", process(&["true"], false), false, None)
        .await
        .unwrap();
    assert_eq!(collect(&mut out).await.code, 0);
    // A bad request.
    let e = exec(&mut c, "../x", process(&["true"], false), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(status(&mut c).await, "running", "the container runs on");
    kill_all_and_check(&env, &mut c).await;
}

#[tokio::test]
async fn exec_failures_are_classified_and_leave_nothing() {
    require_root!();
    let (env, mut c) = running("execfail", &["sleep", "100"]).await;
    std::fs::write(env.rootfs_file("notexec"), "x").unwrap();

    let e = exec(&mut c, "nf", process(&["nosuch"], false), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert_eq!(
        e.message(),
        r#"exec: "nosuch": executable file not found in $PATH"#
    );
    let e = exec(&mut c, "nf2", process(&["/bin/nosuch"], true), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    let e = exec(&mut c, "perm", process(&["/notexec"], false), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("permission denied"), "{e:?}");
    assert!(!e.message().contains('\n'), "one line: {e:?}");
    assert_no_transient_files(&env.state_dir());

    kill(&mut c, 9, true).await;
    assert_eq!(wait_code(&mut c).await, 137);
    let e = exec(&mut c, "late", process(&["true"], false), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    shutdown_and_check(&env, &mut c, 137).await;
    assert_eq!(env.processes(), Vec::<String>::new());
}

#[tokio::test]
async fn exec_with_a_terminal() {
    require_root!();
    let (env, mut c) = running("exectty", &["sleep", "100"]).await;

    // The initial size holds from the first instruction on.
    let size = Some(WindowSize {
        width: 120,
        height: 40,
    });
    let (_tx, mut out) = exec(
        &mut c,
        "t1",
        process(&["sh", "-c", "tty; stty size; exit 4"], true),
        false,
        size,
    )
    .await
    .unwrap();
    let r = collect(&mut out).await;
    assert!(r.stdout.contains("/dev/pts/"), "{r:?}");
    assert!(r.stdout.contains("40 120\r\n"), "{r:?}");
    assert_eq!(r.stderr, "");
    assert_eq!(r.code, 4);

    // An interactive shell: typed input, a resize, then exit.
    let (tx, mut out) = exec(&mut c, "t2", process(&["sh"], true), true, size)
        .await
        .unwrap();
    let resize = WindowSize {
        width: 77,
        height: 11,
    };
    send_input(&tx, exec_in::Input::Resize(resize)).await;
    send_input(&tx, exec_in::Input::Stdin(b"stty size; exit 6\n".to_vec())).await;
    let r = collect(&mut out).await;
    assert!(r.stdout.contains("11 77\r\n"), "{r:?}");
    assert_eq!(r.code, 6);
    assert_eq!(env.log_entries(), Vec::<(String, String)>::new());

    kill_all_and_check(&env, &mut c).await;
}

#[tokio::test]
async fn a_dropped_exec_keeps_running_and_its_output_is_drained() {
    require_root!();
    let (env, mut c) = running("execdrop", &["sleep", "100"]).await;

    // Far more output than a pipe holds, then a mark, then a long sleep.
    let script = "yes | head -c 4000000; touch /drained; sleep 100";
    let (tx, mut out) = exec(
        &mut c,
        "d1",
        process(&["sh", "-c", script], false),
        false,
        None,
    )
    .await
    .unwrap();
    let first = out.next().await.unwrap().unwrap().output.unwrap();
    let exec_out::Output::Pid(pid) = first else {
        panic!("first message: {first:?}")
    };
    drop(out);
    drop(tx);
    let drained = env.rootfs_file("drained");
    let mut waited = 0;
    while !drained.exists() {
        assert!(waited < 400, "the process is blocked on its output");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(alive(pid), "the exec process runs on");
    assert_eq!(status(&mut c).await, "running");
    // It ends with the container.
    kill(&mut c, 9, true).await;
    assert_eq!(wait_code(&mut c).await, 137);
    assert!(
        wait_gone(pid).await,
        "exec process {pid} outlived its container"
    );
    shutdown_and_check(&env, &mut c, 137).await;
    assert_eq!(env.processes(), Vec::<String>::new());
}

#[tokio::test]
async fn pause_freezes_every_process_and_resume_thaws_them() {
    require_root!();
    let env = Env::new(
        "pause",
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count; sleep 0.02; done",
        ],
        true,
    );
    std::os::unix::fs::symlink("busybox", env.rootfs_file("bin/mv")).unwrap();
    env.launch(false).await;
    let mut c = client(&env).await;
    let e = c.pause(PauseRequest {}).await.unwrap_err();
    assert_eq!(
        e.code(),
        tonic::Code::FailedPrecondition,
        "not before start"
    );
    c.start(StartRequest {}).await.unwrap();

    let count = || -> u64 {
        std::fs::read_to_string(env.rootfs_file("count"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut n = 0;
    while count() < 5 {
        assert!(n < 400, "the counter does not start");
        tokio::time::sleep(Duration::from_millis(25)).await;
        n += 1;
    }

    c.pause(PauseRequest {}).await.unwrap();
    let st = c.state(StateRequest {}).await.unwrap().into_inner();
    assert_eq!(st.status, "paused");
    let frozen = count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(), frozen, "the counter advanced while paused");
    let e = c.pause(PauseRequest {}).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = exec(&mut c, "x", process(&["true"], false), false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("paused"), "{e:?}");
    // A signal other than SIGKILL waits for the thaw: still paused.
    kill(&mut c, 0, true).await;
    assert_eq!(status(&mut c).await, "paused");
    let frozen = count();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(), frozen, "kill --all thawed the container");

    c.resume(ResumeRequest {}).await.unwrap();
    assert_eq!(status(&mut c).await, "running");
    let mut n = 0;
    while count() <= frozen {
        assert!(n < 400, "the counter does not advance after resume");
        tokio::time::sleep(Duration::from_millis(25)).await;
        n += 1;
    }
    let e = c.resume(ResumeRequest {}).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    // An exec works again.
    let (_tx, mut out) = exec(
        &mut c,
        "after",
        process(&["echo", "ok"], false),
        false,
        None,
    )
    .await
    .unwrap();
    assert_eq!(collect(&mut out).await.stdout, "ok\n");

    // SIGKILL to a paused container kills it, as with Docker.
    c.pause(PauseRequest {}).await.unwrap();
    kill(&mut c, 9, false).await;
    assert_eq!(wait_code(&mut c).await, 137);
    shutdown_and_check(&env, &mut c, 137).await;
    assert_eq!(env.processes(), Vec::<String>::new());
}

/// The pty masters the shim holds.
fn pty_masters(shim: u32) -> usize {
    std::fs::read_dir(format!("/proc/{shim}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .map(|l| l.to_string_lossy().contains("ptmx"))
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test]
async fn an_exec_lets_go_of_its_terminal_when_it_ends() {
    require_root!();
    let (env, mut c) = running("execend", &["sleep", "100"]).await;
    let shim = env.shim_pid.get().unwrap();
    assert_eq!(pty_masters(shim), 0);
    let (tx, mut out) = exec(&mut c, "t", process(&["sh"], true), true, None)
        .await
        .unwrap();
    assert_eq!(pty_masters(shim), 1);
    send_input(&tx, exec_in::Input::Stdin(b"exit 5\n".to_vec())).await;
    assert_eq!(collect(&mut out).await.code, 5);
    // The client's input stream is still open, but the process has ended:
    // the shim holds its terminal no longer.
    let mut n = 0;
    while pty_masters(shim) > 0 {
        assert!(n < 100, "the exec's terminal is still held");
        tokio::time::sleep(Duration::from_millis(50)).await;
        n += 1;
    }
    drop(tx);
    kill_all_and_check(&env, &mut c).await;
}

/// A runtime that runs `runc`, then spoils the pid file of an exec.
const SPOILS_EXEC_PID_FILES: &str = r#"#!/bin/sh
runc "$@"
rc=$?
prev=
pidfile=
exec=
for a in "$@"; do
    [ "$prev" = "--pid-file" ] && pidfile="$a"
    [ "$a" = "exec" ] && exec=1
    prev="$a"
done
if [ -n "$exec" ] && [ -n "$pidfile" ]; then
    echo spoiled > "$pidfile"
fi
exit $rc
"#;

/// Processes whose command line is `args`.
fn processes_running(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[tokio::test]
async fn an_exec_whose_pid_file_is_unreadable_is_ended() {
    require_root!();
    let env = Env::new("execpid", &["sleep", "100"], true);
    let runtime = env.path("runc-spoiling-pid-files");
    std::fs::write(&runtime, SPOILS_EXEC_PID_FILES).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut opts = env.opts(false);
    opts.runtime = runtime.display().to_string();
    env.launch_with(&opts).await;
    let mut c = client(&env).await;
    c.start(StartRequest {}).await.unwrap();

    // A sleep no other process on the machine runs.
    let secs = (700_000 + std::process::id() % 100_000).to_string();
    let e = exec(
        &mut c,
        "lost",
        process(&["sleep", &secs], false),
        false,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal, "{e:?}");
    assert!(e.message().contains("read the exec pid"), "{e:?}");
    // What the runtime started does not run on unseen.
    let mut n = 0;
    while !processes_running(&["sleep", &secs]).is_empty() {
        assert!(n < 100, "the exec process runs on");
        tokio::time::sleep(Duration::from_millis(50)).await;
        n += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(processes_running(&["sleep", &secs]), Vec::<u32>::new());
    let shim_log = std::fs::read_to_string(env.state_dir().join("shim.log")).unwrap();
    assert!(
        shim_log.contains("killed the exec process whose pid file could not be read"),
        "{shim_log}"
    );
    assert_eq!(status(&mut c).await, "running", "the container runs on");
    assert_no_transient_files(&env.state_dir());
    kill_all_and_check(&env, &mut c).await;
}

#[tokio::test]
async fn exec_and_pause_at_once_neither_hangs_nor_freezes_a_start() {
    require_root!();
    let (env, mut c) = running("execpause", &["sleep", "100"]).await;
    for i in 0..8 {
        let mut c2 = c.clone();
        let run = tokio::spawn(async move {
            match exec(
                &mut c2,
                &format!("r{i}"),
                process(&["echo", "ok"], false),
                false,
                None,
            )
            .await
            {
                Ok((_tx, mut out)) => Ok(collect(&mut out).await),
                Err(e) => Err(e),
            }
        });
        let paused = c.pause(PauseRequest {}).await;
        if paused.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c.resume(ResumeRequest {}).await.unwrap();
        }
        match tokio::time::timeout(T, run)
            .await
            .expect("exec hung")
            .unwrap()
        {
            Ok(r) => assert_eq!((r.stdout.as_str(), r.code), ("ok\n", 0)),
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
                assert!(e.message().contains("paused"), "{e:?}");
            }
        }
        assert_eq!(status(&mut c).await, "running");
    }
    kill_all_and_check(&env, &mut c).await;
}
