//! Command-line arguments: Docker's command and flag shapes.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// rdockctl — the rdock command-line client.
#[derive(Debug, Parser)]
#[command(
    name = "rdockctl",
    version,
    about = "Manage images, containers and networks on rdock hosts"
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach a host's daemons; given before the command, like Docker's.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnArgs {
    /// Host to connect to: HOST[:PORT] or tcp://HOST:PORT (PORT is the image
    /// daemon's; the runtime and network daemons listen on the next two)
    #[arg(short = 'H', long = "host", env = "RDOCK_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// Trust certs signed only by this CA
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// Path to the client certificate
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// Path to the client key
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// Client config file [default: ~/.rdock/config.toml]
    #[arg(long, env = "RDOCK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Attach local standard input, output, and error streams to a running
    /// container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// List images
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Return low-level information on rdock objects (containers, images)
    Inspect(ObjectInspectArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage the rdock PKI (CA, daemon and client certificates)
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Manage rdock
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Display the health of the host's daemons
    Info(InfoArgs),
    /// Show the rdock version information
    Version(VersionArgs),
}

impl Command {
    /// The command's name as a user types it, for the trace span.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Create(_) => "create",
            Command::Start(_) => "start",
            Command::Ps(_) => "ps",
            Command::Logs(_) => "logs",
            Command::Stop(_) => "stop",
            Command::Kill(_) => "kill",
            Command::Rm(_) => "rm",
            Command::Wait(_) => "wait",
            Command::Top(_) => "top",
            Command::Port(_) => "port",
            Command::Attach(_) => "attach",
            Command::Exec(_) => "exec",
            Command::Diff(_) => "diff",
            Command::Commit(_) => "commit",
            Command::Export(_) => "export",
            Command::Cp(_) => "cp",
            Command::History(_) => "history",
            Command::Container { command } => match command {
                ContainerCommand::Run(_) => "container run",
                ContainerCommand::Create(_) => "container create",
                ContainerCommand::Start(_) => "container start",
                ContainerCommand::Ls(_) => "container ls",
                ContainerCommand::Logs(_) => "container logs",
                ContainerCommand::Stop(_) => "container stop",
                ContainerCommand::Kill(_) => "container kill",
                ContainerCommand::Rm(_) => "container rm",
                ContainerCommand::Wait(_) => "container wait",
                ContainerCommand::Inspect(_) => "container inspect",
                ContainerCommand::Top(_) => "container top",
                ContainerCommand::Port(_) => "container port",
                ContainerCommand::Attach(_) => "container attach",
                ContainerCommand::Exec(_) => "container exec",
                ContainerCommand::Diff(_) => "container diff",
                ContainerCommand::Commit(_) => "container commit",
                ContainerCommand::Export(_) => "container export",
                ContainerCommand::Cp(_) => "container cp",
            },
            Command::Pull(_) => "pull",
            Command::Push(_) => "push",
            Command::Import(_) => "import",
            Command::Images(_) => "images",
            Command::Tag(_) => "tag",
            Command::Rmi(_) => "rmi",
            Command::Inspect(_) => "inspect",
            Command::Image { command } => match command {
                ImageCommand::Ls(_) => "image ls",
                ImageCommand::Rm(_) => "image rm",
                ImageCommand::Inspect(_) => "image inspect",
                ImageCommand::Pull(_) => "image pull",
                ImageCommand::Push(_) => "image push",
                ImageCommand::Tag(_) => "image tag",
                ImageCommand::Import(_) => "image import",
                ImageCommand::History(_) => "image history",
            },
            Command::Network { command } => match command {
                NetworkCommand::Create(_) => "network create",
                NetworkCommand::Ls(_) => "network ls",
                NetworkCommand::Inspect(_) => "network inspect",
                NetworkCommand::Rm(_) => "network rm",
                NetworkCommand::Connect(_) => "network connect",
                NetworkCommand::Disconnect(_) => "network disconnect",
            },
            Command::Volume { command } => match command {
                VolumeCommand::Create(_) => "volume create",
                VolumeCommand::Ls(_) => "volume ls",
                VolumeCommand::Inspect(_) => "volume inspect",
                VolumeCommand::Rm(_) => "volume rm",
                VolumeCommand::Prune(_) => "volume prune",
            },
            Command::Pki { command } => match command {
                PkiCommand::Init(_) => "pki init",
                PkiCommand::Issue(_) => "pki issue",
            },
            Command::System { command } => match command {
                SystemCommand::Info(_) => "system info",
            },
            Command::Info(_) => "info",
            Command::Version(_) => "version",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Attach local standard input, output, and error streams to a running
    /// container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
}

/// Go's `strconv.ParseBool`, for Docker's boolean flags that default to
/// true (`--sig-proxy=false`, `-H=false`, `--pause=false`).
pub fn go_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {v:?}: invalid syntax")),
    }
}

/// The options of `create` and `run` (Docker's), then IMAGE [COMMAND] [ARG...].
/// Options stop at IMAGE: everything after it is the container's command.
/// `-h` is the hostname, as in Docker, so help is `--help` only.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateOptions {
    /// Assign a name to the container
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VAL; KEY alone takes its value
    /// from this environment); repeatable
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VAL lines); repeatable
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image ('' clears it)
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname", value_name = "NAME")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps
    /// processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Memory limit (64m, 1g, 512k, 1024b, bytes)
    #[arg(short = 'm', long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Number of CPUs (1.5)
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Set a metadata label (KEY=VAL); repeatable
    #[arg(short = 'l', long = "label", value_name = "KEY=VAL")]
    pub labels: Vec<String>,
    /// OCI runtime to use for this container (runc, crun)
    #[arg(long, value_name = "NAME")]
    pub runtime: Option<String>,
    /// Publish a container's port(s) to the host:
    /// [IP:][HOSTPORT:]CTRPORT[/PROTO], ranges as 8000-8001:80-81; repeatable
    #[arg(short = 'p', long = "publish", value_name = "LIST")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Add link to another container (NAME[:ALIAS]); repeatable
    #[arg(long = "link", value_name = "NAME[:ALIAS]")]
    pub links: Vec<String>,
    /// Connect a container to a network: bridge (default), none, host or a
    /// user-defined network
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container; repeatable
    #[arg(long = "network-alias", alias = "net-alias", value_name = "ALIAS")]
    pub network_aliases: Vec<String>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Bind mount a volume: /host:/ctr[:OPTS], NAME:/ctr[:OPTS] or /ctr
    /// (OPTS: ro, rw, z, Z, nocopy, a propagation); repeatable
    #[arg(short = 'v', long = "volume", value_name = "LIST")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount to the container
    /// (type=bind|volume|tmpfs,source=…,target=…,readonly,…); repeatable
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs directory: /path[:size=…,mode=…,OPTS]; repeatable
    #[arg(long = "tmpfs", value_name = "LIST")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount volumes from the specified container(s): CONTAINER[:ro|rw];
    /// repeatable
    #[arg(long = "volumes-from", value_name = "LIST")]
    pub volumes_from: Vec<String>,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    // One argument for IMAGE and COMMAND, so that clap stops looking for
    // options at IMAGE (with two, `run busybox -d` would detach).
    /// The image, then the command and its arguments (overriding the
    /// image's CMD)
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub image_and_command: Vec<String>,
}

impl CreateOptions {
    /// The image, as the user typed it.
    pub fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    /// The command after the image (empty: the image's CMD).
    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }
}

#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "rdockctl run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct RunArgs {
    /// Run the container in the background and print its ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process (--sig-proxy=false to not)
    #[arg(
        long = "sig-proxy",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = go_bool,
        action = ArgAction::Set
    )]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: CreateOptions,
}

#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "rdockctl create [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: CreateOptions,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and exit with the container's code
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach the container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json" (one JSON object per line)
    /// or a Go template ('{{.ID}} {{.Names}}')
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs, or "all"
    #[arg(short = 'n', long, value_name = "N|all", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECS",
        allow_hyphen_values = true
    )]
    pub time: Option<i32>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container (name or number)
    #[arg(short = 's', long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Show only this private port's host addresses
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private_port: Option<String>,
}

/// `inspect`: containers first, then images.
#[derive(Debug, Args)]
pub struct ObjectInspectArgs {
    /// Format output using a Go template ('{{.State.Pid}}', '{{json .Config}}')
    #[arg(short = 'f', long = "format", value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Only look for this type of object: container or image
    #[arg(long = "type", value_name = "TYPE", value_parser = ["container", "image"])]
    pub kind: Option<String>,
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a Go template ('{{.State.Pid}}', '{{json .Config}}')
    #[arg(short = 'f', long = "format", value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Show the history of an image
    History(HistoryArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A root filesystem tarball, or - for standard input
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// The new image's reference
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the created image (CMD, ENTRYPOINT,
    /// ENV, WORKDIR, USER, EXPOSE, LABEL, ...)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Set a commit message for the imported image
    #[arg(short = 'm', long = "message", default_value = "")]
    pub message: String,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json" (one JSON object per line)
    /// or a Go template ('{{.Repository}}:{{.Tag}}')
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only show images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template ('{{.Id}}', '{{json .Config}}')
    #[arg(short = 'f', long = "format", value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container; repeatable
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process (--sig-proxy=false to not)
    #[arg(
        long = "sig-proxy",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = go_bool,
        action = ArgAction::Set
    )]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `exec`'s options, then CONTAINER COMMAND [ARG...]; options stop at
/// CONTAINER, as Docker's do.
#[derive(Debug, Clone, Default, Args)]
#[command(override_usage = "rdockctl exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
pub struct ExecArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set an environment variable (KEY=VAL, or KEY from this environment);
    /// repeatable
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Read in a file of environment variables; repeatable
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// The container, then the command and its arguments
    #[arg(
        value_name = "CONTAINER COMMAND [ARG...]",
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub container_and_command: Vec<String>,
}

impl ExecArgs {
    pub fn container(&self) -> &str {
        self.container_and_command
            .first()
            .map_or("", String::as_str)
    }

    pub fn command(&self) -> &[String] {
        self.container_and_command.get(1..).unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "AUTHOR")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image; repeatable
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Pause container during commit (--pause=false to not)
    #[arg(
        short = 'p',
        long = "pause",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = go_bool,
        action = ArgAction::Set
    )]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
#[command(
    override_usage = "rdockctl cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       rdockctl cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy (automatic when stdout is not a
    /// terminal)
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub source: String,
    #[arg(value_name = "DEST", allow_hyphen_values = true)]
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (-H=false to not)
    #[arg(
        short = 'H',
        long = "human",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = go_bool,
        action = ArgAction::Set
    )]
    pub human: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json" (one JSON object per line)
    /// or a Go template ('{{.ID}} {{.CreatedBy}}')
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name (only "local")
    #[arg(short = 'd', long, value_name = "DRIVER", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (KEY=VAL); repeatable
    #[arg(long = "label", value_name = "KEY=VAL")]
    pub labels: Vec<String>,
    /// The volume's name (default: a random one)
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output: "table" (default), "json" (one JSON object per line)
    /// or a Go template ('{{.Name}} {{.Mountpoint}}')
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format output using a Go template ('{{.Mountpoint}}')
    #[arg(short = 'f', long = "format", value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Subnet in CIDR format (default: the next free one of the daemon's
    /// pool)
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// Driver to manage the network (only "bridge")
    #[arg(short = 'd', long, value_name = "DRIVER", default_value = "bridge")]
    pub driver: String,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json" (one JSON object per line)
    /// or a Go template ('{{.ID}} {{.Name}}')
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Format output using a Go template ('{{.Id}}', '{{json .IPAM}}')
    #[arg(short = 'f', long = "format", value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a CA, daemon certificates and admin/viewer client certificates
    Init(PkiInitArgs),
    /// Issue one more client certificate from the CA
    Issue(PkiIssueArgs),
}

/// The default PKI directory.
pub const DEFAULT_PKI_DIR: &str = "/etc/rdock/pki";

#[derive(Debug, Args)]
pub struct PkiInitArgs {
    /// Where to write the PKI
    #[arg(long, default_value = DEFAULT_PKI_DIR, value_name = "DIR")]
    pub dir: PathBuf,
    /// A host name or IP the daemons are reached at (besides localhost and
    /// 127.0.0.1); repeatable
    #[arg(long = "host", value_name = "NAME_OR_IP")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PkiIssueArgs {
    /// The certificate's name (its common name)
    #[arg(long)]
    pub name: String,
    /// admin or viewer
    #[arg(long)]
    pub role: String,
    /// The PKI directory holding the CA
    #[arg(long, default_value = DEFAULT_PKI_DIR, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Display the health of the host's daemons
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output: "json" for one JSON object
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output: "json" for one JSON object
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_docker_shapes() {
        let cli = Cli::try_parse_from([
            "rdockctl",
            "-H",
            "node1:9000",
            "--tlscacert",
            "/x/ca.crt",
            "rmi",
            "-f",
            "a",
            "b",
        ])
        .unwrap();
        assert_eq!(cli.conn.host.as_deref(), Some("node1:9000"));
        match cli.command {
            Command::Rmi(a) => {
                assert!(a.force);
                assert_eq!(a.images, ["a", "b"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "rdockctl",
            "import",
            "-",
            "x:1",
            "--change",
            "CMD [\"sh\"]",
            "-m",
            "hi",
        ])
        .unwrap();
        match cli.command {
            Command::Import(a) => {
                assert_eq!(a.file, "-");
                assert_eq!(a.changes, ["CMD [\"sh\"]"]);
                assert_eq!(a.message, "hi");
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["rdockctl", "rmi"]).is_err());
        let cli = Cli::try_parse_from([
            "rdockctl", "pki", "init", "--host", "n1", "--host", "10.0.0.1",
        ])
        .unwrap();
        assert_eq!(cli.command.name(), "pki init");
    }

    fn parse(args: &[&str]) -> Command {
        let mut all = vec!["rdockctl"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().command
    }

    #[test]
    fn run_options_stop_at_the_image() {
        let Command::Run(a) = parse(&[
            "run", "-d", "--rm", "--name", "web", "-e", "A=1", "-e", "B", "-h", "box", "-it",
            "busybox", "sh", "-c", "echo hi", "-d", "--rm",
        ]) else {
            panic!()
        };
        assert!(a.detach && a.opts.rm && a.opts.interactive && a.opts.tty);
        assert_eq!(a.opts.name.as_deref(), Some("web"));
        assert_eq!(a.opts.env, ["A=1", "B"]);
        assert_eq!(a.opts.hostname.as_deref(), Some("box"));
        assert_eq!(a.opts.image(), "busybox");
        assert_eq!(a.opts.command(), ["sh", "-c", "echo hi", "-d", "--rm"]);

        // A flag right after the image belongs to the command.
        let Command::Run(a) = parse(&["run", "busybox", "-d", "x"]) else {
            panic!()
        };
        assert!(!a.detach);
        assert_eq!(a.opts.command(), ["-d", "x"]);
        let Command::Run(a) = parse(&["run", "busybox", "--", "ls"]) else {
            panic!()
        };
        assert_eq!(a.opts.command(), ["--", "ls"]);

        let Command::Run(a) = parse(&[
            "run",
            "--entrypoint",
            "",
            "-m",
            "64m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "-1",
            "--restart",
            "on-failure:3",
            "-l",
            "a=b",
            "--env-file",
            "/e",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "--init",
            "--runtime",
            "crun",
            "busybox",
        ]) else {
            panic!()
        };
        let o = &a.opts;
        assert_eq!(o.entrypoint.as_deref(), Some(""));
        assert_eq!(o.memory.as_deref(), Some("64m"));
        assert_eq!(o.cpus.as_deref(), Some("1.5"));
        assert_eq!(o.pids_limit.as_deref(), Some("-1"));
        assert_eq!(o.restart.as_deref(), Some("on-failure:3"));
        assert_eq!(o.labels, ["a=b"]);
        assert_eq!(o.env_file, [PathBuf::from("/e")]);
        assert_eq!(o.workdir.as_deref(), Some("/tmp"));
        assert_eq!(o.user.as_deref(), Some("1000:1000"));
        assert!(o.init);
        assert_eq!(o.runtime.as_deref(), Some("crun"));
        assert!(o.command().is_empty());

        // Networking flags, repeatable where Docker's are.
        let Command::Run(a) = parse(&[
            "run",
            "-p",
            "8080:80",
            "--publish",
            "[::1]:53:53/udp",
            "-P",
            "--link",
            "db:database",
            "--link",
            "cache",
            "--net",
            "app",
            "--network-alias",
            "web",
            "--net-alias",
            "www",
            "busybox",
            "-p",
            "1",
        ]) else {
            panic!()
        };
        let o = &a.opts;
        assert_eq!(o.publish, ["8080:80", "[::1]:53:53/udp"]);
        assert!(o.publish_all);
        assert_eq!(o.links, ["db:database", "cache"]);
        assert_eq!(o.network.as_deref(), Some("app"));
        assert_eq!(o.network_aliases, ["web", "www"]);
        assert_eq!(o.command(), ["-p", "1"]);
        let Command::Create(a) = parse(&["create", "--network", "none", "--publish-all", "x"])
        else {
            panic!()
        };
        assert_eq!(a.opts.network.as_deref(), Some("none"));
        assert!(a.opts.publish_all && a.opts.publish.is_empty());

        // No image: a usage error; --help still works without -h.
        assert!(Cli::try_parse_from(["rdockctl", "run", "-d"]).is_err());
        let err = Cli::try_parse_from(["rdockctl", "create", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn container_group_and_aliases() {
        for (args, name) in [
            (&["container", "ls", "-a"][..], "container ls"),
            (&["container", "ps", "-q"], "container ls"),
            (&["container", "list"], "container ls"),
            (&["container", "remove", "x"], "container rm"),
            (&["container", "run", "busybox", "true"], "container run"),
            (&["container", "inspect", "x"], "container inspect"),
            (&["ps", "-aq", "--no-trunc"], "ps"),
            (&["stop", "-t", "3", "a", "b"], "stop"),
            (&["kill", "-s", "TERM", "a"], "kill"),
            (&["logs", "-f", "-n", "5", "-t", "a"], "logs"),
            (&["start", "-a", "a"], "start"),
            (&["wait", "a", "b"], "wait"),
            (&["top", "a"], "top"),
            (&["inspect", "--type", "image", "a"], "inspect"),
            (&["port", "a"], "port"),
            (&["port", "a", "80/udp"], "port"),
            (&["container", "port", "a"], "container port"),
            (
                &["network", "create", "--subnet", "10.9.0.0/24", "n"],
                "network create",
            ),
            (
                &["network", "create", "-d", "bridge", "n"],
                "network create",
            ),
            (&["network", "ls", "-q", "--no-trunc"], "network ls"),
            (&["network", "list", "--format", "json"], "network ls"),
            (
                &["network", "inspect", "-f", "{{.Id}}", "a", "b"],
                "network inspect",
            ),
            (&["network", "rm", "a", "b"], "network rm"),
            (&["network", "remove", "a"], "network rm"),
        ] {
            assert_eq!(parse(args).name(), name, "{args:?}");
        }
        let Command::Stop(a) = parse(&["stop", "--time", "0", "a"]) else {
            panic!()
        };
        assert_eq!(a.time, Some(0));
        let Command::Kill(a) = parse(&["kill", "a"]) else {
            panic!()
        };
        assert_eq!(a.signal, "KILL");
        let Command::Logs(a) = parse(&["logs", "a"]) else {
            panic!()
        };
        assert_eq!(a.tail, "all");
        assert!(Cli::try_parse_from(["rdockctl", "stop"]).is_err());
        assert!(Cli::try_parse_from(["rdockctl", "port"]).is_err());
        assert!(Cli::try_parse_from(["rdockctl", "port", "a", "80", "81"]).is_err());
        assert!(Cli::try_parse_from(["rdockctl", "network", "rm"]).is_err());
        assert!(Cli::try_parse_from(["rdockctl", "network", "create"]).is_err());
        let Command::Network {
            command: NetworkCommand::Create(a),
        } = parse(&["network", "create", "n"])
        else {
            panic!()
        };
        assert_eq!((a.driver.as_str(), a.subnet.as_deref()), ("bridge", None));
        let Command::Port(a) = parse(&["port", "web", "80"]) else {
            panic!()
        };
        assert_eq!(
            (a.container.as_str(), a.private_port.as_deref()),
            ("web", Some("80"))
        );
        assert!(Cli::try_parse_from(["rdockctl", "inspect", "--type", "net", "a"]).is_err());
    }

    #[test]
    fn new_commands_and_dockers_boolean_flags() {
        for (args, name) in [
            (
                &["attach", "--no-stdin", "--sig-proxy=false", "c"][..],
                "attach",
            ),
            (
                &["container", "attach", "--detach-keys", "ctrl-a", "c"],
                "container attach",
            ),
            (&["exec", "-it", "c", "sh"], "exec"),
            (&["container", "exec", "-d", "c", "true"], "container exec"),
            (&["diff", "c"], "diff"),
            (&["container", "diff", "c"], "container diff"),
            (&["commit", "-p=false", "c", "r:t"], "commit"),
            (&["container", "commit", "c"], "container commit"),
            (&["export", "-o", "/x.tar", "c"], "export"),
            (&["container", "export", "c"], "container export"),
            (&["cp", "c:/a", "-"], "cp"),
            (&["container", "cp", "-", "c:/a"], "container cp"),
            (&["history", "-H=false", "-q", "i"], "history"),
            (&["image", "history", "--no-trunc", "i"], "image history"),
            (
                &["volume", "create", "--label", "a=b", "v"],
                "volume create",
            ),
            (&["volume", "ls", "-q"], "volume ls"),
            (&["volume", "list"], "volume ls"),
            (
                &["volume", "inspect", "-f", "{{.Name}}", "v"],
                "volume inspect",
            ),
            (&["volume", "rm", "-f", "v", "w"], "volume rm"),
            (&["volume", "remove", "v"], "volume rm"),
            (&["volume", "prune", "-a", "-f"], "volume prune"),
            (
                &["network", "connect", "--alias", "x", "n", "c"],
                "network connect",
            ),
            (
                &["network", "disconnect", "-f", "n", "c"],
                "network disconnect",
            ),
        ] {
            assert_eq!(parse(args).name(), name, "{args:?}");
        }

        // Docker's booleans that default to true: bare, =false, =0.
        let Command::Run(a) = parse(&["run", "busybox"]) else {
            panic!()
        };
        assert!(a.sig_proxy && a.detach_keys.is_none());
        let Command::Run(a) = parse(&[
            "run",
            "--sig-proxy=false",
            "--detach-keys",
            "ctrl-x,y",
            "busybox",
        ]) else {
            panic!()
        };
        assert!(!a.sig_proxy);
        assert_eq!(a.detach_keys.as_deref(), Some("ctrl-x,y"));
        let Command::Attach(a) = parse(&["attach", "--sig-proxy", "c"]) else {
            panic!()
        };
        assert!(a.sig_proxy && !a.no_stdin);
        let Command::History(a) = parse(&["history", "-H=0", "img"]) else {
            panic!()
        };
        assert!(!a.human);
        let Command::History(a) = parse(&["history", "-H", "img"]) else {
            panic!()
        };
        assert!(a.human && a.image == "img");
        let Command::Commit(a) = parse(&[
            "commit",
            "--pause=false",
            "-c",
            "CMD x",
            "-c",
            "ENV a=b",
            "c",
        ]) else {
            panic!()
        };
        assert!(!a.pause && a.reference.is_none());
        assert_eq!(a.changes, ["CMD x", "ENV a=b"]);
        let Command::Commit(a) = parse(&["commit", "c", "repo:tag"]) else {
            panic!()
        };
        assert!(a.pause);
        assert_eq!(a.reference.as_deref(), Some("repo:tag"));
        assert!(Cli::try_parse_from(["rdockctl", "commit", "--pause=maybe", "c"]).is_err());

        // exec's options stop at the container.
        let Command::Exec(a) = parse(&[
            "exec",
            "-i",
            "-e",
            "A=1",
            "--env-file",
            "/e",
            "-w",
            "/w",
            "-u",
            "u",
            "--privileged",
            "c",
            "sh",
            "-c",
            "-d",
        ]) else {
            panic!()
        };
        assert!(a.interactive && !a.tty && !a.detach && a.privileged);
        assert_eq!(
            (a.container(), a.command()),
            ("c", &["sh".to_string(), "-c".into(), "-d".into()][..])
        );
        assert_eq!(a.env, ["A=1"]);
        assert!(Cli::try_parse_from(["rdockctl", "exec", "c"]).is_err());

        // run's mount flags, repeatable.
        let Command::Run(a) = parse(&[
            "run",
            "-v",
            "/a:/b",
            "--volume",
            "v:/c",
            "--mount",
            "type=tmpfs,dst=/t",
            "--tmpfs",
            "/r",
            "--read-only",
            "--volumes-from",
            "x:ro",
            "busybox",
            "-v",
        ]) else {
            panic!()
        };
        let o = &a.opts;
        assert_eq!(o.volumes, ["/a:/b", "v:/c"]);
        assert_eq!(o.mounts, ["type=tmpfs,dst=/t"]);
        assert_eq!(o.tmpfs, ["/r"]);
        assert!(o.read_only);
        assert_eq!(o.volumes_from, ["x:ro"]);
        assert_eq!(o.command(), ["-v"]);

        let Command::Rm(a) = parse(&["rm", "-fv", "c"]) else {
            panic!()
        };
        assert!(a.force && a.volumes);
        let Command::Cp(a) = parse(&["cp", "-aL", "-", "c:/x"]) else {
            panic!()
        };
        assert!(a.archive && a.follow_link && !a.quiet);
        assert_eq!((a.source.as_str(), a.destination.as_str()), ("-", "c:/x"));
    }
}
