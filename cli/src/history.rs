//! `history IMAGE`: an image's history entries, newest first, in Docker's
//! table (IMAGE, CREATED, CREATED BY, SIZE, COMMENT), with its truncation
//! rules, human sizes and ages (`-H=false` for raw ones), `-q`, and
//! `--format json` or a Go template.

use std::io::{self, Write as _};

use anyhow::Result;
use chrono::{DateTime, Utc};
use rdock_proto::image::v1::{HistoryEntry, HistoryRequest};
use serde::Serialize;

use crate::args::HistoryArgs;
use crate::conn::Target;
use crate::format::{ago, check_template, ellipsis, human_size, is_table, now, render_rows};

/// Docker's CREATED BY width before it is cut with `…`.
const CREATED_BY_WIDTH: usize = 45;

/// Before this (2000-01-01), Docker shows no age.
const EPOCH_2000: i64 = 946_684_800;

/// The JSON object of `history --format json`, keys sorted as Docker's.
#[derive(Debug, Serialize)]
struct HistoryJson {
    #[serde(rename = "Comment")]
    comment: String,
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "CreatedBy")]
    created_by: String,
    #[serde(rename = "CreatedSince")]
    created_since: String,
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Size")]
    size: String,
}

/// Docker's `stringid.TruncateID`: no `sha256:`, 12 characters.
fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, h)| h);
    id.chars().take(12).collect()
}

/// Go's `time.Unix(t, 0).Format(time.RFC3339)`, in UTC.
fn rfc3339_utc(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn row(e: &HistoryEntry, trunc: bool, human: bool, now: i64) -> HistoryJson {
    let created_at = rfc3339_utc(e.created);
    let created_since = if !human {
        created_at.clone()
    } else if e.created <= EPOCH_2000 {
        String::new()
    } else {
        ago(e.created, now)
    };
    let created_by = e.created_by.replace('\t', " ");
    let size = u64::try_from(e.size).unwrap_or(0);
    HistoryJson {
        comment: e.comment.clone(),
        created_at,
        created_by: if trunc {
            ellipsis(&created_by, CREATED_BY_WIDTH)
        } else {
            created_by
        },
        created_since,
        id: if trunc {
            truncate_id(&e.id)
        } else {
            e.id.clone()
        },
        size: if human {
            human_size(size)
        } else {
            e.size.to_string()
        },
    }
}

/// What `history` prints for these entries (already newest first).
pub fn render_history(args: &HistoryArgs, entries: &[HistoryEntry], now: i64) -> Result<String> {
    let trunc = !args.no_trunc;
    let rows: Vec<HistoryJson> = entries
        .iter()
        .map(|e| row(e, trunc, args.human, now))
        .collect();
    let format = args.format.as_deref();
    if args.quiet && is_table(format) {
        let mut out = String::new();
        for r in &rows {
            out.push_str(&r.id);
            out.push('\n');
        }
        return Ok(out);
    }
    let created = if args.human { "CREATED" } else { "CREATED AT" };
    render_rows(
        format,
        &["IMAGE", created, "CREATED BY", "SIZE", "COMMENT"],
        &rows,
        |r| {
            vec![
                r.id.clone(),
                r.created_since.clone(),
                r.created_by.clone(),
                r.size.clone(),
                r.comment.clone(),
            ]
        },
    )
}

pub async fn history(target: &Target, args: &HistoryArgs) -> Result<()> {
    check_template(args.format.as_deref())?;
    let mut images = target.image().await?;
    let resp = images
        .history(HistoryRequest {
            reference: args.image.clone(),
        })
        .await?
        .into_inner();
    let text = render_history(args, &resp.entries, now())?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_727_386_302;

    fn args() -> HistoryArgs {
        HistoryArgs {
            human: true,
            quiet: false,
            no_trunc: false,
            format: None,
            image: "x".into(),
        }
    }

    fn entry(id: &str, created: i64, by: &str, size: i64, comment: &str) -> HistoryEntry {
        HistoryEntry {
            id: id.into(),
            created,
            created_by: by.into(),
            size,
            comment: comment.into(),
            empty_layer: size == 0,
            author: String::new(),
        }
    }

    fn sample() -> Vec<HistoryEntry> {
        vec![
            entry(
                "sha256:9f2e1c3b5d7a8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8b9",
                NOW - 2 * 3600,
                "/bin/sh -c echo hi > /greeting\tdone && more commands here please",
                12,
                "made by hand",
            ),
            entry(
                "<missing>",
                NOW - 86_400,
                "/bin/sh -c #(nop)  CMD [\"sh\"]",
                0,
                "",
            ),
            entry("<missing>", 0, "imported", 4_261_550, ""),
        ]
    }

    #[test]
    fn table_like_docker() {
        assert_eq!(
            render_history(&args(), &sample(), NOW).unwrap(),
            "IMAGE          CREATED        CREATED BY                                      SIZE      COMMENT\n\
             9f2e1c3b5d7a   2 hours ago    /bin/sh -c echo hi > /greeting done && more …   12B       made by hand\n\
             <missing>      24 hours ago   /bin/sh -c #(nop)  CMD [\"sh\"]                   0B        \n\
             <missing>                     imported                                        4.26MB    \n"
        );
    }

    #[test]
    fn no_trunc_quiet_raw_json_template() {
        let mut a = args();
        a.quiet = true;
        assert_eq!(
            render_history(&a, &sample(), NOW).unwrap(),
            "9f2e1c3b5d7a\n<missing>\n<missing>\n"
        );
        a.no_trunc = true;
        assert!(render_history(&a, &sample(), NOW).unwrap().starts_with(
            "sha256:9f2e1c3b5d7a8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8b9\n"
        ));

        let mut a = args();
        a.no_trunc = true;
        a.human = false;
        let text = render_history(&a, &sample(), NOW).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("IMAGE   "), "{text}");
        assert!(lines[0].contains("CREATED AT"));
        assert!(lines[1].contains("2024-09-26T19:31:42Z"), "{text}");
        assert!(lines[1]
            .contains("/bin/sh -c echo hi > /greeting done && more commands here please   12 "));
        assert!(lines[3].contains("1970-01-01T00:00:00Z"));
        assert!(lines[3].contains("4261550"));

        let mut a = args();
        a.format = Some("json".into());
        let text = render_history(&a, &sample(), NOW).unwrap();
        assert_eq!(
            text.lines().nth(1).unwrap(),
            r#"{"Comment":"","CreatedAt":"2024-09-25T21:31:42Z","CreatedBy":"/bin/sh -c #(nop)  CMD [\"sh\"]","CreatedSince":"24 hours ago","ID":"<missing>","Size":"0B"}"#
        );
        a.format = Some("{{.ID}}: {{.Size}}".into());
        assert_eq!(
            render_history(&a, &sample(), NOW).unwrap(),
            "9f2e1c3b5d7a: 12B\n<missing>: 0B\n<missing>: 4.26MB\n"
        );
        a.format = Some("table {{.ID}}".into());
        assert!(render_history(&a, &sample(), NOW).is_err());
    }
}
