//! Who may call what on the network daemon. Admins may call everything;
//! viewers the read calls; the runtime daemon attaches and detaches
//! containers and reads networks.

use rdock_common::authz::{Access, Policy, Rule};

macro_rules! rule {
    ($m:literal, $a:expr, $d:expr) => {
        Rule {
            method: concat!("/rdock.net.v1.NetService/", $m),
            access: $a,
            daemons: $d,
        }
    };
}

pub const RULES: &[Rule] = &[
    rule!("ListNetworks", Access::Read, &["runtimed"]),
    rule!("InspectNetwork", Access::Read, &["runtimed"]),
    rule!("CreateNetwork", Access::Write, &[]),
    rule!("RemoveNetwork", Access::Write, &[]),
    rule!("Attach", Access::Write, &["runtimed"]),
    rule!("Detach", Access::Write, &["runtimed"]),
];

pub const POLICY: Policy = Policy { rules: RULES };

#[cfg(test)]
mod tests {
    use super::*;
    use rdock_common::identity::{Identity, Role};

    const S: &str = "/rdock.net.v1.NetService/";

    fn who(name: &str, role: Role) -> Identity {
        Identity {
            name: name.into(),
            role,
        }
    }

    #[test]
    fn table() {
        let runtimed = who("runtimed", Role::Daemon);
        let imaged = who("imaged", Role::Daemon);
        let viewer = who("bob", Role::Viewer);
        let admin = who("admin", Role::Admin);
        for m in ["Attach", "Detach", "ListNetworks", "InspectNetwork"] {
            assert!(POLICY.allows(&runtimed, &format!("{S}{m}")), "{m}");
            assert!(!POLICY.allows(&imaged, &format!("{S}{m}")), "{m}");
        }
        for m in ["CreateNetwork", "RemoveNetwork", "Attach", "Detach"] {
            assert!(!POLICY.allows(&viewer, &format!("{S}{m}")), "{m}");
            assert!(POLICY.allows(&admin, &format!("{S}{m}")), "{m}");
        }
        assert!(!POLICY.allows(&runtimed, &format!("{S}CreateNetwork")));
        assert!(POLICY.allows(&viewer, &format!("{S}ListNetworks")));
        assert!(POLICY.allows(&viewer, &format!("{S}InspectNetwork")));
    }
}
