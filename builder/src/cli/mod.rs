//! The command line of `edgeiso`: every clap type in this file, the
//! dispatch (flags turned into each step's checked options) in
//! [`dispatch`], the man pages and completions in [`docs`].

pub mod dispatch;
pub mod docs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use edgeiso_contract::agent_config::parse_duration;

use crate::create::DEFAULT_CONCURRENCY;

pub use dispatch::run;

#[derive(Debug, Parser)]
#[command(
    name = "edgeiso",
    version,
    about = "Put Kubernetes on edge sites that have no network",
    long_about = "edgeiso bundles every image a site needs into one verifiable content bundle, renders the \
site's airgap configuration, and lays both into a bootable installer ISO.",
    after_help = "Exit codes: 0 success, 1 failure, 2 usage error, 3 invalid input (spec, lock, archive), \
4 verification failed, 5 registry refused (unknown image, wrong credentials), \
6 signature refused (unsigned, another key's, or bundle.json changed after signing)."
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
    /// Write the ISO overlay tree: config.yaml, the bundle parts, /edgeiso/
    /// (site files, agent, unit) and the initramfs overlay /boot/edgeiso.img.
    #[command(after_help = "Examples:
  edgeiso overlay --spec site.yaml --output build/overlay
  edgeiso overlay --spec site.yaml --output build/overlay --bundle build/content-store-042.tar --agent ./edgeiso-agent")]
    Overlay(OverlayArgs),
    /// Lay a site onto a base installer ISO (builds the bundle, render output
    /// and overlay it needs), keeping every BIOS/UEFI, CD/USB boot path.
    #[command(after_help = "Examples:
  edgeiso iso --spec site.yaml --base kairos.iso --output build/site.iso
  SOURCE_DATE_EPOCH=1700000000 edgeiso iso --spec site.yaml --base kairos.iso --output build/site.iso --bundle build/content-store-042.tar")]
    Iso(IsoArgs),
    /// The whole chain (bundle, render, overlay, remaster, verify) with one
    /// progress display; writes OUT.iso and OUT.iso.sha256.
    #[command(after_help = "Examples:
  edgeiso build --spec site.yaml --base kairos.iso --output build/palette-edge-installer.iso")]
    Build(IsoArgs),
    /// Make a golden ISO one site's: the site file's settings (names,
    /// network, Harbor address, credentials, users) go into the ISO's site
    /// area, in place, in a time that does not depend on the bundle.
    #[command(after_help = "Examples:
  edgeiso personalize build/golden.iso --site sites/store-042.yaml --output build/store-042.iso
  edgeiso personalize build/store-042.iso --site sites/store-042.yaml --in-place
  edgeiso personalize build/store-042.iso --show          # secrets are never printed
  edgeiso personalize build/store-042.iso --reset         # the golden again

A site file sets only site: (name, hostName, tags, network), harbor: (url, vip, tls,
adminPasswordFile/Env), users: and the credentials of the golden's registries: (host,
username, passwordFile/Env). Exit 3: the site file, or an ISO without a site area.")]
    Personalize(PersonalizeArgs),
    /// Write the small `cidata` ISO (user-data, meta-data; Joliet + Rock
    /// Ridge) that carries site-specific user-data beside the installer ISO.
    #[command(
        name = "site-iso",
        after_help = "Examples:
  edgeiso site-iso --user-data site-user-data.yaml --output build/site.iso"
    )]
    SiteIso(SiteIsoArgs),
    /// Boot an ISO in QEMU and check that the bundle's images arrive in the
    /// registry (and, if given, that a marker line appears on the console).
    #[command(
        name = "boot-test",
        after_help = "Examples:
  edgeiso boot-test build/site.iso --registry http://127.0.0.1:5000 --expect-bundle build/content-s.tar
  edgeiso boot-test build/site.iso --firmware uefi --media usb --timeout 2m --marker 'EDGEISO-AGENT: loaded'
  edgeiso boot-test kairos-site.iso --timeout 45m --forward 30003 --registry https://127.0.0.1:30003 --insecure \\
      --expect-bundle build/content-s.tar --allow-reboot

Passes (exit 0) when every workload image of --expect-bundle is in --registry with the bundle's
digests (every child of an index too) and the --marker line, if given, appeared. Exit 4 lists what
is missing and prints the end of the serial console."
    )]
    BootTest(BootTestArgs),
    /// Check that a site's registry (its Harbor) holds every workload image
    /// of a bundle, with the bundle's digests.
    #[command(after_help = "Examples:
  edgeiso check --bundle build/content-store-042.tar --registry https://10.0.0.5:30003 \\
      --ca build/site/harbor/ca.crt --username admin --password-file harbor.pw
  edgeiso check --bundle build/content-store-042.tar --registry http://127.0.0.1:5000 --json

Checks every manifest of every workload image (an index and each child) under
PROJECT/<source host>/<path>, the top-level one by tag, with the bundle's digests.
Exit codes: 0 all there; 4 some missing or different (each named); 5 the registry
refused the credentials; 1 the registry did not answer; 3 the bundle is unreadable.
The password is read from --password-file, never from the command line.")]
    Check(CheckArgs),
    #[command(flatten)]
    Docs(edgeiso_contract::cli_docs::DocsCommand),
}

/// Where the agent binary comes from.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The static edgeiso-agent to put on the ISO [default: `edgeiso-agent`
    /// beside this executable].
    #[arg(long, env = "EDGEISO_AGENT", value_name = "PATH")]
    pub agent: Option<PathBuf>,
    /// Compression of the initramfs overlay (gzip for kernels before 5.9).
    #[arg(long, value_enum, default_value_t = InitrdCompression::Zstd)]
    pub initrd_compression: InitrdCompression,
    /// Bytes reserved on the ISO for one site's settings (`edgeiso
    /// personalize`): a multiple of 2048, 64 KiB to 64 MiB. Empty, it changes nothing.
    #[arg(long, value_name = "BYTES", default_value_t = edgeiso_contract::site_area::DEFAULT_BYTES, value_parser = parse_site_area_size)]
    pub site_area_size: u64,
}

fn parse_site_area_size(s: &str) -> Result<u64, String> {
    let bytes: u64 = s.parse().map_err(|_| format!("`{s}` is not a number of bytes"))?;
    edgeiso_contract::site_area::check_size(bytes)?;
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitrdCompression {
    Zstd,
    Gzip,
}

/// How the images of a spec are pulled into a bundle (`bundle create`, and
/// `overlay`/`iso`/`build` when they build the bundle).
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Use the digests in `edgeiso.lock` beside the spec; fail if an image is not in it.
    #[arg(long)]
    pub locked: bool,
    /// Blob cache folder [default: $XDG_CACHE_HOME/edgeiso or ~/.cache/edgeiso].
    #[arg(long, env = "EDGEISO_CACHE")]
    pub cache: Option<PathBuf>,
    /// Blobs downloaded at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// How a missing bundle is built.
#[derive(Debug, Clone, Args)]
pub struct BundleBuildArgs {
    /// Use this bundle (a tar, its first part, or the tar name whose parts
    /// exist) instead of building one from the spec. A thin bundle is taken
    /// (the node fetches its blobs from the source registries); a delta is
    /// refused.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub pull: PullArgs,
    #[command(flatten)]
    pub sign: SignKeyArgs,
    /// Bundle parts on the ISO are at most this many bytes (ISO 9660 files stay under 4 GiB).
    #[arg(long, default_value_t = 3_000_000_000, value_parser = clap::value_parser!(u64).range(1024..4_294_967_295))]
    pub part_size: u64,
}

#[derive(Debug, Args)]
pub struct OverlayArgs {
    /// The site spec (YAML).
    #[arg(short, long)]
    pub spec: PathBuf,
    /// Folder to write the overlay tree into (created; only a folder edgeiso wrote before is replaced).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub bundle: BundleBuildArgs,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct IsoArgs {
    /// The site spec (YAML).
    #[arg(short, long)]
    pub spec: PathBuf,
    /// The base installer ISO (never modified).
    #[arg(long)]
    pub base: PathBuf,
    /// The ISO to write (a separate file: never the base).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub bundle: BundleBuildArgs,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Keep the intermediate files (bundle, overlay tree) in this folder
    /// [default: a temporary folder beside the output, removed afterwards].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["site", "show", "reset"])))]
#[command(group(clap::ArgGroup::new("where").args(["in_place", "output"])))]
pub struct PersonalizeArgs {
    /// The golden ISO (built by `edgeiso iso` or `edgeiso build`).
    pub iso: PathBuf,
    /// The site file (YAML: the per-site keys of a site spec).
    #[arg(long, value_name = "FILE", requires = "where")]
    pub site: Option<PathBuf>,
    /// Write into ISO itself.
    #[arg(long)]
    pub in_place: bool,
    /// Write a personalised copy here (ISO is left as it is).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print what the site area holds (secrets are never shown).
    #[arg(long, conflicts_with = "output")]
    pub show: bool,
    /// Empty the site area of ISO itself.
    #[arg(long, conflicts_with = "output")]
    pub reset: bool,
}

#[derive(Debug, Args)]
pub struct SiteIsoArgs {
    /// The site's user-data (cloud-config; first line `#cloud-config`).
    #[arg(long, value_name = "FILE")]
    pub user_data: PathBuf,
    /// meta-data file [default: `instance-id` and `local-hostname` from the output name].
    #[arg(long, value_name = "FILE")]
    pub meta_data: Option<PathBuf>,
    /// The ISO to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct BootTestArgs {
    /// The ISO to boot.
    pub iso: PathBuf,
    /// Firmware: bios (SeaBIOS) or uefi (OVMF).
    #[arg(long, default_value = "bios", value_parser = ["bios", "uefi"])]
    pub firmware: String,
    /// Attach the ISO as a CD-ROM or as a USB disk.
    #[arg(long, default_value = "cd", value_parser = ["cd", "usb"])]
    pub media: String,
    /// Give up after this long (e.g. 2m, 45m).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// The registry the images must arrive in, as seen from this host
    /// (`http://127.0.0.1:PORT`; the guest reaches the host's loopback as 10.0.2.2).
    #[arg(long, value_name = "URL", requires = "expect_bundle")]
    pub registry: Option<String>,
    /// The bundle whose workload images must arrive.
    #[arg(long, value_name = "PATH", requires = "registry")]
    pub expect_bundle: Option<PathBuf>,
    /// Harbor project the images go under.
    #[arg(long, default_value = "spectro-images")]
    pub project: String,
    /// A console line (regular expression) that must appear.
    #[arg(long, value_name = "REGEX")]
    pub marker: Option<String>,
    /// PEM CA to trust for an https registry.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the registry's TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Forward host port to the guest (`30003` or `HOST:GUEST`), e.g. to reach
    /// Harbor's NodePort on an installed Kairos node.
    #[arg(long, value_name = "PORT[:GUEST]")]
    pub forward: Vec<String>,
    /// Let the guest reboot (an installer that reboots into the installed
    /// system); by default a reboot ends the VM.
    #[arg(long)]
    pub allow_reboot: bool,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// Keep the serial console here [default: a file beside the ISO, ISO.boot-test.log].
    #[arg(long, value_name = "FILE")]
    pub serial_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The bundle (a tar, or its first part).
    #[arg(long, value_name = "PATH")]
    pub bundle: PathBuf,
    /// The site's registry: https://NODE_IP:30003 (or http://host:port).
    #[arg(long, value_name = "URL")]
    pub registry: String,
    /// Harbor project the images are under.
    #[arg(long, default_value = edgeiso_contract::agent_config::DEFAULT_PROJECT)]
    pub project: String,
    /// PEM CA to trust for an https registry (render writes harbor/ca.crt).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the registry's TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Registry user [default: admin when a password file is given].
    #[arg(long, value_name = "USER", requires = "password_file")]
    pub username: Option<String>,
    /// File holding the registry password (one line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The site spec (YAML).
    #[arg(short, long)]
    pub spec: PathBuf,
    /// Folder to render into (created; only a folder edgeiso rendered before is replaced).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The site's bundle: Harbor's registry storage is checked against its
    /// size. A thin bundle also gives agent.yaml the registries its blobs
    /// are fetched from (sources:, with their credentials from the spec).
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
  SOURCE_DATE_EPOCH=0 edgeiso bundle create --spec site.yaml --output build/   # byte-identical rebuilds
  edgeiso bundle create --spec site.yaml --output build/thin --thin              # manifests only
  edgeiso bundle create --spec site.yaml --output build/delta --base old/content-store-042.tar

A thin bundle (format version 2) can go on an ISO: overlay/iso/build --bundle give the agent the source
registries its blobs come from (agent.yaml sources:). A delta updates a running site, never an ISO.")]
    Create(CreateArgs),
    /// Check every checksum, blob digest and manifest reference of a bundle.
    #[command(after_help = "Examples:
  edgeiso bundle verify build/content-store-042.tar
  edgeiso bundle verify build/content-store-042.tar.part000 --json
  edgeiso bundle verify build/delta/content-store-042.tar --base old/content-store-042.tar

A thin or delta bundle is checked for what it holds, and every blob it leaves out is listed with
where it is to come from; with --base, the base must be the one the delta was made on and hold each.")]
    Verify(VerifyArgs),
    /// Sign a bundle: ECDSA P-256 over its bundle.json (which pins every
    /// other member), written as `NAME.tar.sig` beside it.
    #[command(after_help = "Examples:
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signing.pem
  openssl pkey -in signing.pem -pubout -out signing.pub
  edgeiso bundle sign build/content-store-042.tar --key signing.pem
  edgeiso bundle verify build/content-store-042.tar --key signing.pub
  EDGEISO_SIGNING_KEY_PASSWORD=... edgeiso bundle sign build/content-store-042.tar.part000 --key encrypted.pem

The signature is base64 of the DER signature, as cosign writes it:
  cosign verify-blob --key signing.pub --signature content-store-042.tar.sig --insecure-ignore-tlog=true bundle.json
  base64 -d content-store-042.tar.sig > sig.der && openssl dgst -sha256 -verify signing.pub -signature sig.der bundle.json")]
    Sign(SignArgs),
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
    #[command(flatten)]
    pub pull: PullArgs,
    #[command(flatten)]
    pub sign: SignKeyArgs,
    /// Write a thin bundle: every manifest and index, but no config or layer
    /// blob (those are to come from the source registries). Not with --base.
    #[arg(long, conflicts_with = "base")]
    pub thin: bool,
    /// Write a delta bundle: leave out every config and layer blob this
    /// earlier (whole) bundle holds; bundle.json records its name and the
    /// sha256 of its bundle.json.
    #[arg(long, value_name = "OLD")]
    pub base: Option<PathBuf>,
}

/// Signing a bundle as it is built (`bundle create`, and the bundle
/// `overlay`/`iso`/`build` build on the way).
#[derive(Debug, Clone, Args)]
pub struct SignKeyArgs {
    /// Sign the bundle as it is written (see `bundle sign`), with this
    /// private key (PKCS#8 PEM, EC P-256). A site with trust.publicKey
    /// needs its bundle signed by the matching key.
    #[arg(long, value_name = "KEY.pem")]
    pub sign_key: Option<PathBuf>,
    /// File holding the password of an encrypted --sign-key (one line). Or
    /// set EDGEISO_SIGNING_KEY_PASSWORD.
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    pub sign_key_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle: a tar, its first part, or the tar name whose parts exist.
    pub bundle: PathBuf,
    /// Also check the bundle's signature (`NAME.tar.sig`) against this
    /// public key (PEM, EC P-256): unsigned, another key's or changed after
    /// signing is exit 6.
    #[arg(long, value_name = "PUB.pem")]
    pub key: Option<PathBuf>,
    /// For a delta bundle: the base it was made on. Its bundle.json must have
    /// the sha256 the delta recorded, and it must hold every blob the delta
    /// leaves out.
    #[arg(long, value_name = "OLD")]
    pub base: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle: a tar, its first part, or the tar name whose parts exist.
    pub bundle: PathBuf,
    /// The private key: PKCS#8 PEM, EC P-256 (`openssl genpkey -algorithm EC
    /// -pkeyopt ec_paramgen_curve:P-256`), encrypted or not.
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// File holding the password of an encrypted key (one line). Or set
    /// EDGEISO_SIGNING_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
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
