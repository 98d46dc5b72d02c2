//! `edgeiso-agent load --trust PUB.pem` and `trust:` in agent.yaml
//! (decision 0015), against a real docker-registry: signed bundles load;
//! unsigned ones, another key's, and ones whose bundle.json changed after
//! signing are refused with exit 9 naming the bundle, and the registry
//! stays empty.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use edgeiso_bundle::signature::{signature_path, SigningKey};
use edgeiso_testkit::signing::{change_bundle_json, keypair, openssl_sign};
use edgeiso_testkit::{image_with_layer, Registry};

const UNTRUSTED: i32 = 9;

/// A bundle `content-NAME.tar` (or parts) of two small workload images.
fn bundle(dir: &Path, name: &str, seed: u64, part_size: Option<u64>) -> Vec<PathBuf> {
    let a = image_with_layer(&format!("{name}/app"), "1.0", 30_000, seed);
    let b = image_with_layer(&format!("{name}/web"), "2.1", 30_000, seed + 1);
    let entries = [
        Entry::workload(&a, &format!("docker.io/{name}/app:1.0")),
        Entry::workload(&b, &format!("docker.io/{name}/web:2.1")),
    ];
    write_bundle(dir, name, &entries, part_size)
}

/// Sign the way `edgeiso bundle sign` does (the same library call).
fn edgeiso_sign(first: &Path, key: &Path) {
    let b = edgeiso_bundle::Bundle::open(first).unwrap();
    let text = SigningKey::read(key, None).unwrap().sign(&b.meta_bytes).unwrap();
    std::fs::write(signature_path(first), text).unwrap();
}

fn refused(out: &std::process::Output, bundle: &str, why: &str) {
    assert_eq!(out.status.code(), Some(UNTRUSTED));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(bundle) && err.contains(why) && err.contains("nothing pushed"), "{err}");
}

#[test]
fn signed_bundles_load_by_openssl_and_by_edgeiso_split_ones_too() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "site");
    let one = bundle(dir.path(), "one", 1, None).remove(0);
    openssl_sign(&one, &key);
    let parts = bundle(dir.path(), "two", 10, Some(20_000));
    assert!(parts.len() > 1);
    edgeiso_sign(&parts[0], &key);
    assert!(dir.path().join("content-two.tar.sig").is_file());

    let trust = ["--trust", public.to_str().unwrap(), "--json"];
    let out = run(load_cmd(&reg.url(), &one, &dir.path().join("s1"), &trust));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(done_event(&out)["loaded"], 2);
    let out = run(load_cmd(&reg.url(), &parts[0], &dir.path().join("s2"), &trust));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(done_event(&out)["loaded"], 2);
    assert_eq!(reg.catalog().len(), 4);
}

#[test]
fn unsigned_another_keys_and_changed_after_signing_push_nothing_and_exit_9() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "site");
    let (other, _) = keypair(dir.path(), "other");
    let tar = bundle(dir.path(), "b", 1, None).remove(0);
    let trust = ["--trust", public.to_str().unwrap()];
    let state = dir.path().join("state");

    let out = run(load_cmd(&reg.url(), &tar, &state, &trust));
    refused(&out, "content-b.tar", "unsigned");

    openssl_sign(&tar, &other);
    let out = run(load_cmd(&reg.url(), &tar, &state, &trust));
    refused(&out, "content-b.tar", "another key");

    // Signed by the right key, then bundle.json changed (same length: the
    // tar and every checksum stay valid, only the signature can tell).
    openssl_sign(&tar, &key);
    change_bundle_json(&tar);
    let out = run(load_cmd(&reg.url(), &tar, &state, &trust));
    refused(&out, "content-b.tar", "changed after signing");

    assert!(reg.catalog().is_empty(), "a refused bundle pushed {:?}", reg.catalog());
    // Without --trust the same bundle loads: the refusal was the signature's.
    let out = run(load_cmd(&reg.url(), &tar, &state, &[]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn trust_in_the_config_file_refuses_the_run_when_one_bundle_of_several_is_unsigned() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "site");
    let content = dir.path().join("content");
    std::fs::create_dir(&content).unwrap();
    let good = bundle(&content, "good", 1, None).remove(0);
    openssl_sign(&good, &key);
    bundle(&content, "stray", 5, None);
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "registry: {}\nbundles: [{}]\nstateDir: {}\ntrust: {}\nwaitTimeout: 20s\n",
            reg.url(),
            content.display(),
            dir.path().join("state").display(),
            public.display()
        ),
    )
    .unwrap();
    let mut cmd = agent();
    cmd.args(["load", "--config"]).arg(&config);
    let out = run(cmd);
    refused(&out, "content-stray.tar", "unsigned");
    assert!(reg.catalog().is_empty(), "{:?}", reg.catalog());

    // A trust key that is not a P-256 public key is a bad setting.
    let mut cmd = agent();
    cmd.args(["load", "--config"]).arg(&config).arg("--trust").arg(&key);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("site.pem"));
}
