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
//! Ownership is not changed (as Docker's client: the files are the user's).

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

/// Extracts the tar read from `r` into the existing directory `dest`,
/// renaming its top with `rebase`. An existing directory is merged into;
/// a directory never replaces a file or the reverse (Docker's
/// `NoOverwriteDirNonDir`); any other existing entry is replaced. When the
/// archive is refused or breaks, what it had made is removed again.
pub fn extract<R: Read>(r: R, dest: &Path, rebase: Option<&Rebase>) -> Result<Extracted> {
    let root: OwnedFd = File::open(dest)
        .with_context(|| format!("open {}", dest.display()))?
        .into();
    if !fs::metadata(dest)
        .with_context(|| format!("stat {}", dest.display()))?
        .is_dir()
    {
        bail!("{}: not a directory", dest.display());
    }
    let mut made = Made::new();
    let result = extract_into(r, &root, dest, rebase, &mut made);
    if result.is_err() {
        for (path, is_dir) in made.iter().rev() {
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
    result
}

fn extract_into<R: Read>(
    r: R,
    root: &OwnedFd,
    dest: &Path,
    rebase: Option<&Rebase>,
    made: &mut Made,
) -> Result<Extracted> {
    let mut archive = tar::Archive::new(r);
    let mut done = Extracted::default();
    // Directories get their mode and time at the end, so that a read-only
    // one can still be filled (Docker does the same for times).
    let mut dirs: Vec<(String, u32, u64)> = Vec::new();
    for entry in archive.entries().context("read the archive")? {
        let mut entry = entry.context("read the archive")?;
        let raw = entry.path_bytes();
        let raw = std::str::from_utf8(&raw)
            .map_err(|_| anyhow!("refusing an entry whose name is not UTF-8"))?
            .to_string();
        let name = match rebase {
            Some(r) => r.apply(&raw),
            None => normalize_name(&raw),
        };
        let parts = components(&name)?;
        let Some((leaf, parents)) = parts.split_last() else {
            // The destination itself (`.`): left as it is.
            continue;
        };
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o1777;
        let mtime = header.mtime().unwrap_or(0);
        let parent = open_parents(root, parents, Some(made), &name)?;
        let shown = dest.join(&name);
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
        let times = (
            TimeSpec::new(mtime as nix::libc::time_t, 0),
            TimeSpec::new(mtime as nix::libc::time_t, 0),
        );
        match kind {
            EntryType::Directory => {
                if existing_is_dir != Some(true) {
                    mkdirat(parent.as_fd(), *leaf, Mode::from_bits_truncate(0o700))
                        .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
                    made.push((name.clone(), true));
                }
                dirs.push((name.clone(), mode, mtime));
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
                let mut file = File::from(fd);
                let expected = entry.size();
                let written = match io::copy(&mut entry, &mut file) {
                    Ok(n) if n == expected => Ok(n),
                    Ok(_) => Err(anyhow!("extract {name}: the archive ended early")),
                    Err(e) => Err(anyhow!("extract {name}: {e}")),
                };
                let written = match written {
                    Ok(n) => n,
                    Err(e) => {
                        drop(file);
                        let _ = unlinkat(parent.as_fd(), *leaf, UnlinkatFlags::NoRemoveDir);
                        return Err(e);
                    }
                };
                done.bytes += written;
                fchmod(file.as_fd(), Mode::from_bits_truncate(mode))
                    .map_err(|e| anyhow!("extract {name}: chmod: {}", why(e)))?;
                let _ = futimens(file.as_fd(), &times.0, &times.1);
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| anyhow!("extract {name}: a symlink without a target"))?;
                symlinkat(OsStr::from_bytes(&target), parent.as_fd(), *leaf)
                    .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
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
                let target = match rebase {
                    Some(r) => r.apply(target),
                    None => normalize_name(target),
                };
                let tparts = components(&target)?;
                let Some((tleaf, tparents)) = tparts.split_last() else {
                    bail!("extract {name}: a hard link to the destination itself");
                };
                let tdir = open_parents(root, tparents, None, &name)?;
                linkat(
                    tdir.as_fd(),
                    *tleaf,
                    parent.as_fd(),
                    *leaf,
                    AtFlags::empty(),
                )
                .map_err(|e| anyhow!("extract {name}: link to {target}: {}", why(e)))?;
            }
            EntryType::Fifo => {
                mkfifoat(parent.as_fd(), *leaf, Mode::from_bits_truncate(mode))
                    .map_err(|e| anyhow!("extract {name}: {}", why(e)))?;
            }
            EntryType::Char | EntryType::Block => {
                tracing::debug!(entry = %name, "cp: not making a device node");
                continue;
            }
            other => {
                tracing::debug!(entry = %name, kind = ?other, "cp: skipping an entry");
                continue;
            }
        }
        if kind != EntryType::Directory && existing.is_none() {
            made.push((name.clone(), false));
        }
        done.entries += 1;
    }
    for (name, mode, mtime) in dirs.iter().rev() {
        let parts = components(name)?;
        let dir = open_parents(root, &parts, None, name)?;
        fchmod(dir.as_fd(), Mode::from_bits_truncate(*mode))
            .map_err(|e| anyhow!("extract {name}: chmod: {}", why(e)))?;
        let t = TimeSpec::new(*mtime as nix::libc::time_t, 0);
        let _ = futimens(dir.as_fd(), &t, &t);
    }
    Ok(done)
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
        let done = extract(&data[..], dst.path(), None).unwrap();
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
        extract(&data[..], dst2.path(), None).unwrap();
        assert!(dst2.path().join("keep").exists());
        assert_eq!(
            fs::read_to_string(dst2.path().join("sub/b.txt")).unwrap(),
            "beta"
        );

        // A single file under another name.
        let data = tar_resource(&s.join("tree/a.txt"), "x.txt", Vec::new()).unwrap();
        extract(&data[..], dst2.path(), None).unwrap();
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
        let err = extract(&t[..], &dest, None).unwrap_err().to_string();
        assert!(err.contains("leaves the destination"), "{err}");
        assert!(!outer.path().join("evil").exists());

        // A symlink the tar makes, then a file through it.
        let t = tar_of(&[
            ("esc", EntryType::Symlink, b"", outside_s),
            ("esc/pwned", EntryType::Regular, b"x", ""),
        ]);
        let err = extract(&t[..], &dest, None).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
        assert!(!outside.join("pwned").exists());
        // What the refused archive had made is gone again.
        assert!(fs::symlink_metadata(dest.join("esc")).is_err());

        // A symlink already in the destination is not followed either.
        std::os::unix::fs::symlink(&outside, dest.join("pre")).unwrap();
        let t = tar_of(&[("pre/pwned", EntryType::Regular, b"x", "")]);
        assert!(extract(&t[..], &dest, None).is_err());
        assert!(!outside.join("pwned").exists());

        // A file entry over a symlink replaces the link, not its target.
        fs::write(outside.join("target"), "safe").unwrap();
        std::os::unix::fs::symlink(outside.join("target"), dest.join("f")).unwrap();
        let t = tar_of(&[("f", EntryType::Regular, b"new", "")]);
        extract(&t[..], &dest, None).unwrap();
        assert_eq!(fs::read_to_string(outside.join("target")).unwrap(), "safe");
        assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "new");

        // A hard link to a file outside.
        let t = tar_of(&[("h", EntryType::Link, b"", "../outside/target")]);
        assert!(extract(&t[..], &dest, None).is_err());
        let t = tar_of(&[("h", EntryType::Link, b"", "pre/target")]);
        assert!(extract(&t[..], &dest, None).is_err());
        assert!(!dest.join("h").exists());

        // Absolute names stay inside; set-id bits and devices are dropped.
        let mut t = tar_of(&[("/abs", EntryType::Regular, b"a", "")]);
        extract(&t[..], &dest, None).unwrap();
        assert_eq!(fs::read_to_string(dest.join("abs")).unwrap(), "a");
        t = tar_of(&[("dev", EntryType::Char, b"", "")]);
        extract(&t[..], &dest, None).unwrap();
        assert!(!dest.join("dev").exists());
    }

    #[test]
    fn dir_and_non_dir_do_not_replace_each_other() {
        let dest = tempfile::tempdir().unwrap();
        fs::create_dir(dest.path().join("d")).unwrap();
        fs::write(dest.path().join("f"), "x").unwrap();
        let t = tar_of(&[("d", EntryType::Regular, b"x", "")]);
        let err = extract(&t[..], dest.path(), None).unwrap_err().to_string();
        assert!(err.starts_with("cannot overwrite directory"), "{err}");
        let t = tar_of(&[("f", EntryType::Directory, b"", "")]);
        let err = extract(&t[..], dest.path(), None).unwrap_err().to_string();
        assert!(err.starts_with("cannot overwrite non-directory"), "{err}");
    }

    #[test]
    fn a_truncated_stream_fails_and_removes_the_partial_file() {
        let t = tar_of(&[("big", EntryType::Regular, &[7u8; 4096], "")]);
        let dest = tempfile::tempdir().unwrap();
        assert!(extract(&t[..1024], dest.path(), None).is_err());
        assert!(!dest.path().join("big").exists());
    }
}
