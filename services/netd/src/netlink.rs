//! The real [`Kernel`]: links, addresses and routes over rtnetlink, sysctls
//! under `/proc/sys`, and nftables through the `nft` binary.
//!
//! Work inside a container's namespace goes through a netlink socket opened
//! there: a short-lived thread enters the namespace (`setns` is per thread)
//! and opens the socket, which stays bound to that namespace wherever it is
//! then polled (netavark's `open_netlink_sockets` does the same).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;

use futures::TryStreamExt;
use nix::libc;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use tokio::io::AsyncWriteExt;

use crate::error::{internal, Error, Result};
use crate::kernel::{BridgeSpec, Kernel, VethSpec};

pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the host namespace's netlink connection. Must run inside the
    /// tokio runtime.
    pub fn new() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(internal("open netlink"))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl_err(what: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> Error {
    move |e| {
        let msg = match &e {
            rtnetlink::Error::NetlinkError(m) => match m.code {
                Some(c) => std::io::Error::from_raw_os_error(-c.get()).to_string(),
                None => e.to_string(),
            },
            _ => e.to_string(),
        };
        Error::Internal(format!("{what}: {msg}"))
    }
}

/// Ignores "already exists".
fn or_exists(
    r: std::result::Result<(), rtnetlink::Error>,
) -> std::result::Result<(), rtnetlink::Error> {
    match r {
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>> {
    match h.link().get().match_name(name).execute().try_next().await {
        Ok(m) => Ok(m.map(|m| m.header.index)),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(format!("look up link {name}"))(e)),
    }
}

async fn set_up(h: &Handle, index: u32, name: &str) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("set {name} up")))
}

/// A default route via `gateway` on the link `index`; an existing default
/// route stays (the kernel answers EEXIST).
async fn add_default_route(h: &Handle, index: u32, gateway: Ipv4Addr) -> Result<()> {
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    or_exists(h.route().add(route).execute().await)
        .map_err(nl_err(format!("add default route via {gateway}")))
}

/// A netlink connection inside the namespace at `ns`.
fn handle_in(ns: &File, path: &Path) -> Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    let opened = std::thread::scope(|s| {
        s.spawn(|| -> Result<_> {
            let _rt = rt.enter();
            setns(ns, CloneFlags::CLONE_NEWNET)
                .map_err(internal(format!("enter netns {}", path.display())))?;
            rtnetlink::new_connection().map_err(internal("open netlink in the container's netns"))
        })
        .join()
        .map_err(|_| Error::Internal("netns thread panicked".into()))
    })??;
    let (conn, handle, _) = opened;
    tokio::spawn(conn);
    Ok(handle)
}

fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    match std::fs::read_to_string(&path) {
        Ok(v) if v.trim() == value => Ok(()),
        _ => std::fs::write(&path, value).map_err(internal(format!("set {key}={value}"))),
    }
}

async fn nft(args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
    let mut cmd = tokio::process::Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(internal("run nft (is nftables installed?)"))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .await
            .map_err(internal("write to nft"))?;
    }
    child.wait_with_output().await.map_err(internal("run nft"))
}

fn nft_error(out: &std::process::Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = e.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // nft prints the error, then the offending line and a marker; keep the
    // first and the line it refers to.
    lines.iter().take(2).copied().collect::<Vec<_>>().join(": ")
}

impl Kernel for Netlink {
    async fn ensure_bridge(&self, b: &BridgeSpec) -> Result<()> {
        let h = &self.handle;
        let index = match index_of(h, &b.name).await? {
            Some(i) => i,
            None => {
                let msg = LinkBridge::new(&b.name).address(b.mac.to_vec()).build();
                or_exists(h.link().add(msg).execute().await)
                    .map_err(nl_err(format!("create bridge {}", b.name)))?;
                index_of(h, &b.name).await?.ok_or_else(|| {
                    Error::Internal(format!("bridge {} vanished after creation", b.name))
                })?
            }
        };
        or_exists(
            h.address()
                .add(index, IpAddr::V4(b.gateway), b.prefix_len)
                .execute()
                .await,
        )
        .map_err(nl_err(format!(
            "add {}/{} to {}",
            b.gateway, b.prefix_len, b.name
        )))?;
        set_up(h, index, &b.name).await?;
        sysctl("net.ipv4.ip_forward", "1")?;
        sysctl(&format!("net.ipv4.conf.{}.route_localnet", b.name), "1")?;
        Ok(())
    }

    async fn remove_link(&self, name: &str) -> Result<bool> {
        let Some(index) = index_of(&self.handle, name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(nl_err(format!("delete link {name}"))(e)),
        }
    }

    async fn link_exists(&self, name: &str) -> Result<bool> {
        Ok(index_of(&self.handle, name).await?.is_some())
    }

    async fn add_veth(&self, v: &VethSpec) -> Result<()> {
        let h = &self.handle;
        let bridge = index_of(h, &v.bridge)
            .await?
            .ok_or_else(|| Error::Internal(format!("bridge {} is missing", v.bridge)))?;
        let ns = File::open(&v.netns).map_err(|e| {
            Error::InvalidArgument(format!("open netns {}: {e}", v.netns.display()))
        })?;
        // The peer is born inside the namespace with its name and MAC
        // (`ip link add vethX type veth peer name eth0 netns NS`): no
        // temporary name in the host namespace, nothing to rename.
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(v.ifname.clone())
            .address(v.mac.to_vec())
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let msg = LinkVeth::new(&v.host, &v.ifname)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        h.link().add(msg).execute().await.map_err(|e| {
            if errno(&e) == Some(libc::EEXIST) {
                Error::Conflict(format!(
                    "create veth {}: an interface {} already exists in {}, or {} exists",
                    v.host,
                    v.ifname,
                    v.netns.display(),
                    v.host
                ))
            } else {
                nl_err(format!("create veth {}", v.host))(e)
            }
        })?;
        let inner = handle_in(&ns, &v.netns)?;
        if let Some(lo) = index_of(&inner, "lo").await? {
            set_up(&inner, lo, "lo").await?;
        }
        let inside = index_of(&inner, &v.ifname).await?.ok_or_else(|| {
            Error::Internal(format!("{} missing in the container's netns", v.ifname))
        })?;
        or_exists(
            inner
                .address()
                .add(inside, IpAddr::V4(v.ip), v.prefix_len)
                .execute()
                .await,
        )
        .map_err(nl_err(format!(
            "add {}/{} to {}",
            v.ip, v.prefix_len, v.ifname
        )))?;
        set_up(&inner, inside, &v.ifname).await?;
        // The first network's gateway is the default route; a namespace
        // that has one already (a second network) keeps it.
        add_default_route(&inner, inside, v.gateway).await
    }

    async fn ensure_default_route(
        &self,
        netns: &Path,
        ifname: &str,
        gateway: Ipv4Addr,
    ) -> Result<()> {
        let ns = File::open(netns)
            .map_err(|e| Error::InvalidArgument(format!("open netns {}: {e}", netns.display())))?;
        let inner = handle_in(&ns, netns)?;
        let index = index_of(&inner, ifname)
            .await?
            .ok_or_else(|| Error::Internal(format!("{ifname} missing in {}", netns.display())))?;
        add_default_route(&inner, index, gateway).await
    }

    async fn loopback_up(&self, netns: &Path) -> Result<()> {
        let path = netns.to_path_buf();
        tokio::task::spawn_blocking(move || crate::loopback::up(&path))
            .await
            .map_err(internal("loopback task"))?
            .map_err(Error::Internal)
    }

    async fn nft_apply(&self, script: &str) -> Result<()> {
        if script.trim().is_empty() {
            return Ok(());
        }
        let out = nft(&["-f", "-"], Some(script)).await?;
        if !out.status.success() {
            return Err(Error::Internal(format!("nft: {}", nft_error(&out))));
        }
        Ok(())
    }

    async fn nft_list(&self, table: &str) -> Result<Option<String>> {
        let out = nft(&["-a", "list", "table", "ip", table], None).await?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        Err(Error::Internal(format!(
            "nft list table ip {table}: {}",
            nft_error(&out)
        )))
    }

    async fn nft_delete_table(&self, table: &str) -> Result<()> {
        if self.nft_list(table).await?.is_none() {
            return Ok(());
        }
        let out = nft(&["delete", "table", "ip", table], None).await?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "nft delete table ip {table}: {}",
                nft_error(&out)
            )));
        }
        Ok(())
    }

    fn netns_alive(&self, path: &Path) -> bool {
        match nix::sys::statfs::statfs(path) {
            Ok(s) => s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC,
            Err(_) => false,
        }
    }
}
