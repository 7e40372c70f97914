//! `rdock-shim`: one per container; see the `rdock_shim` library.

use rdock_shim::options::{Parsed, USAGE};
use rdock_shim::{process, LaunchOptions};

fn main() {
    let code = match LaunchOptions::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(opts)) => process::main(*opts),
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            0
        }
        Ok(Parsed::Version) => {
            println!("rdock-shim {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Err(e) => {
            eprintln!("rdock-shim: {e}\n\n{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
