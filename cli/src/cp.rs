//! `cp`: files between a container and the local filesystem, with Docker's
//! semantics (`cli/command/container/cp.go` over moby's `archive/copy.go`):
//! the destination is stat'ed, a source is copied into an existing
//! directory or renamed to a destination that does not exist, `/.` copies
//! a directory's contents, a trailing `/` asserts a directory, `-` is a tar
//! on stdin or stdout. A tar from the daemon is extracted as untrusted
//! input (see `archive.rs`).

use std::io::{self, Read as _, Write as _};

use anyhow::{anyhow, bail, Result};
use futures::StreamExt as _;
use rdock_common::client::Conn;
use rdock_proto::runtime::v1::runtime_service_client::RuntimeServiceClient;
use rdock_proto::runtime::v1::{
    copy_from_output, copy_to_input, CopyFromOutput, CopyFromRequest, CopyToInput, CopyToStart,
    PathStat, StatPathRequest,
};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::archive::{self, ChannelReader, ChannelWriter, Rebase, CHUNK};
use crate::args::CpArgs;
use crate::conn::Target;
use crate::format::human_size;
use crate::paths::{
    self, absolute, asserts_directory, base, has_trailing_separator, join, os_error,
    preserve_trailing, specifies_current_dir, split_dir_entry, validate_output_path,
};
use crate::term;

type Runtime = RuntimeServiceClient<Conn>;

/// Go's `os.FileMode` bits in `PathStat.mode`.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_IRREGULAR: u32 = 1 << 19;

/// Where `CONTAINER:PATH` or a local path points.
#[derive(Debug, PartialEq, Eq)]
pub enum Location<'a> {
    Local(&'a str),
    Container(&'a str, &'a str),
}

/// Docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an
/// absolute local path, has no `:`, or starts with `.` (`./file:name`).
pub fn split_cp_arg(arg: &str) -> Location<'_> {
    if arg.starts_with('/') {
        return Location::Local(arg);
    }
    match arg.split_once(':') {
        Some((ctr, path)) if !ctr.starts_with('.') => Location::Container(ctr, path),
        _ => Location::Local(arg),
    }
}

/// A path in a container as the daemon resolves it: relative to `/`, the
/// trailing `/` or `/.` kept.
pub fn container_path(p: &str) -> String {
    preserve_trailing(&join("/", p), p)
}

/// Docker's `CopyInfo`: one side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    /// The name the source's top entry must have (a symlink was resolved).
    pub rebase_name: Option<String>,
}

/// Docker's `PrepareArchiveCopy`: the directory to extract into, and how
/// the archive's top must be renamed to get the copy the user asked for.
pub fn prepare_archive_copy(src: &CopyInfo, dst: &CopyInfo) -> Result<(String, Option<Rebase>)> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, src_base) = split_dir_entry(&src.path);
    let src_base = src.rebase_name.clone().unwrap_or(src_base);
    let rebase = Some(Rebase {
        old: src_base,
        new: dst_base,
    });
    if dst.exists && dst.is_dir {
        // Copied into the existing directory, under its own name.
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        bail!("cannot copy directory");
    }
    if dst.exists || src.is_dir {
        return Ok((dst_dir, rebase));
    }
    if asserts_directory(&dst.path) {
        bail!("no such directory");
    }
    Ok((dst_dir, rebase))
}

/// Docker's `CopyInfoDestinationPath` for a local destination: symlinks
/// followed (10 at most); a missing one needs an existing parent directory.
pub fn local_destination(path: &str) -> Result<CopyInfo> {
    let original = path.to_string();
    let mut path = path.to_string();
    let mut meta = std::fs::symlink_metadata(&path);
    let mut hops = 0;
    while let Ok(m) = &meta {
        if !m.file_type().is_symlink() {
            break;
        }
        hops += 1;
        if hops > 10 {
            bail!("too many symlinks in {original}");
        }
        let target =
            std::fs::read_link(&path).map_err(|e| anyhow!(os_error("readlink", &path, &e)))?;
        let target = target
            .to_str()
            .ok_or_else(|| anyhow!("{path}: link target is not valid UTF-8"))?
            .to_string();
        path = if target.starts_with('/') {
            target
        } else {
            join(&split_dir_entry(&path).0, &target)
        };
        meta = std::fs::symlink_metadata(&path);
    }
    match meta {
        Ok(m) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
            rebase_name: None,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = split_dir_entry(&path).0;
            let pm =
                std::fs::metadata(&parent).map_err(|e| anyhow!(os_error("stat", &parent, &e)))?;
            if !pm.is_dir() {
                bail!("not a directory");
            }
            Ok(CopyInfo {
                path,
                exists: false,
                is_dir: false,
                rebase_name: None,
            })
        }
        Err(e) => Err(anyhow!(os_error("lstat", &path, &e))),
    }
}

/// Docker's `CopyInfoSourcePath` for a local source: symlinks resolved in
/// the parent directories (everywhere with `-L`).
pub fn local_source(path: &str, follow: bool) -> Result<CopyInfo> {
    let canonical = |p: &str| -> Result<String> {
        let c = std::fs::canonicalize(p).map_err(|e| anyhow!(os_error("lstat", p, &e)))?;
        c.to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{}: not valid UTF-8", c.display()))
    };
    let (resolved, rebase_name) = if follow {
        let resolved = canonical(path)?;
        get_rebase_name(path, &resolved)
    } else {
        let cut = path.rfind('/').map_or(0, |i| i + 1);
        let (dir, file) = path.split_at(cut);
        let dir = if dir.is_empty() { "." } else { dir };
        let rdir = canonical(dir)?;
        let resolved = if rdir.ends_with('/') {
            format!("{rdir}{file}")
        } else {
            format!("{rdir}/{file}")
        };
        let rebase =
            (has_trailing_separator(path) && base(path) != base(&resolved)).then(|| base(path));
        (resolved, rebase)
    };
    let meta = std::fs::symlink_metadata(&resolved)
        .map_err(|e| anyhow!(os_error("lstat", &resolved, &e)))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: meta.is_dir(),
        rebase_name,
    })
}

/// Docker's `GetRebaseName`.
fn get_rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let rebase = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, rebase)
}

fn is_missing_container(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.starts_with("no such container") || m.contains(": no such container")
}

/// A failed call about a path in a container, as Docker words it.
fn path_error(status: tonic::Status, container: &str, path: &str) -> anyhow::Error {
    if status.code() == tonic::Code::NotFound
        && !is_missing_container(status.message())
        && !status.message().starts_with("Could not find the file")
    {
        return anyhow!("Could not find the file {path} in container {container}");
    }
    status.into()
}

pub async fn cp(target: &Target, args: &CpArgs) -> Result<()> {
    if args.source.is_empty() {
        bail!("source can not be empty");
    }
    if args.destination.is_empty() {
        bail!("destination can not be empty");
    }
    // Docker's progress line goes with a terminal on stdout only.
    let quiet = args.quiet || !term::stdout_is_terminal();
    match (split_cp_arg(&args.source), split_cp_arg(&args.destination)) {
        (Location::Container(ctr, src), Location::Local(dst)) => {
            copy_from(target, ctr, src, dst, args, quiet).await
        }
        (Location::Local(src), Location::Container(ctr, dst)) => {
            copy_to(target, src, ctr, dst, args, quiet).await
        }
        (Location::Container(..), Location::Container(..)) => {
            bail!("copying between containers is not supported")
        }
        (Location::Local(_), Location::Local(_)) => {
            bail!("must specify at least one container source")
        }
    }
}

async fn copy_from(
    target: &Target,
    ctr: &str,
    src: &str,
    dst: &str,
    args: &CpArgs,
    quiet: bool,
) -> Result<()> {
    let src = container_path(src);
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        absolute(dst)?
    };
    if dst != "-" {
        validate_output_path(&dst)?;
    }
    let mut rt = target.runtime().await?;
    let mut stream = rt
        .copy_from(CopyFromRequest {
            id: ctr.to_string(),
            path: src.clone(),
            follow_link: args.follow_link,
        })
        .await
        .map_err(|s| path_error(s, ctr, &src))?
        .into_inner();
    // First the stat of what is copied.
    let stat = match stream.message().await {
        Ok(Some(CopyFromOutput {
            output: Some(copy_from_output::Output::Stat(s)),
        })) => s,
        Ok(Some(_)) => bail!("cp: the runtime daemon sent data before the path's stat"),
        Ok(None) => bail!("cp: the runtime daemon ended the copy without the path's stat"),
        Err(s) => return Err(path_error(s, ctr, &src)),
    };
    if dst == "-" {
        let mut out = tokio::io::stdout();
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|s| path_error(s, ctr, &src))?
        {
            if let Some(copy_from_output::Output::Data(d)) = msg.output {
                out.write_all(&d).await?;
            }
        }
        out.flush().await?;
        return Ok(());
    }
    let src_info = CopyInfo {
        path: src.clone(),
        exists: true,
        is_dir: stat.is_dir || stat.mode & MODE_DIR != 0,
        rebase_name: None,
    };
    let dst_info = local_destination(&dst)?;
    let (dst_dir, rebase) = prepare_archive_copy(&src_info, &dst_info)?;

    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(8);
    let dir = dst_dir.clone();
    let extractor = tokio::task::spawn_blocking(move || {
        archive::extract(
            ChannelReader::new(rx),
            std::path::Path::new(&dir),
            rebase.as_ref(),
            &archive::ExtractLimits::default(),
        )
    });
    let mut received: u64 = 0;
    let mut stream_error = None;
    loop {
        match stream.message().await {
            Ok(Some(CopyFromOutput {
                output: Some(copy_from_output::Output::Data(d)),
            })) => {
                received += d.len() as u64;
                if tx.send(Ok(d)).await.is_err() {
                    // The extraction stopped: it says why.
                    break;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(s) => {
                let _ = tx
                    .send(Err(io::Error::other("the copy stream broke")))
                    .await;
                stream_error = Some(s);
                break;
            }
        }
    }
    drop(tx);
    let extracted = extractor
        .await
        .map_err(|e| anyhow!("cp: extraction failed: {e}"))?;
    if let Some(s) = stream_error {
        return Err(path_error(s, ctr, &src));
    }
    extracted?;
    if !quiet {
        let size = if src_info.is_dir {
            received
        } else {
            u64::try_from(stat.size).unwrap_or(0)
        };
        let _ = writeln!(
            io::stderr().lock(),
            "Successfully copied {} to {dst}",
            human_size(size)
        );
    }
    Ok(())
}

/// Stats a path in the container; `None` when it does not exist.
async fn stat(rt: &mut Runtime, ctr: &str, path: &str) -> Result<Option<PathStat>> {
    match rt
        .stat_path(StatPathRequest {
            id: ctr.to_string(),
            path: path.to_string(),
        })
        .await
    {
        Ok(s) => Ok(Some(s.into_inner())),
        Err(s) if s.code() == tonic::Code::NotFound && !is_missing_container(s.message()) => {
            Ok(None)
        }
        Err(s) => Err(s.into()),
    }
}

async fn copy_to(
    target: &Target,
    src: &str,
    ctr: &str,
    dst: &str,
    args: &CpArgs,
    quiet: bool,
) -> Result<()> {
    let src = if src == "-" {
        src.to_string()
    } else {
        absolute(src)?
    };
    let dst = container_path(dst);
    let mut rt = target.runtime().await?;
    // What the destination is (Docker's ContainerStatPath).
    let mut dst_info = CopyInfo {
        path: dst.clone(),
        exists: false,
        is_dir: false,
        rebase_name: None,
    };
    if let Some(mut st) = stat(&mut rt, ctr, &dst).await? {
        let mut found = Some(st.clone());
        if st.mode & MODE_SYMLINK != 0 {
            let mut link = st.link_target.clone();
            if !link.starts_with('/') {
                link = join(&split_dir_entry(&dst).0, &link);
            }
            dst_info.path = link.clone();
            found = stat(&mut rt, ctr, &link).await?;
            if let Some(s) = &found {
                st = s.clone();
            }
        }
        if found.is_some() {
            if st.mode & MODE_DEVICE != 0 {
                bail!("destination \"{ctr}:{dst}\" must be a directory or a regular file: got a device");
            }
            if st.mode & MODE_IRREGULAR != 0 {
                bail!("destination \"{ctr}:{dst}\" must be a directory or a regular file: got an irregular file");
            }
            dst_info.exists = true;
            dst_info.is_dir = st.is_dir || st.mode & MODE_DIR != 0;
        }
    }

    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(8);
    let (extract_dir, src_size) = if src == "-" {
        if !dst_info.is_dir {
            bail!("destination \"{ctr}:{dst}\" must be a directory");
        }
        read_stdin_into(tx);
        (dst_info.path.clone(), None)
    } else {
        let src_info = local_source(&src, args.follow_link)?;
        let (dst_dir, rebase) = prepare_archive_copy(&src_info, &dst_info)?;
        let top = match (&rebase, &src_info.rebase_name) {
            (Some(r), _) => r.new.clone(),
            (None, Some(name)) => name.clone(),
            (None, None) => split_dir_entry(&src_info.path).1,
        };
        let size = local_size(&src_info.path);
        let path = std::path::PathBuf::from(&src_info.path);
        tokio::task::spawn_blocking(move || {
            let result = archive::tar_resource(&path, &top, ChannelWriter::new(tx.clone()))
                .and_then(|mut w| w.flush());
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        (dst_dir, Some(size))
    };

    let start = CopyToInput {
        input: Some(copy_to_input::Input::Start(CopyToStart {
            id: ctr.to_string(),
            path: paths::clean(&extract_dir),
            keep_owner: args.archive,
        })),
    };
    // A read error must not end the stream cleanly (the daemon would take
    // a truncated tar): it is kept aside, and the call is dropped.
    let (err_tx, err_rx) = oneshot::channel::<io::Error>();
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<usize>();
    let data = futures::stream::unfold(
        (ReceiverStream::new(rx), Some(err_tx)),
        move |(mut rx, mut err_tx)| {
            let sent_tx = sent_tx.clone();
            async move {
                match rx.next().await {
                    Some(Ok(chunk)) => {
                        let _ = sent_tx.send(chunk.len());
                        let msg = CopyToInput {
                            input: Some(copy_to_input::Input::Data(chunk)),
                        };
                        Some((msg, (rx, err_tx)))
                    }
                    Some(Err(e)) => {
                        if let Some(tx) = err_tx.take() {
                            let _ = tx.send(e);
                        }
                        std::future::pending().await
                    }
                    None => None,
                }
            }
        },
    );
    let input = futures::stream::iter([start]).chain(data).boxed();
    let source_name = if src == "-" {
        "standard input"
    } else {
        src.as_str()
    };
    tokio::select! {
        res = rt.copy_to(input) => {
            res.map_err(|s| path_error(s, ctr, &dst_info.path))?;
        }
        Ok(e) = err_rx => bail!("read {source_name}: {e}"),
    }
    if !quiet {
        let mut sent = 0u64;
        while let Ok(n) = sent_rx.try_recv() {
            sent += n as u64;
        }
        let size = src_size.flatten().unwrap_or(sent);
        let _ = writeln!(
            io::stderr().lock(),
            "Successfully copied {} to {ctr}:{}",
            human_size(size),
            dst_info.path
        );
    }
    Ok(())
}

/// The size of a local file, or of the regular files under a directory.
fn local_size(path: &str) -> Option<u64> {
    fn walk(p: &std::path::Path) -> io::Result<u64> {
        let m = std::fs::symlink_metadata(p)?;
        if m.is_file() {
            return Ok(m.len());
        }
        if !m.is_dir() {
            return Ok(0);
        }
        let mut total = 0;
        for e in std::fs::read_dir(p)? {
            total += walk(&e?.path())?;
        }
        Ok(total)
    }
    walk(std::path::Path::new(path)).ok()
}

/// Streams local stdin (a tar) down the channel, from a thread of its own.
fn read_stdin_into(tx: mpsc::Sender<io::Result<Vec<u8>>>) {
    let fallback = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; CHUNK];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        let _ = fallback.try_send(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args_like_docker() {
        assert_eq!(
            split_cp_arg("web:/etc/hosts"),
            Location::Container("web", "/etc/hosts")
        );
        assert_eq!(split_cp_arg("web:rel"), Location::Container("web", "rel"));
        assert_eq!(split_cp_arg("/abs:colon"), Location::Local("/abs:colon"));
        assert_eq!(split_cp_arg("./file:name"), Location::Local("./file:name"));
        assert_eq!(split_cp_arg("plain"), Location::Local("plain"));
        assert_eq!(split_cp_arg("-"), Location::Local("-"));
        assert_eq!(container_path("etc/hosts"), "/etc/hosts");
        assert_eq!(container_path("/etc/"), "/etc/");
        assert_eq!(container_path("/etc/."), "/etc/.");
        assert_eq!(container_path("/a/../b"), "/b");
    }

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: None,
        }
    }

    fn rb(old: &str, new: &str) -> Option<Rebase> {
        Some(Rebase {
            old: old.into(),
            new: new.into(),
        })
    }

    #[test]
    fn prepare_like_docker() {
        // Into an existing directory: no rename.
        assert_eq!(
            prepare_archive_copy(&info("/etc/hosts", true, false), &info("/tmp", true, true))
                .unwrap(),
            ("/tmp".into(), None)
        );
        // Over an existing file: renamed to it.
        assert_eq!(
            prepare_archive_copy(
                &info("/etc/hosts", true, false),
                &info("/tmp/h", true, false)
            )
            .unwrap(),
            ("/tmp".into(), rb("hosts", "h"))
        );
        // A new name: renamed.
        assert_eq!(
            prepare_archive_copy(
                &info("/etc/hosts", true, false),
                &info("/tmp/new", false, false)
            )
            .unwrap(),
            ("/tmp".into(), rb("hosts", "new"))
        );
        // A directory to a new name.
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/etc2", false, false))
                .unwrap(),
            ("/tmp".into(), rb("etc", "etc2"))
        );
        // Its contents (`/.`) to a new name.
        assert_eq!(
            prepare_archive_copy(&info("/etc/.", true, true), &info("/tmp/new", false, false))
                .unwrap(),
            ("/tmp".into(), rb(".", "new"))
        );
        // A directory over a file; a file to a missing `dir/`.
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/f", true, false))
                .unwrap_err()
                .to_string(),
            "cannot copy directory"
        );
        assert_eq!(
            prepare_archive_copy(
                &info("/etc/hosts", true, false),
                &info("/tmp/nodir/", false, false)
            )
            .unwrap_err()
            .to_string(),
            "no such directory"
        );
        // A resolved symlink keeps the name the user gave.
        let mut src = info("/real/target", true, false);
        src.rebase_name = Some("link".into());
        assert_eq!(
            prepare_archive_copy(&src, &info("/tmp/new", false, false)).unwrap(),
            ("/tmp".into(), rb("link", "new"))
        );
    }

    #[test]
    fn local_sides() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_str().unwrap().to_string();
        std::fs::create_dir(format!("{d}/dir")).unwrap();
        std::fs::write(format!("{d}/file"), "x").unwrap();
        std::os::unix::fs::symlink(format!("{d}/dir"), format!("{d}/dirlink")).unwrap();
        std::os::unix::fs::symlink("file", format!("{d}/filelink")).unwrap();

        let i = local_destination(&format!("{d}/dir")).unwrap();
        assert!(i.exists && i.is_dir);
        let i = local_destination(&format!("{d}/filelink")).unwrap();
        assert_eq!(i.path, format!("{d}/file"));
        assert!(i.exists && !i.is_dir);
        let i = local_destination(&format!("{d}/new")).unwrap();
        assert!(!i.exists);
        assert_eq!(
            local_destination(&format!("{d}/file/"))
                .unwrap_err()
                .to_string(),
            format!("lstat {d}/file/: not a directory")
        );
        assert_eq!(
            local_destination(&format!("{d}/no/such"))
                .unwrap_err()
                .to_string(),
            format!("stat {d}/no: no such file or directory")
        );

        let s = local_source(&format!("{d}/filelink"), false).unwrap();
        assert_eq!(s.path, format!("{d}/filelink"));
        let s = local_source(&format!("{d}/filelink"), true).unwrap();
        assert_eq!(s.path, format!("{d}/file"));
        assert_eq!(s.rebase_name.as_deref(), Some("filelink"));
        let s = local_source(&format!("{d}/dirlink/"), false).unwrap();
        assert!(s.is_dir);
        assert_eq!(s.rebase_name.as_deref(), Some("dirlink"));
        assert_eq!(
            local_source(&format!("{d}/nope"), false)
                .unwrap_err()
                .to_string(),
            format!("lstat {d}/nope: no such file or directory")
        );
    }
}
