//! Who may call what on the runtime daemon.

use rdock_common::authz::{Access, Policy, Rule};

pub const RULES: &[Rule] = &[Rule {
    method: "/rdock.runtime.v1.RuntimeService/Version",
    access: Access::Read,
    daemons: &["imaged", "netd"],
}];

pub const POLICY: Policy = Policy { rules: RULES };
