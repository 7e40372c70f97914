//! Layer unpack: turns one layer tarball into a directory that overlayfs can
//! use as a lowerdir.
//!
//! This is hostile-input code (DESIGN §4). The rules it keeps:
//!
//! - no write lands outside the layer root: names are cleaned (`/` and `./`
//!   stripped, `..` refused), every parent inside the root must be a real
//!   directory (never a symlink), and nothing that is created, chowned,
//!   chmodded or timestamped is reached through a symlink;
//! - existing files are never opened for writing: a path that is written again
//!   is unlinked first, so a hard link cannot be used to write through;
//! - hard links only point at regular files of this layer or of its parents
//!   (the latter are copied up first);
//! - device nodes are skipped, whiteouts become overlay whiteouts;
//! - entry count, file bytes and extension headers are bounded, and the whole
//!   stream is read and hashed, so a truncated layer is an error.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, AT_FDCWD};
use nix::libc;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use sha2::{Digest, Sha256};

/// Bytes the tar reader may consume between two entries: the padding of the
/// previous entry, the header, and any GNU long name / long link / PAX / sparse
/// extension headers. Those are held in memory by the tar crate, so this is
/// what bounds memory use (Go's archive/tar allows 1 MiB per extension).
const MAX_HEADER_BYTES: u64 = 2 << 20;

/// Floor of the bound on data read but not written (tar writers pad archives
/// to their record size after the end-of-archive marker).
const MIN_IGNORED_BYTES: u64 = 16 << 20;

/// Buffer size for copying file data.
const COPY_BUFFER: usize = 128 * 1024;

/// Longest name shown in an error message.
const MAX_SHOWN_NAME: usize = 200;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
const CAPABILITY_XATTR: &[u8] = b"security.capability";
const USER_XATTR_PREFIX: &[u8] = b"user.";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Bounds on one layer, so a hostile tarball cannot exhaust the disk or inodes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most tar entries (of any type) the layer may hold.
    pub max_entries: u64,
    /// Most bytes of regular-file data the layer may write. Data that is
    /// read but not written (carried by entries that are not regular files,
    /// or padding after the end-of-archive marker) is bounded separately, by
    /// the larger of this and 16 MiB.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_bytes: 64 << 30,
        }
    }
}

/// What [`unpack_layer`] produced.
#[derive(Debug)]
pub struct Unpacked {
    /// "sha256:<hex>" of the uncompressed tar stream (the OCI diff_id).
    pub diff_id: String,
    /// Sum of the sizes of regular files written (files copied up from a
    /// parent layer for a hard link included).
    pub size: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer is {0}-compressed; only gzip and uncompressed tar layers are supported")]
    UnsupportedCompression(&'static str),
    #[error("layer stream is truncated: {0}")]
    Truncated(String),
    #[error("malformed layer stream: {0}")]
    Malformed(#[source] io::Error),
    #[error("tar extension headers of one entry exceed {limit} bytes")]
    HeadersTooLarge { limit: u64 },
    #[error("layer has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("layer data exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("entry {name:?} escapes the layer root")]
    Escape { name: String },
    #[error("entry {name:?}: parent {parent:?} is a symlink or not a directory")]
    UnsafeParent { name: String, parent: String },
    #[error("hard link {name:?} to {target:?}: {reason}")]
    BadHardLink {
        name: String,
        target: String,
        reason: &'static str,
    },
    #[error("entry {name:?} has unsupported type {kind:?}")]
    UnsupportedType { name: String, kind: char },
    #[error("entry {name:?}: {reason}")]
    InvalidEntry { name: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// True when the layer content itself is at fault (bad or hostile
    /// tarball); false for local I/O failures (`Io`), which may still have
    /// been provoked by the content (a name too long for the filesystem, say).
    pub fn is_bad_content(&self) -> bool {
        !matches!(self, UnpackError::Io { .. })
    }
}

type Result<T, E = UnpackError> = std::result::Result<T, E>;

/// Unpacks one layer (gzip-compressed or plain tar, detected from the first
/// bytes; zstd, xz and bzip2 are refused with a clear error) from `reader`
/// into `dest`, an existing empty directory that becomes an overlayfs
/// lowerdir.
///
/// `lowers` are the directories of the parent layers, topmost first. They are
/// only read, to resolve hard links whose target is in a lower layer (the
/// file is then copied up into `dest` first, keeping its metadata) and to give
/// parent directories that the tarball lacks the mode, owner and mtime they
/// have below (others get 0755). Overlay whiteouts and opaque directories in
/// `lowers` are honoured during that lookup.
///
/// The whole stream is read to its end and hashed, so the diff_id covers every
/// byte; a stream that ends early, or a tar without its end-of-archive marker,
/// is an error. Whiteouts (`.wh.NAME`) become overlay whiteouts (a 0/0
/// character device), `.wh..wh..opq` sets `trusted.overlay.opaque=y`; device
/// nodes are skipped; PAX `security.capability` and `user.*` xattrs are
/// applied. Data is not fsynced: call `syncfs` on `dest` before recording the
/// layer as durable. Must run as root (it chowns, mknods and sets `trusted.*`
/// xattrs); it blocks, so run it off the async executor.
///
/// On error, `dest` is left partly written: the caller must delete it.
pub fn unpack_layer<R: Read>(
    reader: R,
    dest: &Path,
    lowers: &[PathBuf],
    limits: &Limits,
) -> Result<Unpacked> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(UnpackError::Io {
                context: format!("layer root {}", dest.display()),
                source: io::Error::from(io::ErrorKind::NotADirectory),
            })
        }
        Err(source) => {
            return Err(UnpackError::Io {
                context: format!("layer root {}", dest.display()),
                source,
            })
        }
    }

    let mut reader = reader;
    let mut magic = [0u8; 10];
    let got = read_prefix(&mut reader, &mut magic).map_err(UnpackError::Malformed)?;
    let prefix = magic.get(..got).unwrap_or_default();
    let compression = detect(prefix);
    let stream = io::Cursor::new(prefix.to_vec()).chain(reader);
    match compression {
        Compression::None => run(
            BufReader::with_capacity(COPY_BUFFER, stream),
            dest,
            lowers,
            limits,
        ),
        Compression::Gzip => run(
            flate2::read::MultiGzDecoder::new(stream),
            dest,
            lowers,
            limits,
        ),
        Compression::Refused(name) => Err(UnpackError::UnsupportedCompression(name)),
    }
}

enum Compression {
    None,
    Gzip,
    Refused(&'static str),
}

fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Refused("zstd")
    } else if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Refused("xz")
    } else if prefix.len() >= 10
        && prefix.starts_with(b"BZh")
        && prefix.get(4..10) == Some(&[0x31, 0x41, 0x59, 0x26, 0x53, 0x59][..])
    {
        // "BZh" alone could be the start of a file name; the block magic
        // (pi in BCD) after the level digit makes it bzip2.
        Compression::Refused("bzip2")
    } else {
        Compression::None
    }
}

/// Reads up to `buf.len()` bytes, stopping early only at end of stream.
fn read_prefix<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled.min(buf.len()))
}

/// State shared between the hashing reader (owned by the tar crate while
/// entries are read) and the unpack loop.
#[derive(Default)]
struct Guard {
    /// Set while the tar crate is reading headers (inside `Entries::next`).
    in_headers: Cell<bool>,
    header_bytes: Cell<u64>,
    headers_overflowed: Cell<bool>,
    /// The uncompressed stream has ended.
    eof: Cell<bool>,
}

impl Guard {
    fn begin_headers(&self) {
        self.header_bytes.set(0);
        self.in_headers.set(true);
    }

    fn end_headers(&self) {
        self.in_headers.set(false);
    }

    /// Classifies an error raised while reading the stream.
    fn stream_error(&self, e: io::Error) -> UnpackError {
        if self.headers_overflowed.get() {
            UnpackError::HeadersTooLarge {
                limit: MAX_HEADER_BYTES,
            }
        } else if self.eof.get() || e.kind() == io::ErrorKind::UnexpectedEof {
            UnpackError::Truncated(e.to_string())
        } else {
            UnpackError::Malformed(e)
        }
    }
}

/// Hashes every uncompressed byte, notes the end of the stream and bounds
/// what the tar crate reads between entries.
struct HashingReader<'g, R> {
    inner: R,
    hasher: Sha256,
    guard: &'g Guard,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = buf
            .get(..n)
            .ok_or_else(|| io::Error::other("decoder returned more bytes than asked for"))?;
        if n == 0 && !buf.is_empty() {
            self.guard.eof.set(true);
        }
        self.hasher.update(chunk);
        if self.guard.in_headers.get() {
            let used = self.guard.header_bytes.get().saturating_add(n as u64);
            self.guard.header_bytes.set(used);
            if used > MAX_HEADER_BYTES {
                self.guard.headers_overflowed.set(true);
                return Err(io::Error::other("tar extension headers too large"));
            }
        }
        Ok(n)
    }
}

fn run<S: Read>(stream: S, dest: &Path, lowers: &[PathBuf], limits: &Limits) -> Result<Unpacked> {
    let guard = Guard::default();
    let mut hashing = HashingReader {
        inner: stream,
        hasher: Sha256::new(),
        guard: &guard,
    };
    let mut unpacker = Unpacker {
        dest,
        lowers,
        limits,
        guard: &guard,
        entries: 0,
        size: 0,
        charged: 0,
        ignored: 0,
        dirs: BTreeMap::new(),
        checked_parent: None,
        buf: vec![0; COPY_BUFFER],
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let mut entries = archive.entries().map_err(|e| guard.stream_error(e))?;
        loop {
            // Entry data is always read to its end below, so what the tar
            // crate reads in `next` is padding and headers only.
            guard.begin_headers();
            let next = entries.next();
            guard.end_headers();
            let mut entry = match next {
                None => break,
                Some(entry) => entry.map_err(|e| guard.stream_error(e))?,
            };
            unpacker.count_entry()?;
            unpacker.unpack_entry(&mut entry)?;
            unpacker.drain(&mut entry)?;
        }
    }
    // The tar crate stops at the first zero block, or at a clean end of
    // stream between entries; only the former is a complete archive.
    if guard.eof.get() {
        return Err(UnpackError::Truncated(
            "tar stream ends without an end-of-archive marker".into(),
        ));
    }
    unpacker.drain(&mut hashing)?;
    unpacker.finish_dirs()?;
    let diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    Ok(Unpacked {
        diff_id,
        size: unpacker.size,
    })
}

/// Modification time (seconds, nanoseconds since the epoch).
#[derive(Debug, Clone, Copy)]
struct Mtime {
    secs: i64,
    nanos: i64,
}

impl Mtime {
    fn timespec(self) -> TimeSpec {
        TimeSpec::new(self.secs as _, self.nanos as _)
    }
}

/// Metadata of a directory, applied once every entry is written (creating
/// children changes a directory's mtime).
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    owner: Option<(u32, u32)>,
    mtime: Option<Mtime>,
}

/// Metadata of an entry, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Mtime,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// What was at a path before an entry was written there.
#[derive(PartialEq, Eq)]
enum Previous {
    Nothing,
    Directory,
    Whiteout,
}

/// Where a lookup through the layers found a path.
pub(crate) struct Found {
    /// Index into the searched layers.
    pub(crate) layer: usize,
    pub(crate) path: PathBuf,
    pub(crate) meta: fs::Metadata,
}

enum BadName {
    DotDot,
    Nul,
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

struct Unpacker<'a> {
    dest: &'a Path,
    lowers: &'a [PathBuf],
    limits: &'a Limits,
    guard: &'a Guard,
    entries: u64,
    /// Bytes of regular files written.
    size: u64,
    /// Bytes counted against `limits.max_bytes`: regular-file data...
    charged: u64,
    /// ...and, separately, data read but not written.
    ignored: u64,
    /// Directories (relative to `dest`) whose metadata is applied at the end.
    dirs: BTreeMap<PathBuf, DirMeta>,
    /// The parent whose components `ensure_dirs` last found to be real
    /// directories; most entries share their predecessor's parent. Only
    /// removing a directory can invalidate it, and that clears it.
    checked_parent: Option<PathBuf>,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn count_entry(&mut self) -> Result<()> {
        self.entries = self.entries.saturating_add(1);
        if self.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    fn charge(&mut self, bytes: u64) -> Result<()> {
        self.charged = add_within(self.charged, bytes, self.limits.max_bytes)?;
        Ok(())
    }

    /// Reads `reader` to its end (what is left of an entry's data, or what
    /// follows the archive), bounding the bytes read.
    fn drain<R: Read>(&mut self, reader: &mut R) -> Result<()> {
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.guard.stream_error(e)),
            };
            let limit = self.limits.max_bytes.max(MIN_IGNORED_BYTES);
            self.ignored = add_within(self.ignored, n as u64, limit)?;
        }
    }

    fn unpack_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let name = shown(&raw);
        if kind.is_pax_global_extensions() {
            tracing::debug!(entry = %name, "skipping pax global header");
            return Ok(());
        }
        let rel = clean_name(&raw).map_err(|e| bad_name(e, &name))?;
        let Some(base) = rel.file_name() else {
            // The root itself ("./"): its metadata belongs to the caller.
            tracing::debug!(entry = %name, "skipping layer root entry");
            return Ok(());
        };
        if let Some(hidden) = base.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            let hidden = hidden.to_vec();
            return self.whiteout(&rel, &hidden, &name);
        }

        // Old (V7) archives mark directories with a trailing slash only.
        let is_dir = kind.is_dir() || (kind.is_file() && raw.ends_with(b"/"));
        if is_dir {
            let meta = read_meta(entry, &name)?;
            self.directory(&rel, &name, meta)
        } else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let meta = read_meta(entry, &name)?;
            self.regular(entry, &rel, &name, meta)
        } else if kind.is_symlink() {
            let meta = read_meta(entry, &name)?;
            let target = link_target(entry, &name)?;
            self.symlink(&rel, &name, &target, meta)
        } else if kind.is_hard_link() {
            let target = link_target(entry, &name)?;
            self.hard_link(&rel, &name, &target)
        } else if kind.is_fifo() {
            let meta = read_meta(entry, &name)?;
            self.fifo(&rel, &name, meta)
        } else if kind.is_character_special() || kind.is_block_special() {
            tracing::debug!(entry = %name, "skipping device node");
            Ok(())
        } else {
            Err(UnpackError::UnsupportedType {
                name,
                kind: char::from(kind.as_byte()),
            })
        }
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        name: &str,
        meta: Meta,
    ) -> Result<()> {
        let size = entry.size();
        self.charge(size)?;
        let (path, _) = self.prepare(rel, name, false)?;
        let mut file = create_file(&path)?;
        let written = match copy_data(entry, &mut file, &mut self.buf) {
            Ok(n) => n,
            Err(CopyError::Read(e)) => return Err(self.guard.stream_error(e)),
            Err(CopyError::Write(source)) => return Err(io_err("write", &path, source)),
        };
        if written != size {
            return Err(UnpackError::Truncated(format!(
                "entry {name:?} ends after {written} of {size} bytes"
            )));
        }
        // Xattrs go last: chown clears security.capability, and setting an
        // xattr leaves the mtime alone.
        finish_file(&file, &path, meta.uid, meta.gid, meta.mode, meta.mtime)?;
        apply_xattrs(&path, name, &meta.xattrs)?;
        self.size = self.size.saturating_add(size);
        Ok(())
    }

    fn directory(&mut self, rel: &Path, name: &str, meta: Meta) -> Result<()> {
        let (path, previous) = self.prepare(rel, name, true)?;
        if previous != Previous::Directory {
            DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(|e| io_err("create directory", &path, e))?;
        }
        if previous == Previous::Whiteout {
            // The layer both deleted NAME from the layers below and created
            // it again: only the new content may show.
            lsetxattr(&path, OPAQUE_XATTR, b"y").map_err(|e| io_err("mark opaque", &path, e))?;
        }
        apply_xattrs(&path, name, &meta.xattrs)?;
        self.dirs.insert(
            rel.to_path_buf(),
            DirMeta {
                mode: meta.mode,
                owner: Some((meta.uid, meta.gid)),
                mtime: Some(meta.mtime),
            },
        );
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, name: &str, target: &[u8], meta: Meta) -> Result<()> {
        if target.is_empty() {
            return Err(invalid(name, "symlink has an empty target"));
        }
        let (path, _) = self.prepare(rel, name, false)?;
        // The target may point anywhere: it is resolved inside the container.
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
            .map_err(|e| io_err("create symlink", &path, e))?;
        nix::unistd::fchownat(
            AT_FDCWD,
            &path,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_err("chown", &path, e.into()))?;
        let ts = meta.mtime.timespec();
        nix::sys::stat::utimensat(AT_FDCWD, &path, &ts, &ts, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| io_err("set times of", &path, e.into()))?;
        Ok(())
    }

    fn fifo(&mut self, rel: &Path, name: &str, meta: Meta) -> Result<()> {
        let (path, _) = self.prepare(rel, name, false)?;
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
            .map_err(|e| io_err("create fifo", &path, e.into()))?;
        nix::unistd::fchownat(
            AT_FDCWD,
            &path,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_err("chown", &path, e.into()))?;
        nix::sys::stat::fchmodat(
            AT_FDCWD,
            &path,
            Mode::from_bits_truncate(meta.mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(|e| io_err("chmod", &path, e.into()))?;
        let ts = meta.mtime.timespec();
        nix::sys::stat::utimensat(AT_FDCWD, &path, &ts, &ts, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| io_err("set times of", &path, e.into()))?;
        Ok(())
    }

    fn hard_link(&mut self, rel: &Path, name: &str, target_raw: &[u8]) -> Result<()> {
        let target_name = shown(target_raw);
        let refuse = |reason: &'static str| UnpackError::BadHardLink {
            name: name.to_owned(),
            target: target_name.clone(),
            reason,
        };
        let target = match clean_name(target_raw) {
            Ok(target) => target,
            Err(BadName::DotDot) => return Err(refuse("target escapes the layer root")),
            Err(BadName::Nul) => return Err(refuse("target contains a NUL byte")),
        };
        if target.as_os_str().is_empty() {
            return Err(refuse("target is the layer root"));
        }

        let mut layers = Vec::with_capacity(self.lowers.len() + 1);
        layers.push(self.dest);
        layers.extend(self.lowers.iter().map(PathBuf::as_path));
        let source = match lookup(&layers, &target)
            .map_err(|e| io_err("look up hard link target", &target, e))?
        {
            None => return Err(refuse("target does not exist")),
            Some(Found { meta, .. }) if !meta.is_file() => {
                return Err(refuse("target is not a regular file"))
            }
            Some(Found { layer: 0, path, .. }) => path,
            Some(Found { path, meta, .. }) => self.copy_up(&path, &meta, &target, name)?,
        };
        if target == rel {
            return Ok(());
        }
        let (path, _) = self.prepare(rel, name, false)?;
        fs::hard_link(&source, &path).map_err(|e| io_err("create hard link", &path, e))
    }

    /// Copies the regular file `source` of a lower layer to `target` in
    /// `dest`, with its owner, mode, times and the xattrs that layers carry.
    fn copy_up(
        &mut self,
        source: &Path,
        meta: &fs::Metadata,
        target: &Path,
        name: &str,
    ) -> Result<PathBuf> {
        let mut input = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(source)
            .map_err(|e| io_err("open", source, e))?;
        let len = meta.len();
        self.charge(len)?;
        let path = self.ensure_dirs(target, name, false)?;
        let mut file = create_file(&path)?;
        match copy_data(&mut input, &mut file, &mut self.buf) {
            Ok(n) if n == len => {}
            Ok(_) => {
                return Err(io_err(
                    "copy up",
                    source,
                    io::Error::other("file changed size while copied"),
                ))
            }
            Err(CopyError::Read(e)) => return Err(io_err("read", source, e)),
            Err(CopyError::Write(e)) => return Err(io_err("write", &path, e)),
        }
        let mtime = Mtime {
            secs: meta.mtime(),
            nanos: meta.mtime_nsec(),
        };
        finish_file(&file, &path, meta.uid(), meta.gid(), meta.mode(), mtime)?;
        let names = llistxattr(source).map_err(|e| io_err("list xattrs of", source, e))?;
        for attr in names {
            if !keep_xattr(attr.as_bytes()) {
                continue;
            }
            if let Some(value) =
                lgetxattr(source, &attr).map_err(|e| io_err("read xattrs of", source, e))?
            {
                apply_xattrs(&path, name, &[(attr, value)])?;
            }
        }
        self.size = self.size.saturating_add(len);
        Ok(path)
    }

    fn whiteout(&mut self, rel: &Path, hidden: &[u8], name: &str) -> Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if rel.file_name().map(OsStr::as_bytes) == Some(OPAQUE_MARKER) {
            let path = self.ensure_dirs(parent, name, true)?;
            return lsetxattr(&path, OPAQUE_XATTR, b"y")
                .map_err(|e| io_err("mark opaque", &path, e));
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            // Other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless
            // for overlay.
            tracing::debug!(entry = %name, "skipping aufs metadata");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(invalid(name, "invalid whiteout name"));
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        let (path, _) = self.prepare(&target, name, false)?;
        nix::sys::stat::mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .map_err(|e| io_err("create whiteout", &path, e.into()))
    }

    /// Makes `rel`'s parents real directories and clears the way for an entry
    /// at `rel`: an existing non-directory is unlinked, an existing directory
    /// is kept if `keep_dir`, else removed with its content.
    fn prepare(&mut self, rel: &Path, name: &str, keep_dir: bool) -> Result<(PathBuf, Previous)> {
        let path = self.ensure_dirs(rel, name, false)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((path, Previous::Nothing)),
            Err(e) => return Err(io_err("stat", &path, e)),
        };
        if meta.is_dir() {
            if keep_dir {
                return Ok((path, Previous::Directory));
            }
            // std's remove_dir_all does not follow symlinks.
            self.checked_parent = None;
            fs::remove_dir_all(&path).map_err(|e| io_err("remove", &path, e))?;
            self.dirs.retain(|dir, _| !dir.starts_with(rel));
            return Ok((path, Previous::Nothing));
        }
        fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?;
        let previous = if is_whiteout(&meta) {
            Previous::Whiteout
        } else {
            Previous::Nothing
        };
        Ok((path, previous))
    }

    /// Returns `dest/rel` once every component of `rel` but the last (every
    /// one if `include_last`) is a real directory: missing ones are created,
    /// a whiteout is turned into an opaque directory, anything else (a
    /// symlink above all) is refused.
    fn ensure_dirs(&mut self, rel: &Path, name: &str, include_last: bool) -> Result<PathBuf> {
        let checked = if include_last {
            Some(rel)
        } else {
            rel.parent()
        };
        if checked.is_some() && checked == self.checked_parent.as_deref() {
            return Ok(self.dest.join(rel));
        }
        let count = rel.components().count();
        let wanted = if include_last {
            count
        } else {
            count.saturating_sub(1)
        };
        let mut path = self.dest.to_path_buf();
        let mut prefix = PathBuf::new();
        for (i, component) in rel.components().enumerate() {
            path.push(component);
            prefix.push(component);
            if i >= wanted {
                break;
            }
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if is_whiteout(&meta) => {
                    fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?;
                    make_dir(&path)?;
                    lsetxattr(&path, OPAQUE_XATTR, b"y")
                        .map_err(|e| io_err("mark opaque", &path, e))?;
                    self.dirs.insert(prefix.clone(), default_dir_meta());
                }
                Ok(_) => {
                    return Err(UnpackError::UnsafeParent {
                        name: name.to_owned(),
                        parent: prefix.display().to_string(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    make_dir(&path)?;
                    let meta = self
                        .lower_dir_meta(&prefix)?
                        .unwrap_or_else(default_dir_meta);
                    self.dirs.insert(prefix.clone(), meta);
                }
                Err(e) => return Err(io_err("stat", &path, e)),
            }
        }
        self.checked_parent = checked.map(Path::to_path_buf);
        Ok(path)
    }

    /// The metadata of directory `rel` as the layers below show it.
    fn lower_dir_meta(&self, rel: &Path) -> Result<Option<DirMeta>> {
        if self.lowers.is_empty() {
            return Ok(None);
        }
        let layers: Vec<&Path> = self.lowers.iter().map(PathBuf::as_path).collect();
        match lookup(&layers, rel).map_err(|e| io_err("look up parent directory", rel, e))? {
            Some(Found { meta, .. }) if meta.is_dir() => Ok(Some(DirMeta {
                mode: meta.mode() & 0o7777,
                owner: Some((meta.uid(), meta.gid())),
                mtime: Some(Mtime {
                    secs: meta.mtime(),
                    nanos: meta.mtime_nsec(),
                }),
            })),
            _ => Ok(None),
        }
    }

    /// Applies directory metadata, now that no entry will change it.
    fn finish_dirs(&mut self) -> Result<()> {
        for (rel, meta) in &self.dirs {
            let mut path = self.dest.to_path_buf();
            let mut intact = true;
            for component in rel.components() {
                path.push(component);
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => intact = false,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => intact = false,
                    Err(e) => return Err(io_err("stat", &path, e)),
                }
                if !intact {
                    break;
                }
            }
            if !intact {
                // Replaced by a later entry; `prepare` forgets those, so this
                // is only a second line of defence.
                tracing::debug!(dir = %rel.display(), "directory replaced, metadata not applied");
                continue;
            }
            let dir = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| io_err("open", &path, e))?;
            if let Some((uid, gid)) = meta.owner {
                std::os::unix::fs::fchown(&dir, Some(uid), Some(gid))
                    .map_err(|e| io_err("chown", &path, e))?;
            }
            dir.set_permissions(Permissions::from_mode(meta.mode))
                .map_err(|e| io_err("chmod", &path, e))?;
            if let Some(mtime) = meta.mtime {
                let ts = mtime.timespec();
                nix::sys::stat::futimens(&dir, &ts, &ts)
                    .map_err(|e| io_err("set times of", &path, e.into()))?;
            }
        }
        Ok(())
    }
}

fn add_within(total: u64, bytes: u64, limit: u64) -> Result<u64> {
    match total.checked_add(bytes) {
        Some(total) if total <= limit => Ok(total),
        _ => Err(UnpackError::TooLarge { limit }),
    }
}

fn default_dir_meta() -> DirMeta {
    DirMeta {
        mode: 0o755,
        owner: None,
        mtime: None,
    }
}

/// Looks `rel` up through `layers` (topmost first) the way overlayfs would,
/// never following a symlink: a whiteout or a non-directory parent hides what
/// is below, an opaque directory hides the layers under it.
pub(crate) fn lookup(layers: &[&Path], rel: &Path) -> io::Result<Option<Found>> {
    let count = rel.components().count();
    'layers: for (layer, root) in layers.iter().enumerate() {
        let mut path = root.to_path_buf();
        let mut opaque = false;
        for (i, component) in rel.components().enumerate() {
            path.push(component);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if opaque {
                        return Ok(None);
                    }
                    continue 'layers;
                }
                Err(e) => return Err(e),
            };
            if is_whiteout(&meta) {
                return Ok(None);
            }
            if i + 1 == count {
                return Ok(Some(Found { layer, path, meta }));
            }
            if !meta.is_dir() {
                return Ok(None);
            }
            if !opaque {
                opaque = lgetxattr(&path, OPAQUE_XATTR)?.as_deref() == Some(b"y".as_slice());
            }
        }
    }
    Ok(None)
}

/// Splits a tar name into its normal components: a leading `/` and `.`
/// components are dropped (absolute names are relative to the layer root, as
/// Docker takes them), `..` is refused.
fn clean_name(raw: &[u8]) -> Result<PathBuf, BadName> {
    let mut rel = PathBuf::new();
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(BadName::DotDot),
            c if c.contains(&0) => return Err(BadName::Nul),
            c => rel.push(OsStr::from_bytes(c)),
        }
    }
    Ok(rel)
}

fn bad_name(e: BadName, name: &str) -> UnpackError {
    match e {
        BadName::DotDot => UnpackError::Escape {
            name: name.to_owned(),
        },
        BadName::Nul => invalid(name, "name contains a NUL byte"),
    }
}

/// A tar name fit for a message: lossy UTF-8, cut short.
fn shown(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= MAX_SHOWN_NAME {
        text.into_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_SHOWN_NAME).collect();
        cut.push('…');
        cut
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::InvalidEntry {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn io_err(what: &str, path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn make_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| io_err("create directory", path, e))
}

fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io_err("create", path, e))
}

/// Owner, then mode (chown clears setuid bits), then times, all on the open
/// file.
fn finish_file(
    file: &File,
    path: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Mtime,
) -> Result<()> {
    std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(|e| io_err("chown", path, e))?;
    file.set_permissions(Permissions::from_mode(mode & 0o7777))
        .map_err(|e| io_err("chmod", path, e))?;
    let ts = mtime.timespec();
    nix::sys::stat::futimens(file, &ts, &ts).map_err(|e| io_err("set times of", path, e.into()))
}

fn copy_data<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let chunk = buf
            .get(..n)
            .ok_or_else(|| CopyError::Read(io::Error::other("reader returned too many bytes")))?;
        writer.write_all(chunk).map_err(CopyError::Write)?;
        total = total.saturating_add(n as u64);
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<Vec<u8>> {
    match entry.link_name_bytes() {
        Some(target) if !target.contains(&0) => Ok(target.into_owned()),
        Some(_) => Err(invalid(name, "link target contains a NUL byte")),
        None => Err(invalid(name, "link without a target")),
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
    let header = entry.header();
    let old = header.as_old();
    let mode = numeric(header.mode().map(u64::from), &old.mode, "mode", name)? & 0o7777;
    let mode = u32::try_from(mode).unwrap_or_default();
    let uid = numeric(header.uid(), &old.uid, "uid", name)?;
    let uid = u32::try_from(uid).map_err(|_| invalid(name, format!("uid {uid} out of range")))?;
    let gid = numeric(header.gid(), &old.gid, "gid", name)?;
    let gid = u32::try_from(gid).map_err(|_| invalid(name, format!("gid {gid} out of range")))?;
    let secs = numeric(header.mtime(), &old.mtime, "mtime", name)?;
    let mut mtime = Mtime {
        secs: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos: 0,
    };

    let mut xattrs = Vec::new();
    let extensions = entry
        .pax_extensions()
        .map_err(|e| invalid(name, format!("bad pax header: {e}")))?;
    for extension in extensions.into_iter().flatten() {
        // The tar crate splits records at newlines, so a binary value holding
        // one (a capability set can) comes out as malformed pieces; it skips
        // those too when it looks for path and linkpath.
        let Ok(extension) = extension else {
            tracing::warn!(entry = %name, "skipping malformed pax record");
            continue;
        };
        let key = extension.key_bytes();
        if key == b"mtime" {
            if let Some(t) = parse_pax_time(extension.value_bytes()) {
                mtime = t;
            }
        } else if let Some(attr) = key.strip_prefix(PAX_XATTR_PREFIX) {
            if !keep_xattr(attr) {
                tracing::debug!(entry = %name, xattr = %shown(attr), "ignoring xattr");
                continue;
            }
            let attr =
                CString::new(attr).map_err(|_| invalid(name, "xattr name contains a NUL byte"))?;
            xattrs.push((attr, extension.value_bytes().to_vec()));
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A numeric header field; an empty one (all NULs or spaces) reads as 0, as
/// Go's archive/tar (and so Docker) takes it.
fn numeric(parsed: io::Result<u64>, raw: &[u8], what: &str, name: &str) -> Result<u64> {
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(invalid(name, format!("bad {what}: {e}"))),
    }
}

/// The xattrs a layer may carry: file capabilities and user attributes.
pub(crate) fn keep_xattr(name: &[u8]) -> bool {
    name == CAPABILITY_XATTR || name.starts_with(USER_XATTR_PREFIX)
}

/// Parses a PAX time ("1700000000.123456789", possibly negative).
fn parse_pax_time(value: &[u8]) -> Option<Mtime> {
    let text = std::str::from_utf8(value).ok()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let mut nanos: i64 = 0;
    let mut digits = 0;
    for b in fraction.bytes().take(9) {
        nanos = nanos * 10 + i64::from(b - b'0');
        digits += 1;
    }
    for _ in digits..9 {
        nanos *= 10;
    }
    if whole.starts_with('-') && nanos > 0 {
        Some(Mtime {
            secs: secs.checked_sub(1)?,
            nanos: 1_000_000_000 - nanos,
        })
    } else {
        Some(Mtime { secs, nanos })
    }
}

/// Sets the xattrs a layer carries; filesystems that refuse them (no xattr
/// support, or not permitted) are tolerated with a warning, as Docker does.
fn apply_xattrs(path: &Path, name: &str, xattrs: &[(CString, Vec<u8>)]) -> Result<()> {
    for (attr, value) in xattrs {
        match lsetxattr(path, attr, value) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) => {
                tracing::warn!(entry = %name, xattr = %attr.to_string_lossy(), error = %e, "xattr not applied");
            }
            Err(e) => {
                return Err(io_err(
                    &format!("set xattr {} on", attr.to_string_lossy()),
                    path,
                    e,
                ))
            }
        }
    }
    Ok(())
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// lsetxattr(2): never follows a final symlink.
fn lsetxattr(path: &Path, attr: &CStr, value: &[u8]) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: `path` and `attr` are NUL-terminated strings and `value` a
    // buffer of `value.len()` bytes, all alive for the whole call; the kernel
    // keeps no pointer to them.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            attr.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// lgetxattr(2); `None` when the attribute is absent or unsupported.
fn lgetxattr(path: &Path, attr: &CStr) -> io::Result<Option<Vec<u8>>> {
    let path = c_path(path)?;
    crate::overlay::xattr_value(|buf| {
        // SAFETY: both strings are NUL-terminated and alive for the call,
        // and `buf` is a writable buffer of `buf.len()` bytes that outlives
        // it (an empty one asks for the size only).
        unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                attr.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// llistxattr(2): the names of `path`'s xattrs (none when unsupported).
fn llistxattr(path: &Path) -> io::Result<Vec<CString>> {
    let path = c_path(path)?;
    crate::overlay::xattr_names(|buf| {
        // SAFETY: `path` is NUL-terminated and alive for the call, and `buf`
        // is a writable buffer of `buf.len()` bytes that outlives it (an
        // empty one asks for the size only).
        unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tar::{EntryType, Header};

    const MTIME: u64 = 1_600_000_000;

    /// Builds tarballs entry by entry, with raw names so hostile ones work.
    struct Layer {
        builder: tar::Builder<Vec<u8>>,
    }

    impl Layer {
        fn new() -> Self {
            Layer {
                builder: tar::Builder::new(Vec::new()),
            }
        }

        fn header(name: &str, kind: EntryType, mode: u32, size: u64) -> Header {
            let mut h = Header::new_gnu();
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(MTIME);
            h
        }

        fn link_name(h: &mut Header, target: &str) {
            let field = &mut h.as_old_mut().linkname;
            field.fill(0);
            field[..target.len()].copy_from_slice(target.as_bytes());
        }

        fn add(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
            h.set_cksum();
            self.builder.append(&h, data).unwrap();
            self
        }

        fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
            self.add(Self::header(name, EntryType::Directory, mode, 0), b"")
        }

        fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
            self.add(
                Self::header(name, EntryType::Regular, mode, data.len() as u64),
                data,
            )
        }

        fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
            let mut h = Self::header(name, EntryType::Symlink, 0o777, 0);
            Self::link_name(&mut h, target);
            self.add(h, b"")
        }

        fn hard_link(&mut self, name: &str, target: &str) -> &mut Self {
            let mut h = Self::header(name, EntryType::Link, 0o644, 0);
            Self::link_name(&mut h, target);
            self.add(h, b"")
        }

        fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            let mut data = Vec::new();
            for (key, value) in records {
                let body = key.len() + value.len() + 3; // ' ', '=', '\n'
                let mut len = body + 1;
                while len != body + len.to_string().len() {
                    len = body + len.to_string().len();
                }
                data.extend_from_slice(format!("{len} {key}=").as_bytes());
                data.extend_from_slice(value);
                data.push(b'\n');
            }
            let h = Self::header("PaxHeaders/x", EntryType::XHeader, 0o644, data.len() as u64);
            self.add(h, &data)
        }

        fn finish(self) -> Vec<u8> {
            self.builder.into_inner().unwrap()
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn sha(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    fn unpack(bytes: &[u8], dest: &Path) -> Result<Unpacked> {
        unpack_layer(bytes, dest, &[], &Limits::default())
    }

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        lgetxattr(path, &CString::new(name).unwrap()).unwrap()
    }

    fn lstat(path: &Path) -> fs::Metadata {
        fs::symlink_metadata(path).unwrap()
    }

    fn normal_layer() -> Vec<u8> {
        let mut l = Layer::new();
        let mut etc = Layer::header("etc/", EntryType::Directory, 0o751, 0);
        etc.set_mtime(1_000_000);
        l.add(etc, b"");
        let mut hello = Layer::header("etc/hello", EntryType::Regular, 0o755, 6);
        hello.set_uid(1000);
        hello.set_gid(1000);
        l.add(hello, b"hello\n");
        l.symlink("etc/abs", "/usr/bin/env")
            .hard_link("etc/hello2", "etc/hello");
        let mut fifo = Layer::header("etc/fifo", EntryType::Fifo, 0o640, 0);
        fifo.set_uid(7);
        l.add(fifo, b"");
        // No "bin/" entry: the parent is created with 0755.
        let mut su = Layer::header("bin/su", EntryType::Regular, 0o4755, 3);
        su.set_uid(1000);
        l.add(su, b"su\n");
        l.finish()
    }

    fn check_normal_layer(dest: &Path) {
        let etc = lstat(&dest.join("etc"));
        assert!(etc.is_dir());
        assert_eq!(etc.mode() & 0o7777, 0o751);
        assert_eq!(
            etc.mtime(),
            1_000_000,
            "directory mtime set after its children"
        );

        let hello = lstat(&dest.join("etc/hello"));
        assert!(hello.is_file());
        assert_eq!(hello.mode() & 0o7777, 0o755);
        assert_eq!((hello.uid(), hello.gid()), (1000, 1000));
        assert_eq!(hello.mtime(), MTIME as i64);
        assert_eq!(fs::read(dest.join("etc/hello")).unwrap(), b"hello\n");

        let abs = lstat(&dest.join("etc/abs"));
        assert!(abs.file_type().is_symlink());
        assert_eq!(
            fs::read_link(dest.join("etc/abs")).unwrap(),
            Path::new("/usr/bin/env")
        );
        assert_eq!(abs.mtime(), MTIME as i64);

        let hello2 = lstat(&dest.join("etc/hello2"));
        assert_eq!(hello2.ino(), hello.ino());

        let fifo = lstat(&dest.join("etc/fifo"));
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o640);
        assert_eq!(fifo.uid(), 7);

        let bin = lstat(&dest.join("bin"));
        assert_eq!(bin.mode() & 0o7777, 0o755);
        let su = lstat(&dest.join("bin/su"));
        assert_eq!(su.mode() & 0o7777, 0o4755, "setuid survives the chown");
        assert_eq!(su.uid(), 1000);
    }

    #[test]
    fn normal_layer_plain_and_gzip() {
        let plain = normal_layer();
        for input in [plain.clone(), gzip(&plain)] {
            let dest = tempfile::tempdir().unwrap();
            let out = unpack(&input, dest.path()).unwrap();
            assert_eq!(out.diff_id, sha(&plain));
            assert_eq!(out.size, 9);
            check_normal_layer(dest.path());
        }
    }

    #[test]
    fn trailing_bytes_are_hashed() {
        let mut plain = Layer::new().file("a", 0o644, b"x").to_owned_bytes();
        plain.extend_from_slice(&[0u8; 8192]);
        let dest = tempfile::tempdir().unwrap();
        assert_eq!(unpack(&plain, dest.path()).unwrap().diff_id, sha(&plain));
        let dest = tempfile::tempdir().unwrap();
        assert_eq!(
            unpack(&gzip(&plain), dest.path()).unwrap().diff_id,
            sha(&plain)
        );
    }

    #[test]
    fn whiteout_becomes_char_device() {
        let tar = Layer::new()
            .dir("a/", 0o755)
            .file("a/.wh.gone", 0o644, b"")
            .file(".wh.top", 0o644, b"")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        for path in ["a/gone", "top"] {
            let meta = lstat(&dest.path().join(path));
            assert!(meta.file_type().is_char_device(), "{path}");
            assert_eq!(meta.rdev(), 0);
        }
        assert!(!dest.path().join("a/.wh.gone").exists());
    }

    #[test]
    fn opaque_dir_gets_xattr() {
        let tar = Layer::new()
            .dir("a/", 0o755)
            .file("a/.wh..wh..opq", 0o644, b"")
            .file("b/c/.wh..wh..opq", 0o644, b"")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        for dir in ["a", "b/c"] {
            let path = dest.path().join(dir);
            assert!(lstat(&path).is_dir());
            assert_eq!(
                xattr(&path, "trusted.overlay.opaque").as_deref(),
                Some(&b"y"[..])
            );
            assert!(!path.join(".wh..wh..opq").exists());
        }
        assert_eq!(
            xattr(&dest.path().join("b"), "trusted.overlay.opaque"),
            None
        );
    }

    #[test]
    fn later_entry_replaces_whiteout() {
        let tar = Layer::new()
            .file(".wh.x", 0o644, b"")
            .file("x", 0o644, b"new")
            .file(".wh.d", 0o644, b"")
            .dir("d/", 0o755)
            .file(".wh.e", 0o644, b"")
            .file("e/f", 0o644, b"f")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        assert_eq!(fs::read(dest.path().join("x")).unwrap(), b"new");
        for dir in ["d", "e"] {
            let path = dest.path().join(dir);
            assert!(lstat(&path).is_dir());
            assert_eq!(
                xattr(&path, "trusted.overlay.opaque").as_deref(),
                Some(&b"y"[..]),
                "{dir} hides the layers below"
            );
        }
    }

    #[test]
    fn rewritten_file_is_replaced_not_written_through() {
        let tar = Layer::new()
            .file("a", 0o644, b"one")
            .hard_link("b", "a")
            .file("a", 0o600, b"two")
            .dir("c/", 0o755)
            .file("c/inner", 0o644, b"x")
            .file("c", 0o644, b"file now")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        assert_eq!(fs::read(dest.path().join("a")).unwrap(), b"two");
        assert_eq!(fs::read(dest.path().join("b")).unwrap(), b"one");
        assert_eq!(fs::read(dest.path().join("c")).unwrap(), b"file now");
    }

    #[test]
    fn dotdot_refused() {
        for name in ["../x", "a/../../x", "./.."] {
            let tar = Layer::new().file(name, 0o644, b"x").to_owned_bytes();
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&tar, dest.path()).unwrap_err();
            assert!(matches!(err, UnpackError::Escape { .. }), "{name}: {err}");
            assert_eq!(
                err.to_string(),
                format!("entry {name:?} escapes the layer root")
            );
        }
    }

    #[test]
    fn absolute_name_lands_under_root() {
        let tar = Layer::new()
            .file("/etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n")
            .file("./etc/group", 0o644, b"root:x:0:\n")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        assert_eq!(
            fs::read(dest.path().join("etc/passwd")).unwrap(),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        assert!(dest.path().join("etc/group").is_file());
    }

    #[test]
    fn root_entry_is_skipped() {
        let dest = tempfile::tempdir().unwrap();
        fs::set_permissions(dest.path(), Permissions::from_mode(0o711)).unwrap();
        let tar = Layer::new()
            .dir("./", 0o777)
            .dir("/", 0o700)
            .to_owned_bytes();
        unpack(&tar, dest.path()).unwrap();
        assert_eq!(lstat(dest.path()).mode() & 0o7777, 0o711);
    }

    #[test]
    fn symlinked_parent_refused() {
        let outside = tempfile::tempdir().unwrap();
        let tar = Layer::new()
            .symlink("link", outside.path().to_str().unwrap())
            .file("link/evil", 0o644, b"evil")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&tar, dest.path()).unwrap_err();
        assert!(matches!(err, UnpackError::UnsafeParent { .. }), "{err}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);

        // The same through a whiteout, a hard link and an opaque marker.
        for tail in [".wh.evil", ".wh..wh..opq"] {
            let tar = Layer::new()
                .symlink("link", outside.path().to_str().unwrap())
                .file(&format!("link/{tail}"), 0o644, b"")
                .to_owned_bytes();
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&tar, dest.path()).unwrap_err();
            assert!(
                matches!(err, UnpackError::UnsafeParent { .. }),
                "{tail}: {err}"
            );
        }
        let tar = Layer::new()
            .file("a", 0o644, b"a")
            .symlink("link", outside.path().to_str().unwrap())
            .hard_link("link/evil", "a")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack(&tar, dest.path()).is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        assert_eq!(xattr(outside.path(), "trusted.overlay.opaque"), None);
    }

    #[test]
    fn directory_replaced_by_symlink_is_not_touched_through_it() {
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(outside.path().join("e")).unwrap();
        fs::set_permissions(outside.path().join("e"), Permissions::from_mode(0o755)).unwrap();
        let tar = Layer::new()
            .dir("d/", 0o755)
            .dir("d/e/", 0o700)
            .symlink("d", outside.path().to_str().unwrap())
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        assert!(lstat(&dest.path().join("d")).file_type().is_symlink());
        let e = lstat(&outside.path().join("e"));
        assert_eq!(e.mode() & 0o7777, 0o755);
        assert_ne!(e.mtime(), MTIME as i64);

        let tar = Layer::new()
            .dir("d/", 0o755)
            .symlink("d", outside.path().to_str().unwrap())
            .file("d/evil", 0o644, b"evil")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        assert!(matches!(
            unpack(&tar, dest.path()),
            Err(UnpackError::UnsafeParent { .. })
        ));
        assert!(!outside.path().join("evil").exists());
    }

    #[test]
    fn hard_link_escape_refused() {
        let tar = Layer::new()
            .hard_link("x", "../../etc/passwd")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&tar, dest.path()).unwrap_err();
        assert!(matches!(err, UnpackError::BadHardLink { .. }), "{err}");
        assert!(err.to_string().contains("escapes the layer root"), "{err}");
        assert!(!dest.path().join("x").exists());
    }

    #[test]
    fn hard_link_to_missing_or_special_target_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("f"), b"secret").unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "nothing",
                Layer::new().hard_link("x", "nope").to_owned_bytes(),
            ),
            (
                "directory",
                Layer::new()
                    .dir("d/", 0o755)
                    .hard_link("x", "d")
                    .to_owned_bytes(),
            ),
            (
                "symlink",
                Layer::new()
                    .symlink("s", "/etc/passwd")
                    .hard_link("x", "s")
                    .to_owned_bytes(),
            ),
            (
                "through symlink",
                Layer::new()
                    .symlink("s", outside.path().to_str().unwrap())
                    .hard_link("x", "s/f")
                    .to_owned_bytes(),
            ),
            (
                "whiteout",
                Layer::new()
                    .file("f", 0o644, b"f")
                    .file(".wh.f", 0o644, b"")
                    .hard_link("x", "f")
                    .to_owned_bytes(),
            ),
        ];
        for (case, tar) in cases {
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&tar, dest.path()).unwrap_err();
            assert!(
                matches!(err, UnpackError::BadHardLink { .. }),
                "{case}: {err}"
            );
            assert!(!dest.path().join("x").exists(), "{case}");
        }
    }

    fn make_lower(root: &Path) {
        let usr = root.join("usr");
        fs::create_dir_all(usr.join("bin")).unwrap();
        let tool = usr.join("bin/tool");
        fs::write(&tool, b"#!/bin/sh\necho tool\n").unwrap();
        std::os::unix::fs::chown(&tool, Some(1000), Some(1001)).unwrap();
        fs::set_permissions(&tool, Permissions::from_mode(0o4750)).unwrap();
        lsetxattr(&tool, c"user.origin", b"lower").unwrap();
        let file = File::open(&tool).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567))
            .unwrap();
        fs::set_permissions(&usr, Permissions::from_mode(0o750)).unwrap();
        File::open(&usr)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(7_654_321))
            .unwrap();
    }

    #[test]
    fn hard_link_to_lower_layer_copies_up() {
        let lower = tempfile::tempdir().unwrap();
        make_lower(lower.path());
        let tar = Layer::new()
            .hard_link("usr/bin/tool2", "usr/bin/tool")
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        let out = unpack_layer(
            &tar[..],
            dest.path(),
            &[lower.path().to_path_buf()],
            &Limits::default(),
        )
        .unwrap();
        let tool = dest.path().join("usr/bin/tool");
        assert_eq!(fs::read(&tool).unwrap(), b"#!/bin/sh\necho tool\n");
        let meta = lstat(&tool);
        assert_eq!(meta.mode() & 0o7777, 0o4750);
        assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
        assert_eq!(meta.mtime(), 1_234_567);
        assert_eq!(xattr(&tool, "user.origin").as_deref(), Some(&b"lower"[..]));
        assert_eq!(lstat(&dest.path().join("usr/bin/tool2")).ino(), meta.ino());
        assert_eq!(out.size, 20);
        // The parents copied their metadata from the lower layer too.
        let usr = lstat(&dest.path().join("usr"));
        assert_eq!(usr.mode() & 0o7777, 0o750);
        assert_eq!(usr.mtime(), 7_654_321);
        // The lower layer is untouched.
        assert_eq!(lstat(&lower.path().join("usr/bin/tool")).nlink(), 1);
    }

    #[test]
    fn hard_link_to_lower_respects_whiteouts() {
        let top = tempfile::tempdir().unwrap();
        let bottom = tempfile::tempdir().unwrap();
        make_lower(bottom.path());
        fs::create_dir_all(top.path().join("usr/bin")).unwrap();
        nix::sys::stat::mknod(
            &top.path().join("usr/bin/tool"),
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .unwrap();
        let lowers = [top.path().to_path_buf(), bottom.path().to_path_buf()];
        let tar = Layer::new().hard_link("x", "usr/bin/tool").to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack_layer(&tar[..], dest.path(), &lowers, &Limits::default()).unwrap_err();
        assert!(matches!(err, UnpackError::BadHardLink { .. }), "{err}");

        // An opaque directory hides the layers below it as well.
        fs::remove_file(top.path().join("usr/bin/tool")).unwrap();
        lsetxattr(&top.path().join("usr"), OPAQUE_XATTR, b"y").unwrap();
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&tar[..], dest.path(), &lowers, &Limits::default()).is_err());
        // Without it, the file is found in the bottom layer.
        fs::remove_dir_all(top.path().join("usr")).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack_layer(&tar[..], dest.path(), &lowers, &Limits::default()).unwrap();
        assert!(dest.path().join("x").is_file());
    }

    #[test]
    fn truncated_gzip_refused() {
        let plain = normal_layer();
        let gz = gzip(&plain);
        for cut in [gz.len() - 4, gz.len() - 9, gz.len() / 2, 12] {
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&gz[..cut], dest.path()).unwrap_err();
            assert!(
                matches!(err, UnpackError::Truncated(_)),
                "cut at {cut}: {err}"
            );
        }
        // A corrupted checksum is caught as well.
        let mut bad = gz.clone();
        let at = bad.len() - 6;
        bad[at] ^= 0xff;
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack(&bad, dest.path()).is_err());
    }

    #[test]
    fn truncated_tar_refused() {
        let data = vec![7u8; 2000];
        let plain = Layer::new().file("big", 0o644, &data).to_owned_bytes();
        // Inside the data, inside a header, and at an entry boundary (no
        // end-of-archive marker).
        for cut in [512 + 1000, 100, 512 + 2048, 0] {
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&plain[..cut], dest.path()).unwrap_err();
            assert!(
                matches!(err, UnpackError::Truncated(_)),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn limits_enforced() {
        let tar = Layer::new()
            .dir("a/", 0o755)
            .file("a/b", 0o644, &[1u8; 100])
            .file("a/c", 0o644, b"")
            .to_owned_bytes();
        let run = |max_entries, max_bytes| {
            let dest = tempfile::tempdir().unwrap();
            let limits = Limits {
                max_entries,
                max_bytes,
            };
            unpack_layer(&tar[..], dest.path(), &[], &limits)
        };
        assert!(matches!(
            run(2, 1000),
            Err(UnpackError::TooManyEntries { limit: 2 })
        ));
        assert!(matches!(
            run(3, 99),
            Err(UnpackError::TooLarge { limit: 99 })
        ));
        assert_eq!(run(3, 100).unwrap().size, 100);

        // Data that is read but not written is bounded too.
        let mut h = Layer::header("s", EntryType::Symlink, 0o777, 17 << 20);
        Layer::link_name(&mut h, "target");
        let tar = Layer::new()
            .add(h, &vec![0u8; 17 << 20][..])
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_entries: 10,
            max_bytes: 1000,
        };
        assert!(matches!(
            unpack_layer(&tar[..], dest.path(), &[], &limits),
            Err(UnpackError::TooLarge { .. })
        ));
    }

    #[test]
    fn other_compressions_refused() {
        let dest = tempfile::tempdir().unwrap();
        let zstd = [0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0, 0, 0, 0, 0, 0];
        let err = unpack(&zstd, dest.path()).unwrap_err();
        assert!(
            matches!(err, UnpackError::UnsupportedCompression("zstd")),
            "{err}"
        );
        assert!(err.to_string().contains("zstd"));
        let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0];
        assert!(matches!(
            unpack(&xz, dest.path()),
            Err(UnpackError::UnsupportedCompression("xz"))
        ));
    }

    #[test]
    fn pax_xattrs_and_mtime_applied() {
        // vfs_cap_data v2, effective, permitted = cap_net_bind_service.
        let cap: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let tar = Layer::new()
            .pax(&[
                ("SCHILY.xattr.security.capability", &cap[..]),
                ("SCHILY.xattr.trusted.evil", b"x"),
                ("SCHILY.xattr.user.note", b"hi"),
                ("mtime", b"1600000000.5"),
            ])
            .file("ping", 0o755, b"ping")
            .pax(&[("SCHILY.xattr.user.dir", b"d")])
            .dir("d/", 0o755)
            .to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        let ping = dest.path().join("ping");
        assert_eq!(
            xattr(&ping, "security.capability").as_deref(),
            Some(&cap[..])
        );
        assert_eq!(xattr(&ping, "user.note").as_deref(), Some(&b"hi"[..]));
        assert_eq!(xattr(&ping, "trusted.evil"), None);
        let meta = lstat(&ping);
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_600_000_000, 500_000_000)
        );
        assert_eq!(
            xattr(&dest.path().join("d"), "user.dir").as_deref(),
            Some(&b"d"[..])
        );
    }

    #[test]
    fn oversized_extension_header_refused() {
        let mut l = Layer::new();
        let huge = vec![b'a'; 3 << 20];
        l.add(
            Layer::header("PaxHeaders/x", EntryType::XHeader, 0o644, huge.len() as u64),
            &huge,
        );
        l.file("f", 0o644, b"f");
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&l.finish(), dest.path()).unwrap_err();
        assert!(matches!(err, UnpackError::HeadersTooLarge { .. }), "{err}");
    }

    #[test]
    fn devices_skipped_and_unknown_types_refused() {
        let mut l = Layer::new();
        let mut null = Layer::header("dev/null", EntryType::Char, 0o666, 0);
        null.set_device_major(1).unwrap();
        null.set_device_minor(3).unwrap();
        l.add(null, b"");
        l.add(Layer::header("dev/sda", EntryType::Block, 0o660, 0), b"");
        l.add(
            Layer::header("global", EntryType::XGlobalHeader, 0o644, 0),
            b"",
        );
        let tar = l.finish();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        assert!(!dest.path().join("dev/null").exists());
        assert!(!dest.path().join("dev/sda").exists());

        let mut l = Layer::new();
        l.add(Layer::header("odd", EntryType::new(b'Z'), 0o644, 0), b"");
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&l.finish(), dest.path()).unwrap_err();
        assert!(
            matches!(err, UnpackError::UnsupportedType { kind: 'Z', .. }),
            "{err}"
        );
    }

    #[test]
    fn empty_archive_is_fine_but_empty_stream_is_not() {
        let tar = Layer::new().finish();
        let dest = tempfile::tempdir().unwrap();
        let out = unpack(&tar, dest.path()).unwrap();
        assert_eq!(out.diff_id, sha(&tar));
        assert_eq!(out.size, 0);
        assert!(matches!(
            unpack(&[], dest.path()),
            Err(UnpackError::Truncated(_))
        ));
    }

    #[test]
    fn empty_numeric_fields_read_as_zero() {
        let mut h = Layer::header("f", EntryType::Regular, 0o644, 1);
        h.as_old_mut().uid = [0; 8];
        h.as_old_mut().gid = [b' '; 8];
        let tar = Layer::new().add(h, b"x").to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        unpack(&tar, dest.path()).unwrap();
        assert_eq!(lstat(&dest.path().join("f")).uid(), 0);

        let mut h = Layer::header("g", EntryType::Regular, 0o644, 1);
        h.as_old_mut().uid = *b"12x4\0\0\0\0";
        let tar = Layer::new().add(h, b"x").to_owned_bytes();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&tar, dest.path()).unwrap_err();
        assert!(matches!(err, UnpackError::InvalidEntry { .. }), "{err}");
    }

    #[test]
    fn pax_time_parsing() {
        let t = |s: &str| parse_pax_time(s.as_bytes()).map(|m| (m.secs, m.nanos));
        assert_eq!(t("12"), Some((12, 0)));
        assert_eq!(t("12.25"), Some((12, 250_000_000)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
    }

    trait Finish {
        fn to_owned_bytes(&mut self) -> Vec<u8>;
    }

    impl Finish for Layer {
        fn to_owned_bytes(&mut self) -> Vec<u8> {
            std::mem::replace(self, Layer::new()).finish()
        }
    }
}
