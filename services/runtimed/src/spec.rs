//! The OCI bundle `config.json`, built with `oci-spec` from the image config
//! and the request. Pure: no I/O, so it is unit-tested without root.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    Process, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use rdock_containerfs::{oci_mounts, rootfs_propagation, MountPoint};

use crate::error::{Error, Result};

/// The default PATH when neither image nor request sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` puts the reaper inside the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's default capability set.
const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability, for `exec --privileged` (the OCI runtime skips the
/// ones the kernel does not know).
const ALL_CAPABILITIES: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// Everything the bundle is made of.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub tty: bool,
    pub rootfs: PathBuf,
    pub netns: Option<PathBuf>,
    /// Share the host's network namespace (`--network host`).
    pub host_network: bool,
    pub cgroups_path: String,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// Host file bind-mounted at [`INIT_PATH`] and run as PID 1.
    pub init: Option<PathBuf>,
    /// (host file, container path) pairs: /etc/hosts and friends.
    pub files: Vec<(PathBuf, String)>,
    /// The host's hard RLIMIT_NOFILE: never ask for more.
    pub nofile_hard: u64,
    /// The container's own mounts (volumes, binds, tmpfs).
    pub mounts: Vec<MountPoint>,
    /// `--read-only`: the root and the runtime's own mounts are read-only.
    pub read_only: bool,
}

/// Merges `extra` into `base` by variable name, later wins; adds PATH.
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for kv in base.iter().chain(extra) {
        let key = kv.split('=').next().unwrap_or(kv);
        out.retain(|e| e.split('=').next() != Some(key));
        out.push(kv.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    out
}

/// A process's environment, as Docker builds it: the links' variables,
/// then the container's (later wins), `HOSTNAME`, `TERM=xterm` with a
/// terminal unless set, and `HOME` from the user's passwd entry unless set.
pub fn process_env(
    link_env: &[String],
    env: &[String],
    hostname: &str,
    tty: bool,
    home: &str,
) -> Vec<String> {
    let mut out = merge_env(link_env, env);
    let has = |out: &[String], key: &str| out.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&out, "HOSTNAME") {
        out.push(format!("HOSTNAME={hostname}"));
    }
    if tty && !has(&out, "TERM") {
        out.push("TERM=xterm".into());
    }
    if !has(&out, "HOME") {
        out.push(format!("HOME={}", if home.is_empty() { "/" } else { home }));
    }
    out
}

/// The capability sets of a container's processes: Docker's default set,
/// or every capability when privileged.
fn capabilities(privileged: bool) -> Result<LinuxCapabilities> {
    let caps: HashSet<Capability> = if privileged {
        ALL_CAPABILITIES.into_iter().collect()
    } else {
        CAPABILITIES.into_iter().collect()
    };
    LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(bad)
}

/// Open files up to the host's hard limit (never above it: see DESIGN §9).
fn rlimits(nofile_hard: u64) -> Result<Vec<PosixRlimit>> {
    let nofile = nofile_hard.min(1 << 20);
    Ok(vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile)
        .soft(nofile)
        .build()
        .map_err(bad)?])
}

/// What a process started in a running container (`exec`) is made of.
#[derive(Debug, Clone, Default)]
pub struct ExecInput {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub privileged: bool,
    pub nofile_hard: u64,
}

/// The OCI `process` of an exec: the container's capabilities (all of them
/// when privileged), rlimits and no_new_privileges, with its own command,
/// environment, directory, user and terminal.
pub fn exec_process(input: &ExecInput) -> Result<Process> {
    if input.args.is_empty() {
        return Err(Error::InvalidArgument("no exec command specified".into()));
    }
    let user = UserBuilder::default()
        .uid(input.uid)
        .gid(input.gid)
        .additional_gids(input.additional_gids.clone())
        .build()
        .map_err(bad)?;
    ProcessBuilder::default()
        .terminal(input.tty)
        .user(user)
        .args(input.args.clone())
        .env(input.env.clone())
        .cwd(if input.cwd.is_empty() {
            "/"
        } else {
            &input.cwd
        })
        .capabilities(capabilities(input.privileged)?)
        .rlimits(rlimits(input.nofile_hard)?)
        .no_new_privileges(false)
        .build()
        .map_err(bad)
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("build config.json: {e}"))
}

fn bind(src: &PathBuf, dst: &str, readonly: bool) -> Result<Mount> {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        opts.push("ro".into());
    }
    MountBuilder::default()
        .destination(dst)
        .typ("bind")
        .source(src)
        .options(opts)
        .build()
        .map_err(bad)
}

pub fn build(input: &SpecInput) -> Result<Spec> {
    if input.args.is_empty() {
        return Err(Error::InvalidArgument("no command specified".into()));
    }
    let mut args = input.args.clone();
    if input.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let user = UserBuilder::default()
        .uid(input.uid)
        .gid(input.gid)
        .additional_gids(input.additional_gids.clone())
        .build()
        .map_err(bad)?;
    let process = ProcessBuilder::default()
        .terminal(input.tty)
        .user(user)
        .args(args)
        .env(input.env.clone())
        .cwd(if input.cwd.is_empty() {
            "/"
        } else {
            &input.cwd
        })
        .capabilities(capabilities(false)?)
        .rlimits(rlimits(input.nofile_hard)?)
        .no_new_privileges(false)
        .build()
        .map_err(bad)?;

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(bad)?,
        );
    }
    if !input.host_network {
        let mut net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
        if let Some(p) = &input.netns {
            net = net.path(p.clone());
        }
        namespaces.push(net.build().map_err(bad)?);
    }

    let mut resources = LinuxResourcesBuilder::default();
    if input.memory > 0 {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(input.memory)
                .build()
                .map_err(bad)?,
        );
    }
    if input.nano_cpus > 0 {
        let period: u64 = 100_000;
        let quota = (input.nano_cpus as i128 * period as i128 / 1_000_000_000).max(1000) as i64;
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(period)
                .quota(quota)
                .build()
                .map_err(bad)?,
        );
    }
    if input.pids_limit > 0 {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(input.pids_limit)
                .build()
                .map_err(bad)?,
        );
    }
    let defaults = Spec::default();
    let default_linux = defaults.linux().clone().unwrap_or_default();
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(bad)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .masked_paths(default_linux.masked_paths().clone().unwrap_or_default())
        .readonly_paths(default_linux.readonly_paths().clone().unwrap_or_default());
    // Shared or slave binds need the root's propagation to match.
    if let Some(p) = rootfs_propagation(&input.mounts) {
        linux = linux.rootfs_propagation(p.to_string());
    }
    let linux = linux.build().map_err(bad)?;

    let mut base = defaults.mounts().clone().unwrap_or_default();
    for (src, dst) in &input.files {
        base.push(bind(src, dst, false)?);
    }
    if let Some(init) = &input.init {
        base.push(bind(init, INIT_PATH, true)?);
    }
    let mounts = oci_mounts(base, &input.mounts, input.read_only)?;
    let mut spec = defaults;
    spec.set_process(Some(process))
        .set_hostname(Some(input.hostname.clone()))
        .set_root(Some(
            RootBuilder::default()
                .path(input.rootfs.clone())
                .readonly(input.read_only)
                .build()
                .map_err(bad)?,
        ))
        .set_linux(Some(linux))
        .set_mounts(Some(mounts));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SpecInput {
        SpecInput {
            args: vec!["echo".into(), "hi".into()],
            env: merge_env(&["A=1".into()], &["A=2".into(), "B=3".into()]),
            hostname: "abc".into(),
            rootfs: "/b/rootfs".into(),
            netns: Some("/run/rdock/netns/x".into()),
            cgroups_path: "/rdock/x".into(),
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: 100,
            nofile_hard: 20_000,
            ..Default::default()
        }
    }

    #[test]
    fn env_is_merged_with_a_default_path() {
        let env = merge_env(&["A=1".into(), "PATH=/x".into()], &["A=2".into()]);
        assert_eq!(env, vec!["PATH=/x".to_string(), "A=2".to_string()]);
        assert_eq!(merge_env(&[], &[])[0], DEFAULT_PATH);
    }

    #[test]
    fn limits_rlimits_and_namespaces() {
        let v = serde_json::to_value(build(&input()).unwrap()).unwrap();
        assert_eq!(v["process"]["args"], serde_json::json!(["echo", "hi"]));
        assert_eq!(v["process"]["env"][1], "A=2");
        assert_eq!(v["process"]["rlimits"][0]["hard"], 20_000);
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(v["hostname"], "abc");
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/run/rdock/netns/x"));
        assert_eq!(v["root"]["path"], "/b/rootfs");
    }

    #[test]
    fn process_env_like_docker() {
        let env = process_env(
            &["DB_PORT=tcp://10.0.0.3:5432".into()],
            &["PATH=/bin".into(), "DB_PORT=mine".into()],
            "abc",
            true,
            "/root",
        );
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "DB_PORT=mine",
                "HOSTNAME=abc",
                "TERM=xterm",
                "HOME=/root"
            ]
        );
        // Set by the user: kept, not repeated.
        let env = process_env(
            &[],
            &["TERM=vt100".into(), "HOME=/x".into()],
            "abc",
            true,
            "",
        );
        assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
        assert!(env.contains(&"TERM=vt100".to_string()));
        assert!(env.contains(&"HOME=/x".to_string()));
        let env = process_env(&[], &[], "abc", false, "");
        assert!(!env.iter().any(|e| e.starts_with("TERM=")));
        assert!(env.contains(&"HOME=/".to_string()));
    }

    #[test]
    fn a_tty_container_has_a_terminal() {
        let mut i = input();
        i.tty = true;
        let v = serde_json::to_value(build(&i).unwrap()).unwrap();
        assert_eq!(v["process"]["terminal"], true);
        let v = serde_json::to_value(build(&input()).unwrap()).unwrap();
        assert_eq!(v["process"]["terminal"], false);
    }

    #[test]
    fn exec_process_json() {
        let e = ExecInput {
            args: vec!["sh".into(), "-c".into(), "id".into()],
            env: vec!["PATH=/bin".into(), "TERM=xterm".into()],
            cwd: "/srv".into(),
            uid: 33,
            gid: 33,
            additional_gids: vec![50],
            tty: true,
            privileged: false,
            nofile_hard: 20_000,
        };
        let v = serde_json::to_value(exec_process(&e).unwrap()).unwrap();
        assert_eq!(v["args"], serde_json::json!(["sh", "-c", "id"]));
        assert_eq!(v["env"], serde_json::json!(["PATH=/bin", "TERM=xterm"]));
        assert_eq!(v["cwd"], "/srv");
        assert_eq!(v["terminal"], true);
        assert_eq!(v["user"]["uid"], 33);
        assert_eq!(v["user"]["gid"], 33);
        assert_eq!(v["user"]["additionalGids"], serde_json::json!([50]));
        assert_eq!(v["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["rlimits"][0]["hard"], 20_000);
        assert_eq!(v["noNewPrivileges"], false);
        let caps = |v: &serde_json::Value| {
            let mut c: Vec<String> = v["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            c.sort();
            c
        };
        // The same capabilities as the container's own process.
        let own = serde_json::to_value(build(&input()).unwrap()).unwrap();
        assert_eq!(caps(&v), caps(&own["process"]));
        assert_eq!(caps(&v).len(), 14);
        assert!(!caps(&v).contains(&"CAP_SYS_ADMIN".to_string()));
        let p = serde_json::to_value(
            exec_process(&ExecInput {
                privileged: true,
                ..e.clone()
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(caps(&p).len(), 41);
        assert!(caps(&p).contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(p["capabilities"]["effective"].as_array().unwrap().len(), 41);
        // No cwd: the root; no command: refused.
        let v = serde_json::to_value(
            exec_process(&ExecInput {
                cwd: String::new(),
                ..e.clone()
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["cwd"], "/");
        let err = exec_process(&ExecInput { args: vec![], ..e }).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }

    #[test]
    fn user_mounts_read_only_root_and_propagation() {
        use rdock_containerfs::MountKind;
        let point = |kind, source: &str, dest: &str, propagation: &str| MountPoint {
            kind,
            source: source.into(),
            destination: dest.into(),
            name: String::new(),
            read_only: false,
            propagation: propagation.into(),
            relabel: String::new(),
            no_copy: false,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec!["nosuid".into()],
        };
        let mut i = input();
        i.files = vec![("/run/x/hosts".into(), "/etc/hosts".into())];
        i.mounts = vec![
            point(MountKind::Volume, "/v/data/_data", "/data", ""),
            point(MountKind::Tmpfs, "", "/tmp", ""),
        ];
        i.read_only = true;
        let v = serde_json::to_value(build(&i).unwrap()).unwrap();
        assert_eq!(v["root"]["readonly"], true);
        let mounts = v["mounts"].as_array().unwrap();
        let find = |d: &str| mounts.iter().find(|m| m["destination"] == d).unwrap();
        assert_eq!(find("/data")["source"], "/v/data/_data");
        assert_eq!(
            find("/data")["options"],
            serde_json::json!(["rbind", "rprivate"])
        );
        assert_eq!(find("/tmp")["type"], "tmpfs");
        // --read-only makes the runtime's own files read-only too.
        assert!(find("/etc/hosts")["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("ro")));
        assert!(v["linux"].get("rootfsPropagation").is_none());

        // A shared bind needs a shared root; without --read-only the root
        // is writable.
        i.read_only = false;
        i.mounts = vec![point(MountKind::Bind, "/srv", "/srv", "rshared")];
        let v = serde_json::to_value(build(&i).unwrap()).unwrap();
        assert_eq!(v["root"]["readonly"], false);
        assert_eq!(v["linux"]["rootfsPropagation"], "shared");
    }

    #[test]
    fn init_runs_first_and_empty_command_is_refused() {
        let mut i = input();
        i.init = Some("/usr/bin/tini-static".into());
        let v = serde_json::to_value(build(&i).unwrap()).unwrap();
        assert_eq!(
            v["process"]["args"],
            serde_json::json!([INIT_PATH, "--", "echo", "hi"])
        );
        i.args.clear();
        assert!(build(&i).is_err());
    }
}
