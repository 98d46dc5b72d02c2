//! Contracts with the other parts of edgeiso: the agent.yaml that render
//! writes must be read by the agent as written, and the systemd unit must
//! stay a oneshot that runs after the network and Kubernetes.

use edgeiso_agent::config::AgentConfig;

#[test]
fn the_rendered_agent_yaml_reads_back_field_for_field() {
    let rendered = edgeiso_installer_config::AgentConfig {
        registry: Some("https://10.0.0.5:30003".into()),
        project: Some("spectro-images".into()),
        ca: Some("/usr/local/edgeiso/site/harbor/ca.crt".into()),
        insecure: true,
        username: Some("admin".into()),
        password_file: Some("/usr/local/edgeiso/site/harbor/admin-password".into()),
        bundles: vec!["/usr/local/edgeiso/content".into(), "/run/initramfs/live".into()],
        state_dir: Some("/usr/local/edgeiso/state".into()),
    };
    let ours: AgentConfig = serde_saphyr::from_str(&rendered.to_yaml()).expect("the agent reads render's agent.yaml");
    assert_eq!(ours.registry, rendered.registry);
    assert_eq!(ours.project, rendered.project);
    assert_eq!(ours.ca, rendered.ca);
    assert_eq!(ours.insecure, rendered.insecure);
    assert_eq!(ours.username, rendered.username);
    assert_eq!(ours.password_file, rendered.password_file);
    assert_eq!(ours.bundles, rendered.bundles);
    assert_eq!(ours.state_dir, rendered.state_dir);
}

#[test]
fn the_systemd_unit_is_a_oneshot_after_network_and_kubernetes_restarting_on_failure() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/edgeiso-agent.service")).unwrap();
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
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/edgeiso-agent.service")).unwrap();
    let prevent: std::collections::BTreeSet<u8> = unit
        .lines()
        .find_map(|l| l.strip_prefix("RestartPreventExitStatus="))
        .expect("RestartPreventExitStatus in the unit")
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    let table = documented_exit_statuses();
    let codes: Vec<u8> = table.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, (0..=8).collect::<Vec<u8>>(), "every exit status documented, in order");
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
    ] {
        assert!(codes.contains(&s.code()));
    }
    assert_eq!(edgeiso_agent::ExitStatus::Deadline.code(), 8);
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
        "--json",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} missing from load --help");
    }
    assert!(help.contains("EDGEISO_REGISTRY_PASSWORD"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso-agent")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for code in 0..=8 {
        assert!(help.contains(&format!("  {code}  ")), "exit status {code} undocumented");
    }
    // A password on the command line is not even an option.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso-agent"))
        .args(["load", "--registry", "http://127.0.0.1:1", "--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
