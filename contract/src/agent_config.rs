//! The agent's settings, one struct for its command-line flags and for its
//! configuration file (`agent.yaml`), as coreos-installer's `InstallConfig`
//! is both a clap parser and a serde struct. `edgeiso render` writes the file
//! for the node, the overlay writes one for the live load, and
//! `edgeiso-agent load --config FILE` reads it with its flags on top. A key
//! added here is a flag, a file key and a render output at once.
//!
//! `edgeiso-agent webhook` reads the same file: the registry, project,
//! bundles and state folder say what the site's Harbor holds, and the
//! `webhook:` section says where and with which certificate to serve.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Harbor project every image goes under, on Palette sites.
pub const DEFAULT_PROJECT: &str = "spectro-images";
/// Blob uploads in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How long the agent waits for the registry to answer at start.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The registry password, when no `passwordFile` is given.
pub const PASSWORD_ENV: &str = "EDGEISO_REGISTRY_PASSWORD";
/// A live load from the initramfs waits this long for the registry...
pub const LIVE_WAIT_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// ...and gives up after this long in all: a stalled registry must never hold
/// a live boot in the initramfs (dracut's pre-pivot service has no start
/// timeout). The load is resumable; the installed node's unit continues it.
pub const LIVE_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// The port the image-redirect webhook listens on (all addresses), and the
/// API server's `clientConfig.url` names.
pub const DEFAULT_WEBHOOK_PORT: u16 = 8443;
/// The path the API server POSTs AdmissionReviews to.
pub const WEBHOOK_PATH: &str = "/mutate";

/// A configuration file larger than this is not an agent configuration.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// https://host:port (TLS verified against the built-in roots plus --ca)
    /// or http://host:port (plain HTTP).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,

    /// Harbor project (and first path component) every image goes under
    /// [default: spectro-images].
    #[arg(long, value_name = "NAME")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,

    /// PEM file with CA certificates to trust, on top of the built-in roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,

    /// Skip TLS certificate verification (logged as a warning). Render never
    /// sets it: it writes `ca` instead.
    #[arg(long)]
    #[serde(default)]
    pub insecure: bool,

    /// Registry user (default admin when a password is given).
    #[arg(long, value_name = "USER")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// File holding the password (one line). Or set EDGEISO_REGISTRY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,

    /// A bundle tar, its first part (.part000), or a folder to search.
    /// Default: /run/initramfs/live and /opt/spectrocloud/content.
    #[arg(long = "bundle", value_name = "PATH", num_args = 1..)]
    #[serde(default)]
    pub bundles: Vec<PathBuf>,

    /// Where the journal of finished blobs and images lives
    /// [default: /var/lib/edgeiso].
    #[arg(long, value_name = "DIR")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,

    /// Blob uploads in flight at once [default: 4].
    #[arg(long, value_name = "N", help_heading = "Load")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,

    /// How long to wait for the registry to answer at start (e.g. 30m, 90s)
    /// [default: 30m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Load")]
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub wait_timeout: Option<Duration>,

    /// Stop the whole load after this long (e.g. 10m, 90s): images not
    /// loaded by then are listed, uploads are left resumable, exit status 8.
    /// Default: no deadline.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Load")]
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,

    /// PEM public key (EC P-256) every bundle must be signed by: its
    /// signature `NAME.tar.sig` beside it (decision 0015). An unsigned
    /// bundle, another key's signature, or a bundle.json changed after
    /// signing is refused before anything is pushed, exit status 9.
    /// Default: signatures are not checked.
    #[arg(long, value_name = "PUB.pem", help_heading = "Load")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<PathBuf>,

    /// The image-redirect webhook's own settings (`webhook:` in the file).
    #[command(flatten)]
    #[serde(default, skip_serializing_if = "WebhookConfig::is_empty")]
    pub webhook: WebhookConfig,

    /// The node's pull configuration the agent completes with a pull-only
    /// credential and installs (`nodeMirrors:` in the file; no flags: render
    /// writes it, decision 0012).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "NodeMirrorsConfig::is_empty")]
    pub node_mirrors: NodeMirrorsConfig,

    /// The registries a thin bundle's blobs are fetched from (`sources:` in
    /// the file, or `edgeiso-agent load --sources FILE`; render writes them
    /// from the spec's `registries[]` when the bundle is thin). A host with
    /// no entry is reached over HTTPS without credentials.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceRegistry>,
}

/// One registry a thin bundle's images come from, with the keys (and their
/// meaning) of the site spec's `registries[]` entry it is rendered from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRegistry {
    /// `host[:port]` as the images' references name it (`docker.io`,
    /// `127.0.0.1:5000`).
    pub host: String,
    /// Plain HTTP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// PEM CA certificates to trust for this host, on top of the built-in
    /// roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file (0600) holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// Where the node's mirror configuration comes from and where it goes
/// (decision 0012). Render writes the files without credentials into the
/// site folder; the agent adds the nodes' credential (a Harbor robot
/// account with pull access to the project only, or, against a plain
/// registry, the agent's own) and installs them, 0600, where containerd and
/// k3s/RKE2 read them. Nothing here is a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeMirrorsConfig {
    /// The rendered `certs.d` folder (`<host>/hosts.toml`, no credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certs_d: Option<PathBuf>,
    /// The rendered k3s/RKE2 `registries.yaml` (none on kubeadm sites).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries_yaml: Option<PathBuf>,
    /// The `registries.yaml` `configs` key the credential goes under: the
    /// registry's host[:port] as the mirrors' endpoints name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_host: Option<String>,
    /// Folders containerd reads `<host>/hosts.toml` from at every pull.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_certs_d: Vec<PathBuf>,
    /// Where k3s/RKE2 read `registries.yaml` (at their start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_registries_yaml: Option<PathBuf>,
    /// The agent's own folder for the credential and a copy of every file
    /// it installed (0700; the boot stages put the copies back in place
    /// before k3s/RKE2 start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_dir: Option<PathBuf>,
}

impl NodeMirrorsConfig {
    pub fn is_empty(&self) -> bool {
        *self == NodeMirrorsConfig::default()
    }
}

/// Where `edgeiso-agent webhook` serves, and with which certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfig {
    /// Address and port to serve the webhook on [default: 0.0.0.0:8443].
    #[arg(long, value_name = "ADDR", help_heading = "Webhook")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,

    /// PEM certificate (chain) the webhook serves; its CA is the caBundle
    /// of the MutatingWebhookConfiguration.
    #[arg(long, value_name = "FILE", help_heading = "Webhook")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (keep it 0600).
    #[arg(long, value_name = "FILE", help_heading = "Webhook")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl WebhookConfig {
    pub fn is_empty(&self) -> bool {
        *self == WebhookConfig::default()
    }

    /// These settings over `file`'s, key by key.
    pub fn over(self, file: WebhookConfig) -> WebhookConfig {
        WebhookConfig {
            listen: self.listen.or(file.listen),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
        }
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl AgentConfig {
    /// Read a configuration file (bounded: it is input like any other).
    pub fn read(path: &Path) -> Result<AgentConfig, ConfigError> {
        use std::io::Read as _;
        let read = |source| ConfigError::Read { path: path.to_owned(), source };
        // Checked before opening: opening a FIFO would block.
        if !std::fs::metadata(path).map_err(read)?.is_file() {
            return Err(ConfigError::Invalid { path: path.to_owned(), message: "not a regular file".into() });
        }
        let file = std::fs::File::open(path).map_err(read)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(read)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        AgentConfig::from_yaml(&text)
            .map_err(|e| ConfigError::Invalid { path: path.to_owned(), message: e.to_string() })
    }

    pub fn from_yaml(text: &str) -> Result<AgentConfig, serde_saphyr::Error> {
        serde_saphyr::from_str(text)
    }

    /// The file as render writes it: block style, long strings on one line.
    pub fn to_yaml(&self) -> String {
        let opts = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
        serde_saphyr::to_string_with_options(self, opts).expect("plain data serializes to YAML")
    }

    /// These settings (the flags) over `file`'s: every setting given here
    /// wins. The TLS choice is taken whole: a flag on either side of it
    /// (`ca` or `insecure`) replaces the file's `ca` and `insecure` both.
    pub fn over(self, file: AgentConfig) -> AgentConfig {
        let (ca, insecure) =
            if self.insecure || self.ca.is_some() { (self.ca, self.insecure) } else { (file.ca, file.insecure) };
        AgentConfig {
            registry: self.registry.or(file.registry),
            project: self.project.or(file.project),
            ca,
            insecure,
            username: self.username.or(file.username),
            password_file: self.password_file.or(file.password_file),
            bundles: if self.bundles.is_empty() { file.bundles } else { self.bundles },
            state_dir: self.state_dir.or(file.state_dir),
            concurrency: self.concurrency.or(file.concurrency),
            wait_timeout: self.wait_timeout.or(file.wait_timeout),
            deadline: self.deadline.or(file.deadline),
            trust: self.trust.or(file.trust),
            webhook: self.webhook.over(file.webhook),
            node_mirrors: if self.node_mirrors.is_empty() { file.node_mirrors } else { self.node_mirrors },
            sources: if self.sources.is_empty() { file.sources } else { self.sources },
        }
    }
}

/// Harbor's rule for project names, `[a-z0-9]+(?:[._-][a-z0-9]+)*`, at most
/// 255 characters: the spec and the agent check a project by it.
pub fn check_project_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err("is not a Harbor project name ([a-z0-9]+ joined by single `.`, `_` or `-`)")
    }
}

/// `30m`, `90s`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30m or 90s: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AgentConfig {
        AgentConfig {
            registry: Some("https://127.0.0.1:30003".into()),
            project: Some("spectro-images".into()),
            ca: Some("/ca.crt".into()),
            insecure: false,
            username: Some("admin".into()),
            password_file: Some("/pw".into()),
            bundles: vec!["/b".into()],
            state_dir: Some("/s".into()),
            concurrency: Some(6),
            wait_timeout: Some(Duration::from_secs(180)),
            deadline: Some(Duration::from_secs(600)),
            trust: Some("/site/trust/bundle-signing.pub".into()),
            webhook: WebhookConfig {
                listen: Some("0.0.0.0:8443".into()),
                tls_cert: Some("/w.crt".into()),
                tls_key: Some("/w.key".into()),
            },
            node_mirrors: NodeMirrorsConfig {
                certs_d: Some("/site/containerd/certs.d".into()),
                registries_yaml: Some("/site/k3s/registries.yaml".into()),
                registry_host: Some("127.0.0.1:30003".into()),
                install_certs_d: vec!["/etc/containerd/certs.d".into()],
                install_registries_yaml: Some("/etc/rancher/k3s/registries.yaml".into()),
                keep_dir: Some("/state/node-pull".into()),
            },
            sources: vec![SourceRegistry {
                host: "127.0.0.1:5000".into(),
                insecure: true,
                ca_file: Some("/site/sources/0.ca.pem".into()),
                username: Some("puller".into()),
                password_file: Some("/site/sources/0.password".into()),
            }],
        }
    }

    #[test]
    fn the_file_keys_are_the_contract() {
        let c = full();
        let y = c.to_yaml();
        for key in [
            "registry:",
            "project:",
            "ca:",
            "insecure:",
            "username:",
            "passwordFile:",
            "bundles:",
            "stateDir:",
            "concurrency: 6",
            "waitTimeout: 3m",
            "deadline: 10m",
            "trust: /site/trust/bundle-signing.pub",
            "webhook:",
            "  listen: 0.0.0.0:8443",
            "  tlsCert: /w.crt",
            "  tlsKey: /w.key",
            "nodeMirrors:",
            "  certsD: /site/containerd/certs.d",
            "  registriesYaml: /site/k3s/registries.yaml",
            "  registryHost: 127.0.0.1:30003",
            "  installCertsD:",
            "  installRegistriesYaml: /etc/rancher/k3s/registries.yaml",
            "  keepDir: /state/node-pull",
            "sources:",
            "- host: 127.0.0.1:5000",
            "  insecure: true",
            "  caFile: /site/sources/0.ca.pem",
            "  username: puller",
            "  passwordFile: /site/sources/0.password",
        ] {
            assert!(y.contains(key), "{key} in {y}");
        }
        assert_eq!(AgentConfig::from_yaml(&y).unwrap(), c);
        assert!(AgentConfig::from_yaml("registy: x\n").is_err(), "typos are caught");
        assert!(AgentConfig::from_yaml("deadline: soon\n").is_err());
        assert!(AgentConfig::from_yaml("webhook: {tlsCrt: x}\n").is_err(), "typos in the section too");
        assert!(!AgentConfig { webhook: Default::default(), ..full() }.to_yaml().contains("webhook"));
        assert!(AgentConfig::from_yaml("nodeMirrors: {certD: x}\n").is_err(), "typos in nodeMirrors too");
        assert!(!AgentConfig { node_mirrors: Default::default(), ..full() }.to_yaml().contains("nodeMirrors"));
        assert!(AgentConfig::from_yaml("sources: [{host: x, pasword: y}]\n").is_err(), "typos in sources too");
        assert!(!AgentConfig { sources: vec![], ..full() }.to_yaml().contains("sources"));
    }

    #[test]
    fn what_render_wrote_before_still_reads() {
        let yaml = "registry: https://10.0.0.5:30003\nproject: spectro-images\nca: /etc/edgeiso/ca.pem\ninsecure: false\n\
                    username: admin\npasswordFile: /etc/edgeiso/pw\nbundles: [/opt/spectrocloud/content]\nstateDir: /var/lib/edgeiso\n";
        let c = AgentConfig::from_yaml(yaml).unwrap();
        assert_eq!(c.registry.as_deref(), Some("https://10.0.0.5:30003"));
        assert_eq!(c.password_file, Some(PathBuf::from("/etc/edgeiso/pw")));
        assert_eq!(c.bundles, vec![PathBuf::from("/opt/spectrocloud/content")]);
        assert_eq!(c.deadline, None);
    }

    #[test]
    fn flags_win_and_the_tls_choice_is_taken_whole() {
        let file = AgentConfig { insecure: true, ..full() };
        let flags = AgentConfig { project: Some("b".into()), concurrency: Some(2), ..Default::default() };
        let m = flags.over(file.clone());
        assert_eq!((m.project.as_deref(), m.concurrency), (Some("b"), Some(2)));
        assert_eq!(m.registry, file.registry);
        assert!(m.insecure && m.ca.is_some(), "the file's TLS choice stands when no flag touches it");
        let m = AgentConfig { ca: Some("/mine.pem".into()), ..Default::default() }.over(file.clone());
        assert_eq!((m.ca, m.insecure), (Some(PathBuf::from("/mine.pem")), false));
        let m = AgentConfig { insecure: true, ..Default::default() }.over(full());
        assert_eq!((m.ca, m.insecure), (None, true));
        let m = AgentConfig { bundles: vec!["/x".into()], ..Default::default() }.over(full());
        assert_eq!(m.bundles, vec![PathBuf::from("/x")]);
        let flags = AgentConfig {
            webhook: WebhookConfig { listen: Some("127.0.0.1:9443".into()), ..Default::default() },
            ..Default::default()
        };
        let m = flags.over(full());
        assert_eq!(m.webhook.listen.as_deref(), Some("127.0.0.1:9443"));
        assert_eq!(m.webhook.tls_key, Some(PathBuf::from("/w.key")), "the file's other webhook keys stand");
    }

    #[test]
    fn project_names() {
        for ok in ["spectro-images", "a", "a.b_c-d1"] {
            check_project_name(ok).unwrap();
        }
        for bad in ["", "Spectro", "a--b", "-a", "a-", "a.-b", "a/b", &"a".repeat(256)] {
            assert!(check_project_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reading_is_bounded_and_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; (MAX_FILE_BYTES + 10) as usize]).unwrap();
        let e = AgentConfig::read(&big).unwrap_err().to_string();
        assert!(e.contains("big.yaml") && e.contains("larger than"), "{e}");
        let e = AgentConfig::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = AgentConfig::read(&d.path().join("none.yaml")).unwrap_err().to_string();
        assert!(e.contains("none.yaml"), "{e}");
    }
}
