//! The validated site spec: what the rest of edgeiso reads (`Spec` and its
//! parts), with the defaults Palette's Harbor uses.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use edgeiso_bundle::ImageRef;
use edgeiso_contract::RegistryUrl;
use serde::Deserialize;

use crate::error::Pos;

/// Harbor's defaults, as Palette deploys it.
pub const DEFAULT_HARBOR_PROJECT: &str = edgeiso_contract::agent_config::DEFAULT_PROJECT;
pub const DEFAULT_HARBOR_NODE_PORT: u16 = 30003;
pub const DEFAULT_HARBOR_NAMESPACE: &str = "harbor";
/// The platform an image entry stores when it names none.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

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
    /// `trust:`: the key the agent requires every bundle to be signed by.
    pub trust: Option<TrustSpec>,
    /// The file the spec was read from; relative paths in it were resolved
    /// against its folder.
    pub source_path: PathBuf,
    /// Every file and folder the spec names (what render reads besides the
    /// spec): what a golden ISO keeps so that `edgeiso personalize` can
    /// render its sites.
    pub inputs: Vec<SpecInput>,
}

/// A file or folder a spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecInput {
    /// The key that names it (`harbor.tls.certFile`).
    pub key: String,
    /// The path as written in the spec.
    pub written: String,
    /// Where it was found.
    pub path: PathBuf,
    pub dir: bool,
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
    /// `prefix_len`: the spec's `mask` (a prefix length or a dotted IPv4
    /// mask) as a prefix length; rendered in CanvOS' CIDR form `ipAddress: A/N`.
    Static {
        ip_address: IpAddr,
        prefix_len: u8,
        gateway: Option<IpAddr>,
        nameserver: Option<IpAddr>,
    },
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
    /// `install.auto`: Kairos installs without asking (kairos-agent
    /// `internal/agent/install.go`); default true.
    pub auto: bool,
    /// `install.noUsers` as written, and where: `None` lets render decide
    /// (`install.nousers: true` when no user is in group `admin`).
    pub no_users: Option<bool>,
    pub no_users_pos: Option<Pos>,
}

impl Default for InstallSpec {
    fn default() -> Self {
        InstallSpec {
            device: "auto".into(),
            reboot: true,
            poweroff: false,
            persistent_size_mib: None,
            auto: true,
            no_users: None,
            no_users_pos: None,
        }
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
    pub url: RegistryUrl,
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

impl HarborSpec {
    /// The names Harbor's certificate must serve: `harbor.url`'s host, where
    /// the agent pushes and nodes pull; and with Harbor from the profile's
    /// pack, also `spectro.registry.local` and the VIP, which Palette's
    /// components use (the Harbor Edge Native Config pack's `auth.certs`).
    pub fn served_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.deployment == HarborDeployment::External {
            names.push(crate::render::tls::HARBOR_DNS_NAME.to_owned());
            names.extend(self.vip.map(|v| v.to_string()));
        }
        if !names.contains(&self.url.host) {
            names.push(self.url.host.clone());
        }
        names
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
    /// kubeadm-based (Palette PXK-E): plain containerd, no `registries.yaml`,
    /// no HelmChart controller, no auto-deploy manifests folder.
    Kubeadm,
}

impl Distribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::K3s => "k3s",
            Distribution::Rke2 => "rke2",
            Distribution::Kubeadm => "kubeadm",
        }
    }

    /// k3s or RKE2: `registries.yaml`, the `HelmChart` CRD, `agent/images/`
    /// and `server/manifests/` exist only there.
    pub fn is_rancher(self) -> bool {
        matches!(self, Distribution::K3s | Distribution::Rke2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesSpec {
    pub distribution: Distribution,
}

/// `trust:` of the spec (decision 0015).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSpec {
    /// `publicKey`, resolved against the spec's folder.
    pub public_key: PathBuf,
    /// Its bytes as read and checked at spec load (an EC P-256 `PUBLIC
    /// KEY` PEM): what render copies to the site.
    pub public_key_pem: Vec<u8>,
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

pub use edgeiso_contract::kernel_args::{check_kernel_arg, DEFAULT_LIVE_KERNEL_ARGS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardwareSpec {
    pub nodes: u32,
    pub cpus: Option<u32>,
    pub memory_gib: Option<u32>,
    pub disk_gib: Option<u32>,
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
}
