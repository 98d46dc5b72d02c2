//! Helpers shared by the agent's integration tests: bundles built from
//! synthesized images, running the agent binary, checking what landed in
//! the registry through its own API, and a small double of Harbor's API.
#![allow(dead_code)]

pub mod harbor;
pub mod hostile;
pub mod hostile_source;

use std::path::Path;
use std::process::{Command, Output};

use edgeiso_bundle::{Bundle, Digest};
use edgeiso_testkit::{Registry, TestImage};

pub const PROJECT: &str = "spectro-images";

pub use edgeiso_testkit::bundles::{write_bundle, Entry};

/// Flip one byte in the middle of blob `digest` inside the bundle file.
pub fn corrupt_blob(bundle_path: &Path, digest: &Digest) {
    use std::os::unix::fs::FileExt;
    let b = Bundle::open(bundle_path).unwrap();
    let loc = b.blob(digest).expect("blob in bundle");
    let mut r = b.reader().unwrap();
    let segs = r.segments(loc.offset + loc.size / 2, 1);
    let (part, at, _) = segs[0];
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&b.paths[part]).unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= 0xff;
    f.write_all_at(&byte, at).unwrap();
    let _ = &mut r;
}

pub fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgeiso-agent"));
    c.env_remove("EDGEISO_REGISTRY_PASSWORD").env_remove("RUST_LOG");
    c
}

/// `edgeiso-agent load` with the usual test flags plus `extra`.
pub fn load_cmd(reg_url: &str, bundle: &Path, state: &Path, extra: &[&str]) -> Command {
    let mut c = agent();
    c.arg("load")
        .arg("--bundle")
        .arg(bundle)
        .args(["--registry", reg_url, "--wait-timeout", "20s"])
        .arg("--state-dir")
        .arg(state)
        .args(extra);
    c
}

pub fn run(mut c: Command) -> Output {
    let out = c.output().expect("run edgeiso-agent");
    eprintln!(
        "--- edgeiso-agent exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The JSON events a `--json` run printed.
pub fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

pub fn done_event(out: &Output) -> serde_json::Value {
    events(out).into_iter().find(|e| e["event"] == "done").expect("a done event")
}

/// Assert every manifest of `image` is in `repo` byte for byte (the top-level
/// one under `reference` with its media type, children by digest) and every
/// blob is there with the right bytes, all read back through the registry API.
pub fn assert_loaded(reg: &Registry, repo: &str, reference: &str, image: &TestImage) {
    let (ct, bytes) = reg.get_manifest(repo, reference).unwrap_or_else(|| panic!("{repo}:{reference} missing"));
    assert_eq!(ct, image.media_type, "{repo}:{reference} media type");
    assert_eq!(bytes, image.top_bytes(), "{repo}:{reference} bytes");
    for (mt, m) in &image.manifests {
        let d = Digest::of(m);
        let (ct, got) = reg.get_manifest(repo, d.as_str()).unwrap_or_else(|| panic!("{repo}@{d} missing"));
        assert_eq!((&ct, &got), (mt, m), "{repo}@{d}");
    }
    for (d, b) in &image.blobs {
        let got = reg.get_blob(repo, d.as_str()).unwrap_or_else(|| panic!("blob {d} missing in {repo}"));
        assert!(got == *b, "blob {d} in {repo} differs");
    }
}
