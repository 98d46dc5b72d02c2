//! The agent's configuration for a site: one function for the node's
//! `agent.yaml` (the systemd unit's) and the live load's (the initramfs
//! overlay's), which differ only in where the agent finds the site's files
//! and how long a live load may hold the boot.

use edgeiso_contract::agent_config::WebhookConfig;
use edgeiso_contract::agent_config::{LIVE_DEADLINE, LIVE_WAIT_TIMEOUT};
use edgeiso_contract::paths::{out, AgentSite};
use edgeiso_contract::AgentConfig;

use crate::spec::Spec;

/// The configuration of an agent that sees the site's files at `site`;
/// `has_ca` and `has_password` say whether render wrote Harbor's CA and
/// admin password there. The webhook runs on the installed node only.
pub fn agent_config(spec: &Spec, site: &AgentSite, has_ca: bool, has_password: bool) -> AgentConfig {
    let live = *site == AgentSite::LIVE;
    AgentConfig {
        registry: Some(spec.harbor.url.to_string()),
        project: Some(spec.harbor.project.clone()),
        ca: has_ca.then(|| site.site_file(out::HARBOR_CA).into()),
        insecure: false,
        username: has_password.then(|| "admin".to_owned()),
        password_file: has_password.then(|| site.site_file(out::HARBOR_PASSWORD).into()),
        bundles: vec![site.content_dir.into()],
        state_dir: Some(site.state_dir.into()),
        concurrency: None,
        // A live load must never hold the boot for long; the node's unit
        // waits as long as Harbor takes.
        wait_timeout: live.then_some(LIVE_WAIT_TIMEOUT),
        deadline: live.then_some(LIVE_DEADLINE),
        webhook: match spec.site.image_redirect_webhook {
            Some(true) if !live => WebhookConfig {
                listen: None,
                tls_cert: Some(site.site_file(out::WEBHOOK_CERT).into()),
                tls_key: Some(site.site_file(out::WEBHOOK_KEY).into()),
            },
            _ => WebhookConfig::default(),
        },
    }
}
