//! `export`: a container's whole filesystem as a tar, to stdout or to a
//! file (`-o`). Like Docker, it refuses to write a tar to a terminal. A
//! file is written under a temporary name and renamed when complete, so a
//! failed export leaves nothing behind; SIGINT, SIGTERM and SIGHUP are
//! caught while it is written, so an interrupted one does not either (the
//! exit code is then 128 + the signal, as a shell shows a killed command).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use rdock_proto::runtime::v1::ExportRequest;
use tokio::io::AsyncWriteExt as _;

use crate::args::ExportArgs;
use crate::conn::Target;
use crate::error::Exit;
use crate::paths::validate_output_path;
use crate::session::Signals;
use crate::term;

pub const TERMINAL_REFUSAL: &str =
    "cowardly refusing to save to a terminal. Use the -o flag or redirect";

pub async fn export(target: &Target, args: &ExportArgs) -> Result<()> {
    match &args.output {
        None if term::stdout_is_terminal() => bail!(TERMINAL_REFUSAL),
        None => {}
        Some(path) => {
            let p = path
                .to_str()
                .ok_or_else(|| anyhow!("output path {} is not valid UTF-8", path.display()))?;
            validate_output_path(p)?;
        }
    }
    let mut rt = target.runtime().await?;
    let mut stream = rt
        .export(ExportRequest {
            id: args.container.clone(),
        })
        .await?
        .into_inner();
    match &args.output {
        None => {
            let mut out = tokio::io::stdout();
            while let Some(chunk) = stream.message().await? {
                out.write_all(&chunk.data).await?;
            }
            out.flush().await?;
        }
        Some(path) => {
            // A signal's default action would end the process before the
            // temporary file is removed.
            let mut signals = Signals::ending()?;
            let mut file = PartialFile::create(path)?;
            loop {
                tokio::select! {
                    chunk = stream.message() => match chunk? {
                        Some(chunk) => file.write_all(&chunk.data)?,
                        None => break,
                    },
                    (_, num) = signals.next() => {
                        // The file goes with `file`, dropped on the way out.
                        return Err(Exit {
                            code: (128 + num) as u8,
                            message: None,
                        }
                        .into());
                    }
                }
            }
            file.commit()?;
        }
    }
    Ok(())
}

/// A file written under a temporary name beside its destination, removed
/// unless committed.
pub struct PartialFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl PartialFile {
    pub fn create(dest: &Path) -> Result<PartialFile> {
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow!("{}: not a file name", dest.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp_name = format!(".{name}.rdock-{}", std::process::id());
        let tmp = match dir {
            Some(d) => d.join(tmp_name),
            None => PathBuf::from(tmp_name),
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        Ok(PartialFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(data)
                .with_context(|| format!("write {}", self.dest.display()))?;
        }
        Ok(())
    }

    /// Flushes the file and gives it its name.
    pub fn commit(mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()
                .with_context(|| format!("write {}", self.dest.display()))?;
        }
        fs::rename(&self.tmp, &self.dest)
            .with_context(|| format!("rename to {}", self.dest.display()))?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_leaves_nothing_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        {
            let mut f = PartialFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut f = PartialFile::create(&dest).unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
