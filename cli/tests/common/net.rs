//! A mock network daemon: networks in memory, with Docker's refusals (a
//! name in use, a bad subnet, the default network, a network in use).

use std::sync::{Arc, Mutex};

use rdock_proto::net::v1::net_service_server::NetService;
use rdock_proto::net::v1::*;
use tonic::{Request, Response, Status};

pub const BRIDGE_NET_ID: &str = "f3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f";

#[derive(Default)]
pub struct NetState {
    pub networks: Vec<Network>,
    pub created: Vec<CreateNetworkRequest>,
    pub removed: Vec<String>,
    next: u64,
}

impl NetState {
    fn find(&self, key: &str) -> Option<usize> {
        self.networks
            .iter()
            .position(|n| n.name == key || (!key.is_empty() && n.id.starts_with(key)))
    }
}

#[derive(Clone)]
pub struct MockNet {
    pub state: Arc<Mutex<NetState>>,
}

impl Default for MockNet {
    fn default() -> Self {
        let bridge = Network {
            id: BRIDGE_NET_ID.into(),
            name: "bridge".into(),
            driver: "bridge".into(),
            subnet: "10.89.0.0/24".into(),
            gateway: "10.89.0.1".into(),
            bridge: "rdock0".into(),
            created: 1_727_386_000,
            endpoints: vec![Endpoint {
                container_id: "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8"
                    .into(),
                network: "bridge".into(),
                ip_address: "10.89.0.2".into(),
                prefix_len: 24,
                gateway: "10.89.0.1".into(),
                mac_address: "02:42:0a:59:00:02".into(),
                ports: vec![],
                name: "web".into(),
                aliases: vec![],
            }],
            builtin: true,
        };
        MockNet {
            state: Arc::new(Mutex::new(NetState {
                networks: vec![bridge],
                ..Default::default()
            })),
        }
    }
}

fn no_such(key: &str) -> Status {
    Status::not_found(format!("network {key} not found"))
}

#[tonic::async_trait]
impl NetService for MockNet {
    async fn list_networks(
        &self,
        _req: Request<ListNetworksRequest>,
    ) -> Result<Response<ListNetworksResponse>, Status> {
        let st = self.state.lock().unwrap();
        Ok(Response::new(ListNetworksResponse {
            networks: st.networks.clone(),
        }))
    }

    async fn create_network(
        &self,
        req: Request<CreateNetworkRequest>,
    ) -> Result<Response<Network>, Status> {
        let r = req.into_inner();
        let mut st = self.state.lock().unwrap();
        if st.networks.iter().any(|n| n.name == r.name) {
            return Err(Status::already_exists(format!(
                "network with name {} already exists",
                r.name
            )));
        }
        if r.subnet.ends_with("/33") {
            return Err(Status::invalid_argument(format!(
                "invalid subnet {}: invalid CIDR address",
                r.subnet
            )));
        }
        st.next += 1;
        let n = st.next;
        let subnet = if r.subnet.is_empty() {
            format!("10.89.{n}.0/24")
        } else {
            r.subnet.clone()
        };
        let gateway = subnet.replace(".0/24", ".1");
        let net = Network {
            id: format!("{n:04x}{:060x}", 0xbeef),
            name: r.name.clone(),
            driver: "bridge".into(),
            subnet,
            gateway,
            bridge: format!("rdock-{n:04x}"),
            created: 1_727_386_302,
            endpoints: vec![],
            builtin: false,
        };
        st.networks.push(net.clone());
        st.created.push(r);
        Ok(Response::new(net))
    }

    async fn inspect_network(
        &self,
        req: Request<InspectNetworkRequest>,
    ) -> Result<Response<Network>, Status> {
        let key = req.into_inner().network;
        let st = self.state.lock().unwrap();
        let i = st.find(&key).ok_or_else(|| no_such(&key))?;
        Ok(Response::new(st.networks[i].clone()))
    }

    async fn remove_network(
        &self,
        req: Request<RemoveNetworkRequest>,
    ) -> Result<Response<RemoveNetworkResponse>, Status> {
        let key = req.into_inner().network;
        let mut st = self.state.lock().unwrap();
        let i = st.find(&key).ok_or_else(|| no_such(&key))?;
        let n = &st.networks[i];
        if n.builtin {
            return Err(Status::failed_precondition(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !n.endpoints.is_empty() {
            return Err(Status::failed_precondition(format!(
                "error while removing network: network {} has active endpoints",
                n.name
            )));
        }
        st.networks.remove(i);
        st.removed.push(key);
        Ok(Response::new(RemoveNetworkResponse {}))
    }

    async fn attach(
        &self,
        _req: Request<AttachRequest>,
    ) -> Result<Response<AttachResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn detach(
        &self,
        _req: Request<DetachRequest>,
    ) -> Result<Response<DetachResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }
}
