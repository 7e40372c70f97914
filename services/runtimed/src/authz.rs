//! Who may call what on the runtime daemon. Admins may call everything;
//! viewers the read calls (list, inspect, logs, top, wait, version).

use rdock_common::authz::{Access, Policy, Rule};

macro_rules! rule {
    ($m:literal, $a:expr) => {
        Rule {
            method: concat!("/rdock.runtime.v1.RuntimeService/", $m),
            access: $a,
            daemons: &[],
        }
    };
}

pub const RULES: &[Rule] = &[
    rule!("Version", Access::Read),
    rule!("ListContainers", Access::Read),
    rule!("InspectContainer", Access::Read),
    rule!("Logs", Access::Read),
    rule!("Top", Access::Read),
    rule!("Wait", Access::Read),
    rule!("CreateContainer", Access::Write),
    rule!("StartContainer", Access::Write),
    rule!("Attach", Access::Write),
    rule!("StopContainer", Access::Write),
    rule!("KillContainer", Access::Write),
    rule!("RemoveContainer", Access::Write),
];

pub const POLICY: Policy = Policy { rules: RULES };
