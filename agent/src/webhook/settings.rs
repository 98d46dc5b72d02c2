//! `edgeiso-agent webhook`'s settings: the agent's configuration file (the
//! one `load` reads) with the flags on top, checked and defaulted.

use std::net::SocketAddr;
use std::path::PathBuf;

use edgeiso_contract::agent_config::{DEFAULT_PROJECT, DEFAULT_WEBHOOK_PORT};
use edgeiso_contract::paths::node::DEFAULT_STATE_DIR;
use edgeiso_contract::AgentConfig;

use crate::cli::WebhookArgs;
use crate::config::{check_project_name, Endpoint};
use crate::journal::journal_path;
use crate::AgentError;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The site's Harbor: rewritten images name its `host:port`.
    pub registry: Endpoint,
    pub project: String,
    /// Given paths; empty means the default search (bootstrap images are
    /// read from them).
    pub bundles: Vec<PathBuf>,
    /// The load journal: what Harbor holds.
    pub journal: PathBuf,
}

impl WebhookSettings {
    pub fn resolve(args: &WebhookArgs) -> Result<WebhookSettings, AgentError> {
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
        let listen = match c.webhook.listen {
            Some(s) => s.parse().map_err(|e| {
                AgentError::Usage(format!("--listen {s}: {e} (expected ADDRESS:PORT, e.g. 0.0.0.0:8443)"))
            })?,
            None => SocketAddr::from(([0, 0, 0, 0], DEFAULT_WEBHOOK_PORT)),
        };
        let required = |p: Option<PathBuf>, flag: &str, key: &str| {
            p.ok_or_else(|| AgentError::Usage(format!("{flag} is required (or `webhook.{key}:` in --config)")))
        };
        let tls_cert = required(c.webhook.tls_cert, "--tls-cert", "tlsCert")?;
        let tls_key = required(c.webhook.tls_key, "--tls-key", "tlsKey")?;
        let state_dir = c.state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        Ok(WebhookSettings {
            journal: journal_path(&state_dir, &registry.host_port),
            listen,
            tls_cert,
            tls_key,
            registry,
            project,
            bundles: c.bundles,
        })
    }
}
