//! netd's records in `redb`: networks, address leases and endpoints.
//!
//! An address is taken in the same write transaction that checks it is
//! free, so no address is handed out twice, however many attaches run at
//! once. Keys are `network/…` strings (network names cannot hold a `/`), so
//! one network's leases are one range.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ipam;
use crate::subnet::Subnet;

/// name → [`NetworkRecord`] (JSON)
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
/// `network/ip` → container id
const LEASES: TableDefinition<&str, &str> = TableDefinition::new("leases");
/// `network/container` → [`EndpointRecord`] (JSON)
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    /// The host bridge interface.
    pub bridge: String,
    /// Unix seconds.
    pub created: i64,
    /// The default network, which cannot be removed.
    pub builtin: bool,
}

impl NetworkRecord {
    pub fn subnet(&self) -> Result<Subnet> {
        Subnet::parse(&self.subnet).map_err(|e| e.context(format!("network {}", self.name)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port as assigned: `host_port` is never 0 here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRecord {
    /// None = every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub container_id: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// Host side of the veth pair, `veth<8 hex>`; the endpoint's nft chain
    /// is named after it.
    pub veth: String,
    pub ports: Vec<PortRecord>,
    pub name: String,
    pub aliases: Vec<String>,
    pub netns: PathBuf,
    /// The interface inside the namespace: eth0 on the first network,
    /// eth1 on the next, and so on.
    #[serde(default = "eth0")]
    pub ifname: String,
}

fn eth0() -> String {
    "eth0".into()
}

impl EndpointRecord {
    /// The endpoint's own chain in the nft table.
    pub fn chain(&self) -> String {
        format!("ep_{}", self.veth.trim_start_matches("veth"))
    }
}

fn enc<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(format!("encode {what}: {e}")))
}

fn dec<T: for<'a> Deserialize<'a>>(what: &str, b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::Internal(format!("decode {what}: {e}")))
}

fn ep_key(network: &str, container: &str) -> String {
    format!("{network}/{container}")
}

fn lease_key(network: &str, ip: Ipv4Addr) -> String {
    format!("{network}/{ip}")
}

/// The key range of one network: `name/` up to `name0` (`0` follows `/`).
fn net_range(network: &str) -> (String, String) {
    (format!("{network}/"), format!("{network}0"))
}

/// What [`Store::reserve`] did.
#[derive(Debug)]
pub enum Reserved {
    /// A new endpoint with a fresh address.
    New(EndpointRecord),
    /// The container was on the network already; nothing changed.
    Existing(EndpointRecord),
}

pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let db = rdock_common::db::open(path)
            .map_err(|e| Error::Internal(format!("open {}: {e}", path.display())))?;
        let txn = db.begin_write()?;
        txn.open_table(NETWORKS)?;
        txn.open_table(LEASES)?;
        txn.open_table(ENDPOINTS)?;
        txn.commit()?;
        Ok(Store { db })
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        let t = self.db.begin_read()?.open_table(NETWORKS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(dec("network", item?.1.value())?);
        }
        Ok(out)
    }

    pub fn network(&self, name: &str) -> Result<Option<NetworkRecord>> {
        let t = self.db.begin_read()?.open_table(NETWORKS)?;
        t.get(name)?.map(|g| dec("network", g.value())).transpose()
    }

    /// Writes the default network's record (its settings come from config).
    pub fn put_network(&self, n: &NetworkRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(NETWORKS)?
            .insert(n.name.as_str(), enc("network", n)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Records a new network. `n.subnet` empty means: the first /24 of
    /// `pool` that overlaps no network. Refuses a taken name and an
    /// overlapping subnet. Returns the record as stored.
    pub fn create_network(&self, mut n: NetworkRecord, pool: &Subnet) -> Result<NetworkRecord> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(NETWORKS)?;
            let mut others = Vec::new();
            for item in t.iter()? {
                let o: NetworkRecord = dec("network", item?.1.value())?;
                if o.name == n.name {
                    return Err(Error::AlreadyExists(format!(
                        "network with name {} already exists",
                        n.name
                    )));
                }
                others.push(o);
            }
            let taken: Vec<(Subnet, String)> = others
                .iter()
                .filter_map(|o| o.subnet().ok().map(|s| (s, o.name.clone())))
                .collect();
            let subnet = if n.subnet.is_empty() {
                pool.carve(24)
                    .find(|c| !taken.iter().any(|(s, _)| s.overlaps(c)))
                    .ok_or_else(|| {
                        Error::Exhausted(format!(
                            "no free /24 subnet left in the address pool {pool}; give one with --subnet"
                        ))
                    })?
            } else {
                let s = Subnet::parse(&n.subnet)?;
                if let Some((o, name)) = taken.iter().find(|(o, _)| o.overlaps(&s)) {
                    return Err(Error::InvalidArgument(format!(
                        "subnet {s} overlaps subnet {o} of network {name}"
                    )));
                }
                s
            };
            n.subnet = subnet.to_string();
            n.gateway = subnet.gateway();
            t.insert(n.name.as_str(), enc("network", &n)?.as_slice())?;
        }
        txn.commit()?;
        Ok(n)
    }

    /// Removes a network's record; refused while any endpoint uses it.
    pub fn remove_network(&self, n: &NetworkRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let eps = txn.open_table(ENDPOINTS)?;
            let (lo, hi) = net_range(&n.name);
            let count = eps.range(lo.as_str()..hi.as_str())?.count();
            if count > 0 {
                return Err(Error::Conflict(format!(
                    "error while removing network: network {} id {} has {count} active endpoint{}",
                    n.name,
                    n.id,
                    if count == 1 { "" } else { "s" }
                )));
            }
            txn.open_table(NETWORKS)?.remove(n.name.as_str())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Takes the lowest free address of `net` for `ep` (its `ip` and `mac`
    /// are filled in) and records the endpoint, in one transaction. An
    /// endpoint already recorded for the container on this network is
    /// returned as it is.
    pub fn reserve(&self, net: &NetworkRecord, mut ep: EndpointRecord) -> Result<Reserved> {
        let subnet = net.subnet()?;
        let key = ep_key(&net.name, &ep.container_id);
        let txn = self.db.begin_write()?;
        {
            let mut eps = txn.open_table(ENDPOINTS)?;
            if let Some(old) = eps.get(key.as_str())? {
                return Ok(Reserved::Existing(dec("endpoint", old.value())?));
            }
            let mut leases = txn.open_table(LEASES)?;
            let (lo, hi) = net_range(&net.name);
            let mut used = BTreeSet::new();
            for item in leases.range(lo.as_str()..hi.as_str())? {
                let (k, _) = item?;
                if let Some(ip) = k.value().rsplit('/').next().and_then(|s| s.parse().ok()) {
                    used.insert(ip);
                }
            }
            let ip = ipam::allocate(&subnet, &net.name, &used)?;
            ep.ip = ip;
            ep.prefix_len = subnet.prefix();
            ep.gateway = net.gateway;
            ep.mac = ipam::mac_string(&ipam::mac_for(ip));
            ep.network = net.name.clone();
            leases.insert(lease_key(&net.name, ip).as_str(), ep.container_id.as_str())?;
            eps.insert(key.as_str(), enc("endpoint", &ep)?.as_slice())?;
        }
        txn.commit()?;
        Ok(Reserved::New(ep))
    }

    /// Replaces an endpoint's record (same network, container and address).
    pub fn update_endpoint(&self, ep: &EndpointRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(ENDPOINTS)?.insert(
            ep_key(&ep.network, &ep.container_id).as_str(),
            enc("endpoint", ep)?.as_slice(),
        )?;
        txn.commit()?;
        Ok(())
    }

    /// Forgets an endpoint and frees its address. Returns whether it was
    /// recorded.
    pub fn release(&self, network: &str, container: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let found = {
            let mut eps = txn.open_table(ENDPOINTS)?;
            let old: Option<EndpointRecord> = eps
                .remove(ep_key(network, container).as_str())?
                .map(|g| dec("endpoint", g.value()))
                .transpose()?;
            if let Some(old) = &old {
                let mut leases = txn.open_table(LEASES)?;
                let k = lease_key(network, old.ip);
                let owner = leases.get(k.as_str())?.map(|g| g.value().to_string());
                if owner.as_deref() == Some(container) {
                    leases.remove(k.as_str())?;
                }
            }
            old.is_some()
        };
        txn.commit()?;
        Ok(found)
    }

    pub fn endpoint(&self, network: &str, container: &str) -> Result<Option<EndpointRecord>> {
        let t = self.db.begin_read()?.open_table(ENDPOINTS)?;
        t.get(ep_key(network, container).as_str())?
            .map(|g| dec("endpoint", g.value()))
            .transpose()
    }

    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>> {
        let t = self.db.begin_read()?.open_table(ENDPOINTS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(dec("endpoint", item?.1.value())?);
        }
        Ok(out)
    }

    pub fn endpoints_of(&self, network: &str) -> Result<Vec<EndpointRecord>> {
        let t = self.db.begin_read()?.open_table(ENDPOINTS)?;
        let (lo, hi) = net_range(network);
        let mut out = Vec::new();
        for item in t.range(lo.as_str()..hi.as_str())? {
            out.push(dec("endpoint", item?.1.value())?);
        }
        Ok(out)
    }

    /// The leases of a network: address → container.
    pub fn leases(&self, network: &str) -> Result<Vec<(Ipv4Addr, String)>> {
        let t = self.db.begin_read()?.open_table(LEASES)?;
        let (lo, hi) = net_range(network);
        let mut out = Vec::new();
        for item in t.range(lo.as_str()..hi.as_str())? {
            let (k, v) = item?;
            if let Some(ip) = k.value().rsplit('/').next().and_then(|s| s.parse().ok()) {
                out.push((ip, v.value().to_string()));
            }
        }
        Ok(out)
    }

    /// Drops leases that no endpoint holds (none should exist: both are
    /// written in one transaction). Returns how many were dropped.
    pub fn drop_orphan_leases(&self) -> Result<usize> {
        let eps = self.endpoints()?;
        let held: BTreeSet<String> = eps.iter().map(|e| lease_key(&e.network, e.ip)).collect();
        let txn = self.db.begin_write()?;
        let n = {
            let mut leases = txn.open_table(LEASES)?;
            let mut stale = Vec::new();
            for item in leases.iter()? {
                let k = item?.0.value().to_string();
                if !held.contains(&k) {
                    stale.push(k);
                }
            }
            for k in &stale {
                leases.remove(k.as_str())?;
            }
            stale.len()
        };
        txn.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    pub(crate) fn net(name: &str, subnet: &str) -> NetworkRecord {
        let s = Subnet::parse(subnet).unwrap();
        NetworkRecord {
            id: format!("{name}-id"),
            name: name.into(),
            subnet: subnet.into(),
            gateway: s.gateway(),
            bridge: format!("br-{name}"),
            created: 0,
            builtin: false,
        }
    }

    pub(crate) fn ep(container: &str) -> EndpointRecord {
        EndpointRecord {
            container_id: container.into(),
            network: String::new(),
            ip: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            gateway: Ipv4Addr::UNSPECIFIED,
            mac: String::new(),
            veth: format!("veth{container}"),
            ports: vec![],
            name: container.into(),
            aliases: vec![],
            netns: PathBuf::from("/nonexistent"),
            ifname: "eth0".into(),
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("netd.redb")).unwrap();
        (dir, s)
    }

    fn new(r: Reserved) -> EndpointRecord {
        match r {
            Reserved::New(e) => e,
            Reserved::Existing(e) => panic!("expected a new endpoint, got {e:?}"),
        }
    }

    #[test]
    fn reserve_is_idempotent_and_release_frees() {
        let (_d, s) = store();
        let n = net("bridge", "10.7.0.0/24");
        s.put_network(&n).unwrap();
        let a = new(s.reserve(&n, ep("a")).unwrap());
        assert_eq!(a.ip, Ipv4Addr::new(10, 7, 0, 2));
        assert_eq!(a.mac, "02:42:0a:07:00:02");
        assert_eq!((a.prefix_len, a.gateway), (24, Ipv4Addr::new(10, 7, 0, 1)));
        match s.reserve(&n, ep("a")).unwrap() {
            Reserved::Existing(e) => assert_eq!(e, a),
            other => panic!("{other:?}"),
        }
        let b = new(s.reserve(&n, ep("b")).unwrap());
        assert_eq!(b.ip, Ipv4Addr::new(10, 7, 0, 3));
        assert!(s.release("bridge", "a").unwrap());
        assert!(!s.release("bridge", "a").unwrap());
        assert_eq!(s.leases("bridge").unwrap(), vec![(b.ip, "b".to_string())]);
        let c = new(s.reserve(&n, ep("c")).unwrap());
        assert_eq!(c.ip, Ipv4Addr::new(10, 7, 0, 2));
        assert_eq!(s.endpoints_of("bridge").unwrap().len(), 2);
        assert!(s.endpoints_of("bridg").unwrap().is_empty());
    }

    #[test]
    fn exhaustion_is_an_error_and_changes_nothing() {
        let (_d, s) = store();
        let n = net("small", "10.8.0.0/30");
        s.put_network(&n).unwrap();
        new(s.reserve(&n, ep("a")).unwrap());
        let e = s.reserve(&n, ep("b")).unwrap_err();
        assert!(matches!(e, Error::Exhausted(_)), "{e}");
        assert_eq!(s.endpoints().unwrap().len(), 1);
        assert_eq!(s.leases("small").unwrap().len(), 1);
    }

    #[test]
    fn concurrent_reservations_get_distinct_addresses() {
        let (_d, s) = store();
        let s = Arc::new(s);
        let n = net("bridge", "10.9.0.0/24");
        s.put_network(&n).unwrap();
        let threads: Vec<_> = (0..30)
            .map(|i| {
                let s = s.clone();
                let n = n.clone();
                std::thread::spawn(move || new(s.reserve(&n, ep(&format!("c{i}"))).unwrap()).ip)
            })
            .collect();
        let ips: BTreeSet<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(ips.len(), 30);
        assert_eq!(s.leases("bridge").unwrap().len(), 30);
    }

    #[test]
    fn networks_names_overlap_and_pool() {
        let (_d, s) = store();
        s.put_network(&NetworkRecord {
            builtin: true,
            ..net("bridge", "10.124.0.0/24")
        })
        .unwrap();
        let pool = Subnet::parse("10.124.0.0/16").unwrap();
        let mut a = net("a", "10.124.0.0/24");
        a.subnet = String::new();
        let a = s.create_network(a, &pool).unwrap();
        assert_eq!(a.subnet, "10.124.1.0/24");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 124, 1, 1));
        let e = s
            .create_network(net("a", "10.50.0.0/24"), &pool)
            .unwrap_err();
        assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
        let e = s
            .create_network(net("b", "10.124.0.0/16"), &pool)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("overlaps subnet"), "{e}");
        let b = s.create_network(net("b", "10.50.0.0/24"), &pool).unwrap();
        assert_eq!(b.gateway, Ipv4Addr::new(10, 50, 0, 1));
        // A network in use cannot be removed; an unused one can.
        new(s.reserve(&b, ep("x")).unwrap());
        let e = s.remove_network(&b).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        assert!(e.to_string().contains("has 1 active endpoint"), "{e}");
        s.release("b", "x").unwrap();
        s.remove_network(&b).unwrap();
        assert!(s.network("b").unwrap().is_none());
        // A full pool is an error.
        let tiny = Subnet::parse("10.124.0.0/23").unwrap();
        let mut c = net("c", "10.0.0.0/24");
        c.subnet = String::new();
        let e = s.create_network(c, &tiny).unwrap_err();
        assert!(matches!(e, Error::Exhausted(_)), "{e}");
    }

    #[test]
    fn records_survive_reopening_and_orphans_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netd.redb");
        let n = net("bridge", "10.10.0.0/24");
        {
            let s = Store::open(&path).unwrap();
            s.put_network(&n).unwrap();
            new(s.reserve(&n, ep("a")).unwrap());
            new(s.reserve(&n, ep("b")).unwrap());
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.endpoints().unwrap().len(), 2);
        assert_eq!(s.drop_orphan_leases().unwrap(), 0);
        assert_eq!(
            new(s.reserve(&n, ep("c")).unwrap()).ip,
            Ipv4Addr::new(10, 10, 0, 4)
        );
    }
}
