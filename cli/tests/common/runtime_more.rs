//! The mock runtime daemon's newer calls, recording what they receive:
//! - `Exec`: by the command's first word: `echo-both CODE` (stdout, stderr,
//!   stdout, exit CODE), `cat` (echoes stdin until closed), `env` (prints
//!   its environment, workdir and user), `nosuch` (NOT_FOUND, as the proto
//!   says), `nosuch127` (the runtime daemon's FAILED_PRECONDITION with
//!   `rdock-exit-code: 127`), `noperm` (PERMISSION_DENIED), anything else
//!   exits 0; `-d` ends the stream after `started`;
//! - `Diff`, `Commit`, `Export`: fixed answers for a known container (the
//!   export of `slow` never ends);
//! - `StatPath`, `CopyFrom`, `CopyTo`: a real directory per container
//!   (`MockRuntime::rootfs`); the path `/evil` sends a tar that tries to
//!   leave the destination;
//! - network connect/disconnect and volumes in memory, with Docker's
//!   refusals.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rdock_proto::runtime::v1::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status, Streaming};

use super::runtime::{no_such, MockRuntime};
use super::Events;

pub const COMMIT_ID: &str =
    "sha256:7e1d8a3c5b2f4e6d8c0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e";

#[derive(Default)]
pub struct MoreState {
    /// Where containers' files live (`<root>/<name>`).
    pub fs_root: Option<PathBuf>,
    pub execs: Vec<ExecStart>,
    /// Stdin an exec got, by its first command word.
    pub exec_stdin: Vec<u8>,
    pub exec_stdin_closed: bool,
    pub resizes: Vec<(String, u32, u32)>,
    pub commits: Vec<CommitRequest>,
    pub copy_from: Vec<CopyFromRequest>,
    pub copy_to: Vec<CopyToStart>,
    /// The entry names of each tar copied to a container.
    pub copy_to_entries: Vec<Vec<String>>,
    pub stats: Vec<String>,
    pub connects: Vec<ConnectNetworkRequest>,
    pub disconnects: Vec<DisconnectNetworkRequest>,
    pub volumes: BTreeMap<String, Volume>,
    pub volumes_in_use: Vec<String>,
    pub removed_volumes: Vec<(String, bool)>,
    pub prunes: Vec<bool>,
}

fn exec_out(o: exec_output::Output) -> Result<ExecOutput, Status> {
    Ok(ExecOutput { output: Some(o) })
}

/// Go's `os.FileMode` bits, as `PathStat.mode` carries them.
fn go_mode(m: &std::fs::Metadata) -> u32 {
    let mut mode = m.permissions().mode() & 0o777;
    if m.is_dir() {
        mode |= 1 << 31;
    }
    if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    mode
}

impl MockRuntime {
    /// The directory holding a container's files (made on first use).
    pub fn rootfs(&self, name: &str) -> PathBuf {
        let root = self
            .state
            .lock()
            .unwrap()
            .more
            .fs_root
            .clone()
            .expect("fs_root is set by the environment");
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The container's name and whether it runs.
    fn lookup(&self, key: &str) -> Result<(String, bool), Status> {
        let mut st = self.state.lock().unwrap();
        let c = st.find(key).ok_or_else(|| no_such(key))?;
        Ok((c.name.clone(), c.state == "running"))
    }

    /// A container path inside the container's directory (the mock trusts
    /// its tests' paths).
    fn host_path(&self, name: &str, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        let mut p = self.rootfs(name);
        if !rel.is_empty() {
            p.push(rel);
        }
        // Keep a trailing `/` (`file/` must fail as not a directory).
        if path.ends_with('/') && !rel.is_empty() {
            let mut s = p.into_os_string();
            s.push("/");
            p = PathBuf::from(s);
        }
        p
    }

    pub(crate) fn do_resize(&self, r: ResizeRequest) -> Result<Response<ResizeResponse>, Status> {
        let (name, _) = self.lookup(&r.id)?;
        let size = r.size.unwrap_or_default();
        self.state
            .lock()
            .unwrap()
            .more
            .resizes
            .push((name, size.width, size.height));
        Ok(Response::new(ResizeResponse {}))
    }

    pub(crate) async fn do_exec(
        &self,
        mut input: Streaming<ExecInput>,
    ) -> Result<Response<Events<ExecOutput>>, Status> {
        let Some(ExecInput {
            input: Some(exec_input::Input::Start(start)),
        }) = input.message().await?
        else {
            return Err(Status::invalid_argument("first message must be ExecStart"));
        };
        self.state.lock().unwrap().more.execs.push(start.clone());
        let (_, running) = self.lookup(&start.id)?;
        if !running {
            let mut s =
                Status::failed_precondition(format!("container {} is not running", start.id));
            s.metadata_mut()
                .insert("rdock-exit-code", "125".parse().unwrap());
            return Err(s);
        }
        let first = start.cmd.first().cloned().unwrap_or_default();
        match first.as_str() {
            "nosuch" => {
                return Err(Status::not_found(
                    "exec: \"nosuch\": executable file not found in $PATH",
                ))
            }
            "nosuch127" => {
                let mut s = Status::failed_precondition(
                    "exec: \"nosuch127\": executable file not found in $PATH",
                );
                s.metadata_mut()
                    .insert("rdock-exit-code", "127".parse().unwrap());
                return Err(s);
            }
            "noperm" => {
                return Err(Status::permission_denied(
                    "exec: \"/etc\": permission denied",
                ))
            }
            _ => {}
        }
        let (tx, rx) = mpsc::channel(16);
        let me = self.clone();
        tokio::spawn(async move {
            use exec_output::Output;
            let _ = tx
                .send(exec_out(Output::Started(ExecStarted {
                    exec_id: "e1".into(),
                    pid: 4300,
                })))
                .await;
            if start.detach {
                return;
            }
            let code = match first.as_str() {
                "echo-both" => {
                    let _ = tx.send(exec_out(Output::Stdout(b"out 1\n".to_vec()))).await;
                    let _ = tx.send(exec_out(Output::Stderr(b"err 1\n".to_vec()))).await;
                    let _ = tx.send(exec_out(Output::Stdout(b"out 2\n".to_vec()))).await;
                    start.cmd.get(1).and_then(|c| c.parse().ok()).unwrap_or(0)
                }
                "cat" => {
                    while let Ok(Some(msg)) = input.message().await {
                        match msg.input {
                            Some(exec_input::Input::Stdin(b)) => {
                                me.state
                                    .lock()
                                    .unwrap()
                                    .more
                                    .exec_stdin
                                    .extend_from_slice(&b);
                                let _ = tx.send(exec_out(Output::Stdout(b))).await;
                            }
                            Some(exec_input::Input::CloseStdin(_)) => {
                                me.state.lock().unwrap().more.exec_stdin_closed = true;
                                break;
                            }
                            _ => {}
                        }
                    }
                    0
                }
                "env" => {
                    let mut text = String::new();
                    for e in &start.env {
                        text.push_str(e);
                        text.push('\n');
                    }
                    text.push_str(&format!(
                        "workdir={} user={} tty={} privileged={}\n",
                        start.workdir, start.user, start.tty, start.privileged
                    ));
                    let _ = tx.send(exec_out(Output::Stdout(text.into_bytes()))).await;
                    0
                }
                _ => 0,
            };
            let _ = tx.send(exec_out(Output::ExitCode(code))).await;
            drop(input);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    pub(crate) fn do_diff(&self, r: DiffRequest) -> Result<Response<DiffResponse>, Status> {
        self.lookup(&r.id)?;
        let c = |k: &str, p: &str| Change {
            kind: k.into(),
            path: p.into(),
        };
        Ok(Response::new(DiffResponse {
            changes: vec![c("C", "/etc"), c("A", "/etc/x"), c("D", "/y")],
        }))
    }

    pub(crate) fn do_commit(&self, r: CommitRequest) -> Result<Response<CommitResponse>, Status> {
        self.lookup(&r.id)?;
        if r.reference.contains(char::is_uppercase) {
            return Err(Status::invalid_argument(format!(
                "invalid reference format: repository name ({}) must be lowercase",
                r.reference
            )));
        }
        self.state.lock().unwrap().more.commits.push(r);
        Ok(Response::new(CommitResponse {
            image_id: COMMIT_ID.into(),
        }))
    }

    pub(crate) fn do_export(
        &self,
        r: ExportRequest,
    ) -> Result<Response<Events<DataChunk>>, Status> {
        let (name, _) = self.lookup(&r.id)?;
        let chunks = vec![
            Ok(DataChunk {
                data: format!("TAR[{name}]").into_bytes(),
            }),
            Ok(DataChunk {
                data: vec![0u8; 1024],
            }),
        ];
        let chunks = futures::stream::iter(chunks);
        if name == "slow" {
            // Never ends: the client must be stopped.
            use futures::StreamExt as _;
            return Ok(Response::new(Box::pin(
                chunks.chain(futures::stream::pending()),
            )));
        }
        Ok(Response::new(Box::pin(chunks)))
    }

    fn stat_of(&self, name: &str, path: &str) -> Result<PathStat, Status> {
        let host = self.host_path(name, path);
        let m = std::fs::symlink_metadata(&host).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Status::not_found(format!("stat {path}: no such file or directory"))
            }
            _ => Status::invalid_argument(format!("stat {path}: {e}")),
        })?;
        let link_target = if m.file_type().is_symlink() {
            std::fs::read_link(&host)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(PathStat {
            name: host
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: m.len() as i64,
            mode: go_mode(&m),
            mtime: "2026-01-01T00:00:00Z".into(),
            link_target,
            is_dir: m.is_dir(),
        })
    }

    pub(crate) fn do_stat_path(&self, r: StatPathRequest) -> Result<Response<PathStat>, Status> {
        let (name, _) = self.lookup(&r.id)?;
        self.state.lock().unwrap().more.stats.push(r.path.clone());
        Ok(Response::new(self.stat_of(&name, &r.path)?))
    }

    pub(crate) fn do_copy_from(
        &self,
        r: CopyFromRequest,
    ) -> Result<Response<Events<CopyFromOutput>>, Status> {
        let (name, _) = self.lookup(&r.id)?;
        self.state.lock().unwrap().more.copy_from.push(r.clone());
        let out = |o| Ok(CopyFromOutput { output: Some(o) });
        use copy_from_output::Output;
        if r.path == "/evil" {
            // Tries to write beside the destination: a `..` entry, and a
            // symlink to the destination's parent with a file behind it.
            let mut b = tar::Builder::new(Vec::new());
            let mut dir = tar::Header::new_gnu();
            dir.set_entry_type(tar::EntryType::Directory);
            dir.set_mode(0o755);
            dir.set_size(0);
            b.append_data(&mut dir, "evil/", std::io::empty()).unwrap();
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            b.append_link(&mut link, "evil/up", "../..").unwrap();
            let mut file = tar::Header::new_gnu();
            file.set_mode(0o644);
            file.set_size(7);
            b.append_data(&mut file, "evil/up/escaped", &b"escaped"[..])
                .unwrap();
            let data = b.into_inner().unwrap();
            let stat = PathStat {
                name: "evil".into(),
                mode: (1 << 31) | 0o755,
                is_dir: true,
                ..Default::default()
            };
            let msgs = vec![out(Output::Stat(stat)), out(Output::Data(data))];
            return Ok(Response::new(Box::pin(futures::stream::iter(msgs))));
        }
        let mut path = r.path.clone();
        let mut host = self.host_path(&name, &path);
        if r.follow_link {
            if let Ok(target) = std::fs::read_link(&host) {
                let t = target.to_string_lossy().into_owned();
                let resolved = if t.starts_with('/') {
                    t
                } else {
                    let parent = Path::new(&path).parent().unwrap_or(Path::new("/"));
                    parent.join(t).to_string_lossy().into_owned()
                };
                host = self.host_path(&name, &resolved);
                path = resolved;
            }
        }
        let mut stat = self.stat_of(&name, &path)?;
        if path.ends_with('/') && !stat.is_dir {
            return Err(Status::invalid_argument(format!("{path}: not a directory")));
        }
        // The top entry is named after the path the caller gave.
        let top = if r.path.ends_with("/.") {
            ".".to_string()
        } else {
            Path::new(r.path.trim_end_matches('/'))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into())
        };
        stat.name = top.clone();
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        let meta = std::fs::symlink_metadata(&host).unwrap();
        if meta.is_dir() {
            b.append_dir_all(&top, &host).unwrap();
        } else {
            b.append_path_with_name(&host, &top).unwrap();
        }
        let data = b.into_inner().unwrap();
        let mut msgs = vec![out(Output::Stat(stat))];
        for chunk in data.chunks(3000) {
            msgs.push(out(Output::Data(chunk.to_vec())));
        }
        Ok(Response::new(Box::pin(futures::stream::iter(msgs))))
    }

    pub(crate) async fn do_copy_to(
        &self,
        mut input: Streaming<CopyToInput>,
    ) -> Result<Response<CopyToResponse>, Status> {
        let Some(CopyToInput {
            input: Some(copy_to_input::Input::Start(start)),
        }) = input.message().await?
        else {
            return Err(Status::invalid_argument(
                "first message must be CopyToStart",
            ));
        };
        let (name, _) = self.lookup(&start.id)?;
        let dir = self.host_path(&name, &start.path);
        if !dir.is_dir() {
            return Err(Status::not_found(format!(
                "Could not find the file {} in container {}",
                start.path, start.id
            )));
        }
        let mut data = Vec::new();
        while let Some(msg) = input.message().await? {
            match msg.input {
                Some(copy_to_input::Input::Data(d)) => data.extend_from_slice(&d),
                _ => return Err(Status::invalid_argument("start twice")),
            }
        }
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(&data[..]);
        for e in archive
            .entries()
            .map_err(|e| Status::invalid_argument(e.to_string()))?
        {
            let e = e.map_err(|e| Status::invalid_argument(e.to_string()))?;
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        tar::Archive::new(&data[..])
            .unpack(&dir)
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut st = self.state.lock().unwrap();
        st.more.copy_to.push(start);
        st.more.copy_to_entries.push(names);
        Ok(Response::new(CopyToResponse {}))
    }

    pub(crate) fn do_connect(
        &self,
        r: ConnectNetworkRequest,
    ) -> Result<Response<ConnectNetworkResponse>, Status> {
        self.lookup(&r.id)?;
        if r.network != "app" {
            return Err(Status::not_found(format!(
                "network {} not found",
                r.network
            )));
        }
        self.state.lock().unwrap().more.connects.push(r);
        Ok(Response::new(ConnectNetworkResponse {}))
    }

    pub(crate) fn do_disconnect(
        &self,
        r: DisconnectNetworkRequest,
    ) -> Result<Response<DisconnectNetworkResponse>, Status> {
        self.lookup(&r.id)?;
        self.state.lock().unwrap().more.disconnects.push(r);
        Ok(Response::new(DisconnectNetworkResponse {}))
    }

    pub(crate) fn do_create_volume(
        &self,
        r: CreateVolumeRequest,
    ) -> Result<Response<Volume>, Status> {
        let mut st = self.state.lock().unwrap();
        let name = if r.name.is_empty() {
            format!("{:064x}", st.more.volumes.len() + 0xabc)
        } else {
            r.name.clone()
        };
        if name.contains('/') {
            return Err(Status::invalid_argument(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        let vol = st
            .more
            .volumes
            .entry(name.clone())
            .or_insert_with(|| Volume {
                name: name.clone(),
                driver: "local".into(),
                mountpoint: format!("/var/lib/rdock/runtimed/volumes/{name}/_data"),
                created_at: "2026-01-02T03:04:05Z".into(),
                labels: r.labels.clone(),
                anonymous: false,
                used_by: vec![],
            });
        Ok(Response::new(vol.clone()))
    }

    pub(crate) fn do_list_volumes(&self) -> Result<Response<ListVolumesResponse>, Status> {
        let st = self.state.lock().unwrap();
        Ok(Response::new(ListVolumesResponse {
            volumes: st.more.volumes.values().cloned().collect(),
        }))
    }

    pub(crate) fn do_inspect_volume(
        &self,
        r: InspectVolumeRequest,
    ) -> Result<Response<Volume>, Status> {
        let st = self.state.lock().unwrap();
        st.more
            .volumes
            .get(&r.name)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("get {}: no such volume", r.name)))
    }

    pub(crate) fn do_remove_volume(
        &self,
        r: RemoveVolumeRequest,
    ) -> Result<Response<RemoveVolumeResponse>, Status> {
        let mut st = self.state.lock().unwrap();
        if !st.more.volumes.contains_key(&r.name) {
            if r.force {
                st.more.removed_volumes.push((r.name, r.force));
                return Ok(Response::new(RemoveVolumeResponse {}));
            }
            return Err(Status::not_found(format!("get {}: no such volume", r.name)));
        }
        if st.more.volumes_in_use.contains(&r.name) {
            return Err(Status::failed_precondition(format!(
                "remove {}: volume is in use - [4f2a9d1c3b5e]",
                r.name
            )));
        }
        st.more.volumes.remove(&r.name);
        st.more.removed_volumes.push((r.name, r.force));
        Ok(Response::new(RemoveVolumeResponse {}))
    }

    pub(crate) fn do_prune_volumes(
        &self,
        r: PruneVolumesRequest,
    ) -> Result<Response<PruneVolumesResponse>, Status> {
        let mut st = self.state.lock().unwrap();
        st.more.prunes.push(r.all);
        let in_use = st.more.volumes_in_use.clone();
        let doomed: Vec<String> = st
            .more
            .volumes
            .values()
            .filter(|v| (r.all || v.anonymous) && !in_use.contains(&v.name))
            .map(|v| v.name.clone())
            .collect();
        for name in &doomed {
            st.more.volumes.remove(name);
        }
        let space = 1500 * doomed.len() as u64;
        Ok(Response::new(PruneVolumesResponse {
            deleted: doomed,
            space_reclaimed: space,
        }))
    }
}

/// The uid of a file (for `cp -a` checks).
pub fn uid_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().uid()
}
