//! IPv4 subnets: parsing, overlap, and carving a pool into /24s.

use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};

/// An IPv4 network in CIDR form, its address aligned to its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

/// The prefix lengths a network may have: /8 is already 16 million
/// addresses, and /30 is the smallest with room for a gateway and one
/// container.
pub const PREFIXES: std::ops::RangeInclusive<u8> = 8..=30;

impl Subnet {
    /// Parses `10.1.0.0/16`. The address must be the network's first
    /// address (10.1.0.1/16 is refused, like Docker does).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "invalid subnet {s:?}: {why} (expected an IPv4 CIDR like 10.124.1.0/24)"
            ))
        };
        let (ip, len) = s.split_once('/').ok_or_else(|| bad("no prefix length"))?;
        let addr: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad("the prefix length must be a number from 0 to 32"))?;
        if !PREFIXES.contains(&prefix) {
            return Err(bad(&format!(
                "the prefix length must be from /{} to /{}",
                PREFIXES.start(),
                PREFIXES.end()
            )));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(bad(&format!(
                "host bits are set; did you mean {}?",
                Subnet::new(addr, prefix)
            )));
        }
        Ok(net)
    }

    /// The subnet of `prefix` bits that holds `addr`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// The gateway: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The addresses a container may get: all but the network address, the
    /// gateway and the broadcast address.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (self.first() + 2..self.last()).map(Ipv4Addr::from)
    }

    /// The subnets of `prefix` bits inside this one, in order (none when
    /// `prefix` is shorter than this subnet's).
    pub fn carve(&self, prefix: u8) -> impl Iterator<Item = Subnet> {
        let prefix = prefix.min(32);
        let count: u64 = if prefix < self.prefix {
            0
        } else {
            1u64 << (prefix - self.prefix)
        };
        let step: u64 = 1u64 << (32 - prefix);
        let first = u64::from(self.first());
        (0..count).map(move |i| {
            // Fits: first + i * step stays within this subnet.
            Subnet::new(Ipv4Addr::from((first + i * step) as u32), prefix)
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let s = Subnet::parse("10.123.0.0/16").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 123, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 123, 255, 255));
        assert_eq!(s.to_string(), "10.123.0.0/16");
        for (bad, why) in [
            ("10.0.0.0/33", "from 0 to 32"),
            ("10.0.0.0/31", "from /8 to /30"),
            ("10.0.0.1/16", "did you mean 10.0.0.0/16"),
            ("x/16", "not an IPv4"),
            ("10.0.0.0", "no prefix"),
            ("10.0.0.0/", "from 0 to 32"),
            ("::1/64", "not an IPv4"),
            ("10.0.0.0/-1", "from 0 to 32"),
        ] {
            let e = Subnet::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.starts_with(&format!("invalid subnet {bad:?}")), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn overlap_and_contains() {
        let a = Subnet::parse("10.1.0.0/16").unwrap();
        let b = Subnet::parse("10.1.200.0/24").unwrap();
        let c = Subnet::parse("10.2.0.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
        assert!(a.overlaps(&a));
        assert!(a.contains(Ipv4Addr::new(10, 1, 3, 4)));
        assert!(!a.contains(Ipv4Addr::new(10, 2, 0, 1)));
    }

    #[test]
    fn hosts_skip_network_gateway_and_broadcast() {
        let s = Subnet::parse("10.9.0.0/29").unwrap();
        let h: Vec<String> = s.hosts().map(|i| i.to_string()).collect();
        assert_eq!(
            h,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
    }

    #[test]
    fn carving_a_pool() {
        let p = Subnet::parse("10.124.0.0/16").unwrap();
        let v: Vec<Subnet> = p.carve(24).collect();
        assert_eq!(v.len(), 256);
        assert_eq!(v[0].to_string(), "10.124.0.0/24");
        assert_eq!(v[255].to_string(), "10.124.255.0/24");
        assert_eq!(Subnet::parse("10.0.0.0/24").unwrap().carve(16).count(), 0);
        let top = Subnet::parse("255.255.255.0/24").unwrap();
        assert_eq!(top.carve(24).count(), 1);
    }
}
