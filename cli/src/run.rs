//! `run`, `create` and `start`: Docker's flow and exit codes (125 engine
//! error, 126/127 from the daemon's `rdock-exit-code`, else the container's
//! own code).

use std::io::{self, Write as _};

use anyhow::Result;
use rdock_common::client::Conn;
use rdock_proto::runtime::v1::runtime_service_client::RuntimeServiceClient;
use rdock_proto::runtime::v1::{CreateContainerRequest, StartContainerRequest, WaitRequest};

use crate::args::{CreateArgs, RunArgs, StartArgs};
use crate::attach::{self, check_tty, session_signals, Outcome, Settings};
use crate::conn::Target;
use crate::error::{self, engine, Exit};
use crate::escape::parse_detach_keys;
use crate::images::ensure_image;
use crate::options::{create_request, process_env};

type Runtime = RuntimeServiceClient<Conn>;

/// Connects to both daemons at once, pulls the image when it is missing
/// (progress on stderr), creates the container; returns its id.
async fn create_container(
    target: &Target,
    req: CreateContainerRequest,
) -> Result<(Runtime, String)> {
    let (mut images, mut rt) = tokio::try_join!(target.image(), target.runtime())?;
    ensure_image(&mut images, &req.image).await?;
    let resp = rt.create_container(req).await?.into_inner();
    if !resp.warnings.is_empty() {
        let mut err = io::stderr().lock();
        for w in &resp.warnings {
            writeln!(err, "WARNING: {w}")?;
        }
    }
    Ok((rt, resp.id))
}

pub async fn run(target: &Target, args: &RunArgs) -> Result<()> {
    let req = create_request(&args.opts, &process_env).map_err(engine)?;
    let detach_keys = parse_detach_keys(args.detach_keys.as_deref()).map_err(engine)?;
    if !args.detach {
        check_tty(args.opts.interactive, args.opts.tty)?;
    }
    let (mut rt, id) = create_container(target, req).await.map_err(engine)?;
    if args.detach {
        rt.start_container(StartContainerRequest { id: id.clone() })
            .await
            .map_err(|s| engine(s.into()))?;
        let mut out = io::stdout().lock();
        writeln!(out, "{id}")?;
        out.flush()?;
        return Ok(());
    }
    let attach = Attach {
        settings: Settings {
            tty: args.opts.tty,
            stdin: args.opts.interactive,
            detach_keys,
        },
        sig_proxy: args.sig_proxy,
        remove: args.opts.rm,
    };
    attached_start(&mut rt, &id, attach).await
}

struct Attach {
    settings: Settings,
    /// Forward signals to the container.
    sig_proxy: bool,
    /// Wait for the daemon to remove the container (`--rm`) after it exits.
    remove: bool,
}

/// Attach, start, copy until the container exits; ends with its exit code.
/// With `remove` (`run --rm`), returns only once the daemon removed it,
/// as Docker's CLI does. A detach ends at once, with 0.
async fn attached_start(rt: &mut Runtime, id: &str, attach: Attach) -> Result<()> {
    let Attach {
        settings,
        sig_proxy,
        remove,
    } = attach;
    let attached = attach::open(rt, id, settings.stdin).await.map_err(engine)?;
    let mut signals = session_signals(sig_proxy, settings.tty).map_err(engine)?;
    rt.start_container(StartContainerRequest { id: id.to_string() })
        .await
        .map_err(|s| engine(s.into()))?;
    let outcome = attached
        .copy_until_exit(rt, settings, &mut signals)
        .await
        .map_err(engine)?;
    if remove && matches!(outcome, Outcome::Exit(_)) {
        // Gone already (NotFound) is what we wait for, too.
        let _ = rt
            .wait(WaitRequest {
                id: id.to_string(),
                removed: true,
            })
            .await;
    }
    outcome.into_result()
}

pub async fn create(target: &Target, args: &CreateArgs) -> Result<()> {
    let req = create_request(&args.opts, &process_env).map_err(engine)?;
    let (_, id) = create_container(target, req).await.map_err(engine)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{id}")?;
    out.flush()?;
    Ok(())
}

/// Starts each container and prints its name as given; an error for one is
/// printed and the others still start. The exit code is that of the first
/// failure (the daemon's `rdock-exit-code`, else 125). With `-a`/`-i`, one
/// container, attached like `run`, ending with its exit code.
pub async fn start(target: &Target, args: &StartArgs) -> Result<()> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            return Err(Exit::with_message(
                1,
                "you cannot start and attach multiple containers at once",
            )
            .into());
        }
        let detach_keys = parse_detach_keys(args.detach_keys.as_deref()).map_err(engine)?;
        let mut rt = target.runtime().await.map_err(engine)?;
        let state = attach::inspect_state(&mut rt, &args.containers[0])
            .await
            .map_err(engine)?;
        let attach = Attach {
            settings: Settings {
                tty: state.tty,
                stdin: args.interactive && state.open_stdin,
                detach_keys,
            },
            // Docker's `start` forwards signals only without a tty.
            sig_proxy: !state.tty,
            remove: state.auto_remove,
        };
        return attached_start(&mut rt, &state.id, attach).await;
    }
    let mut rt = target.runtime().await.map_err(engine)?;
    let mut first_failure = None;
    for name in &args.containers {
        match rt
            .start_container(StartContainerRequest { id: name.clone() })
            .await
        {
            Ok(_) => {
                let mut out = io::stdout().lock();
                writeln!(out, "{name}")?;
                out.flush()?;
            }
            Err(status) => {
                error::print_line(&error::status_message(&status));
                first_failure.get_or_insert(error::engine_exit_code(&status));
            }
        }
    }
    match first_failure {
        Some(code) => Err(Exit {
            code,
            message: None,
        }
        .into()),
        None => Ok(()),
    }
}
