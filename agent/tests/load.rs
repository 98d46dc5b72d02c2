//! `edgeiso-agent load` against a real docker-registry (distribution 2.8):
//! correctness byte for byte, naming, re-runs, TLS, credentials, damaged
//! bundles. Everything is checked through the registry's own API.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use edgeiso_bundle::{Digest, Role};
use edgeiso_testkit::{corpus, image_with_layer, Registry, RegistryOptions};

/// The corpus under references that exercise the mapping: docker.io, a
/// registry with a port, a deep path, and a digest-only reference; plus a
/// bootstrap image that must not be pushed.
fn corpus_bundle(
    dir: &std::path::Path,
) -> (Vec<edgeiso_testkit::TestImage>, std::path::PathBuf, edgeiso_testkit::TestImage) {
    let images = corpus();
    let boot = image_with_layer("boot/registry", "2.8", 4096, 99);
    let raw_digest_ref = format!("quay.io/team/raw@{}", images[3].digest);
    let entries = vec![
        Entry::workload(&images[0], "docker.io/library/nginx:1.25"),
        Entry::workload(&images[1], "127.0.0.1:5000/team/web:2.1"),
        Entry::workload(&images[2], "gcr.io/spectro-images-public/kube-vip/kube-vip:v0.6.3"),
        Entry::workload(&images[3], &raw_digest_ref),
        Entry { image: &boot, source: "docker.io/library/registry:2.8".into(), role: Role::Bootstrap },
    ];
    let paths = write_bundle(dir, "site", &entries, None);
    (images, paths[0].clone(), boot)
}

#[test]
fn loads_every_image_byte_identical_with_palette_naming_then_reruns_as_a_no_op() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (images, bundle, _boot) = corpus_bundle(dir.path());

    let out = run(load_cmd(&reg.url(), &bundle, &state, &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    let done = done_event(&out);
    assert_eq!(done["loaded"], 4);
    assert_eq!(done["skipped"], 1, "the bootstrap image is skipped");

    assert_loaded(&reg, "spectro-images/docker.io/library/nginx", "1.25", &images[0]);
    assert_loaded(&reg, "spectro-images/127.0.0.1_5000/team/web", "2.1", &images[1]);
    assert_loaded(&reg, "spectro-images/gcr.io/spectro-images-public/kube-vip/kube-vip", "v0.6.3", &images[2]);
    // Digest-only: pushed by digest, no tag.
    assert_loaded(&reg, "spectro-images/quay.io/team/raw", images[3].digest.as_str(), &images[3]);
    assert!(reg.tags("spectro-images/quay.io/team/raw").is_empty());
    let mut catalog = reg.catalog();
    catalog.sort();
    assert_eq!(
        catalog,
        vec![
            "spectro-images/127.0.0.1_5000/team/web",
            "spectro-images/docker.io/library/nginx",
            "spectro-images/gcr.io/spectro-images-public/kube-vip/kube-vip",
            "spectro-images/quay.io/team/raw",
        ],
        "nothing else was pushed (no bootstrap image)"
    );
    // The shared base layer went over the wire once and was mounted elsewhere.
    assert!(done["blobs_mounted"].as_u64().unwrap() >= 1, "{done}");

    // Re-run with the journal: a fast no-op that still HEADs every manifest.
    let t = Instant::now();
    let out = run(load_cmd(&reg.url(), &bundle, &state, &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    let done = done_event(&out);
    assert_eq!(
        (done["loaded"].as_u64(), done["bytes_sent"].as_u64(), done["blobs_uploaded"].as_u64()),
        (Some(4), Some(0), Some(0))
    );
    assert!(events(&out).iter().filter(|e| e["event"] == "image-loaded").all(|e| e["already_present"] == true));
    assert!(t.elapsed() < Duration::from_secs(5), "re-run took {:?}", t.elapsed());

    // And without the journal (fresh state dir): same.
    let out = run(load_cmd(&reg.url(), &bundle, &dir.path().join("other-state"), &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(done_event(&out)["bytes_sent"], 0);

    // status reads the journal.
    let out = run({
        let mut c = agent();
        c.args(["status", "--json", "--state-dir"]).arg(&state);
        c
    });
    assert_eq!(out.status.code(), Some(0));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st[0]["loaded"].as_array().unwrap().len(), 4);
    assert_eq!(st[0]["pending"].as_array().unwrap().len(), 0);
    assert_eq!(st[0]["failed"].as_array().unwrap().len(), 0);
}

#[test]
fn a_registry_wiped_behind_the_journal_gets_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (images, bundle, _) = corpus_bundle(dir.path());
    let reg = Registry::start();
    assert_eq!(run(load_cmd(&reg.url(), &bundle, &state, &[])).status.code(), Some(0));
    // Same journal file name (host:port) would need the same port; simulate
    // a wipe by deleting the registry's storage and restarting it.
    let mut reg = reg;
    reg.stop();
    std::fs::remove_dir_all(reg.storage_dir()).unwrap();
    std::fs::create_dir(reg.storage_dir()).unwrap();
    reg.restart();
    let out = run(load_cmd(&reg.url(), &bundle, &state, &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&reg, "spectro-images/docker.io/library/nginx", "1.25", &images[0]);
    assert_loaded(&reg, "spectro-images/gcr.io/spectro-images-public/kube-vip/kube-vip", "v0.6.3", &images[2]);
    // The journal was trusted first, the manifest PUT said BLOB_UNKNOWN, and
    // the image was redone with every blob checked (and uploaded).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the registry lacks blobs the journal recorded"), "no BLOB_UNKNOWN redo: {err}");
    let done = done_event(&out);
    assert!(done["blobs_uploaded"].as_u64().unwrap() >= 4, "{done}");
}

#[test]
fn tls_with_the_test_ca_works_and_the_wrong_ca_fails_fast_with_exit_7() {
    let reg = Registry::start_tls();
    let other = Registry::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let (images, bundle, _) = corpus_bundle(dir.path());
    let url = reg.url().replace("127.0.0.1", "localhost");

    // No CA: the certificate is not trusted.
    let t = Instant::now();
    let out = run(load_cmd(&url, &bundle, &dir.path().join("s0"), &[]));
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"), "the error says what to do");
    assert!(t.elapsed() < Duration::from_secs(10), "no waiting on a TLS failure");

    // Another registry's CA: still refused.
    let mut c = load_cmd(&url, &bundle, &dir.path().join("s1"), &[]);
    c.arg("--ca").arg(other.ca_pem_path().unwrap());
    assert_eq!(run(c).status.code(), Some(7));

    // --insecure: loads, and says so.
    let out = run(load_cmd(&reg.url(), &bundle, &dir.path().join("s2"), &["--insecure"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT verified"));

    // The right CA, by host name (resolved from /etc/hosts, not NSS) and by IP.
    let other_reg = Registry::start_tls();
    for u in [other_reg.url().replace("127.0.0.1", "localhost"), other_reg.url()] {
        let mut c = load_cmd(&u, &bundle, &dir.path().join("s3"), &[]);
        c.arg("--ca").arg(other_reg.ca_pem_path().unwrap());
        assert_eq!(run(c).status.code(), Some(0), "{u}");
    }
    assert_loaded(&other_reg, "spectro-images/docker.io/library/nginx", "1.25", &images[0]);
}

#[test]
fn wrong_credentials_fail_once_with_exit_5_and_never_print_the_password() {
    let reg =
        Registry::start_with(RegistryOptions { tls: false, auth: Some(("admin".into(), "Right-Pass-42".into())) });
    let dir = tempfile::tempdir().unwrap();
    let (images, bundle, _) = corpus_bundle(dir.path());
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "Wrong-Pass-13\n").unwrap();

    let t = Instant::now();
    let mut c = load_cmd(&reg.url(), &bundle, &dir.path().join("s"), &["--username", "admin", "--password-file"]);
    c.arg(&pw);
    let out = run(c);
    assert_eq!(out.status.code(), Some(5));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("refused the credentials") && all.contains("admin"), "{all}");
    assert!(!all.contains("Wrong-Pass-13"), "password leaked");
    assert!(t.elapsed() < Duration::from_secs(5), "no retry storm: {:?}", t.elapsed());

    // No credentials at all: told that they are needed.
    let out = run(load_cmd(&reg.url(), &bundle, &dir.path().join("s"), &[]));
    assert_eq!(out.status.code(), Some(5));

    // The right password from the environment.
    let mut c = load_cmd(&reg.url(), &bundle, &dir.path().join("s"), &["--username", "admin", "-v"]);
    c.env("EDGEISO_REGISTRY_PASSWORD", "Right-Pass-42");
    let out = run(c);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Right-Pass-42"));
    assert_loaded(&reg, "spectro-images/docker.io/library/nginx", "1.25", &images[0]);
}

#[test]
fn a_corrupt_blob_fails_its_image_only_and_pushes_none_of_its_bytes() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (images, bundle, _) = corpus_bundle(dir.path());
    // The app layer of image 0 (not shared with the others).
    let shared: Vec<&Digest> = images[1..].iter().flat_map(|i| i.blobs.keys()).collect();
    let bad = images[0].blobs.keys().find(|d| !shared.contains(d) && images[0].blobs[*d].len() > 1000).unwrap().clone();
    corrupt_blob(&bundle, &bad);

    let out = run(load_cmd(&reg.url(), &bundle, &dir.path().join("s"), &["--json"]));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("docker.io/library/nginx:1.25") && err.contains(bad.as_str()), "names image and blob: {err}");
    let repo = "spectro-images/docker.io/library/nginx";
    assert!(reg.get_manifest(repo, "1.25").is_none(), "no manifest of the failed image");
    for (_, m) in &images[0].manifests {
        assert!(reg.get_manifest(repo, Digest::of(m).as_str()).is_none());
    }
    assert!(!reg.blob_exists(repo, bad.as_str()), "the bad blob was never committed");
    // The others loaded.
    assert_loaded(&reg, "spectro-images/127.0.0.1_5000/team/web", "2.1", &images[1]);
    assert_loaded(&reg, "spectro-images/gcr.io/spectro-images-public/kube-vip/kube-vip", "v0.6.3", &images[2]);
    let failed: Vec<_> = events(&out).into_iter().filter(|e| e["event"] == "image-failed").collect();
    assert_eq!(failed.len(), 1);

    // status shows it as failed.
    let out = run({
        let mut c = agent();
        c.args(["status", "--json", "--state-dir"]).arg(dir.path().join("s"));
        c
    });
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st[0]["failed"][0]["reference"], "docker.io/library/nginx:1.25");
    assert_eq!(st[0]["loaded"].as_array().unwrap().len(), 3);
}

#[test]
fn missing_or_truncated_parts_are_named_with_exit_6() {
    let dir = tempfile::tempdir().unwrap();
    let images = corpus();
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    let parts = write_bundle(dir.path(), "split", &entries, Some(64 * 1024));
    assert!(parts.len() >= 3, "{parts:?}");
    // Nothing needs to answer: the bundle is checked first.
    let reg_url = "http://127.0.0.1:9";

    std::fs::remove_file(&parts[1]).unwrap();
    let out = run(load_cmd(reg_url, &parts[0], &dir.path().join("s"), &[]));
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("part001"));

    let parts = write_bundle(dir.path(), "split2", &entries, Some(64 * 1024));
    let last = parts.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len / 2).unwrap();
    let out = run(load_cmd(reg_url, &parts[0], &dir.path().join("s"), &[]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("truncated")
            || String::from_utf8_lossy(&out.stderr).contains("missing")
    );

    // A folder with no bundle.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(load_cmd(reg_url, &empty, &dir.path().join("s"), &[]));
    assert_eq!(out.status.code(), Some(6));
}

#[test]
fn parts_and_folders_are_found_and_joined() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("opt/spectrocloud/content");
    std::fs::create_dir_all(&content).unwrap();
    let images = corpus();
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    let parts = write_bundle(&content, "split", &entries, Some(50_000));
    assert!(parts.len() > 2);
    std::fs::write(content.join("unrelated.tar"), b"not a bundle").unwrap();
    // The folder is searched; the parts are joined.
    let out = run(load_cmd(&reg.url(), dir.path(), &dir.path().join("s"), &[]));
    assert_eq!(out.status.code(), Some(0));
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
}

#[test]
fn chunked_uploads_are_byte_identical() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let big = image_with_layer("team/big", "1.0", 3 << 20, 7);
    let bundle = write_bundle(dir.path(), "big", &[Entry::workload(&big, "docker.io/team/big:1.0")], None);
    // Through the (auth-less) Harbor double, to see the requests.
    let harbor = common::harbor::HarborDouble::start(&reg.url(), Default::default());
    let out = run(load_cmd(
        &harbor.url,
        &bundle[0],
        &dir.path().join("s"),
        &["--chunk-threshold", "1048576", "--chunk-size", "700000", "--json"],
    ));
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&reg, "spectro-images/docker.io/team/big", "1.0", &big);
    // 3 MiB in 700000-byte chunks: 5 PATCHes, then one closing PUT.
    let reqs = harbor.requests();
    assert_eq!(reqs.iter().filter(|r| r.starts_with("PATCH /v2/")).count(), 5, "{reqs:#?}");
    let layer = big.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap().0;
    assert!(reqs
        .iter()
        .any(|r| r.starts_with("PUT /v2/") && r.contains(&format!("digest={}", layer.as_str().replace(':', "%3A")))));
}

#[test]
fn a_corrupt_blob_on_the_chunked_path_is_never_committed_and_leaves_no_upload_behind() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let big = image_with_layer("team/big", "1.0", 3 << 20, 8);
    let bundle = write_bundle(dir.path(), "big", &[Entry::workload(&big, "docker.io/team/big:1.0")], None);
    let layer = big.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap().0.clone();
    corrupt_blob(&bundle[0], &layer);
    let out = run(load_cmd(
        &reg.url(),
        &bundle[0],
        &state,
        &["--chunk-threshold", "1048576", "--chunk-size", "700000", "--json"],
    ));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(layer.as_str()) && err.contains("corrupt"), "{err}");
    let repo = "spectro-images/docker.io/team/big";
    assert!(!reg.blob_exists(repo, layer.as_str()), "the corrupt blob was never committed");
    assert!(reg.get_manifest(repo, "1.0").is_none());
    // The chunks before the bad one were journaled as an upload in progress;
    // the upload was cancelled, so none is left to report or resume.
    let out = run({
        let mut c = agent();
        c.args(["status", "--json", "--state-dir"]).arg(&state);
        c
    });
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st[0]["uploads_in_progress"], 0, "{st}");
    assert_eq!(st[0]["failed"].as_array().unwrap().len(), 1);
}

#[test]
fn the_config_file_drives_a_load_and_flags_override_it() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (images, bundle, _) = corpus_bundle(dir.path());
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "registry: http://127.0.0.1:9\nproject: from-file\nbundles:\n  - {}\nstateDir: {}\n",
            bundle.display(),
            dir.path().join("s").display()
        ),
    )
    .unwrap();
    let mut c = agent();
    c.args(["load", "--wait-timeout", "10s", "--config"]).arg(&cfg).args(["--registry", &reg.url()]);
    assert_eq!(run(c).status.code(), Some(0));
    assert_loaded(&reg, "from-file/docker.io/library/nginx", "1.25", &images[0]);
    assert!(dir.path().join("s/journal").is_dir(), "stateDir from the file");
}

/// A registry that accepts connections and never answers (the kernel
/// completes the handshake into the backlog; nobody reads).
fn silent_listener() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// `edgeiso-agent load --registry URL FLAGS --bundle BUNDLE --state-dir
/// DIR/s` against a registry that will not answer; how long it took.
fn load_unreachable(
    url: &str,
    flags: &[&str],
    bundle: &std::path::Path,
    dir: &std::path::Path,
) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let mut c = agent();
    c.args(["load", "--registry", url]).args(flags).arg("--bundle").arg(bundle).arg("--state-dir").arg(dir.join("s"));
    let out = run(c);
    (out, t.elapsed())
}

#[test]
fn a_registry_that_never_answers_is_given_up_after_the_wait_timeout_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle, _) = corpus_bundle(dir.path());
    let (_listener, url) = silent_listener();
    let (out, took) = load_unreachable(&url, &["--wait-timeout", "3s"], &bundle, dir.path());
    assert_eq!(out.status.code(), Some(4));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn the_deadline_cuts_the_wait_lists_the_images_and_exits_8() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle, _) = corpus_bundle(dir.path());
    let (_listener, url) = silent_listener();
    let (out, took) = load_unreachable(&url, &["--wait-timeout", "30m", "--deadline", "2s"], &bundle, dir.path());
    assert_eq!(out.status.code(), Some(8));
    assert!(took < Duration::from_secs(8), "{took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 images not loaded"), "{err}");
    assert!(err.contains("not loaded: spectro-images/docker.io/library/nginx:1.25"), "{err}");
    // Bad values are usage errors.
    let mut c = agent();
    c.args(["load", "--registry", &url, "--deadline", "soon", "--bundle"]).arg(&bundle);
    assert_eq!(run(c).status.code(), Some(2));
}

#[test]
fn a_journal_that_cannot_be_written_mid_run_is_exit_1_not_a_content_failure() {
    assert!(edgeiso_testkit::have("prlimit"), "prlimit (util-linux) is needed by this test");
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle, _) = corpus_bundle(dir.path());
    // The size of the run's first journal line (the plan), from a run
    // elsewhere: the same bundle gives the same line.
    let first = Registry::start();
    let state = dir.path().join("s1");
    assert_eq!(run(load_cmd(&first.url(), &bundle, &state, &[])).status.code(), Some(0));
    let text = std::fs::read_to_string(edgeiso_agent::journal::journal_path(&state, &first.host())).unwrap();
    let plan_len = text.split_inclusive('\n').next().unwrap().len();
    // Then a run whose files may not grow past the plan: every later journal
    // write fails (EFBIG; SIGXFSZ is ignored so the write returns an error).
    let reg = Registry::start();
    let mut c = Command::new("sh");
    c.args(["-c", r#"trap "" XFSZ; exec prlimit --fsize="$0" "$@""#])
        .arg((plan_len + 16).to_string())
        .arg(env!("CARGO_BIN_EXE_edgeiso-agent"))
        .args(["load", "--registry", &reg.url(), "--wait-timeout", "20s", "--bundle"])
        .arg(&bundle)
        .arg("--state-dir")
        .arg(dir.path().join("s2"))
        .env_remove("RUST_LOG");
    let out = run(c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the journal"), "{err}");
}

#[test]
fn an_absent_registry_is_waited_for_then_given_up_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle, _) = corpus_bundle(dir.path());
    let port = edgeiso_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (out, took) = load_unreachable(&url, &["--wait-timeout", "3s"], &bundle, dir.path());
    assert_eq!(out.status.code(), Some(4));
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(10), "{took:?}");
}
