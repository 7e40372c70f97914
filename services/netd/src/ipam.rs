//! Address management: which address a new endpoint gets, and the MAC
//! address that goes with it. The records live in [`crate::store`]; this
//! is the pure part, called inside the store's write transaction so that
//! checking and taking an address are one step.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::subnet::Subnet;

/// The lowest free host address of `subnet` (never the network address,
/// the gateway or the broadcast address), or an error when all are taken.
pub fn allocate(subnet: &Subnet, network: &str, used: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr> {
    subnet.hosts().find(|ip| !used.contains(ip)).ok_or_else(|| {
        Error::Exhausted(format!(
            "no available IPv4 addresses on network {network} ({subnet}): all {} are in use",
            used.len()
        ))
    })
}

/// Docker's MAC for an address: `02:42:` and the four address bytes, so
/// an address that moves to a new container keeps neighbours' ARP entries
/// right.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_address_and_exhaustion() {
        let s = Subnet::parse("10.5.0.0/29").unwrap();
        let mut used = BTreeSet::new();
        let mut got = Vec::new();
        for _ in 0..5 {
            let ip = allocate(&s, "n", &used).unwrap();
            assert!(used.insert(ip), "{ip} handed out twice");
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
        );
        let e = allocate(&s, "n", &used).unwrap_err();
        assert!(matches!(e, Error::Exhausted(_)), "{e}");
        assert!(e
            .to_string()
            .contains("no available IPv4 addresses on network n"));
        // A released address is handed out again.
        used.remove(&Ipv4Addr::new(10, 5, 0, 4));
        assert_eq!(
            allocate(&s, "n", &used).unwrap(),
            Ipv4Addr::new(10, 5, 0, 4)
        );
    }

    #[test]
    fn mac_follows_the_address() {
        let m = mac_for(Ipv4Addr::new(10, 123, 0, 2));
        assert_eq!(mac_string(&m), "02:42:0a:7b:00:02");
    }
}
