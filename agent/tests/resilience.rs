//! Interruptions: the registry restarting mid-load, and the agent killed
//! with SIGKILL at random points. The next run must finish the job without
//! re-uploading any blob the journal recorded as finished.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use edgeiso_agent::journal::{journal_path, read_records, Record};
use edgeiso_testkit::{image_with_layer, Registry, TestImage};
use rand::Rng;

fn many_images(n: usize, layer: usize) -> Vec<TestImage> {
    (0..n).map(|i| image_with_layer(&format!("load/app-{i}"), "1.0", layer, 1000 + i as u64)).collect()
}

fn bundle_of(dir: &Path, images: &[TestImage]) -> std::path::PathBuf {
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    write_bundle(dir, "many", &entries, None).remove(0)
}

/// A registry behind the Harbor double started with `opts`, and a bundle of
/// `n` images with `layer`-byte layers in a temporary folder. The fields are
/// declared so that they drop in the order the tests' locals used to.
struct Setup {
    images: Vec<TestImage>,
    bundle: std::path::PathBuf,
    dir: tempfile::TempDir,
    harbor: common::harbor::HarborDouble,
    reg: Registry,
}

impl Setup {
    fn new(opts: common::harbor::HarborOptions, n: usize, layer: usize) -> Setup {
        let reg = Registry::start();
        let harbor = common::harbor::HarborDouble::start(&reg.url(), opts);
        let dir = tempfile::tempdir().unwrap();
        let images = many_images(n, layer);
        let bundle = bundle_of(dir.path(), &images);
        Setup { images, bundle, dir, harbor, reg }
    }

    /// The state folder every run of a test shares.
    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("s")
    }

    /// `edgeiso-agent load` of the bundle through the double, not yet run.
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        load_cmd(&self.harbor.url, &self.bundle, &self.state(), args)
    }

    /// Run [`Setup::cmd`] to its end.
    fn load(&self, args: &[&str]) -> std::process::Output {
        run(self.cmd(args))
    }
}

fn journaled_blobs(state: &Path, host: &str) -> BTreeSet<(String, String)> {
    let (records, _) = read_records(&journal_path(state, host)).unwrap();
    records
        .into_iter()
        .filter_map(|r| match r {
            Record::Blob { repo, digest } => Some((repo, digest.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn survives_a_registry_restart_mid_load() {
    let mut reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let images = many_images(24, 6 << 20);
    let bundle = bundle_of(dir.path(), &images);
    let mut child = load_cmd(&reg.url(), &bundle, &dir.path().join("s"), &["--json", "--concurrency", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a few images are in, then pull the rug.
    let t = Instant::now();
    while reg.catalog().len() < 3 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.try_wait().unwrap().is_none(), "the load finished before the registry could be stopped");
    reg.stop();
    std::thread::sleep(Duration::from_millis(1500));
    reg.restart();
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    let done = done_event(&out);
    assert!(done["retries"].as_u64().unwrap() > 0, "the restart was noticed: {done}");
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
}

#[test]
fn a_chunked_upload_continues_after_a_registry_restart() {
    let mut reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let images = many_images(1, 48 << 20);
    let bundle = bundle_of(dir.path(), &images);
    let mut child = load_cmd(
        &reg.url(),
        &bundle,
        &dir.path().join("s"),
        &["--json", "--chunk-threshold", "1048576", "--chunk-size", "2097152", "-v"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Stop the registry once a few chunks are in (the upload dir grows).
    let uploads = reg.storage_dir().join("docker/registry/v2/repositories");
    let t = Instant::now();
    let mut seen = 0u64;
    while t.elapsed() < Duration::from_secs(30) {
        seen = dir_size(&uploads);
        if seen > 8 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.try_wait().unwrap().is_none(), "finished before the restart ({seen} bytes seen)");
    reg.stop();
    std::thread::sleep(Duration::from_millis(1000));
    reg.restart();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&reg, &format!("spectro-images/docker.io/{}", images[0].repository), "1.0", &images[0]);
    // distribution 2.8 cancels a session whose PATCH was cut mid-body
    // ("upload resumed at wrong offset"), so here the agent may have had to
    // start the blob again; where the registry keeps the session it resumes
    // (see the Harbor double test). Either way the layer landed intact.
    assert!(
        err.contains("resuming the upload where the registry stopped") || err.contains("cannot resume this upload"),
        "the interruption was handled by the chunked path"
    );
}

#[test]
fn a_chunk_refused_by_the_proxy_resumes_where_the_registry_stopped() {
    let s = Setup::new(common::harbor::HarborOptions { fail_patch: Some(3), ..Default::default() }, 1, 8 << 20);
    let out = s.load(&["--json", "--chunk-threshold", "1048576", "--chunk-size", "1048576"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resuming the upload where the registry stopped"), "{err}");
    let images = &s.images;
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", images[0].repository), "1.0", &images[0]);
    // Only the refused chunk went twice.
    let size = images[0].blobs.values().map(|b| b.len() as u64).max().unwrap();
    let config = images[0].blobs.values().map(|b| b.len() as u64).min().unwrap();
    let sent = done_event(&out)["bytes_sent"].as_u64().unwrap();
    assert_eq!(sent, size + config + (1 << 20), "sent {sent}");
    let reqs = s.harbor.requests();
    assert!(reqs.iter().any(|r| r.starts_with("GET /v2/") && r.contains("/blobs/uploads/")), "asked for the offset");
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        // The registry renames and removes upload files while this walks,
        // so an entry may be gone by the time it is looked at.
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            n += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
        }
    }
    n
}

#[test]
fn killed_at_random_points_the_next_run_reuploads_nothing_finished() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let images = many_images(16, 3 << 20);
    let bundle = bundle_of(dir.path(), &images);
    let seed: u64 = rand::rng().random();
    eprintln!("kill schedule seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut kills = 0;
    for round in 0..5 {
        let mut child = load_cmd(&reg.url(), &bundle, &state, &["--concurrency", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
        eprintln!("round {round}: journal holds {} blobs", journaled_blobs(&state, &reg.host()).len());
    }
    assert!(kills > 0, "at least one run was killed mid-load");
    let finished = journaled_blobs(&state, &reg.host());
    // The journal never claims what the registry does not have.
    for (repo, digest) in &finished {
        assert!(reg.blob_exists(repo, digest), "journal says {repo} has {digest}");
    }
    let out = run(load_cmd(&reg.url(), &bundle, &state, &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    let reuploaded: Vec<_> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "blob" && e["outcome"] == "uploaded")
        .filter(|e| {
            finished.contains(&(e["repository"].as_str().unwrap().to_owned(), e["digest"].as_str().unwrap().to_owned()))
        })
        .collect();
    eprintln!("{} blobs were finished before the last run", finished.len());
    assert!(reuploaded.is_empty(), "re-uploaded finished blobs: {reuploaded:#?}");
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
}

#[test]
fn a_chunked_upload_killed_mid_blob_resumes_in_the_next_run_from_the_journal() {
    // The 4th PATCH never gets an answer: the agent is stuck with 3 chunks in.
    let s = Setup::new(common::harbor::HarborOptions { hang_patch: Some(4), ..Default::default() }, 1, 6 << 20);
    let chunked = ["--json", "--chunk-threshold", "1048576", "--chunk-size", "1048576"];
    let mut child = s.cmd(&chunked).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while s.harbor.requests().iter().filter(|r| r.starts_with("PATCH")).count() < 4
        && t.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL while the 4th chunk hangs
    child.wait().unwrap();
    let out = s.load(&chunked);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resuming an interrupted upload"), "{err}");
    let images = &s.images;
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", images[0].repository), "1.0", &images[0]);
    // The three acknowledged chunks were not sent again.
    let layer = images[0].blobs.values().map(|b| b.len() as u64).max().unwrap();
    let sent = done_event(&out)["bytes_sent"].as_u64().unwrap();
    assert!(sent <= layer - (3 << 20) + 4096, "sent {sent} of a {layer}-byte layer");
}

/// The biggest blob of `image` (its layer).
fn layer_of(image: &TestImage) -> (edgeiso_bundle::Digest, u64) {
    let (d, b) = image.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
    (d.clone(), b.len() as u64)
}

#[test]
fn a_first_chunk_refused_by_the_proxy_resumes_at_zero_not_one() {
    // The first PATCH never reaches the registry: its session is empty and
    // says `Range: 0-0`, which must be read as 0 bytes, not 1.
    let s = Setup::new(common::harbor::HarborOptions { fail_patch: Some(1), ..Default::default() }, 1, 4 << 20);
    let out = s.load(&["--json", "--chunk-threshold", "1048576", "--chunk-size", "1048576"]);
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", s.images[0].repository), "1.0", &s.images[0]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resuming the upload where the registry stopped"), "{err}");
}

#[test]
fn an_early_202_to_a_patch_is_a_failed_chunk_not_a_panic() {
    let s = Setup::new(common::harbor::HarborOptions { early_patch_accept: Some(2), ..Default::default() }, 1, 8 << 20);
    let out = s.load(&["--json", "--chunk-threshold", "1048576", "--chunk-size", "4194304"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", s.images[0].repository), "1.0", &s.images[0]);
    assert!(err.contains("resuming the upload where the registry stopped"), "{err}");
}

#[test]
fn a_lost_answer_to_the_closing_put_is_checked_with_a_head_not_a_failure() {
    // The registry commits the blob; the proxy answers 502; the retried close
    // then finds no session (404).
    let s = Setup::new(common::harbor::HarborOptions { lose_close_response: true, ..Default::default() }, 1, 6 << 20);
    let chunked = ["--json", "--chunk-threshold", "1048576", "--chunk-size", "1048576"];
    let out = s.load(&chunked);
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", s.images[0].repository), "1.0", &s.images[0]);
    let (layer, size) = layer_of(&s.images[0]);
    let sent = done_event(&out)["bytes_sent"].as_u64().unwrap();
    assert!(sent < size + 4096, "the layer went once: {sent}");
    let reqs = s.harbor.requests();
    assert!(reqs.iter().any(|r| r.starts_with("HEAD /v2/") && r.ends_with(layer.as_str())), "{reqs:#?}");
    let out = s.load(&chunked);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(done_event(&out)["bytes_sent"], 0);
}

#[test]
fn a_journaled_session_that_is_gone_is_checked_with_a_head_before_uploading_again() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let images = many_images(1, 3 << 20);
    let bundle = bundle_of(dir.path(), &images);
    let repo = format!("spectro-images/docker.io/{}", images[0].repository);
    let (layer, size) = layer_of(&images[0]);
    // An earlier run committed the layer, but died before journaling it: the
    // journal still holds the (now gone) upload session.
    reg.upload_blob(&repo, &layer, &images[0].blobs[&layer]);
    {
        let j = edgeiso_agent::journal::Journal::open(&journal_path(&state, &reg.host())).unwrap();
        j.append(Record::Upload {
            repo: repo.clone(),
            digest: layer.clone(),
            location: format!("{}/v2/{repo}/blobs/uploads/0d2e5c4e-0000-4000-8000-000000000000", reg.url()),
            offset: 2 << 20,
        })
        .unwrap();
    }
    let out = run(load_cmd(&reg.url(), &bundle, &state, &["--json", "--chunk-threshold", "1048576"]));
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&reg, &repo, "1.0", &images[0]);
    let sent = done_event(&out)["bytes_sent"].as_u64().unwrap();
    assert!(sent < size, "the layer was not uploaded again: {sent}");
    let ev = events(&out);
    assert!(ev.iter().any(|e| e["event"] == "blob" && e["digest"] == layer.as_str() && e["outcome"] == "present"));
}

#[test]
fn the_deadline_stops_a_stalled_load_cleanly_and_the_next_run_resumes() {
    // The 2nd PATCH is swallowed and never answered: the load stalls with one
    // chunk acknowledged and journaled.
    let s = Setup::new(common::harbor::HarborOptions { hang_patch: Some(2), ..Default::default() }, 1, 6 << 20);
    let chunked = ["--json", "--chunk-threshold", "1048576", "--chunk-size", "1048576"];
    let t = Instant::now();
    let mut c = s.cmd(&chunked);
    c.args(["--deadline", "4s"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(8));
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    let key = format!("spectro-images/docker.io/{}:1.0", s.images[0].repository);
    assert!(err.contains(&format!("not loaded: {key}")), "{err}");
    // The journal is whole: the image is pending (neither loaded nor failed)
    // and the acknowledged chunk is recorded for the next run.
    let (records, _) =
        read_records(&journal_path(&s.state(), s.harbor.url.trim_start_matches("http://"))).unwrap_or_default();
    assert!(records.iter().any(|r| matches!(r, Record::Upload { .. })), "{records:#?}");
    assert!(!records.iter().any(|r| matches!(r, Record::Failed { .. } | Record::Image { .. })), "{records:#?}");
    let out = s.load(&chunked);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming an interrupted upload"));
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", s.images[0].repository), "1.0", &s.images[0]);
}

#[test]
fn a_failed_whole_blob_put_cancels_its_session_before_retrying() {
    let s = Setup::new(common::harbor::HarborOptions { fail_blob_put: Some(1), ..Default::default() }, 1, 2 << 20);
    let out = s.load(&["--json", "--concurrency", "1"]);
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&s.reg, &format!("spectro-images/docker.io/{}", s.images[0].repository), "1.0", &s.images[0]);
    let reqs = s.harbor.requests();
    let failed_put = reqs.iter().position(|r| r.starts_with("PUT /v2/") && r.contains("/blobs/uploads/")).unwrap();
    let session = reqs[failed_put].split('?').next().unwrap().trim_start_matches("PUT ").to_owned();
    assert!(
        reqs[failed_put..].iter().any(|r| r.starts_with("DELETE ") && r.starts_with(&format!("DELETE {session}"))),
        "the abandoned session {session} was cancelled: {reqs:#?}"
    );
}
