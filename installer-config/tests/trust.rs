//! The spec's `trust.publicKey` (decision 0015): checked at spec load as a
//! P-256 public key (errors at file:line), copied into the site output, and
//! set as `trust:` in the node's and the live load's agent configuration.

mod common;

use std::path::{Path, PathBuf};

use common::render_to;
use edgeiso_contract::paths::{live, node, out as paths};
use edgeiso_contract::AgentConfig;
use edgeiso_installer_config::{RenderOptions, Spec};
use edgeiso_testkit::signing::keypair_on;

/// `keys/NAME.pem` and `keys/NAME.pub` in `dir`, on `curve`.
fn keypair(dir: &Path, name: &str, curve: &str) -> (PathBuf, PathBuf) {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    keypair_on(&keys, name, curve)
}

fn spec_text(public_key: &str) -> String {
    format!("name: store-042\nimages:\n  - docker.io/library/nginx:1.25\ntrust:\n  publicKey: {public_key}\n")
}

fn load(dir: &Path, public_key: &str) -> Result<Spec, String> {
    let path = dir.join("site.yaml");
    std::fs::write(&path, spec_text(public_key)).unwrap();
    Spec::load(&path).map_err(|e| e.to_string())
}

#[test]
fn the_key_is_resolved_against_the_spec_rendered_into_the_site_and_set_in_both_agent_configs() {
    let d = tempfile::tempdir().unwrap();
    let (_, public) = keypair(d.path(), "site", "P-256");
    let spec = load(d.path(), "keys/site.pub").unwrap();
    let trust = spec.trust.as_ref().expect("trust");
    assert_eq!(trust.public_key, d.path().join("keys/site.pub"));

    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    let copied = out.join(paths::TRUST_KEY);
    assert_eq!(std::fs::read(&copied).unwrap(), std::fs::read(&public).unwrap(), "the key as given");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777, 0o644);
    let agent = AgentConfig::from_yaml(&std::fs::read_to_string(out.join(paths::AGENT_CONFIG)).unwrap()).unwrap();
    assert_eq!(agent.trust, Some(PathBuf::from(node::TRUST_KEY)));
    assert_eq!(report.live_agent_config.trust, Some(PathBuf::from(format!("{}/{}", live::SITE_DIR, paths::TRUST_KEY))));
}

#[test]
fn without_trust_nothing_is_rendered_and_the_agent_checks_nothing() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("site.yaml");
    std::fs::write(&path, "name: store-042\nimages:\n  - docker.io/library/nginx:1.25\n").unwrap();
    let spec = Spec::load(&path).unwrap();
    assert!(spec.trust.is_none());
    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert!(!out.join(paths::TRUST_KEY).exists());
    let agent = std::fs::read_to_string(out.join(paths::AGENT_CONFIG)).unwrap();
    assert!(!agent.contains("trust"), "{agent}");
    assert_eq!(report.live_agent_config.trust, None);
}

#[test]
fn a_key_that_is_not_a_p256_public_key_is_refused_at_spec_load_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let (private, _) = keypair(d.path(), "site", "P-256");
    let (_, p384) = keypair(d.path(), "big", "P-384");
    std::fs::write(d.path().join("keys/junk.pub"), "hello\n").unwrap();
    let at = format!("{}:5:14:", d.path().join("site.yaml").display());
    for (key, why) in [
        ("keys/none.pub", "no such file"),
        (private.to_str().unwrap(), "not a public key"),
        ("keys/big.pub", "not an ECDSA P-256 public key"),
        ("keys/junk.pub", "not a PEM file"),
    ] {
        let e = load(d.path(), key).unwrap_err();
        assert!(e.starts_with(&at), "{key}: {e}");
        assert!(e.contains("trust.publicKey") && e.contains(why), "{key}: {e}");
    }
    drop(p384);
    let path = d.path().join("site.yaml");
    std::fs::write(&path, "name: s\ntrust:\n  publicKy: keys/site.pub\n").unwrap();
    let e = Spec::load(&path).unwrap_err().to_string();
    assert!(e.contains("publicKy"), "typos are caught: {e}");
}
