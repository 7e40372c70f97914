//! `network connect` and `network disconnect`: a container joins or leaves
//! one more network. A container whose network namespace exists (running,
//! or created and not started yet) is attached or detached by the network
//! daemon at once, and its hosts and resolv.conf follow; a stopped one only
//! has its record changed, and joins its networks at its next start.

use rdock_proto::net::v1::{DetachRequest, InspectNetworkRequest};

use crate::error::{Error, Result};
use crate::etcfiles;
use crate::model::{Container, NetworkAttachment};
use crate::runtime::Runtime;

/// Docker's refusal to put a container on the host's network, or to take
/// one off it; also what a container on the host's network is told when it
/// would join another.
pub const HOST_NETWORK: &str =
    "container cannot be disconnected from host network or connected to host network";
/// Docker's refusal to mix network `none` with others.
pub const NO_NETWORK: &str =
    "container cannot be connected to multiple networks with one of the networks in private (none) mode";
/// Docker's refusal of aliases on the default network.
pub const ALIAS_ON_DEFAULT: &str =
    "network-scoped alias is supported only for containers in user defined networks";

/// Whether `c` may join `network` with `aliases` (its canonical name).
pub fn check_connect(c: &Container, network: &str, aliases: &[String]) -> Result<()> {
    if network == "host" || c.host.network_mode == "host" {
        return Err(Error::Conflict(HOST_NETWORK.into()));
    }
    if c.network(network).is_some() {
        return Err(Error::AlreadyExists(format!(
            "endpoint with name {} already exists in network {network}",
            c.name
        )));
    }
    let on_none = c.networks().iter().any(|a| a.network == "none");
    if on_none || (network == "none" && !c.networks().is_empty()) {
        return Err(Error::Conflict(NO_NETWORK.into()));
    }
    if !aliases.is_empty() && network == "bridge" {
        return Err(Error::InvalidArgument(ALIAS_ON_DEFAULT.into()));
    }
    for a in aliases {
        if a.is_empty() || a.len() > 255 || !a.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidArgument(format!("invalid alias {a:?}")));
        }
    }
    Ok(())
}

/// Whether `c` may leave `network`.
pub fn check_disconnect(c: &Container, network: &str) -> Result<()> {
    if c.host.network_mode == "host" && network == "host" {
        return Err(Error::Conflict(HOST_NETWORK.into()));
    }
    if c.network(network).is_none() {
        return Err(Error::Conflict(format!(
            "container {} is not connected to network {network}",
            c.id
        )));
    }
    Ok(())
}

impl Runtime {
    /// The network's name as the network daemon knows it (the user may
    /// give an id or an id prefix); `none` and `host` are names of their
    /// own. An unknown network is `network NAME not found`.
    async fn network_name(&self, network: &str) -> Result<String> {
        if network.is_empty() {
            return Err(Error::InvalidArgument("no network given".into()));
        }
        if ["none", "host", "bridge"].contains(&network) {
            return Ok(network.to_string());
        }
        let n = self
            .netd
            .clone()
            .inspect_network(InspectNetworkRequest {
                network: network.to_string(),
            })
            .await
            .map_err(|s| self.peer_error("netd", s))?
            .into_inner();
        Ok(n.name)
    }

    /// Puts the container on one more network.
    #[tracing::instrument(skip_all, fields(container = %key, network = %network))]
    pub async fn connect_network(
        &self,
        key: &str,
        network: &str,
        aliases: Vec<String>,
    ) -> Result<()> {
        let c = self.find(key)?;
        let name = self.network_name(network).await?;
        let live = self.live(&c.id);
        let _op = live.op.lock().await;
        let mut c = self
            .store
            .get(&c.id)?
            .ok_or_else(|| Error::NotFound(format!("no such container: {key}")))?;
        check_connect(&c, &name, &aliases)?;
        let netns = self.netns(&c.id);
        let mut attachment = NetworkAttachment::new(&name, aliases);
        let attach_now = netns.exists();
        if attach_now {
            attachment.state = self
                .netd_attach(
                    &c.id,
                    &netns,
                    &name,
                    vec![],
                    &c.name,
                    attachment.aliases.clone(),
                )
                .await?;
        }
        c.networks_mut().push(attachment);
        let saved = async {
            if attach_now {
                self.update_etc_files(&c)?;
            }
            self.store.update(&c)
        }
        .await;
        if let Err(e) = saved {
            if attach_now {
                self.netd_detach(&c.id, &name).await;
            }
            return Err(e);
        }
        tracing::info!(attached = attach_now, ip = %c.network(&name).map_or("", |a| a.state.ip_address.as_str()), "connected");
        Ok(())
    }

    /// Takes the container off a network. With `force`, a network daemon
    /// that cannot detach it does not stop it from leaving the record.
    #[tracing::instrument(skip_all, fields(container = %key, network = %network))]
    pub async fn disconnect_network(&self, key: &str, network: &str, force: bool) -> Result<()> {
        let c = self.find(key)?;
        // A network the container is on by this very name needs no lookup
        // (it may be gone from the network daemon already).
        let name = if c.network(network).is_some() {
            network.to_string()
        } else {
            self.network_name(network).await?
        };
        let live = self.live(&c.id);
        let _op = live.op.lock().await;
        let mut c = self
            .store
            .get(&c.id)?
            .ok_or_else(|| Error::NotFound(format!("no such container: {key}")))?;
        check_disconnect(&c, &name)?;
        let attached = self.netns(&c.id).exists();
        if attached && name != "none" {
            let res = self
                .netd
                .clone()
                .detach(DetachRequest {
                    container_id: c.id.clone(),
                    network: name.clone(),
                })
                .await
                .map_err(|s| self.peer_error("netd", s));
            match res {
                Ok(_) => {}
                Err(e) if force => {
                    tracing::warn!(error = %e, "detach failed; removed from the record anyway")
                }
                Err(e) => return Err(e.context(format!("disconnect from network {name}"))),
            }
        }
        c.networks_mut().retain(|a| a.network != name);
        if attached {
            if let Err(e) = self.update_etc_files(&c) {
                tracing::warn!(error = %e, "update hosts and resolv.conf");
            }
        }
        self.store.update(&c)?;
        tracing::info!(attached, "disconnected");
        Ok(())
    }

    /// A best-effort detach from one network (undoing a connect).
    async fn netd_detach(&self, id: &str, network: &str) {
        if let Err(s) = self
            .netd
            .clone()
            .detach(DetachRequest {
                container_id: id.to_string(),
                network: network.to_string(),
            })
            .await
        {
            tracing::warn!(container = %id, network, error = %s.message(), "undo attach");
        }
    }

    /// The running container's hosts and resolv.conf for the networks it
    /// is on now.
    fn update_etc_files(&self, c: &Container) -> Result<()> {
        if c.host.network_mode == "host" {
            return Ok(());
        }
        etcfiles::update(
            &self.dir(&c.id),
            &c.config.hostname,
            &c.ips(),
            &c.dns_servers(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(networks: &[&str], mode: &str) -> Container {
        let mut c = Container {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            networks: Some(
                networks
                    .iter()
                    .map(|n| NetworkAttachment::new(n, vec![]))
                    .collect(),
            ),
            ..Default::default()
        };
        c.host.network_mode = mode.into();
        c
    }

    fn msg(r: Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn connect_refusals_like_docker() {
        let c = on(&["bridge"], "bridge");
        assert!(check_connect(&c, "front", &["api".into()]).is_ok());
        assert_eq!(msg(check_connect(&c, "host", &[])), HOST_NETWORK);
        assert_eq!(
            msg(check_connect(&c, "bridge", &[])),
            "endpoint with name web already exists in network bridge"
        );
        assert!(matches!(
            check_connect(&c, "bridge", &[]),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(msg(check_connect(&c, "none", &[])), NO_NETWORK);
        let h = on(&["host"], "host");
        assert_eq!(msg(check_connect(&h, "front", &[])), HOST_NETWORK);
        assert_eq!(msg(check_connect(&h, "host", &[])), HOST_NETWORK);
        let n = on(&["none"], "none");
        assert_eq!(msg(check_connect(&n, "front", &[])), NO_NETWORK);
        // Off every network: any one may be joined, none too.
        let empty = on(&[], "bridge");
        assert!(check_connect(&empty, "none", &[]).is_ok());
        assert!(check_connect(&empty, "bridge", &[]).is_ok());
        let d = on(&["front"], "front");
        assert_eq!(
            msg(check_connect(&d, "bridge", &["x".into()])),
            ALIAS_ON_DEFAULT
        );
        assert!(msg(check_connect(&d, "back", &["a b".into()])).contains("invalid alias"));
    }

    #[test]
    fn disconnect_refusals_like_docker() {
        let c = on(&["bridge", "front"], "bridge");
        assert!(check_disconnect(&c, "front").is_ok());
        assert!(check_disconnect(&c, "bridge").is_ok());
        let e = check_disconnect(&c, "back").unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
        assert_eq!(
            e.to_string(),
            "container 0123456789abcdef is not connected to network back"
        );
        let h = on(&["host"], "host");
        assert_eq!(msg(check_disconnect(&h, "host")), HOST_NETWORK);
        assert!(check_disconnect(&on(&["none"], "none"), "none").is_ok());
    }
}
