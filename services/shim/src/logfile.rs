//! The container log: Docker's json-file format, one entry per line of
//! output —
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-27T18:00:00.123456789Z"}`
//! — bounded by size with rotation (`log` → `log.1` → … → `log.(N-1)`, the
//! oldest dropped), where Docker's default json-file grows without limit.
//!
//! Framing follows Docker's: output is split at newlines (kept in the entry);
//! a line that reaches 16 KiB without one is written as its own partial entry
//! (no trailing newline), and whatever is left at EOF is written the same way.
//! Bytes that are not UTF-8 are replaced with U+FFFD, as Docker's encoder
//! does; a 16 KiB cut never splits a UTF-8 sequence.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::exit::rfc3339;

/// The longest entry: a line without a newline is cut here.
pub const PARTIAL_MAX: usize = 16 * 1024;

/// Which output a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The json-file `stream` value.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// Appends framed output to the log file, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    /// Bytes in the live file.
    size: u64,
    /// Encoded entries not yet written.
    pending: Vec<u8>,
    /// The unfinished line of each stream.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appends to) `path`, creating it and its directory. `max_size`
    /// 0 means no limit; `max_files` counts the live file.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<LogWriter> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = open_log(path, false)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            max_size,
            max_files: max_files.max(1),
            file,
            size,
            pending: Vec::new(),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Frames `data`, read from `stream` at `time`, and appends the complete
    /// entries.
    pub fn write(&mut self, stream: Stream, data: &[u8], time: DateTime<Utc>) -> io::Result<()> {
        let time = rfc3339(time);
        let mut buf = std::mem::take(&mut self.partial[stream.index()]);
        let r = self.frame(stream, &mut buf, data, &time);
        self.partial[stream.index()] = buf;
        r?;
        self.flush_pending()
    }

    /// Writes out the unfinished line of `stream` (at EOF).
    pub fn finish(&mut self, stream: Stream, time: DateTime<Utc>) -> io::Result<()> {
        let buf = std::mem::take(&mut self.partial[stream.index()]);
        if !buf.is_empty() {
            self.append(stream, &buf, &rfc3339(time))?;
        }
        self.flush_pending()
    }

    fn frame(
        &mut self,
        stream: Stream,
        buf: &mut Vec<u8>,
        data: &[u8],
        time: &str,
    ) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = PARTIAL_MAX - buf.len();
            let window = &rest[..rest.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if buf.is_empty() {
                        self.append(stream, &window[..=i], time)?;
                    } else {
                        buf.extend_from_slice(&window[..=i]);
                        self.append(stream, buf, time)?;
                        buf.clear();
                    }
                    rest = &rest[i + 1..];
                }
                None => {
                    buf.extend_from_slice(window);
                    rest = &rest[window.len()..];
                    if buf.len() >= PARTIAL_MAX {
                        let cut = utf8_cut(buf);
                        self.append(stream, &buf[..cut], time)?;
                        buf.drain(..cut);
                    }
                }
            }
        }
        Ok(())
    }

    /// Encodes one entry, rotating first when it would not fit.
    fn append(&mut self, stream: Stream, line: &[u8], time: &str) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let mut entry = Vec::with_capacity(line.len() + 64);
        serde_json::to_writer(
            &mut entry,
            &Entry {
                log: &text,
                stream: stream.name(),
                time,
            },
        )
        .map_err(io::Error::other)?;
        entry.push(b'\n');
        let used = self.size + self.pending.len() as u64;
        if self.max_size > 0 && used > 0 && used + entry.len() as u64 > self.max_size {
            self.flush_pending()?;
            self.rotate()?;
        }
        self.pending.extend_from_slice(&entry);
        Ok(())
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.pending);
        // Count what was meant to be written even on error: a short write
        // still takes room, and rotation must still happen eventually.
        self.size += self.pending.len() as u64;
        self.pending.clear();
        r
    }

    /// `log.(N-2)` → `log.(N-1)`, …, `log` → `log.1`, and a fresh `log`.
    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file = open_log(&self.path, true)?;
        } else {
            let last = self.max_files - 1;
            ignore_missing(fs::remove_file(rotated(&self.path, last)))?;
            for i in (1..last).rev() {
                ignore_missing(fs::rename(
                    rotated(&self.path, i),
                    rotated(&self.path, i + 1),
                ))?;
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = open_log(&self.path, false)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// `log.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_log(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).mode(0o640);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Where to cut a full buffer so that no UTF-8 sequence is split: before a
/// trailing incomplete sequence, else at the end.
fn utf8_cut(buf: &[u8]) -> usize {
    let len = buf.len();
    for back in 1..=len.min(4) {
        let b = buf[len - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead
        }
        let need = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return len,
        };
        return if need > back && len - back > 0 {
            len - back
        } else {
            len
        };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_802_400, 123_456_789).unwrap()
    }

    fn entries(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn logs(path: &Path) -> Vec<(String, String)> {
        entries(path)
            .iter()
            .map(|e| {
                (
                    e["stream"].as_str().unwrap().to_string(),
                    e["log"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn docker_line_format() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(Stream::Stdout, b"hello\n", t()).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T18:00:00.123456789Z\"}\n"
        );
    }

    #[test]
    fn split_at_newlines_and_join_partials() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(Stream::Stdout, b"a\nb\nfir", t()).unwrap();
        w.write(Stream::Stderr, b"err", t()).unwrap();
        w.write(Stream::Stdout, b"st\nsec", t()).unwrap();
        w.write(Stream::Stderr, b"or\n", t()).unwrap();
        assert_eq!(
            logs(&p),
            vec![
                ("stdout".into(), "a\n".into()),
                ("stdout".into(), "b\n".into()),
                ("stdout".into(), "first\n".into()),
                ("stderr".into(), "error\n".into()),
            ]
        );
        // EOF flushes the unfinished line without a newline.
        w.finish(Stream::Stdout, t()).unwrap();
        w.finish(Stream::Stderr, t()).unwrap();
        assert_eq!(logs(&p).last().unwrap(), &("stdout".into(), "sec".into()));
        assert_eq!(logs(&p).len(), 5);
    }

    #[test]
    fn long_lines_split_at_16k() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        let mut data = vec![b'x'; PARTIAL_MAX * 2 + 5];
        data.push(b'\n');
        // In odd pieces, as pipes deliver them.
        for piece in data.chunks(5000) {
            w.write(Stream::Stdout, piece, t()).unwrap();
        }
        let got = logs(&p);
        let lens: Vec<usize> = got.iter().map(|(_, l)| l.len()).collect();
        assert_eq!(lens, vec![PARTIAL_MAX, PARTIAL_MAX, 6]);
        assert!(got[2].1.ends_with('\n'));
        assert!(!got[0].1.ends_with('\n'));
    }

    #[test]
    fn split_never_cuts_a_utf8_sequence() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        // 16383 ASCII bytes then "é" (2 bytes) straddles the 16 KiB mark.
        let mut data = vec![b'y'; PARTIAL_MAX - 1];
        data.extend_from_slice("é\n".as_bytes());
        w.write(Stream::Stdout, &data, t()).unwrap();
        let got = logs(&p);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.len(), PARTIAL_MAX - 1);
        assert_eq!(got[1].1, "é\n");
        assert_eq!(utf8_cut(b"ab"), 2);
        assert_eq!(utf8_cut(&[b'a', 0xE2, 0x82]), 1);
        assert_eq!(utf8_cut(&[b'a', 0xE2, 0x82, 0xAC]), 4);
        assert_eq!(utf8_cut(&[0xE2]), 1);
    }

    #[test]
    fn non_utf8_is_replaced_like_docker() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(Stream::Stderr, b"bad \xff\xfe byte \"q\" \\ \t\x01\n", t())
            .unwrap();
        let raw = fs::read_to_string(&p).unwrap();
        assert!(raw.contains(r#"\"q\" \\ \t\u0001\n"#), "{raw}");
        assert_eq!(
            logs(&p),
            vec![(
                "stderr".into(),
                "bad \u{FFFD}\u{FFFD} byte \"q\" \\ \t\u{1}\n".into()
            )]
        );
    }

    #[test]
    fn rotation_by_size_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let one = "{\"log\":\"line-00\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T18:00:00.123456789Z\"}\n".len() as u64;
        // Room for exactly three entries per file, three files in all.
        let mut w = LogWriter::open(&p, one * 3, 3).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line-{i:02}\n").as_bytes(), t())
                .unwrap();
        }
        for f in [p.clone(), rotated(&p, 1), rotated(&p, 2)] {
            assert!(fs::metadata(&f).unwrap().len() <= one * 3, "{f:?} too big");
        }
        assert!(!rotated(&p, 3).exists());
        let text = |f: &Path| logs(f).into_iter().map(|(_, l)| l).collect::<String>();
        assert_eq!(text(&p), "line-18\nline-19\n");
        assert_eq!(text(&rotated(&p, 1)), "line-15\nline-16\nline-17\n");
        assert_eq!(text(&rotated(&p, 2)), "line-12\nline-13\nline-14\n");
        // Reopening continues the live file and its size.
        drop(w);
        let mut w = LogWriter::open(&p, one * 3, 3).unwrap();
        w.write(Stream::Stdout, b"line-20\nline-21\n", t()).unwrap();
        assert_eq!(text(&p), "line-21\n");
        assert_eq!(text(&rotated(&p, 1)), "line-18\nline-19\nline-20\n");
    }

    #[test]
    fn rotation_with_one_file_truncates_and_oversize_entries_still_land() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 10, 1).unwrap();
        w.write(Stream::Stdout, b"first line\n", t()).unwrap();
        w.write(Stream::Stdout, b"second line\n", t()).unwrap();
        assert_eq!(logs(&p), vec![("stdout".into(), "second line\n".into())]);
        assert!(!rotated(&p, 1).exists());
    }
}
