//! The shim's options: what the runtime daemon gives [`super::launch`], and
//! the `rdock-shim` flags they become. One type, one flag table, so the two
//! cannot drift.
//!
//! The flags are parsed by hand rather than with clap: a shim runs per
//! container and must stay small (clap's parser alone would keep a few
//! hundred KiB of code resident in every shim).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Everything one shim needs to create, run and log one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchOptions {
    /// The `rdock-shim` binary to run (not a flag of the shim itself).
    pub shim_bin: PathBuf,
    /// Container id (the OCI runtime's container id).
    pub id: String,
    /// OCI bundle directory (holds `config.json`).
    pub bundle: PathBuf,
    /// Directory for the shim's files: `shim.log`, `runc.log`, `init.pid`,
    /// `exit.json`. Created 0700 when missing.
    pub state_dir: PathBuf,
    /// OCI runtime binary (`runc`, `crun`, …).
    pub runtime: String,
    /// The runtime's state root (`runc --root`).
    pub runtime_root: PathBuf,
    /// Unix socket to serve the shim API on; its directory is made 0700.
    pub socket: PathBuf,
    /// Container log, Docker json-file lines.
    pub log_file: PathBuf,
    /// Rotate the log before it would grow past this many bytes; 0 = never.
    pub log_max_size: u64,
    /// Files kept: the live log plus `log.1` … `log.(N-1)`.
    pub log_max_files: u32,
    /// Give the container a stdin pipe that Attach writes to (else /dev/null).
    pub stdin: bool,
    /// The container has a terminal (`process.terminal` is true in its
    /// `config.json`): the shim receives the pty master from the runtime
    /// (`--console-socket`) and holds it instead of stdio pipes.
    pub tty: bool,
    /// W3C trace context of the caller, continued by the shim's spans.
    pub traceparent: Option<String>,
}

/// Default `--log-max-size`: 10 MiB.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Default `--log-max-files`.
pub const DEFAULT_LOG_MAX_FILES: u32 = 3;

/// `rdock-shim --help`.
pub const USAGE: &str = "\
rdock-shim: runs one container with an OCI runtime, keeps its stdio and log,
and serves attach/kill/wait on a Unix socket. Started by rdock-runtimed.

Usage: rdock-shim --id ID --bundle DIR --state-dir DIR --runtime-root DIR
                  --socket PATH --log-file PATH [options]

  --id ID                container id
  --bundle DIR           OCI bundle (config.json, rootfs)
  --state-dir DIR        shim.log, runc.log, init.pid, exit.json
  --runtime BIN          OCI runtime [default: runc]
  --runtime-root DIR     the runtime's --root
  --socket PATH          Unix socket for the shim API
  --log-file PATH        container log (Docker json-file lines)
  --log-max-size BYTES   rotate before this size, 0 = never [default: 10485760]
  --log-max-files N      files kept, the live one included [default: 3]
  --stdin                give the container a stdin pipe for Attach
  --tty                  the container has a terminal (process.terminal)
  --traceparent TP       W3C trace context to continue
  -h, --help             this text
  -V, --version          the version
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<LaunchOptions>),
    Help,
    Version,
}

impl LaunchOptions {
    /// The flags that make `rdock-shim` parse back to these options.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(24);
        let mut flag = |name: &str, value: OsString| {
            a.push(format!("--{name}").into());
            a.push(value);
        };
        flag("id", self.id.clone().into());
        flag("bundle", self.bundle.clone().into());
        flag("state-dir", self.state_dir.clone().into());
        flag("runtime", self.runtime.clone().into());
        flag("runtime-root", self.runtime_root.clone().into());
        flag("socket", self.socket.clone().into());
        flag("log-file", self.log_file.clone().into());
        flag("log-max-size", self.log_max_size.to_string().into());
        flag("log-max-files", self.log_max_files.to_string().into());
        if let Some(tp) = &self.traceparent {
            flag("traceparent", tp.clone().into());
        }
        if self.stdin {
            a.push("--stdin".into());
        }
        if self.tty {
            a.push("--tty".into());
        }
        a
    }

    /// Parses the shim's arguments (without the program name). `--flag
    /// VALUE` and `--flag=VALUE` are both accepted.
    pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
        let mut id = None;
        let mut bundle = None;
        let mut state_dir = None;
        let mut runtime = None;
        let mut runtime_root = None;
        let mut socket = None;
        let mut log_file = None;
        let mut log_max_size: Option<u64> = None;
        let mut log_max_files: Option<u32> = None;
        let mut stdin = false;
        let mut tty = false;
        let mut traceparent = None;

        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let text = arg.to_string_lossy();
            let (name, inline): (String, Option<OsString>) = match text.split_once('=') {
                Some((n, _)) if n.starts_with("--") => {
                    let value = OsStr::from_bytes(&arg.as_bytes()[n.len() + 1..]);
                    (n.to_string(), Some(value.to_os_string()))
                }
                _ => (text.to_string(), None),
            };
            match name.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help),
                "-V" | "--version" => return Ok(Parsed::Version),
                "--stdin" if inline.is_none() => {
                    stdin = true;
                    continue;
                }
                "--tty" if inline.is_none() => {
                    tty = true;
                    continue;
                }
                _ => {}
            }
            let mut value = || -> Result<OsString, String> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it.next().ok_or_else(|| format!("{name} needs a value")),
                }
            };
            match name.as_str() {
                "--id" => id = Some(utf8(&name, value()?)?),
                "--bundle" => bundle = Some(PathBuf::from(value()?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
                "--runtime" => runtime = Some(utf8(&name, value()?)?),
                "--runtime-root" => runtime_root = Some(PathBuf::from(value()?)),
                "--socket" => socket = Some(PathBuf::from(value()?)),
                "--log-file" => log_file = Some(PathBuf::from(value()?)),
                "--log-max-size" => log_max_size = Some(number(&name, &value()?)?),
                "--log-max-files" => log_max_files = Some(number(&name, &value()?)?),
                "--traceparent" => traceparent = Some(utf8(&name, value()?)?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let need =
            |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| format!("--{flag} is required"));
        let id = id.ok_or("--id is required")?;
        if id.is_empty() || id.contains('/') {
            return Err(format!("invalid container id {id:?}"));
        }
        Ok(Parsed::Run(Box::new(LaunchOptions {
            shim_bin: PathBuf::new(),
            id,
            bundle: need(bundle, "bundle")?,
            state_dir: need(state_dir, "state-dir")?,
            runtime: runtime.unwrap_or_else(|| "runc".into()),
            runtime_root: need(runtime_root, "runtime-root")?,
            socket: need(socket, "socket")?,
            log_file: need(log_file, "log-file")?,
            log_max_size: log_max_size.unwrap_or(DEFAULT_LOG_MAX_SIZE),
            log_max_files: log_max_files.unwrap_or(DEFAULT_LOG_MAX_FILES),
            stdin,
            tty,
            traceparent,
        })))
    }

    /// `state_dir/name`.
    pub fn state_file(&self, name: &str) -> PathBuf {
        self.state_dir.join(name)
    }
}

fn utf8(flag: &str, v: OsString) -> Result<String, String> {
    v.into_string()
        .map_err(|v| format!("{flag}: not UTF-8: {:?}", v))
}

fn number<T: TryFrom<u64>>(flag: &str, v: &OsStr) -> Result<T, String> {
    let s = v.to_string_lossy();
    let n: u64 = s
        .parse()
        .map_err(|_| format!("{flag}: not a number: {s:?}"))?;
    T::try_from(n).map_err(|_| format!("{flag}: too large: {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LaunchOptions {
        LaunchOptions {
            shim_bin: PathBuf::new(),
            id: "c1".into(),
            bundle: "/b".into(),
            state_dir: "/s".into(),
            runtime: "crun".into(),
            runtime_root: "/r".into(),
            socket: "/run/x/s.sock".into(),
            log_file: "/l/c1-json.log".into(),
            log_max_size: 1234,
            log_max_files: 5,
            stdin: true,
            tty: true,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        }
    }

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        LaunchOptions::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_round_trip() {
        let o = opts();
        assert_eq!(
            LaunchOptions::parse(o.to_args()),
            Ok(Parsed::Run(Box::new(o.clone())))
        );
        let o = LaunchOptions {
            stdin: false,
            tty: false,
            traceparent: None,
            ..o
        };
        assert_eq!(
            LaunchOptions::parse(o.to_args()),
            Ok(Parsed::Run(Box::new(o)))
        );
    }

    #[test]
    fn defaults_inline_values_and_errors() {
        let base = [
            "--id=c",
            "--bundle=/b",
            "--state-dir",
            "/s",
            "--runtime-root=/r",
            "--socket=/x=y",
            "--log-file",
            "/l",
        ];
        let Ok(Parsed::Run(o)) = parse(&base) else {
            panic!("parse")
        };
        assert_eq!(o.runtime, "runc");
        assert_eq!(o.socket, PathBuf::from("/x=y"));
        assert_eq!(o.log_max_size, DEFAULT_LOG_MAX_SIZE);
        assert_eq!(o.log_max_files, DEFAULT_LOG_MAX_FILES);
        assert!(!o.stdin);
        assert!(!o.tty);

        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse(&["-V"]), Ok(Parsed::Version));
        assert!(parse(&base[1..]).unwrap_err().contains("--id"));
        assert!(parse(&["--id", "c"]).unwrap_err().contains("--bundle"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown"));
        assert!(parse(&["--id"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--id", "../x"]).is_err());
        let mut big = base.to_vec();
        big.extend(["--log-max-files", "99999999999"]);
        assert!(parse(&big).unwrap_err().contains("too large"));
        let mut nan = base.to_vec();
        nan.extend(["--log-max-size", "10M"]);
        assert!(parse(&nan).unwrap_err().contains("not a number"));
    }

    #[test]
    fn usage_names_every_flag() {
        for a in opts().to_args() {
            let a = a.to_string_lossy().to_string();
            if a.starts_with("--") {
                assert!(USAGE.contains(&format!("{a} ")), "usage lacks {a}");
            }
        }
    }
}
