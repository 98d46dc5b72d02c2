//! The site spec: one YAML file that describes a site. See `docs/spec.md`.
//!
//! Parsing is two steps: serde-saphyr reads the text into private `Raw*`
//! structs that keep the line and column of the values worth pointing at, then
//! `validate` turns them into the public types, resolving relative paths
//! against the spec file's folder and refusing anything that would only fail
//! later (on the build host, or worse, on the node).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use edgeiso_bundle::ImageRef;
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{Pos, SpecError};
use crate::suggest;

/// Harbor's defaults, as Palette deploys it.
pub const DEFAULT_HARBOR_PROJECT: &str = "spectro-images";
pub const DEFAULT_HARBOR_NODE_PORT: u16 = 30003;
pub const DEFAULT_HARBOR_NAMESPACE: &str = "harbor";
/// The platform an image entry stores when it names none.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

// ---------------------------------------------------------------------------
// Public model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// DNS-label-like site name (`store-042`); used in file names.
    pub name: String,
    /// Images pushed into the site's Harbor by the agent.
    pub images: Vec<ImageSpec>,
    /// Images needed before Harbor runs (imported into containerd at boot).
    pub bootstrap_images: Vec<ImageSpec>,
    pub registries: Vec<RegistrySpec>,
    /// The `stylus.site` block and the other Palette agent settings.
    pub site: SiteSpec,
    pub install: InstallSpec,
    /// OS users created at every boot (`stages.initramfs`).
    pub users: Vec<UserSpec>,
    /// A user-supplied cloud-config deep-merged into the rendered one.
    pub user_data: Option<PathBuf>,
    /// On a conflicting key, the user-data file's value wins instead of failing.
    pub user_data_wins: bool,
    pub harbor: HarborSpec,
    pub kubernetes: KubernetesSpec,
    /// Nodes never fall back to the upstream registries.
    pub airgap_strict: bool,
    /// The edge hosts, when described: render warns when below Palette's minimums.
    pub hardware: Option<HardwareSpec>,
    /// A cluster profile (or k3s/RKE2 config) to lint when rendering.
    pub profile: Option<PathBuf>,
    /// What the ISO's initramfs overlay does with the agent.
    pub agent: AgentSpec,
    /// The file the spec was read from; relative paths in it were resolved
    /// against its folder.
    pub source_path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub reference: ImageRef,
    pub platforms: Platforms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// Every platform the source index offers.
    All,
    /// `linux/amd64`, `linux/arm64/v8`, ...
    List(Vec<String>),
}

impl Default for Platforms {
    fn default() -> Self {
        Platforms::List(vec![DEFAULT_PLATFORM.to_owned()])
    }
}

impl fmt::Display for Platforms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Platforms::All => f.write_str("all"),
            Platforms::List(l) => f.write_str(&l.join(",")),
        }
    }
}

/// What a registry serves, which decides the form of its credential Secret's `url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// An OCI image registry: `url` is the bare host (`docker.io`).
    #[default]
    Image,
    /// A Helm chart repository: `url` is scheme + host (`https://charts.example.com`).
    Helm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    /// `host[:port]`, no scheme, no path (`127.0.0.1:5000`, `docker.io`).
    pub host: String,
    /// Plain HTTP for this host.
    pub insecure: bool,
    /// A PEM CA bundle to trust for this host.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    /// A file holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password (alternative to `password_file`).
    pub password_env: Option<String>,
    /// Write a Palette registry credential Secret with this name.
    pub secret: Option<SecretSpec>,
    pub kind: RegistryKind,
    /// For `kind: helm` only: the scheme given with the host (`https`), if any.
    pub scheme: Option<String>,
    /// The spec file and the place of this entry in it, for later errors
    /// (an unset `passwordEnv` variable).
    pub source_path: PathBuf,
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteSpec {
    /// `stylus.site.name`; the spec's `name` when not given.
    pub name: Option<String>,
    pub host_name: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub network: Option<NetworkSpec>,
    /// PEM files whose contents go into `stylus.site.caCerts`.
    pub ca_certs: Vec<PathBuf>,
    /// Emit the historical `installationMode: airgap` instead of `managementMode: local`.
    pub legacy_agent: bool,
    /// `stylus.imageRedirectWebhook.enable`, when set.
    pub image_redirect_webhook: Option<bool>,
    pub registry_credentials: Option<RegistryCredentialsSpec>,
    pub external_registries: Option<ExternalRegistriesSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
    pub nameserver: Option<String>,
    pub interfaces: BTreeMap<String, InterfaceSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    Dhcp,
    Static { ip_address: IpAddr, mask: String, gateway: Option<IpAddr>, nameserver: Option<IpAddr> },
}

/// `stylus.registryCredentials`: one external registry, credentials taken
/// from the `registries[]` entry of the same host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredentialsSpec {
    pub registry: String,
    /// Appended to the host in `domain` (`10.10.254.254:8000/spectro-images`).
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalRegistriesSpec {
    pub registries: Vec<ExternalRegistrySpec>,
    /// Source prefix -> target prefix.
    pub mapping_rules: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRegistrySpec {
    pub registry: String,
    pub path: Option<String>,
    pub repository_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    /// Target disk, or `auto` (Kairos picks the largest).
    pub device: String,
    pub reboot: bool,
    pub poweroff: bool,
    /// `install.partitions.persistent.size` in MiB; Kairos' default (the rest of the disk) when absent.
    pub persistent_size_mib: Option<u64>,
}

impl Default for InstallSpec {
    fn default() -> Self {
        InstallSpec { device: "auto".into(), reboot: true, poweroff: false, persistent_size_mib: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    /// A file holding the password or, better, a crypt(3) hash (`$6$...`).
    pub password_file: Option<PathBuf>,
    pub groups: Vec<String>,
    pub ssh_authorized_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborSpec {
    /// Where the agent pushes: `https://127.0.0.1:30003` by default.
    pub url: HarborUrl,
    pub project: String,
    pub admin_password_file: Option<PathBuf>,
    pub admin_password_env: Option<String>,
    pub node_port: u16,
    pub vip: Option<IpAddr>,
    pub namespace: String,
    pub storage: HarborStorage,
    pub storage_class: Option<String>,
    pub tls: Option<TlsSpec>,
    pub deployment: HarborDeployment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborUrl {
    /// `https` or `http`.
    pub scheme: String,
    /// Host name or IP address, without brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl HarborUrl {
    /// `host:port` as a registry reference names it (`127.0.0.1:30003`).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

impl fmt::Display for HarborUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HarborStorage {
    pub registry: Option<Size>,
    pub job_service: Option<Size>,
    pub database: Option<Size>,
    pub redis: Option<Size>,
    pub trivy: Option<Size>,
}

/// A Kubernetes quantity (`300Gi`, `500G`, `1Ti`), kept as written and in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub text: String,
    pub bytes: u64,
}

impl Size {
    pub fn parse(text: &str) -> Result<Size, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("`{text}` is not a size like 300Gi or 500G"))?;
        let mult: u64 = match unit {
            "" => 1,
            "k" => 1000,
            "M" => 1000u64.pow(2),
            "G" => 1000u64.pow(3),
            "T" => 1000u64.pow(4),
            "P" => 1000u64.pow(5),
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            "Pi" => 1 << 50,
            _ => return Err(format!("`{text}`: unknown unit `{unit}` (use Ki, Mi, Gi, Ti, Pi or k, M, G, T, P)")),
        };
        let bytes = n.checked_mul(mult).ok_or_else(|| format!("`{text}` is too large"))?;
        Ok(Size { text: t.to_owned(), bytes })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA that signed `cert_file`; nodes trust it. When absent, the
    /// certificate itself is trusted (a self-signed one).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HarborDeployment {
    /// Harbor comes from elsewhere (a pack of the cluster profile).
    #[default]
    External,
    /// A Harbor Helm chart archive, embedded in a k3s/RKE2 `HelmChart`.
    Chart(PathBuf),
    /// A folder of pre-rendered manifests, validated and copied.
    Manifests(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    #[default]
    K3s,
    Rke2,
}

impl Distribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::K3s => "k3s",
            Distribution::Rke2 => "rke2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesSpec {
    pub distribution: Distribution,
}

/// `agent:` of the spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSpec {
    /// `liveLoad`: the ISO's initramfs hook runs the agent in the live
    /// environment, pushing the bundle on the medium into `harbor.url`
    /// (otherwise it only stages the agent).
    pub live_load: bool,
    /// `liveKernelArgs`: kernel arguments `edgeiso iso`/`build` append to
    /// every boot entry of the ISO when `live_load` is on, so the live
    /// initramfs brings the network up for the load (dracut does so only
    /// when the command line asks). [`DEFAULT_LIVE_KERNEL_ARGS`] unless the
    /// spec says otherwise; always empty when `live_load` is off.
    pub live_kernel_args: Vec<String>,
}

/// `agent.liveKernelArgs` when the spec does not set it and `liveLoad` is on:
/// dracut's network-online wait and DHCP on every interface.
pub const DEFAULT_LIVE_KERNEL_ARGS: [&str; 2] = ["rd.neednet=1", "ip=dhcp"];

/// Whether `arg` can be added to a boot entry's kernel line: the boot-config
/// patcher's own rule (one word GRUB and isolinux pass on unchanged).
pub use edgeiso_overlay::bootcfg::check_kernel_arg;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardwareSpec {
    pub nodes: u32,
    pub cpus: Option<u32>,
    pub memory_gib: Option<u32>,
    pub disk_gib: Option<u32>,
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

impl Spec {
    /// Read and validate the spec at `path`.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            what: "site spec",
            path: path.to_owned(),
            source,
        })?;
        Spec::from_str(&text, path)
    }

    /// Parse `text` as if read from `path` (which names the file in errors and
    /// anchors relative paths).
    #[allow(clippy::should_implement_trait)] // needs the path; FromStr cannot carry it
    pub fn from_str(text: &str, path: &Path) -> Result<Spec, SpecError> {
        let raw: RawSpec = parse_yaml(text, path)?;
        Validator { file: path, base: base_dir(path) }.spec(raw)
    }

    /// The `registries[]` entry for `host` (`index.docker.io` finds `docker.io`).
    pub fn registry(&self, host: &str) -> Option<&RegistrySpec> {
        let want = canonical_host(host);
        self.registries.iter().find(|r| canonical_host(&r.host) == want)
    }

    /// Every image of the bundle: workload images first, then bootstrap ones.
    pub fn all_images(&self) -> impl Iterator<Item = &ImageSpec> {
        self.images.iter().chain(&self.bootstrap_images)
    }
}

impl RegistrySpec {
    /// The password from `passwordFile` (trailing newline dropped) or
    /// `passwordEnv`; `None` when the entry gives neither. Errors name the
    /// file or variable, never the content.
    pub fn read_password(&self) -> Result<Option<String>, SpecError> {
        if let Some(path) = &self.password_file {
            return read_secret_file(path, "password file").map(Some);
        }
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                _ => Err(SpecError::Invalid {
                    file: self.source_path.clone(),
                    pos: self.pos,
                    message: format!("environment variable {var} (passwordEnv of registry {}) is not set", self.host),
                }),
            };
        }
        Ok(None)
    }

    /// The `url` of this registry's Palette credential Secret: the bare host
    /// for an image registry, scheme + host for a Helm repository.
    pub fn secret_url(&self) -> String {
        match self.kind {
            RegistryKind::Image => self.host.clone(),
            RegistryKind::Helm => {
                let scheme = self.scheme.clone().unwrap_or_else(|| if self.insecure { "http" } else { "https" }.into());
                format!("{scheme}://{}", self.host)
            }
        }
    }
}

/// Read a small file holding a secret: the trailing newline is dropped, an
/// empty file is an error. The content never appears in an error.
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<String, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::Read { what, path: path.to_owned(), source })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| SpecError::invalid(path, None, format!("the {what} is not UTF-8 text")))?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        return Err(SpecError::invalid(path, None, format!("the {what} is empty")));
    }
    Ok(text)
}

/// docker's aliases of Docker Hub all mean `docker.io`; hosts compare case-insensitively.
pub(crate) fn canonical_host(host: &str) -> String {
    let h = host.to_ascii_lowercase();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => h,
    }
}

fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Parse YAML into `T`, turning serde-saphyr's error into a `SpecError` that
/// names the file, line and column, and suggests the nearest known key.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, SpecError> {
    serde_saphyr::from_str(text).map_err(|e| yaml_error(path, &e))
}

/// Like `yaml_error`, without the snippet of source lines: for files that may
/// hold secrets (user-data, manifests, profiles), whose lines must not reach logs.
pub(crate) fn yaml_error_quiet(path: &Path, e: &serde_saphyr::Error) -> SpecError {
    match yaml_error(path, e) {
        SpecError::Yaml { file, pos, message, hint, .. } => SpecError::Yaml { file, pos, message, hint, snippet: None },
        other => other,
    }
}

pub(crate) fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> SpecError {
    let bare = e.without_snippet();
    let pos = e.location().as_ref().and_then(Pos::of);
    let mut message = bare.to_string();
    // The location-less Display appends " at line L, column C": we print our own.
    if let Some(i) = message.rfind(" at line ") {
        if message[i..].contains("column") {
            message.truncate(i);
        }
    }
    // A developer-facing hint we do not want to show a site author.
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    let unknown = match bare {
        serde_saphyr::Error::SerdeUnknownField { field, expected, .. } => {
            Some((field.clone(), expected.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        }
        _ => suggest::parse_unknown_field(&message),
    };
    let suggestion = unknown
        .as_ref()
        .and_then(|(field, expected)| suggest::did_you_mean(field, expected.iter().map(String::as_str)));
    let hint = suggestion.map(|k| format!("did you mean `{k}`?"));
    // A misspelt password key (`pasword:`) holds a password: its value is
    // redacted like that of any key that looks like it holds a secret.
    let also_secret = unknown.as_ref().map(|(f, _)| f.as_str()).filter(|f| {
        suggestion.is_some_and(is_secret_key)
            || suggest::did_you_mean(f, ["password", "passwd", "secret", "token", "apiKey"]).is_some()
    });
    let name = path.display().to_string();
    let rendered = e.render_with_options(serde_saphyr::render_options! { source_name: Some(name.as_str()) });
    // First line repeats the message; the rest is ` --> file:l:c` and the source lines.
    let snippet = rendered
        .split_once('\n')
        .map(|(_, s)| s.trim_end().replace(", set DuplicateKeyPolicy in Options if acceptable", ""))
        .map(|s| redact_snippet(&s, also_secret))
        .filter(|s| !s.is_empty());
    SpecError::Yaml { file: path.to_owned(), pos, message, hint, snippet }
}

/// Does a key's name suggest its value is a secret (password, token, key)?
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "credential", "auth"].iter().any(|w| k.contains(w))
}

/// The snippet's source lines (`N | text`) with the values of secret-looking
/// keys (and of `also`, a misspelt secret key) replaced by `<redacted>`.
fn redact_snippet(snippet: &str, also: Option<&str>) -> String {
    snippet
        .lines()
        .map(|line| match line.split_once(" | ") {
            Some((n, text)) if !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()) => {
                format!("{n} | {}", redact_line(text, also))
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Redact the values of secret-looking keys on one YAML line, block
/// (`password: x`) or flow (`{password: x, y: z}`) form.
pub(crate) fn redact_line(text: &str, also: Option<&str>) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0; // copied up to here
    let mut depth = 0usize; // open `{`/`[` seen so far
    let mut key_start = 0;
    let mut j = 0;
    while j < b.len() {
        match b[j] {
            b'{' | b'[' => {
                depth += 1;
                key_start = j + 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' | b' ' | b'-' => key_start = j + 1,
            b'#' if j == 0 || b[j - 1] == b' ' => break,
            b':' if b.get(j + 1).is_none_or(|c| *c == b' ') => {
                let key = text[key_start..j].trim().trim_matches(|c| c == '"' || c == '\'');
                if !key.is_empty() && (is_secret_key(key) || also == Some(key)) {
                    // The value: a quoted scalar to its closing quote, else to
                    // the next `,`/`}`/`]` inside a flow collection or the end.
                    let mut s = j + 1;
                    while s < b.len() && b[s] == b' ' {
                        s += 1;
                    }
                    let end = match b.get(s) {
                        Some(q @ (b'"' | b'\'')) => text[s + 1..].find(*q as char).map_or(b.len(), |e| s + 1 + e + 1),
                        Some(_) if depth > 0 => text[s..].find([',', '}', ']']).map_or(b.len(), |e| s + e),
                        Some(_) => b.len(),
                        None => s,
                    };
                    if end > s {
                        out.push_str(&text[i..s]);
                        out.push_str("<redacted>");
                        i = end;
                        j = end;
                        key_start = end;
                        continue;
                    }
                }
                key_start = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    out.push_str(&text[i..]);
    out
}

// ---------------------------------------------------------------------------
// Raw (as written) forms
// ---------------------------------------------------------------------------

type Sp<T> = Spanned<T>;

fn pos<T>(s: &Sp<T>) -> Option<Pos> {
    Pos::of(&s.referenced)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    name: Sp<String>,
    #[serde(default)]
    images: Vec<Sp<RawImage>>,
    #[serde(default)]
    bootstrap_images: Vec<Sp<RawImage>>,
    #[serde(default)]
    registries: Vec<Sp<RawRegistry>>,
    #[serde(default)]
    site: Option<RawSite>,
    #[serde(default)]
    install: Option<Sp<RawInstall>>,
    #[serde(default)]
    users: Vec<Sp<RawUser>>,
    #[serde(default)]
    user_data: Option<Sp<String>>,
    #[serde(default)]
    user_data_wins: bool,
    #[serde(default)]
    harbor: Option<Sp<RawHarbor>>,
    #[serde(default)]
    kubernetes: Option<RawKubernetes>,
    #[serde(default)]
    airgap_strict: bool,
    #[serde(default)]
    hardware: Option<Sp<RawHardware>>,
    #[serde(default)]
    profile: Option<Sp<String>>,
    #[serde(default)]
    agent: Option<RawAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAgent {
    #[serde(default)]
    live_load: bool,
    #[serde(default)]
    live_kernel_args: Option<Sp<Vec<Sp<String>>>>,
}

/// An image entry: a reference string, or `{ref, platforms}`.
struct RawImage {
    reference: String,
    platforms: Option<RawPlatforms>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImageLong {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    platforms: Option<RawPlatforms>,
}

impl<'de> Deserialize<'de> for RawImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawImage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an image reference, or a mapping with `ref` and `platforms`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawImage, E> {
                Ok(RawImage { reference: s.to_owned(), platforms: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<RawImage, A::Error> {
                let long = RawImageLong::deserialize(MapAccessDeserializer::new(a))?;
                Ok(RawImage { reference: long.reference, platforms: long.platforms })
            }
        }
        d.deserialize_any(V)
    }
}

enum RawPlatforms {
    All,
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RawPlatforms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPlatforms;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`all` or a list of platforms like [linux/amd64, linux/arm64]")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawPlatforms, E> {
                if s == "all" {
                    Ok(RawPlatforms::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(s), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawPlatforms, A::Error> {
                let mut v = Vec::new();
                while let Some(p) = a.next_element::<String>()? {
                    v.push(p);
                }
                Ok(RawPlatforms::List(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRegistry {
    host: Sp<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    ca_file: Option<Sp<String>>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_file: Option<Sp<String>>,
    #[serde(default)]
    password_env: Option<String>,
    /// Refused with a clear message: passwords never appear in the spec.
    #[serde(default)]
    password: Option<Sp<de::IgnoredAny>>,
    #[serde(default)]
    secret: Option<Sp<RawSecret>>,
    #[serde(default)]
    kind: RegistryKind,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSite {
    #[serde(default)]
    name: Option<Sp<String>>,
    #[serde(default)]
    host_name: Option<Sp<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    network: Option<RawNetwork>,
    #[serde(default)]
    ca_certs: Vec<Sp<String>>,
    #[serde(default)]
    legacy_agent: bool,
    #[serde(default)]
    image_redirect_webhook: Option<bool>,
    #[serde(default)]
    registry_credentials: Option<Sp<RawRegistryCredentials>>,
    #[serde(default)]
    external_registries: Option<RawExternalRegistries>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNetwork {
    #[serde(default)]
    http_proxy: Option<Sp<String>>,
    #[serde(default)]
    https_proxy: Option<Sp<String>>,
    #[serde(default)]
    no_proxy: Option<String>,
    #[serde(default)]
    nameserver: Option<Sp<String>>,
    #[serde(default)]
    interfaces: BTreeMap<String, Sp<RawInterface>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawInterface {
    #[serde(rename = "type")]
    kind: InterfaceKind,
    #[serde(default)]
    ip_address: Option<String>,
    #[serde(default)]
    mask: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    nameserver: Option<String>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum InterfaceKind {
    Static,
    Dhcp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRegistryCredentials {
    registry: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExternalRegistries {
    registries: Vec<Sp<RawExternalRegistry>>,
    #[serde(default)]
    mapping_rules: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExternalRegistry {
    registry: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    repository_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawInstall {
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    reboot: Option<bool>,
    #[serde(default)]
    poweroff: Option<bool>,
    #[serde(default, rename = "persistentSizeMiB")]
    persistent_size_mib: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawUser {
    name: String,
    #[serde(default)]
    password_file: Option<Sp<String>>,
    #[serde(default)]
    password: Option<Sp<de::IgnoredAny>>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    ssh_authorized_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHarbor {
    #[serde(default)]
    url: Option<Sp<String>>,
    #[serde(default)]
    project: Option<Sp<String>>,
    #[serde(default)]
    admin_password_file: Option<Sp<String>>,
    #[serde(default)]
    admin_password_env: Option<String>,
    #[serde(default)]
    admin_password: Option<Sp<de::IgnoredAny>>,
    #[serde(default)]
    node_port: Option<Sp<u16>>,
    #[serde(default)]
    vip: Option<Sp<String>>,
    #[serde(default)]
    namespace: Option<Sp<String>>,
    #[serde(default)]
    storage: Option<RawStorage>,
    #[serde(default)]
    storage_class: Option<String>,
    #[serde(default)]
    tls: Option<Sp<RawTls>>,
    #[serde(default)]
    chart: Option<Sp<String>>,
    #[serde(default)]
    manifests: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStorage {
    #[serde(default)]
    registry: Option<Sp<String>>,
    #[serde(default)]
    job_service: Option<Sp<String>>,
    #[serde(default)]
    database: Option<Sp<String>>,
    #[serde(default)]
    redis: Option<Sp<String>>,
    #[serde(default)]
    trivy: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTls {
    cert_file: Sp<String>,
    key_file: Sp<String>,
    #[serde(default)]
    ca_file: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawKubernetes {
    #[serde(default)]
    distribution: Distribution,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHardware {
    #[serde(default)]
    nodes: Option<u32>,
    #[serde(default)]
    cpus: Option<u32>,
    #[serde(default, rename = "memoryGiB")]
    memory_gib: Option<u32>,
    #[serde(default, rename = "diskGiB")]
    disk_gib: Option<u32>,
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

struct Validator<'a> {
    file: &'a Path,
    base: PathBuf,
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    File,
    Dir,
}

impl Validator<'_> {
    fn err(&self, pos: Option<Pos>, message: impl Into<String>) -> SpecError {
        SpecError::invalid(self.file, pos, message)
    }

    /// Resolve a path against the spec's folder and check it exists.
    fn path(&self, s: &Sp<String>, key: &str, want: Want) -> Result<PathBuf, SpecError> {
        if s.value.trim().is_empty() {
            return Err(self.err(pos(s), format!("{key} is empty")));
        }
        let p = Path::new(&s.value);
        let p = if p.is_absolute() { p.to_owned() } else { self.base.join(p) };
        let ok = match want {
            Want::File => p.is_file(),
            Want::Dir => p.is_dir(),
        };
        if !ok {
            let kind = if want == Want::File { "file" } else { "folder" };
            return Err(self.err(pos(s), format!("{key}: no such {kind}: {}", p.display())));
        }
        Ok(p)
    }

    fn spec(&self, raw: RawSpec) -> Result<Spec, SpecError> {
        let name = raw.name.value.clone();
        if let Err(why) = check_dns_label(&name) {
            return Err(self.err(pos(&raw.name), format!("name `{name}` {why}")));
        }

        let mut seen: HashMap<ImageRef, (Option<Pos>, &'static str)> = HashMap::new();
        let images = self.images(&raw.images, "images", &mut seen)?;
        let bootstrap_images = self.images(&raw.bootstrap_images, "bootstrapImages", &mut seen)?;

        let mut registries: Vec<RegistrySpec> = Vec::new();
        let mut registry_pos: HashMap<String, Option<Pos>> = HashMap::new();
        let mut secret_names: HashMap<String, Option<Pos>> = HashMap::new();
        for r in &raw.registries {
            let reg = self.registry(r)?;
            let key = canonical_host(&reg.host);
            if let Some(first) = registry_pos.get(&key) {
                return Err(self.err(
                    pos(&r.value.host),
                    format!("registry {} is listed twice (first at {})", reg.host, fmt_pos(*first)),
                ));
            }
            registry_pos.insert(key, pos(&r.value.host));
            if let (Some(s), Some(sp)) = (&reg.secret, &r.value.secret) {
                if let Some(first) = secret_names.insert(s.name.clone(), pos(sp)) {
                    return Err(self.err(
                        pos(sp),
                        format!("secret name `{}` is used twice (first at {})", s.name, fmt_pos(first)),
                    ));
                }
            }
            registries.push(reg);
        }

        let site = match raw.site {
            Some(s) => self.site(s, &registries)?,
            None => SiteSpec::default(),
        };
        let install = match raw.install {
            Some(i) => self.install(&i)?,
            None => InstallSpec::default(),
        };
        let mut users = Vec::new();
        for u in &raw.users {
            users.push(self.user(u)?);
        }
        let user_data = raw.user_data.as_ref().map(|p| self.path(p, "userData", Want::File)).transpose()?;
        let harbor = self.harbor(raw.harbor.as_ref())?;
        let kubernetes = KubernetesSpec { distribution: raw.kubernetes.map(|k| k.distribution).unwrap_or_default() };
        let hardware = raw
            .hardware
            .as_ref()
            .map(|h| {
                let nodes = h.value.nodes.unwrap_or(1);
                if nodes == 0 {
                    return Err(self.err(pos(h), "hardware.nodes must be at least 1"));
                }
                Ok(HardwareSpec {
                    nodes,
                    cpus: h.value.cpus,
                    memory_gib: h.value.memory_gib,
                    disk_gib: h.value.disk_gib,
                })
            })
            .transpose()?;
        let profile = raw.profile.as_ref().map(|p| self.path(p, "profile", Want::File)).transpose()?;

        Ok(Spec {
            name,
            images,
            bootstrap_images,
            registries,
            site,
            install,
            users,
            user_data,
            user_data_wins: raw.user_data_wins,
            harbor,
            kubernetes,
            airgap_strict: raw.airgap_strict,
            hardware,
            profile,
            agent: self.agent(raw.agent.as_ref())?,
            source_path: self.file.to_owned(),
        })
    }

    fn agent(&self, raw: Option<&RawAgent>) -> Result<AgentSpec, SpecError> {
        let Some(raw) = raw else { return Ok(AgentSpec::default()) };
        let live_kernel_args = match (&raw.live_kernel_args, raw.live_load) {
            (None, true) => DEFAULT_LIVE_KERNEL_ARGS.map(String::from).to_vec(),
            (None, false) => Vec::new(),
            (Some(list), false) => {
                return Err(self.err(
                    pos(list),
                    "agent.liveKernelArgs is set but agent.liveLoad is not true: the arguments are only added to \
                     the boot entries for the live load (they bring the network up in the live initramfs); set \
                     liveLoad: true or remove liveKernelArgs",
                ))
            }
            (Some(list), true) => {
                let mut seen: HashMap<&str, Option<Pos>> = HashMap::new();
                let mut out = Vec::with_capacity(list.value.len());
                for arg in &list.value {
                    check_kernel_arg(&arg.value)
                        .map_err(|why| self.err(pos(arg), format!("agent.liveKernelArgs: {:?} {why}", arg.value)))?;
                    if let Some(first) = seen.insert(&arg.value, pos(arg)) {
                        return Err(self.err(
                            pos(arg),
                            format!(
                                "agent.liveKernelArgs: {} is listed twice (first at {})",
                                arg.value,
                                fmt_pos(first)
                            ),
                        ));
                    }
                    out.push(arg.value.clone());
                }
                out
            }
        };
        Ok(AgentSpec { live_load: raw.live_load, live_kernel_args })
    }

    fn images(
        &self,
        raw: &[Sp<RawImage>],
        list: &'static str,
        seen: &mut HashMap<ImageRef, (Option<Pos>, &'static str)>,
    ) -> Result<Vec<ImageSpec>, SpecError> {
        let mut out = Vec::with_capacity(raw.len());
        for entry in raw {
            let at = pos(entry);
            let reference =
                ImageRef::parse(&entry.value.reference).map_err(|e| self.err(at, format!("{list}: {e}")))?;
            if let Some((first, first_list)) = seen.get(&reference) {
                return Err(self.err(
                    at,
                    format!(
                        "{list}: `{}` is listed twice: here and at {} ({first_list}){}",
                        entry.value.reference,
                        fmt_pos(*first),
                        if entry.value.reference == reference.as_str() {
                            String::new()
                        } else {
                            format!("; both mean `{reference}`")
                        }
                    ),
                ));
            }
            seen.insert(reference.clone(), (at, list));
            let platforms = match &entry.value.platforms {
                None => Platforms::default(),
                Some(RawPlatforms::All) => Platforms::All,
                Some(RawPlatforms::List(l)) => {
                    if l.is_empty() {
                        return Err(self.err(at, format!("{list}: `{reference}`: platforms is empty")));
                    }
                    for p in l {
                        if !is_platform(p) {
                            return Err(self.err(
                                at,
                                format!(
                                    "{list}: `{reference}`: `{p}` is not a platform like linux/amd64 or linux/arm64/v8"
                                ),
                            ));
                        }
                    }
                    let mut l = l.clone();
                    l.dedup();
                    Platforms::List(l)
                }
            };
            out.push(ImageSpec { reference, platforms });
        }
        Ok(out)
    }

    fn registry(&self, r: &Sp<RawRegistry>) -> Result<RegistrySpec, SpecError> {
        let raw = &r.value;
        let at = pos(&raw.host);
        let mut host = raw.host.value.trim().to_owned();
        let mut scheme = None;
        if let Some((s, rest)) = host.split_once("://") {
            if raw.kind == RegistryKind::Image {
                return Err(self.err(
                    at,
                    format!(
                        "registry host `{host}` has a scheme: write the bare host `{}` (and `insecure: true` for plain HTTP)",
                        rest.trim_end_matches('/')
                    ),
                ));
            }
            if s != "https" && s != "http" {
                return Err(self.err(at, format!("helm registry `{host}`: scheme must be https or http")));
            }
            scheme = Some(s.to_owned());
            host = rest.trim_end_matches('/').to_owned();
        }
        check_host(&host).map_err(|why| self.err(at, format!("registry host `{host}` {why}")))?;
        if let Some(p) = &raw.password {
            return Err(self.err(
                pos(p),
                format!("registry {host}: passwords never go in the spec; use passwordFile (a file) or passwordEnv (a variable)"),
            ));
        }
        let ca_file = raw.ca_file.as_ref().map(|p| self.path(p, "caFile", Want::File)).transpose()?;
        let password_file = raw.password_file.as_ref().map(|p| self.path(p, "passwordFile", Want::File)).transpose()?;
        if password_file.is_some() && raw.password_env.is_some() {
            return Err(self.err(pos(r), format!("registry {host}: give passwordFile or passwordEnv, not both")));
        }
        let has_password = password_file.is_some() || raw.password_env.is_some();
        match (&raw.username, has_password) {
            (Some(_), false) => {
                return Err(self.err(pos(r), format!("registry {host}: username needs passwordFile or passwordEnv")))
            }
            (None, true) => {
                return Err(self.err(pos(r), format!("registry {host}: a password needs a username")));
            }
            _ => {}
        }
        if let Some(v) = &raw.password_env {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err(pos(r), format!("registry {host}: passwordEnv `{v}` is not a variable name")));
            }
        }
        let secret = match &raw.secret {
            Some(s) => {
                check_dns_subdomain(&s.value.name)
                    .map_err(|why| self.err(pos(s), format!("secret name `{}` {why}", s.value.name)))?;
                if raw.username.is_none() {
                    return Err(self.err(
                        pos(s),
                        format!(
                            "registry {host}: a credential Secret needs username and passwordFile (or passwordEnv)"
                        ),
                    ));
                }
                Some(SecretSpec { name: s.value.name.clone() })
            }
            None => None,
        };
        Ok(RegistrySpec {
            host,
            insecure: raw.insecure,
            ca_file,
            username: raw.username.clone(),
            password_file,
            password_env: raw.password_env.clone(),
            secret,
            kind: raw.kind,
            scheme,
            source_path: self.file.to_owned(),
            pos: pos(r),
        })
    }

    fn site(&self, raw: RawSite, registries: &[RegistrySpec]) -> Result<SiteSpec, SpecError> {
        let known = |host: &str, at: Option<Pos>, key: &str| -> Result<String, SpecError> {
            let want = canonical_host(host);
            match registries.iter().find(|r| canonical_host(&r.host) == want) {
                Some(r) if r.username.is_some() => Ok(r.host.clone()),
                Some(_) => Err(self.err(at, format!("{key}: registry {host} has no username/passwordFile"))),
                None => {
                    Err(self.err(at, format!("{key}: {host} is not one of registries[] (credentials come from there)")))
                }
            }
        };
        if let Some(n) = &raw.name {
            if n.value.trim().is_empty() {
                return Err(self.err(pos(n), "site.name is empty"));
            }
        }
        if let Some(h) = &raw.host_name {
            check_dns_label(&h.value).map_err(|why| self.err(pos(h), format!("site.hostName `{}` {why}", h.value)))?;
        }
        let network = raw.network.map(|n| self.network(n)).transpose()?;
        let ca_certs =
            raw.ca_certs.iter().map(|p| self.path(p, "site.caCerts", Want::File)).collect::<Result<_, _>>()?;
        let registry_credentials = raw
            .registry_credentials
            .as_ref()
            .map(|rc| {
                let registry = known(&rc.value.registry, pos(rc), "site.registryCredentials")?;
                Ok::<_, SpecError>(RegistryCredentialsSpec { registry, path: rc.value.path.clone() })
            })
            .transpose()?;
        let external_registries = raw
            .external_registries
            .map(|er| {
                let mut list = Vec::new();
                for r in &er.registries {
                    let registry = known(&r.value.registry, pos(r), "site.externalRegistries")?;
                    list.push(ExternalRegistrySpec {
                        registry,
                        path: r.value.path.clone(),
                        repository_name: r.value.repository_name.clone(),
                    });
                }
                Ok::<_, SpecError>(ExternalRegistriesSpec { registries: list, mapping_rules: er.mapping_rules })
            })
            .transpose()?;
        Ok(SiteSpec {
            name: raw.name.map(|n| n.value),
            host_name: raw.host_name.map(|h| h.value),
            tags: raw.tags,
            network,
            ca_certs,
            legacy_agent: raw.legacy_agent,
            image_redirect_webhook: raw.image_redirect_webhook,
            registry_credentials,
            external_registries,
        })
    }

    fn network(&self, raw: RawNetwork) -> Result<NetworkSpec, SpecError> {
        for (key, v) in [("httpProxy", &raw.http_proxy), ("httpsProxy", &raw.https_proxy)] {
            if let Some(v) = v {
                if !(v.value.starts_with("http://") || v.value.starts_with("https://")) {
                    return Err(self.err(pos(v), format!("site.network.{key} must be an http:// or https:// URL")));
                }
            }
        }
        if let Some(ns) = &raw.nameserver {
            ns.value.parse::<IpAddr>().map_err(|_| {
                self.err(pos(ns), format!("site.network.nameserver `{}` is not an IP address", ns.value))
            })?;
        }
        let mut interfaces = BTreeMap::new();
        for (nic, i) in raw.interfaces {
            let at = pos(&i);
            let ip = |key: &str, v: &Option<String>| -> Result<Option<IpAddr>, SpecError> {
                v.as_ref()
                    .map(|s| {
                        s.parse::<IpAddr>().map_err(|_| {
                            self.err(at, format!("site.network.interfaces.{nic}.{key} `{s}` is not an IP address"))
                        })
                    })
                    .transpose()
            };
            let spec = match i.value.kind {
                InterfaceKind::Dhcp => {
                    if i.value.ip_address.is_some() || i.value.mask.is_some() || i.value.gateway.is_some() {
                        return Err(self.err(
                            at,
                            format!("site.network.interfaces.{nic}: type dhcp takes no ipAddress, mask or gateway"),
                        ));
                    }
                    InterfaceSpec::Dhcp
                }
                InterfaceKind::Static => {
                    let ip_address = ip("ipAddress", &i.value.ip_address)?.ok_or_else(|| {
                        self.err(at, format!("site.network.interfaces.{nic}: type static needs ipAddress"))
                    })?;
                    let mask = i.value.mask.clone().ok_or_else(|| {
                        self.err(at, format!("site.network.interfaces.{nic}: type static needs mask"))
                    })?;
                    if !is_mask(&mask, ip_address) {
                        return Err(self.err(
                            at,
                            format!("site.network.interfaces.{nic}.mask `{mask}`: give a prefix length for the address (IPv4 0-32, IPv6 0-128) or a dotted IPv4 mask (255.255.255.0)"),
                        ));
                    }
                    InterfaceSpec::Static {
                        ip_address,
                        mask,
                        gateway: ip("gateway", &i.value.gateway)?,
                        nameserver: ip("nameserver", &i.value.nameserver)?,
                    }
                }
            };
            interfaces.insert(nic, spec);
        }
        Ok(NetworkSpec {
            http_proxy: raw.http_proxy.map(|v| v.value),
            https_proxy: raw.https_proxy.map(|v| v.value),
            no_proxy: raw.no_proxy,
            nameserver: raw.nameserver.map(|v| v.value),
            interfaces,
        })
    }

    fn install(&self, raw: &Sp<RawInstall>) -> Result<InstallSpec, SpecError> {
        let d = InstallSpec::default();
        let i = &raw.value;
        let reboot = i.reboot.unwrap_or(i.poweroff != Some(true) && d.reboot);
        let poweroff = i.poweroff.unwrap_or(d.poweroff);
        if reboot && poweroff {
            return Err(self.err(pos(raw), "install: reboot and poweroff cannot both be true"));
        }
        let device = i.device.clone().unwrap_or(d.device);
        if device != "auto" && !device.starts_with("/dev/") {
            return Err(self.err(pos(raw), format!("install.device `{device}` must be `auto` or a /dev/ path")));
        }
        Ok(InstallSpec { device, reboot, poweroff, persistent_size_mib: i.persistent_size_mib })
    }

    fn user(&self, raw: &Sp<RawUser>) -> Result<UserSpec, SpecError> {
        let u = &raw.value;
        let valid = !u.name.is_empty()
            && u.name.len() <= 32
            && u.name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && u.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(self.err(pos(raw), format!("users: `{}` is not a valid user name", u.name)));
        }
        if let Some(p) = &u.password {
            return Err(self.err(
                pos(p),
                format!("users: {}: passwords never go in the spec; use passwordFile (a crypt hash is best)", u.name),
            ));
        }
        Ok(UserSpec {
            name: u.name.clone(),
            password_file: u.password_file.as_ref().map(|p| self.path(p, "passwordFile", Want::File)).transpose()?,
            groups: u.groups.clone(),
            ssh_authorized_keys: u.ssh_authorized_keys.clone(),
        })
    }

    fn harbor(&self, raw: Option<&Sp<RawHarbor>>) -> Result<HarborSpec, SpecError> {
        let empty;
        let (h, at) = match raw {
            Some(h) => (&h.value, pos(h)),
            None => {
                empty = RawHarbor::empty();
                (&empty, None)
            }
        };
        let node_port = match &h.node_port {
            Some(p) => {
                if !(30000..=32767).contains(&p.value) {
                    return Err(self.err(pos(p), format!("harbor.nodePort {} is outside 30000-32767", p.value)));
                }
                p.value
            }
            None => DEFAULT_HARBOR_NODE_PORT,
        };
        let url = match &h.url {
            Some(u) => {
                parse_url(&u.value).map_err(|why| self.err(pos(u), format!("harbor.url `{}` {why}", u.value)))?
            }
            None => HarborUrl { scheme: "https".into(), host: "127.0.0.1".into(), port: Some(node_port) },
        };
        let project = match &h.project {
            Some(p) => {
                check_project(&p.value)
                    .map_err(|why| self.err(pos(p), format!("harbor.project `{}` {why}", p.value)))?;
                p.value.clone()
            }
            None => DEFAULT_HARBOR_PROJECT.to_owned(),
        };
        if let Some(p) = &h.admin_password {
            return Err(self.err(
                pos(p),
                "harbor: the admin password never goes in the spec; use adminPasswordFile or adminPasswordEnv",
            ));
        }
        let admin_password_file =
            h.admin_password_file.as_ref().map(|p| self.path(p, "harbor.adminPasswordFile", Want::File)).transpose()?;
        if admin_password_file.is_some() && h.admin_password_env.is_some() {
            return Err(self.err(at, "harbor: give adminPasswordFile or adminPasswordEnv, not both"));
        }
        let vip = h
            .vip
            .as_ref()
            .map(|v| {
                v.value
                    .parse::<IpAddr>()
                    .map_err(|_| self.err(pos(v), format!("harbor.vip `{}` is not an IP address", v.value)))
            })
            .transpose()?;
        let namespace = match &h.namespace {
            Some(n) => {
                check_dns_label(&n.value)
                    .map_err(|why| self.err(pos(n), format!("harbor.namespace `{}` {why}", n.value)))?;
                n.value.clone()
            }
            None => DEFAULT_HARBOR_NAMESPACE.to_owned(),
        };
        let size = |v: &Option<Sp<String>>, key: &str| -> Result<Option<Size>, SpecError> {
            v.as_ref()
                .map(|s| Size::parse(&s.value).map_err(|why| self.err(pos(s), format!("harbor.storage.{key}: {why}"))))
                .transpose()
        };
        let storage = match &h.storage {
            Some(s) => HarborStorage {
                registry: size(&s.registry, "registry")?,
                job_service: size(&s.job_service, "jobService")?,
                database: size(&s.database, "database")?,
                redis: size(&s.redis, "redis")?,
                trivy: size(&s.trivy, "trivy")?,
            },
            None => HarborStorage::default(),
        };
        let tls = h
            .tls
            .as_ref()
            .map(|t| {
                Ok::<_, SpecError>(TlsSpec {
                    cert_file: self.path(&t.value.cert_file, "harbor.tls.certFile", Want::File)?,
                    key_file: self.path(&t.value.key_file, "harbor.tls.keyFile", Want::File)?,
                    ca_file: t
                        .value
                        .ca_file
                        .as_ref()
                        .map(|p| self.path(p, "harbor.tls.caFile", Want::File))
                        .transpose()?,
                })
            })
            .transpose()?;
        let deployment = match (&h.chart, &h.manifests) {
            (Some(c), Some(_)) => {
                return Err(self.err(pos(c), "harbor: give chart or manifests, not both"));
            }
            (Some(c), None) => HarborDeployment::Chart(self.path(c, "harbor.chart", Want::File)?),
            (None, Some(m)) => HarborDeployment::Manifests(self.path(m, "harbor.manifests", Want::Dir)?),
            (None, None) => HarborDeployment::External,
        };
        Ok(HarborSpec {
            url,
            project,
            admin_password_file,
            admin_password_env: h.admin_password_env.clone(),
            node_port,
            vip,
            namespace,
            storage,
            storage_class: h.storage_class.clone(),
            tls,
            deployment,
        })
    }
}

impl RawHarbor {
    fn empty() -> RawHarbor {
        RawHarbor {
            url: None,
            project: None,
            admin_password_file: None,
            admin_password_env: None,
            admin_password: None,
            node_port: None,
            vip: None,
            namespace: None,
            storage: None,
            storage_class: None,
            tls: None,
            chart: None,
            manifests: None,
        }
    }
}

fn fmt_pos(p: Option<Pos>) -> String {
    match p {
        Some(p) => format!("line {}", p.line),
        None => "an earlier entry".into(),
    }
}

/// RFC 1123 label: what Kubernetes, file names and host names all accept.
pub fn check_dns_label(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("may hold only lower-case letters, digits and `-`");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// RFC 1123 subdomain: what Kubernetes accepts for most object names.
pub fn check_dns_subdomain(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 253 {
        return Err("must be 1 to 253 characters");
    }
    for label in s.split('.') {
        check_dns_label(label).map_err(|_| "must be lower-case letters, digits, `-` and `.`, like a DNS name")?;
    }
    Ok(())
}

/// Harbor's rule for project names.
fn check_project(s: &str) -> Result<(), &'static str> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("..")
        && !s.contains("--")
        && !s.contains("__");
    if ok {
        Ok(())
    } else {
        Err("is not a Harbor project name ([a-z0-9]+ joined by single `.`, `_` or `-`)")
    }
}

/// Split `host[:port]`: an IPv6 address must be in brackets (`[fe80::1]:5000`),
/// so that its colons are never taken for a port separator.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(after) = s.strip_prefix('[') {
        let (ip, tail) = after.split_once(']').ok_or("has an unclosed [")?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has brackets around something that is not an IPv6 address");
        }
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("has something after the ] that is not a :port")?),
        };
        return Ok((ip, port));
    }
    match s.split_once(':') {
        Some((_, p)) if p.contains(':') => Err("is an IPv6 address without brackets: write it as [address]:port"),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

fn check_port(p: Option<&str>) -> Result<Option<u16>, &'static str> {
    p.map(|p| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or("has an invalid port")).transpose()
}

fn is_host_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
}

/// `host[:port]`, as an image reference's registry part.
fn check_host(h: &str) -> Result<(), &'static str> {
    if h.is_empty() {
        return Err("is empty");
    }
    if h.contains('/') {
        return Err("must be a bare host[:port], without a path");
    }
    let (name, port) = split_host_port(h)?;
    check_port(port)?;
    if !h.starts_with('[') && !is_host_name(name) {
        return Err("is not a host name or IP address");
    }
    Ok(())
}

fn parse_url(s: &str) -> Result<HarborUrl, &'static str> {
    let (scheme, rest) = s.split_once("://").ok_or("must start with https:// or http://")?;
    if scheme != "https" && scheme != "http" {
        return Err("must start with https:// or http://");
    }
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        return Err("must not have a path (the project is set by harbor.project)");
    }
    let (host, port) = split_host_port(rest)?;
    let port = check_port(port)?;
    if !rest.starts_with('[') && !is_host_name(host) {
        return Err("has no valid host");
    }
    Ok(HarborUrl { scheme: scheme.to_owned(), host: host.to_owned(), port })
}

fn is_platform(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

/// A prefix length for the address's family (IPv4 0-32, IPv6 0-128), or for
/// IPv4 a dotted netmask whose one-bits are contiguous (`255.255.254.0`).
fn is_mask(m: &str, ip: IpAddr) -> bool {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if m.bytes().all(|b| b.is_ascii_digit()) {
        return m.parse::<u8>().is_ok_and(|n| n <= max);
    }
    ip.is_ipv4()
        && m.parse::<std::net::Ipv4Addr>().is_ok_and(|a| {
            let bits = u32::from(a);
            bits.leading_ones() + bits.trailing_zeros() == 32
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("300Gi").unwrap().bytes, 300 << 30);
        assert_eq!(Size::parse("500G").unwrap().bytes, 500_000_000_000);
        assert_eq!(Size::parse("1024").unwrap().bytes, 1024);
        assert!(Size::parse("12 apples").is_err());
        assert!(Size::parse("Gi").is_err());
    }

    #[test]
    fn urls() {
        let u = parse_url("https://127.0.0.1:30003").unwrap();
        assert_eq!(u.authority(), "127.0.0.1:30003");
        assert_eq!(u.to_string(), "https://127.0.0.1:30003");
        let u = parse_url("http://[::1]:5000/").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.authority(), "[::1]:5000");
        assert!(parse_url("127.0.0.1:30003").is_err());
        assert!(parse_url("https://h/spectro-images").is_err());
    }

    #[test]
    fn hosts() {
        assert!(check_host("127.0.0.1:5000").is_ok());
        assert!(check_host("docker.io").is_ok());
        assert!(check_host("h:0").is_err());
        assert!(check_host("h/x").is_err());
        assert!(check_host("h:port").is_err());
    }
}
