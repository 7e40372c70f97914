//! Who may call what on the image daemon. Admins may call everything;
//! viewers the read calls (diff and history among them); the runtime daemon
//! the root filesystem calls, diff, commit and export included.

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
    // The runtime daemon proxies `rdockctl diff/commit/export` here.
    rule!("DiffRootfs", Access::Read, &["runtimed"]),
    rule!("CommitRootfs", Access::Write, &["runtimed"]),
    // A container's whole filesystem, secrets and all: not a viewer's read.
    rule!("ExportRootfs", Access::Write, &["runtimed"]),
    rule!("History", Access::Read, &[]),
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
        for call in ["DiffRootfs", "CommitRootfs", "ExportRootfs"] {
            assert!(POLICY.allows(&runtimed, &m(call)), "{call}");
            assert!(!POLICY.allows(&netd, &m(call)), "{call}");
        }
        assert!(!POLICY.allows(&runtimed, &m("History")));
        for call in ["DiffRootfs", "History"] {
            assert!(POLICY.allows(&viewer, &m(call)), "{call}");
        }
        for call in ["CommitRootfs", "ExportRootfs"] {
            assert!(!POLICY.allows(&viewer, &m(call)), "{call}");
        }
        let admin = Identity {
            name: "admin".into(),
            role: Role::Admin,
        };
        for call in ["DiffRootfs", "CommitRootfs", "ExportRootfs", "History"] {
            assert!(POLICY.allows(&admin, &m(call)), "{call}");
        }
    }
}
