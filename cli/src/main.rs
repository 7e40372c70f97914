//! rdockctl: parse arguments, start telemetry, run one command, map its
//! outcome to an exit code.

mod archive;
mod args;
mod attach;
mod commit;
mod conn;
mod containers;
mod cp;
mod error;
mod escape;
mod exec;
mod export;
mod format;
mod history;
mod images;
mod inspect;
mod mounts;
mod networks;
mod options;
mod paths;
mod pki;
mod ports;
mod progress;
mod reference;
mod run;
mod session;
mod system;
mod template;
mod term;
mod volumes;

use std::process::ExitCode;

use clap::Parser as _;
use rdock_common::telemetry::{self, LogFormat};
use tracing::Instrument as _;

use crate::args::{
    Cli, Command, ContainerCommand, ImageCommand, NetworkCommand, PkiCommand, SystemCommand,
    VolumeCommand,
};
use crate::conn::Target;

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
            return ExitCode::from(error::EXIT_FAILED);
        }
    };
    let code = runtime.block_on(async {
        let telemetry = telemetry::init("rdockctl", LogFormat::Text, "warn");
        let span = tracing::info_span!("rdockctl", command = cli.command.name());
        let result = dispatch(&cli).instrument(span).await;
        let code = match result {
            Ok(()) => 0,
            Err(e) => error::report(&e),
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
        Command::Run(a)
        | Command::Container {
            command: ContainerCommand::Run(a),
        } => run::run(t, a).await,
        Command::Create(a)
        | Command::Container {
            command: ContainerCommand::Create(a),
        } => run::create(t, a).await,
        Command::Start(a)
        | Command::Container {
            command: ContainerCommand::Start(a),
        } => run::start(t, a).await,
        Command::Ps(a)
        | Command::Container {
            command: ContainerCommand::Ls(a),
        } => containers::ps(t, a).await,
        Command::Logs(a)
        | Command::Container {
            command: ContainerCommand::Logs(a),
        } => containers::logs(t, a).await,
        Command::Stop(a)
        | Command::Container {
            command: ContainerCommand::Stop(a),
        } => containers::stop(t, a).await,
        Command::Kill(a)
        | Command::Container {
            command: ContainerCommand::Kill(a),
        } => containers::kill(t, a).await,
        Command::Rm(a)
        | Command::Container {
            command: ContainerCommand::Rm(a),
        } => containers::rm(t, a).await,
        Command::Wait(a)
        | Command::Container {
            command: ContainerCommand::Wait(a),
        } => containers::wait(t, a).await,
        Command::Top(a)
        | Command::Container {
            command: ContainerCommand::Top(a),
        } => containers::top(t, a).await,
        Command::Port(a)
        | Command::Container {
            command: ContainerCommand::Port(a),
        } => ports::port(t, a).await,
        Command::Attach(a)
        | Command::Container {
            command: ContainerCommand::Attach(a),
        } => attach::attach(t, a).await,
        Command::Exec(a)
        | Command::Container {
            command: ContainerCommand::Exec(a),
        } => exec::exec(t, a).await,
        Command::Diff(a)
        | Command::Container {
            command: ContainerCommand::Diff(a),
        } => commit::diff(t, a).await,
        Command::Commit(a)
        | Command::Container {
            command: ContainerCommand::Commit(a),
        } => commit::commit(t, a).await,
        Command::Export(a)
        | Command::Container {
            command: ContainerCommand::Export(a),
        } => export::export(t, a).await,
        Command::Cp(a)
        | Command::Container {
            command: ContainerCommand::Cp(a),
        } => cp::cp(t, a).await,
        Command::History(a)
        | Command::Image {
            command: ImageCommand::History(a),
        } => history::history(t, a).await,
        Command::Network { command } => match command {
            NetworkCommand::Create(a) => networks::create(t, a).await,
            NetworkCommand::Ls(a) => networks::ls(t, a).await,
            NetworkCommand::Inspect(a) => networks::inspect(t, a).await,
            NetworkCommand::Rm(a) => networks::rm(t, a).await,
            NetworkCommand::Connect(a) => networks::connect(t, a).await,
            NetworkCommand::Disconnect(a) => networks::disconnect(t, a).await,
        },
        Command::Volume { command } => match command {
            VolumeCommand::Create(a) => volumes::create(t, a).await,
            VolumeCommand::Ls(a) => volumes::ls(t, a).await,
            VolumeCommand::Inspect(a) => volumes::inspect(t, a).await,
            VolumeCommand::Rm(a) => volumes::rm(t, a).await,
            VolumeCommand::Prune(a) => volumes::prune(t, a).await,
        },
        Command::Inspect(a) => {
            let kind = inspect::Kind::from_type(a.kind.as_deref());
            inspect::inspect(t, &a.names, a.format.as_deref(), kind).await
        }
        Command::Container {
            command: ContainerCommand::Inspect(a),
        } => {
            let kind = inspect::Kind::Container;
            inspect::inspect(t, &a.containers, a.format.as_deref(), kind).await
        }
        Command::Image {
            command: ImageCommand::Inspect(a),
        } => inspect::inspect(t, &a.images, a.format.as_deref(), inspect::Kind::Image).await,
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
        Command::Info(a)
        | Command::System {
            command: SystemCommand::Info(a),
        } => system::info(t, a).await,
        Command::Version(a) => system::version(t, a).await,
        Command::Pki { .. } => Ok(()),
    }
}
