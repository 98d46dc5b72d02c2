//! Bundle signatures made and checked the way a site would without edgeiso,
//! with openssl (decision 0015): key pairs, a signature over `bundle.json`
//! as `tar` extracts it, and a `bundle.json` changed after signing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a bash script (`-euo pipefail`), its stdout; panics with its stderr
/// when it fails.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", script]).output().expect("bash");
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An EC key pair on `curve` (`P-256`, `P-384`) as openssl writes it:
/// `dir/NAME.pem` (PKCS#8) and `dir/NAME.pub` (SubjectPublicKeyInfo).
pub fn keypair_on(dir: &Path, name: &str, curve: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub")));
    sh(&format!(
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:{curve} -out '{k}' && openssl pkey -in '{k}' -pubout -out '{p}'",
        k = key.display(),
        p = public.display()
    ));
    (key, public)
}

/// A P-256 key pair, the kind bundles are signed with.
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    keypair_on(dir, name, "P-256")
}

/// Sign the bundle `tar` with openssl: its `bundle.json` (extracted with
/// tar), base64 of the DER signature, into `TAR.sig`.
pub fn openssl_sign(tar: &Path, key: &Path) {
    sh(&format!(
        "tar -xOf '{t}' bundle.json | openssl dgst -sha256 -sign '{k}' | base64 -w0 > '{t}.sig'",
        t = tar.display(),
        k = key.display()
    ));
}

/// Change `bundle.json` inside the bundle file `tar` after signing: its
/// `tool` field (written by [`crate::bundles::write_bundle`]), same length,
/// so the tar and every checksum stay valid and only the signature can tell.
pub fn change_bundle_json(tar: &Path) {
    let mut bytes = std::fs::read(tar).unwrap();
    let (from, to) = (b"\"tool\": \"edgeiso tests\"", b"\"tool\": \"edgeiso TESTS\"");
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the tool field of bundle.json");
    bytes[at..at + from.len()].copy_from_slice(to);
    std::fs::write(tar, &bytes).unwrap();
}
