//! Docker's detach keys: `--detach-keys` parsing (`ctrl-p,ctrl-q`, the
//! default) and a detector that watches a tty session's input for them.

use anyhow::{anyhow, Result};

/// ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// `ctrl-@` … `ctrl-_`: the ASCII codes 0 to 31, in order.
const CTRL_KEYS: [&str; 32] = [
    "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
    "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
    "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
];

/// `--detach-keys`: comma-separated keys, each one character, `ctrl-X`
/// or `DEL` (moby/term's `ToBytes`). Empty or absent: the default.
pub fn parse_detach_keys(keys: Option<&str>) -> Result<Vec<u8>> {
    let keys = match keys {
        None | Some("") => return Ok(DEFAULT_DETACH_KEYS.to_vec()),
        Some(k) => k,
    };
    let mut codes = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            codes.push(key.as_bytes()[0]);
        } else if let Some(code) = CTRL_KEYS.iter().position(|k| *k == key) {
            codes.push(code as u8);
        } else if key == "DEL" {
            codes.push(127);
        } else {
            return Err(anyhow!(
                "invalid detach keys ({keys}) provided: unknown character: '{key}'"
            ));
        }
    }
    Ok(codes)
}

/// Watches input for the detach sequence. Bytes that may start the
/// sequence are held back until it is complete (then they are dropped) or
/// broken (then they are passed on, in order, with what followed).
#[derive(Debug, Clone)]
pub struct EscapeDetector {
    keys: Vec<u8>,
    /// How many bytes of `keys` the held-back input matches.
    matched: usize,
}

/// What to do with one chunk of input.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes to send on.
    pub forward: Vec<u8>,
    /// The whole sequence was typed: end the session (after `forward`).
    pub detach: bool,
}

impl EscapeDetector {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeDetector { keys, matched: 0 }
    }

    pub fn feed(&mut self, input: &[u8]) -> Scanned {
        let mut forward = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            forward.extend_from_slice(input);
            return Scanned {
                forward,
                detach: false,
            };
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scanned {
                        forward,
                        detach: true,
                    };
                }
                continue;
            }
            // The sequence broke: what was held back goes on, and this byte
            // may start a new one.
            forward.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Scanned {
                        forward,
                        detach: true,
                    };
                }
            } else {
                forward.push(b);
            }
        }
        Scanned {
            forward,
            detach: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_like_docker() {
        assert_eq!(parse_detach_keys(None).unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys(Some("")).unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys(Some("ctrl-p,ctrl-q")).unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys(Some("ctrl-a,b")).unwrap(), [1, b'b']);
        assert_eq!(parse_detach_keys(Some("ctrl-@")).unwrap(), [0]);
        assert_eq!(parse_detach_keys(Some("ctrl-\\,ctrl-_")).unwrap(), [28, 31]);
        assert_eq!(parse_detach_keys(Some("ctrl-[,DEL")).unwrap(), [27, 127]);
        assert_eq!(parse_detach_keys(Some("x")).unwrap(), [b'x']);
        assert_eq!(
            parse_detach_keys(Some(",")).unwrap_err().to_string(),
            "invalid detach keys (,) provided: unknown character: ''"
        );
        for bad in ["ctrl-P", "ctrl-1", "ab", "ctrl-", "a,,b", "del"] {
            let err = parse_detach_keys(Some(bad)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "invalid detach keys ({bad}) provided: unknown character: '"
                )),
                "{bad}: {err}"
            );
        }
    }

    fn feed_all(d: &mut EscapeDetector, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for c in chunks {
            let s = d.feed(c);
            out.extend(s.forward);
            if s.detach {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn sequence_detected_across_chunks_and_never_forwarded() {
        let mut d = EscapeDetector::new(vec![16, 17]);
        assert_eq!(
            feed_all(&mut d, &[b"ls\r", &[16], &[17], b"more"]),
            (b"ls\r".to_vec(), true)
        );

        let mut d = EscapeDetector::new(vec![16, 17]);
        assert_eq!(feed_all(&mut d, &[b"ab\x10\x11cd"]), (b"ab".to_vec(), true));

        // ctrl-p then something else: the ctrl-p goes on after all.
        let mut d = EscapeDetector::new(vec![16, 17]);
        assert_eq!(feed_all(&mut d, &[&[16], b"x"]), (vec![16, b'x'], false));
        // A held-back ctrl-p is not sent before the next input decides.
        let mut d = EscapeDetector::new(vec![16, 17]);
        assert_eq!(d.feed(&[b'a', 16]).forward, b"a");
        assert_eq!(d.feed(&[16]).forward, [16]);
        assert_eq!(
            d.feed(&[17]),
            Scanned {
                forward: vec![],
                detach: true
            }
        );

        // Three keys, broken in the middle, then complete.
        let mut d = EscapeDetector::new(parse_detach_keys(Some("ctrl-a,b,c")).unwrap());
        assert_eq!(
            feed_all(&mut d, &[b"\x01bx\x01", b"b", b"c"]),
            (b"\x01bx".to_vec(), true)
        );

        // One key.
        let mut d = EscapeDetector::new(vec![b'q']);
        assert_eq!(feed_all(&mut d, &[b"aq"]), (b"a".to_vec(), true));
        let mut d = EscapeDetector::new(vec![b'q']);
        assert_eq!(feed_all(&mut d, &[b"xyz"]), (b"xyz".to_vec(), false));
    }
}
