use clap::Parser;
use rdock_common::server::{run_daemon, shutdown_signal};
use rdock_netd::config::{Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rdock_common::tls::install_crypto_provider();
    let config = match Config::load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rdock-netd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if config.cleanup {
        return match rdock_netd::cleanup(config).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rdock-netd: cleanup: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let daemon = config.daemon.clone();
    run_daemon("rdock-netd", &daemon, |listener| {
        rdock_netd::serve(config, listener, shutdown_signal())
    })
    .await
}
