//! The agent's settings: `edgeiso_contract::AgentConfig` from the
//! configuration file the systemd unit points at, with the command-line
//! flags (the same struct) on top, then checked and defaulted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgeiso_contract::agent_config::{
    NodeMirrorsConfig, DEFAULT_CONCURRENCY, DEFAULT_PROJECT, DEFAULT_WAIT_TIMEOUT, PASSWORD_ENV,
};
use edgeiso_contract::paths::node::DEFAULT_STATE_DIR;
use edgeiso_contract::{AgentConfig, RegistryUrl};
use reqwest::Url;

use crate::auth::Credentials;
use crate::cli::LoadArgs;
use crate::AgentError;

/// The registry, as the contract's one parser reads a URL, with the base
/// every request URL is joined onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: RegistryUrl,
    /// `https://10.0.0.5:30003/`
    pub base: Url,
    /// `10.0.0.5:30003`: names the journal.
    pub host_port: String,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, AgentError> {
        let bad = |why: String| {
            AgentError::Usage(format!("--registry {s}: {why} (expected https://host:port or http://host:port)"))
        };
        let url = RegistryUrl::parse(s).map_err(|e| bad(e.to_string()))?;
        let base = Url::parse(&format!("{url}/")).map_err(|e| bad(e.to_string()))?;
        Ok(Endpoint { host_port: url.host_port(), base, url })
    }

    pub fn join(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid relative URLs")
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.url.fmt(f)
    }
}

/// Everything `load` needs, checked.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Given paths; empty means the default search.
    pub bundles: Vec<PathBuf>,
    pub registry: Endpoint,
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
    /// Bounds of every request (the answer bound from `--answer-timeout`).
    pub timeouts: crate::registry::Timeouts,
    /// `--retries`: attempts after the first of a failed request.
    pub retries: Option<u32>,
    /// The node's mirror files to complete with the nodes' pull credential
    /// and install (empty: none; `node_mirrors::install`).
    pub node_mirrors: NodeMirrorsConfig,
    /// `--trust`: the key every bundle must be signed by (none: unchecked).
    pub trust: Option<edgeiso_bundle::signature::VerifyingKey>,
    /// Where a thin bundle's left-out blobs are fetched from (`--sources`,
    /// or `sources:` in the file).
    pub sources: Vec<crate::sources::Source>,
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
            Some(p) => AgentConfig::read(p).map_err(|e| AgentError::Usage(e.to_string()))?,
            None => AgentConfig::default(),
        };
        let c = args.settings.clone().over(file);
        let registry = c
            .registry
            .ok_or_else(|| AgentError::Usage("--registry is required (or `registry:` in --config)".into()))?;
        let registry = Endpoint::parse(&registry)?;
        let project = c.project.unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
        check_project_name(&project)?;
        let (ca, insecure) = (c.ca, c.insecure);
        if ca.is_some() && insecure {
            return Err(AgentError::Usage("ca and insecure exclude each other".into()));
        }
        if let Some(ca) = &ca {
            if !ca.is_file() {
                return Err(AgentError::Usage(format!("--ca {}: no such file", ca.display())));
            }
        }
        let password = match &c.password_file {
            Some(p) => Some(read_password(p)?),
            None => password_env.filter(|p| !p.is_empty()),
        };
        let credentials = match (c.username, password) {
            (Some(u), Some(p)) => Some(Credentials::new(u, p)),
            (None, Some(p)) => Some(Credentials::new("admin".into(), p)),
            (Some(u), None) => {
                return Err(AgentError::Usage(format!(
                    "--username {u} needs a password: --password-file FILE or {PASSWORD_ENV}"
                )))
            }
            (None, None) => None,
        };
        let concurrency = c.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=64).contains(&concurrency) {
            return Err(AgentError::Usage(format!("--concurrency {concurrency}: must be 1 to 64")));
        }
        let chunk_size = args.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE);
        if chunk_size < 1 << 16 {
            return Err(AgentError::Usage("--chunk-size must be at least 64 KiB".into()));
        }
        Ok(LoadSettings {
            bundles: c.bundles,
            registry,
            project,
            ca,
            insecure,
            credentials,
            concurrency,
            state_dir: c.state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            wait_timeout: c.wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT),
            deadline: match c.deadline {
                Some(d) if d.is_zero() => return Err(AgentError::Usage("--deadline must be longer than 0".into())),
                d => d,
            },
            json: args.json,
            chunk_threshold: args.chunk_threshold.unwrap_or(DEFAULT_CHUNK_THRESHOLD),
            chunk_size,
            journal: !args.no_journal,
            timeouts: match args.answer_timeout {
                Some(d) if d.is_zero() => {
                    return Err(AgentError::Usage("--answer-timeout must be longer than 0".into()))
                }
                Some(answer) => {
                    let t = crate::registry::Timeouts::default();
                    crate::registry::Timeouts { answer, idle_read: t.idle_read.min(answer), ..t }
                }
                None => crate::registry::Timeouts::default(),
            },
            retries: args.retries,
            node_mirrors: c.node_mirrors,
            trust: c.trust.as_deref().map(crate::trust::read_key).transpose()?,
            sources: match &args.sources {
                Some(file) => crate::sources::read_sources_file(file)?,
                None => crate::sources::from_config(&c.sources)?,
            },
        })
    }
}

fn read_password(path: &Path) -> Result<String, AgentError> {
    edgeiso_contract::fs::read_secret_file(path, "--password-file").map_err(|e| AgentError::Usage(e.to_string()))
}

/// Harbor's rule for project names (`edgeiso_contract`'s, which the spec
/// applies too).
pub fn check_project_name(name: &str) -> Result<(), AgentError> {
    edgeiso_contract::agent_config::check_project_name(name)
        .map_err(|why| AgentError::Usage(format!("--project {name:?} {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.yaml");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::write(
            &cfg,
            format!(
                "registry: https://h:30003\nproject: a\ninsecure: true\npasswordFile: {}\ndeadline: 10m\n",
                pw.display()
            ),
        )
        .unwrap();
        let settings = AgentConfig { project: Some("b".into()), concurrency: Some(2), ..Default::default() };
        let args = LoadArgs { config: Some(cfg), settings, ..Default::default() };
        let s = LoadSettings::resolve(&args, None).unwrap();
        assert_eq!(s.project, "b");
        assert_eq!(s.concurrency, 2);
        assert!(s.insecure);
        assert_eq!(s.registry.host_port, "h:30003");
        assert_eq!(s.deadline, Some(Duration::from_secs(600)), "the file may carry a deadline");
        let c = s.credentials.unwrap();
        assert_eq!((c.username(), c.password()), ("admin", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn registry_urls() {
        let e = Endpoint::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!((e.host_port.as_str(), e.base.as_str()), ("127.0.0.1:5000", "http://127.0.0.1:5000/"));
        assert_eq!(Endpoint::parse("https://reg.local").unwrap().host_port, "reg.local:443");
        assert_eq!(Endpoint::parse("https://[::1]:5000").unwrap().join("v2/").as_str(), "https://[::1]:5000/v2/");
        for bad in ["ftp://x", "127.0.0.1:5000", "https://u:p@x", "https://x/v2/"] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected https://host:port"), "{bad}: {e}");
        }
    }
}
