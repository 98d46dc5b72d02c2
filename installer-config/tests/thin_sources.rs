//! A thin bundle's source registries (`RenderOptions::fetch_from`): one
//! `sources:` entry per upstream host in the node's and the live load's
//! agent configuration, from the spec's `registries[]`, with the password
//! (0600) and CA copied into the site folder under `sources/`. A whole
//! bundle gets none.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::render_to;
use edgeiso_contract::agent_config::SourceRegistry;
use edgeiso_contract::paths::{live, node, out as paths};
use edgeiso_contract::AgentConfig;
use edgeiso_installer_config::{RenderOptions, Spec};

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

/// A site with images from three hosts: a plain-HTTP one with a password
/// file, one with a CA and a password in `password_env`, one with no entry.
fn site(dir: &Path, password_env: &str) -> Spec {
    std::fs::write(dir.join("local.pw"), "local-secret\n").unwrap();
    std::fs::write(dir.join("ghcr.pem"), CA).unwrap();
    let path = dir.join("site.yaml");
    std::fs::write(
        &path,
        format!(
            "name: store-042\n\
             images:\n  - 127.0.0.1:5000/team/app:1.0\n  - ghcr.io/org/tool:2.0\n  - quay.io/x/y:1\n\
             registries:\n\
             \x20 - host: 127.0.0.1:5000\n    insecure: true\n    username: puller\n    passwordFile: local.pw\n\
             \x20 - host: ghcr.io\n    caFile: ghcr.pem\n    username: bot\n    passwordEnv: {password_env}\n"
        ),
    )
    .unwrap();
    Spec::load(&path).unwrap()
}

fn thin(hosts: &[&str]) -> RenderOptions {
    RenderOptions { fetch_from: hosts.iter().map(|h| h.to_string()).collect::<BTreeSet<_>>(), ..Default::default() }
}

fn node_agent(out: &Path) -> AgentConfig {
    AgentConfig::from_yaml(&std::fs::read_to_string(out.join(paths::AGENT_CONFIG)).unwrap()).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_thin_bundle_gives_both_agents_a_source_per_host_with_its_files_in_the_site_folder() {
    let d = tempfile::tempdir().unwrap();
    let var = "EDGEISO_TEST_THIN_SOURCES_GHCR_PW";
    // Only this test reads this variable.
    std::env::set_var(var, "ghcr-secret");
    let spec = site(d.path(), var);
    let out = d.path().join("out");
    // docker's alias of a host is one host; hosts are listed in order.
    let report = render_to(&spec, &out, &thin(&["quay.io", "ghcr.io", "127.0.0.1:5000", "GHCR.io"])).unwrap();

    let at = |dir: &str, rel: Option<String>| rel.map(|r| PathBuf::from(format!("{dir}/{r}")));
    let expected = |dir: &str| {
        vec![
            SourceRegistry {
                host: "127.0.0.1:5000".into(),
                insecure: true,
                ca_file: None,
                username: Some("puller".into()),
                password_file: at(dir, Some(paths::source_password(0))),
            },
            SourceRegistry {
                host: "ghcr.io".into(),
                insecure: false,
                ca_file: at(dir, Some(paths::source_ca(1))),
                username: Some("bot".into()),
                password_file: at(dir, Some(paths::source_password(1))),
            },
            // No registries[] entry: HTTPS, anonymous.
            SourceRegistry { host: "quay.io".into(), ..Default::default() },
        ]
    };
    assert_eq!(node_agent(&out).sources, expected(node::SITE_DIR));
    assert_eq!(report.live_agent_config.sources, expected(live::SITE_DIR));

    let pw0 = out.join(paths::source_password(0));
    let pw1 = out.join(paths::source_password(1));
    assert_eq!(std::fs::read_to_string(&pw0).unwrap(), "local-secret\n");
    assert_eq!(std::fs::read_to_string(&pw1).unwrap(), "ghcr-secret\n");
    assert_eq!((mode(&pw0), mode(&pw1)), (0o600, 0o600), "passwords are the agent's alone");
    let ca = out.join(paths::source_ca(1));
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), CA);
    assert_eq!(mode(&ca), 0o644);
    assert!(!out.join(paths::source_ca(0)).exists() && !out.join(paths::source_password(2)).exists());

    // The passwords are in their files only: not in agent.yaml, not in the user-data.
    for f in report.files.iter() {
        if f.path.starts_with(paths::SOURCES_DIR) {
            continue;
        }
        let text = std::fs::read_to_string(out.join(&f.path)).unwrap_or_default();
        assert!(!text.contains("ghcr-secret") && !text.contains("local-secret"), "a password in {}", f.path);
    }
}

#[test]
fn a_whole_bundle_or_none_gives_no_sources_and_no_source_files() {
    let d = tempfile::tempdir().unwrap();
    // The variable is never read: no source, no password.
    let spec = site(d.path(), "EDGEISO_TEST_THIN_SOURCES_NEVER_SET");
    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions { bundle_bytes: Some(1 << 30), ..Default::default() }).unwrap();
    assert!(node_agent(&out).sources.is_empty());
    assert!(report.live_agent_config.sources.is_empty());
    assert!(!std::fs::read_to_string(out.join(paths::AGENT_CONFIG)).unwrap().contains("sources"));
    assert!(!out.join(paths::SOURCES_DIR).exists());
}

#[test]
fn an_unset_password_variable_is_an_error_naming_the_spec_line_and_the_variable() {
    let d = tempfile::tempdir().unwrap();
    let var = "EDGEISO_TEST_THIN_SOURCES_UNSET";
    let spec = site(d.path(), var);
    let out = d.path().join("out");
    let e = render_to(&spec, &out, &thin(&["ghcr.io"])).unwrap_err().to_string();
    // The ghcr.io entry starts on line 11 of the spec.
    assert!(e.contains("site.yaml:11") && e.contains(var) && e.contains("ghcr.io"), "{e}");
    assert!(!out.exists(), "nothing written");
    // A host whose entry needs no variable renders.
    render_to(&spec, &out, &thin(&["127.0.0.1:5000"])).unwrap();
    assert_eq!(node_agent(&out).sources.len(), 1);
}
