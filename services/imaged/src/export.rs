//! `docker export`: a container's whole filesystem (its image's layers,
//! its init layer and its changes, deletions applied) as a tar stream.
//!
//! The tar comes from a merge walk over the layers rather than from a
//! read-only overlay mount of them: the walk reads exactly what overlayfs
//! would show (the same lookup rules `diff` uses), and it holds nothing
//! but file descriptors. A mount would need cleaning up on every path (a
//! client that goes away mid-stream, a daemon that dies mid-stream and
//! leaves it pinning the snapshot dirs), would live in the daemon's mount
//! namespace where other processes could see it, and would stack a second
//! overlay on an upper dir that a running container's overlay is using.
//! The walk stops at the next chunk once the client has gone, and nothing
//! is left to undo.

use std::io::{self, Write};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::archive::{self, TarOut};
use crate::error::{Error, Result};
use crate::images::ImageStore;

/// Bytes per chunk sent to the client.
const CHUNK: usize = 256 << 10;
/// Chunks buffered ahead of a slow client.
const AHEAD: usize = 4;

/// Sends what is written in chunks; fails once the receiver is gone.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Vec<u8>>>,
    buf: Vec<u8>,
    gone: bool,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            self.gone = true;
            io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl ImageStore {
    /// Starts streaming a container's filesystem as a tar; the receiver
    /// gets the chunks, then an error if one happens midway. Dropping the
    /// receiver stops the walk.
    #[tracing::instrument(skip_all, fields(container = %container))]
    pub async fn export_rootfs(
        self: &Arc<Self>,
        container: &str,
    ) -> Result<mpsc::Receiver<Result<Vec<u8>>>> {
        // The container's rootfs record keeps its image's layers from
        // garbage collection while the stream runs. No lock is held while
        // it runs, so a client that stops reading cannot hold up `rmi` or
        // `rm` for as long as it likes. Instead the walk checks, once it
        // has read everything, that no removal of the root filesystem
        // started meanwhile (entries that vanish are skipped, so it would
        // read a tree cut short without noticing), and if one did ends the
        // stream with an error rather than with the end of the archive.
        let lock = self.rootfs_lock(container);
        let (layers, removals) = {
            // Not while a removal is under way: its count is bumped already.
            let _shared = lock.rw.read().await;
            (self.rootfs_layers(container)?, lock.removals())
        };
        let mut all = vec![layers.upper];
        all.extend(layers.lowers);
        let (tx, rx) = mpsc::channel(AHEAD);
        let span = tracing::Span::current();
        let what = format!("export {container}");
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut w = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
                gone: false,
            };
            let mut removed = false;
            let res = (|| {
                let mut out = TarOut::new(&mut w);
                archive::write_merged(&all, &mut out)?;
                if lock.removals() != removals {
                    removed = true;
                    return Err(io::Error::other("removed"));
                }
                out.finish()?;
                w.flush()
            })();
            match res {
                Ok(()) => tracing::debug!("export complete"),
                Err(_) if w.gone => tracing::info!("export stopped: the client went away"),
                Err(_) if removed => {
                    tracing::warn!("export failed: the root filesystem was removed meanwhile");
                    let _ = tx.blocking_send(Err(Error::Conflict(format!(
                        "{what}: the container's root filesystem was removed during the export"
                    ))));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "export failed");
                    let _ = tx.blocking_send(Err(Error::Io {
                        context: what,
                        source: e,
                    }));
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{can_run, change_things, fixture, mount};

    async fn collect(
        rx: &mut tokio::sync::mpsc::Receiver<crate::error::Result<Vec<u8>>>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend(chunk.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_shows_the_merged_filesystem() {
        if !can_run() {
            return;
        }
        let (f, _) = fixture().await;
        let p = f.store.prepare_rootfs("c1", "base:1").await.unwrap();
        let mnt = tempfile::tempdir().unwrap();
        let root = mnt.path().join("c1");
        let m = mount(&p, &root);
        change_things(&root);
        // A file big enough for several chunks.
        std::fs::write(root.join("tmp/big"), vec![7u8; 3 << 20]).unwrap();

        let running = collect(&mut f.store.export_rootfs("c1").await.unwrap()).await;
        drop(m);
        let stopped = collect(&mut f.store.export_rootfs("c1").await.unwrap()).await;
        assert_eq!(running, stopped, "same content whether it runs or not");

        let entries = crate::archive::tests::list(&stopped);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "bin/",
            "bin/sh",
            "dev/",
            "etc/",
            "etc/hostname",
            "etc/hosts",
            "etc/new",
            "etc/new2",
            "etc/passwd",
            "etc/resolv.conf",
            "opt/",
            "opt/o",
            "proc/",
            "sys/",
            "tmp/",
            "tmp/big",
            "var/",
            "var/cache/",
            "var/cache/b",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert_eq!(names.len(), 19, "{names:?}");
        assert!(!names.iter().any(|n| n.contains(".wh.")));
        let (_, (kind, _, target)) = &entries[names.iter().position(|n| *n == "etc/new2").unwrap()];
        assert_eq!((*kind, target.as_str()), (tar::EntryType::Link, "etc/new"));
        let (_, (_, size, _)) = &entries[names.iter().position(|n| *n == "tmp/big").unwrap()];
        assert_eq!(*size, 3 << 20);

        // A client that goes away mid-stream stops the walk.
        let mut rx = f.store.export_rootfs("c1").await.unwrap();
        assert!(rx.recv().await.unwrap().is_ok());
        drop(rx);

        // A removal while a slow client reads is not held up, and the
        // stream then ends in an error, not in a shorter archive.
        let mut rx = f.store.export_rootfs("c1").await.unwrap();
        assert!(rx.recv().await.unwrap().is_ok());
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            f.store.remove_rootfs("c1"),
        )
        .await
        .expect("remove_rootfs waited for the export's client")
        .unwrap();
        let mut last = None;
        while let Some(chunk) = rx.recv().await {
            last = Some(chunk);
        }
        let e = last.unwrap().unwrap_err();
        assert!(matches!(e, crate::error::Error::Conflict(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "export c1: the container's root filesystem was removed during the export"
        );
        assert!(matches!(
            f.store.export_rootfs("c1").await.unwrap_err(),
            crate::error::Error::NotFound(_)
        ));
    }
}
