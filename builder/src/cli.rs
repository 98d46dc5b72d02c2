//! Every command-line type of `edgeiso`, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edgeiso",
    version,
    about = "Put Kubernetes on edge sites that have no network",
    long_about = "edgeiso bundles every image a site needs into one verifiable content bundle, renders the \
site's airgap configuration, and lays both into a bootable installer ISO.",
    after_help = "Exit codes: 0 success, 1 failure, 2 usage error, 3 invalid input (spec, lock, archive), \
4 verification failed, 5 registry refused (unknown image, wrong credentials)."
)]
pub struct Cli {
    /// Log more (repeat for more detail); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print one JSON event per line on stdout instead of progress and tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, verify, inspect and import content bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Render the site's user-data, Harbor manifests, credential Secrets,
    /// node mirror config and agent config from its spec.
    #[command(after_help = "Examples:
  edgeiso render --spec site.yaml --output build/site
  edgeiso render --spec site.yaml --output build/site --bundle build/content-store-042.tar   # also checks Harbor storage")]
    Render(RenderArgs),
    /// Check a cluster profile (or k3s/RKE2 config) for settings that break an
    /// airgapped site, such as the AlwaysPullImages admission plugin.
    #[command(after_help = "Examples:
  edgeiso lint --profile profile.yaml
  edgeiso lint --profile profile.yaml --fix profile.fixed.yaml")]
    Lint(LintArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The site spec (YAML).
    #[arg(short, long)]
    pub spec: PathBuf,
    /// Folder to render into (created; only a folder edgeiso rendered before is replaced).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The site's bundle: Harbor's registry storage is checked against its size.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Cluster profile, or a plain k3s/RKE2 config file.
    #[arg(long)]
    pub profile: PathBuf,
    /// Write a corrected copy of the profile to this file.
    #[arg(long)]
    pub fix: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Pull every image of a site spec into one content bundle.
    #[command(after_help = "Examples:
  edgeiso bundle create --spec site.yaml --output build/
  edgeiso bundle create --spec site.yaml --output build/ --locked --part-size 1000000000 --zstd
  SOURCE_DATE_EPOCH=0 edgeiso bundle create --spec site.yaml --output build/   # byte-identical rebuilds")]
    Create(CreateArgs),
    /// Check every checksum, blob digest and manifest reference of a bundle.
    #[command(after_help = "Examples:
  edgeiso bundle verify build/content-store-042.tar
  edgeiso bundle verify build/content-store-042.tar.part000 --json")]
    Verify(VerifyArgs),
    /// List a bundle's images, platforms, sizes and roles.
    #[command(after_help = "Examples:
  edgeiso bundle inspect build/content-store-042.tar
  edgeiso bundle inspect build/content-store-042.tar --json | jq '.images[].reference'")]
    Inspect(InspectArgs),
    /// Turn existing airgap artifacts into a bundle: OCI layouts, OCI archives
    /// (.tar, .tar.gz, .tar.zst; Hauler hauls, vendor bundles) and `docker save` tarballs.
    #[command(after_help = "Examples:
  edgeiso bundle import haul.tar.zst k3s-airgap-images-amd64.tar --output build/ --name store-042
  edgeiso bundle import ./oci-layout-dir --output build/")]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Folder to write `content-NAME.tar` (or its parts) into.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Split the tar into parts of at most this many bytes (`NAME.tar.part000`, ...).
    /// 3 GB (10^9 bytes each is the CanvOS convention; ISO 9660 files must stay under 4 GiB).
    #[arg(long, default_value_t = 3_000_000_000, value_parser = clap::value_parser!(u64).range(1024..))]
    pub part_size: u64,
    /// Also write `NAME.tar.zst` for transport.
    #[arg(long)]
    pub zstd: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The site spec (YAML).
    #[arg(short, long)]
    pub spec: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Use the digests in `edgeiso.lock` beside the spec; fail if an image is not in it.
    #[arg(long)]
    pub locked: bool,
    /// Blob cache folder [default: $XDG_CACHE_HOME/edgeiso or ~/.cache/edgeiso].
    #[arg(long, env = "EDGEISO_CACHE")]
    pub cache: Option<PathBuf>,
    /// Blobs downloaded at once.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle: a tar, its first part, or the tar name whose parts exist.
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// OCI layout folders, OCI archives (.tar/.tar.gz/.tar.zst) or `docker save` tarballs.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Bundle name (the file is `content-NAME.tar`).
    #[arg(long, default_value = "import")]
    pub name: String,
}
