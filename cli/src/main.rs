//! rdockctl: parse arguments, start telemetry, run one command, map its
//! outcome to an exit code.

mod args;
mod conn;
mod error;
mod format;
mod images;
mod pki;
mod progress;
mod reference;
mod system;
mod template;

use std::process::ExitCode;

use clap::Parser as _;
use rdock_common::telemetry::{self, LogFormat};
use tracing::Instrument as _;

use crate::args::{Cli, Command, ImageCommand, PkiCommand, SystemCommand};
use crate::conn::Target;

/// Exit code of a failed image, pki or system command (Docker's for pull,
/// rmi, ...). 125 is kept for engine errors of run-style commands.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    rdock_common::tls::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error::print_line(&format!("start runtime: {e}"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = runtime.block_on(async {
        let telemetry = telemetry::init("rdockctl", LogFormat::Text, "warn");
        let span = tracing::info_span!("rdockctl", command = cli.command.name());
        let result = dispatch(&cli).instrument(span).await;
        let code = match result {
            Ok(()) => 0,
            Err(e) if e.is::<error::Reported>() => EXIT_FAILED,
            Err(e) if error::is_broken_pipe(&e) => 0,
            Err(e) => {
                error::print(&e);
                EXIT_FAILED
            }
        };
        telemetry.shutdown().await;
        code
    });
    ExitCode::from(code)
}

async fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    // Commands that need no daemon come first: a broken client config must
    // not stop `pki init`.
    if let Command::Pki { command } = &cli.command {
        return match command {
            PkiCommand::Init(a) => pki::init(a),
            PkiCommand::Issue(a) => pki::issue(a),
        };
    }
    let target = Target::from_args(&cli.conn)?;
    let t = &target;
    match &cli.command {
        Command::Pull(a)
        | Command::Image {
            command: ImageCommand::Pull(a),
        } => images::pull(t, a).await,
        Command::Push(a)
        | Command::Image {
            command: ImageCommand::Push(a),
        } => images::push(t, a).await,
        Command::Import(a)
        | Command::Image {
            command: ImageCommand::Import(a),
        } => images::import(t, a).await,
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => images::images(t, a).await,
        Command::Tag(a)
        | Command::Image {
            command: ImageCommand::Tag(a),
        } => images::tag(t, a).await,
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => images::rmi(t, a).await,
        Command::Inspect(a)
        | Command::Image {
            command: ImageCommand::Inspect(a),
        } => images::inspect(t, a).await,
        Command::Info(a)
        | Command::System {
            command: SystemCommand::Info(a),
        } => system::info(t, a).await,
        Command::Version(a) => system::version(t, a).await,
        Command::Pki { .. } => Ok(()),
    }
}
