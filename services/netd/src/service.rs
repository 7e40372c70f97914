//! The network service: networks, attaching and detaching containers, and
//! bringing records and kernel state back together after a restart. The
//! gRPC handlers in [`crate::grpc`] are thin adapters over this.
//!
//! Order of an attach, so that a failure at any step leaves nothing behind:
//! check the request; bind the host ports (a taken port fails here, before
//! anything else exists); take an address and record the endpoint (one
//! transaction); create the veth pair and configure the namespace; add the
//! port rules. A failure after the record undoes the steps already done
//! and releases the record.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rdock_proto::net::v1 as pb;
use tracing::instrument;

use crate::config::Config;
use crate::error::{internal, Error, Result};
use crate::ipam;
use crate::kernel::{BridgeSpec, Kernel, VethSpec};
use crate::names::Names;
use crate::nft::{self, NetRules};
use crate::portmap::{self, Held};
use crate::resolver::{self, DnsServer, Upstreams};
use crate::store::{EndpointRecord, NetworkRecord, Reserved, Store};
use crate::subnet::Subnet;

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Names that are not networks netd keeps.
const RESERVED: [&str; 3] = ["none", "host", "default"];

pub struct Net<K: Kernel> {
    cfg: Config,
    kernel: Arc<K>,
    /// Veth deletions still running (the kernel takes tens of ms a pair):
    /// a detach does not wait for them, a clean stop does.
    pending: Mutex<tokio::task::JoinSet<()>>,
    store: Arc<Store>,
    /// Whether user-defined networks get a DNS server (off in unit tests).
    dns: bool,
    /// Creating and removing networks (write) against attaching and
    /// detaching (read): a network cannot go while a container joins it.
    networks: tokio::sync::RwLock<()>,
    /// One attach or detach at a time per container.
    containers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bound host ports by endpoint (`network/container`).
    held: Mutex<HashMap<String, Vec<Held>>>,
    /// DNS servers by network name.
    resolvers: Mutex<HashMap<String, DnsServer>>,
    /// What the DNS servers answer, in step with the endpoint records.
    names: Arc<Names>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn key(network: &str, container: &str) -> String {
    format!("{network}/{container}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Container ids end up in nft comments, file names and logs: keep them
/// plain.
pub fn check_container_id(id: &str) -> Result<()> {
    let mut b = id.bytes();
    let ok = matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 128
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "invalid container id {id:?}: letters, digits, '_', '.' or '-', at most 128"
        )));
    }
    Ok(())
}

/// Docker's rule for network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_network_name(name: &str) -> Result<()> {
    let mut b = name.bytes();
    let ok = matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "invalid network name {name:?}: it must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 128 characters)"
        )));
    }
    Ok(())
}

fn bridge_spec(n: &NetworkRecord) -> Result<BridgeSpec> {
    let s = n.subnet()?;
    Ok(BridgeSpec {
        name: n.bridge.clone(),
        gateway: n.gateway,
        prefix_len: s.prefix(),
        mac: ipam::mac_for(n.gateway),
    })
}

fn endpoint_pb(e: &EndpointRecord) -> pb::Endpoint {
    pb::Endpoint {
        container_id: e.container_id.clone(),
        network: e.network.clone(),
        ip_address: e.ip.to_string(),
        prefix_len: u32::from(e.prefix_len),
        gateway: e.gateway.to_string(),
        mac_address: e.mac.clone(),
        ports: e.ports.iter().map(portmap::to_pb).collect(),
        name: e.name.clone(),
        aliases: e.aliases.clone(),
    }
}

fn network_pb(n: &NetworkRecord, eps: Vec<pb::Endpoint>) -> pb::Network {
    pb::Network {
        id: n.id.clone(),
        name: n.name.clone(),
        driver: "bridge".into(),
        subnet: n.subnet.clone(),
        gateway: n.gateway.to_string(),
        bridge: n.bridge.clone(),
        created: n.created,
        endpoints: eps,
        builtin: n.builtin,
    }
}

impl<K: Kernel> Net<K> {
    /// Opens the records, makes sure the default network exists, and
    /// reconciles records with the kernel (see [`Net::reconcile`]).
    pub async fn start(cfg: Config, kernel: K, dns: bool) -> Result<Arc<Self>> {
        let net = Self::open(cfg, kernel, dns)?;
        net.reconcile().await?;
        Ok(net)
    }

    /// Opens the records without touching the kernel (for [`Net::cleanup`]).
    pub fn open(cfg: Config, kernel: K, dns: bool) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&cfg.daemon.state_dir).map_err(internal(format!(
            "create {}",
            cfg.daemon.state_dir.display()
        )))?;
        let store = Store::open(&cfg.daemon.state_dir.join("netd.redb"))?;
        let net = Arc::new(Net {
            cfg,
            kernel: Arc::new(kernel),
            pending: Mutex::new(tokio::task::JoinSet::new()),
            store: Arc::new(store),
            dns,
            networks: tokio::sync::RwLock::new(()),
            containers: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            resolvers: Mutex::new(HashMap::new()),
            names: Arc::new(Names::default()),
        });
        net.put_default_network()?;
        Ok(net)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The names the networks' DNS servers answer.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Runs store work off the async threads (a commit waits for fsync and
    /// for other writers).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(internal("store task"))?
    }

    /// Writes the default network's record from the settings, keeping its id.
    fn put_default_network(&self) -> Result<()> {
        let old = self.store.network(DEFAULT_NETWORK)?;
        let rec = NetworkRecord {
            id: old.as_ref().map(|o| o.id.clone()).unwrap_or_else(random_id),
            name: DEFAULT_NETWORK.into(),
            subnet: self.cfg.subnet.to_string(),
            gateway: self.cfg.gateway(),
            bridge: self.cfg.bridge.clone(),
            created: old.as_ref().map(|o| o.created).unwrap_or_else(now),
            builtin: true,
        };
        if let Some(o) = &old {
            if o.subnet != rec.subnet || o.bridge != rec.bridge {
                tracing::warn!(
                    old_subnet = %o.subnet, subnet = %rec.subnet,
                    old_bridge = %o.bridge, bridge = %rec.bridge,
                    "the default network's settings changed; containers attached before keep their addresses"
                );
            }
        }
        if old.as_ref() != Some(&rec) {
            self.store.put_network(&rec)?;
        }
        Ok(())
    }

    fn net_rules(&self, nets: &[NetworkRecord]) -> Vec<NetRules> {
        nets.iter().map(NetRules::from).collect()
    }

    /// All networks, the default first, then by name (as `docker network
    /// ls` shows them).
    fn sorted_networks(&self) -> Result<Vec<NetworkRecord>> {
        let mut nets = self.store.networks()?;
        nets.sort_by(|a, b| b.builtin.cmp(&a.builtin).then(a.name.cmp(&b.name)));
        Ok(nets)
    }

    /// After a start: containers whose namespace is gone lose their
    /// endpoint (address, rules, veth); the others get their host ports
    /// bound again. Bridges are made to exist and the nft table is
    /// rewritten from the records in one transaction, so published ports
    /// keep working throughout (the rules stay in the kernel while netd is
    /// down).
    #[instrument(skip_all)]
    pub async fn reconcile(&self) -> Result<()> {
        let nets = self.sorted_networks()?;
        for n in &nets {
            match self.kernel.ensure_bridge(&bridge_spec(n)?).await {
                Ok(()) => {}
                Err(e) if n.builtin => return Err(e.context(format!("bridge {}", n.bridge))),
                Err(e) => {
                    tracing::warn!(network = %n.name, error = %e, "cannot set up the network's bridge")
                }
            }
        }
        let mut live = Vec::new();
        let mut released = 0usize;
        for ep in self.store.endpoints()? {
            let known = nets.iter().any(|n| n.name == ep.network);
            // The veth dies with its namespace: a namespace at the same path
            // without it is a new one (the container was restarted).
            if known
                && self.kernel.netns_alive(&ep.netns)
                && self.kernel.link_exists(&ep.veth).await?
            {
                live.push(ep);
                continue;
            }
            if let Err(e) = self.kernel.remove_link(&ep.veth).await {
                tracing::warn!(container = %ep.container_id, error = %e, "remove veth");
            }
            let (n, c) = (ep.network.clone(), ep.container_id.clone());
            self.blocking(move |s| s.release(&n, &c)).await?;
            released += 1;
        }
        let orphans = self.blocking(|s| s.drop_orphan_leases()).await?;
        self.names.replace_all(&live);
        let mut rebound = 0usize;
        for ep in &live {
            let mut held = Vec::new();
            for p in &ep.ports {
                match portmap::rebind(p) {
                    Ok(h) => held.push(h),
                    Err(e) => tracing::warn!(
                        container = %ep.container_id, port = p.host_port, error = %e,
                        "cannot reserve a published port again; the mapping stays but is not protected"
                    ),
                }
            }
            rebound += held.len();
            lock(&self.held).insert(key(&ep.network, &ep.container_id), held);
        }
        let listed = self
            .kernel
            .nft_list(&self.cfg.nft_table)
            .await?
            .map(|t| nft::parse_listing(&t));
        let script = nft::rebuild(
            &self.cfg.nft_table,
            &self.net_rules(&nets),
            &live,
            listed.as_ref(),
        );
        self.kernel.nft_apply(&script).await?;
        for n in nets.iter().filter(|n| !n.builtin) {
            self.start_resolver(n).await;
        }
        tracing::info!(
            networks = nets.len(),
            endpoints = live.len(),
            released,
            orphan_leases = orphans,
            ports = rebound,
            "reconciled"
        );
        Ok(())
    }

    async fn start_resolver(&self, n: &NetworkRecord) {
        if !self.dns {
            return;
        }
        let names = self.names.clone();
        let name = n.name.clone();
        let lookup: resolver::Lookup =
            Arc::new(move |q: &str, asker| names.lookup(&name, q, asker));
        let upstreams = match &self.cfg.dns_upstream {
            Some(v) => Upstreams::Fixed(v.clone()),
            None => Upstreams::ResolvConf(self.cfg.resolv_conf.clone()),
        };
        let addr = SocketAddr::from((n.gateway, 53));
        match resolver::start(addr, lookup, upstreams).await {
            Ok(s) => {
                lock(&self.resolvers).insert(n.name.clone(), s);
            }
            Err(e) => tracing::warn!(
                network = %n.name, error = %e,
                "no DNS server for the network; containers on it cannot resolve each other by name"
            ),
        }
    }

    /// A network by name, full id or unique id prefix.
    pub fn find_network(&self, key: &str) -> Result<NetworkRecord> {
        let not_found = || Error::NotFound(format!("network {key} not found"));
        if key.is_empty() {
            return Err(not_found());
        }
        if let Some(n) = self.store.network(key)? {
            return Ok(n);
        }
        if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let mut hits: Vec<NetworkRecord> = self
            .store
            .networks()?
            .into_iter()
            .filter(|n| n.id.starts_with(key))
            .collect();
        match hits.len() {
            0 => Err(not_found()),
            1 => Ok(hits.remove(0)),
            _ => Err(Error::InvalidArgument(format!(
                "network {key} is ambiguous ({} networks match)",
                hits.len()
            ))),
        }
    }

    fn network_with_endpoints(&self, n: &NetworkRecord) -> Result<pb::Network> {
        let eps = self.store.endpoints_of(&n.name)?;
        Ok(network_pb(n, eps.iter().map(endpoint_pb).collect()))
    }

    pub fn list_networks(&self) -> Result<Vec<pb::Network>> {
        self.sorted_networks()?
            .iter()
            .map(|n| self.network_with_endpoints(n))
            .collect()
    }

    pub fn inspect_network(&self, key: &str) -> Result<pb::Network> {
        let n = self.find_network(key)?;
        self.network_with_endpoints(&n)
    }

    /// Creates a user-defined network with its own bridge (and DNS server).
    #[instrument(skip_all, fields(network = %name))]
    pub async fn create_network(&self, name: &str, subnet: &str) -> Result<pb::Network> {
        check_network_name(name)?;
        if name == DEFAULT_NETWORK {
            return Err(Error::AlreadyExists(format!(
                "network with name {name} already exists"
            )));
        }
        if RESERVED.contains(&name) {
            return Err(Error::InvalidArgument(format!(
                "network name {name} is reserved"
            )));
        }
        if !subnet.is_empty() {
            Subnet::parse(subnet)?;
        }
        let _w = self.networks.write().await;
        let mut id = random_id();
        while self
            .kernel
            .link_exists(&format!("rdk-{}", &id[..8]))
            .await?
        {
            id = random_id();
        }
        let rec = NetworkRecord {
            bridge: format!("rdk-{}", &id[..8]),
            id,
            name: name.into(),
            subnet: subnet.into(),
            gateway: Ipv4Addr::UNSPECIFIED,
            created: now(),
            builtin: false,
        };
        let pool = self.cfg.pool;
        let rec = self.blocking(move |s| s.create_network(rec, &pool)).await?;
        let made = async {
            self.kernel.ensure_bridge(&bridge_spec(&rec)?).await?;
            let nets = self.store.networks()?;
            self.kernel
                .nft_apply(&nft::networks(&self.cfg.nft_table, &self.net_rules(&nets)))
                .await
        }
        .await;
        if let Err(e) = made {
            let _ = self.kernel.remove_link(&rec.bridge).await;
            let r = rec.clone();
            let _ = self.blocking(move |s| s.remove_network(&r)).await;
            if let Ok(nets) = self.store.networks() {
                let _ = self
                    .kernel
                    .nft_apply(&nft::networks(&self.cfg.nft_table, &self.net_rules(&nets)))
                    .await;
            }
            return Err(e.context(format!("create network {name}")));
        }
        self.start_resolver(&rec).await;
        tracing::info!(id = %rec.id, subnet = %rec.subnet, bridge = %rec.bridge, "network created");
        Ok(network_pb(&rec, Vec::new()))
    }

    /// Removes a user-defined network that no container uses.
    #[instrument(skip_all, fields(network = %key))]
    pub async fn remove_network(&self, key: &str) -> Result<()> {
        let _w = self.networks.write().await;
        let n = self.find_network(key)?;
        if n.builtin {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let r = n.clone();
        self.blocking(move |s| s.remove_network(&r)).await?;
        lock(&self.resolvers).remove(&n.name);
        let nets = self.store.networks()?;
        self.kernel
            .nft_apply(&nft::networks(&self.cfg.nft_table, &self.net_rules(&nets)))
            .await?;
        self.kernel.remove_link(&n.bridge).await?;
        tracing::info!(id = %n.id, bridge = %n.bridge, "network removed");
        Ok(())
    }

    fn container_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.containers)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn forget_container_lock(&self, id: &str) {
        let mut m = lock(&self.containers);
        if m.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
            m.remove(id);
        }
    }

    fn dns_servers(&self, network: &NetworkRecord) -> Vec<String> {
        if lock(&self.resolvers).contains_key(&network.name) {
            vec![network.gateway.to_string()]
        } else {
            Vec::new()
        }
    }

    /// Joins a container's namespace to a network and publishes its ports.
    #[instrument(skip_all, fields(container = %r.container_id, network = %r.network))]
    pub async fn attach(&self, r: pb::AttachRequest) -> Result<pb::AttachResponse> {
        check_container_id(&r.container_id)?;
        let netns = PathBuf::from(&r.netns_path);
        if !netns.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "netns_path {:?} must be an absolute path",
                r.netns_path
            )));
        }
        let wanted = r
            .ports
            .iter()
            .map(portmap::validate)
            .collect::<Result<Vec<_>>>()?;
        let network = match r.network.as_str() {
            "" | "default" => DEFAULT_NETWORK,
            other => other,
        };
        match network {
            "none" => {
                if !wanted.is_empty() {
                    return Err(Error::InvalidArgument(
                        "ports cannot be published on network none".into(),
                    ));
                }
                self.kernel.loopback_up(&netns).await?;
                return Ok(pb::AttachResponse::default());
            }
            "host" => {
                return Err(Error::InvalidArgument(
                    "network host needs no attach: the container shares the host's namespace"
                        .into(),
                ))
            }
            _ => {}
        }
        if !self.kernel.netns_alive(&netns) {
            return Err(Error::InvalidArgument(format!(
                "{} is not a network namespace",
                netns.display()
            )));
        }
        let _r = self.networks.read().await;
        let net = self.find_network(network)?;
        let cl = self.container_lock(&r.container_id);
        let _c = cl.lock().await;
        if let Some(ep) = self.store.endpoint(&net.name, &r.container_id)? {
            // A repeat: answer as before, unless the namespace was replaced
            // since (its veth died with the old one), when the stale
            // endpoint goes and a fresh one is made.
            if ep.netns == netns && self.kernel.link_exists(&ep.veth).await? {
                return Ok(pb::AttachResponse {
                    endpoint: Some(endpoint_pb(&ep)),
                    dns_servers: self.dns_servers(&net),
                });
            }
            tracing::info!(veth = %ep.veth, "replacing a stale endpoint");
            self.release(&ep).await?;
        }
        let ifname = {
            let used: Vec<String> = self
                .store
                .endpoints()?
                .into_iter()
                .filter(|e| e.container_id == r.container_id)
                .map(|e| e.ifname)
                .collect();
            (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(n))
                .unwrap_or_else(|| "eth0".into())
        };
        let (held, ports) = portmap::bind_all(&wanted)?;
        let template = EndpointRecord {
            container_id: r.container_id.clone(),
            network: net.name.clone(),
            ip: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            gateway: net.gateway,
            mac: String::new(),
            veth: format!("veth{:08x}", rand::random::<u32>()),
            ports,
            name: r.name.trim_start_matches('/').to_string(),
            aliases: r.aliases.clone(),
            netns: netns.clone(),
            ifname,
        };
        let n = net.clone();
        let ep = match self.blocking(move |s| s.reserve(&n, template)).await? {
            Reserved::New(ep) => ep,
            // Not reached under the container lock; answer like a repeat.
            Reserved::Existing(ep) => {
                return Ok(pb::AttachResponse {
                    endpoint: Some(endpoint_pb(&ep)),
                    dns_servers: self.dns_servers(&net),
                })
            }
        };
        if let Err(e) = self.plumb(&net, &ep).await {
            if let Err(u) = self.release(&ep).await {
                tracing::error!(error = %u, "undo a failed attach");
            }
            return Err(e.context(format!("attach to network {}", net.name)));
        }
        lock(&self.held).insert(key(&net.name, &ep.container_id), held);
        self.names.insert(&ep);
        tracing::info!(ip = %ep.ip, veth = %ep.veth, ports = ep.ports.len(), "attached");
        Ok(pb::AttachResponse {
            endpoint: Some(endpoint_pb(&ep)),
            dns_servers: self.dns_servers(&net),
        })
    }

    /// The kernel side of an attach.
    async fn plumb(&self, net: &NetworkRecord, ep: &EndpointRecord) -> Result<()> {
        self.kernel.ensure_bridge(&bridge_spec(net)?).await?;
        self.kernel
            .add_veth(&VethSpec {
                host: ep.veth.clone(),
                bridge: net.bridge.clone(),
                netns: ep.netns.clone(),
                ifname: ep.ifname.clone(),
                ip: ep.ip,
                prefix_len: ep.prefix_len,
                gateway: ep.gateway,
                mac: ipam::mac_for(ep.ip),
            })
            .await?;
        self.kernel
            .nft_apply(&nft::add_endpoint(&self.cfg.nft_table, ep))
            .await
    }

    /// Undoes an endpoint: rules, veth, port reservations, then the record
    /// and its address. Each step tolerates its part being gone already.
    async fn release(&self, ep: &EndpointRecord) -> Result<()> {
        self.forget_endpoint(ep).await?;
        // The address and ports are free now; the veth (unused: its rules
        // are gone) goes in the background.
        let (kernel, veth) = (self.kernel.clone(), ep.veth.clone());
        lock(&self.pending).spawn(async move {
            if let Err(e) = kernel.remove_link(&veth).await {
                tracing::warn!(veth = %veth, error = %e, "remove veth");
            }
        });
        Ok(())
    }

    /// Like [`Net::release`], but the veth is gone when it returns (a
    /// container that stays on other networks may need a new default
    /// route once it is). The veth goes first: when it cannot, the
    /// endpoint stays whole (record, address, rules) and a later detach
    /// tries again, instead of a veth left on the bridge that nothing
    /// remembers.
    async fn release_now(&self, ep: &EndpointRecord) -> Result<()> {
        self.kernel.remove_link(&ep.veth).await?;
        self.forget_endpoint(ep).await
    }

    /// Rules, port reservations, the name, the record and its address of
    /// an endpoint.
    async fn forget_endpoint(&self, ep: &EndpointRecord) -> Result<()> {
        self.names.remove(&ep.network, &ep.container_id);
        // Only endpoints with ports have a chain.
        let listed = if ep.ports.is_empty() {
            None
        } else {
            self.kernel.nft_list(&self.cfg.nft_table).await?
        };
        if let Some(text) = listed {
            let script =
                nft::remove_endpoint(&self.cfg.nft_table, &ep.chain(), &nft::parse_listing(&text));
            self.kernel.nft_apply(&script).await?;
        }
        lock(&self.held).remove(&key(&ep.network, &ep.container_id));
        let (n, c) = (ep.network.clone(), ep.container_id.clone());
        self.blocking(move |s| s.release(&n, &c)).await?;
        Ok(())
    }

    /// Waits (a bounded time) for background veth deletions.
    pub async fn finish_pending(&self) {
        let mut set = std::mem::take(&mut *lock(&self.pending));
        let all = async { while set.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), all).await;
    }

    /// Leaves one network, or all when `network` is empty. Leaving a
    /// network the container is not on is not an error.
    #[instrument(skip_all, fields(container = %container, network = %network))]
    pub async fn detach(&self, container: &str, network: &str) -> Result<()> {
        check_container_id(container)?;
        let _r = self.networks.read().await;
        let only = match network {
            "" => None,
            "none" | "host" => return Ok(()),
            "default" => Some(DEFAULT_NETWORK.to_string()),
            n => Some(self.find_network(n)?.name),
        };
        let cl = self.container_lock(container);
        let done = {
            let _c = cl.lock().await;
            let (eps, keeps): (Vec<EndpointRecord>, Vec<EndpointRecord>) = self
                .store
                .endpoints()?
                .into_iter()
                .filter(|e| e.container_id == container)
                .partition(|e| only.as_ref().is_none_or(|n| *n == e.network));
            let mut res = Ok(());
            for ep in &eps {
                let released = if keeps.is_empty() {
                    self.release(ep).await
                } else {
                    self.release_now(ep).await
                };
                match released {
                    Ok(()) => tracing::info!(network = %ep.network, ip = %ep.ip, "detached"),
                    Err(e) => res = Err(e.context(format!("detach from network {}", ep.network))),
                }
            }
            if !eps.is_empty() {
                self.keep_default_route(&keeps).await;
            }
            res
        };
        drop(cl);
        self.forget_container_lock(container);
        done
    }

    /// After a container left one of its networks: if that one carried
    /// its default route, the first interface it keeps carries it now (as
    /// Docker moves the gateway to another endpoint).
    async fn keep_default_route(&self, keeps: &[EndpointRecord]) {
        let first = keeps.iter().min_by_key(|e| {
            e.ifname
                .strip_prefix("eth")
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        });
        let Some(ep) = first else { return };
        if !self.kernel.netns_alive(&ep.netns) {
            return;
        }
        if let Err(e) = self
            .kernel
            .ensure_default_route(&ep.netns, &ep.ifname, ep.gateway)
            .await
        {
            tracing::warn!(ifname = %ep.ifname, gateway = %ep.gateway, error = %e, "default route");
        }
    }

    /// Removes everything netd made: every endpoint (veth, rules, lease),
    /// every bridge, the nft table. Network definitions stay, so a later
    /// start makes their bridges again.
    pub async fn cleanup(&self) -> Result<()> {
        let _w = self.networks.write().await;
        for ep in self.store.endpoints()? {
            self.kernel.remove_link(&ep.veth).await?;
            lock(&self.held).remove(&key(&ep.network, &ep.container_id));
            let (n, c) = (ep.network.clone(), ep.container_id.clone());
            self.blocking(move |s| s.release(&n, &c)).await?;
        }
        lock(&self.resolvers).clear();
        self.names.clear();
        for n in self.store.networks()? {
            self.kernel.remove_link(&n.bridge).await?;
        }
        self.kernel.nft_delete_table(&self.cfg.nft_table).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::kernel::fake::FakeKernel;
    use rdock_common::config::DaemonConfig;
    use rdock_common::telemetry::LogFormat;

    fn config(dir: &std::path::Path) -> Config {
        Config {
            daemon: DaemonConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                pki_dir: dir.join("pki"),
                state_dir: dir.join("state"),
                run_dir: dir.join("run"),
                log_format: LogFormat::Text,
            },
            bridge: "rdkt0".into(),
            subnet: Subnet::parse("10.77.0.0/24").unwrap(),
            pool: Subnet::parse("10.78.0.0/16").unwrap(),
            nft_table: "rdock_unit".into(),
            dns_upstream: Some(vec![]),
            resolv_conf: "/nonexistent".into(),
            cleanup: false,
        }
    }

    async fn net(dir: &std::path::Path, k: &FakeKernel) -> Arc<Net<FakeKernel>> {
        Net::start(config(dir), k.clone(), false).await.unwrap()
    }

    fn req(id: &str, netns: &std::path::Path, ports: Vec<pb::PortMapping>) -> pb::AttachRequest {
        pb::AttachRequest {
            container_id: id.into(),
            netns_path: netns.display().to_string(),
            network: String::new(),
            ports,
            name: format!("/{id}"),
            aliases: vec![],
        }
    }

    fn tcp(host_ip: &str, host_port: u16, container_port: u32) -> pb::PortMapping {
        pb::PortMapping {
            host_ip: host_ip.into(),
            host_port: u32::from(host_port),
            container_port,
            protocol: "tcp".into(),
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn port_free(p: u16) -> bool {
        std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
    }

    #[tokio::test]
    async fn attach_publish_detach_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        assert!(k.state().bridges.contains_key("rdkt0"));
        assert!(k.state().table);
        let p = free_port();
        let a = n
            .attach(req("aaa", &k.netns("a"), vec![tcp("127.0.0.1", p, 80)]))
            .await
            .unwrap();
        let ep = a.endpoint.unwrap();
        assert_eq!(ep.ip_address, "10.77.0.2");
        assert_eq!((ep.prefix_len, ep.gateway.as_str()), (24, "10.77.0.1"));
        assert_eq!(ep.mac_address, "02:42:0a:4d:00:02");
        assert_eq!(ep.name, "aaa");
        assert_eq!(ep.ports, vec![tcp("127.0.0.1", p, 80)]);
        assert!(a.dns_servers.is_empty(), "no DNS on the default network");
        assert!(!port_free(p), "the host port is held");
        {
            let s = k.state();
            assert_eq!(s.veths.len(), 1);
            let v = s.veths.values().next().unwrap();
            assert_eq!(
                (v.ip, v.bridge.as_str()),
                (Ipv4Addr::new(10, 77, 0, 2), "rdkt0")
            );
            assert_eq!(s.jumps.len(), 1);
            let chain = &s.chains[&s.jumps[0].1];
            assert_eq!(
                chain,
                &[format!(
                    "ip daddr 127.0.0.1 tcp dport {p} dnat to 10.77.0.2:80"
                )]
            );
        }
        // Idempotent.
        let again = n.attach(req("aaa", &k.netns("a"), vec![])).await.unwrap();
        assert_eq!(again.endpoint.unwrap().ip_address, "10.77.0.2");
        let b = n.attach(req("bbb", &k.netns("b"), vec![])).await.unwrap();
        assert_eq!(b.endpoint.unwrap().ip_address, "10.77.0.3");
        n.detach("aaa", "").await.unwrap();
        n.detach("aaa", "").await.unwrap();
        n.finish_pending().await;
        {
            let s = k.state();
            assert_eq!(s.veths.len(), 1);
            assert!(s.jumps.is_empty());
            assert!(!s.chains.keys().any(|c| c.starts_with("ep_")));
        }
        assert!(port_free(p), "the host port is released");
        assert_eq!(n.store().leases("bridge").unwrap().len(), 1);
        n.detach("bbb", "bridge").await.unwrap();
        n.finish_pending().await;
        assert!(k.state().veths.is_empty());
        assert!(n.store().leases("bridge").unwrap().is_empty());
        assert!(n.store().endpoints().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_taken_port_refuses_the_attach_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let p = free_port();
        n.attach(req("a", &k.netns("a"), vec![tcp("", p, 80)]))
            .await
            .unwrap();
        let e = n
            .attach(req(
                "b",
                &k.netns("b"),
                vec![tcp("", free_port(), 81), tcp("127.0.0.1", p, 80)],
            ))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("port {p}/tcp is already in use")),
            "{e}"
        );
        assert_eq!(k.state().veths.len(), 1);
        assert_eq!(k.state().jumps.len(), 1);
        assert_eq!(n.store().leases("bridge").unwrap().len(), 1);
        assert!(n.store().endpoint("bridge", "b").unwrap().is_none());
        // Taken by another program: refused the same way.
        let other = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let op = other.local_addr().unwrap().port();
        let e = n
            .attach(req("c", &k.netns("c"), vec![tcp("", op, 80)]))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        // A random host port is assigned and reported.
        let r = n
            .attach(req("d", &k.netns("d"), vec![tcp("127.0.0.1", 0, 80)]))
            .await
            .unwrap();
        let hp = r.endpoint.unwrap().ports[0].host_port;
        assert_ne!(hp, 0);
        assert!(!port_free(hp as u16));
    }

    #[tokio::test]
    async fn kernel_failures_are_undone() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let p = free_port();
        k.state().fail_veth = true;
        let e = n
            .attach(req("a", &k.netns("a"), vec![tcp("127.0.0.1", p, 80)]))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
        assert!(e.to_string().contains("injected veth failure"), "{e}");
        assert!(port_free(p));
        assert!(n.store().endpoints().unwrap().is_empty());
        assert!(n.store().leases("bridge").unwrap().is_empty());
        k.state().fail_veth = false;
        k.state().fail_nft = true;
        n.attach(req("a", &k.netns("a"), vec![tcp("127.0.0.1", p, 80)]))
            .await
            .unwrap_err();
        n.finish_pending().await;
        assert!(
            k.state().veths.is_empty(),
            "the veth made before the failure is removed"
        );
        assert!(port_free(p));
        assert!(n.store().leases("bridge").unwrap().is_empty());
        k.state().fail_nft = false;
        let r = n
            .attach(req("a", &k.netns("a"), vec![tcp("127.0.0.1", p, 80)]))
            .await
            .unwrap();
        assert_eq!(r.endpoint.unwrap().ip_address, "10.77.0.2");
    }

    #[tokio::test]
    async fn bad_requests_are_invalid_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let ns = k.netns("a");
        let cases = [
            req("", &ns, vec![]),
            req("a;b", &ns, vec![]),
            req("a", std::path::Path::new("relative/ns"), vec![]),
            req("a", std::path::Path::new("/fake/netns/dead"), vec![]),
            req("a", &ns, vec![tcp("", 70, 0)]),
            req("a", &ns, vec![tcp("abc", 70, 80)]),
            req(
                "a",
                &ns,
                vec![pb::PortMapping {
                    protocol: "sctpx".into(),
                    ..tcp("", 80, 80)
                }],
            ),
            req(
                "a",
                &ns,
                vec![pb::PortMapping {
                    host_port: 70000,
                    ..tcp("", 0, 80)
                }],
            ),
        ];
        for r in cases {
            let e = n.attach(r.clone()).await.unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{r:?}: {e}");
            assert_eq!(e.to_string().lines().count(), 1);
        }
        let e = n
            .attach(pb::AttachRequest {
                network: "nosuch".into(),
                ..req("a", &ns, vec![])
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound(_)), "{e}");
        assert_eq!(e.to_string(), "network nosuch not found");
        assert!(k.state().veths.is_empty());
        assert!(n.store().endpoints().unwrap().is_empty());
        // "none" brings loopback up and records nothing.
        let r = n
            .attach(pb::AttachRequest {
                network: "none".into(),
                ..req("a", &ns, vec![])
            })
            .await
            .unwrap();
        assert!(r.endpoint.is_none());
        assert_eq!(k.state().loopbacks, vec![ns.clone()]);
        assert!(n.store().endpoints().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_replaced_namespace_gets_a_fresh_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let ns = k.netns("a");
        let first = n
            .attach(req("a", &ns, vec![]))
            .await
            .unwrap()
            .endpoint
            .unwrap();
        // The runtime daemon could not detach (netd was down), removed the
        // namespace and made a new one at the same path: the veth is gone.
        k.state().veths.clear();
        let second = n
            .attach(req("a", &ns, vec![]))
            .await
            .unwrap()
            .endpoint
            .unwrap();
        assert_eq!(first.ip_address, second.ip_address);
        assert_eq!(k.state().veths.len(), 1, "plumbed again");
        assert_eq!(n.store().endpoints().unwrap().len(), 1);
        assert_eq!(n.store().leases("bridge").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn thirty_concurrent_attaches_get_distinct_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let n = n.clone();
                let ns = k.netns(&format!("c{i}"));
                tokio::spawn(async move {
                    n.attach(req(&format!("c{i}"), &ns, vec![tcp("127.0.0.1", 0, 80)]))
                        .await
                        .unwrap()
                        .endpoint
                        .unwrap()
                        .ip_address
                })
            })
            .collect();
        let mut ips = BTreeSet::new();
        for t in tasks {
            assert!(ips.insert(t.await.unwrap()));
        }
        assert_eq!(ips.len(), 30);
        assert_eq!(k.state().veths.len(), 30);
        assert_eq!(k.state().jumps.len(), 30);
    }

    #[tokio::test]
    async fn restart_releases_the_dead_and_keeps_the_living() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let (pa, pb_) = (free_port(), free_port());
        let (nsa, nsb) = (k.netns("a"), k.netns("b"));
        {
            let n = net(dir.path(), &k).await;
            n.attach(req("a", &nsa, vec![tcp("127.0.0.1", pa, 80)]))
                .await
                .unwrap();
            n.attach(req("b", &nsb, vec![tcp("127.0.0.1", pb_, 80)]))
                .await
                .unwrap();
            // netd dies: its sockets close, the kernel state stays.
        }
        assert!(port_free(pa) && port_free(pb_));
        // Container b went away while netd was down; someone flushed a's
        // rules too.
        {
            let mut s = k.state();
            s.alive.remove(&nsb);
            s.veths.retain(|_, v| v.netns != nsb);
            s.jumps.clear();
        }
        let n = net(dir.path(), &k).await;
        let eps = n.store().endpoints().unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].container_id, "a");
        assert!(!port_free(pa), "a's port is held again");
        assert!(port_free(pb_), "b's port is not");
        {
            let s = k.state();
            assert_eq!(s.jumps.len(), 1, "a's rules are back");
            assert_eq!(s.jumps[0].1, eps[0].chain());
            assert_eq!(s.chains.keys().filter(|c| c.starts_with("ep_")).count(), 1);
        }
        // b's address is free again, a's is not handed out twice.
        let c = n.attach(req("c", &k.netns("c"), vec![])).await.unwrap();
        assert_eq!(c.endpoint.unwrap().ip_address, "10.77.0.3");
        let d = n.attach(req("d", &k.netns("d"), vec![])).await.unwrap();
        assert_eq!(d.endpoint.unwrap().ip_address, "10.77.0.4");
    }

    #[tokio::test]
    async fn user_networks() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let a = n.create_network("front", "").await.unwrap();
        assert_eq!(a.subnet, "10.78.0.0/24");
        assert_eq!(a.gateway, "10.78.0.1");
        assert_eq!(a.bridge, format!("rdk-{}", &a.id[..8]));
        assert!(k.state().bridges.contains_key(&a.bridge));
        let b = n.create_network("back", "10.79.5.0/24").await.unwrap();
        for (name, subnet, want) in [
            ("front", "", "network with name front already exists"),
            ("bridge", "", "network with name bridge already exists"),
            ("none", "", "network name none is reserved"),
            (
                "x",
                "10.79.0.0/16",
                "overlaps subnet 10.79.5.0/24 of network back",
            ),
            (
                "x",
                "10.77.0.128/25",
                "overlaps subnet 10.77.0.0/24 of network bridge",
            ),
            ("x", "10.0.0.0/33", "invalid subnet \"10.0.0.0/33\""),
            ("-x", "", "invalid network name"),
            ("a/b", "", "invalid network name"),
        ] {
            let e = n.create_network(name, subnet).await.unwrap_err();
            assert!(e.to_string().contains(want), "{name} {subnet}: {e}");
            assert_eq!(e.to_string().lines().count(), 1);
        }
        let list = n.list_networks().unwrap();
        let names: Vec<&str> = list.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["bridge", "back", "front"]);
        assert!(list[0].builtin);
        assert_eq!(n.inspect_network(&a.id[..6]).unwrap().name, "front");
        assert_eq!(n.inspect_network("back").unwrap().id, b.id);
        assert!(matches!(n.inspect_network("nope"), Err(Error::NotFound(_))));
        // Isolation rules name both user bridges and the default one.
        let last = k.state().scripts.last().cloned().unwrap();
        assert!(
            last.contains(&format!(
                "forward iifname \"{}\" oifname {{ \"rdkt0\", \"{}\" }} drop",
                b.bridge, a.bridge
            )),
            "{last}"
        );
        // A container on a user network.
        let r = n
            .attach(pb::AttachRequest {
                network: "front".into(),
                aliases: vec!["www".into()],
                ..req("c1", &k.netns("c1"), vec![])
            })
            .await
            .unwrap();
        let ep = r.endpoint.unwrap();
        assert_eq!(
            (ep.ip_address.as_str(), ep.network.as_str()),
            ("10.78.0.2", "front")
        );
        assert_eq!(n.inspect_network("front").unwrap().endpoints.len(), 1);
        // The same container on a second network gets eth1.
        let r2 = n
            .attach(pb::AttachRequest {
                network: "back".into(),
                ..req("c1", &k.netns("c1"), vec![])
            })
            .await
            .unwrap();
        assert_eq!(r2.endpoint.unwrap().ip_address, "10.79.5.2");
        let ifs: Vec<String> = k.state().veths.values().map(|v| v.ifname.clone()).collect();
        assert_eq!(ifs.iter().filter(|i| *i == "eth1").count(), 1, "{ifs:?}");
        n.detach("c1", "back").await.unwrap();
        n.finish_pending().await;
        assert_eq!(k.state().veths.len(), 1);
        let e = n.remove_network("front").await.unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        assert!(e.to_string().contains("has 1 active endpoint"), "{e}");
        let e = n.remove_network("bridge").await.unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        assert!(e.to_string().contains("pre-defined network"), "{e}");
        n.detach("c1", "front").await.unwrap();
        n.remove_network("front").await.unwrap();
        assert!(!k.state().bridges.contains_key(&a.bridge));
        assert!(matches!(
            n.inspect_network("front"),
            Err(Error::NotFound(_))
        ));
        let last = k.state().scripts.last().cloned().unwrap();
        assert!(!last.contains(&a.bridge), "{last}");
        // Its subnet is free for the next network.
        let c = n.create_network("again", "").await.unwrap();
        assert_eq!(c.subnet, "10.78.0.0/24");
    }

    #[tokio::test]
    async fn a_network_dns_answers_for_the_askers_other_networks_too() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        n.create_network("front", "").await.unwrap();
        n.create_network("back", "").await.unwrap();
        let on = |id: &str, net: &str| pb::AttachRequest {
            network: net.into(),
            name: id.into(),
            ..req(id, &k.netns(id), vec![])
        };
        let ip =
            |r: pb::AttachResponse| -> Ipv4Addr { r.endpoint.unwrap().ip_address.parse().unwrap() };
        let app_front = ip(n.attach(on("app", "front")).await.unwrap());
        let app_back = ip(n.attach(on("app", "back")).await.unwrap());
        let web = ip(n.attach(on("web", "front")).await.unwrap());
        let db = ip(n.attach(on("db", "back")).await.unwrap());
        let s = n.names();
        // Own network first, for anyone.
        assert_eq!(s.lookup("front", "web", None), Some(vec![web]));
        assert_eq!(s.lookup("front", "app", Some(web)), Some(vec![app_front]));
        // app asks front's server for db, which is on back: app is there too.
        assert_eq!(s.lookup("front", "db", Some(app_front)), Some(vec![db]));
        // web is not on back: db is not its to know.
        assert_eq!(s.lookup("front", "db", Some(web)), None);
        assert_eq!(s.lookup("front", "db", None), None);
        assert_eq!(s.lookup("back", "web", Some(app_back)), Some(vec![web]));
        assert_eq!(s.lookup("front", "nosuch", Some(app_front)), None);
        // Once app left back, db is unknown to it on front.
        n.detach("app", "back").await.unwrap();
        assert_eq!(s.lookup("front", "db", Some(app_front)), None);
        assert_eq!(s.lookup("back", "app", None), None);
        // After a restart the names come back from the records, the dead
        // container's excepted.
        drop(n);
        let web_ns = k.netns("web");
        k.state().alive.remove(&web_ns);
        let n = net(dir.path(), &k).await;
        let s = n.names();
        assert_eq!(s.lookup("front", "app", None), Some(vec![app_front]));
        assert_eq!(s.lookup("back", "db", None), Some(vec![db]));
        assert_eq!(s.lookup("front", "web", None), None);
        n.cleanup().await.unwrap();
        assert_eq!(s.lookup("front", "app", None), None);
    }

    #[tokio::test]
    async fn leaving_the_network_of_the_default_route_moves_it_to_another() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        let front = n.create_network("front", "").await.unwrap();
        let ns = k.netns("c1");
        n.attach(req("c1", &ns, vec![])).await.unwrap();
        n.attach(pb::AttachRequest {
            network: "front".into(),
            ..req("c1", &ns, vec![])
        })
        .await
        .unwrap();
        assert_eq!(
            k.state().default_routes.get(&ns),
            Some(&("eth0".to_string(), Ipv4Addr::new(10, 77, 0, 1)))
        );
        // Leaving front: the route stays on eth0.
        n.detach("c1", "front").await.unwrap();
        assert_eq!(k.state().default_routes.get(&ns).unwrap().0, "eth0");
        n.attach(pb::AttachRequest {
            network: "front".into(),
            ..req("c1", &ns, vec![])
        })
        .await
        .unwrap();
        // Leaving the default network: front's gateway takes over, at once.
        n.detach("c1", "bridge").await.unwrap();
        let gw: Ipv4Addr = front.gateway.parse().unwrap();
        assert_eq!(
            k.state().default_routes.get(&ns),
            Some(&("eth1".to_string(), gw))
        );
        assert_eq!(k.state().veths.len(), 1);
        // Leaving everything: nothing to route.
        n.detach("c1", "").await.unwrap();
        n.finish_pending().await;
        assert!(k.state().veths.is_empty());
        assert!(!k.state().default_routes.contains_key(&ns));
    }

    #[tokio::test]
    async fn a_veth_that_cannot_go_keeps_its_endpoint_for_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        n.create_network("front", "").await.unwrap();
        let ns = k.netns("c1");
        let p = free_port();
        n.attach(req("c1", &ns, vec![])).await.unwrap();
        n.attach(pb::AttachRequest {
            network: "front".into(),
            aliases: vec!["web".into()],
            ..req("c1", &ns, vec![tcp("127.0.0.1", p, 80)])
        })
        .await
        .unwrap();
        let veth = n.store().endpoint("front", "c1").unwrap().unwrap().veth;
        // c1 stays on bridge, so leaving front removes the veth at once.
        k.state().fail_remove_veth = true;
        let e = n.detach("c1", "front").await.unwrap_err();
        assert!(e.to_string().contains("detach from network front"), "{e}");
        assert!(e.to_string().contains("injected failure"), "{e}");
        // Nothing was forgotten: record, address, rules, port, name.
        assert!(k.state().veths.contains_key(&veth));
        assert!(n.store().endpoint("front", "c1").unwrap().is_some());
        assert_eq!(n.store().leases("front").unwrap().len(), 1);
        assert_eq!(k.state().jumps.len(), 1);
        assert!(!port_free(p));
        assert!(n.names().lookup("front", "web", None).is_some());
        // The retry finishes the job.
        k.state().fail_remove_veth = false;
        n.detach("c1", "front").await.unwrap();
        assert!(!k.state().veths.contains_key(&veth));
        assert!(n.store().endpoint("front", "c1").unwrap().is_none());
        assert!(n.store().leases("front").unwrap().is_empty());
        assert!(k.state().jumps.is_empty());
        assert!(port_free(p));
        assert_eq!(n.names().lookup("front", "web", None), None);
        assert_eq!(k.state().veths.len(), 1, "the bridge endpoint stays");
    }

    #[tokio::test]
    async fn cleanup_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::default();
        let n = net(dir.path(), &k).await;
        n.create_network("front", "").await.unwrap();
        n.attach(req("a", &k.netns("a"), vec![tcp("127.0.0.1", 0, 80)]))
            .await
            .unwrap();
        n.cleanup().await.unwrap();
        let s = k.state();
        assert!(s.veths.is_empty() && s.bridges.is_empty() && !s.table);
        drop(s);
        assert!(n.store().endpoints().unwrap().is_empty());
        assert!(n.store().leases("bridge").unwrap().is_empty());
    }
}
