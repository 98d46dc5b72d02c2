//! How the node's systemd unit and the live boot's dracut hook start a load:
//! the agent's command line, deadline included, in one place. The unit's
//! `ExecStart=` (a static file under `dist/`) is checked against
//! [`node_load_command`] here, the hook is built from [`live_load_command`]
//! (overlay's `hook`), and the agent's contract test parses both with the
//! agent's own command line.

use std::time::Duration;

use crate::agent_config::LIVE_DEADLINE;
use crate::paths::{live, node};

/// The node unit's whole-run bound. Every run of the unit ends by then (exit
/// 8, journal consistent, uploads resumable) and systemd starts the next one
/// `RestartSec` later, which continues from the journal: so a slow but
/// working load still finishes, over several runs, while a run stuck in a
/// way no per-request timeout sees (a wedged bundle read, a registry that
/// answers every retry just in time) is ended instead of holding
/// `multi-user.target` (which is ordered after the oneshot it wants) for
/// ever. Two hours covers the 30 minute `--wait-timeout` plus a large
/// bundle into a local Harbor; it stays well under the unit's own
/// `TimeoutStartSec=` ([`NODE_UNIT_START_TIMEOUT`]), so systemd's kill is
/// only the backstop of the agent's own, orderly, stop.
pub const NODE_DEADLINE: Duration = Duration::from_secs(2 * 60 * 60);

/// The unit's `TimeoutStartSec=`: the deadline, the agent's 15 s grace after
/// it and a wide margin for a slow shutdown, as systemd spells it.
pub const NODE_UNIT_START_TIMEOUT: &str = "150min";

/// `edgeiso-agent load` with `config` and `deadline`, as one shell/systemd
/// command line (no argument needs quoting: the paths are ours).
fn load_command(bin: &str, config: &str, deadline: Duration) -> String {
    format!("{bin} load --config {config} --deadline {}", humantime::format_duration(deadline))
}

/// The unit's `ExecStart=`.
pub fn node_load_command() -> String {
    load_command(node::AGENT_BIN, node::AGENT_CONFIG, NODE_DEADLINE)
}

/// What the live hook runs (it adds its `--outcome-file` and `--json`). The
/// live configuration carries the same deadline (`deadline:`, render); the
/// flag keeps a live boot bounded whatever the file says.
pub fn live_load_command() -> String {
    load_command(live::AGENT_BIN, live::AGENT_CONFIG, LIVE_DEADLINE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::AGENT_UNIT;

    #[test]
    fn the_node_unit_runs_the_load_with_its_deadline_under_the_units_own_timeout() {
        let exec = AGENT_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        assert_eq!(exec, node_load_command());
        assert!(exec.ends_with(" --deadline 2h"), "{exec}");
        let start = AGENT_UNIT.lines().find_map(|l| l.strip_prefix("TimeoutStartSec=")).expect("TimeoutStartSec");
        assert_eq!(start, NODE_UNIT_START_TIMEOUT);
        let start = humantime::parse_duration(start).expect("systemd's span parses");
        assert!(start >= NODE_DEADLINE + Duration::from_secs(15 * 60), "{start:?}");
    }

    #[test]
    fn the_live_load_has_its_deadline_on_the_command_line() {
        assert_eq!(
            live_load_command(),
            format!("{} load --config {} --deadline 10m", live::AGENT_BIN, live::AGENT_CONFIG)
        );
    }
}
