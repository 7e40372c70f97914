//! Tar streams for `cp`: a local file or tree archived under the name the
//! copy needs (Docker's `TarResource` with its rebase), and a tar from the
//! runtime daemon extracted into a local directory.
//!
//! Extraction treats the tar as untrusted: no entry may land outside the
//! destination. Names with `..` are refused, every parent directory is
//! opened relative to the one above it with `O_NOFOLLOW` (so a symlink,
//! whether the tar made it or it was there, is never followed), files are
//! created with `O_EXCL | O_NOFOLLOW`, hard links must point inside the
//! destination, device nodes are not made, and set-id bits are dropped.
//! Entries, their data and the bytes of their headers are bounded
//! ([`ExtractLimits`]), and a stream without its end-of-archive marker is
//! truncated, an error. Ownership is not changed (as Docker's client: the
//! files are the user's).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, futimens, mkdirat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, mkfifoat, symlinkat, unlinkat, UnlinkatFlags};
use tar::{EntryType, Header, HeaderMode};
use tokio::sync::mpsc;

/// Size of the chunks a tar is streamed in.
pub const CHUNK: usize = 256 * 1024;

/// Renames the top of an archive: entries named `old` or `old/…` become
/// `new` or `new/…` (Docker's `RebaseArchiveEntries`). `.` as `old` means
/// every entry (a directory's contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebase {
    pub old: String,
    pub new: String,
}

impl Rebase {
    pub fn apply(&self, name: &str) -> String {
        let name = normalize_name(name);
        if self.old == "." || self.old.is_empty() || self.old == "/" {
            return if name.is_empty() {
                self.new.clone()
            } else {
                format!("{}/{name}", self.new)
            };
        }
        if name == self.old {
            return self.new.clone();
        }
        match name.strip_prefix(&self.old) {
            Some(rest) if rest.starts_with('/') => format!("{}{rest}", self.new),
            _ => name,
        }
    }
}

/// An entry name without leading `/` or `./`, and without a trailing `/`.
fn normalize_name(name: &str) -> String {
    let mut n = name.trim_start_matches('/');
    while let Some(rest) = n.strip_prefix("./") {
        n = rest.trim_start_matches('/');
    }
    if n == "." {
        n = "";
    }
    n.trim_end_matches('/').to_string()
}

// ---------------------------------------------------------------------
// Archiving a local resource.

/// Writes a tar of the local `path` (a symlink is archived as one) with its
/// top entry named `top`; `.` as `top` archives a directory's contents
/// only. Sockets are skipped, as Docker skips them. Returns the writer.
pub fn tar_resource<W: Write>(path: &Path, top: &str, w: W) -> io::Result<W> {
    let mut builder = tar::Builder::new(w);
    builder.mode(HeaderMode::Complete);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    let meta = fs::symlink_metadata(path)?;
    if top == "." || top.is_empty() {
        if meta.is_dir() {
            add_children(&mut builder, path, "", &mut links)?;
        } else {
            add_entry(
                &mut builder,
                path,
                &meta,
                &normalize_name(&base_of(path)),
                &mut links,
            )?;
        }
    } else {
        add_tree(&mut builder, path, &meta, top, &mut links)?;
    }
    builder.into_inner()
}

fn base_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn add_tree<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    meta: &fs::Metadata,
    name: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> io::Result<()> {
    add_entry(b, path, meta, name, links)?;
    if meta.is_dir() {
        add_children(b, path, name, links)?;
    }
    Ok(())
}

fn add_children<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", dir.display())))?
        .collect::<io::Result<_>>()?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let name = child.file_name();
        let name = name.to_string_lossy();
        let full = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = fs::symlink_metadata(&path)?;
        add_tree(b, &path, &meta, &full, links)?;
    }
    Ok(())
}

fn add_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    meta: &fs::Metadata,
    name: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> io::Result<()> {
    let ft = meta.file_type();
    if ft.is_socket() {
        tracing::debug!(path = %path.display(), "cp: skipping a socket");
        return Ok(());
    }
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(meta, HeaderMode::Complete);
    if ft.is_file() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = links.get(&key) {
            h.set_entry_type(EntryType::Link);
            h.set_size(0);
            return b.append_link(&mut h, name, first);
        }
        links.insert(key, name.to_string());
    }
    if ft.is_file() {
        let file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        b.append_data(&mut h, name, file)
    } else if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, format!("{name}/"), io::empty())
    } else if ft.is_symlink() {
        let target = fs::read_link(path)?;
        h.set_size(0);
        b.append_link(&mut h, name, target)
    } else {
        // A fifo or a device node: a header alone.
        let kind = if ft.is_fifo() {
            EntryType::Fifo
        } else if ft.is_char_device() {
            EntryType::Char
        } else {
            EntryType::Block
        };
        h.set_entry_type(kind);
        h.set_size(0);
        let rdev = meta.rdev();
        h.set_device_major(nix::sys::stat::major(rdev) as u32)?;
        h.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
        b.append_data(&mut h, name, io::empty())
    }
}

/// A `Write` that sends what it is given down a channel in chunks (run it
/// on a blocking thread).
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Vec<u8>>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the copy was abandoned"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// A `Read` over chunks coming down a channel (run it on a blocking
/// thread); an `Err` chunk fails the read.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// ---------------------------------------------------------------------
// Extracting an untrusted tar.

/// An errno as Go prints it ("no such file or directory").
fn why(e: Errno) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => e.to_string(),
    }
}

/// An entry name as checked path components (no `..`, no empty parts).
fn components(name: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("refusing the entry {name:?}: it leaves the destination"),
            p => out.push(p),
        }
    }
    Ok(out)
}

fn open_dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// What an extraction made, to take away again if it fails: paths below
/// the destination, and whether each is a directory.
type Made = Vec<(String, bool)>;

/// Opens the directory `parts` below `root`, one component at a time and
/// never through a symlink; missing ones are made (0755, noted in `made`)
/// when `made` is given.
fn open_parents(
    root: &OwnedFd,
    parts: &[&str],
    mut made: Option<&mut Made>,
    name: &str,
) -> Result<OwnedFd> {
    let mut dir = root
        .try_clone()
        .context("duplicate the destination's descriptor")?;
    for (i, part) in parts.iter().enumerate() {
        let opened = match openat(dir.as_fd(), *part, open_dir_flags(), Mode::empty()) {
            Err(Errno::ENOENT) if made.is_some() => {
                match mkdirat(dir.as_fd(), *part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        if let Some(m) = made.as_deref_mut() {
                            m.push((parts[..=i].join("/"), true));
                        }
                    }
                    Err(Errno::EEXIST) => {}
                    Err(e) => bail!(
                        "extract {name}: create {}: {}",
                        parts[..=i].join("/"),
                        why(e)
                    ),
                }
                openat(dir.as_fd(), *part, open_dir_flags(), Mode::empty())
            }
            other => other,
        };
        dir = match opened {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => bail!(
                "extract {name}: {} is not a directory (refusing to follow a link out of the destination)",
                parts[..=i].join("/")
            ),
            Err(e) => bail!("extract {name}: open {}: {}", parts[..=i].join("/"), why(e)),
        };
    }
    Ok(dir)
}

/// What extraction did, for the summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
}

/// Bounds on one extraction. The tar comes from the runtime daemon, which
/// is trusted no more than any peer: a stream of endless entries, file
/// data or extension headers (which the tar reader holds in memory) ends
/// in an error, not in a full disk or memory.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Most entries.
    pub max_entries: u64,
    /// Most bytes of entry data, all entries together.
    pub max_bytes: u64,
    /// Most bytes read between two entries (padding, the header, GNU long
    /// names, PAX records).
    pub max_header_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_entries: 1_000_000,
            max_bytes: 64 << 30,
            max_header_bytes: 2 << 20,
        }
    }
}

/// Bytes accepted after the end-of-archive marker (tar pads to records).
const MAX_TRAILER_BYTES: u64 = 1 << 20;

/// Where the tar reader is reading: bounds the bytes of headers and
/// notices the end of the stream.
#[derive(Default)]
struct Guard {
    in_headers: Cell<bool>,
    header_bytes: Cell<u64>,
    max_header_bytes: u64,
    overflow: Cell<bool>,
    eof: Cell<bool>,
}

struct GuardedReader<'g, R> {
    inner: R,
    guard: &'g Guard,
}

impl<R: Read> Read for GuardedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.guard.eof.set(true);
        }
        if self.guard.in_headers.get() {
            let used = self.guard.header_bytes.get().saturating_add(n as u64);
            self.guard.header_bytes.set(used);
            if used > self.guard.max_header_bytes {
                self.guard.overflow.set(true);
                return Err(io::Error::other("tar headers too large"));
            }
        }
        Ok(n)
    }
}

/// Extracts the tar read from `r` into the existing directory `dest`,
/// renaming its top with `rebase`, within `limits`. An existing directory
/// is merged into; a directory never replaces a file or the reverse
/// (Docker's `NoOverwriteDirNonDir`); any other existing entry is
/// replaced. When the archive is refused or breaks, what it had made is
/// removed again.
pub fn extract<R: Read>(
    r: R,
    dest: &Path,
    rebase: Option<&Rebase>,
    limits: &ExtractLimits,
) -> Result<Extracted> {
    let root: OwnedFd = File::open(dest)
        .with_context(|| format!("open {}", dest.display()))?
        .into();
    if !fs::metadata(dest)
        .with_context(|| format!("stat {}", dest.display()))?
        .is_dir()
    {
        bail!("{}: not a directory", dest.display());
    }
    let mut x = Extraction {
        root: &root,
        dest,
        rebase,
        made: Made::new(),
        dirs: Vec::new(),
        done: Extracted::default(),
    };
    let result = x.run(r, limits);
    if result.is_err() {
        for (path, is_dir) in x.made.iter().rev() {
            let Ok(parts) = components(path) else {
                continue;
            };
            let Some((leaf, parents)) = parts.split_last() else {
                continue;
            };
            if let Ok(dir) = open_parents(&root, parents, None, path) {
                let flag = if *is_dir {
                    UnlinkatFlags::RemoveDir
                } else {
                    UnlinkatFlags::NoRemoveDir
                };
                let _ = unlinkat(dir.as_fd(), *leaf, flag);
            }
        }
    }
    result.map(|()| x.done)
}

struct Extraction<'a> {
    root: &'a OwnedFd,
    dest: &'a Path,
    rebase: Option<&'a Rebase>,
    /// What this extraction made, for undo.
    made: Made,
    /// Directories get their mode and time at the end, so that a read-only
    /// one can still be filled (Docker does the same for times).
    dirs: Vec<(String, u32, u64)>,
    done: Extracted,
}

impl Extraction<'_> {
    fn run<R: Read>(&mut self, r: R, limits: &ExtractLimits) -> Result<()> {
        let guard = Guard {
            max_header_bytes: limits.max_header_bytes,
            ..Default::default()
        };
        let mut guarded = GuardedReader {
            inner: r,
            guard: &guard,
        };
        let stream_error = |e: io::Error| {
            if guard.overflow.get() {
                anyhow!(
                    "refusing the archive: the headers of one entry exceed {} bytes",
                    limits.max_header_bytes
                )
            } else {
                anyhow!("read the archive: {e}")
            }
        };
        {
            let mut archive = tar::Archive::new(&mut guarded);
            let mut entries = archive.entries().map_err(stream_error)?;
            let (mut count, mut data) = (0u64, 0u64);
            loop {
                guard.header_bytes.set(0);
                guard.in_headers.set(true);
                let next = entries.next();
                guard.in_headers.set(false);
                let mut entry = match next {
                    None => break,
                    Some(e) => e.map_err(stream_error)?,
                };
                count += 1;
                if count > limits.max_entries {
                    bail!(
                        "refusing the archive: it has more than {} entries",
                        limits.max_entries
                    );
                }
                data = data.saturating_add(entry.size());
                if data > limits.max_bytes {
                    bail!(
                        "refusing the archive: its entries hold more than {} bytes",
                        limits.max_bytes
                    );
                }
                self.entry(&mut entry)?;
                // What the entry was not read for (a skipped one's data) is
                // data, not headers: read it here.
                io::copy(&mut entry, &mut io::sink()).map_err(stream_error)?;
            }
        }
        if guard.eof.get() {
            bail!("read the archive: it is truncated (no end-of-archive marker)");
        }
        // What follows the marker (record padding), bounded.
        let mut rest = (&mut guarded).take(MAX_TRAILER_BYTES + 1);
        let n = io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
        if n > MAX_TRAILER_BYTES {
            bail!("refusing the archive: data follows its end");
        }
        for (name, mode, mtime) in self.dirs.iter().rev() {
            let parts = components(name)?;
            let dir = open_parents(self.root, &parts, None, name)?;
            fchmod(dir.as_fd(), Mode::from_bits_truncate(*mode))
                .map_err(|e| anyhow!("extract {name}: chmod: {}", why(e)))?;
            let t = TimeSpec::new(*mtime as nix::libc::time_t, 0);
            let _ = futimens(dir.as_fd(), &t, &t);
        }
        Ok(())
    }

    /// Places one entry.
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes();
        let raw = std::str::from_utf8(&raw)
            .map_err(|_| anyhow!("refusing an entry whose name is not UTF-8"))?
            .to_string();
        let name = match self.rebase {
            Some(r) => r.apply(&raw),
            None => normalize_name(&raw),
        };
        let parts = components(&name)?;
        let Some((leaf, parents)) = parts.split_last() else {
            // The destination itself (`.`): left as it is.
            return Ok(());
        };
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o1777;
        let mtime = header.mtime().unwrap_or(0);
        let parent = open_parents(self.root, parents, Some(&mut self.made), &name)?;
        let shown = self.dest.join(&name);
        let existing = fstatat(parent.as_fd(), *leaf, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let existing_is_dir = existing.map(|st| {
            SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
        });
        match (existing_is_dir, kind == EntryType::Directory) {
            (Some(true), true) => {}
            (Some(true), false) => bail!(
                "cannot overwrite directory {:?} with non-directory {:?}",
                shown.display().to_string(),
                shown.display().to_string()
            ),
            (Some(false), true) => bail!(
                "cannot overwrite non-directory {:?} with directory {:?}",
                shown.display().to_string(),
                shown.display().to_string()
            ),
            (Some(false), false) => unlinkat(parent.as_fd(), *leaf, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| anyhow!("extract {name}: replace it: {}", why(e)))?,
            (None, _) => {}
        }
        // A new entry is noted for undo as soon as it exists (one that
        // replaced another is not: what it replaced is gone either way).
        let is_new = existing.is_none();
        let times = (
            TimeSpec::new(mtime as nix::libc::time_t, 0),
            TimeSpec::new(mtime as nix::libc::time_t, 0),
        );
        match kind {
            EntryType::Directory => {
                if existing_is_dir != Some(true) {
                    mkdirat(parent.as_fd(), *leaf, Mode::from_bits_truncate(0o700))
                        .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
                    self.made.push((name.clone(), true));
                }
                self.dirs.push((name.clone(), mode, mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    parent.as_fd(),
                    *leaf,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
                if is_new {
                    self.made.push((name.clone(), false));
                }
                let mut file = File::from(fd);
                let expected = entry.size();
                let written = match io::copy(entry, &mut file) {
                    Ok(n) if n == expected => fchmod(file.as_fd(), Mode::from_bits_truncate(mode))
                        .map(|()| n)
                        .map_err(|e| anyhow!("extract {name}: chmod: {}", why(e))),
                    Ok(_) => Err(anyhow!("extract {name}: the archive ended early")),
                    Err(e) => Err(anyhow!("extract {name}: {e}")),
                };
                let written = match written {
                    Ok(n) => n,
                    Err(e) => {
                        // Not left half-written, new or not.
                        drop(file);
                        let _ = unlinkat(parent.as_fd(), *leaf, UnlinkatFlags::NoRemoveDir);
                        return Err(e);
                    }
                };
                self.done.bytes += written;
                let _ = futimens(file.as_fd(), &times.0, &times.1);
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| anyhow!("extract {name}: a symlink without a target"))?;
                symlinkat(OsStr::from_bytes(&target), parent.as_fd(), *leaf)
                    .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
                if is_new {
                    self.made.push((name.clone(), false));
                }
                let _ = utimensat(
                    parent.as_fd(),
                    *leaf,
                    &times.0,
                    &times.1,
                    UtimensatFlags::NoFollowSymlink,
                );
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| anyhow!("extract {name}: a hard link without a target"))?;
                let target = std::str::from_utf8(&target)
                    .map_err(|_| anyhow!("extract {name}: a link target that is not UTF-8"))?;
                let target = match self.rebase {
                    Some(r) => r.apply(target),
                    None => normalize_name(target),
                };
                let tparts = components(&target)?;
                let Some((tleaf, tparents)) = tparts.split_last() else {
                    bail!("extract {name}: a hard link to the destination itself");
                };
                let tdir = open_parents(self.root, tparents, None, &name)?;
                linkat(
                    tdir.as_fd(),
                    *tleaf,
                    parent.as_fd(),
                    *leaf,
                    AtFlags::empty(),
                )
                .map_err(|e| anyhow!("extract {name}: link to {target}: {}", why(e)))?;
                if is_new {
                    self.made.push((name.clone(), false));
                }
            }
            EntryType::Fifo => {
                mkfifoat(parent.as_fd(), *leaf, Mode::from_bits_truncate(mode))
                    .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
                if is_new {
                    self.made.push((name.clone(), false));
                }
            }
            EntryType::Char | EntryType::Block => {
                tracing::debug!(entry = %name, "cp: not making a device node");
                return Ok(());
            }
            other => {
                tracing::debug!(entry = %name, kind = ?other, "cp: skipping an entry");
                return Ok(());
            }
        }
        self.done.entries += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn tar_of(entries: &[(&str, EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            // Names are set raw: the builder would refuse `..`.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn rebase_like_docker() {
        let r = Rebase {
            old: "hostname".into(),
            new: "copy".into(),
        };
        assert_eq!(r.apply("hostname"), "copy");
        assert_eq!(r.apply("hostname/x"), "copy/x");
        assert_eq!(r.apply("./hostname/x/"), "copy/x");
        assert_eq!(r.apply("hostnamex"), "hostnamex");
        let r = Rebase {
            old: ".".into(),
            new: "new".into(),
        };
        assert_eq!(r.apply("./a/b"), "new/a/b");
        assert_eq!(r.apply("."), "new");
        assert_eq!(r.apply("a"), "new/a");
    }

    #[test]
    fn round_trip_a_tree() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("tree/sub")).unwrap();
        fs::write(s.join("tree/a.txt"), "alpha").unwrap();
        fs::write(s.join("tree/sub/b.txt"), "beta").unwrap();
        fs::set_permissions(s.join("tree/sub/b.txt"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("a.txt", s.join("tree/link")).unwrap();
        fs::hard_link(s.join("tree/a.txt"), s.join("tree/hard")).unwrap();

        let data = tar_resource(&s.join("tree"), "renamed", Vec::new()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let done = extract(&data[..], dst.path(), None, &ExtractLimits::default()).unwrap();
        let d = dst.path().join("renamed");
        assert_eq!(fs::read_to_string(d.join("a.txt")).unwrap(), "alpha");
        assert_eq!(fs::read_to_string(d.join("sub/b.txt")).unwrap(), "beta");
        assert_eq!(
            fs::metadata(d.join("sub/b.txt"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o750
        );
        assert_eq!(fs::read_link(d.join("link")).unwrap(), Path::new("a.txt"));
        assert_eq!(
            fs::metadata(d.join("hard")).unwrap().ino(),
            fs::metadata(d.join("a.txt")).unwrap().ino()
        );
        assert_eq!(done.bytes, 9);

        // Contents only (`dir/.`), merged into an existing directory.
        let data = tar_resource(&s.join("tree"), ".", Vec::new()).unwrap();
        let dst2 = tempfile::tempdir().unwrap();
        fs::write(dst2.path().join("keep"), "k").unwrap();
        extract(&data[..], dst2.path(), None, &ExtractLimits::default()).unwrap();
        assert!(dst2.path().join("keep").exists());
        assert_eq!(
            fs::read_to_string(dst2.path().join("sub/b.txt")).unwrap(),
            "beta"
        );

        // A single file under another name.
        let data = tar_resource(&s.join("tree/a.txt"), "x.txt", Vec::new()).unwrap();
        extract(&data[..], dst2.path(), None, &ExtractLimits::default()).unwrap();
        assert_eq!(
            fs::read_to_string(dst2.path().join("x.txt")).unwrap(),
            "alpha"
        );
    }

    #[test]
    fn nothing_lands_outside_the_destination() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let outside = outer.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let outside_s = outside.to_str().unwrap();

        // `..` in a name.
        let t = tar_of(&[("../evil", EntryType::Regular, b"x", "")]);
        let err = extract(&t[..], &dest, None, &ExtractLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("leaves the destination"), "{err}");
        assert!(!outer.path().join("evil").exists());

        // A symlink the tar makes, then a file through it.
        let t = tar_of(&[
            ("esc", EntryType::Symlink, b"", outside_s),
            ("esc/pwned", EntryType::Regular, b"x", ""),
        ]);
        let err = extract(&t[..], &dest, None, &ExtractLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");
        assert!(!outside.join("pwned").exists());
        // What the refused archive had made is gone again.
        assert!(fs::symlink_metadata(dest.join("esc")).is_err());

        // A symlink already in the destination is not followed either.
        std::os::unix::fs::symlink(&outside, dest.join("pre")).unwrap();
        let t = tar_of(&[("pre/pwned", EntryType::Regular, b"x", "")]);
        assert!(extract(&t[..], &dest, None, &ExtractLimits::default()).is_err());
        assert!(!outside.join("pwned").exists());

        // A file entry over a symlink replaces the link, not its target.
        fs::write(outside.join("target"), "safe").unwrap();
        std::os::unix::fs::symlink(outside.join("target"), dest.join("f")).unwrap();
        let t = tar_of(&[("f", EntryType::Regular, b"new", "")]);
        extract(&t[..], &dest, None, &ExtractLimits::default()).unwrap();
        assert_eq!(fs::read_to_string(outside.join("target")).unwrap(), "safe");
        assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "new");

        // A hard link to a file outside.
        let t = tar_of(&[("h", EntryType::Link, b"", "../outside/target")]);
        assert!(extract(&t[..], &dest, None, &ExtractLimits::default()).is_err());
        let t = tar_of(&[("h", EntryType::Link, b"", "pre/target")]);
        assert!(extract(&t[..], &dest, None, &ExtractLimits::default()).is_err());
        assert!(!dest.join("h").exists());

        // Absolute names stay inside; set-id bits and devices are dropped.
        let mut t = tar_of(&[("/abs", EntryType::Regular, b"a", "")]);
        extract(&t[..], &dest, None, &ExtractLimits::default()).unwrap();
        assert_eq!(fs::read_to_string(dest.join("abs")).unwrap(), "a");
        t = tar_of(&[("dev", EntryType::Char, b"", "")]);
        extract(&t[..], &dest, None, &ExtractLimits::default()).unwrap();
        assert!(!dest.join("dev").exists());
    }

    #[test]
    fn dir_and_non_dir_do_not_replace_each_other() {
        let dest = tempfile::tempdir().unwrap();
        fs::create_dir(dest.path().join("d")).unwrap();
        fs::write(dest.path().join("f"), "x").unwrap();
        let t = tar_of(&[("d", EntryType::Regular, b"x", "")]);
        let err = extract(&t[..], dest.path(), None, &ExtractLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot overwrite directory"), "{err}");
        let t = tar_of(&[("f", EntryType::Directory, b"", "")]);
        let err = extract(&t[..], dest.path(), None, &ExtractLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot overwrite non-directory"), "{err}");
    }

    #[test]
    fn a_truncated_stream_fails_and_removes_the_partial_file() {
        let t = tar_of(&[("big", EntryType::Regular, &[7u8; 4096], "")]);
        let dest = tempfile::tempdir().unwrap();
        assert!(extract(&t[..1024], dest.path(), None, &ExtractLimits::default()).is_err());
        assert!(!dest.path().join("big").exists());
    }

    fn limits(entries: u64, bytes: u64, headers: u64) -> ExtractLimits {
        ExtractLimits {
            max_entries: entries,
            max_bytes: bytes,
            max_header_bytes: headers,
        }
    }

    fn is_empty(dir: &Path) -> bool {
        fs::read_dir(dir).unwrap().next().is_none()
    }

    #[test]
    fn limits_refuse_the_archive_and_undo_it() {
        let three = tar_of(&[
            ("d", EntryType::Directory, b"", ""),
            ("d/a", EntryType::Regular, &[1u8; 600], ""),
            ("b", EntryType::Regular, &[2u8; 600], ""),
        ]);
        let dest = tempfile::tempdir().unwrap();
        let err = extract(&three[..], dest.path(), None, &limits(2, 1 << 20, 1 << 20))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "refusing the archive: it has more than 2 entries");
        assert!(is_empty(dest.path()), "the files made before are gone");
        let err = extract(&three[..], dest.path(), None, &limits(10, 1000, 1 << 20))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "refusing the archive: its entries hold more than 1000 bytes"
        );
        assert!(is_empty(dest.path()));
        let done = extract(&three[..], dest.path(), None, &limits(3, 1200, 1 << 20)).unwrap();
        assert_eq!(
            done,
            Extracted {
                entries: 3,
                bytes: 1200
            }
        );

        // A long name is an extension header, read into memory: bounded.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "n/".repeat(4000) + "f", &b"x"[..])
            .unwrap();
        let long = b.into_inner().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err = extract(&long[..], dest.path(), None, &limits(10, 1 << 20, 4096))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "refusing the archive: the headers of one entry exceed 4096 bytes"
        );
        assert!(is_empty(dest.path()));

        // The data of a skipped entry is not taken for headers.
        let dev = tar_of(&[
            ("dev", EntryType::Char, &[0u8; 8192], ""),
            ("f", EntryType::Regular, b"f", ""),
        ]);
        let done = extract(&dev[..], dest.path(), None, &limits(10, 1 << 20, 4096)).unwrap();
        assert_eq!(done.entries, 1);
        assert_eq!(fs::read(dest.path().join("f")).unwrap(), b"f");
    }

    #[test]
    fn a_stream_without_its_end_or_with_junk_after_it_is_refused() {
        let t = tar_of(&[("a", EntryType::Regular, b"alpha", "")]);
        // Builder ends the archive with two zero blocks; cut them off.
        let cut = &t[..t.len() - 1024];
        let dest = tempfile::tempdir().unwrap();
        let err = extract(cut, dest.path(), None, &ExtractLimits::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "read the archive: it is truncated (no end-of-archive marker)"
        );
        assert!(is_empty(dest.path()));
        let mut junk = t.clone();
        junk.extend(std::iter::repeat_n(7u8, (MAX_TRAILER_BYTES + 1) as usize));
        let err = extract(&junk[..], dest.path(), None, &ExtractLimits::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "refusing the archive: data follows its end");
        assert!(is_empty(dest.path()));
        // Record padding after the marker is fine.
        let mut padded = t.clone();
        padded.extend(std::iter::repeat_n(0u8, 8192));
        extract(&padded[..], dest.path(), None, &ExtractLimits::default()).unwrap();
        assert_eq!(fs::read(dest.path().join("a")).unwrap(), b"alpha");
    }
}
