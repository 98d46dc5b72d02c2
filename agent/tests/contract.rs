//! Contracts with the other parts of edgeiso: the systemd unit (shipped by
//! render from `edgeiso_contract::unit`) must stay a oneshot that runs after
//! the network and Kubernetes, and restart exactly when the agent's exit
//! status says a retry can help. (agent.yaml needs no such test: render and
//! the agent share `edgeiso_contract::AgentConfig`.)

use edgeiso_contract::unit::AGENT_UNIT;

#[test]
fn the_systemd_unit_is_a_oneshot_after_network_and_kubernetes_restarting_on_failure() {
    let unit = AGENT_UNIT;
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    assert!(has("Type=oneshot"));
    assert!(has("Restart=on-failure"));
    assert!(has("WantedBy=multi-user.target"));
    assert!(has("Wants=network-online.target"));
    let after = unit.lines().find(|l| l.starts_with("After=")).unwrap();
    for dep in ["network-online.target", "k3s.service", "rke2-server.service"] {
        assert!(after.contains(dep), "{after}");
    }
    assert!(unit
        .contains("ExecStart=/usr/local/edgeiso/bin/edgeiso-agent load --config /usr/local/edgeiso/site/agent.yaml"));
    assert!(!unit.to_lowercase().contains("password="), "no secret in the unit");
}

/// `docs/agent.md`'s exit status table: (code, "retry helps?" column).
fn documented_exit_statuses() -> Vec<(u8, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/agent.md")).unwrap();
    let table = doc.split("### Exit status").nth(1).expect("an exit status section");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            Some((cells.first()?.parse().ok()?, cells.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn the_unit_restarts_exactly_on_the_exit_statuses_the_docs_say_a_retry_can_help() {
    let unit = AGENT_UNIT;
    let prevent: std::collections::BTreeSet<u8> = unit
        .lines()
        .find_map(|l| l.strip_prefix("RestartPreventExitStatus="))
        .expect("RestartPreventExitStatus in the unit")
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    let table = documented_exit_statuses();
    let codes: Vec<u8> = table.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, (0..=9).collect::<Vec<u8>>(), "every exit status documented, in order");
    for (code, retry) in &table {
        let hopeless = retry.starts_with("no");
        assert_eq!(
            prevent.contains(code),
            hopeless,
            "exit {code}: docs say retry helps? {retry:?}, unit prevents restart on {prevent:?}"
        );
    }
    // And the code's own numbers agree with the table.
    for s in [
        edgeiso_agent::ExitStatus::Internal,
        edgeiso_agent::ExitStatus::ImagesFailed,
        edgeiso_agent::ExitStatus::Deadline,
        edgeiso_agent::ExitStatus::Untrusted,
    ] {
        assert!(codes.contains(&s.code()));
    }
    assert_eq!(edgeiso_agent::ExitStatus::Deadline.code(), 8);
    assert_eq!(edgeiso_agent::ExitStatus::Untrusted.code(), 9);
}

#[test]
fn help_lists_every_documented_flag_and_exit_status() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso-agent")).args(["load", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bundle",
        "--registry",
        "--project",
        "--ca",
        "--insecure",
        "--username",
        "--password-file",
        "--concurrency",
        "--state-dir",
        "--wait-timeout",
        "--deadline",
        "--trust",
        "--json",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} missing from load --help");
    }
    assert!(help.contains("EDGEISO_REGISTRY_PASSWORD"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso-agent")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for code in 0..=9 {
        assert!(help.contains(&format!("  {code}  ")), "exit status {code} undocumented");
    }
    // A password on the command line is not even an option.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso-agent"))
        .args(["load", "--registry", "http://127.0.0.1:1", "--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_are_not_stale() {
    use clap::CommandFactory;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man/edgeiso-agent");
    let stale = edgeiso_contract::cli_docs::stale_man_pages(edgeiso_agent::cli::Cli::command(), &dir);
    assert!(stale.is_empty(), "stale man pages in docs/man: {stale:?}; run `bash scripts/gen-docs.sh`");
}

/// The unit's `ExecStart=` and the live hook's command line (both from
/// `edgeiso_contract::load_command`) are ones this agent accepts, with the
/// deadline they mean to pass.
#[test]
fn the_agent_accepts_the_units_and_the_live_hooks_command_lines_with_their_deadlines() {
    use clap::Parser;
    use edgeiso_agent::cli::{Cli, Command};
    use edgeiso_contract::agent_config::LIVE_DEADLINE;
    use edgeiso_contract::load_command::{live_load_command, node_load_command, NODE_DEADLINE};
    let exec = AGENT_UNIT.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    for (command, deadline) in [(exec.to_owned(), NODE_DEADLINE), (live_load_command(), LIVE_DEADLINE)] {
        let cli = Cli::try_parse_from(command.split_whitespace()).unwrap_or_else(|e| panic!("{command}: {e}"));
        let Command::Load(args) = cli.command else { panic!("{command}: not a load") };
        assert_eq!(args.settings.deadline, Some(deadline), "{command}");
        assert!(args.config.is_some(), "{command}");
    }
    assert_eq!(exec, node_load_command());
}
