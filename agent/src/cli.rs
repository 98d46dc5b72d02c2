//! The command line. Other tools (the systemd unit, the installer, people's
//! scripts) call it, so names and meanings here are a contract: add, never
//! rename. Every option that can also come from `--config` is an `Option`
//! here, and `config::LoadSettings::resolve` applies defaults after merging.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub const DEFAULT_PROJECT: &str = "spectro-images";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/edgeiso";
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Where bundles are looked for when no `--bundle` is given: the live ISO
/// mount, and the content folder as laid out on the ISO and on the installed
/// system.
pub const DEFAULT_BUNDLE_SEARCH: &[&str] = &["/run/initramfs/live", "/opt/spectrocloud/content"];
pub const PASSWORD_ENV: &str = "EDGEISO_REGISTRY_PASSWORD";

const AFTER_HELP: &str = "\
Exit status:
  0  every image is in the registry
  1  internal error
  2  bad command line or configuration file
  3  some images failed (bad blob, manifest rejected); the others were loaded
  4  the registry did not answer in time, or stopped answering
  5  the registry refused the credentials
  6  no bundle found, or a bundle is unreadable (missing or truncated part)
  7  TLS verification failed
  8  --deadline expired before every image was loaded (a later run continues)";

const LOAD_EXAMPLES: &str = "\
Examples:
  # First boot: the bundles on the ISO into the local Harbor
  edgeiso-agent load --registry https://10.0.0.5:30003 --ca /etc/edgeiso/harbor-ca.pem \\
      --username admin --password-file /etc/edgeiso/harbor-password

  # One bundle (or its first part) into a plain registry, JSON events on stdout
  edgeiso-agent load --bundle /mnt/content-site.tar.part000 --registry http://127.0.0.1:5000 --json

  # From the initramfs: give up (exit 8, resumable) if not done in 10 minutes
  edgeiso-agent load --config /usr/local/edgeiso/site/agent.yaml --deadline 10m

  # Everything from the agent's configuration file, one flag overridden
  edgeiso-agent load --config /usr/local/edgeiso/site/agent.yaml --concurrency 6

The password is read from --password-file or the EDGEISO_REGISTRY_PASSWORD
environment variable, never from the command line.";

#[derive(Debug, Parser)]
#[command(
    name = "edgeiso-agent",
    version,
    about = "Push the images of an edgeiso content bundle into the site registry",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Push every workload image of the bundles into the registry (resumable).
    #[command(after_help = LOAD_EXAMPLES)]
    Load(Box<LoadArgs>),
    /// Show what is loaded, pending and failed, from the journal.
    #[command(after_help = "Example:\n  edgeiso-agent status --json")]
    Status(StatusArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct LoadArgs {
    /// Agent configuration file (YAML: registry, project, ca, insecure,
    /// username, passwordFile, bundles, stateDir). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A bundle tar, its first part (.part000), or a folder to search.
    /// Default: /run/initramfs/live and /opt/spectrocloud/content.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub bundle: Vec<PathBuf>,

    /// https://host:port (TLS verified against the built-in roots plus --ca)
    /// or http://host:port (plain HTTP).
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,

    /// Harbor project (and first path component) every image goes under
    /// [default: spectro-images].
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,

    /// PEM file with CA certificates to trust, on top of the built-in roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,

    /// Skip TLS certificate verification (logged as a warning).
    #[arg(long)]
    pub insecure: bool,

    /// Registry user (default admin when a password is given).
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    /// File holding the password (one line). Or set EDGEISO_REGISTRY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Blob uploads in flight at once [default: 4].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Where the journal of finished blobs and images lives
    /// [default: /var/lib/edgeiso].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long to wait for the registry to answer at start (e.g. 30m, 90s)
    /// [default: 30m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_timeout: Option<Duration>,

    /// Stop the whole load after this long (e.g. 10m, 90s): images not
    /// loaded by then are listed, uploads are left resumable, exit status 8.
    /// Default: no deadline.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,

    /// Print one JSON event per line on stdout (logs stay on stderr).
    #[arg(long)]
    pub json: bool,

    /// Blobs larger than this are sent in resumable chunks (bytes).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub chunk_threshold: Option<u64>,

    /// Size of one chunk of a chunked upload (bytes).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub chunk_size: Option<u64>,

    /// Do not read or write the journal (benchmarks, debugging).
    #[arg(long, hide = true)]
    pub no_journal: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Where the journal lives.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30m or 90s: {e}"))
}
