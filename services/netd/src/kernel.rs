//! The kernel work netd does, behind a small trait so the address, port
//! and record logic can be tested without root. [`crate::netlink::Netlink`]
//! is the real one.

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::Result;

/// A bridge to create if missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    /// Its address: the network's gateway, with the network's prefix.
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
    pub mac: [u8; 6],
}

/// A container's link to a bridge: `host` (on the bridge, up) and `ifname`
/// inside the namespace at `netns`, with `ip/prefix_len`, `mac`, `lo` up
/// and a default route via `gateway` (unless the namespace has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    pub host: String,
    pub bridge: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
}

pub trait Kernel: Send + Sync + 'static {
    /// Creates the bridge if missing, gives it its address, sets it up, and
    /// turns on forwarding (`ip_forward`, the bridge's `route_localnet`).
    fn ensure_bridge(&self, b: &BridgeSpec) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a link of the host namespace (a bridge, or a veth with its
    /// peer). Returns false when there was none.
    fn remove_link(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Whether a link of that name exists in the host namespace.
    fn link_exists(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Creates and configures a container's veth pair.
    fn add_veth(&self, v: &VethSpec) -> impl Future<Output = Result<()>> + Send;

    /// Sets `lo` up in the namespace at `netns` (network "none").
    fn loopback_up(&self, netns: &Path) -> impl Future<Output = Result<()>> + Send;

    /// Gives the namespace at `netns` a default route via `gateway` on
    /// `ifname`, unless it has one (after the network that carried it was
    /// left).
    fn ensure_default_route(
        &self,
        netns: &Path,
        ifname: &str,
        gateway: Ipv4Addr,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Runs an nft script as one transaction.
    fn nft_apply(&self, script: &str) -> impl Future<Output = Result<()>> + Send;

    /// `nft -a list table ip <table>`; None when there is no such table.
    fn nft_list(&self, table: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Deletes the table (and every rule in it) if it exists.
    fn nft_delete_table(&self, table: &str) -> impl Future<Output = Result<()>> + Send;

    /// Whether a network namespace is still mounted at `path` (the
    /// container is still there).
    fn netns_alive(&self, path: &Path) -> bool;
}

/// A kernel in memory, for tests: links, namespaces that are "alive", and
/// an nft table modelled from the scripts netd writes.
#[cfg(test)]
pub mod fake {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::*;
    use crate::error::Error;

    #[derive(Debug, Default)]
    pub struct State {
        pub bridges: BTreeMap<String, BridgeSpec>,
        pub veths: BTreeMap<String, VethSpec>,
        pub alive: BTreeSet<PathBuf>,
        pub loopbacks: Vec<PathBuf>,
        pub table: bool,
        /// chain → rules
        pub chains: BTreeMap<String, Vec<String>>,
        /// jumps in `ports`: (handle, target)
        pub jumps: Vec<(u64, String)>,
        pub next_handle: u64,
        pub scripts: Vec<String>,
        pub fail_veth: bool,
        pub fail_nft: bool,
        /// Refuse to delete veths (bridges still go).
        pub fail_remove_veth: bool,
        /// Each namespace's default route: (interface, gateway).
        pub default_routes: BTreeMap<PathBuf, (String, Ipv4Addr)>,
    }

    #[derive(Clone, Default)]
    pub struct FakeKernel(pub Arc<Mutex<State>>);

    impl FakeKernel {
        pub fn state(&self) -> MutexGuard<'_, State> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// A namespace that exists.
        pub fn netns(&self, name: &str) -> PathBuf {
            let p = PathBuf::from(format!("/fake/netns/{name}"));
            self.state().alive.insert(p.clone());
            p
        }
    }

    fn apply(s: &mut State, script: &str) -> Result<()> {
        for line in script.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["add", "table", ..] => s.table = true,
                ["add", "chain", _, _, name, ..] => {
                    s.chains.entry(name.to_string()).or_default();
                }
                ["flush", "chain", _, _, "ports"] => s.jumps.clear(),
                ["flush", "chain", _, _, name] => {
                    s.chains
                        .get_mut(*name)
                        .ok_or_else(|| Error::Internal(format!("no chain {name}")))?
                        .clear();
                }
                ["delete", "chain", _, _, name] => {
                    let c = s
                        .chains
                        .remove(*name)
                        .ok_or_else(|| Error::Internal(format!("no chain {name}")))?;
                    if !c.is_empty() {
                        return Err(Error::Internal(format!("chain {name} busy")));
                    }
                }
                ["delete", "rule", _, _, "ports", "handle", h] => {
                    let h: u64 = h.parse().map_err(|_| Error::Internal("handle".into()))?;
                    let before = s.jumps.len();
                    s.jumps.retain(|(x, _)| *x != h);
                    if s.jumps.len() == before {
                        return Err(Error::Internal(format!("no rule handle {h}")));
                    }
                }
                ["add", "rule", _, _, "ports", "jump", target] => {
                    if !s.chains.contains_key(*target) {
                        return Err(Error::Internal(format!("no chain {target}")));
                    }
                    s.next_handle += 1;
                    let h = s.next_handle;
                    s.jumps.push((h, target.to_string()));
                }
                ["add", "rule", _, _, chain, rest @ ..] => {
                    s.chains
                        .get_mut(*chain)
                        .ok_or_else(|| Error::Internal(format!("no chain {chain}")))?
                        .push(rest.join(" "));
                }
                _ => {}
            }
        }
        Ok(())
    }

    impl Kernel for FakeKernel {
        async fn ensure_bridge(&self, b: &BridgeSpec) -> Result<()> {
            self.state().bridges.insert(b.name.clone(), b.clone());
            Ok(())
        }

        async fn remove_link(&self, name: &str) -> Result<bool> {
            let mut s = self.state();
            if s.fail_remove_veth && s.veths.contains_key(name) {
                return Err(Error::Internal(format!(
                    "injected failure to delete {name}"
                )));
            }
            if let Some(v) = s.veths.remove(name) {
                // The route goes with its interface.
                if s.default_routes.get(&v.netns).map(|r| &r.0) == Some(&v.ifname) {
                    s.default_routes.remove(&v.netns);
                }
                return Ok(true);
            }
            Ok(s.bridges.remove(name).is_some())
        }

        async fn link_exists(&self, name: &str) -> Result<bool> {
            let s = self.state();
            Ok(s.veths.contains_key(name) || s.bridges.contains_key(name))
        }

        async fn add_veth(&self, v: &VethSpec) -> Result<()> {
            let mut s = self.state();
            if s.fail_veth {
                return Err(Error::Internal("injected veth failure".into()));
            }
            if !s.bridges.contains_key(&v.bridge) {
                return Err(Error::Internal(format!("bridge {} is missing", v.bridge)));
            }
            if s.veths
                .values()
                .any(|o| o.netns == v.netns && o.ifname == v.ifname)
            {
                return Err(Error::Conflict(format!("{} exists", v.ifname)));
            }
            s.veths.insert(v.host.clone(), v.clone());
            s.default_routes
                .entry(v.netns.clone())
                .or_insert((v.ifname.clone(), v.gateway));
            Ok(())
        }

        async fn ensure_default_route(
            &self,
            netns: &Path,
            ifname: &str,
            gateway: Ipv4Addr,
        ) -> Result<()> {
            let mut s = self.state();
            if !s
                .veths
                .values()
                .any(|v| v.netns == netns && v.ifname == ifname)
            {
                return Err(Error::Internal(format!("{ifname} missing")));
            }
            s.default_routes
                .entry(netns.to_path_buf())
                .or_insert((ifname.to_string(), gateway));
            Ok(())
        }

        async fn loopback_up(&self, netns: &Path) -> Result<()> {
            self.state().loopbacks.push(netns.to_path_buf());
            Ok(())
        }

        async fn nft_apply(&self, script: &str) -> Result<()> {
            let mut s = self.state();
            if s.fail_nft && script.contains("dnat") {
                return Err(Error::Internal("injected nft failure".into()));
            }
            s.scripts.push(script.to_string());
            // One transaction: all or nothing.
            let mut copy = State {
                table: s.table,
                chains: s.chains.clone(),
                jumps: s.jumps.clone(),
                next_handle: s.next_handle,
                ..Default::default()
            };
            apply(&mut copy, script)?;
            s.table = copy.table;
            s.chains = copy.chains;
            s.jumps = copy.jumps;
            s.next_handle = copy.next_handle;
            Ok(())
        }

        async fn nft_list(&self, table: &str) -> Result<Option<String>> {
            let s = self.state();
            if !s.table {
                return Ok(None);
            }
            let mut t = format!("table ip {table} {{\n");
            for (name, rules) in &s.chains {
                t.push_str(&format!("\tchain {name} {{\n"));
                if name == "ports" {
                    for (h, target) in &s.jumps {
                        t.push_str(&format!("\t\tjump {target} # handle {h}\n"));
                    }
                } else {
                    for r in rules {
                        t.push_str(&format!("\t\t{r}\n"));
                    }
                }
                t.push_str("\t}\n");
            }
            t.push_str("}\n");
            Ok(Some(t))
        }

        async fn nft_delete_table(&self, _table: &str) -> Result<()> {
            let mut s = self.state();
            s.table = false;
            s.chains.clear();
            s.jumps.clear();
            Ok(())
        }

        fn netns_alive(&self, path: &Path) -> bool {
            self.state().alive.contains(path)
        }
    }
}
