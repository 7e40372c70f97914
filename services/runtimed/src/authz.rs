//! Who may call what on the runtime daemon. Admins may call everything;
//! viewers the read calls (list, inspect, logs, top, wait, version, diff,
//! and listing and inspecting volumes).

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
    rule!("Diff", Access::Read),
    rule!("ListVolumes", Access::Read),
    rule!("InspectVolume", Access::Read),
    rule!("CreateContainer", Access::Write),
    rule!("StartContainer", Access::Write),
    rule!("Attach", Access::Write),
    rule!("StopContainer", Access::Write),
    rule!("KillContainer", Access::Write),
    rule!("RemoveContainer", Access::Write),
    rule!("Resize", Access::Write),
    rule!("Exec", Access::Write),
    rule!("Commit", Access::Write),
    rule!("Export", Access::Write),
    rule!("ConnectNetwork", Access::Write),
    rule!("DisconnectNetwork", Access::Write),
    rule!("StatPath", Access::Write),
    rule!("CopyFrom", Access::Write),
    rule!("CopyTo", Access::Write),
    rule!("CreateVolume", Access::Write),
    rule!("RemoveVolume", Access::Write),
    rule!("PruneVolumes", Access::Write),
];

pub const POLICY: Policy = Policy { rules: RULES };

#[cfg(test)]
mod tests {
    use super::*;
    use rdock_common::identity::{Identity, Role};

    const S: &str = "/rdock.runtime.v1.RuntimeService/";

    fn who(name: &str, role: Role) -> Identity {
        Identity {
            name: name.into(),
            role,
        }
    }

    #[test]
    fn viewers_read_admins_do_everything() {
        let viewer = who("bob", Role::Viewer);
        let admin = who("admin", Role::Admin);
        let imaged = who("imaged", Role::Daemon);
        for m in [
            "Version",
            "ListContainers",
            "InspectContainer",
            "Logs",
            "Top",
            "Wait",
            "Diff",
            "ListVolumes",
            "InspectVolume",
        ] {
            assert!(POLICY.allows(&viewer, &format!("{S}{m}")), "{m}");
        }
        for m in [
            "CreateContainer",
            "Attach",
            "Exec",
            "Resize",
            "Commit",
            "Export",
            "ConnectNetwork",
            "DisconnectNetwork",
            "RemoveContainer",
            "StatPath",
            "CopyFrom",
            "CopyTo",
            "CreateVolume",
            "RemoveVolume",
            "PruneVolumes",
        ] {
            assert!(!POLICY.allows(&viewer, &format!("{S}{m}")), "{m}");
            assert!(POLICY.allows(&admin, &format!("{S}{m}")), "{m}");
            assert!(!POLICY.allows(&imaged, &format!("{S}{m}")), "{m}");
        }
        for r in RULES {
            assert!(r.method.starts_with(S), "{}", r.method);
        }
    }
}
