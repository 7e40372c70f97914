//! Output the way Docker prints it: aligned tables, human sizes
//! ("4.26MB"), relative times ("2 hours ago"), short ids, and the rows of
//! list commands as `--format` asks for them.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::template::GoTemplate;

/// What a list command's `--format` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Layout<'a> {
    Table,
    Json,
    Template(&'a str),
}

fn layout(format: Option<&str>) -> Result<Layout<'_>> {
    match format.map(str::trim).unwrap_or("") {
        "" | "table" => Ok(Layout::Table),
        "json" => Ok(Layout::Json),
        f if f.starts_with("table") => {
            bail!("unsupported format {f:?}: use \"table\", \"json\" or a Go template")
        }
        f => Ok(Layout::Template(f)),
    }
}

/// Whether `--format` asks for the default table (nothing, or "table").
pub fn is_table(format: Option<&str>) -> bool {
    matches!(format.map(str::trim), None | Some("" | "table"))
}

/// Checks a list command's `--format` before the daemon is asked: a
/// template must parse, and "table …" is not a format rdockctl knows.
pub fn check_template(format: Option<&str>) -> Result<()> {
    if let Layout::Template(f) = layout(format)? {
        GoTemplate::parse(f)?;
    }
    Ok(())
}

/// A list command's rows as `--format` asks: Docker's table (`header`,
/// then the `cells` of each row), one JSON object per line, or one line
/// per row from a Go template (given the row's JSON object).
pub fn render_rows<T: Serialize>(
    format: Option<&str>,
    header: &[&str],
    rows: &[T],
    cells: impl Fn(&T) -> Vec<String>,
) -> Result<String> {
    let mut out = String::new();
    match layout(format)? {
        Layout::Table => {
            let mut all = Vec::with_capacity(rows.len() + 1);
            all.push(header.iter().map(|h| h.to_string()).collect());
            all.extend(rows.iter().map(cells));
            out = table(&all);
        }
        Layout::Json => {
            for r in rows {
                out.push_str(&serde_json::to_string(r)?);
                out.push('\n');
            }
        }
        Layout::Template(f) => {
            let tmpl = GoTemplate::parse(f)?;
            for r in rows {
                out.push_str(&tmpl.render(&serde_json::to_value(r)?)?);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Lays out rows like Docker's tabwriter (min width 10, padding 3): every
/// column but the last is padded to its widest cell plus 3 spaces (so a
/// row whose last cell is empty ends in spaces, as Docker's does).
pub fn table(rows: &[Vec<String>]) -> String {
    table_min_width(rows, 10)
}

/// [`table`] with another minimum column width (`docker top` uses 20).
pub fn table_min_width(rows: &[Vec<String>], min_width: usize) -> String {
    const PADDING: usize = 3;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let width = (widths[i] + PADDING).max(min_width);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units and Go's
/// `%.3g` ("4.26MB", "512B", "1.2kB", "5MB").
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 3)
}

/// Docker's `units.HumanSize` (precision 4: "2.048kB"), as `volume prune`
/// prints the space it reclaimed.
pub fn human_size_4(bytes: u64) -> String {
    human_size_precision(bytes, 4)
}

fn human_size_precision(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(size, precision), UNITS[unit])
}

/// Go's `fmt.Sprintf("%.*g", precision, v)` for finite, non-negative `v`.
fn go_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let p = precision.max(1);
    // Round to p significant digits in scientific form, then pick Go's layout.
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    if exp < -4 || exp >= p as i32 {
        let m = trim_fraction(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{v:.decimals$}"))
    }
}

fn trim_fraction(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "3 hours ago", or "N/A" when the creation time is unknown (0).
pub fn ago(created: i64, now: i64) -> String {
    if created <= 0 {
        return "N/A".into();
    }
    format!("{} ago", human_duration(now.saturating_sub(created)))
}

/// Unix seconds now.
pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// Go's `time.Time.String()` in UTC: "2024-09-26 21:31:42 +0000 UTC".
pub fn created_at(created: i64) -> String {
    match DateTime::<Utc>::from_timestamp(created, 0).filter(|_| created > 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        None => "N/A".into(),
    }
}

/// RFC 3339 in UTC ("2024-09-26T21:31:42Z"), empty when unknown.
pub fn rfc3339(created: i64) -> String {
    match DateTime::<Utc>::from_timestamp(created, 0).filter(|_| created > 0) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => String::new(),
    }
}

/// The first 12 hex digits of an id or digest (`sha256:` dropped).
pub fn short_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Docker's JSON indentation (4 spaces), with sorted keys.
#[cfg(test)]
pub fn json_pretty<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    value.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Go's `strconv.Quote`: double quotes, with `"` `\\` and control
/// characters escaped (printable Unicode such as `…` kept as is).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 1 {
        return s.chars().take(1).collect();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Re-indents JSON text with Docker's 4 spaces, keeping its key order
/// (a `serde_json::Value` would sort the keys). The text must be valid JSON.
pub fn json_reindent(text: &str) -> String {
    fn newline(out: &mut String, level: usize) {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', level * 4));
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut level = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                out.push(n);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    level += 1;
                    newline(&mut out, level);
                }
            }
            '}' | ']' => {
                level = level.saturating_sub(1);
                newline(&mut out, level);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        #[serde(rename = "Name")]
        name: &'static str,
        #[serde(rename = "Size")]
        size: u64,
    }

    #[test]
    fn rows_as_format_asks() {
        let rows = [
            Row { name: "a", size: 1 },
            Row {
                name: "bb",
                size: 22,
            },
        ];
        let cells = |r: &Row| vec![r.name.to_string(), r.size.to_string()];
        let want = "NAME      SIZE\na         1\nbb        22\n";
        for f in [None, Some(""), Some("table"), Some(" table ")] {
            assert_eq!(
                render_rows(f, &["NAME", "SIZE"], &rows, cells).unwrap(),
                want
            );
            assert!(is_table(f) && check_template(f).is_ok(), "{f:?}");
        }
        assert_eq!(
            render_rows(Some("json"), &["NAME", "SIZE"], &rows, cells).unwrap(),
            "{\"Name\":\"a\",\"Size\":1}\n{\"Name\":\"bb\",\"Size\":22}\n"
        );
        assert_eq!(
            render_rows(Some(" {{.Name}}={{.Size}} "), &[], &rows, cells).unwrap(),
            "a=1\nbb=22\n"
        );
        assert_eq!(
            render_rows(Some("json"), &[], &[] as &[Row], cells).unwrap(),
            ""
        );
        assert!(!is_table(Some("json")) && !is_table(Some("{{.Name}}")));
        let e = check_template(Some("table {{.Name}}")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported format \"table {{.Name}}\": use \"table\", \"json\" or a Go template"
        );
        assert!(render_rows(Some("table {{.Name}}"), &[], &rows, cells).is_err());
        let e = check_template(Some("{{.Name")).unwrap_err();
        assert!(e.to_string().starts_with("template parsing error"), "{e}");
        assert!(check_template(Some("{{.Name}}")).is_ok());
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1200), "1.2kB");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
        assert_eq!(human_size(12_345), "12.3kB");
        // Go's %.3g switches to an exponent when rounding reaches 1000.
        assert_eq!(human_size(999_600), "1e+03kB");
        assert_eq!(human_size_4(2048), "2.048kB");
        assert_eq!(human_size_4(0), "0B");
        assert_eq!(human_size_4(123_456_789), "123.5MB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(-5), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(15 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
        assert_eq!(ago(1000, 1000 + 3 * 3600), "3 hours ago");
        assert_eq!(ago(1000, 1070), "About a minute ago");
        assert_eq!(ago(0, 1070), "N/A");
    }

    #[test]
    fn ids_and_times() {
        assert_eq!(
            short_id("sha256:27a71e19c95622dbd4a6e4e3c1e8b9f2"),
            "27a71e19c956"
        );
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(created_at(1_727_386_302), "2024-09-26 21:31:42 +0000 UTC");
        assert_eq!(created_at(0), "N/A");
        assert_eq!(rfc3339(1_727_386_302), "2024-09-26T21:31:42Z");
        assert_eq!(rfc3339(0), "");
    }

    #[test]
    fn table_aligns_like_docker() {
        let rows = vec![
            vec![
                "REPOSITORY".into(),
                "TAG".into(),
                "IMAGE ID".into(),
                "SIZE".into(),
            ],
            vec![
                "busybox".into(),
                "latest".into(),
                "27a71e19c956".into(),
                "4.26MB".into(),
            ],
        ];
        assert_eq!(
            table(&rows),
            "REPOSITORY   TAG       IMAGE ID       SIZE\n\
             busybox      latest    27a71e19c956   4.26MB\n"
        );
    }

    #[test]
    fn quote_and_ellipsis_like_go() {
        assert_eq!(go_quote("sleep 100"), "\"sleep 100\"");
        assert_eq!(go_quote(""), "\"\"");
        assert_eq!(
            go_quote("sh -c \"echo \\x\"\n\t\u{1}"),
            r#""sh -c \"echo \\x\"\n\t\x01""#
        );
        assert_eq!(go_quote("a…"), "\"a…\"");
        assert_eq!(ellipsis("sleep 100", 20), "sleep 100");
        assert_eq!(ellipsis("12345678901234567890", 20), "12345678901234567890");
        assert_eq!(
            ellipsis("sh -c 'while true; do echo hi; sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(ellipsis("ab", 1), "a");
        assert_eq!(ellipsis("ab", 0), "");
    }

    #[test]
    fn reindent_keeps_order_like_docker() {
        let text = r#"{"Id":"x","Args":[],"State":{"Status":"running","Pid":42},"Env":["A=1","B={[,:]}\"q"],"Labels":{},"N":null}"#;
        let want = "{\n    \"Id\": \"x\",\n    \"Args\": [],\n    \"State\": {\n        \"Status\": \"running\",\n        \"Pid\": 42\n    },\n    \"Env\": [\n        \"A=1\",\n        \"B={[,:]}\\\"q\"\n    ],\n    \"Labels\": {},\n    \"N\": null\n}";
        assert_eq!(json_reindent(text), want);
        // The same as serde_json's pretty printer with 4 spaces.
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut sorted = json_pretty(&v).unwrap();
        sorted.retain(|c| c != ' ');
        let mut ours = json_reindent(&serde_json::to_string(&v).unwrap());
        ours.retain(|c| c != ' ');
        assert_eq!(ours, sorted);
        assert_eq!(json_reindent(" [ { } , [ ] ] "), "[\n    {},\n    []\n]");
    }
}
