//! tmpfs mount options, the way Docker builds them for `--tmpfs` and
//! `--mount type=tmpfs`: `noexec,nosuid,nodev,rprivate` first, then `ro`,
//! `mode=`, `size=` and the user's options; a later option overrides an
//! earlier one of its kind (`exec` beats `noexec`, the last `size=` wins).
//! Options outside a known list are refused.

/// Flags Docker accepts for a tmpfs, and the group each belongs to (one
/// flag per group survives the merge).
const FLAGS: &[(&str, &str)] = &[
    ("ro", "ro"),
    ("rw", "ro"),
    ("suid", "suid"),
    ("nosuid", "suid"),
    ("dev", "dev"),
    ("nodev", "dev"),
    ("exec", "exec"),
    ("noexec", "exec"),
    ("sync", "sync"),
    ("async", "sync"),
    ("dirsync", "dirsync"),
    ("mand", "mand"),
    ("nomand", "mand"),
    ("atime", "atime"),
    ("noatime", "atime"),
    ("diratime", "diratime"),
    ("nodiratime", "diratime"),
    ("relatime", "relatime"),
    ("norelatime", "relatime"),
    ("strictatime", "strictatime"),
    ("nostrictatime", "strictatime"),
    ("private", "propagation"),
    ("rprivate", "propagation"),
    ("shared", "propagation"),
    ("rshared", "propagation"),
    ("slave", "propagation"),
    ("rslave", "propagation"),
    ("unbindable", "propagation"),
    ("runbindable", "propagation"),
];

/// Docker's defaults for every tmpfs.
const DEFAULTS: [&str; 4] = ["noexec", "nosuid", "nodev", "rprivate"];

/// The merged option list of a tmpfs, or why it is refused.
pub(crate) fn options(
    read_only: bool,
    size: i64,
    mode: u32,
    extra: &[String],
) -> Result<Vec<String>, String> {
    if size < 0 {
        return Err(format!("invalid tmpfs size {size}: must not be negative"));
    }
    if mode > 0o7777 {
        return Err(format!(
            "invalid tmpfs mode {mode:o}: not a permission mode"
        ));
    }
    let mut all: Vec<String> = DEFAULTS.iter().map(|s| s.to_string()).collect();
    if read_only {
        all.push("ro".into());
    }
    if mode != 0 {
        all.push(format!("mode={mode:o}"));
    }
    if size != 0 {
        all.push(format!("size={}", size_string(size)));
    }
    for opt in extra {
        for o in opt.split(',') {
            if o == "defaults" {
                continue;
            }
            check(o)?;
            all.push(o.to_string());
        }
    }
    // Keep the last of each kind, in the order they came.
    let mut seen: Vec<String> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for o in all.iter().rev() {
        let key = match FLAGS.iter().find(|(f, _)| f == o) {
            Some((_, group)) => format!("flag:{group}"),
            None => format!("data:{}", o.split('=').next().unwrap_or(o)),
        };
        if !seen.contains(&key) {
            seen.push(key);
            out.push(o.clone());
        }
    }
    out.reverse();
    Ok(out)
}

/// `size=` the way Docker writes it: the largest of g/m/k that divides it.
fn size_string(size: i64) -> String {
    for (suffix, div) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if size % div == 0 {
            return format!("{}{suffix}", size / div);
        }
    }
    size.to_string()
}

fn check(o: &str) -> Result<(), String> {
    let bad = || format!("invalid tmpfs option {o:?}");
    if FLAGS.iter().any(|(f, _)| *f == o) {
        return Ok(());
    }
    let Some((key, value)) = o.split_once('=') else {
        return Err(bad());
    };
    let ok = match key {
        "size" | "nr_blocks" | "nr_inodes" => number_with_suffix(value),
        "mode" => {
            !value.is_empty()
                && value.len() <= 4
                && value.bytes().all(|c| (b'0'..=b'7').contains(&c))
        }
        "uid" | "gid" => {
            !value.is_empty() && value.len() <= 10 && value.bytes().all(|c| c.is_ascii_digit())
        }
        "mpol" => {
            !value.is_empty()
                && value
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-'))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Digits with an optional k/m/g/% suffix, as tmpfs takes sizes.
fn number_with_suffix(v: &str) -> bool {
    let digits = v.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
    v.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.len() <= 20
        && digits.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_then_overrides() {
        assert_eq!(
            options(false, 0, 0, &[]).unwrap(),
            s(&["noexec", "nosuid", "nodev", "rprivate"])
        );
        assert_eq!(
            options(true, 64 << 20, 0o1770, &s(&["exec", "size=1g"])).unwrap(),
            s(&[
                "nosuid",
                "nodev",
                "rprivate",
                "ro",
                "mode=1770",
                "exec",
                "size=1g"
            ])
        );
        assert_eq!(
            options(false, 1000, 0, &s(&["rw,noatime", "defaults"])).unwrap(),
            s(&[
                "noexec",
                "nosuid",
                "nodev",
                "rprivate",
                "size=1000",
                "rw",
                "noatime"
            ])
        );
        assert_eq!(options(false, 3 << 10, 0, &[]).unwrap()[4], "size=3k");
    }

    #[test]
    fn unknown_or_malformed_options_are_refused() {
        for bad in [
            "foo",
            "size=",
            "size=1x",
            "mode=9",
            "uid=-1",
            "bind",
            "rbind",
            "remount",
            "lowerdir=/etc",
            "",
            "mpol=a b",
        ] {
            let e = options(false, 0, 0, &[bad.to_string()]).unwrap_err();
            assert!(e.starts_with("invalid tmpfs option"), "{bad}: {e}");
        }
        assert!(options(false, -1, 0, &[]).is_err());
        assert!(options(false, 0, 0o17777, &[]).is_err());
        options(
            false,
            0,
            0,
            &s(&["uid=1000", "gid=1000", "nr_inodes=10k", "mpol=bind:0-3"]),
        )
        .unwrap();
    }
}
