//! Free loopback ports for daemons the harness cannot hand a listener to.
//!
//! Ports are taken below the kernel's ephemeral range (so outgoing
//! connections never sit on them), starting at a random place, bind-tested,
//! and remembered for the life of the test process so that tests running in
//! parallel threads never get the same ones.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The first of `n` consecutive free ports on 127.0.0.1.
pub fn free_ports(n: u16) -> u16 {
    use rand::Rng;
    let low = 15000u16;
    let high = ephemeral_low().saturating_sub(n).max(low + 1000);
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    let start = rand::rng().random_range(low..high);
    for i in 0..(high - low) {
        let base = low + (start - low + i) % (high - low);
        let ports = base..base + n;
        if ports.clone().any(|p| taken.contains(&p)) {
            continue;
        }
        if ports.clone().all(bindable) {
            taken.extend(ports);
            return base;
        }
    }
    panic!("no {n} consecutive free ports between {low} and {high} on 127.0.0.1");
}

/// A loopback port nothing listens on (and the harness will not hand out).
pub fn closed_port() -> u16 {
    free_ports(1)
}
