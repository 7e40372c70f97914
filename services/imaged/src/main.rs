use clap::Parser;
use rdock_common::server::{run_daemon, shutdown_signal};
use rdock_imaged::config::{Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rdock_common::tls::install_crypto_provider();
    raise_nofile();
    let config = match Config::load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rdock-imaged: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let daemon = config.daemon.clone();
    run_daemon("rdock-imaged", &daemon, |listener| {
        rdock_imaged::serve(config, listener, shutdown_signal())
    })
    .await
}

/// Raises the soft limit on open files to the hard one, as Go programs
/// (Docker's daemons among them) do at start: tree walks of diff, commit
/// and export hold a descriptor per directory level and layer.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
