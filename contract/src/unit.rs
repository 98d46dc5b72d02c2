//! The systemd units that run the agent on the installed node, one file
//! each under `contract/dist/`: render ships them as they are, the agent's
//! contract test checks the load unit's exit-status policy against the
//! agent's documented exit codes, and these tests their paths against
//! [`crate::paths::node`].

/// The unit's name once installed.
pub const AGENT_UNIT_NAME: &str = "edgeiso-agent.service";

/// The unit's text.
pub const AGENT_UNIT: &str = include_str!("../dist/edgeiso-agent.service");

/// The image-redirect webhook's unit, once installed. It starts after the
/// load unit has finished its first run (`After=`), and serves for as long
/// as the node runs.
pub const WEBHOOK_UNIT_NAME: &str = "edgeiso-webhook.service";
pub const WEBHOOK_UNIT: &str = include_str!("../dist/edgeiso-webhook.service");

/// kubeadm sites: what k3s/RKE2 do by themselves (import the bootstrap
/// images, apply the deploy folder), done by a script its unit retries until
/// the API server answers. Both ship as they are.
pub const KUBEADM_UNIT_NAME: &str = "edgeiso-kubeadm-bootstrap.service";
pub const KUBEADM_UNIT: &str = include_str!("../dist/edgeiso-kubeadm-bootstrap.service");
pub const KUBEADM_BOOTSTRAP: &str = include_str!("../dist/edgeiso-kubeadm-bootstrap.sh");

/// Updates by courier stick: a udev rule starts the template unit for a
/// file system whose label starts with [`COURIER_LABEL`] (`EDGEISO-UPD`: a
/// FAT label holds 11 characters; `EDGEISO-UPDATE` where the file system
/// allows); the unit runs the script.
pub const COURIER_LABEL: &str = "EDGEISO-UPD";
pub const COURIER_UNIT_NAME: &str = "edgeiso-courier@.service";
pub const COURIER_UNIT: &str = include_str!("../dist/edgeiso-courier@.service");
pub const COURIER_SCRIPT: &str = include_str!("../dist/edgeiso-courier.sh");
pub const COURIER_RULE: &str = include_str!("../dist/90-edgeiso-courier.rules");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::node;

    #[test]
    fn the_unit_runs_the_agent_where_the_node_layout_puts_it() {
        let exec = AGENT_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        assert_eq!(exec, crate::load_command::node_load_command());
        assert!(AGENT_UNIT.contains(&format!("ConditionPathExists={}", node::AGENT_CONFIG)));
        assert!(AGENT_UNIT.contains(&format!("ReadWritePaths={} -{}", node::ROOT, node::DEFAULT_STATE_DIR)));
        assert!(node::UNIT.ends_with(AGENT_UNIT_NAME));
        // Every place the agent installs node mirror files is writable.
        let writable: Vec<&str> = AGENT_UNIT
            .lines()
            .filter_map(|l| l.strip_prefix("ReadWritePaths="))
            .flat_map(str::split_whitespace)
            .map(|p| p.trim_start_matches('-'))
            .collect();
        let mut installs = vec![node::CONTAINERD_CERTS_D.to_owned(), node::CONTAINERD_REGISTRY_DROP_IN.to_owned()];
        for dist in ["k3s", "rke2"] {
            installs.push(node::rancher_registries_yaml(dist));
            installs.push(node::rancher_certs_d(dist));
        }
        for path in installs {
            assert!(writable.iter().any(|w| path.starts_with(&format!("{w}/"))), "{path} in {writable:?}");
        }
    }

    #[test]
    fn the_webhook_unit_serves_after_the_first_load_with_no_privilege_it_does_not_need() {
        let exec = WEBHOOK_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        assert_eq!(exec, format!("{} webhook --config {}", node::AGENT_BIN, node::AGENT_CONFIG));
        assert!(WEBHOOK_UNIT.contains(&format!("ConditionPathExists={}", node::WEBHOOK_KEY)));
        let after = WEBHOOK_UNIT.lines().find_map(|l| l.strip_prefix("After=")).expect("After");
        assert!(after.split_whitespace().any(|u| u == AGENT_UNIT_NAME), "{after}");
        // Reads only: no writable path, no capability (port 8443 needs none).
        assert!(WEBHOOK_UNIT.contains("ProtectSystem=strict") && !WEBHOOK_UNIT.contains("ReadWritePaths"));
        assert!(WEBHOOK_UNIT.lines().any(|l| l == "CapabilityBoundingSet="));
        assert!(node::WEBHOOK_UNIT.ends_with(WEBHOOK_UNIT_NAME));
    }

    #[test]
    fn the_kubeadm_unit_runs_the_script_where_the_node_layout_puts_it() {
        let exec = KUBEADM_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        assert_eq!(exec, format!("/bin/sh {}", node::KUBEADM_BOOTSTRAP));
        assert!(KUBEADM_UNIT.contains(&format!("ConditionPathExists={}", node::KUBEADM_BOOTSTRAP)));
        assert!(node::KUBEADM_UNIT.ends_with(KUBEADM_UNIT_NAME));
        // The script's defaults are the node layout.
        for (var, path) in [
            ("EDGEISO_IMAGES_DIR", node::IMAGES_DIR.to_owned()),
            ("EDGEISO_MANIFESTS_DIR", format!("{}/{}", node::SITE_DIR, crate::paths::out::MANIFESTS)),
            ("EDGEISO_IMPORTED_DIR", format!("{}/imported", node::DEFAULT_STATE_DIR)),
        ] {
            assert!(KUBEADM_BOOTSTRAP.contains(&format!("${{{var}:-{path}}}")), "{var} defaults to {path}");
        }
        // Waiting for the API server must not hold up boot: not a oneshot.
        assert!(KUBEADM_UNIT.lines().any(|l| l == "Type=exec"));
        assert!(KUBEADM_UNIT.lines().any(|l| l == "StateDirectory=edgeiso"));
    }

    #[test]
    fn the_courier_rule_unit_and_script_agree_with_the_node_layout() {
        let rule = COURIER_RULE.lines().find(|l| !l.starts_with('#')).expect("a rule");
        assert!(rule.contains(&format!("ENV{{ID_FS_LABEL}}==\"{COURIER_LABEL}*\"")), "{rule}");
        let wants = COURIER_UNIT_NAME.replace("@.service", "@%k.service");
        assert!(rule.contains(&format!("ENV{{SYSTEMD_WANTS}}+=\"{wants}\"")), "{rule}");
        let exec = COURIER_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        assert_eq!(exec, format!("/bin/sh {} /dev/%I", node::COURIER_SCRIPT));
        assert!(COURIER_UNIT.contains(&format!("ConditionPathExists={}", node::AGENT_CONFIG)));
        assert!(node::COURIER_UNIT.ends_with(COURIER_UNIT_NAME));
        for (var, path) in [
            ("EDGEISO_AGENT", node::AGENT_BIN),
            ("EDGEISO_AGENT_CONFIG", node::AGENT_CONFIG),
            ("EDGEISO_STATE_DIR", node::STATE_DIR),
        ] {
            assert!(COURIER_SCRIPT.contains(&format!("${{{var}:-{path}}}")), "{var} defaults to {path}");
        }
        // The load's deadline is the node unit's (decision 0013).
        let deadline = humantime::format_duration(crate::load_command::NODE_DEADLINE).to_string();
        assert!(COURIER_SCRIPT.contains(&format!("--deadline {deadline} ")), "{deadline}");
    }
}
