//! Command-line arguments: Docker's command and flag shapes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Return low-level information on rdock objects (images for now)
    Inspect(InspectArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
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
}
