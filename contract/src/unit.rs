//! The systemd unit that runs the agent on the installed node. One file,
//! `contract/dist/edgeiso-agent.service`: render ships it as it is, the
//! agent's contract test checks its exit-status policy against the agent's
//! documented exit codes, and its paths against [`crate::paths::node`].

/// The unit's name once installed.
pub const AGENT_UNIT_NAME: &str = "edgeiso-agent.service";

/// The unit's text.
pub const AGENT_UNIT: &str = include_str!("../dist/edgeiso-agent.service");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::node;

    #[test]
    fn the_unit_runs_the_agent_where_the_node_layout_puts_it() {
        let exec = AGENT_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        assert_eq!(exec, format!("{} load --config {}", node::AGENT_BIN, node::AGENT_CONFIG));
        assert!(AGENT_UNIT.contains(&format!("ConditionPathExists={}", node::AGENT_CONFIG)));
        assert!(AGENT_UNIT.contains(&format!("ReadWritePaths={} -{}", node::ROOT, node::DEFAULT_STATE_DIR)));
        assert!(node::UNIT.ends_with(AGENT_UNIT_NAME));
    }
}
