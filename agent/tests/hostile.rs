//! Registries that lie or stall: the agent reports loaded, and journals,
//! only what a registry confirmed with the expected digest; every request
//! is bounded in time; `--deadline` ends the process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::hostile::{Behaviour, HostileServer};
use common::*;
use edgeiso_agent::journal::{journal_path, read_records, Record};
use edgeiso_testkit::image_with_layer;

fn bundle(dir: &Path) -> PathBuf {
    let images: Vec<_> = (0..2).map(|i| image_with_layer(&format!("lie/app-{i}"), "1.0", 4096, 70 + i)).collect();
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    write_bundle(dir, "lie", &entries, None).remove(0)
}

/// The records of the journal of the run against `url`.
fn journal(state: &Path, url: &str) -> Vec<Record> {
    let host_port = url.trim_start_matches("http://");
    let path = journal_path(state, host_port);
    read_records(&path).map(|r| r.0).unwrap_or_default()
}

fn nothing_loaded_nor_journaled(out: &Output, state: &Path, url: &str) {
    assert_eq!(out.status.code(), Some(3), "images not confirmed fail (exit 3)");
    let done = done_event(out);
    assert_eq!(done["loaded"], 0, "{done}");
    assert_eq!(done["failed"], 2, "{done}");
    assert_eq!(done["blobs_present"], 0, "a 200 without the digest is not 'already there': {done}");
    for r in journal(state, url) {
        assert!(
            !matches!(r, Record::Image { .. } | Record::Blob { .. }),
            "nothing the registry did not confirm is journaled: {r:?}"
        );
    }
}

#[test]
fn a_server_answering_html_to_everything_gets_nothing_reported_loaded() {
    let server = HostileServer::start(Behaviour::Html);
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let state = dir.path().join("s");
    let out = run(load_cmd(&server.url, &b, &state, &["--json", "--retries", "0"]));
    nothing_loaded_nor_journaled(&out, &state, &server.url);
}

#[test]
fn a_server_accepting_everything_without_digests_gets_nothing_reported_loaded() {
    let server = HostileServer::start(Behaviour::AcceptAll);
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let state = dir.path().join("s");
    let out = run(load_cmd(&server.url, &b, &state, &["--json", "--retries", "0"]));
    nothing_loaded_nor_journaled(&out, &state, &server.url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not confirm blob sha256:"), "the failure says why: {stderr}");
}

/// Run `cmd` to its end, or kill it after `limit` (a hang fails the test
/// instead of hanging the suite).
fn run_bounded(mut cmd: std::process::Command, limit: Duration) -> Option<Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            eprintln!(
                "--- edgeiso-agent exit {:?}\n--- stderr\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            return Some(out);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    eprintln!("--- killed; stderr\n{}", String::from_utf8_lossy(&out.stderr));
    None
}

#[test]
fn a_registry_trickling_its_answers_is_given_up_on() {
    let server = HostileServer::start(Behaviour::Trickle);
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let state = dir.path().join("s");
    let cmd = load_cmd(&server.url, &b, &state, &["--answer-timeout", "2s", "--retries", "1"]);
    // The answer (22 bytes at 1 byte/s) would end after 22 s per request; two
    // attempts of every request with a 2 s bound end well within the limit.
    let out = run_bounded(cmd, Duration::from_secs(300)).expect("the agent ends");
    assert_eq!(out.status.code(), Some(4), "a registry that does not answer is exit 4");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no answer within 2s"), "{stderr}");
}

#[test]
fn secret_files_that_are_not_one_line_of_a_regular_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let shadow = dir.path().join("shadow");
    std::fs::write(&shadow, "root:$6$x:19000::::::\nuser:$6$y:19000::::::\n").unwrap();
    for (file, why) in [
        (PathBuf::from("/dev/zero"), "a device"),
        (dir.path().to_path_buf(), "a directory"),
        (shadow.clone(), "more than one line"),
    ] {
        let mut c = load_cmd("http://127.0.0.1:9", &b, &dir.path().join("s"), &["--username", "admin"]);
        c.arg("--password-file").arg(&file);
        let out = run_bounded(c, Duration::from_secs(60)).expect("refused at once");
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&file.display().to_string()) && stderr.contains(why), "{stderr}");
        assert!(!stderr.contains("root:"), "{stderr}");
    }
}

/// An index that names one child 200 times, on 4 levels: a bundle whose
/// image walk takes far longer than any deadline (1.6e9 visits where the
/// bundle's walk has no visited set).
fn graph_bomb() -> edgeiso_testkit::TestImage {
    let mut image = image_with_layer("bomb/app", "1.0", 1024, 99);
    let mut child = (image.media_type.clone(), image.digest.clone(), image.top_bytes().len());
    let index_type = "application/vnd.oci.image.index.v1+json";
    for _ in 0..4 {
        let desc = serde_json::json!({"mediaType": child.0, "digest": child.1.as_str(), "size": child.2});
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": index_type, "manifests": vec![desc; 200]});
        let bytes = serde_json::to_vec(&index).unwrap();
        child = (index_type.to_owned(), edgeiso_bundle::Digest::of(&bytes), bytes.len());
        image.manifests.push((index_type.to_owned(), bytes));
    }
    image.media_type = child.0;
    image.digest = child.1;
    image
}

#[test]
fn the_deadline_ends_the_process_whatever_work_it_abandons() {
    // A registry trickling its answers at 1 byte/s keeps every request busy
    // for 22 s (the answer bound is 60 s): the work outlasts a 3 s deadline.
    let server = HostileServer::start(Behaviour::Trickle);
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let mut cmd = load_cmd(&server.url, &b, &dir.path().join("s"), &["--deadline", "3s"]);
    let outcome = dir.path().join("outcome");
    cmd.arg("--outcome-file").arg(&outcome);
    let out = run_bounded(cmd, Duration::from_secs(20)).expect("the agent ends at its deadline, not its timeouts");
    assert_eq!(out.status.code(), Some(8));
    let marker = std::fs::read_to_string(&outcome).unwrap();
    assert!(marker.contains("edgeiso-agent exit 8") && marker.contains("--deadline 3s expired"), "{marker}");
}

#[test]
fn an_index_repeating_one_child_on_every_level_is_walked_once() {
    // 200 copies of one child on each of several index levels: a walk
    // without a visited set never ends; the agent's ends and loads it.
    let reg = edgeiso_testkit::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let image = graph_bomb();
    let b = write_bundle(dir.path(), "bomb", &[Entry::workload(&image, &image.reference())], None).remove(0);
    let cmd = load_cmd(&reg.url(), &b, &dir.path().join("s"), &[]);
    let out = run_bounded(cmd, Duration::from_secs(120)).expect("the walk ends");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("done: 1 loaded, 0 failed"), "the image is loaded");
}

/// A registry that answers an upload start with a Location on another
/// server must not get the agent's credentials sent there: the other server
/// sees no request at all, and the failure names the Location.
#[test]
fn an_upload_location_on_another_origin_gets_no_credentials() {
    let elsewhere = HostileServer::start(Behaviour::AcceptAll);
    let port: u16 = elsewhere.url.rsplit(':').next().unwrap().parse().unwrap();
    let registry = HostileServer::start(Behaviour::UploadsElsewhere(port));
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let mut cmd = load_cmd(&registry.url, &b, &dir.path().join("s"), &["--retries", "1", "--username", "admin"]);
    cmd.arg("--password-file").arg(&password);
    let out = run_bounded(cmd, Duration::from_secs(120)).expect("the agent ends");
    assert!(
        registry.seen.lock().unwrap().iter().any(|s| s.method == "POST" && s.authorization),
        "the registry itself got the credentials (the test exercises them): {:?}",
        registry.seen.lock().unwrap()
    );
    let leaked = elsewhere.seen.lock().unwrap().clone();
    assert!(leaked.is_empty(), "the other server saw requests: {leaked:?}");
    assert_eq!(out.status.code(), Some(3), "the images fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bad = format!("Location \"http://127.0.0.1:{port}/v2/upload/");
    assert!(stderr.contains(&bad) && stderr.contains("leaves the registry"), "{stderr}");
}

/// What the agent wrote holds no ESC, CSI, BEL or CR (its lines end in LF).
fn no_control_characters(texts: &[&str]) {
    for text in texts {
        assert!(!text.contains(['\u{1b}', '\u{9b}', '\u{7}', '\r']), "a control character got through: {text:?}");
    }
}

/// A registry's error body quoted in the agent's errors (stderr, the
/// console outcome) is escaped: no terminal escape sequence gets through.
#[test]
fn a_registrys_error_body_reaches_no_terminal_unescaped() {
    let registry = HostileServer::start(Behaviour::EscapesInErrors);
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let outcome = dir.path().join("outcome");
    let mut cmd = load_cmd(&registry.url, &b, &dir.path().join("s"), &["--retries", "0"]);
    cmd.arg("--outcome-file").arg(&outcome);
    let out = run_bounded(cmd, Duration::from_secs(120)).expect("the agent ends");
    assert_eq!(out.status.code(), Some(3), "the images fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let marker = std::fs::read_to_string(&outcome).unwrap();
    assert!(stderr.contains("HTTP 400"), "{stderr}");
    no_control_characters(&[&stderr, &marker]);
    assert!(stderr.contains("\\u{1b}[31mpwned"), "the body is quoted, escaped: {stderr}");
}

/// A bundle whose name carries terminal escape sequences is refused
/// (exit 6) with a message that names it, escaped.
#[test]
fn a_bundle_with_escape_sequences_in_a_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = edgeiso_testkit::bundles::write_bundle_with_hostile_name(dir.path());
    let outcome = dir.path().join("outcome");
    let mut cmd = load_cmd("http://127.0.0.1:9", &b, &dir.path().join("s"), &["--json"]);
    cmd.arg("--outcome-file").arg(&outcome);
    let out = run_bounded(cmd, Duration::from_secs(60)).expect("refused at once");
    assert_eq!(out.status.code(), Some(6), "an unusable bundle");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let marker = std::fs::read_to_string(&outcome).unwrap_or_default();
    no_control_characters(&[&stderr, &stdout, &marker]);
    assert!(stderr.contains("content-hostile.tar") && stderr.contains("bundle.json: name site\\u{1b}[31m"), "{stderr}");
}
