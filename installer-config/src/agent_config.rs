//! `agent.yaml`: the agent's configuration file, written by render and read
//! by the agent's systemd unit (`edgeiso-agent load --config FILE`). Both sides
//! share this struct; the keys are the contract (the agent also pins them in
//! its own tests).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// `https://host:port` (TLS) or `http://host:port` (plain HTTP) of the site Harbor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Harbor project every image goes under (`spectro-images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// PEM CA to trust for the registry, a path on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Skip TLS verification. Render never sets it: it writes `ca` instead.
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the registry password, a path on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Bundle files, first parts or folders to search, on the node.
    #[serde(default)]
    pub bundles: Vec<PathBuf>,
    /// Where the agent keeps its journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
}

impl AgentConfig {
    pub fn to_yaml(&self) -> String {
        crate::yaml::to_string(self)
    }
    pub fn from_yaml(text: &str) -> Result<AgentConfig, serde_saphyr::Error> {
        serde_saphyr::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_contract() {
        let c = AgentConfig {
            registry: Some("https://127.0.0.1:30003".into()),
            project: Some("spectro-images".into()),
            ca: Some("/ca.crt".into()),
            insecure: false,
            username: Some("admin".into()),
            password_file: Some("/pw".into()),
            bundles: vec!["/b".into()],
            state_dir: Some("/s".into()),
        };
        let y = c.to_yaml();
        for key in ["registry:", "project:", "ca:", "insecure:", "username:", "passwordFile:", "bundles:", "stateDir:"]
        {
            assert!(y.contains(key), "{key} in {y}");
        }
        assert_eq!(AgentConfig::from_yaml(&y).unwrap(), c);
        assert!(AgentConfig::from_yaml("registy: x\n").is_err());
    }
}
