//! Reading a container's log files (Docker json-file lines, rotated by the
//! shim into `container.log.1` … `.N`), with `--tail` and `--follow`.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::model::Status;
use crate::runtime::Runtime;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Which lines a reader wants.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub stdout: bool,
    pub stderr: bool,
    /// Last N lines; `None` = all.
    pub tail: Option<usize>,
}

impl Filter {
    fn wants(&self, e: &Entry) -> bool {
        (self.stdout && e.stream == "stdout") || (self.stderr && e.stream == "stderr")
    }
}

/// The rotated files oldest first, then the live one.
fn files(log: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..100)
        .map(|i| PathBuf::from(format!("{}.{i}", log.display())))
        .take_while(|p| p.exists())
        .collect();
    out.reverse();
    out.push(log.to_path_buf());
    out
}

fn parse(line: &str) -> Option<Entry> {
    serde_json::from_str(line).ok()
}

/// Everything logged so far that `filter` wants, and how far the live file
/// was read (to follow from there).
pub fn read_all(log: &Path, filter: Filter) -> Result<(Vec<Entry>, u64)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for f in files(log) {
        let file = match std::fs::File::open(&f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Internal(format!("read {}: {e}", f.display()))),
        };
        let mut r = BufReader::new(file);
        let mut line = String::new();
        offset = 0;
        loop {
            line.clear();
            let n = r
                .read_line(&mut line)
                .map_err(crate::error::io("read log"))?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            offset += n as u64;
            if let Some(e) = parse(&line).filter(|e| filter.wants(e)) {
                out.push(e);
            }
        }
    }
    if let Some(n) = filter.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok((out, offset))
}

impl Runtime {
    /// Streams a container's log into `tx`; with `follow`, goes on until the
    /// container stops (or the receiver goes away).
    pub async fn logs(
        &self,
        key: &str,
        filter: Filter,
        follow: bool,
        tx: mpsc::Sender<Entry>,
    ) -> Result<()> {
        let c = self.find(key)?;
        let log = self.log_file(&c.id);
        let (entries, mut offset) = {
            let log = log.clone();
            tokio::task::spawn_blocking(move || read_all(&log, filter))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??
        };
        for e in entries {
            if tx.send(e).await.is_err() {
                return Ok(());
            }
        }
        if !follow {
            return Ok(());
        }
        let id = c.id.clone();
        let mut ino = inode(&log);
        loop {
            let running = self.store.get(&id)?.is_some_and(|c| {
                matches!(
                    c.state.status,
                    Status::Running | Status::Restarting | Status::Created
                )
            });
            // Rotation: a new file under the name means start it from the top.
            let now_ino = inode(&log);
            if now_ino != ino {
                ino = now_ino;
                offset = 0;
            }
            let (fresh, next) = read_from(&log, offset, filter)?;
            offset = next;
            for e in fresh {
                if tx.send(e).await.is_err() {
                    return Ok(());
                }
            }
            if !running {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }
}

fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// Complete lines after `offset` in the live file.
fn read_from(log: &Path, offset: u64, filter: Filter) -> Result<(Vec<Entry>, u64)> {
    let mut file = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(_) => return Ok((vec![], offset)),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = if len < offset { 0 } else { offset };
    file.seek(SeekFrom::Start(start))
        .map_err(crate::error::io("read log"))?;
    let mut r = BufReader::new(file);
    let mut out = Vec::new();
    let mut pos = start;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r
            .read_line(&mut line)
            .map_err(crate::error::io("read log"))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Some(e) = parse(&line).filter(|e| filter.wants(e)) {
            out.push(e);
        }
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str, stream: &str) -> String {
        format!("{{\"log\":\"{s}\\n\",\"stream\":\"{stream}\",\"time\":\"t\"}}\n")
    }

    #[test]
    fn rotated_files_in_order_with_tail_and_streams() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("container.log");
        std::fs::write(format!("{}.2", log.display()), line("a", "stdout")).unwrap();
        std::fs::write(format!("{}.1", log.display()), line("b", "stderr")).unwrap();
        std::fs::write(
            &log,
            line("c", "stdout") + &line("d", "stdout") + "{\"partial",
        )
        .unwrap();
        let all = Filter {
            stdout: true,
            stderr: true,
            tail: None,
        };
        let (e, off) = read_all(&log, all).unwrap();
        let logs: Vec<_> = e.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs, ["a\n", "b\n", "c\n", "d\n"]);
        assert_eq!(off as usize, 2 * line("c", "stdout").len());
        let (e, _) = read_all(
            &log,
            Filter {
                stdout: true,
                stderr: false,
                tail: Some(2),
            },
        )
        .unwrap();
        assert_eq!(
            e.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(),
            ["c\n", "d\n"]
        );
        let (e, _) = read_from(&log, off, all).unwrap();
        assert!(e.is_empty());
    }
}
