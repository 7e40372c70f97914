//! The rdock end-to-end harness: starts the real binaries (three daemons with
//! a fresh PKI, private directories and ports), Debian's `docker-registry` on
//! loopback, and builds test images offline.
//!
//! Everything a test starts is stopped when its handle is dropped, also when
//! the test fails; an [`Env`] then removes the containers still there and
//! checks that no mount, process, shim, network namespace, runc state,
//! cgroup or container directory is left behind, and fails the test if one
//! was.

pub mod bins;
pub mod cgroups;
pub mod containers;
pub mod env;
pub mod http;
pub mod mounts;
pub mod net;
pub mod oci;
pub mod otlp;
pub mod ports;
pub mod procs;
pub mod proxy;
pub mod pty;
pub mod registry;
pub mod rootfs;
pub mod state;

pub use cgroups::CgroupParent;
pub use containers::{wait_until, ContainerRow};
pub use env::{Env, EnvBuilder, NetSettings};
pub use net::{fetch_page, http_get, Cidr};
pub use oci::{chain_ids, push_layout, Entry, Layer, LayoutInfo, OciLayout};
pub use otlp::{Collector, SpanRecord};
pub use procs::Output;
pub use proxy::SlowProxy;
pub use pty::PtySession;
pub use rdock_common::client::Daemon;
pub use registry::Registry;
pub use rootfs::busybox_rootfs_tar;
pub use state::{ImagedState, RuntimedState};

use std::future::Future;

/// Runs `fut` to completion on a private Tokio runtime in a scoped thread, so
/// synchronous harness code works both in plain tests and inside
/// `#[tokio::test]` (where blocking on the test's own runtime would panic).
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"))
                .block_on(fut)
        });
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A short random lowercase name, for markers that must not collide between
/// tests running in parallel.
pub fn unique_name(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{prefix}-{n:016x}")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Owned copies of string arguments (for building argument lists).
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
