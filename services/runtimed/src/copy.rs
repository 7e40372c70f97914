//! `docker cp`: what a path in a container is, a tar of it, and a tar
//! extracted into it (the work itself is `rdock_containerfs`'s).
//!
//! A running container, or a created one whose init already waits inside
//! its root, is reached through `/proc/<init pid>/root`: the copy sees what
//! its processes see, volumes included, and the kernel keeps its read-only
//! mounts read-only. The pid is checked to be in the container's cgroup
//! and `/proc/<pid>` is held open while the root is opened, so a reused pid
//! never leads elsewhere; the root and the mount namespace stay open for
//! the copy, so a container exiting meanwhile does not pull its volumes
//! away mid-copy.
//!
//! A stopped container's root filesystem is mounted at a temporary path
//! under `<run>/cp` (read-only with `--read-only`), its volumes and bind
//! mounts bound in where their targets exist (read-only where they are);
//! tmpfs mounts hold nothing while it is stopped and are left out. That
//! mount lasts exactly as long as the copy, however it ends (done, failed,
//! the client gone), and holds the container's `copies` lock so a start or
//! removal waits for it rather than mounting the same overlay twice. No
//! other lock is held while data flows; the blocking work runs in
//! `spawn_blocking` behind channels.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures::{Stream, StreamExt};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use rdock_containerfs::{extract_into, ExtractLimits, MountKind, MountPoint, PathArchive};
use rdock_proto::runtime::v1 as pb;
use tokio::sync::{mpsc, oneshot, OwnedMutexGuard};
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{join, Error, Result};
use crate::model::{Container, Status};
use crate::mounts;
use crate::runtime::Runtime;

/// Bytes per message of a tar stream sent to the client.
const CHUNK: usize = 64 << 10;

/// How long a copy waits for the exit of a container whose init is gone.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A tar stream out of a container.
pub type CopyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

/// A copy error, with Docker's words for a path that is not there.
fn path_error(e: rdock_containerfs::Error, container: &str) -> Error {
    match e {
        rdock_containerfs::Error::PathNotFound(p) => Error::NotFound(format!(
            "Could not find the file {p} in container {container}"
        )),
        e => Error::from(e),
    }
}

/// Whether a line of `/proc/<pid>/cgroup` puts the process in the cgroup
/// of container `id` (its last path component).
pub fn in_container_cgroup(cgroup_file: &str, id: &str) -> bool {
    cgroup_file.lines().any(|l| {
        l.splitn(3, ':')
            .nth(2)
            .and_then(|path| path.trim_end_matches('/').rsplit('/').next())
            == Some(id)
    })
}

/// Docker's refusals before extracting into `path`: a read-only mount
/// there, or a read-only root filesystem outside any writable mount.
pub fn check_writable(path: &str, read_only_root: bool, points: &[MountPoint]) -> Result<()> {
    let path = rdock_containerfs::mounts::clean_abs(path);
    let under = |dest: &str| path == dest || path.starts_with(&format!("{dest}/"));
    match points
        .iter()
        .filter(|p| under(&p.destination))
        .max_by_key(|p| p.destination.len())
    {
        Some(p) if p.read_only => Err(Error::InvalidArgument(
            "mounted volume is marked read-only".into(),
        )),
        Some(_) => Ok(()),
        None if read_only_root => Err(Error::InvalidArgument(
            "container rootfs is marked read-only".into(),
        )),
        None => Ok(()),
    }
}

/// The root directory and the mount namespace of the container's init, if
/// `pid` is still in the container's cgroup. Opened through `/proc/<pid>`
/// held open, so a pid reused meanwhile fails instead of leading elsewhere.
/// Holding the namespace keeps the container's mounts (its volumes) in
/// place for the copy even if the container exits during it.
fn proc_root(pid: u32, id: &str) -> Option<(OwnedFd, OwnedFd)> {
    let dir = nix::fcntl::open(
        format!("/proc/{pid}").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let cgroup = nix::fcntl::openat(
        &dir,
        "cgroup",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    std::fs::File::from(cgroup).read_to_string(&mut text).ok()?;
    if !in_container_cgroup(&text, id) {
        return None;
    }
    let ns = nix::fcntl::openat(
        &dir,
        "ns/mnt",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let root = nix::fcntl::openat(
        &dir,
        "root",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    Some((root, ns))
}

/// A stopped container's root filesystem mounted for a copy; unmounted
/// (with everything below it) and removed when dropped.
struct TempRoot {
    path: PathBuf,
}

impl TempRoot {
    /// Mounts `c`'s root filesystem in a new directory under `dir`, then
    /// its volumes and binds (see the module docs).
    fn mount(dir: &Path, c: &Container) -> Result<TempRoot> {
        std::fs::create_dir_all(dir)
            .map_err(crate::error::io(format!("create {}", dir.display())))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(crate::error::io(format!("chmod {}", dir.display())))?;
        let path = dir.join(format!(
            "{}-{}",
            c.id,
            hex::encode(rand::random::<[u8; 4]>())
        ));
        std::fs::create_dir(&path)
            .map_err(crate::error::io(format!("create {}", path.display())))?;
        if let Err(e) = mounts::mount_overlay(
            &c.rootfs.lowerdirs,
            &c.rootfs.upperdir,
            &c.rootfs.workdir,
            &path,
        ) {
            let _ = std::fs::remove_dir(&path);
            return Err(e);
        }
        // Mounted: from here on, dropping it undoes everything.
        let root = TempRoot { path };
        mounts::make_private(&root.path)?;
        if c.host.read_only {
            mounts::make_read_only(&root.path)?;
        }
        let mut points: Vec<&MountPoint> = c
            .mount_points
            .iter()
            .filter(|p| p.kind != MountKind::Tmpfs)
            .collect();
        // Parents before what is mounted inside them.
        points.sort_by_key(|p| p.destination.split('/').filter(|s| !s.is_empty()).count());
        for p in points {
            if !mounts::bind_inside(&root.path, &p.source, &p.destination, p.read_only)? {
                tracing::debug!(target = %p.destination, "mount target or source missing; not shown to the copy");
            }
        }
        Ok(root)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        if let Err(e) = mounts::unmount_tree(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "unmount a copy's root filesystem");
            return;
        }
        if let Err(e) = std::fs::remove_dir(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "remove a copy's mount point");
        }
    }
}

/// Where a copy reaches a container's files, for as long as it lives.
pub(crate) struct CopyRoot {
    /// The container's root directory as this process sees it.
    path: PathBuf,
    /// Running: the init's root directory, which `path` goes through, and
    /// its mount namespace.
    _proc: Option<(OwnedFd, OwnedFd)>,
    /// Stopped: the temporary mount `path` is (dropped before the lock).
    _mount: Option<TempRoot>,
    _copies: Option<OwnedMutexGuard<()>>,
}

/// A `Write` that sends what is written, in chunks, to an async receiver.
/// A receiver that went away (the client disconnected) is a broken pipe.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Result<Vec<u8>>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A `Read` over chunks from an async sender; an error sent is returned
/// as the read's error, the sender's end is the end of the stream.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.cur.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let rest = self.cur.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Runtime {
    /// Where stopped containers' root filesystems are mounted for copies.
    fn copy_dir(&self) -> PathBuf {
        self.cfg.daemon.run_dir.join("cp")
    }

    /// Unmounts and removes what copies left behind when the daemon
    /// stopped without finishing them.
    pub(crate) fn sweep_copy_roots(&self) {
        let Ok(entries) = std::fs::read_dir(self.copy_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let res = mounts::unmount_tree(&path).and_then(|()| {
                std::fs::remove_dir(&path)
                    .map_err(crate::error::io(format!("remove {}", path.display())))
            });
            if let Err(e) = res {
                tracing::warn!(path = %path.display(), error = %e, "remove a leftover copy mount");
            }
        }
    }

    /// The container named `key` and a way into its files (see the module
    /// docs).
    async fn copy_root(&self, key: &str) -> Result<(Container, CopyRoot)> {
        let found = self.find(key)?;
        let live = self.live(&found.id);
        loop {
            let op = live.op.lock().await;
            let c = self
                .store
                .get(&found.id)?
                .ok_or_else(|| Error::NotFound(format!("no such container: {key}")))?;
            if c.state.pid != 0 {
                if let Some((root, ns)) = proc_root(c.state.pid, &c.id) {
                    return Ok((
                        c,
                        CopyRoot {
                            path: PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd())),
                            _proc: Some((root, ns)),
                            _mount: None,
                            _copies: None,
                        },
                    ));
                }
            }
            match c.state.status {
                Status::Running => {
                    // Its init is gone, and its exit not recorded yet: wait
                    // for that, then look again.
                    drop(op);
                    let mut exit = live.exit.subscribe();
                    let recorded = async {
                        while exit.borrow_and_update().is_none() {
                            if exit.changed().await.is_err() {
                                return;
                            }
                        }
                    };
                    if tokio::time::timeout(EXIT_WAIT, recorded).await.is_err() {
                        return Err(Error::Conflict(format!("container {key} is stopping")));
                    }
                    continue;
                }
                Status::Created if c.state.pid == 0 => {
                    return Err(Error::Conflict(format!("container {key} is being created")))
                }
                _ => {}
            }
            let guard = match live.copies.clone().try_lock_owned() {
                Ok(g) => g,
                Err(_) => {
                    // Another copy has it mounted: wait for it without
                    // holding up the container's other operations.
                    drop(op);
                    drop(live.copies.clone().lock_owned().await);
                    continue;
                }
            };
            let dir = self.copy_dir();
            let rec = c.clone();
            let mount = tokio::task::spawn_blocking(move || TempRoot::mount(&dir, &rec))
                .await
                .map_err(join("mount the root filesystem for a copy"))??;
            drop(op);
            return Ok((
                c,
                CopyRoot {
                    path: mount.path.clone(),
                    _proc: None,
                    _mount: Some(mount),
                    _copies: Some(guard),
                },
            ));
        }
    }

    /// What `path` is in the container (`HEAD` of Docker's archive API).
    #[tracing::instrument(skip_all, fields(container = %key, path = %path))]
    pub async fn stat_path(&self, key: &str, path: &str) -> Result<pb::PathStat> {
        let (_, root) = self.copy_root(key).await?;
        let p = path.to_string();
        let res = tokio::task::spawn_blocking(move || {
            let st = rdock_containerfs::stat_path(&root.path, &p);
            drop(root);
            st
        })
        .await
        .map_err(join("stat"))?;
        res.map_err(|e| path_error(e, key))
    }

    /// What `path` is and a tar of it. A path that cannot be archived
    /// fails here, before any byte; a failure later ends the stream with
    /// the error.
    #[tracing::instrument(skip_all, fields(container = %key, path = %path, follow_link))]
    pub async fn copy_from(
        &self,
        key: &str,
        path: &str,
        follow_link: bool,
    ) -> Result<(pb::PathStat, CopyStream)> {
        let (_, root) = self.copy_root(key).await?;
        let (stat_tx, stat_rx) = oneshot::channel::<Result<pb::PathStat>>();
        let (tx, rx) = mpsc::channel::<Result<Vec<u8>>>(8);
        let (p, k) = (path.to_string(), key.to_string());
        tokio::task::spawn_blocking(move || {
            let archive = match PathArchive::open(&root.path, &p, follow_link) {
                Ok(a) => a,
                Err(e) => {
                    let _ = stat_tx.send(Err(path_error(e, &k)));
                    return;
                }
            };
            if stat_tx.send(Ok(archive.stat().clone())).is_err() {
                return;
            }
            let mut w = ChannelWriter::new(tx.clone());
            let wrote = archive
                .write_to(&mut w)
                .map_err(Error::from)
                .and_then(|w| w.flush().map_err(crate::error::io(format!("archive {p}"))));
            drop(w);
            // Unmounted before the stream ends.
            drop(root);
            if let Err(e) = wrote {
                tracing::debug!(error = %e, "copy out of the container ended early");
                let _ = tx.blocking_send(Err(e));
            }
        });
        let stat = stat_rx
            .await
            .map_err(|_| Error::Internal(format!("archive {path}: the copy ended early")))??;
        Ok((stat, Box::pin(ReceiverStream::new(rx))))
    }

    /// Extracts the tar stream `data` into directory `start.path` of the
    /// container. A stream that breaks or ends early fails the copy, and
    /// what it created is removed again.
    #[tracing::instrument(skip_all, fields(container = %start.id, path = %start.path, keep_owner = start.keep_owner))]
    pub async fn copy_to<S>(&self, start: pb::CopyToStart, data: S) -> Result<()>
    where
        S: Stream<Item = io::Result<Vec<u8>>> + Send,
    {
        let (c, root) = self.copy_root(&start.id).await?;
        check_writable(&start.path, c.host.read_only, &c.mount_points)?;
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(8);
        let (path, keep_owner) = (start.path.clone(), start.keep_owner);
        let task = tokio::task::spawn_blocking(move || {
            let res = extract_into(
                &root.path,
                &path,
                ChannelReader::new(rx),
                keep_owner,
                &ExtractLimits::default(),
            );
            drop(root);
            res
        });
        let mut data = std::pin::pin!(data);
        while let Some(item) = data.next().await {
            let broken = item.is_err();
            // A closed channel: the extraction stopped, and says why.
            if tx.send(item).await.is_err() || broken {
                break;
            }
        }
        drop(tx);
        let res = task.await.map_err(join("extract"))?;
        res.map(drop).map_err(|e| path_error(e, &start.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(dest: &str, read_only: bool) -> MountPoint {
        MountPoint {
            kind: MountKind::Volume,
            source: "/v".into(),
            destination: dest.into(),
            name: "v".into(),
            read_only,
            propagation: String::new(),
            relabel: String::new(),
            no_copy: false,
            create_host_path: false,
            anonymous: false,
            tmpfs_options: vec![],
        }
    }

    #[test]
    fn docker_refuses_copies_into_read_only_places() {
        let points = [point("/data", false), point("/data/ro", true)];
        check_writable("/data/x", true, &points).unwrap();
        check_writable("/data", true, &points).unwrap();
        let e = check_writable("/data/ro/../ro/sub", false, &points).unwrap_err();
        assert_eq!(e.to_string(), "mounted volume is marked read-only");
        let e = check_writable("/datax", true, &points).unwrap_err();
        assert_eq!(e.to_string(), "container rootfs is marked read-only");
        assert!(matches!(e, Error::InvalidArgument(_)));
        check_writable("/tmp", false, &points).unwrap();
        check_writable("/data/../tmp", false, &[]).unwrap();
    }

    #[test]
    fn the_init_must_be_in_the_containers_cgroup() {
        let id = "4f".repeat(32);
        let v1 = format!("12:pids:/rdock/{id}\n11:memory:/rdock/{id}\n0::/rdock/{id}\n");
        assert!(in_container_cgroup(&v1, &id));
        assert!(in_container_cgroup(&format!("0::/a/b/{id}/\n"), &id));
        assert!(!in_container_cgroup("0::/user.slice\n", &id));
        assert!(!in_container_cgroup(
            &format!("0::/rdock/{id}-other\n"),
            &id
        ));
        assert!(!in_container_cgroup("", &id));
    }

    #[test]
    fn a_missing_path_is_worded_like_docker() {
        let e = path_error(
            rdock_containerfs::Error::PathNotFound("/nosuch".into()),
            "web",
        );
        assert!(matches!(e, Error::NotFound(_)));
        assert_eq!(
            e.to_string(),
            "Could not find the file /nosuch in container web"
        );
        let e = path_error(
            rdock_containerfs::Error::InvalidArgument("bad".into()),
            "web",
        );
        assert!(matches!(e, Error::InvalidArgument(_)));
    }

    #[tokio::test]
    async fn channels_carry_a_tar_both_ways_and_notice_a_gone_peer() {
        // Writer → async side, in bounded chunks.
        let (tx, mut rx) = mpsc::channel(2);
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            w.write_all(&vec![7u8; CHUNK * 2 + 10])?;
            w.flush()
        });
        let mut got = Vec::new();
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= CHUNK);
            got.extend(chunk);
        }
        writer.await.unwrap().unwrap();
        assert_eq!(got.len(), CHUNK * 2 + 10);

        // A receiver gone: the writer fails instead of blocking.
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let res = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            w.write_all(&[1; 10])?;
            w.flush()
        })
        .await
        .unwrap();
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);

        // Async side → reader: bytes in order, then an error sent, or the
        // end when the sender is dropped.
        let (tx, rx) = mpsc::channel(4);
        let reader = tokio::task::spawn_blocking(move || {
            let mut r = ChannelReader::new(rx);
            let mut buf = Vec::new();
            let res = r.read_to_end(&mut buf);
            (buf, res.map_err(|e| e.to_string()))
        });
        tx.send(Ok(b"ab".to_vec())).await.unwrap();
        tx.send(Ok(Vec::new())).await.unwrap();
        tx.send(Ok(b"cd".to_vec())).await.unwrap();
        tx.send(Err(io::Error::other("client gone"))).await.unwrap();
        let (buf, res) = reader.await.unwrap();
        assert_eq!(buf, b"abcd");
        assert_eq!(res.unwrap_err(), "client gone");

        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(b"xyz".to_vec())).await.unwrap();
        drop(tx);
        let buf = tokio::task::spawn_blocking(move || {
            let mut buf = String::new();
            ChannelReader::new(rx).read_to_string(&mut buf).map(|_| buf)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(buf, "xyz");
    }
}
