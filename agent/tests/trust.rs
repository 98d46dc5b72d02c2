//! `edgeiso-agent load --trust PUB.pem` and `trust:` in agent.yaml
//! (decision 0015), against a real docker-registry: signed bundles load;
//! unsigned ones, another key's, and ones whose bundle.json changed after
//! signing are refused with exit 9 naming the bundle, and the registry
//! stays empty.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use edgeiso_bundle::signature::{signature_path, SigningKey};
use edgeiso_testkit::{image_with_layer, Registry};

const UNTRUSTED: i32 = 9;

fn sh(script: &str) {
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", script]).output().expect("bash");
    assert!(out.status.success(), "{script}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// An openssl P-256 key pair: `NAME.pem`, `NAME.pub`.
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub")));
    sh(&format!(
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '{k}' && openssl pkey -in '{k}' -pubout -out '{p}'",
        k = key.display(),
        p = public.display()
    ));
    (key, public)
}

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

/// Sign with openssl over bundle.json extracted with tar.
fn openssl_sign(tar: &Path, key: &Path) {
    sh(&format!(
        "tar -xOf '{t}' bundle.json | openssl dgst -sha256 -sign '{k}' | base64 -w0 > '{t}.sig'",
        t = tar.display(),
        k = key.display()
    ));
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
    let bytes = std::fs::read(&tar).unwrap();
    let from = b"\"tool\": \"edgeiso tests\"";
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the tool field");
    let mut changed = bytes.clone();
    changed[at..at + from.len()].copy_from_slice(b"\"tool\": \"edgeiso TESTS\"");
    std::fs::write(&tar, &changed).unwrap();
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
