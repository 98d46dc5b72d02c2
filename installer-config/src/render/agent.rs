//! The agent's configuration for a site: one function for the node's
//! `agent.yaml` (the systemd unit's) and the live load's (the initramfs
//! overlay's), which differ only in where the agent finds the site's files
//! and how long a live load may hold the boot.

use edgeiso_contract::agent_config::{NodeMirrorsConfig, WebhookConfig};
use edgeiso_contract::agent_config::{LIVE_DEADLINE, LIVE_WAIT_TIMEOUT};
use edgeiso_contract::paths::{node, out, AgentSite};
use edgeiso_contract::AgentConfig;

use super::sources::Source;
use crate::spec::Spec;

/// What render wrote for the agent besides the spec: the same for the node
/// and the live load.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    /// Harbor's CA is in the site folder.
    pub has_ca: bool,
    /// Harbor's admin password is in the site folder.
    pub has_password: bool,
    /// A thin bundle's source registries (empty for a whole bundle).
    pub sources: &'a [Source],
}

/// The configuration of an agent that sees the site's files at `site`.
/// The webhook runs on the installed node only.
pub fn agent_config(spec: &Spec, site: &AgentSite, agent: &Agent) -> AgentConfig {
    let Agent { has_ca, has_password, sources } = *agent;
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
        // Live and node alike: the site's key reaches both with the site files.
        trust: spec.trust.as_ref().map(|_| site.site_file(out::TRUST_KEY).into()),
        webhook: match spec.site.image_redirect_webhook {
            Some(true) if !live => WebhookConfig {
                listen: None,
                tls_cert: Some(site.site_file(out::WEBHOOK_CERT).into()),
                tls_key: Some(site.site_file(out::WEBHOOK_KEY).into()),
            },
            _ => WebhookConfig::default(),
        },
        node_mirrors: if live { NodeMirrorsConfig::default() } else { node_mirrors(spec, site) },
        // Live and node alike: a live load fetches what a thin bundle leaves out too.
        sources: sources.iter().map(|s| s.at(site)).collect(),
    }
}

/// What the node's agent completes with the nodes' pull credential and
/// installs (decision 0012): render's credential-free files from the site
/// folder, to where containerd and k3s/RKE2 read them.
fn node_mirrors(spec: &Spec, site: &AgentSite) -> NodeMirrorsConfig {
    let dist = spec.kubernetes.distribution;
    let rancher = dist.is_rancher();
    let mut install_certs_d = vec![node::CONTAINERD_CERTS_D.into()];
    if rancher {
        // k3s/RKE2's containerd reads its own certs.d at every pull; they
        // regenerate it from registries.yaml (credential included) at start.
        install_certs_d.push(node::rancher_certs_d(dist.as_str()).into());
    }
    NodeMirrorsConfig {
        certs_d: Some(site.site_file(out::CERTS_D).into()),
        registries_yaml: rancher.then(|| site.site_file(out::K3S_REGISTRIES).into()),
        registry_host: Some(spec.harbor.url.authority()),
        install_certs_d,
        install_registries_yaml: rancher.then(|| node::rancher_registries_yaml(dist.as_str()).into()),
        keep_dir: Some(node::NODE_PULL_DIR.into()),
    }
}
