//! Reading a process's mount table (`/proc/self/mountinfo`), one way for
//! every part of rdock that needs to know what is mounted where.

use std::path::PathBuf;

/// One line of mountinfo: the mount point (unescaped) and the optional
/// fields (`shared:N`, `master:N`, ...), space-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: String,
    pub optional: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a
/// backslash); anything that is not a valid escape is kept as it is.
pub fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escape = b.get(i + 1..i + 4).filter(|d| {
            b[i] == b'\\' && d[0] <= b'3' && d.iter().all(|c| (b'0'..=b'7').contains(c))
        });
        match escape {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The entries of a mountinfo text, in order (later lines are mounted over
/// earlier ones). Malformed lines are skipped.
pub fn parse(mountinfo: &str) -> Vec<MountEntry> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = unescape(fields.get(4)?);
            let optional = fields
                .iter()
                .skip(6)
                .take_while(|f| **f != "-")
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            Some(MountEntry {
                mount_point,
                optional,
            })
        })
        .collect()
}

/// This process's mount table; empty when it cannot be read.
pub fn current() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| parse(&s))
        .unwrap_or_default()
}

/// The mount points of this process's mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    current()
        .into_iter()
        .map(|e| PathBuf::from(e.mount_point))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_undone_and_bad_ones_kept() {
        assert_eq!(unescape(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape(r"/x\04"), r"/x\04");
        assert_eq!(unescape(r"/x\999"), r"/x\999");
        assert_eq!(unescape(r"/x\777"), r"/x\777");
        assert_eq!(unescape("\\"), "\\");
    }

    #[test]
    fn lines_give_mount_point_and_optional_fields() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    40 22 0:5 / /run/a\\040b rw - tmpfs tmpfs rw\n\
                    short line\n";
        assert_eq!(
            parse(text),
            vec![
                MountEntry {
                    mount_point: "/".into(),
                    optional: "shared:1".into()
                },
                MountEntry {
                    mount_point: "/run/a b".into(),
                    optional: String::new()
                },
            ]
        );
    }
}
