//! `edgeiso bundle sign`, `bundle verify --key` and `bundle create
//! --sign-key` (decision 0015), checked against openssl both ways: what
//! openssl signs edgeiso verifies, what edgeiso signs openssl verifies.
//! (cosign is not installable offline here; its `verify-blob --key` reads
//! the same base64-of-DER signature, see docs/bundle-format.md.)

mod common;

use std::path::{Path, PathBuf};

use common::{edgeiso, p, simple_spec};
use edgeiso_testkit::bundles::{write_bundle, Entry};
use edgeiso_testkit::images::{self, image_with_layer};
use edgeiso_testkit::signing::{change_bundle_json, keypair, openssl_sign, sh};
use edgeiso_testkit::Registry;

/// `content-s.tar` (or its parts) with two small images.
fn bundle(dir: &Path, part_size: Option<u64>) -> Vec<PathBuf> {
    let a = image_with_layer("team/app", "1.0", 40_000, 1);
    let b = image_with_layer("team/web", "2.1", 40_000, 2);
    let entries = [Entry::workload(&a, "docker.io/team/app:1.0"), Entry::workload(&b, "docker.io/team/web:2.1")];
    write_bundle(dir, "s", &entries, part_size)
}

/// The bundle's `bundle.json` as stored, extracted with tar.
fn extract_bundle_json(tar: &Path, dest: &Path) {
    sh(&format!("tar -xOf '{}' bundle.json > '{}'", tar.display(), dest.display()));
}

fn verify(bundle: &Path, public: &Path) -> common::Run {
    edgeiso(&["bundle", "verify", p(bundle), "--key", p(public)], &[])
}

#[test]
fn openssl_signs_edgeiso_verifies_and_the_other_way_round() {
    let dir = tempfile::tempdir().unwrap();
    let tar = bundle(dir.path(), None).remove(0);
    let (key, public) = keypair(dir.path(), "signing");
    let json = dir.path().join("bundle.json");
    extract_bundle_json(&tar, &json);
    let sig = dir.path().join("content-s.tar.sig");

    // openssl -> edgeiso.
    openssl_sign(&tar, &key);
    let r = verify(&tar, &public).ok();
    assert!(r.stdout().contains("signature OK") || r.stderr().contains("signature OK"), "{}", r.stderr());
    // Wrapped base64 (as `base64` writes it by default) reads too.
    sh(&format!("openssl dgst -sha256 -sign '{}' '{}' | base64 > '{}'", key.display(), json.display(), sig.display()));
    verify(&tar, &public).ok();

    // edgeiso -> openssl.
    std::fs::remove_file(&sig).unwrap();
    let r = edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key)], &[]).ok();
    assert_eq!(r.stdout().trim(), p(&sig), "sign prints the signature it wrote");
    let text = std::fs::read_to_string(&sig).unwrap();
    assert!(!text.contains('\n') && !text.is_empty(), "one line of base64: {text:?}");
    let ok = sh(&format!(
        "openssl dgst -sha256 -verify '{}' -signature <(base64 -d '{}') '{}'",
        public.display(),
        sig.display(),
        json.display()
    ));
    assert!(ok.contains("Verified OK"), "{ok}");
    verify(&tar, &public).ok();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sig).unwrap().permissions().mode() & 0o777, 0o644);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "no temp file left: {left:?}");
}

#[test]
fn an_encrypted_key_takes_its_password_from_a_file_or_the_environment_never_argv() {
    let dir = tempfile::tempdir().unwrap();
    let tar = bundle(dir.path(), None).remove(0);
    let (pw, key, public) = (dir.path().join("pw"), dir.path().join("enc.pem"), dir.path().join("enc.pub"));
    let secret = "S1gn1ng-Pa55-Phrase";
    std::fs::write(&pw, format!("{secret}\n")).unwrap();
    sh(&format!(
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass 'file:{pw}' -out '{k}' \
         && openssl pkey -in '{k}' -passin 'file:{pw}' -pubout -out '{p}'",
        pw = pw.display(),
        k = key.display(),
        p = public.display()
    ));
    assert!(std::fs::read_to_string(&key).unwrap().contains("ENCRYPTED PRIVATE KEY"));

    // No password: exit 3, the key named, how to give one said.
    let r = edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key)], &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("enc.pem") && r.stderr().contains("--key-password-file"), "{}", r.stderr());

    // From a file.
    edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key), "--key-password-file", p(&pw)], &[]).ok();
    verify(&tar, &public).ok();
    std::fs::remove_file(dir.path().join("content-s.tar.sig")).unwrap();

    // From the environment.
    edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key)], &[("EDGEISO_SIGNING_KEY_PASSWORD", secret)]).ok();
    verify(&tar, &public).ok();

    // A wrong password: exit 3, the key named, no password in the output.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-Pa55\n").unwrap();
    let r = edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key), "--key-password-file", p(&wrong)], &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("enc.pem") && r.stderr().contains("wrong password"), "{}", r.stderr());
    let r = edgeiso(
        &["-vv", "bundle", "sign", p(&tar), "--key", p(&key)],
        &[("EDGEISO_SIGNING_KEY_PASSWORD", "Wr0ng-Env-Pa55")],
    );
    assert_eq!(r.code(), 3, "{}", r.stderr());
    for out in [r.stdout(), r.stderr()] {
        assert!(!out.contains("Wr0ng-Env-Pa55") && !out.contains(secret), "password leaked: {out}");
    }
    // There is no option that takes the password itself.
    let r = edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key), "--key-password", secret], &[]);
    assert_eq!(r.code(), 2);
}

#[test]
fn unsigned_another_keys_and_changed_after_signing_are_refused_with_exit_6_naming_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let tar = bundle(dir.path(), None).remove(0);
    let (key, public) = keypair(dir.path(), "ours");
    let (other, _) = keypair(dir.path(), "theirs");

    let r = verify(&tar, &public);
    assert_eq!(r.code(), 6, "unsigned: {}", r.stderr());
    assert!(r.stderr().contains("content-s.tar") && r.stderr().contains("unsigned"), "{}", r.stderr());

    edgeiso(&["bundle", "sign", p(&tar), "--key", p(&other)], &[]).ok();
    let r = verify(&tar, &public);
    assert_eq!(r.code(), 6, "another key's: {}", r.stderr());
    assert!(r.stderr().contains("content-s.tar") && r.stderr().contains("another key"), "{}", r.stderr());

    edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key)], &[]).ok();
    verify(&tar, &public).ok();
    // Change bundle.json in the tar after signing (the checksums stay
    // valid: only the signature can tell).
    change_bundle_json(&tar);
    edgeiso(&["bundle", "verify", p(&tar)], &[]).ok();
    let r = verify(&tar, &public);
    assert_eq!(r.code(), 6, "changed after signing: {}", r.stderr());
    assert!(r.stderr().contains("content-s.tar") && r.stderr().contains("changed after signing"), "{}", r.stderr());

    // A signature file that is not one, and a key that is not a public key.
    std::fs::write(dir.path().join("content-s.tar.sig"), "not base64 at all!\n").unwrap();
    let r = verify(&tar, &public);
    assert_eq!(r.code(), 6, "{}", r.stderr());
    assert!(r.stderr().contains("content-s.tar.sig") && r.stderr().contains("malformed"), "{}", r.stderr());
    let r = verify(&tar, &key);
    assert_eq!(r.code(), 3, "a private key is not the trusted public key: {}", r.stderr());
    assert!(r.stderr().contains("ours.pem"), "{}", r.stderr());
}

#[test]
fn a_split_bundle_is_signed_beside_its_first_part_under_the_bundles_name() {
    let dir = tempfile::tempdir().unwrap();
    let parts = bundle(dir.path(), Some(30_000));
    assert!(parts.len() > 2, "{parts:?}");
    let (key, public) = keypair(dir.path(), "k");
    let r = edgeiso(&["bundle", "sign", p(&parts[0]), "--key", p(&key)], &[]).ok();
    let sig = dir.path().join("content-s.tar.sig");
    assert_eq!(r.stdout().trim(), p(&sig));
    assert!(!dir.path().join("content-s.tar.part000.sig").exists());
    // By its first part and by the tar name its parts stand for.
    verify(&parts[0], &public).ok();
    verify(&dir.path().join("content-s.tar"), &public).ok();
    // openssl agrees over the joined parts' bundle.json.
    let joined = dir.path().join("joined.tar");
    sh(&format!("cat '{}'/content-s.tar.part* > '{}'", dir.path().display(), joined.display()));
    let json = dir.path().join("bundle.json");
    extract_bundle_json(&joined, &json);
    let ok = sh(&format!(
        "openssl dgst -sha256 -verify '{}' -signature <(base64 -d '{}') '{}'",
        public.display(),
        sig.display(),
        json.display()
    ));
    assert!(ok.contains("Verified OK"), "{ok}");
}

#[test]
fn create_signs_as_it_writes_and_an_unsigned_rebuild_drops_the_stale_signature() {
    let reg = Registry::start();
    images::push_all(&reg, &images::corpus());
    let dir = tempfile::tempdir().unwrap();
    let spec = simple_spec(dir.path(), &reg.host(), &["team/app:1.0"]);
    let (key, public) = keypair(dir.path(), "k");
    let out = dir.path().join("out");
    let create = |extra: &[&str]| {
        let mut args = vec!["bundle", "create", "--spec", p(&spec), "--output", p(&out)];
        args.extend_from_slice(extra);
        edgeiso(&args, &[])
    };
    // A key that cannot be read fails before anything is pulled.
    let r = create(&["--sign-key", p(&dir.path().join("none.pem"))]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(!out.join("content-s.tar").exists());

    create(&["--sign-key", p(&key)]).ok();
    let tar = out.join("content-s.tar");
    assert!(out.join("content-s.tar.sig").is_file());
    verify(&tar, &public).ok();
    create(&[]).ok();
    assert!(!out.join("content-s.tar.sig").exists(), "the unsigned rebuild left the old signature");
    assert_eq!(verify(&tar, &public).code(), 6);
}
