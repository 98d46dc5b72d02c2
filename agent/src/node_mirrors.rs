//! The node's mirror configuration with the nodes' pull credential
//! (decision 0012). Render writes `hosts.toml` and `registries.yaml` without
//! any credential (the ISO and the user-data hold none); here the agent
//! takes them from the site folder, adds the credential, and installs them
//! 0600 where containerd and k3s/RKE2 read them, keeping a copy of each in
//! its own 0700 folder for the boot stages to put back before k3s/RKE2
//! start.
//!
//! The credential: against Harbor, a robot account with pull access to the
//! project only ([`crate::robot`]), made once and reused while Harbor
//! accepts it; against a plain registry (no Harbor API to make one), the
//! agent's own credentials, if it has any.

use std::path::{Path, PathBuf};

use edgeiso_contract::agent_config::NodeMirrorsConfig;
use edgeiso_contract::fs::{write_atomic, FileMode};
use edgeiso_contract::paths::node::kept_copy;
use tracing::{info, warn};

use crate::auth::Credentials;
use crate::config::LoadSettings;
use crate::registry::{Flavor, RegistryClient, RegistryError};
use crate::robot::{self, StoredCredential};

/// Rendered files are small; a larger one is not render's.
const MAX_FILE_BYTES: u64 = 256 << 10;
/// More upstream hosts than this is not a site render wrote.
const MAX_HOSTS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum NodeMirrorError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeMirrorError + '_ {
    move |source| NodeMirrorError::Io { path: path.to_owned(), source }
}

/// What [`install`] did, for the log and the tests.
#[derive(Debug, Default)]
pub struct Installed {
    /// The user the nodes pull as (`robot$...`), when they have a credential.
    pub username: Option<String>,
    /// A robot account was made in this run (not reused).
    pub created: bool,
    /// Every file written, outside the keep folder.
    pub files: Vec<PathBuf>,
}

/// Make or reuse the nodes' credential and install the completed files.
pub async fn install(
    client: &RegistryClient,
    flavor: Flavor,
    settings: &LoadSettings,
) -> Result<Installed, NodeMirrorError> {
    let cfg = &settings.node_mirrors;
    let keep = cfg.keep_dir.clone().unwrap_or_else(|| settings.state_dir.join("node-pull"));
    create_private_dir(&keep)?;
    let registry = settings.registry.to_string();
    let mut done = Installed::default();

    let credential = match (flavor, &settings.credentials) {
        (Flavor::Harbor, Some(_)) => {
            let path = robot::credential_file(&keep);
            let stored = StoredCredential::read(&path, &registry);
            let reuse = match stored {
                Some(s) => {
                    let ok =
                        robot::accepted(client, settings.ca.as_deref(), settings.insecure, s.credentials()).await?;
                    if !ok {
                        warn!(user = %s.username, "Harbor no longer accepts the nodes' robot account; making a new one");
                    }
                    ok.then_some(s)
                }
                None => None,
            };
            let c = match reuse {
                Some(s) => s.credentials(),
                None => {
                    let c = robot::create(client, &settings.project).await?;
                    let stored = StoredCredential {
                        registry: registry.clone(),
                        username: c.username().to_owned(),
                        password: c.password().to_owned(),
                    };
                    stored.write(&path).map_err(io(&path))?;
                    done.created = true;
                    info!(user = %c.username(), project = %settings.project, "made the nodes' pull-only robot account");
                    c
                }
            };
            Some(c)
        }
        (Flavor::Harbor, None) => {
            warn!("no Harbor credentials: no robot account for the nodes; their mirror files carry no credential");
            None
        }
        (Flavor::Plain, c) => {
            if c.is_some() {
                warn!(
                    "a plain registry cannot make a pull-only account: the nodes pull with the agent's own credentials"
                );
            }
            c.clone()
        }
    };
    done.username = credential.as_ref().map(|c| c.username().to_owned());

    for (target, text) in completed_files(cfg, &registry, credential.as_ref())? {
        write_atomic(&target, text.as_bytes(), FileMode::Secret).map_err(io(&target))?;
        let copy = kept_copy(&keep, &target);
        write_atomic(&copy, text.as_bytes(), FileMode::Secret).map_err(io(&copy))?;
        done.files.push(target);
    }
    info!(files = done.files.len(), "installed the node mirror files");
    Ok(done)
}

fn create_private_dir(dir: &Path) -> Result<(), NodeMirrorError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

fn read_bounded(path: &Path) -> Result<String, NodeMirrorError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(io(path))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(NodeMirrorError::Input { path: path.to_owned(), message: "larger than 256 KiB".into() });
    }
    Ok(text)
}

/// Every file to install, by target path, with the credential added.
fn completed_files(
    cfg: &NodeMirrorsConfig,
    registry: &str,
    credential: Option<&Credentials>,
) -> Result<Vec<(PathBuf, String)>, NodeMirrorError> {
    let mut out = Vec::new();
    // No folder: the site mirrors no host (no workload images, no webhook).
    if let Some(dir) = cfg.certs_d.as_ref().filter(|d| d.exists()) {
        let mut hosts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let file = entry.path().join("hosts.toml");
            if file.is_file() {
                hosts.push((entry.file_name(), file));
            }
            if hosts.len() > MAX_HOSTS {
                return Err(NodeMirrorError::Input { path: dir.clone(), message: "more than 1000 hosts".into() });
            }
        }
        hosts.sort();
        for (host, file) in hosts {
            let text = read_bounded(&file)?;
            let text = match credential {
                Some(c) => hosts_toml_with(&text, registry, c),
                None => text,
            };
            for target in &cfg.install_certs_d {
                out.push((target.join(&host).join("hosts.toml"), text.clone()));
            }
        }
    }
    if let (Some(src), Some(target)) = (&cfg.registries_yaml, &cfg.install_registries_yaml) {
        let text = read_bounded(src)?;
        let text = match (credential, &cfg.registry_host) {
            (Some(c), Some(host)) => registries_yaml_with(&text, host, c)
                .map_err(|message| NodeMirrorError::Input { path: src.clone(), message })?,
            _ => text,
        };
        out.push((target.clone(), text));
    }
    Ok(out)
}

/// Does `url` name the registry itself (`https://h:p` or below it)?
fn names_registry(url: &str, registry: &str) -> bool {
    url.strip_prefix(registry).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A TOML basic string as render writes it (JSON's escapes), unquoted.
fn toml_string(s: &str) -> Option<String> {
    serde_json::from_str::<String>(s.trim()).ok()
}

/// `hosts.toml` with an `Authorization` header on every `[host."..."]`
/// table that names the registry, and on the top level when its `server`
/// is the registry (`airgapStrict`). Tables of any other host (an upstream)
/// never get it.
pub fn hosts_toml_with(text: &str, registry: &str, credential: &Credentials) -> String {
    let header = format!(
        "Authorization = [{}]\n",
        serde_json::to_string(&credential.basic_header()).expect("strings serialize")
    );
    let mut top_level = true;
    let mut server_is_registry = false;
    let mut tables = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            top_level = false;
        }
        if top_level {
            if let Some(v) = line.strip_prefix("server").map(str::trim_start).and_then(|r| r.strip_prefix('=')) {
                server_is_registry = toml_string(v).is_some_and(|u| names_registry(&u, registry));
            }
        }
        if let Some(key) = line.strip_prefix("[host.").and_then(|r| r.strip_suffix(']')) {
            if toml_string(key).is_some_and(|u| names_registry(&u, registry)) {
                tables.push(key.to_owned());
            }
        }
    }
    let mut out = text.trim_end().to_owned();
    out.push_str("\n\n# The nodes' pull credential, added on the node by edgeiso-agent.\n");
    if server_is_registry {
        out.push_str(&format!("[header]\n  {header}"));
    }
    for key in tables {
        out.push_str(&format!("\n[host.{key}.header]\n  {header}"));
    }
    out
}

/// `registries.yaml` with `configs.<host>.auth` set to the credential.
pub fn registries_yaml_with(text: &str, host: &str, credential: &Credentials) -> Result<String, String> {
    let mut doc: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| format!("not the registries.yaml render writes: {e}"))?;
    let root = doc.as_object_mut().ok_or("not a mapping")?;
    let configs = root.entry("configs").or_insert_with(|| serde_json::json!({}));
    let configs = configs.as_object_mut().ok_or("`configs` is not a mapping")?;
    let entry = configs.entry(host).or_insert_with(|| serde_json::json!({}));
    let entry = entry.as_object_mut().ok_or_else(|| format!("`configs.{host}` is not a mapping"))?;
    entry.insert(
        "auth".into(),
        serde_json::json!({ "username": credential.username(), "password": credential.password() }),
    );
    let yaml = serde_saphyr::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(format!("# Written by edgeiso-agent: render's registries.yaml with the nodes' pull credential.\n{yaml}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = "https://10.0.0.5:30003";

    fn robot() -> Credentials {
        Credentials::new("robot$spectro-images+n".into(), "pw\"1".into())
    }

    #[test]
    fn only_the_registrys_tables_get_the_header() {
        let text = "# c\nserver = \"https://registry-1.docker.io\"\n\n[host.\"https://10.0.0.5:30003/v2/spectro-images/docker.io\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n";
        let out = hosts_toml_with(text, REGISTRY, &robot());
        assert!(out.starts_with(text.trim_end()), "{out}");
        assert!(
            out.contains(
                "\n[host.\"https://10.0.0.5:30003/v2/spectro-images/docker.io\".header]\n  Authorization = [\"Basic "
            ),
            "{out}"
        );
        assert_eq!(out.matches("Authorization").count(), 1, "never to the upstream server: {out}");
        assert!(!out.contains("\n[header]"));

        // airgapStrict: the server is the registry: the top level too.
        let strict = "server = \"https://10.0.0.5:30003/v2/spectro-images/docker.io\"\ncapabilities = [\"pull\"]\n\n[host.\"https://10.0.0.5:30003/v2/spectro-images/docker.io\"]\n  override_path = true\n";
        let out = hosts_toml_with(strict, REGISTRY, &robot());
        assert_eq!(out.matches("Authorization").count(), 2, "{out}");
        assert!(out.contains("\n[header]\n"), "{out}");

        // A host that merely starts like the registry is another host.
        let other = "server = \"https://10.0.0.5:300031\"\n[host.\"https://10.0.0.5:300031/v2\"]\n";
        assert!(!hosts_toml_with(other, REGISTRY, &robot()).contains("Authorization"));
    }

    #[test]
    fn a_site_without_mirrored_hosts_and_an_oversized_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("registries.yaml"), "mirrors: {}\n").unwrap();
        let mut cfg = NodeMirrorsConfig {
            certs_d: Some(d.path().join("none")),
            registries_yaml: Some(d.path().join("registries.yaml")),
            registry_host: Some("h:1".into()),
            install_certs_d: vec![d.path().join("etc")],
            install_registries_yaml: Some(d.path().join("out.yaml")),
            keep_dir: None,
        };
        let files = completed_files(&cfg, "https://h:1", Some(&robot())).unwrap();
        assert_eq!(files.len(), 1, "no certs.d folder: registries.yaml only");
        assert!(files[0].1.contains("robot$spectro-images+n"));

        let big = d.path().join("certs.d/docker.io");
        std::fs::create_dir_all(&big).unwrap();
        std::fs::write(big.join("hosts.toml"), vec![b'#'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        cfg.certs_d = Some(d.path().join("certs.d"));
        let e = completed_files(&cfg, "https://h:1", Some(&robot())).unwrap_err().to_string();
        assert!(e.contains("docker.io/hosts.toml") && e.contains("larger than"), "{e}");
    }

    #[test]
    fn registries_yaml_gets_the_auth_of_the_registry_only() {
        let text = "mirrors:\n  docker.io:\n    endpoint:\n    - https://10.0.0.5:30003\n    rewrite:\n      ^(.*)$: spectro-images/docker.io/$1\nconfigs:\n  10.0.0.5:30003:\n    tls:\n      ca_file: /ca.crt\n";
        let out = registries_yaml_with(text, "10.0.0.5:30003", &robot()).unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(v["configs"]["10.0.0.5:30003"]["auth"]["username"], "robot$spectro-images+n");
        assert_eq!(v["configs"]["10.0.0.5:30003"]["auth"]["password"], "pw\"1");
        assert_eq!(v["configs"]["10.0.0.5:30003"]["tls"]["ca_file"], "/ca.crt");
        assert_eq!(v["mirrors"]["docker.io"]["rewrite"]["^(.*)$"], "spectro-images/docker.io/$1");
        // Without configs (plain http, no TLS): made.
        let out = registries_yaml_with("mirrors: {}\n", "h:5000", &robot()).unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(v["configs"]["h:5000"]["auth"]["username"], "robot$spectro-images+n");
        assert!(registries_yaml_with("- a\n", "h", &robot()).is_err());
    }
}
