//! The agent's settings: the YAML configuration file the systemd unit points
//! at, merged with command-line flags (flags win), then checked and defaulted.
//!
//! `AgentConfig` mirrors `edgeiso_installer_config::AgentConfig` (the file the
//! installer renders), key for key. It is defined here rather than imported
//! because that crate was not available when the agent was written, and to
//! keep the agent's dependency tree small; the keys are the contract, and a
//! test below pins them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::auth::Credentials;
use crate::cli::{self, LoadArgs};
use crate::AgentError;

/// `agent.yaml`: what the installer writes for the systemd unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    pub registry: Option<String>,
    pub project: Option<String>,
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub bundles: Vec<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl AgentConfig {
    pub fn read(path: &Path) -> Result<AgentConfig, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AgentError::Usage(format!("cannot read configuration {}: {e}", path.display())))?;
        serde_saphyr::from_str(&text).map_err(|e| AgentError::Usage(format!("{}: {e}", path.display())))
    }
}

/// The registry as given: scheme + host[:port], nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `https://10.0.0.5:30003/`
    pub base: Url,
    /// `10.0.0.5:30003`: names the journal.
    pub host_port: String,
    pub tls: bool,
}

impl RegistryUrl {
    pub fn parse(s: &str) -> Result<RegistryUrl, AgentError> {
        let bad = |why: &str| {
            AgentError::Usage(format!("--registry {s}: {why} (expected https://host:port or http://host:port)"))
        };
        let url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad("the scheme must be https or http")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the URL; use --username and --password-file"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("no path, query or fragment allowed"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        Ok(RegistryUrl { host_port: format!("{host}:{port}"), base: url, tls })
    }

    pub fn join(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid relative URLs")
    }
}

impl std::fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

/// Everything `load` needs, checked.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Given paths; empty means the default search.
    pub bundles: Vec<PathBuf>,
    pub registry: RegistryUrl,
    pub project: String,
    pub ca: Option<PathBuf>,
    pub insecure: bool,
    pub credentials: Option<Credentials>,
    pub concurrency: usize,
    pub state_dir: PathBuf,
    pub wait_timeout: Duration,
    /// `--deadline`: the whole load stops after this long (exit 8).
    pub deadline: Option<Duration>,
    pub json: bool,
    pub chunk_threshold: u64,
    pub chunk_size: u64,
    pub journal: bool,
}

/// Blobs above this go in resumable chunks. Below it one streamed PUT is
/// faster (upstream measured chunked 50-100% slower with small chunks) and a
/// restart costs little.
pub const DEFAULT_CHUNK_THRESHOLD: u64 = 256 << 20;
/// Big enough that per-chunk round trips vanish, small enough that a dropped
/// connection costs at most this much again (memory use does not depend on it:
/// chunks are streamed).
pub const DEFAULT_CHUNK_SIZE: u64 = 128 << 20;

impl LoadSettings {
    /// Merge `--config` (if any) under the flags, read the password, check.
    pub fn resolve(args: &LoadArgs, password_env: Option<String>) -> Result<LoadSettings, AgentError> {
        let file = match &args.config {
            Some(p) => AgentConfig::read(p)?,
            None => AgentConfig::default(),
        };
        let registry = args
            .registry
            .clone()
            .or(file.registry)
            .ok_or_else(|| AgentError::Usage("--registry is required (or `registry:` in --config)".into()))?;
        let registry = RegistryUrl::parse(&registry)?;
        let project = args.project.clone().or(file.project).unwrap_or_else(|| cli::DEFAULT_PROJECT.to_owned());
        check_project_name(&project)?;
        // A flag on either side of the TLS choice overrides the file's.
        let (ca, insecure) = if args.insecure {
            (None, true)
        } else if args.ca.is_some() {
            (args.ca.clone(), false)
        } else {
            (file.ca, file.insecure)
        };
        if ca.is_some() && insecure {
            return Err(AgentError::Usage("ca and insecure exclude each other".into()));
        }
        if let Some(ca) = &ca {
            if !ca.is_file() {
                return Err(AgentError::Usage(format!("--ca {}: no such file", ca.display())));
            }
        }
        let password_file = args.password_file.clone().or(file.password_file);
        let password = match &password_file {
            Some(p) => Some(read_password(p)?),
            None => password_env.filter(|p| !p.is_empty()),
        };
        let username = args.username.clone().or(file.username);
        let credentials = match (username, password) {
            (Some(u), Some(p)) => Some(Credentials::new(u, p)),
            (None, Some(p)) => Some(Credentials::new("admin".into(), p)),
            (Some(u), None) => {
                return Err(AgentError::Usage(format!(
                    "--username {u} needs a password: --password-file FILE or {}",
                    cli::PASSWORD_ENV
                )))
            }
            (None, None) => None,
        };
        let concurrency = args.concurrency.unwrap_or(cli::DEFAULT_CONCURRENCY);
        if !(1..=64).contains(&concurrency) {
            return Err(AgentError::Usage(format!("--concurrency {concurrency}: must be 1 to 64")));
        }
        let chunk_size = args.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE);
        if chunk_size < 1 << 16 {
            return Err(AgentError::Usage("--chunk-size must be at least 64 KiB".into()));
        }
        Ok(LoadSettings {
            bundles: if args.bundle.is_empty() { file.bundles } else { args.bundle.clone() },
            registry,
            project,
            ca,
            insecure,
            credentials,
            concurrency,
            state_dir: args
                .state_dir
                .clone()
                .or(file.state_dir)
                .unwrap_or_else(|| PathBuf::from(cli::DEFAULT_STATE_DIR)),
            wait_timeout: args.wait_timeout.unwrap_or(cli::DEFAULT_WAIT_TIMEOUT),
            deadline: match args.deadline {
                Some(d) if d.is_zero() => return Err(AgentError::Usage("--deadline must be longer than 0".into())),
                d => d,
            },
            json: args.json,
            chunk_threshold: args.chunk_threshold.unwrap_or(DEFAULT_CHUNK_THRESHOLD),
            chunk_size,
            journal: !args.no_journal,
        })
    }
}

fn read_password(path: &Path) -> Result<String, AgentError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AgentError::Usage(format!("cannot read password file {}: {e}", path.display())))?;
    // One line; a trailing newline from `echo > file` is not part of it.
    let pw = text.strip_suffix('\n').unwrap_or(&text);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.is_empty() {
        return Err(AgentError::Usage(format!("password file {} is empty", path.display())));
    }
    Ok(pw.to_owned())
}

/// Harbor's rule for project names: `[a-z0-9]+(?:[._-][a-z0-9]+)*`.
pub fn check_project_name(name: &str) -> Result<(), AgentError> {
    let ok = !name.is_empty()
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(AgentError::Usage(format!(
            "--project {name:?}: Harbor project names are lower-case letters and digits, separated by single . _ or -"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_keys_are_the_installer_contract() {
        let yaml = "registry: https://10.0.0.5:30003\nproject: spectro-images\nca: /etc/edgeiso/ca.pem\ninsecure: false\n\
                    username: admin\npasswordFile: /etc/edgeiso/pw\nbundles: [/opt/spectrocloud/content]\nstateDir: /var/lib/edgeiso\n";
        let c: AgentConfig = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(c.registry.as_deref(), Some("https://10.0.0.5:30003"));
        assert_eq!(c.password_file, Some(PathBuf::from("/etc/edgeiso/pw")));
        assert_eq!(c.state_dir, Some(PathBuf::from("/var/lib/edgeiso")));
        assert_eq!(c.bundles, vec![PathBuf::from("/opt/spectrocloud/content")]);
        assert!(serde_saphyr::from_str::<AgentConfig>("registy: x\n").is_err(), "typos are caught");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.yaml");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::write(
            &cfg,
            format!("registry: https://h:30003\nproject: a\ninsecure: true\npasswordFile: {}\n", pw.display()),
        )
        .unwrap();
        let args =
            LoadArgs { config: Some(cfg), project: Some("b".into()), concurrency: Some(2), ..Default::default() };
        let s = LoadSettings::resolve(&args, None).unwrap();
        assert_eq!(s.project, "b");
        assert!(s.insecure);
        assert_eq!(s.registry.host_port, "h:30003");
        let c = s.credentials.unwrap();
        assert_eq!((c.username(), c.password()), ("admin", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn registry_urls() {
        assert_eq!(RegistryUrl::parse("http://127.0.0.1:5000").unwrap().host_port, "127.0.0.1:5000");
        assert_eq!(RegistryUrl::parse("https://reg.local").unwrap().host_port, "reg.local:443");
        for bad in ["ftp://x", "127.0.0.1:5000", "https://u:p@x", "https://x/v2/"] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_names() {
        for ok in ["spectro-images", "a", "a.b_c-d1"] {
            check_project_name(ok).unwrap();
        }
        for bad in ["", "Spectro", "a--b", "-a", "a/b"] {
            assert!(check_project_name(bad).is_err(), "{bad}");
        }
    }
}
