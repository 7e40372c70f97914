//! The names the DNS servers answer, kept in memory: per network, who
//! answers to which name and address, and per container, the networks it
//! is on. Attach, detach and the reconcile after a start keep it in step
//! with the endpoint records, so a query reads no database and costs a few
//! map lookups, however often a container asks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::store::EndpointRecord;

/// A container's id prefix answers from this length on (as Docker's
/// embedded DNS answers to short ids).
const MIN_ID_PREFIX: usize = 12;

/// One container on one network.
#[derive(Debug)]
struct Member {
    ip: Ipv4Addr,
    /// Its name and aliases, lower-case.
    names: Vec<String>,
}

#[derive(Debug, Default)]
struct Network {
    /// Container id → member. Ordered: answers come in container order,
    /// and the containers whose id starts with a prefix are one range.
    members: BTreeMap<String, Member>,
    /// Lower-case name or alias → the containers answering to it.
    names: HashMap<String, BTreeSet<String>>,
    /// Address → container, to know who asks.
    askers: HashMap<Ipv4Addr, String>,
}

impl Network {
    /// The addresses of the containers answering to `q` (`lower` is `q`
    /// in lower case): by name or alias, or by a long enough id prefix.
    fn answer(&self, q: &str, lower: &str) -> Vec<Ipv4Addr> {
        let mut ids: BTreeSet<&str> = self
            .names
            .get(lower)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if q.len() >= MIN_ID_PREFIX {
            ids.extend(
                self.members
                    .range::<str, _>((Bound::Included(q), Bound::Unbounded))
                    .map(|(id, _)| id.as_str())
                    .take_while(|id| id.starts_with(q)),
            );
        }
        ids.iter()
            .filter_map(|id| self.members.get(*id).map(|m| m.ip))
            .collect()
    }
}

#[derive(Debug, Default)]
struct Index {
    networks: HashMap<String, Network>,
    /// Container id → the networks it is on.
    containers: HashMap<String, BTreeSet<String>>,
}

impl Index {
    fn insert(&mut self, e: &EndpointRecord) {
        self.remove(&e.network, &e.container_id);
        let own = e.name.trim_start_matches('/');
        let mut names: Vec<String> = std::iter::once(own)
            .chain(e.aliases.iter().map(String::as_str))
            .filter(|n| !n.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        names.sort();
        names.dedup();
        let net = self.networks.entry(e.network.clone()).or_default();
        for n in &names {
            net.names
                .entry(n.clone())
                .or_default()
                .insert(e.container_id.clone());
        }
        net.askers.insert(e.ip, e.container_id.clone());
        net.members
            .insert(e.container_id.clone(), Member { ip: e.ip, names });
        self.containers
            .entry(e.container_id.clone())
            .or_default()
            .insert(e.network.clone());
    }

    fn remove(&mut self, network: &str, container: &str) {
        if let Some(net) = self.networks.get_mut(network) {
            if let Some(m) = net.members.remove(container) {
                for n in &m.names {
                    if let Some(ids) = net.names.get_mut(n) {
                        ids.remove(container);
                        if ids.is_empty() {
                            net.names.remove(n);
                        }
                    }
                }
                if net.askers.get(&m.ip).is_some_and(|c| c == container) {
                    net.askers.remove(&m.ip);
                }
            }
            if net.members.is_empty() {
                self.networks.remove(network);
            }
        }
        if let Some(nets) = self.containers.get_mut(container) {
            nets.remove(network);
            if nets.is_empty() {
                self.containers.remove(container);
            }
        }
    }
}

/// The index the DNS servers of all networks share.
#[derive(Debug, Default)]
pub struct Names(RwLock<Index>);

impl Names {
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) a container's endpoint on a network.
    pub fn insert(&self, e: &EndpointRecord) {
        self.write().insert(e);
    }

    /// Forgets a container's endpoint on a network (nothing if unknown).
    pub fn remove(&self, network: &str, container: &str) {
        self.write().remove(network, container);
    }

    /// Starts over from these endpoints.
    pub fn replace_all<'a>(&self, eps: impl IntoIterator<Item = &'a EndpointRecord>) {
        let mut idx = Index::default();
        for e in eps {
            idx.insert(e);
        }
        *self.write() = idx;
    }

    /// Forgets everything.
    pub fn clear(&self) {
        *self.write() = Index::default();
    }

    /// A name as the DNS server of `network` answers it for the container
    /// at `asker`: the containers of the network that answer to it
    /// (their name, an alias, or a prefix of 12 or more characters of
    /// their id); failing that, those of the asker's other networks (as
    /// Docker's embedded DNS answers for every network of the container
    /// that asks). None when no container answers.
    pub fn lookup(&self, network: &str, q: &str, asker: Option<Ipv4Addr>) -> Option<Vec<Ipv4Addr>> {
        let idx = self.read();
        let lower = q.to_ascii_lowercase();
        let net = idx.networks.get(network)?;
        let mut ips = net.answer(q, &lower);
        if ips.is_empty() {
            let me = net.askers.get(&asker?)?;
            let others = idx.containers.get(me)?;
            for n in others.iter().filter(|n| *n != network) {
                if let Some(other) = idx.networks.get(n) {
                    ips.extend(other.answer(q, &lower));
                }
            }
        }
        (!ips.is_empty()).then_some(ips)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn ep(id: &str, network: &str, ip: [u8; 4], name: &str, aliases: &[&str]) -> EndpointRecord {
        EndpointRecord {
            container_id: id.into(),
            network: network.into(),
            ip: Ipv4Addr::from(ip),
            prefix_len: 24,
            gateway: Ipv4Addr::new(ip[0], ip[1], ip[2], 1),
            mac: String::new(),
            veth: "veth00000000".into(),
            ports: vec![],
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            netns: PathBuf::new(),
            ifname: "eth0".into(),
        }
    }

    #[test]
    fn a_container_answers_to_its_name_aliases_and_long_id_prefixes() {
        let n = Names::default();
        n.insert(&ep(
            "0123456789abcdef",
            "front",
            [10, 1, 0, 2],
            "/web",
            &["WWW"],
        ));
        let ip = Some(vec![Ipv4Addr::new(10, 1, 0, 2)]);
        for q in ["web", "WEB", "www", "0123456789ab", "0123456789abcdef"] {
            assert_eq!(n.lookup("front", q, None), ip, "{q}");
        }
        for q in ["0123", "0123456789ac", "db", "", "we"] {
            assert_eq!(n.lookup("front", q, None), None, "{q}");
        }
        assert_eq!(n.lookup("back", "web", None), None);
    }

    #[test]
    fn answers_in_container_order_once_each() {
        let n = Names::default();
        n.insert(&ep("bbbbbbbbbbbb02", "front", [10, 1, 0, 3], "b", &["svc"]));
        n.insert(&ep(
            "aaaaaaaaaaaa01",
            "front",
            [10, 1, 0, 2],
            "a",
            &["svc", "SVC"],
        ));
        assert_eq!(
            n.lookup("front", "svc", None),
            Some(vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)])
        );
        // A name and an id prefix of the same container: one answer.
        n.insert(&ep(
            "aaaaaaaaaaaa01",
            "front",
            [10, 1, 0, 2],
            "aaaaaaaaaaaa",
            &[],
        ));
        assert_eq!(
            n.lookup("front", "aaaaaaaaaaaa", None),
            Some(vec![Ipv4Addr::new(10, 1, 0, 2)])
        );
        // Replacing the endpoint dropped its old aliases.
        assert_eq!(
            n.lookup("front", "svc", None),
            Some(vec![Ipv4Addr::new(10, 1, 0, 3)])
        );
    }

    #[test]
    fn other_networks_only_for_containers_on_them() {
        let n = Names::default();
        let app_front = [10, 1, 0, 2];
        n.insert(&ep("app", "front", app_front, "app", &[]));
        n.insert(&ep("app", "back", [10, 2, 0, 2], "app", &[]));
        n.insert(&ep("web", "front", [10, 1, 0, 3], "web", &[]));
        n.insert(&ep("db", "back", [10, 2, 0, 3], "db", &[]));
        let db = Some(vec![Ipv4Addr::new(10, 2, 0, 3)]);
        assert_eq!(n.lookup("front", "db", Some(app_front.into())), db);
        assert_eq!(n.lookup("front", "db", Some([10, 1, 0, 3].into())), None);
        assert_eq!(n.lookup("front", "db", None), None);
        // An address on another network is not an asker of this one.
        assert_eq!(n.lookup("front", "db", Some([10, 2, 0, 2].into())), None);
        n.remove("back", "app");
        assert_eq!(n.lookup("front", "db", Some(app_front.into())), None);
        assert_eq!(
            n.lookup("back", "db", None),
            db,
            "db is still on back after app left"
        );
        n.remove("back", "db");
        n.remove("front", "app");
        n.remove("front", "web");
        let idx = n.read();
        assert!(idx.networks.is_empty() && idx.containers.is_empty());
    }

    #[test]
    fn replace_all_and_clear_start_over() {
        let n = Names::default();
        n.insert(&ep("old", "front", [10, 1, 0, 2], "old", &[]));
        let eps = [ep("new", "front", [10, 1, 0, 2], "new", &[])];
        n.replace_all(&eps);
        assert_eq!(n.lookup("front", "old", None), None);
        assert_eq!(
            n.lookup("front", "new", None),
            Some(vec![Ipv4Addr::new(10, 1, 0, 2)])
        );
        n.clear();
        assert_eq!(n.lookup("front", "new", None), None);
    }
}
