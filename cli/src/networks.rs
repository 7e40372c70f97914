//! `network create|ls|inspect|rm`, against the network daemon. Output as
//! Docker's: the `ls` table, `inspect` objects shaped like Docker's. The
//! daemon's errors are printed as it sends them; failures exit 1.

use std::collections::BTreeMap;
use std::io::{self, Write as _};

use anyhow::{bail, Result};
use rdock_proto::net::v1::{
    CreateNetworkRequest, InspectNetworkRequest, ListNetworksRequest, Network, RemoveNetworkRequest,
};
use rdock_proto::runtime::v1::{ConnectNetworkRequest, DisconnectNetworkRequest};
use serde::Serialize;

use crate::args::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkRmArgs,
};
use crate::conn::Target;
use crate::containers::for_each;
use crate::error::{self, Reported};
use crate::format::{check_template, created_at, json_reindent, render_rows, rfc3339, short_id};
use crate::ports::natural_cmp;
use crate::template::GoTemplate;

/// Networks are local to their host, as Docker's bridge networks are.
const SCOPE: &str = "local";

/// The only driver rdock has.
const DRIVER: &str = "bridge";

pub async fn create(target: &Target, args: &NetworkCreateArgs) -> Result<()> {
    if args.driver != DRIVER {
        bail!(
            "network driver \"{}\" is not supported: rdock has only \"{DRIVER}\"",
            args.driver
        );
    }
    let mut net = target.net().await?;
    let network = net
        .create_network(CreateNetworkRequest {
            name: args.name.clone(),
            subnet: args.subnet.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut out = io::stdout().lock();
    writeln!(out, "{}", network.id)?;
    out.flush()?;
    Ok(())
}

/// `network connect`: the runtime daemon attaches the container (running
/// or not); prints nothing, as Docker.
pub async fn connect(target: &Target, args: &NetworkConnectArgs) -> Result<()> {
    let mut rt = target.runtime().await?;
    rt.connect_network(ConnectNetworkRequest {
        id: args.container.clone(),
        network: args.network.clone(),
        aliases: args.aliases.clone(),
    })
    .await?;
    Ok(())
}

/// `network disconnect`; prints nothing, as Docker.
pub async fn disconnect(target: &Target, args: &NetworkDisconnectArgs) -> Result<()> {
    let mut rt = target.runtime().await?;
    rt.disconnect_network(DisconnectNetworkRequest {
        id: args.container.clone(),
        network: args.network.clone(),
        force: args.force,
    })
    .await?;
    Ok(())
}

/// The JSON object of `network ls --format json` (keys sorted, as Docker's).
#[derive(Debug, Serialize)]
struct NetworkJson {
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "Driver")]
    driver: String,
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "IPv6")]
    ipv6: String,
    #[serde(rename = "Internal")]
    internal: String,
    #[serde(rename = "Labels")]
    labels: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Scope")]
    scope: String,
}

fn driver(n: &Network) -> String {
    if n.driver.is_empty() {
        DRIVER.to_string()
    } else {
        n.driver.clone()
    }
}

/// What `network ls` prints for these networks (sorted by name).
pub fn render_ls(args: &NetworkLsArgs, networks: &[Network]) -> Result<String> {
    let mut list: Vec<&Network> = networks.iter().collect();
    list.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let rows: Vec<NetworkJson> = list
        .iter()
        .map(|n| NetworkJson {
            created_at: created_at(n.created),
            driver: driver(n),
            id: if args.no_trunc {
                n.id.clone()
            } else {
                short_id(&n.id)
            },
            ipv6: "false".into(),
            internal: "false".into(),
            labels: String::new(),
            name: n.name.clone(),
            scope: SCOPE.into(),
        })
        .collect();
    if args.quiet {
        let mut out = String::new();
        for r in &rows {
            out.push_str(&r.id);
            out.push('\n');
        }
        return Ok(out);
    }
    render_rows(
        args.format.as_deref(),
        &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
        &rows,
        |r| {
            vec![
                r.id.clone(),
                r.name.clone(),
                r.driver.clone(),
                r.scope.clone(),
            ]
        },
    )
}

pub async fn ls(target: &Target, args: &NetworkLsArgs) -> Result<()> {
    // Fail on a bad template before talking to the daemon.
    if !args.quiet {
        check_template(args.format.as_deref())?;
    }
    let mut net = target.net().await?;
    let list = net
        .list_networks(ListNetworksRequest {})
        .await?
        .into_inner();
    let text = render_ls(args, &list.networks)?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `network inspect`'s object, keys in Docker's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    name: String,
    id: String,
    created: String,
    scope: String,
    driver: String,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    ipam: Ipam,
    internal: bool,
    attachable: bool,
    containers: BTreeMap<String, EndpointInspect>,
    options: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    driver: String,
    options: BTreeMap<String, String>,
    config: Vec<IpamConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    subnet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    gateway: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointInspect {
    name: String,
    mac_address: String,
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
}

/// A network as Docker's `network inspect` shows it.
pub fn inspect_object(n: &Network) -> NetworkInspect {
    let subnet_prefix = n
        .subnet
        .split_once('/')
        .and_then(|(_, p)| p.parse::<u32>().ok());
    let containers = n
        .endpoints
        .iter()
        .map(|e| {
            let prefix = Some(e.prefix_len).filter(|p| *p != 0).or(subnet_prefix);
            let ipv4_address = match (e.ip_address.as_str(), prefix) {
                ("", _) => String::new(),
                (ip, Some(p)) => format!("{ip}/{p}"),
                (ip, None) => ip.to_string(),
            };
            let endpoint = EndpointInspect {
                name: e.name.trim_start_matches('/').to_string(),
                mac_address: e.mac_address.clone(),
                ipv4_address,
                ipv6_address: String::new(),
            };
            (e.container_id.clone(), endpoint)
        })
        .collect();
    let config = if n.subnet.is_empty() {
        Vec::new()
    } else {
        vec![IpamConfig {
            subnet: n.subnet.clone(),
            gateway: n.gateway.clone(),
        }]
    };
    let mut options = BTreeMap::new();
    if !n.bridge.is_empty() {
        options.insert("bridge.name".to_string(), n.bridge.clone());
    }
    NetworkInspect {
        name: n.name.clone(),
        id: n.id.clone(),
        created: rfc3339(n.created),
        scope: SCOPE.into(),
        driver: driver(n),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            options: BTreeMap::new(),
            config,
        },
        internal: false,
        attachable: false,
        containers,
        options,
        labels: BTreeMap::new(),
    }
}

pub async fn inspect(target: &Target, args: &NetworkInspectArgs) -> Result<()> {
    let tmpl = args.format.as_deref().map(GoTemplate::parse).transpose()?;
    let mut net = target.net().await?;
    let mut failed = false;
    let mut found = Vec::new();
    for name in &args.networks {
        match net
            .inspect_network(InspectNetworkRequest {
                network: name.clone(),
            })
            .await
        {
            Ok(n) => found.push(inspect_object(&n.into_inner())),
            Err(status) => {
                failed = true;
                error::print_line(&error::status_message(&status));
            }
        }
    }
    let mut out = io::stdout().lock();
    match &tmpl {
        Some(t) => {
            for obj in &found {
                writeln!(out, "{}", t.render(&serde_json::to_value(obj)?)?)?;
            }
        }
        None => writeln!(out, "{}", json_reindent(&serde_json::to_string(&found)?))?,
    }
    out.flush()?;
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

pub async fn rm(target: &Target, args: &NetworkRmArgs) -> Result<()> {
    let net = target.net().await?;
    for_each(&args.networks, |network| {
        let mut net = net.clone();
        async move {
            net.remove_network(RemoveNetworkRequest { network })
                .await
                .map(drop)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdock_proto::net::v1::Endpoint;

    const BRIDGE_ID: &str = "f3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f";
    const APP_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    fn sample() -> Vec<Network> {
        vec![
            Network {
                id: APP_ID.into(),
                name: "app-net".into(),
                driver: "bridge".into(),
                subnet: "10.89.1.0/24".into(),
                gateway: "10.89.1.1".into(),
                bridge: "rdock-0a1b2c3d".into(),
                created: 1_727_386_302,
                endpoints: vec![Endpoint {
                    container_id: "c0ffee".into(),
                    network: "app-net".into(),
                    ip_address: "10.89.1.2".into(),
                    prefix_len: 24,
                    gateway: "10.89.1.1".into(),
                    mac_address: "02:42:0a:59:01:02".into(),
                    ports: vec![],
                    name: "web".into(),
                    aliases: vec!["w".into()],
                }],
                builtin: false,
            },
            Network {
                id: BRIDGE_ID.into(),
                name: "bridge".into(),
                driver: String::new(),
                subnet: "10.89.0.0/24".into(),
                gateway: "10.89.0.1".into(),
                bridge: "rdock0".into(),
                created: 1_727_386_000,
                endpoints: vec![],
                builtin: true,
            },
        ]
    }

    fn args() -> NetworkLsArgs {
        NetworkLsArgs {
            quiet: false,
            no_trunc: false,
            format: None,
        }
    }

    #[test]
    fn ls_table_like_docker() {
        assert_eq!(
            render_ls(&args(), &sample()).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             0a1b2c3d4e5f   app-net   bridge    local\n\
             f3a1b2c3d4e5   bridge    bridge    local\n"
        );
        assert_eq!(
            render_ls(&args(), &[]).unwrap(),
            "NETWORK ID   NAME      DRIVER    SCOPE\n"
        );
    }

    #[test]
    fn ls_quiet_json_template() {
        let mut a = args();
        a.quiet = true;
        assert_eq!(
            render_ls(&a, &sample()).unwrap(),
            "0a1b2c3d4e5f\nf3a1b2c3d4e5\n"
        );
        a.no_trunc = true;
        assert_eq!(
            render_ls(&a, &sample()).unwrap(),
            format!("{APP_ID}\n{BRIDGE_ID}\n")
        );
        let mut a = args();
        a.format = Some("json".into());
        let text = render_ls(&a, &sample()).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"CreatedAt":"2024-09-26 21:31:42 +0000 UTC","Driver":"bridge","ID":"0a1b2c3d4e5f","IPv6":"false","Internal":"false","Labels":"","Name":"app-net","Scope":"local"}"#
        );
        assert_eq!(text.lines().count(), 2);
        a.format = Some("{{.Name}}/{{.Driver}}".into());
        assert_eq!(
            render_ls(&a, &sample()).unwrap(),
            "app-net/bridge\nbridge/bridge\n"
        );
        a.format = Some("table {{.Name}}".into());
        assert!(render_ls(&a, &sample()).is_err());
    }

    #[test]
    fn inspect_like_docker() {
        let nets = sample();
        let text = json_reindent(&serde_json::to_string(&inspect_object(&nets[0])).unwrap());
        assert_eq!(
            text,
            r#"{
    "Name": "app-net",
    "Id": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "Created": "2024-09-26T21:31:42Z",
    "Scope": "local",
    "Driver": "bridge",
    "EnableIPv6": false,
    "IPAM": {
        "Driver": "default",
        "Options": {},
        "Config": [
            {
                "Subnet": "10.89.1.0/24",
                "Gateway": "10.89.1.1"
            }
        ]
    },
    "Internal": false,
    "Attachable": false,
    "Containers": {
        "c0ffee": {
            "Name": "web",
            "MacAddress": "02:42:0a:59:01:02",
            "IPv4Address": "10.89.1.2/24",
            "IPv6Address": ""
        }
    },
    "Options": {
        "bridge.name": "rdock-0a1b2c3d"
    },
    "Labels": {}
}"#
        );
        // No subnet: no IPAM config; a missing prefix comes from the subnet.
        let mut n = nets[0].clone();
        n.endpoints[0].prefix_len = 0;
        n.subnet = "10.89.1.0/25".into();
        let v = serde_json::to_value(inspect_object(&n)).unwrap();
        assert_eq!(v["Containers"]["c0ffee"]["IPv4Address"], "10.89.1.2/25");
        n.subnet.clear();
        n.bridge.clear();
        let v = serde_json::to_value(inspect_object(&n)).unwrap();
        assert_eq!(v["IPAM"]["Config"], serde_json::json!([]));
        assert_eq!(v["Options"], serde_json::json!({}));
        assert_eq!(v["Containers"]["c0ffee"]["IPv4Address"], "10.89.1.2");
        let v = serde_json::to_value(inspect_object(&nets[1])).unwrap();
        assert_eq!(v["Driver"], "bridge");
        assert_eq!(v["Containers"], serde_json::json!({}));
    }
}
