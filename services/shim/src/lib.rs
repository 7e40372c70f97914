//! The per-container shim: its process (`rdock-shim`), the launcher the
//! runtime daemon uses to start one, and the client that talks to it.
//!
//! - [`launch`] (daemon side) spawns `rdock-shim` with [`LaunchOptions`] as
//!   flags and reads its one-line report: the container is created, or why
//!   not ([`LaunchError`], with Docker's exit code).
//! - [`client::connect`] opens the Shim API on the shim's Unix socket.
//! - [`process::main`] is the shim itself: `runc create`, stdio pipes or the
//!   pty master ([`console`]), the json-file log with rotation, one reaper
//!   for all children, `exit.json`, exec processes ([`exec`]), and the Shim
//!   API on a current-thread runtime.
//!
//! Files in the state dir: `shim.log` (the shim's own log), `runc.log` (the
//! runtime's JSON log), `init.pid`, `exit.json` ([`exit::ExitRecord`]);
//! while they are being started, `console.sock` (a container with a
//! terminal) and `exec-ID.{json,pid,sock}` (an exec).

pub mod client;
pub mod console;
pub mod container;
mod error;
pub mod exec;
pub mod exit;
pub mod handshake;
pub mod launch;
pub mod logfile;
pub mod options;
pub mod process;
pub mod reaper;
pub mod runc;
pub mod server;
pub mod stdio;
pub mod tracelog;

pub use error::Error;
pub use exit::ExitRecord;
pub use handshake::LaunchErrorKind;
pub use launch::{launch, LaunchError, Launched};
pub use options::LaunchOptions;
