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
    attach_in, attach_out, AttachIn, KillRequest, ShutdownRequest, StartRequest, StateRequest,
    WaitRequest,
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
        for applet in ["sh", "echo", "sleep", "cat", "true"] {
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
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    async fn launch(&self, stdin: bool) -> shim::Launched {
        let l = shim::launch(&self.opts(stdin)).await.unwrap();
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
    c.kill(KillRequest {
        signal: 9,
        all: false,
    })
    .await
    .unwrap();
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
    assert_eq!(
        c.state(StateRequest {}).await.unwrap().into_inner().status,
        "running"
    );
    let bad = c
        .kill(KillRequest {
            signal: 1000,
            all: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    c.kill(KillRequest {
        signal: 15,
        all: false,
    })
    .await
    .unwrap();
    assert_eq!(wait_code(&mut c).await, 143);
    shutdown_and_check(&env, &mut c, 143).await;
}

#[tokio::test]
async fn kill_all_sigkill_in_a_pid_namespace_gives_137() {
    require_root!();
    let env = Env::new("killall", &["sh", "-c", "sleep 100 & sleep 100"], true);
    env.launch(false).await;
    let mut c = client(&env).await;
    c.start(StartRequest {}).await.unwrap();
    c.kill(KillRequest {
        signal: 9,
        all: true,
    })
    .await
    .unwrap();
    assert_eq!(wait_code(&mut c).await, 137);
    shutdown_and_check(&env, &mut c, 137).await;
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
    assert_eq!(
        c.state(StateRequest {}).await.unwrap().into_inner().status,
        "created"
    );
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
