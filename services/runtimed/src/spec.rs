//! The OCI bundle `config.json`, built with `oci-spec` from the image config
//! and the request. Pure: no I/O, so it is unit-tested without root.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

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
    let caps: HashSet<Capability> = CAPABILITIES.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(bad)?;
    let nofile = input.nofile_hard.min(1 << 20);
    let rlimits = vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile)
        .soft(nofile)
        .build()
        .map_err(bad)?];
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
        .capabilities(capabilities)
        .rlimits(rlimits)
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
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(bad)?)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .masked_paths(default_linux.masked_paths().clone().unwrap_or_default())
        .readonly_paths(default_linux.readonly_paths().clone().unwrap_or_default())
        .build()
        .map_err(bad)?;

    let mut mounts = defaults.mounts().clone().unwrap_or_default();
    for (src, dst) in &input.files {
        mounts.push(bind(src, dst, false)?);
    }
    if let Some(init) = &input.init {
        mounts.push(bind(init, INIT_PATH, true)?);
    }
    let mut spec = defaults;
    spec.set_process(Some(process))
        .set_hostname(Some(input.hostname.clone()))
        .set_root(Some(
            RootBuilder::default()
                .path(input.rootfs.clone())
                .readonly(false)
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
