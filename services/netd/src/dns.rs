//! The little of DNS that netd's resolver needs: read a query with one
//! question, write an answer with A records or an error code. Every length
//! comes from the packet and is checked; nothing here panics on any input.

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
pub const CLASS_IN: u16 = 1;

pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NOTIMP: u8 = 4;

const HEADER: usize = 12;
/// The longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// The header's flags word as sent.
    pub flags: u16,
    /// Lower-case, dot-separated, without the final dot ("" for the root).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// The question section as sent (name, type, class), echoed in replies.
    pub question: Vec<u8>,
}

/// Why a packet is not a query we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Too short to carry even an id: drop it silently.
    Junk,
    /// A response, not a query: drop it (never answer answers).
    NotAQuery,
    /// Has an id but is malformed or unsupported: reply with this rcode.
    Reply { id: u16, flags: u16, rcode: u8 },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads a query. Only standard queries with exactly one question are
/// answered; labels must be plain (no compression in a question).
pub fn parse_query(b: &[u8]) -> Result<Query, Bad> {
    let (Some(id), Some(flags)) = (be16(b, 0), be16(b, 2)) else {
        return Err(Bad::Junk);
    };
    if flags & 0x8000 != 0 {
        return Err(Bad::NotAQuery);
    }
    let formerr = Bad::Reply {
        id,
        flags,
        rcode: RCODE_FORMERR,
    };
    if b.len() < HEADER {
        return Err(formerr);
    }
    let opcode = (flags >> 11) & 0xf;
    if opcode != 0 {
        return Err(Bad::Reply {
            id,
            flags,
            rcode: RCODE_NOTIMP,
        });
    }
    if be16(b, 4) != Some(1) {
        return Err(formerr);
    }
    let mut at = HEADER;
    let mut labels: Vec<String> = Vec::new();
    let mut wire_len = 0usize;
    loop {
        let len = usize::from(*b.get(at).ok_or(formerr)?);
        at += 1;
        wire_len += 1 + len;
        if wire_len > MAX_NAME {
            return Err(formerr);
        }
        if len == 0 {
            break;
        }
        if len > 63 {
            // 0xc0 would be a compression pointer, 0x40/0x80 are reserved.
            return Err(formerr);
        }
        let label = b.get(at..at + len).ok_or(formerr)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = be16(b, at).ok_or(formerr)?;
    let qclass = be16(b, at + 2).ok_or(formerr)?;
    let end = at + 4;
    Ok(Query {
        id,
        flags,
        name: labels.join("."),
        qtype,
        qclass,
        question: b[HEADER..end].to_vec(),
    })
}

fn header(id: u16, query_flags: u16, rcode: u8, qd: u16, an: u16, authoritative: bool) -> Vec<u8> {
    // QR, the query's opcode and RD, RA set; AA for names we own.
    let mut flags = 0x8000 | (query_flags & 0x7900) | 0x0080 | u16::from(rcode & 0xf);
    if authoritative {
        flags |= 0x0400;
    }
    let mut h = Vec::with_capacity(HEADER);
    for v in [id, flags, qd, an, 0, 0] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

/// An authoritative answer with `ips` as A records (none: the name exists
/// but has no record of that type).
pub fn answer(q: &Query, ips: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    let an = u16::try_from(ips.len()).unwrap_or(u16::MAX);
    let mut out = header(q.id, q.flags, 0, 1, an, true);
    out.extend_from_slice(&q.question);
    for ip in ips.iter().take(usize::from(an)) {
        // The name is a pointer to the question's (offset 12).
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// An error reply to a parsed query (the question is echoed).
pub fn error(q: &Query, rcode: u8) -> Vec<u8> {
    let mut out = header(q.id, q.flags, rcode, 1, 0, false);
    out.extend_from_slice(&q.question);
    out
}

/// An error reply to a packet that could not be parsed (no question).
pub fn bare_error(id: u16, flags: u16, rcode: u8) -> Vec<u8> {
    header(id, flags, rcode, 0, 0, false)
}

/// Builds a query (used by tests and nothing else in the daemon).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [id, 0x0100, 1, 0, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Reads the A records of a response (used by tests): rcode and addresses.
pub fn read_answers(b: &[u8]) -> Option<(u8, Vec<Ipv4Addr>)> {
    let flags = be16(b, 2)?;
    let qd = be16(b, 4)?;
    let an = be16(b, 6)?;
    let mut at = HEADER;
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *b.get(at)?;
            if len & 0xc0 == 0xc0 {
                return Some(at + 2);
            }
            at += 1 + usize::from(len);
            if len == 0 {
                return Some(at);
            }
        }
    };
    for _ in 0..qd {
        at = skip_name(at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        at = skip_name(at)?;
        let t = be16(b, at)?;
        let len = usize::from(be16(b, at + 8)?);
        let data = b.get(at + 10..at + 10 + len)?;
        if t == TYPE_A && len == 4 {
            ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + len;
    }
    Some(((flags & 0xf) as u8, ips))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let q = parse_query(&build_query(0x1234, "Web.example", TYPE_A)).unwrap();
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype, q.qclass),
            (0x1234, "web.example", 1, 1)
        );
        let ips = [Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)];
        let r = answer(&q, &ips, 600);
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "QR set");
        assert_eq!(r[2] & 0x04, 0x04, "AA set");
        assert_eq!(r[2] & 0x01, 0x01, "RD echoed");
        assert_eq!(read_answers(&r), Some((0, ips.to_vec())));
        let e = error(&q, RCODE_SERVFAIL);
        assert_eq!(read_answers(&e), Some((RCODE_SERVFAIL, vec![])));
        // A root query parses too.
        assert_eq!(parse_query(&build_query(1, "", TYPE_A)).unwrap().name, "");
    }

    #[test]
    fn malformed_packets_are_refused_without_panicking() {
        assert_eq!(parse_query(&[]), Err(Bad::Junk));
        assert_eq!(parse_query(&[1, 2, 3]), Err(Bad::Junk));
        let good = build_query(7, "a.b", TYPE_A);
        // Every truncation of a good query is an error, never a panic.
        for n in 4..good.len() {
            assert!(
                matches!(
                    parse_query(&good[..n]),
                    Err(Bad::Reply {
                        id: 7,
                        rcode: RCODE_FORMERR,
                        ..
                    })
                ),
                "{n}"
            );
        }
        let mut resp = good.clone();
        resp[2] |= 0x80;
        assert_eq!(parse_query(&resp), Err(Bad::NotAQuery));
        let mut two = good.clone();
        two[5] = 2;
        assert!(matches!(
            parse_query(&two),
            Err(Bad::Reply {
                rcode: RCODE_FORMERR,
                ..
            })
        ));
        let mut op = good.clone();
        op[2] |= 0x10; // opcode 2 (status)
        assert!(matches!(
            parse_query(&op),
            Err(Bad::Reply {
                rcode: RCODE_NOTIMP,
                ..
            })
        ));
        // A compression pointer in the question.
        let mut ptr = good[..12].to_vec();
        ptr.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert!(matches!(
            parse_query(&ptr),
            Err(Bad::Reply {
                rcode: RCODE_FORMERR,
                ..
            })
        ));
        // A label longer than the packet.
        let mut long = good[..12].to_vec();
        long.extend_from_slice(&[50, b'a', b'b']);
        assert!(parse_query(&long).is_err());
        // A name longer than 255 bytes.
        let mut huge = good[..12].to_vec();
        for _ in 0..5 {
            huge.push(63);
            huge.extend_from_slice(&[b'x'; 63]);
        }
        huge.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(parse_query(&huge).is_err());
        // Trailing bytes (an EDNS record) are fine.
        let mut edns = good.clone();
        edns.extend_from_slice(&[0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_query(&edns).unwrap().name, "a.b");
        // Pseudo-random garbage never panics.
        let mut x: u32 = 12345;
        for len in 0..300 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse_query(&p);
            let _ = read_answers(&p);
        }
    }

    #[test]
    fn bare_errors_keep_the_id() {
        let r = bare_error(0xbeef, 0x0100, RCODE_FORMERR);
        assert_eq!(r.len(), 12);
        assert_eq!(&r[0..2], &[0xbe, 0xef]);
        assert_eq!(r[3] & 0xf, RCODE_FORMERR);
    }
}
