//! `docker cp` into a container: extracting a tar stream from the user into
//! an existing directory of the container.
//!
//! The stream is hostile input. The rules it keeps:
//!
//! - entry names are relative and never contain `..`: an absolute name or a
//!   `..` component fails the copy;
//! - every entry is placed by resolving its parent inside the container's
//!   root (symlinks that were already in the container resolve as the
//!   container would see them, never outside its root), and never through a
//!   symlink this same stream created: `link -> /etc` followed by
//!   `link/passwd` fails;
//! - the last component is never followed: an existing file or symlink is
//!   unlinked and a new file created with `O_EXCL | O_NOFOLLOW`, so nothing
//!   is written through a link; a directory is not replaced by a
//!   non-directory;
//! - hard links may only point at regular files this stream created;
//! - device nodes are refused; FIFOs, files, directories, symlinks and hard
//!   links are allowed;
//! - entries, file bytes and the bytes of extension headers (long names,
//!   PAX records) are bounded, and a stream without its end-of-archive marker
//!   is truncated, an error.
//!
//! Files are owned by root (0:0) unless `keep_owner` (`cp -a`) keeps the
//! tar's uid/gid; modes (setuid bits included) and mtimes come from the tar.
//! On error, what the copy created is removed again (files it replaced stay
//! replaced).

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::dirfd::{self, FileId, Kind};
use crate::error::{Error, Result};
use crate::inroot::{CleanPath, Root, WalkOptions};

/// Bytes the tar reader may consume between two entries (padding, header,
/// GNU long names, PAX records), which the tar crate holds in memory.
const MAX_HEADER_BYTES: u64 = 2 << 20;
/// Bytes accepted after the end-of-archive marker (tar pads to records).
const MAX_TRAILER_BYTES: u64 = 1 << 20;
/// Longest entry or link name shown in an error.
const MAX_SHOWN: usize = 200;

/// Bounds on one extraction.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Most tar entries.
    pub max_entries: u64,
    /// Most bytes of regular-file data.
    pub max_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_entries: 1_000_000,
            max_bytes: 64 << 30,
        }
    }
}

/// What [`extract_into`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
}

/// Tracks where the tar crate is reading, to bound header bytes and notice
/// the end of the stream.
#[derive(Default)]
struct Guard {
    in_headers: Cell<bool>,
    header_bytes: Cell<u64>,
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
            if used > MAX_HEADER_BYTES {
                self.guard.overflow.set(true);
                return Err(io::Error::other("tar extension headers too large"));
            }
        }
        Ok(n)
    }
}

fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if s.len() <= MAX_SHOWN {
        return s.into_owned();
    }
    let mut end = MAX_SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn bad_entry(name: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("invalid tar entry {name:?}: {why}"))
}

/// The components of a tar entry name, refusing absolute names and `..`.
fn entry_components(raw: &[u8], name: &str) -> Result<Vec<OsString>> {
    if raw.contains(&0) {
        return Err(bad_entry(name, "name contains a NUL byte"));
    }
    if raw.starts_with(b"/") {
        return Err(bad_entry(name, "absolute path"));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(bad_entry(name, "path contains \"..\"")),
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Extracts the tar stream `reader` into `dir`, an existing directory of
/// the container rooted at `root` (see the module docs). `dir` is resolved
/// inside the root following symlinks; a missing `dir` is
/// [`Error::PathNotFound`], one that is not a directory is Docker's
/// `extraction point is not a directory`. A bad stream is
/// [`Error::InvalidArgument`].
#[tracing::instrument(skip_all, fields(dir = %dir, keep_owner))]
pub fn extract_into<R: Read>(
    root: &Path,
    dir: &str,
    reader: R,
    keep_owner: bool,
    limits: &ExtractLimits,
) -> Result<Extracted> {
    let clean = CleanPath::parse(dir)?;
    let root = Root::open(root)?;
    let dest = root
        .walk(
            &clean.components,
            WalkOptions {
                follow_last: true,
                ..Default::default()
            },
        )
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ENOENT) => Error::PathNotFound(dir.to_string()),
            Some(nix::libc::ENOTDIR) => {
                Error::InvalidArgument("extraction point is not a directory".into())
            }
            _ => Error::Internal(format!("resolve {dir}: {e}")),
        })?;
    let st = dirfd::stat(&dest.fd).map_err(crate::error::io(format!("stat {dir}")))?;
    if dirfd::kind(&st) != Kind::Dir {
        return Err(Error::InvalidArgument(
            "extraction point is not a directory".into(),
        ));
    }
    let mut x = Extractor {
        root: &root,
        dest: dest.logical,
        keep_owner,
        limits,
        done: Extracted::default(),
        links: HashSet::new(),
        files: HashSet::new(),
        created: Vec::new(),
        dirs: Vec::new(),
        parent: None,
    };
    let res = x.run(reader);
    if res.is_err() {
        x.undo();
    }
    res.map(|()| x.done)
}

struct Extractor<'a> {
    root: &'a Root,
    /// Logical path of the destination directory from the root.
    dest: Vec<OsString>,
    keep_owner: bool,
    limits: &'a ExtractLimits,
    done: Extracted,
    /// Symlinks this stream created: never passed through.
    links: HashSet<FileId>,
    /// Regular files this stream created: the only hard link targets.
    files: HashSet<FileId>,
    /// What this stream created (logical paths from the root), for undo.
    created: Vec<(Vec<OsString>, bool)>,
    /// Directory entries, whose mtime is set at the end.
    dirs: Vec<(Vec<OsString>, i64)>,
    /// The last parent directory resolved: (components below dest, handle).
    parent: Option<(Vec<OsString>, OwnedFd)>,
}

impl Extractor<'_> {
    fn run<R: Read>(&mut self, reader: R) -> Result<()> {
        let guard = Guard::default();
        let mut guarded = GuardedReader {
            inner: reader,
            guard: &guard,
        };
        let stream_error = |e: io::Error| {
            if guard.overflow.get() {
                Error::InvalidArgument(format!(
                    "tar extension headers of one entry exceed {MAX_HEADER_BYTES} bytes"
                ))
            } else if guard.eof.get() || e.kind() == io::ErrorKind::UnexpectedEof {
                Error::InvalidArgument(format!("tar stream is truncated: {e}"))
            } else {
                Error::InvalidArgument(format!("malformed tar stream: {e}"))
            }
        };
        {
            let mut archive = tar::Archive::new(&mut guarded);
            let mut entries = archive.entries().map_err(stream_error)?;
            loop {
                guard.header_bytes.set(0);
                guard.in_headers.set(true);
                let next = entries.next();
                guard.in_headers.set(false);
                let mut entry = match next {
                    None => break,
                    Some(e) => e.map_err(stream_error)?,
                };
                self.done.entries += 1;
                if self.done.entries > self.limits.max_entries {
                    return Err(Error::InvalidArgument(format!(
                        "tar stream has more than {} entries",
                        self.limits.max_entries
                    )));
                }
                self.entry(&mut entry, &stream_error)?;
            }
        }
        if guard.eof.get() {
            return Err(Error::InvalidArgument(
                "tar stream is truncated: no end-of-archive marker".into(),
            ));
        }
        // Read what follows the marker (record padding), bounded.
        let mut rest = (&mut guarded).take(MAX_TRAILER_BYTES + 1);
        let n = io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
        if n > MAX_TRAILER_BYTES {
            return Err(Error::InvalidArgument(
                "data after the end of the tar stream".into(),
            ));
        }
        self.finish_dirs()
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        stream_error: &dyn Fn(io::Error) -> Error,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = shown(&raw);
        let comps = entry_components(&raw, &name)?;
        let Some((base, parent)) = comps.split_last() else {
            // The extraction point itself ("./"): left as it is.
            return Ok(());
        };
        let is_dir = kind.is_dir() || (kind.is_file() && raw.ends_with(b"/"));
        let mode = entry.header().mode().map_err(|e| bad_entry(&name, e))?;
        let (uid, gid) = if self.keep_owner {
            let uid = entry.header().uid().map_err(|e| bad_entry(&name, e))?;
            let gid = entry.header().gid().map_err(|e| bad_entry(&name, e))?;
            (
                u32::try_from(uid).map_err(|_| bad_entry(&name, "uid out of range"))?,
                u32::try_from(gid).map_err(|_| bad_entry(&name, "gid out of range"))?,
            )
        } else {
            (0, 0)
        };
        let mtime = entry.header().mtime().map_err(|e| bad_entry(&name, e))?;
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        let meta = Meta {
            mode,
            uid,
            gid,
            mtime,
        };
        if kind.is_character_special() || kind.is_block_special() {
            return Err(bad_entry(&name, "device files are not allowed"));
        }
        let dir = self.parent_dir(parent, &name)?;
        let place = |what: &str, e: io::Error| Error::Internal(format!("{what} {name:?}: {e}"));
        if is_dir {
            let existed = self.clear(&dir, base, &name, true)?;
            if !existed {
                nix::sys::stat::mkdirat(&dir, base.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| place("create directory", dirfd::err(e)))?;
                self.record(parent, base, true);
            }
            let d = dirfd::open_dir_at(&dir, base).map_err(|e| place("open", e))?;
            dirfd::set_owner(&d, uid, gid).map_err(|e| place("chown", e))?;
            dirfd::set_mode(&d, mode).map_err(|e| place("chmod", e))?;
            let mut logical = parent.to_vec();
            logical.push(base.clone());
            self.dirs.push((logical, mtime));
            return Ok(());
        }
        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let size = entry.size();
            let total = self.done.bytes.saturating_add(size);
            if total > self.limits.max_bytes {
                return Err(Error::InvalidArgument(format!(
                    "tar stream data exceeds the limit of {} bytes",
                    self.limits.max_bytes
                )));
            }
            self.clear(&dir, base, &name, false)?;
            let fd = nix::fcntl::openat(
                &dir,
                base.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| place("create", dirfd::err(e)))?;
            self.record(parent, base, false);
            let mut file = File::from(fd);
            let written = copy(entry, &mut file).map_err(|e| match e {
                CopyError::Read(e) => stream_error(e),
                CopyError::Write(e) => place("write", e),
            })?;
            if written != size {
                return Err(Error::InvalidArgument(format!(
                    "tar stream is truncated: entry {name:?} ends after {written} of {size} bytes"
                )));
            }
            self.done.bytes = total;
            dirfd::set_owner(&file, uid, gid).map_err(|e| place("chown", e))?;
            dirfd::set_mode(&file, mode).map_err(|e| place("chmod", e))?;
            dirfd::set_times(&file, mtime, 0).map_err(|e| place("set times of", e))?;
            let st = dirfd::stat(&file).map_err(|e| place("stat", e))?;
            self.files.insert(dirfd::id(&st));
            return Ok(());
        }
        if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad_entry(&name, "symlink without a target"))?
                .into_owned();
            if target.is_empty() || target.contains(&0) {
                return Err(bad_entry(&name, "invalid symlink target"));
            }
            self.clear(&dir, base, &name, false)?;
            // The target may name anything: it is only ever resolved inside
            // the container.
            nix::unistd::symlinkat(OsStr::from_bytes(&target), &dir, base.as_os_str())
                .map_err(|e| place("create symlink", dirfd::err(e)))?;
            self.record(parent, base, false);
            let st = dirfd::stat_at(&dir, base).map_err(|e| place("stat", e))?;
            self.links.insert(dirfd::id(&st));
            return self.finish_at(&dir, base, &meta, &name, false);
        }
        if kind.is_hard_link() {
            return self.hard_link(entry, &dir, parent, base, &name);
        }
        if kind.is_fifo() {
            self.clear(&dir, base, &name, false)?;
            nix::unistd::mkfifoat(&dir, base.as_os_str(), Mode::from_bits_truncate(0o600))
                .map_err(|e| place("create fifo", dirfd::err(e)))?;
            self.record(parent, base, false);
            return self.finish_at(&dir, base, &meta, &name, true);
        }
        Err(bad_entry(
            &name,
            format!("unsupported entry type {:?}", char::from(kind.as_byte())),
        ))
    }

    fn hard_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: &OwnedFd,
        parent: &[OsString],
        base: &OsString,
        name: &str,
    ) -> Result<()> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| bad_entry(name, "hard link without a target"))?
            .into_owned();
        let target_name = shown(&raw);
        let refuse = |why: &str| bad_entry(name, format!("hard link to {target_name:?}: {why}"));
        if raw.starts_with(b"/") {
            return Err(refuse("absolute target"));
        }
        let target = entry_components(&raw, name).map_err(|_| refuse("target contains \"..\""))?;
        let Some((tbase, tparent)) = target.split_last() else {
            return Err(refuse("target is the extraction point"));
        };
        let tdir = self
            .resolve(tparent)
            .map_err(|_| refuse("not a file of this archive"))?;
        let st = dirfd::stat_at(&tdir, tbase).map_err(|_| refuse("not a file of this archive"))?;
        if dirfd::kind(&st) != Kind::File || !self.files.contains(&dirfd::id(&st)) {
            return Err(refuse("not a file of this archive"));
        }
        if tparent == parent && tbase == base {
            return Ok(());
        }
        self.clear(dir, base, name, false)?;
        nix::unistd::linkat(
            &tdir,
            tbase.as_os_str(),
            dir,
            base.as_os_str(),
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(|e| Error::Internal(format!("create hard link {name:?}: {}", dirfd::err(e))))?;
        self.record(parent, base, false);
        Ok(())
    }

    /// Owner, mode (not for symlinks) and mtime of a new entry.
    fn finish_at(
        &self,
        dir: &OwnedFd,
        base: &OsStr,
        meta: &Meta,
        name: &str,
        chmod: bool,
    ) -> Result<()> {
        let place = |what: &str, e: io::Error| Error::Internal(format!("{what} {name:?}: {e}"));
        dirfd::set_owner_at(dir, base, meta.uid, meta.gid).map_err(|e| place("chown", e))?;
        if chmod {
            crate::seed::set_mode_at(dir.as_fd(), base, meta.mode)
                .map_err(|e| place("chmod", e))?;
        }
        dirfd::set_times_at(dir, base, meta.mtime, 0).map_err(|e| place("set times of", e))
    }

    /// Remembers a new entry for undo.
    fn record(&mut self, parent: &[OsString], base: &OsString, is_dir: bool) {
        let mut logical = self.dest.clone();
        logical.extend(parent.iter().cloned());
        logical.push(base.clone());
        self.created.push((logical, is_dir));
    }

    /// Makes room for an entry at `base` in `dir`: an existing directory is
    /// kept when `keep_dir` (the return value says so), refused otherwise;
    /// anything else is unlinked.
    fn clear(&mut self, dir: &OwnedFd, base: &OsStr, name: &str, keep_dir: bool) -> Result<bool> {
        let st = match dirfd::stat_at(dir, base) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::Internal(format!("stat {name:?}: {e}"))),
        };
        if dirfd::kind(&st) == Kind::Dir {
            if keep_dir {
                return Ok(true);
            }
            return Err(bad_entry(
                name,
                "cannot overwrite a directory with a non-directory",
            ));
        }
        dirfd::unlink_at(dir, base, false)
            .map_err(|e| Error::Internal(format!("replace {name:?}: {e}")))?;
        // A symlink that is gone may have been on the cached parent's path.
        self.parent = None;
        Ok(false)
    }

    /// The directory `parent` (components below the destination), created
    /// as needed; cached for the next entry in the same directory.
    fn parent_dir(&mut self, parent: &[OsString], name: &str) -> Result<OwnedFd> {
        if let Some((p, fd)) = &self.parent {
            if p == parent {
                return fd
                    .try_clone()
                    .map_err(|e| Error::Internal(format!("duplicate a descriptor: {e}")));
            }
        }
        let mut path = self.dest.clone();
        path.extend(parent.iter().cloned());
        let mut created = Vec::new();
        let walked = self.root.walk(
            &path,
            WalkOptions {
                follow_last: true,
                create_dirs: Some(&mut created),
                deny_links: Some(&self.links),
                lexical_tail: false,
            },
        );
        for c in created {
            self.created.push((c, true));
        }
        let walked = walked.map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => {
                bad_entry(name, "parent is a symlink this archive created")
            }
            _ if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                bad_entry(name, "parent is not a directory")
            }
            _ if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                bad_entry(name, "too many levels of symbolic links")
            }
            _ => Error::Internal(format!("create parent of {name:?}: {e}")),
        })?;
        let fd = walked.fd;
        let copy = fd
            .try_clone()
            .map_err(|e| Error::Internal(format!("duplicate a descriptor: {e}")))?;
        self.parent = Some((parent.to_vec(), fd));
        Ok(copy)
    }

    /// The existing directory `parent` below the destination, not created,
    /// not through this archive's symlinks.
    fn resolve(&self, parent: &[OsString]) -> io::Result<OwnedFd> {
        let mut path = self.dest.clone();
        path.extend(parent.iter().cloned());
        let w = self.root.walk(
            &path,
            WalkOptions {
                follow_last: true,
                create_dirs: None,
                deny_links: Some(&self.links),
                lexical_tail: false,
            },
        )?;
        if dirfd::kind(&dirfd::stat(&w.fd)?) != Kind::Dir {
            return Err(dirfd::err(Errno::ENOTDIR));
        }
        Ok(w.fd)
    }

    /// Sets directory mtimes, now that their content is written.
    fn finish_dirs(&mut self) -> Result<()> {
        self.parent = None;
        for (rel, mtime) in std::mem::take(&mut self.dirs) {
            let Some((base, parent)) = rel.split_last() else {
                continue;
            };
            let dir = self.resolve(parent).map_err(|e| {
                Error::Internal(format!("set times of {:?}: {e}", shown(base.as_bytes())))
            })?;
            dirfd::set_times_at(&dir, base, mtime, 0).map_err(|e| {
                Error::Internal(format!("set times of {:?}: {e}", shown(base.as_bytes())))
            })?;
        }
        Ok(())
    }

    /// Removes what this extraction created, newest first.
    fn undo(&mut self) {
        self.parent = None;
        for (logical, is_dir) in std::mem::take(&mut self.created).into_iter().rev() {
            let Some((base, parent)) = logical.split_last() else {
                continue;
            };
            let Ok(w) = self.root.walk(
                parent,
                WalkOptions {
                    follow_last: true,
                    create_dirs: None,
                    deny_links: Some(&self.links),
                    lexical_tail: false,
                },
            ) else {
                continue;
            };
            if let Err(e) = dirfd::unlink_at(&w.fd, base, is_dir) {
                tracing::debug!(entry = ?base, error = %e, "cannot undo a partial copy");
            }
        }
    }
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy<R: Read>(from: &mut R, to: &mut File) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let chunk = buf.get(..n).ok_or_else(|| {
            CopyError::Read(io::Error::other("reader returned more than asked for"))
        })?;
        to.write_all(chunk).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Builds a tar from raw entries, bypassing the tar crate's own checks
    /// on names (so hostile names can be written).
    struct Tar(Vec<u8>);

    impl Tar {
        fn new() -> Self {
            Tar(Vec::new())
        }
        fn header(&mut self, name: &str, kind: tar::EntryType, size: u64, link: &str, mode: u32) {
            let mut h = tar::Header::new_old();
            {
                let old = h.as_old_mut();
                old.name[..name.len()].copy_from_slice(name.as_bytes());
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(mode);
            h.set_uid(1000);
            h.set_gid(2000);
            h.set_mtime(1_600_000_000);
            h.set_cksum();
            self.0.extend_from_slice(h.as_bytes());
        }
        fn file(mut self, name: &str, data: &[u8]) -> Self {
            self.header(name, tar::EntryType::Regular, data.len() as u64, "", 0o644);
            self.0.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.0.extend(std::iter::repeat_n(0u8, pad));
            self
        }
        fn file_mode(mut self, name: &str, data: &[u8], mode: u32) -> Self {
            self.header(name, tar::EntryType::Regular, data.len() as u64, "", mode);
            self.0.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.0.extend(std::iter::repeat_n(0u8, pad));
            self
        }
        fn dir(mut self, name: &str) -> Self {
            self.header(name, tar::EntryType::Directory, 0, "", 0o750);
            self
        }
        fn symlink(mut self, name: &str, target: &str) -> Self {
            self.header(name, tar::EntryType::Symlink, 0, target, 0o777);
            self
        }
        fn hard(mut self, name: &str, target: &str) -> Self {
            self.header(name, tar::EntryType::Link, 0, target, 0o644);
            self
        }
        fn device(mut self, name: &str) -> Self {
            self.header(name, tar::EntryType::Char, 0, "", 0o644);
            self
        }
        fn end(mut self) -> Vec<u8> {
            self.0.extend(std::iter::repeat_n(0u8, 1024));
            self.0
        }
    }

    /// A container root with /etc/passwd, /data, a pre-existing /lnk ->
    /// /data symlink, and a host file beside the root.
    fn container() -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("data")).unwrap();
        std::fs::write(r.join("etc/passwd"), "container").unwrap();
        std::fs::write(d.path().join("host"), "host").unwrap();
        symlink("/data", r.join("lnk")).unwrap();
        (d, r)
    }

    fn extract(r: &Path, dir: &str, tar: Vec<u8>) -> Result<Extracted> {
        extract_into(r, dir, &tar[..], false, &ExtractLimits::default())
    }

    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
                if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn extracts_files_dirs_links_with_metadata() {
        let (d, r) = container();
        let t = Tar::new()
            .dir("app/")
            .file_mode("app/run", b"#!/bin/sh\n", 0o4755)
            .file("app/sub/deep.txt", b"deep")
            .symlink("app/cfg", "/etc/passwd")
            .hard("app/run2", "app/run")
            .end();
        let done = extract(&r, "/lnk", t).unwrap();
        assert_eq!(done.entries, 5);
        assert_eq!(done.bytes, 14);
        let app = r.join("data/app");
        assert_eq!(
            std::fs::read_to_string(app.join("run")).unwrap(),
            "#!/bin/sh\n"
        );
        assert_eq!(
            std::fs::read_to_string(app.join("sub/deep.txt")).unwrap(),
            "deep"
        );
        assert_eq!(
            std::fs::read_link(app.join("cfg")).unwrap(),
            Path::new("/etc/passwd")
        );
        let run = std::fs::metadata(app.join("run")).unwrap();
        assert_eq!(run.mode() & 0o7777, 0o4755);
        assert_eq!(run.mtime(), 1_600_000_000);
        assert_eq!(run.nlink(), 2);
        assert_eq!(
            run.ino(),
            std::fs::metadata(app.join("run2")).unwrap().ino()
        );
        let dir = std::fs::metadata(&app).unwrap();
        assert_eq!(dir.mode() & 0o7777, 0o750);
        assert_eq!(dir.mtime(), 1_600_000_000);
        // Missing parents are created 0755.
        let sub = std::fs::metadata(app.join("sub")).unwrap();
        assert_eq!(sub.mode() & 0o7777, 0o755);
        if is_root() {
            assert_eq!((run.uid(), run.gid()), (0, 0));
        }
        assert_eq!(
            std::fs::read_to_string(d.path().join("host")).unwrap(),
            "host"
        );
    }

    #[test]
    fn keep_owner_keeps_the_tars_ids() {
        if !is_root() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let (_d, r) = container();
        let t = Tar::new().file("owned", b"x").end();
        extract_into(&r, "/data", &t[..], true, &ExtractLimits::default()).unwrap();
        let m = std::fs::metadata(r.join("data/owned")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 2000));
    }

    #[test]
    fn dotdot_and_absolute_names_are_refused() {
        let (d, r) = container();
        for name in ["../x", "a/../../x", "/etc/evil", "./../host"] {
            let e = extract(
                &r,
                "/data",
                Tar::new().file("ok", b"1").file(name, b"bad").end(),
            )
            .unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{name}: {e:?}");
            assert!(e.to_string().starts_with("invalid tar entry"), "{e}");
            // The entry before the bad one was undone.
            assert!(!r.join("data/ok").exists(), "{name}");
        }
        assert_eq!(
            std::fs::read_to_string(d.path().join("host")).unwrap(),
            "host"
        );
        assert!(!r.join("etc/evil").exists());
        assert!(!d.path().join("x").exists());
    }

    #[test]
    fn nothing_is_written_through_a_symlink_of_the_archive() {
        let (d, r) = container();
        let host = d.path().join("host");
        // link -> outside the root, then a file through it.
        for target in ["/etc", "../../..", "/", "../.."] {
            let t = Tar::new()
                .symlink("link", target)
                .file("link/passwd", b"owned")
                .end();
            let e = extract(&r, "/data", t).unwrap_err();
            assert!(
                e.to_string().contains("symlink this archive created"),
                "{e}"
            );
            assert!(!r.join("data/link").exists(), "undone");
        }
        assert_eq!(
            std::fs::read_to_string(r.join("etc/passwd")).unwrap(),
            "container"
        );
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host");

        // A symlink entry replacing a file, then a file at the same name:
        // the file replaces the link, it is not written through it.
        let t = Tar::new()
            .symlink("p", "/etc/passwd")
            .file("p", b"new")
            .end();
        extract(&r, "/data", t).unwrap();
        assert_eq!(std::fs::read_to_string(r.join("data/p")).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(r.join("data/p"))
            .unwrap()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(r.join("etc/passwd")).unwrap(),
            "container"
        );

        // An existing symlink of the container pointing out of the root is
        // resolved inside it.
        symlink("../../../..", r.join("data/up")).unwrap();
        extract(&r, "/data", Tar::new().file("up/host", b"in").end()).unwrap();
        assert_eq!(std::fs::read_to_string(r.join("host")).unwrap(), "in");
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host");
    }

    #[test]
    fn hard_links_only_to_files_of_the_archive() {
        let (d, r) = container();
        // Out of the tree, to a container file, through a symlink, dangling.
        for target in [
            "../host",
            "/etc/passwd",
            "../../etc/passwd",
            "etc/passwd",
            "nope",
        ] {
            let e = extract(&r, "/", Tar::new().hard("data/h", target).end()).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{target}: {e:?}");
        }
        symlink("/etc", r.join("data/etc")).unwrap();
        let e = extract(&r, "/data", Tar::new().hard("h", "etc/passwd").end()).unwrap_err();
        assert!(e.to_string().contains("not a file of this archive"), "{e}");
        assert_eq!(std::fs::metadata(r.join("etc/passwd")).unwrap().nlink(), 1);
        assert_eq!(std::fs::metadata(d.path().join("host")).unwrap().nlink(), 1);
    }

    #[test]
    fn devices_bounds_and_truncation() {
        let (_d, r) = container();
        let e = extract(&r, "/data", Tar::new().device("dev").end()).unwrap_err();
        assert!(
            e.to_string().contains("device files are not allowed"),
            "{e}"
        );

        let t = Tar::new()
            .file("a", b"1")
            .file("b", b"2")
            .file("c", b"3")
            .end();
        let limits = ExtractLimits {
            max_entries: 2,
            max_bytes: 100,
        };
        let e = extract_into(&r, "/data", &t[..], false, &limits).unwrap_err();
        assert!(e.to_string().contains("more than 2 entries"), "{e}");
        let limits = ExtractLimits {
            max_entries: 10,
            max_bytes: 2,
        };
        let e = extract_into(&r, "/data", &t[..], false, &limits).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
        assert!(
            tree(&r.join("data")).is_empty(),
            "{:?}",
            tree(&r.join("data"))
        );

        // Cut in the middle of a file, and cut before the end marker.
        let full = Tar::new().file("big", &[7u8; 2000]).end();
        let e = extract(&r, "/data", full[..1024].to_vec()).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = extract(&r, "/data", full[..512 + 2048].to_vec()).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(!r.join("data/big").exists());

        // A long name extension that never ends is bounded.
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(64 << 20);
        h.set_cksum();
        let mut evil = h.as_bytes().to_vec();
        evil.extend(std::iter::repeat_n(b'a', 4 << 20));
        let e = extract(&r, "/data", evil).unwrap_err();
        assert!(e.to_string().contains("extension headers"), "{e}");
    }

    #[test]
    fn destination_must_be_an_existing_directory() {
        let (_d, r) = container();
        let t = Tar::new().file("f", b"x").end();
        assert!(matches!(
            extract(&r, "/missing", t.clone()),
            Err(Error::PathNotFound(p)) if p == "/missing"
        ));
        assert_eq!(
            extract(&r, "/etc/passwd", t.clone())
                .unwrap_err()
                .to_string(),
            "extraction point is not a directory"
        );
        // `..` above the root stays in it.
        extract(&r, "/../../data", t).unwrap();
        assert!(r.join("data/f").exists());
    }

    #[test]
    fn a_replaced_symlink_is_not_used_as_a_parent_again() {
        let (_d, r) = container();
        symlink("/etc", r.join("data/s")).unwrap();
        // s/a goes through the container's own symlink (to /etc); the
        // directory entry then replaces the symlink, and s/b must land in
        // the new directory, not through the old link.
        let t = Tar::new()
            .file("s/a", b"a")
            .dir("s/")
            .file("s/b", b"b")
            .end();
        extract(&r, "/data", t).unwrap();
        assert!(r.join("etc/a").exists());
        assert!(std::fs::symlink_metadata(r.join("data/s"))
            .unwrap()
            .is_dir());
        assert_eq!(std::fs::read_to_string(r.join("data/s/b")).unwrap(), "b");
        assert!(!r.join("etc/b").exists());

        // p -> "." makes "p/" the destination itself; once "p/p" replaces
        // the link with a file, "p/z" has no directory to go to.
        symlink(".", r.join("data/p")).unwrap();
        let t = Tar::new().file("p/p", b"file").file("p/z", b"z").end();
        let e = extract(&r, "/data", t).unwrap_err();
        assert!(e.to_string().contains("parent is not a directory"), "{e}");
        assert!(!r.join("data/z").exists());
    }

    /// A mount inside the container's root (a volume, in a running
    /// container) is written to, and a symlink inside it still resolves in
    /// the container's root. Needs root to mount.
    #[test]
    fn extraction_crosses_into_mounts_inside_the_root() {
        if !is_root() {
            eprintln!("skipped: needs root to mount");
            return;
        }
        struct Unmount(std::path::PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let (d, r) = container();
        let vol = r.join("vol");
        std::fs::create_dir(&vol).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &vol,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        let _guard = Unmount(vol.clone());
        symlink("../../../..", vol.join("up")).unwrap();
        let t = Tar::new()
            .file("in-volume", b"v")
            .file("up/top", b"t")
            .end();
        extract(&r, "/vol", t).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("in-volume")).unwrap(), "v");
        assert_eq!(std::fs::read_to_string(r.join("top")).unwrap(), "t");
        assert!(!d.path().join("top").exists());
        let st = crate::archive::stat_path(&r, "/vol/up").unwrap();
        assert_eq!(st.link_target, "/");
    }

    #[test]
    fn directories_are_not_replaced_by_files() {
        let (_d, r) = container();
        std::fs::create_dir(r.join("data/keep")).unwrap();
        std::fs::write(r.join("data/keep/x"), "x").unwrap();
        let e = extract(&r, "/data", Tar::new().file("keep", b"f").end()).unwrap_err();
        assert!(
            e.to_string().contains("cannot overwrite a directory"),
            "{e}"
        );
        assert!(r.join("data/keep/x").exists());
        // A directory entry over an existing directory merges.
        extract(
            &r,
            "/data",
            Tar::new().dir("keep/").file("keep/y", b"y").end(),
        )
        .unwrap();
        assert!(r.join("data/keep/x").exists() && r.join("data/keep/y").exists());
        let _ = std::fs::Permissions::from_mode(0o755);
    }
}
