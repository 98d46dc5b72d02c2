//! The command line. Other tools (the systemd unit, the installer, people's
//! scripts) call it, so names and meanings here are a contract: add, never
//! rename. The settings that can also come from `--config` are the shared
//! `edgeiso_contract::AgentConfig` (one struct for the flags and the file),
//! and `config::LoadSettings::resolve` applies defaults after merging.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use edgeiso_contract::paths::node::DEFAULT_STATE_DIR;
use edgeiso_contract::AgentConfig;

const AFTER_HELP: &str = "\
Exit status:
  0  every image is in the registry
  1  internal error
  2  bad command line or configuration file
  3  some images failed (bad blob, manifest rejected or not confirmed by the
     registry, Harbor's project quota exhausted or Harbor read-only); the
     others were loaded
  4  the registry did not answer in time, or stopped answering
  5  the registry refused the credentials (401, or 403 for another reason)
  6  no bundle found, or a bundle is unreadable (missing or truncated part)
  7  TLS verification failed
  8  --deadline expired before every image was loaded (a later run continues)
  9  --trust: a bundle is unsigned, signed by another key, or its bundle.json
     changed after signing; nothing was pushed";

const LOAD_EXAMPLES: &str = "\
Examples:
  # First boot: the bundles on the ISO into the local Harbor
  edgeiso-agent load --registry https://10.0.0.5:30003 --ca /etc/edgeiso/harbor-ca.pem \\
      --username admin --password-file /etc/edgeiso/harbor-password

  # One bundle (or its first part) into a plain registry, JSON events on stdout
  edgeiso-agent load --bundle /mnt/content-site.tar.part000 --registry http://127.0.0.1:5000 --json

  # From the initramfs: give up (exit 8, resumable) if not done in 10 minutes
  edgeiso-agent load --config /usr/local/edgeiso/site/agent.yaml --deadline 10m

  # Only bundles signed by the site's key (NAME.tar.sig beside each)
  edgeiso-agent load --bundle /mnt/content-site.tar --registry http://127.0.0.1:5000 \\
      --trust /usr/local/edgeiso/site/trust/bundle-signing.pub

  # A thin bundle: its layers fetched from their source registries (the
  # site spec's registries[] give hosts and credentials) and pushed as they come
  edgeiso-agent load --bundle content-site.tar --registry https://10.0.0.5:30003 --sources site.yaml

  # A delta: only what its base lacks; the base must have been loaded before
  edgeiso-agent load --config /usr/local/edgeiso/site/agent.yaml --bundle /mnt/content-site-2.tar

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
    /// Serve the admission webhook that points new pods' images at the
    /// site's Harbor (images the journal says it holds).
    #[command(after_help = WEBHOOK_EXAMPLES)]
    Webhook(Box<WebhookArgs>),
    /// Show what is loaded, pending and failed, from the journal.
    #[command(after_help = "Example:\n  edgeiso-agent status --json")]
    Status(StatusArgs),
    #[command(flatten)]
    Docs(edgeiso_contract::cli_docs::DocsCommand),
}

#[derive(Debug, Clone, Default, Args)]
pub struct LoadArgs {
    /// Agent configuration file (YAML: the settings below, by their
    /// camelCase names: registry, project, ca, insecure, username,
    /// passwordFile, bundles, stateDir, concurrency, waitTimeout, deadline,
    /// trust, the webhook's section, which load ignores, and nodeMirrors, render's
    /// node mirror files to complete with the nodes' pull credential and
    /// install). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: AgentConfig,

    /// Where a thin bundle's left-out blobs come from: a YAML file whose
    /// `registries:` entries have the site spec's keys (host, insecure,
    /// caFile, username, passwordFile, passwordEnv), such as the site spec
    /// itself. Replaces `sources:` of --config. A host with no entry is
    /// reached over HTTPS without credentials.
    #[arg(long, value_name = "FILE")]
    pub sources: Option<PathBuf>,

    /// Print one JSON event per line on stdout (logs stay on stderr).
    #[arg(long)]
    pub json: bool,

    /// Also write the outcome as console lines (`EDGEISO-AGENT: loaded N
    /// images into URL`, or `... failed: ...`) to FILE: the live boot's hook
    /// relays them to the console, where `edgeiso boot-test` reads them.
    #[arg(long, value_name = "FILE")]
    pub outcome_file: Option<PathBuf>,

    /// Blobs larger than this are sent in resumable chunks (bytes).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub chunk_threshold: Option<u64>,

    /// Size of one chunk of a chunked upload (bytes).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub chunk_size: Option<u64>,

    /// Do not read or write the journal (benchmarks, debugging).
    #[arg(long, hide = true)]
    pub no_journal: bool,

    /// How long the registry may take to answer one request (its status
    /// and headers; default 60 s, plus time for a request's body).
    #[arg(long, value_name = "DURATION", hide = true, value_parser = humantime::parse_duration)]
    pub answer_timeout: Option<std::time::Duration>,

    /// Retries of a failed request (default 10: about a minute of backoff).
    #[arg(long, value_name = "N", hide = true)]
    pub retries: Option<u32>,
}

const WEBHOOK_EXAMPLES: &str = "\
Examples:
  # On the node (what edgeiso-webhook.service runs): everything from agent.yaml
  edgeiso-agent webhook --config /usr/local/edgeiso/site/agent.yaml

  # By hand, on another port
  edgeiso-agent webhook --registry https://10.0.0.5:30003 --state-dir /usr/local/edgeiso/state \\
      --tls-cert tls.crt --tls-key tls.key --listen 127.0.0.1:9443

It answers POST /mutate (AdmissionReview admission.k8s.io/v1) and GET /healthz.
Only --registry, --project, --bundle, --state-dir and the Webhook options
apply; the Load options are ignored. Exit status 2: bad configuration,
certificate or key, or the address cannot be bound.";

#[derive(Debug, Clone, Default, Args)]
pub struct WebhookArgs {
    /// Agent configuration file (the one `load` reads; its `webhook:`
    /// section holds listen, tlsCert and tlsKey). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: AgentConfig,
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
