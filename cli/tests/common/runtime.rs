//! A mock runtime daemon. A container's first command word picks what it
//! does when started:
//! - `echo-both CODE`: stdout "out 1\n", stderr "err 1\n", stdout "out 2\n",
//!   then exits CODE;
//! - `cat`: echoes its stdin to stdout until stdin closes, exits 0; an
//!   attachment that ends without `close_stdin` (a detach) leaves it
//!   running until killed;
//! - `sleep`: runs until killed, exits 128 + the signal's number;
//! - `nosuchcmd`: StartContainer fails with `rdock-exit-code: 127`;
//! - anything else: exits 0 at once.
//!
//! Output of a container started without an attachment is lost, and that is
//! recorded, so a test can tell that the CLI attached first.
//!
//! The newer calls (exec, diff, commit, export, cp, volumes, network
//! connect) are in `runtime_more.rs`; each container's files live in a real
//! directory under the environment's temp dir, so `cp` has something to
//! copy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdock_proto::runtime::v1::runtime_service_server::RuntimeService;
use rdock_proto::runtime::v1::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Events;

type Out = mpsc::Sender<Result<AttachOutput, Status>>;

struct Attachment {
    out: Out,
    /// Held for the attachment's life even without stdin (dropping it
    /// would reset the call).
    input: Streaming<AttachInput>,
    stdin: bool,
}

pub struct MockContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub cmd: Vec<String>,
    /// Seconds before "now" it was created.
    pub created_ago: i64,
    /// "created", "running", "exited".
    pub state: String,
    pub status: String,
    pub exit_code: i32,
    /// `NetworkSettings.Ports` (JSON) and the PORTS column.
    pub ports_json: String,
    pub ports: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    attachment: Option<Attachment>,
    kill_tx: Option<mpsc::UnboundedSender<String>>,
}

impl MockContainer {
    pub fn new(
        id: &str,
        name: &str,
        cmd: &[&str],
        created_ago: i64,
        state: &str,
        status: &str,
    ) -> Self {
        MockContainer {
            id: id.into(),
            name: name.into(),
            image: "busybox".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            created_ago,
            state: state.into(),
            status: status.into(),
            exit_code: 0,
            ports_json: "{}".into(),
            ports: String::new(),
            tty: false,
            open_stdin: false,
            auto_remove: false,
            attachment: None,
            kill_tx: None,
        }
    }
}

#[derive(Default)]
pub struct RtState {
    pub containers: Vec<MockContainer>,
    pub created: Vec<CreateContainerRequest>,
    /// Containers started with no attachment open.
    pub started_unattached: Vec<String>,
    pub kills: Vec<(String, String)>,
    pub stops: Vec<(String, i32)>,
    pub removed: Vec<(String, bool)>,
    /// Containers removed with their volumes (`rm -v`).
    pub removed_volumes: Vec<String>,
    /// Stdin bytes each container got through attachments, by name.
    pub stdin_seen: std::collections::HashMap<String, Vec<u8>>,
    /// Containers whose attachment ended without close_stdin (detached).
    pub detached: Vec<String>,
    /// Containers that got close_stdin.
    pub stdin_closed: Vec<String>,
    pub more: super::runtime_more::MoreState,
    next_id: u64,
}

impl RtState {
    pub(crate) fn find(&mut self, key: &str) -> Option<&mut MockContainer> {
        self.containers
            .iter_mut()
            .find(|c| c.name == key || c.id == key || (key.len() >= 4 && c.id.starts_with(key)))
    }
}

#[derive(Clone, Default)]
pub struct MockRuntime {
    pub state: Arc<Mutex<RtState>>,
}

/// As the runtime daemon says it: NotFound with `rdock-exit-code: 125`.
pub(crate) fn no_such(key: &str) -> Status {
    let mut s = Status::not_found(format!("no such container: {key}"));
    s.metadata_mut()
        .insert("rdock-exit-code", "125".parse().unwrap());
    s
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn signal_number(sig: &str) -> i32 {
    match sig.trim_start_matches("SIG") {
        "INT" | "2" => 2,
        "TERM" | "15" => 15,
        "HUP" | "1" => 1,
        _ => 9,
    }
}

impl MockRuntime {
    pub fn add(&self, c: MockContainer) {
        self.state.lock().unwrap().containers.push(c);
    }

    /// Whether the named container is running with an attachment taken.
    pub fn is_running(&self, key: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .find(key)
            .is_some_and(|c| c.state == "running")
    }

    pub(crate) fn exited(&self, id: &str, code: i32) {
        let mut st = self.state.lock().unwrap();
        if let Some(c) = st.find(id) {
            c.state = "exited".into();
            c.status = format!("Exited ({code}) Less than a second ago");
            c.exit_code = code;
            c.kill_tx = None;
            // An attachment made while it ran hears of the exit too.
            if let Some(a) = c.attachment.take() {
                let _ = a.out.try_send(Ok(AttachOutput {
                    output: Some(attach_output::Output::ExitCode(code)),
                }));
            }
        }
    }
}

/// What a started container does; returns its exit code.
async fn behave(
    me: MockRuntime,
    name: String,
    cmd: Vec<String>,
    attachment: Option<Attachment>,
    mut kills: mpsc::UnboundedReceiver<String>,
) -> i32 {
    let send = |out: &Option<Out>, o: attach_output::Output| {
        let out = out.clone();
        async move {
            if let Some(out) = out {
                let _ = out.send(Ok(AttachOutput { output: Some(o) })).await;
            }
        }
    };
    let (out, mut input, stdin) = match attachment {
        Some(a) => (Some(a.out), Some(a.input), a.stdin),
        None => (None, None, false),
    };
    use attach_output::Output::{Stderr, Stdout};
    let code = match cmd.first().map(String::as_str) {
        Some("echo-both") => {
            send(&out, Stdout(b"out 1\n".to_vec())).await;
            send(&out, Stderr(b"err 1\n".to_vec())).await;
            send(&out, Stdout(b"out 2\n".to_vec())).await;
            cmd.get(1).and_then(|c| c.parse().ok()).unwrap_or(0)
        }
        Some("cat") => {
            let mut closed = false;
            if let (Some(input), true) = (input.as_mut(), stdin) {
                while let Ok(Some(msg)) = input.message().await {
                    match msg.input {
                        Some(attach_input::Input::Stdin(b)) => {
                            me.state
                                .lock()
                                .unwrap()
                                .stdin_seen
                                .entry(name.clone())
                                .or_default()
                                .extend_from_slice(&b);
                            send(&out, Stdout(b)).await
                        }
                        Some(attach_input::Input::CloseStdin(_)) => {
                            closed = true;
                            break;
                        }
                        Some(attach_input::Input::Resize(size)) => {
                            me.state.lock().unwrap().more.resizes.push((
                                name.clone(),
                                size.width,
                                size.height,
                            ))
                        }
                        _ => {}
                    }
                }
            }
            if closed || !stdin {
                if closed {
                    me.state.lock().unwrap().stdin_closed.push(name.clone());
                }
                0
            } else {
                // Detached: stdin stays open and the process runs on.
                me.state.lock().unwrap().detached.push(name.clone());
                match kills.recv().await {
                    Some(sig) => 128 + signal_number(&sig),
                    None => 137,
                }
            }
        }
        Some("sleep") => match kills.recv().await {
            Some(sig) => 128 + signal_number(&sig),
            None => 137,
        },
        _ => 0,
    };
    if let Some(out) = &out {
        let _ = out
            .send(Ok(AttachOutput {
                output: Some(attach_output::Output::ExitCode(code)),
            }))
            .await;
    }
    code
}

#[tonic::async_trait]
impl RuntimeService for MockRuntime {
    type AttachStream = Events<AttachOutput>;
    type LogsStream = Events<LogEntry>;

    async fn version(
        &self,
        _req: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: "9.9.9".into(),
            runtime: "runc".into(),
        }))
    }

    async fn create_container(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let r = req.into_inner();
        let mut st = self.state.lock().unwrap();
        if !r.name.is_empty() && st.find(&r.name).is_some() {
            let mut s = Status::already_exists(format!(
                "the container name \"/{}\" is already in use",
                r.name
            ));
            s.metadata_mut()
                .insert("rdock-exit-code", "125".parse().unwrap());
            return Err(s);
        }
        st.next_id += 1;
        let id = format!("{:04x}{:060x}", st.next_id, 0xc0ffee);
        let name = if r.name.is_empty() {
            format!("mock_{}", st.next_id)
        } else {
            r.name.clone()
        };
        let cmd: Vec<&str> = r.cmd.iter().map(String::as_str).collect();
        let mut c = MockContainer::new(&id, &name, &cmd, 0, "created", "Created");
        c.image = r.image.clone();
        c.tty = r.tty;
        c.open_stdin = r.open_stdin;
        c.auto_remove = r.auto_remove;
        // Published as the daemon would: a free host port from 32768 for 0.
        let mut ports = serde_json::Map::new();
        let mut cells = Vec::new();
        for (i, p) in r.ports.iter().enumerate() {
            let host_ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &p.host_ip
            };
            let host_port = if p.host_port == 0 {
                32768 + i as u32
            } else {
                p.host_port
            };
            let key = format!("{}/{}", p.container_port, p.protocol);
            let binding = serde_json::json!({"HostIp": host_ip, "HostPort": host_port.to_string()});
            match ports.get_mut(&key).and_then(|v| v.as_array_mut()) {
                Some(list) => list.push(binding),
                None => {
                    ports.insert(key.clone(), serde_json::json!([binding]));
                }
            }
            cells.push(format!("{host_ip}:{host_port}->{key}"));
        }
        c.ports_json = serde_json::Value::Object(ports).to_string();
        c.ports = cells.join(", ");
        st.containers.push(c);
        st.created.push(r);
        Ok(Response::new(CreateContainerResponse {
            id,
            warnings: vec![],
        }))
    }

    async fn start_container(
        &self,
        req: Request<StartContainerRequest>,
    ) -> Result<Response<StartContainerResponse>, Status> {
        let key = req.into_inner().id;
        let (id, name, cmd, attachment, kill_rx) = {
            let mut st = self.state.lock().unwrap();
            let c = st.find(&key).ok_or_else(|| no_such(&key))?;
            if c.cmd.first().map(String::as_str) == Some("nosuchcmd") {
                let mut s = Status::failed_precondition(
                    "exec: \"nosuchcmd\": executable file not found in $PATH",
                );
                s.metadata_mut()
                    .insert("rdock-exit-code", "127".parse().unwrap());
                return Err(s);
            }
            c.state = "running".into();
            c.status = "Up Less than a second".into();
            let (tx, rx) = mpsc::unbounded_channel();
            c.kill_tx = Some(tx);
            let (id, name, cmd, attachment) = (
                c.id.clone(),
                c.name.clone(),
                c.cmd.clone(),
                c.attachment.take(),
            );
            if attachment.is_none() {
                st.started_unattached.push(id.clone());
            }
            (id, name, cmd, attachment, rx)
        };
        let me = self.clone();
        tokio::spawn(async move {
            let code = behave(me.clone(), name, cmd, attachment, kill_rx).await;
            me.exited(&id, code);
        });
        Ok(Response::new(StartContainerResponse {}))
    }

    async fn attach(
        &self,
        req: Request<Streaming<AttachInput>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut input = req.into_inner();
        let Some(AttachInput {
            input: Some(attach_input::Input::Start(start)),
        }) = input.message().await?
        else {
            return Err(Status::invalid_argument(
                "first message must be AttachStart",
            ));
        };
        let (tx, rx) = mpsc::channel(16);
        {
            let mut st = self.state.lock().unwrap();
            let c = st.find(&start.id).ok_or_else(|| no_such(&start.id))?;
            c.attachment = Some(Attachment {
                out: tx,
                input,
                stdin: start.stdin,
            });
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn wait(&self, req: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let key = req.into_inner().id;
        loop {
            {
                let mut st = self.state.lock().unwrap();
                let c = st.find(&key).ok_or_else(|| no_such(&key))?;
                if c.state != "running" {
                    return Ok(Response::new(WaitResponse {
                        exit_code: c.exit_code,
                    }));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop_container(
        &self,
        req: Request<StopContainerRequest>,
    ) -> Result<Response<StopContainerResponse>, Status> {
        let r = req.into_inner();
        let mut st = self.state.lock().unwrap();
        let c = st.find(&r.id).ok_or_else(|| no_such(&r.id))?;
        c.state = "exited".into();
        c.status = "Exited (143) Less than a second ago".into();
        st.stops.push((r.id, r.timeout));
        Ok(Response::new(StopContainerResponse {}))
    }

    async fn kill_container(
        &self,
        req: Request<KillContainerRequest>,
    ) -> Result<Response<KillContainerResponse>, Status> {
        let r = req.into_inner();
        let mut st = self.state.lock().unwrap();
        let c = st.find(&r.id).ok_or_else(|| no_such(&r.id))?;
        if c.state != "running" {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                r.id
            )));
        }
        if let Some(tx) = &c.kill_tx {
            let _ = tx.send(r.signal.clone());
        }
        st.kills.push((r.id, r.signal));
        Ok(Response::new(KillContainerResponse {}))
    }

    async fn remove_container(
        &self,
        req: Request<RemoveContainerRequest>,
    ) -> Result<Response<RemoveContainerResponse>, Status> {
        let r = req.into_inner();
        let mut st = self.state.lock().unwrap();
        let c = st.find(&r.id).ok_or_else(|| no_such(&r.id))?;
        if c.state == "running" && !r.force {
            return Err(Status::failed_precondition(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                c.name
            )));
        }
        let id = c.id.clone();
        st.containers.retain(|c| c.id != id);
        if r.volumes {
            st.removed_volumes.push(r.id.clone());
        }
        st.removed.push((r.id, r.force));
        Ok(Response::new(RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let all = req.into_inner().all;
        let st = self.state.lock().unwrap();
        let now = now();
        let containers = st
            .containers
            .iter()
            .filter(|c| all || c.state == "running")
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                image: c.image.clone(),
                command: c.cmd.join(" "),
                created: now - c.created_ago,
                state: c.state.clone(),
                status: c.status.clone(),
                ports: c.ports.clone(),
                exit_code: c.exit_code,
            })
            .collect();
        Ok(Response::new(ListContainersResponse { containers }))
    }

    async fn inspect_container(
        &self,
        req: Request<InspectContainerRequest>,
    ) -> Result<Response<ContainerInfo>, Status> {
        let key = req.into_inner().id;
        let mut st = self.state.lock().unwrap();
        let c = st.find(&key).ok_or_else(|| no_such(&key))?;
        // Keys deliberately not sorted: the CLI must keep the daemon's order.
        let json = format!(
            r#"{{"Id":"{id}","Name":"/{name}","State":{{"Status":"{state}","Running":{running},"Pid":4242,"ExitCode":{code}}},"Config":{{"Hostname":"{short}","Cmd":{cmd},"Image":"{image}","Tty":{tty},"OpenStdin":{open_stdin}}},"HostConfig":{{"AutoRemove":{auto_remove}}},"NetworkSettings":{{"IPAddress":"10.88.0.2","Ports":{ports}}},"Mounts":[]}}"#,
            id = c.id,
            name = c.name,
            state = c.state,
            running = c.state == "running",
            code = c.exit_code,
            short = &c.id[..12],
            cmd = serde_json::to_string(&c.cmd).unwrap(),
            image = c.image,
            ports = c.ports_json,
            tty = c.tty,
            open_stdin = c.open_stdin,
            auto_remove = c.auto_remove,
        );
        Ok(Response::new(ContainerInfo {
            id: c.id.clone(),
            json,
        }))
    }

    async fn logs(&self, req: Request<LogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        let r = req.into_inner();
        if self.state.lock().unwrap().find(&r.id).is_none() {
            return Err(no_such(&r.id));
        }
        let entry = |stream: &str, line: &[u8], n: u32| LogEntry {
            stream: stream.into(),
            line: line.to_vec(),
            time: format!("2026-11-27T18:00:0{n}.123456789Z"),
        };
        let mut entries = vec![
            entry("stdout", b"hello\n", 1),
            entry("stderr", b"warn \xff\n", 2),
            entry("stdout", b"bye", 3),
        ];
        if r.tail >= 0 {
            let skip = entries.len().saturating_sub(r.tail as usize);
            entries.drain(..skip);
        }
        let items: Vec<Result<LogEntry, Status>> = entries.into_iter().map(Ok).collect();
        Ok(Response::new(Box::pin(futures::stream::iter(items))))
    }

    async fn top(&self, req: Request<TopRequest>) -> Result<Response<TopResponse>, Status> {
        let key = req.into_inner().id;
        let mut st = self.state.lock().unwrap();
        let c = st.find(&key).ok_or_else(|| no_such(&key))?;
        if c.state != "running" {
            return Err(Status::failed_precondition(format!(
                "container {key} is not running"
            )));
        }
        let row = |f: &[&str]| TopRow {
            fields: f.iter().map(|s| s.to_string()).collect(),
        };
        Ok(Response::new(TopResponse {
            titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                .map(String::from)
                .to_vec(),
            processes: vec![
                row(&[
                    "root",
                    "4242",
                    "4200",
                    "0",
                    "18:00",
                    "?",
                    "00:00:00",
                    "sleep 100",
                ]),
                row(&["root", "4250", "4242", "0", "18:01", "?", "00:00:00", "sh"]),
            ],
        }))
    }

    async fn resize(
        &self,
        req: Request<ResizeRequest>,
    ) -> Result<Response<ResizeResponse>, Status> {
        self.do_resize(req.into_inner())
    }

    type ExecStream = Events<ExecOutput>;

    async fn exec(
        &self,
        req: Request<Streaming<ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        self.do_exec(req.into_inner()).await
    }

    async fn diff(&self, req: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        self.do_diff(req.into_inner())
    }

    async fn commit(
        &self,
        req: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        self.do_commit(req.into_inner())
    }

    type ExportStream = Events<DataChunk>;

    async fn export(
        &self,
        req: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        self.do_export(req.into_inner())
    }

    async fn stat_path(&self, req: Request<StatPathRequest>) -> Result<Response<PathStat>, Status> {
        self.do_stat_path(req.into_inner())
    }

    type CopyFromStream = Events<CopyFromOutput>;

    async fn copy_from(
        &self,
        req: Request<CopyFromRequest>,
    ) -> Result<Response<Self::CopyFromStream>, Status> {
        self.do_copy_from(req.into_inner())
    }

    async fn copy_to(
        &self,
        req: Request<Streaming<CopyToInput>>,
    ) -> Result<Response<CopyToResponse>, Status> {
        self.do_copy_to(req.into_inner()).await
    }

    async fn connect_network(
        &self,
        req: Request<ConnectNetworkRequest>,
    ) -> Result<Response<ConnectNetworkResponse>, Status> {
        self.do_connect(req.into_inner())
    }

    async fn disconnect_network(
        &self,
        req: Request<DisconnectNetworkRequest>,
    ) -> Result<Response<DisconnectNetworkResponse>, Status> {
        self.do_disconnect(req.into_inner())
    }

    async fn create_volume(
        &self,
        req: Request<CreateVolumeRequest>,
    ) -> Result<Response<Volume>, Status> {
        self.do_create_volume(req.into_inner())
    }

    async fn list_volumes(
        &self,
        _: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        self.do_list_volumes()
    }

    async fn inspect_volume(
        &self,
        req: Request<InspectVolumeRequest>,
    ) -> Result<Response<Volume>, Status> {
        self.do_inspect_volume(req.into_inner())
    }

    async fn remove_volume(
        &self,
        req: Request<RemoveVolumeRequest>,
    ) -> Result<Response<RemoveVolumeResponse>, Status> {
        self.do_remove_volume(req.into_inner())
    }

    async fn prune_volumes(
        &self,
        req: Request<PruneVolumesRequest>,
    ) -> Result<Response<PruneVolumesResponse>, Status> {
        self.do_prune_volumes(req.into_inner())
    }
}
