//! Thin and delta bundles (issue 13) against real registries: the source a
//! thin bundle's blobs come from and the registry they go into are both
//! Debian's docker-registry on loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use std::collections::HashMap;

use common::hostile_source::{HostileSource, SourceMode, SIGNATURE};
use common::*;
use edgeiso_bundle::Digest;
use edgeiso_testkit::bundles::{write_delta_bundle, write_thin_bundle};
use edgeiso_testkit::images::{self, image_with_layer, TestImage};
use edgeiso_testkit::{Registry, RegistryOptions};

/// Where `image`, named `source`, lands in the site registry.
fn target(source: &str) -> String {
    let r = edgeiso_bundle::ImageRef::parse(source).unwrap();
    edgeiso_bundle::harbor_target(PROJECT, &r).repository
}

fn source_ref(reg: &Registry, image: &TestImage) -> String {
    format!("{}/{}:{}", reg.host(), image.repository, image.tag)
}

/// A `--sources` file with `registries:` entries, as a site spec has them.
fn sources_file(dir: &Path, entries: &str) -> PathBuf {
    let f = dir.join("sources.yaml");
    std::fs::write(&f, format!("name: site\nregistries:\n{entries}")).unwrap();
    f
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn load(dest: &Registry, bundle: &Path, state: &Path, extra: &[&str]) -> Output {
    run(load_cmd(&dest.url(), bundle, state, extra))
}

fn blob_events<'a>(events: &'a [serde_json::Value], outcome: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == "blob" && e["outcome"] == outcome).collect()
}

/// The file a docker-registry stores blob `digest` in.
fn stored_blob(reg: &Registry, digest: &Digest) -> PathBuf {
    let hex = digest.as_str().strip_prefix("sha256:").unwrap();
    reg.storage_dir().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
}

fn largest_blob(image: &TestImage) -> Digest {
    image.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap().0.clone()
}

#[test]
fn a_thin_bundle_loads_from_a_tls_source_with_credentials_by_digest_even_after_the_tag_moved() {
    let source = Registry::start_with(RegistryOptions { tls: true, auth: Some(("puller".into(), "s3cret".into())) });
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    // One layer big enough to go in chunks, one small image.
    let imgs = vec![image_with_layer("team/app", "1.0", 3 << 20, 1), image_with_layer("team/web", "2.1", 40_000, 2)];
    images::push_all(&source, &imgs);
    let refs: Vec<String> = imgs.iter().map(|i| source_ref(&source, i)).collect();
    let entries: Vec<Entry> = imgs.iter().zip(&refs).map(|(i, r)| Entry::workload(i, r)).collect();
    let thin = write_thin_bundle(dir.path(), "site", &entries);
    assert!(std::fs::metadata(&thin).unwrap().len() < 64 << 10, "no layer in a thin bundle");

    // The tag moves on the source after the bundle was made: the bundle's
    // digest is what loads (blobs are fetched by digest, manifests never).
    let moved = image_with_layer("team/app", "1.0", 50_000, 99);
    images::push_all(&source, std::slice::from_ref(&moved));

    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    let ca = source.ca_pem_path().unwrap().display().to_string();
    let sources = sources_file(
        dir.path(),
        &format!(
            "  - host: {}\n    caFile: {ca}\n    username: puller\n    passwordFile: pw\n    secret: {{name: src}}\n",
            source.host()
        ),
    );
    let state = dir.path().join("state");
    let args = ["--json", "--sources", p(&sources), "--chunk-threshold", "1048576", "--chunk-size", "1048576"];
    let out = load(&dest, &thin, &state, &args);
    assert_eq!(out.status.code(), Some(0));
    for (img, r) in imgs.iter().zip(&refs) {
        assert_loaded(&dest, &target(r), &img.tag, img);
    }
    let evs = events(&out);
    let blob_count: usize = imgs.iter().map(|i| i.blobs.len()).sum();
    assert_eq!(blob_events(&evs, "fetched").len(), blob_count, "every config and layer came from the source");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("s3cret"), "no password in the logs");

    // Run again: nothing is fetched twice.
    let again = load(&dest, &thin, &state, &args);
    assert_eq!(again.status.code(), Some(0));
    assert!(blob_events(&events(&again), "fetched").is_empty());

    // Without the CA the source is refused as TLS (7); without the
    // credentials as credentials (5). Nothing of the image is pushed.
    for (entry, code) in [
        (format!("  - host: {}\n    username: puller\n    passwordFile: pw\n", source.host()), 7),
        (format!("  - host: {}\n    caFile: {ca}\n", source.host()), 5),
    ] {
        let fresh = Registry::start();
        let sources = sources_file(dir.path(), &entry);
        let out = load(&fresh, &thin, &dir.path().join(format!("s{code}")), &["--sources", p(&sources)]);
        assert_eq!(out.status.code(), Some(code));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("source registry") && stderr.contains(&source.host()), "{stderr}");
        assert!(fresh.get_manifest(&target(&refs[0]), "1.0").is_none());
    }
}

#[test]
fn a_source_serving_wrong_bytes_fails_that_image_only_and_nothing_of_the_blob_is_committed() {
    let source = Registry::start();
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let imgs = vec![image_with_layer("team/app", "1.0", 200_000, 3), image_with_layer("team/web", "2.1", 40_000, 4)];
    images::push_all(&source, &imgs);
    let refs: Vec<String> = imgs.iter().map(|i| source_ref(&source, i)).collect();
    let entries: Vec<Entry> = imgs.iter().zip(&refs).map(|(i, r)| Entry::workload(i, r)).collect();
    let thin = write_thin_bundle(dir.path(), "site", &entries);
    // The source's stored layer of the first image rots (distribution serves
    // what is on disk without checking it).
    let bad = largest_blob(&imgs[0]);
    let file = stored_blob(&source, &bad);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let sources = sources_file(dir.path(), &format!("  - host: {}\n    insecure: true\n", source.host()));
    let out = load(&dest, &thin, &dir.path().join("s"), &["--sources", p(&sources)]);
    assert_eq!(out.status.code(), Some(3), "a content failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("blob {bad} served by source registry http://{}", source.host()))
            && stderr.contains("is corrupt"),
        "{stderr}"
    );
    assert!(!dest.blob_exists(&target(&refs[0]), bad.as_str()), "the bad blob is not in the registry");
    assert!(dest.get_manifest(&target(&refs[0]), "1.0").is_none());
    assert_loaded(&dest, &target(&refs[1]), "2.1", &imgs[1]);
}

#[test]
fn an_unreachable_source_fails_its_images_with_exit_4_and_the_others_load() {
    let source = Registry::start();
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let good = image_with_layer("team/app", "1.0", 40_000, 5);
    let gone = image_with_layer("team/gone", "1.0", 40_000, 6);
    images::push_all(&source, std::slice::from_ref(&good));
    let good_ref = source_ref(&source, &good);
    let dead = format!("127.0.0.1:{}", edgeiso_testkit::free_port());
    let gone_ref = format!("{dead}/team/gone:1.0");
    let entries = [Entry::workload(&good, &good_ref), Entry::workload(&gone, &gone_ref)];
    let thin = write_thin_bundle(dir.path(), "site", &entries);
    let sources = sources_file(
        dir.path(),
        &format!("  - host: {}\n    insecure: true\n  - host: {dead}\n    insecure: true\n", source.host()),
    );
    let out = load(&dest, &thin, &dir.path().join("s"), &["--sources", p(&sources), "--retries", "1"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("their source registry did not answer") && stderr.contains(&dead), "{stderr}");
    assert_loaded(&dest, &target(&good_ref), "1.0", &good);
    assert!(dest.get_manifest(&target(&gone_ref), "1.0").is_none());
}

#[test]
fn a_thin_load_cut_off_by_its_source_resumes_from_the_journal() {
    let mut source = Registry::start();
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let imgs: Vec<TestImage> =
        (0..6).map(|i| image_with_layer(&format!("team/app{i}"), "1.0", 300_000, 10 + i as u64)).collect();
    images::push_all(&source, &imgs);
    let refs: Vec<String> = imgs.iter().map(|i| source_ref(&source, i)).collect();
    let entries: Vec<Entry> = imgs.iter().zip(&refs).map(|(i, r)| Entry::workload(i, r)).collect();
    let thin = write_thin_bundle(dir.path(), "site", &entries);
    let sources = sources_file(dir.path(), &format!("  - host: {}\n    insecure: true\n", source.host()));
    let state = dir.path().join("s");
    // Half of the layers are gone from the source for the first run: it
    // loads the others and fails those (a real "not found": exit 3).
    for img in &imgs[3..] {
        let f = stored_blob(&source, &largest_blob(img));
        std::fs::rename(&f, f.with_extension("away")).unwrap();
    }
    let first = load(&dest, &thin, &state, &["--json", "--sources", p(&sources), "--retries", "1"]);
    assert_ne!(first.status.code(), Some(0));
    let fetched_first = blob_events(&events(&first), "fetched").len();
    assert!(fetched_first >= 6, "the first three images' blobs and more: {fetched_first}");
    for img in &imgs[3..] {
        let f = stored_blob(&source, &largest_blob(img));
        std::fs::rename(f.with_extension("away"), &f).unwrap();
    }
    source.restart();
    let second = load(&dest, &thin, &state, &["--json", "--sources", p(&sources)]);
    assert_eq!(second.status.code(), Some(0));
    let evs = events(&second);
    // Only what the first run could not fetch is fetched now.
    let refetched: Vec<String> =
        blob_events(&evs, "fetched").iter().map(|e| e["digest"].as_str().unwrap().to_owned()).collect();
    let missing: Vec<String> = imgs[3..].iter().map(|i| largest_blob(i).to_string()).collect();
    assert_eq!(refetched.len(), missing.len(), "{refetched:?}");
    assert!(refetched.iter().all(|d| missing.contains(d)));
    for (img, r) in imgs.iter().zip(&refs) {
        assert_loaded(&dest, &target(r), &img.tag, img);
    }
}

#[test]
fn a_delta_loads_what_its_base_lacks_and_is_refused_where_the_base_was_never_loaded() {
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let app1 = image_with_layer("team/app", "1.0", 200_000, 20);
    let web = image_with_layer("team/web", "2.1", 200_000, 21);
    let base_dir = dir.path().join("base");
    std::fs::create_dir(&base_dir).unwrap();
    let base = write_bundle(
        &base_dir,
        "site",
        &[Entry::workload(&app1, "docker.io/team/app:1.0"), Entry::workload(&web, "docker.io/team/web:2.1")],
        None,
    )
    .remove(0);
    // Next month: a new app, web unchanged.
    let app2 = image_with_layer("team/app", "1.1", 200_000, 22);
    let new_dir = dir.path().join("new");
    std::fs::create_dir(&new_dir).unwrap();
    let delta = write_delta_bundle(
        &new_dir,
        "site",
        &[Entry::workload(&app2, "docker.io/team/app:1.1"), Entry::workload(&web, "docker.io/team/web:2.1")],
        &base,
    );
    let delta_bundle = edgeiso_bundle::Bundle::open(&delta).unwrap();
    assert!(delta_bundle.blob(&largest_blob(&web)).is_none() && delta_bundle.blob(&largest_blob(&app2)).is_some());

    // Never loaded here: refused, naming the base; web's manifest, whose
    // layer is missing, is not pushed.
    let state = dir.path().join("s");
    let out = load(&dest, &delta, &state, &[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sha = edgeiso_bundle::Bundle::open(&base).unwrap().bundle_json_sha256();
    assert!(
        stderr.contains(&format!("base bundle site (bundle.json sha256 {sha}) was never loaded here"))
            && stderr.contains("load the base first"),
        "{stderr}"
    );
    assert!(dest.get_manifest("spectro-images/docker.io/team/web", "2.1").is_none());
    // Again: the journal now holds the delta's own plan under that name.
    let out = load(&dest, &delta, &state, &[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not recorded here since this delta was planned"), "{stderr}");

    // A different bundle of the same name loaded: still not the base.
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = write_bundle(&other_dir, "site", &[Entry::workload(&app1, "docker.io/team/app:1.0")], None).remove(0);
    assert_eq!(load(&dest, &other, &state, &[]).status.code(), Some(0));
    let out = load(&dest, &delta, &state, &[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the bundle of that name loaded here is another one"), "{stderr}");

    // The base, then the delta: only the new blobs go.
    assert_eq!(load(&dest, &base, &state, &[]).status.code(), Some(0));
    let out = load(&dest, &delta, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_loaded(&dest, "spectro-images/docker.io/team/app", "1.1", &app2);
    assert_loaded(&dest, "spectro-images/docker.io/team/web", "2.1", &web);
    let uploaded: u64 = blob_events(&events(&out), "uploaded").iter().map(|e| e["size"].as_u64().unwrap()).sum();
    let new_bytes: u64 = app2.blobs.values().map(|b| b.len() as u64).sum();
    assert!(uploaded <= new_bytes, "sent {uploaded}, new {new_bytes}");
}

/// A thin bundle of one image whose blobs a hostile source serves, and the
/// site registry it goes into (real).
fn hostile_load(mode: SourceMode, extra: &[&str]) -> (Output, Registry, TestImage, HostileSource) {
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let image = image_with_layer("team/app", "1.0", 3 << 20, 30);
    let blobs = image.blobs.iter().map(|(d, b)| (d.to_string(), b.clone())).collect();
    let source = HostileSource::start(blobs, mode);
    let reference = format!("{}/team/app:1.0", source.host);
    let thin = write_thin_bundle(dir.path(), "site", &[Entry::workload(&image, &reference)]);
    let sources = sources_file(dir.path(), &format!("  - host: {}\n    insecure: true\n", source.host));
    // Chunked in 1 MiB unless `extra` sets the threshold itself.
    let mut args = vec!["--sources", p(&sources), "--chunk-size", "1048576"];
    if !extra.contains(&"--chunk-threshold") {
        args.extend(["--chunk-threshold", "1048576"]);
    }
    args.extend_from_slice(extra);
    let out = load(&dest, &thin, &dir.path().join("s"), &args);
    (out, dest, image, source)
}

#[test]
fn a_source_that_ignores_range_or_sends_too_much_still_gives_exactly_the_blob() {
    for mode in [SourceMode::IgnoresRange, SourceMode::Overlong] {
        let (out, dest, image, source) = hostile_load(mode, &[]);
        assert_eq!(out.status.code(), Some(0), "{mode:?}");
        assert_loaded(&dest, &target(&format!("{}/team/app:1.0", source.host)), "1.0", &image);
        if mode == SourceMode::IgnoresRange {
            // Chunks were asked for by range, and answered whole.
            let ranges = source.ranges.lock().unwrap();
            assert!(ranges.iter().any(|r| r.as_deref() == Some("bytes=1048576-2097151")), "{ranges:?}");
        }
    }
}

#[test]
fn a_source_sending_garbage_without_end_or_trickling_is_cut_off() {
    let started = std::time::Instant::now();
    let (out, dest, _, source) = hostile_load(SourceMode::Endless, &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(3), "a content failure: the bytes are not the blob");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("served by source registry http://{}", source.host)) && stderr.contains("corrupt")
    );
    assert!(
        dest.catalog().is_empty()
            || dest.get_manifest(&target(&format!("{}/team/app:1.0", source.host)), "1.0").is_none()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "never more than the blob's size is read");

    let (out, _, _, source) = hostile_load(SourceMode::Trickle, &["--retries", "0", "--answer-timeout", "2s"]);
    assert_eq!(out.status.code(), Some(4), "a source that does not answer in time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("their source registry did not answer") && stderr.contains(&source.host), "{stderr}");
}

#[test]
fn a_refused_chunk_of_a_fetched_blob_resumes_without_asking_the_source_for_nothing() {
    // The proxy in front of the site registry refuses the third chunk, so
    // the registry holds exactly what came before it: the resume re-reads
    // no bytes from the source (a `Range` of none would be refused, 416).
    let source = Registry::start();
    let reg = Registry::start();
    let harbor = common::harbor::HarborDouble::start(
        &reg.url(),
        common::harbor::HarborOptions { fail_patch: Some(3), ..Default::default() },
    );
    let dir = tempfile::tempdir().unwrap();
    let image = image_with_layer("team/app", "1.0", 5 << 20, 31);
    images::push_all(&source, std::slice::from_ref(&image));
    let reference = source_ref(&source, &image);
    let thin = write_thin_bundle(dir.path(), "site", &[Entry::workload(&image, &reference)]);
    let sources = sources_file(dir.path(), &format!("  - host: {}\n    insecure: true\n", source.host()));
    let args = ["--sources", p(&sources), "--chunk-threshold", "1048576", "--chunk-size", "1048576"];
    let out = run(load_cmd(&harbor.url, &thin, &dir.path().join("s"), &args));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming the upload where the registry stopped"), "{stderr}");
    assert_loaded(&reg, &target(&reference), "1.0", &image);
}

#[test]
fn a_signed_object_store_url_a_source_redirects_to_is_never_shown() {
    // The object store cuts the layer short: the error is the source's, and
    // the pre-signed URL's credential is in no message or event.
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let image = image_with_layer("team/app", "1.0", 1 << 20, 32);
    let blobs: HashMap<String, Vec<u8>> = image.blobs.iter().map(|(d, b)| (d.to_string(), b.clone())).collect();
    let store = HostileSource::start(blobs.clone(), SourceMode::ShortBody);
    let port: u16 = store.host.rsplit_once(':').unwrap().1.parse().unwrap();
    let source = HostileSource::start(blobs, SourceMode::RedirectsTo(port));
    let reference = format!("{}/team/app:1.0", source.host);
    let thin = write_thin_bundle(dir.path(), "site", &[Entry::workload(&image, &reference)]);
    let sources = sources_file(dir.path(), &format!("  - host: {}\n    insecure: true\n", source.host));
    let out = load(&dest, &thin, &dir.path().join("s"), &["--json", "--retries", "0", "--sources", p(&sources)]);
    assert_eq!(out.status.code(), Some(4));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains(&format!("GET http://{}", source.host)), "{stderr}");
    assert!(!stderr.contains(SIGNATURE) && !stdout.contains(SIGNATURE), "{stderr}");
}

#[test]
fn a_deltas_blob_is_looked_for_in_the_registry_even_with_a_stale_upload_journaled() {
    let dest = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let web = image_with_layer("team/web", "2.1", 200_000, 23);
    let base_dir = dir.path().join("base");
    std::fs::create_dir(&base_dir).unwrap();
    let base = write_bundle(&base_dir, "site", &[Entry::workload(&web, "docker.io/team/web:2.1")], None).remove(0);
    let state = dir.path().join("s");
    assert_eq!(load(&dest, &base, &state, &[]).status.code(), Some(0));
    // The journal forgot where the blobs are and holds an upload of the
    // layer it never finished (a journal from an older run, say).
    let journal = state.join("journal").join(format!("{}.jsonl", dest.host().replace(':', "_")));
    let kept: String = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"t\":\"blob\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let layer = largest_blob(&web);
    let stale = format!(
        "{{\"t\":\"upload\",\"repo\":\"spectro-images/docker.io/team/web\",\"digest\":\"{layer}\",\"location\":\"{}/v2/spectro-images/docker.io/team/web/blobs/uploads/gone\",\"offset\":1}}\n",
        dest.url()
    );
    std::fs::write(&journal, kept + &stale).unwrap();
    // Next month: the same web image under a new tag, all of it in the base.
    let new_dir = dir.path().join("new");
    std::fs::create_dir(&new_dir).unwrap();
    let delta = write_delta_bundle(&new_dir, "site", &[Entry::workload(&web, "docker.io/team/web:2.2")], &base);
    let out = load(&dest, &delta, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_loaded(&dest, "spectro-images/docker.io/team/web", "2.2", &web);
}

#[test]
fn a_source_that_drops_the_connection_mid_blob_is_asked_again_and_the_upload_goes_on() {
    // Chunked and monolithic: the layer's first answer breaks off after a
    // kilobyte; the agent asks the source again and the blob lands whole.
    for chunked in [true, false] {
        let extra: &[&str] = if chunked { &[] } else { &["--chunk-threshold", "99999999"] };
        let (out, dest, image, source) = hostile_load(SourceMode::DropsOnce, extra);
        assert_eq!(out.status.code(), Some(0), "chunked: {chunked}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = if chunked { "resuming the upload where the registry stopped" } else { "fetching it again" };
        assert!(stderr.contains(said), "chunked {chunked}: {stderr}");
        assert_loaded(&dest, &target(&format!("{}/team/app:1.0", source.host)), "1.0", &image);
    }
}
