//! Writing directory trees as tar streams: one overlay layer as an OCI
//! layer (commit), or a container's merged root filesystem (export).
//!
//! Entries are written in the order Go's `filepath.Walk` visits them
//! (parents first, names sorted bytewise), as Docker writes its layers:
//! directory names end in `/`, times are whole seconds, hard links within
//! the tree become tar hard links, `security.capability` and `user.*`
//! xattrs travel as PAX records, sockets are left out (tar has none).
//! In a layer, overlay whiteouts (character devices 0/0) become `.wh.NAME`
//! files and opaque directories get a `.wh..wh..opq` file, the OCI forms the
//! unpacker turns back into overlay ones.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::FileStat;
use tar::{EntryType, Header};

use crate::overlay::{self, Kind, Merged};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// A tar stream being written.
pub struct TarOut<W: Write> {
    builder: tar::Builder<W>,
    /// (device, inode) of files with more than one link → the first name
    /// written for them.
    links: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
}

impl<W: Write> TarOut<W> {
    pub fn new(w: W) -> Self {
        TarOut {
            builder: tar::Builder::new(w),
            links: HashMap::new(),
            entries: 0,
        }
    }

    /// Ends the archive; returns the writer and the number of entries.
    pub fn finish(self) -> io::Result<(W, u64)> {
        let entries = self.entries;
        Ok((self.builder.into_inner()?, entries))
    }

    fn header(kind: EntryType, st: &FileStat) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// PAX records for the xattrs a layer may carry.
    fn xattrs(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in overlay::flistxattr(fd)? {
            if !crate::unpack::keep_xattr(name.as_bytes()) {
                continue;
            }
            let Ok(text) = name.to_str() else { continue };
            if let Some(value) = overlay::fgetxattr(fd, &name)? {
                records.push((format!("{PAX_XATTR_PREFIX}{text}"), value));
            }
        }
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    fn append(&mut self, h: &mut Header, rel: &[u8], data: impl Read) -> io::Result<()> {
        self.entries += 1;
        self.builder
            .append_data(h, Path::new(OsStr::from_bytes(rel)), data)
    }

    fn dir(&mut self, rel: &[u8], st: &FileStat, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.xattrs(fd)?;
        let mut name = rel.to_vec();
        name.push(b'/');
        let mut h = Self::header(EntryType::Directory, st);
        self.append(&mut h, &name, io::empty())
    }

    /// An empty regular file standing for a whiteout or an opaque dir.
    fn marker(&mut self, rel: &[u8], st: &FileStat) -> io::Result<()> {
        let mut h = Self::header(EntryType::Regular, st);
        h.set_mode(st.st_mode & 0o777);
        self.append(&mut h, rel, io::empty())
    }

    /// Anything but a directory: `name` in `dir`, stat'ed as `st`.
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &[u8],
        st: &FileStat,
    ) -> io::Result<()> {
        match overlay::kind(st) {
            Kind::File => self.file(dir, name, rel, st),
            Kind::Symlink => {
                let target = match overlay::read_link_at(dir, name) {
                    Ok(t) => t,
                    Err(e)
                        if overlay::vanished(&e) || e.raw_os_error() == Some(nix::libc::EINVAL) =>
                    {
                        return Ok(())
                    }
                    Err(e) => return Err(e),
                };
                let mut h = Self::header(EntryType::Symlink, st);
                self.entries += 1;
                self.builder.append_link(
                    &mut h,
                    Path::new(OsStr::from_bytes(rel)),
                    Path::new(&target),
                )
            }
            Kind::Fifo => {
                let mut h = Self::header(EntryType::Fifo, st);
                self.append(&mut h, rel, io::empty())
            }
            Kind::Char | Kind::Block => {
                let kind = if overlay::kind(st) == Kind::Char {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                let mut h = Self::header(kind, st);
                let major = u32::try_from(nix::sys::stat::major(st.st_rdev)).unwrap_or(0);
                let minor = u32::try_from(nix::sys::stat::minor(st.st_rdev)).unwrap_or(0);
                h.set_device_major(major)?;
                h.set_device_minor(minor)?;
                self.append(&mut h, rel, io::empty())
            }
            Kind::Socket => {
                tracing::debug!(path = %String::from_utf8_lossy(rel), "socket left out of the tar");
                Ok(())
            }
            Kind::Dir => Err(io::Error::other("directory passed as a file")),
        }
    }

    fn file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &[u8],
        st: &FileStat,
    ) -> io::Result<()> {
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = Self::header(EntryType::Link, st);
                self.entries += 1;
                return self.builder.append_link(
                    &mut h,
                    Path::new(OsStr::from_bytes(rel)),
                    Path::new(OsStr::from_bytes(&first)),
                );
            }
        }
        let file = match overlay::open_file_at(dir, name) {
            Ok(f) => f,
            Err(e) if overlay::vanished(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let now = overlay::fstat(file.as_fd())?;
        if overlay::kind(&now) != Kind::File || (now.st_dev, now.st_ino) != key {
            // Replaced while the tree was read.
            return Ok(());
        }
        if overlay::fgetxattr(file.as_fd(), overlay::METACOPY_XATTR)?.is_some() {
            return Err(io::Error::other(format!(
                "/{} is a metadata-only copy-up (overlay metacopy=on) whose data rdock cannot \
                 read; mount container root filesystems with metacopy=off",
                String::from_utf8_lossy(rel)
            )));
        }
        self.xattrs(file.as_fd())?;
        let size = u64::try_from(now.st_size).unwrap_or(0);
        let mut h = Self::header(EntryType::Regular, &now);
        h.set_size(size);
        // Exactly `size` bytes, whatever a running container does to the
        // file meanwhile: cut if it grew, zero-filled if it shrank.
        let data = (&file).chain(io::repeat(0)).take(size);
        self.append(&mut h, rel, data)?;
        if now.st_nlink > 1 {
            self.links.insert(key, rel.to_vec());
        }
        Ok(())
    }
}

/// `dir/.wh.name` for the path `dir/name`.
fn whiteout_name(path: &[OsString]) -> Vec<u8> {
    let (last, parents) = path
        .split_last()
        .map_or((None, &[][..]), |(l, p)| (Some(l), p));
    let mut out = overlay::join(parents);
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(WHITEOUT_PREFIX);
    if let Some(l) = last {
        out.extend_from_slice(l.as_bytes());
    }
    out
}

/// Writes the overlay layer at `root` (a container's upper dir) as an OCI
/// layer.
pub fn write_layer<W: Write>(root: &Path, out: &mut TarOut<W>) -> io::Result<()> {
    let fd = overlay::open_root(root)?;
    layer_dir(out, fd.as_fd(), &mut Vec::new())
}

fn layer_dir<W: Write>(
    out: &mut TarOut<W>,
    dir: BorrowedFd<'_>,
    path: &mut Vec<OsString>,
) -> io::Result<()> {
    if path.len() > overlay::MAX_DEPTH {
        return Err(overlay::too_deep(path));
    }
    for name in overlay::read_names(dir)? {
        let Some(st) = overlay::stat_at(dir, &name)? else {
            continue;
        };
        path.push(name.clone());
        let rel = overlay::join(path);
        if overlay::is_whiteout(&st) {
            out.marker(&whiteout_name(path), &st)?;
        } else if overlay::kind(&st) == Kind::Dir {
            match overlay::open_dir_at(dir, &name) {
                Ok(fd) => {
                    overlay::check_not_redirected(
                        fd.as_fd(),
                        &format!("/{}", String::from_utf8_lossy(&rel)),
                    )?;
                    let st = overlay::fstat(fd.as_fd())?;
                    out.dir(&rel, &st, fd.as_fd())?;
                    if overlay::is_opaque(fd.as_fd())? {
                        let mut marker = rel.clone();
                        marker.push(b'/');
                        marker.extend_from_slice(OPAQUE_MARKER);
                        out.marker(&marker, &st)?;
                    }
                    layer_dir(out, fd.as_fd(), path)?;
                }
                Err(e) if overlay::vanished(&e) => {}
                Err(e) => return Err(e),
            }
        } else {
            out.entry(dir, &name, &rel, &st)?;
        }
        path.pop();
    }
    Ok(())
}

/// Writes `layers` (topmost first) merged as overlayfs shows them: deleted
/// files left out, nothing of the overlay's own bookkeeping in it.
pub fn write_merged<W: Write>(layers: &[PathBuf], out: &mut TarOut<W>) -> io::Result<()> {
    let root = Merged::root(layers)?;
    merged_dir(out, &root, &mut Vec::new())
}

fn merged_dir<W: Write>(
    out: &mut TarOut<W>,
    dir: &Merged,
    path: &mut Vec<OsString>,
) -> io::Result<()> {
    if path.len() > overlay::MAX_DEPTH {
        return Err(overlay::too_deep(path));
    }
    for (name, v) in dir.entries()? {
        path.push(name.clone());
        let rel = overlay::join(path);
        if overlay::kind(&v.stat) == Kind::Dir {
            if let Some(child) = dir.child(&name)? {
                child.check_not_redirected(&format!("/{}", String::from_utf8_lossy(&rel)))?;
                if let Some(top) = child.top() {
                    let st = overlay::fstat(top)?;
                    out.dir(&rel, &st, top)?;
                }
                merged_dir(out, &child, path)?;
            }
        } else if let Some(part) = dir.part(v.part) {
            out.entry(part, &name, &rel, &v.stat)?;
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (name, (type, size, link target)) of every entry of a tar, in order.
    pub(crate) fn list(tar_bytes: &[u8]) -> Vec<(String, (EntryType, u64, String))> {
        let mut a = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            out.push((name, (e.header().entry_type(), e.size(), link)));
        }
        out
    }

    #[test]
    fn layer_tar_converts_whiteouts_and_keeps_links() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: whiteouts and trusted xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        std::fs::create_dir_all(up.join("etc/opq")).unwrap();
        std::fs::write(up.join("etc/a"), b"hello").unwrap();
        std::fs::hard_link(up.join("etc/a"), up.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("a", up.join("etc/l")).unwrap();
        nix::sys::stat::mknod(
            &up.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        crate::overlay::tests::set_opaque(&up.join("etc/opq"));
        let long = "x".repeat(150);
        std::fs::write(up.join(&long), b"long").unwrap();

        let mut out = TarOut::new(Vec::new());
        write_layer(up, &mut out).unwrap();
        let (bytes, entries) = out.finish().unwrap();
        let entries_in_order = list(&bytes);
        assert_eq!(entries, entries_in_order.len() as u64);
        let names: Vec<&str> = entries_in_order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/a",
                "etc/b",
                "etc/.wh.gone",
                "etc/l",
                "etc/opq/",
                "etc/opq/.wh..wh..opq",
                long.as_str()
            ]
        );
        let got: std::collections::HashMap<_, _> = entries_in_order.into_iter().collect();
        assert_eq!(got["etc/a"], (EntryType::Regular, 5, String::new()));
        assert_eq!(got["etc/b"].0, EntryType::Link);
        assert_eq!(got["etc/b"].2, "etc/a");
        assert_eq!(got["etc/l"], (EntryType::Symlink, 0, "a".into()));
        assert_eq!(got[&long].1, 4);
    }
}
