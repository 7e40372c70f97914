use clap::Parser;
use rdock_common::server::{run_daemon, shutdown_signal};
use rdock_runtimed::config::{Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rdock_common::tls::install_crypto_provider();
    let config = match Config::load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rdock-runtimed: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let daemon = config.daemon.clone();
    run_daemon("rdock-runtimed", &daemon, |listener| {
        rdock_runtimed::serve(config, listener, shutdown_signal())
    })
    .await
}
