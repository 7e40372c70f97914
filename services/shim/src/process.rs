//! The `rdock-shim` process: detaches from its launcher, creates the
//! container with the OCI runtime, reports on stdout, then serves the Shim
//! API on its Unix socket until the container has exited and it is told to
//! go (or [`super::container::LINGER`] passed).
//!
//! Everything runs on one thread (a current-thread Tokio runtime): the shim
//! is idle almost always, and one per container must stay small.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rdock_proto::shim::v1::shim_server::ShimServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tracing::Instrument;

use super::container::Container;
use super::handshake::{Handshake, LaunchErrorKind};
use super::logfile::LogWriter;
use super::options::LaunchOptions;
use super::reaper::Reaper;
use super::runc::{classify, Runtime};
use super::server::ShimService;
use super::stdio::{Output, ProcessStdio, Setup};
use super::tracelog;
use super::Error;

/// The shim's own log inside the state dir.
pub const SHIM_LOG: &str = "shim.log";
/// The runtime's JSON log inside the state dir.
pub const RUNTIME_LOG: &str = "runc.log";
/// The init pid the runtime writes inside the state dir.
pub const PID_FILE: &str = "init.pid";
/// The console socket of a container with a terminal, inside the state
/// dir while `runtime create` runs.
pub const CONSOLE_SOCKET: &str = "console.sock";

/// How long in-flight calls may take once the shim is told to go.
const GRACE: Duration = Duration::from_secs(2);

/// Runs the shim; returns the process exit code.
pub fn main(opts: LaunchOptions) -> i32 {
    if let Err(e) = detach(&opts) {
        report(&Handshake::Failed {
            error: format!("shim setup: {e}"),
            kind: LaunchErrorKind::Other,
        });
        return 1;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&Handshake::Failed {
                error: format!("shim runtime: {e}"),
                kind: LaunchErrorKind::Other,
            });
            return 1;
        }
    };
    rt.block_on(run(opts))
}

/// Own session, child subreaper, stdin from /dev/null, stderr to
/// `STATE/shim.log`.
fn detach(opts: &LaunchOptions) -> io::Result<()> {
    // Fails only for a process group leader, which a spawned child is not.
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true)?;
    let null = File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&opts.state_dir)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(opts.state_file(SHIM_LOG))?;
    nix::unistd::dup2_stderr(&log)?;
    Ok(())
}

/// Prints the handshake line (the launcher reads exactly one).
fn report(h: &Handshake) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(h.to_line().as_bytes());
    let _ = out.flush();
}

/// Points stdout at /dev/null: the launcher's pipe is not held open.
fn close_stdout() {
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

async fn run(opts: LaunchOptions) -> i32 {
    // Full telemetry (OTLP export, the caller's trace continued) only when
    // asked for; else the small text log.
    let telemetry = if tracelog::otlp_configured() {
        Some(rdock_common::telemetry::init(
            "rdock-shim",
            rdock_common::telemetry::LogFormat::Text,
            "info",
        ))
    } else {
        tracelog::init();
        None
    };
    let root = tracing::info_span!(
        "rdock-shim",
        container = %opts.id,
        trace_id = tracing::field::Empty
    );
    if let Some(tp) = &opts.traceparent {
        // version-traceid-parentid-flags
        if let Some(trace_id) = tp.split('-').nth(1) {
            root.record("trace_id", trace_id);
        }
        if let Ok(v) = tonic::codegen::http::HeaderValue::from_str(tp) {
            let mut h = tonic::codegen::http::HeaderMap::new();
            h.insert("traceparent", v);
            rdock_common::telemetry::set_parent_from_headers(&root, &h);
        }
    }
    let code = serve(opts, root.clone()).instrument(root).await;
    if let Some(t) = telemetry {
        t.shutdown().await;
    }
    code
}

async fn serve(opts: LaunchOptions, root: tracing::Span) -> i32 {
    tracing::info!(
        pid = std::process::id(),
        bundle = %opts.bundle.display(),
        runtime = %opts.runtime,
        "shim starting"
    );
    // The socket first: a live shim already serving there means a duplicate
    // launch, which must not touch that shim's container.
    let listener = match bind(&opts.socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve");
            report(&Handshake::Failed {
                error: e.to_string(),
                kind: LaunchErrorKind::Other,
            });
            return 1;
        }
    };
    let container = match create(&opts, &root).await {
        Ok(c) => c,
        Err((e, kind)) => {
            tracing::error!(error = %e, "create failed");
            drop(listener);
            let _ = fs::remove_file(&opts.socket);
            report(&Handshake::Failed {
                error: e.to_string(),
                kind,
            });
            return 1;
        }
    };
    report(&Handshake::Created {
        pid: container.snapshot().pid,
    });
    close_stdout();
    tracing::info!(socket = %opts.socket.display(), "serving");

    let c = container.clone();
    let server = tonic::transport::Server::builder()
        .add_service(ShimServer::new(ShimService::new(container.clone(), root)))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            c.shutdown_requested().await
        });
    let c = container.clone();
    let grace = async move {
        c.shutdown_requested().await;
        tokio::time::sleep(GRACE).await;
    };
    tokio::select! {
        r = server => if let Err(e) = r {
            tracing::error!(error = %e, "serving the shim API");
        },
        _ = grace => tracing::warn!("calls still open {GRACE:?} after shutdown; leaving"),
    }
    let _ = fs::remove_file(&opts.socket);
    tracing::info!("shim exiting");
    0
}

/// `runtime create` with the container's stdio: pipes, or with a terminal
/// a console socket on which the runtime hands over the pty master. On
/// failure the runtime's state is removed again and the error is classified
/// for the caller.
async fn create(
    opts: &LaunchOptions,
    span: &tracing::Span,
) -> Result<Arc<Container>, (Error, LaunchErrorKind)> {
    let other = |e: Error| (e, LaunchErrorKind::Other);
    // The runtime keeps a container's state in ROOT/ID (runc and crun
    // alike): an existing one belongs to someone else, and a failed create
    // must not be cleaned up with `delete --force` that would kill it.
    if opts.runtime_root.join(&opts.id).exists() {
        return Err(other(Error::FailedPrecondition(format!(
            "container {} already exists in {}",
            opts.id,
            opts.runtime_root.display()
        ))));
    }
    let pid_file = opts.state_file(PID_FILE);
    for stale in [PID_FILE, super::exit::EXIT_FILE] {
        let _ = fs::remove_file(opts.state_file(stale));
    }
    let reaper = Reaper::start().map_err(|e| other(Error::io("watch SIGCHLD", e)))?;
    let log = LogWriter::open(&opts.log_file, opts.log_max_size, opts.log_max_files)
        .map_err(|e| other(Error::io(format!("open {}", opts.log_file.display()), e)))?;
    let output = Arc::new(Output::new(log));
    let (setup, stdio) =
        Setup::new(opts.tty, opts.stdin, &opts.state_dir, CONSOLE_SOCKET).map_err(other)?;
    let runtime = Runtime::new(
        &opts.runtime,
        &opts.runtime_root,
        &opts.state_file(RUNTIME_LOG),
        &opts.id,
    );

    let (mark, created) = runtime
        .spawn_create(
            &reaper,
            &opts.bundle,
            &pid_file,
            setup.console_path(),
            stdio,
        )
        .map_err(other)?;
    let exit = created
        .await
        .map_err(|_| other(Error::io("wait for create", io::ErrorKind::Other.into())))?;
    let init_pid = if exit.success() {
        read_pid(&pid_file).map_err(|e| {
            runtime.failure("create", mark, &format!("read {}: {e}", pid_file.display()))
        })
    } else {
        Err(runtime.failure("create", mark, &exit.to_string()))
    };
    // With a terminal: its master, sent before `create` exited.
    let init_pid = match init_pid {
        Ok(pid) => match setup.finish().await {
            Ok(io) => Ok((pid, io)),
            Err(e) => Err(Error::Runtime {
                op: format!("{} create", opts.runtime),
                message: format!("receive the container's terminal: {e}"),
            }),
        },
        Err(e) => Err(e),
    };
    let (init_pid, mut io) = match init_pid {
        Ok(p) => p,
        Err(e) => {
            let kind = match &e {
                Error::Runtime { message, .. } => classify(message),
                _ => LaunchErrorKind::Other,
            };
            // Not when the id was taken meanwhile: that container is not ours.
            let taken = matches!(&e, Error::Runtime { message, .. } if message.contains("exists"));
            if !taken {
                if let Err(d) = runtime.delete(&reaper).await {
                    tracing::debug!(error = %d, "delete after a failed create");
                }
            }
            return Err((e, kind));
        }
    };
    tracing::info!(pid = init_pid, "container created");

    let init = reaper.watch(init_pid as i32);
    let stdin = io.take_input().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "container stdin unusable");
        None
    });
    let stdio = ProcessStdio::new(
        stdin,
        io.pty(),
        format!("container {}", opts.id),
        "the container's",
    );
    let pumps = io.pump(output.clone(), span);
    let container = Container::new(
        &opts.id,
        init_pid,
        opts.state_dir.clone(),
        runtime,
        reaper,
        output,
        stdio,
    );
    tokio::spawn(
        container
            .clone()
            .monitor(init, pumps)
            .instrument(span.clone()),
    );
    Ok(container)
}

/// Reads a pid file the runtime wrote.
pub(crate) fn read_pid(path: &Path) -> io::Result<u32> {
    let s = fs::read_to_string(path)?;
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad pid {s:?}")))
}

/// Binds the socket: its directory 0700 (created if missing), the socket
/// 0600, a stale socket from an earlier shim replaced.
fn bind(socket: &Path) -> Result<UnixListener, Error> {
    let ctx = |what: &str| format!("{what} {}", socket.display());
    if let Some(dir) = socket.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(ctx("create the directory of"), e))?;
    }
    if let Ok(m) = fs::symlink_metadata(socket) {
        if m.file_type().is_socket() {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(Error::FailedPrecondition(format!(
                    "another shim is serving on {}",
                    socket.display()
                )));
            }
            let _ = fs::remove_file(socket);
        }
    }
    let l = UnixListener::bind(socket).map_err(|e| Error::io(ctx("bind"), e))?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(ctx("chmod"), e))?;
    Ok(l)
}
