//! Who may call what on the network daemon.

use rdock_common::authz::{Access, Policy, Rule};

pub const RULES: &[Rule] = &[
    Rule {
        method: "/rdock.net.v1.NetService/ListNetworks",
        access: Access::Read,
        daemons: &["runtimed"],
    },
    Rule {
        method: "/rdock.net.v1.NetService/Attach",
        access: Access::Write,
        daemons: &["runtimed"],
    },
    Rule {
        method: "/rdock.net.v1.NetService/Detach",
        access: Access::Write,
        daemons: &["runtimed"],
    },
];

pub const POLICY: Policy = Policy { rules: RULES };
