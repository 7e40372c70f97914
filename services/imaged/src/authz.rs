//! Who may call what on the image daemon. Admins may call everything;
//! viewers the read calls; the runtime daemon the root filesystem calls.

use rdock_common::authz::{Access, Policy, Rule};

macro_rules! rule {
    ($m:literal, $a:expr, $d:expr) => {
        Rule {
            method: concat!("/rdock.image.v1.ImageService/", $m),
            access: $a,
            daemons: $d,
        }
    };
}

pub const RULES: &[Rule] = &[
    rule!("ListImages", Access::Read, &["runtimed"]),
    rule!("GetImage", Access::Read, &["runtimed"]),
    rule!("Pull", Access::Write, &["runtimed"]),
    rule!("Push", Access::Write, &[]),
    rule!("Import", Access::Write, &[]),
    rule!("TagImage", Access::Write, &[]),
    rule!("RemoveImage", Access::Write, &[]),
    rule!("PrepareRootfs", Access::Write, &["runtimed"]),
    rule!("RemoveRootfs", Access::Write, &["runtimed"]),
];

pub const POLICY: Policy = Policy { rules: RULES };

#[cfg(test)]
mod tests {
    use super::*;
    use rdock_common::identity::{Identity, Role};

    const S: &str = "/rdock.image.v1.ImageService/";

    #[test]
    fn every_rule_names_a_method_of_the_service() {
        for r in RULES {
            assert!(r.method.starts_with(S));
        }
        let netd = Identity {
            name: "netd".into(),
            role: Role::Daemon,
        };
        let runtimed = Identity {
            name: "runtimed".into(),
            role: Role::Daemon,
        };
        let viewer = Identity {
            name: "v".into(),
            role: Role::Viewer,
        };
        let m = |x: &str| format!("{S}{x}");
        assert!(POLICY.allows(&runtimed, &m("PrepareRootfs")));
        assert!(!POLICY.allows(&netd, &m("PrepareRootfs")));
        assert!(!POLICY.allows(&runtimed, &m("RemoveImage")));
        assert!(POLICY.allows(&viewer, &m("ListImages")));
        assert!(!POLICY.allows(&viewer, &m("Pull")));
    }
}
