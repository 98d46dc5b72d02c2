//! `edgeiso bundle create|verify|inspect` against a real registry, read back
//! with real skopeo and containerd.

mod common;

use std::path::Path;

use common::{edgeiso, p, tree, write_spec};
use edgeiso_bundle::{Bundle, Role};
use edgeiso_testkit::images::{self, TestImage};
use edgeiso_testkit::Registry;

fn by_repo<'a>(corpus: &'a [TestImage], repo: &str) -> &'a TestImage {
    corpus.iter().find(|i| i.repository == repo).unwrap()
}

/// A spec covering every kind of image: OCI, Docker schema 2, a whole
/// multi-platform index, a platform-filtered index, a digest pin, a bootstrap
/// image with an uncompressed layer.
fn corpus_spec(reg: &Registry, corpus: &[TestImage]) -> String {
    let h = reg.host();
    let app = by_repo(corpus, "team/app");
    format!(
        "name: store-042\n\
         images:\n  - {h}/team/app@{}\n  - {h}/team/web:2.1\n  - ref: {h}/team/multi:1.0\n    platforms: all\n\
         bootstrapImages:\n  - {h}/team/raw:1.0\n\
         registries:\n  - host: {h}\n    insecure: true\n",
        app.digest
    )
}

/// A registry holding the corpus, and a spec of all of it in a temp folder.
fn corpus_fixture() -> (Registry, Vec<TestImage>, tempfile::TempDir, std::path::PathBuf) {
    let reg = Registry::start();
    let corpus = images::corpus();
    images::push_all(&reg, &corpus);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &corpus_spec(&reg, &corpus));
    (reg, corpus, dir, spec)
}

fn create(spec: &Path, out: &Path, cache: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["--json", "bundle", "create", "--spec", p(spec), "--output", p(out), "--cache", p(cache)];
    args.extend_from_slice(extra);
    edgeiso(&args, &[("SOURCE_DATE_EPOCH", "1700000000")])
}

#[test]
fn bundle_holds_every_image_byte_identical_and_verifies() {
    let (reg, corpus, dir, spec) = corpus_fixture();
    let out = dir.path().join("out");
    create(&spec, &out, &dir.path().join("cache"), &[]).ok();

    // The lock pins every reference.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("edgeiso.lock")).unwrap()).unwrap();
    assert_eq!(lock["images"].as_object().unwrap().len(), 4, "{lock}");
    assert_eq!(lock["images"][format!("{}/team/web:2.1", reg.host())], by_repo(&corpus, "team/web").digest.to_string());

    let path = out.join("content-store-042.tar");
    let bundle = Bundle::open(&path).unwrap();
    assert_eq!(bundle.members().next().unwrap().0, "bundle.json");
    assert_eq!(bundle.meta.images.len(), 4);
    for img in &corpus {
        let rec = bundle.meta.images.iter().find(|r| r.reference.repository() == img.repository).unwrap();
        assert_eq!(rec.digest, img.digest, "{}", img.repository);
        assert_eq!(rec.role, if img.repository == "team/raw" { Role::Bootstrap } else { Role::Workload });
        // Every manifest and blob stored byte for byte.
        for (_, bytes) in &img.manifests {
            let d = edgeiso_bundle::Digest::of(bytes);
            assert_eq!(&bundle.read_small(&d.blob_path()).unwrap(), bytes);
        }
        for (d, bytes) in &img.blobs {
            let loc = bundle.blob(d).unwrap_or_else(|| panic!("{} lacks {d}", img.repository));
            assert_eq!(loc.size, bytes.len() as u64);
        }
    }
    let multi = bundle.meta.images.iter().find(|r| r.reference.repository() == "team/multi").unwrap();
    assert_eq!(multi.platforms, vec!["linux/amd64", "linux/arm64/v8"]);
    // Each blob once: members = unique digests + 3 metadata files.
    let unique: std::collections::BTreeSet<_> = corpus.iter().flat_map(|i| i.blobs.keys().cloned()).collect();
    let manifests: std::collections::BTreeSet<_> =
        corpus.iter().flat_map(|i| i.manifests.iter().map(|m| edgeiso_bundle::Digest::of(&m.1))).collect();
    // (+1: the OCI view index.json names for the Docker schema-2 image.)
    assert_eq!(bundle.members().count(), 3 + unique.len() + manifests.len() + 1);
    let web = bundle.meta.images.iter().find(|r| r.reference.repository() == "team/web").unwrap();
    assert!(web.index_digest.is_some(), "a Docker-typed image gets an OCI view");
    // index.json names images by their full reference, for skopeo and containerd.
    let index: serde_json::Value = serde_json::from_slice(&bundle.read_small("index.json").unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["io.containerd.image.name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&format!("{}/team/web:2.1", reg.host()).as_str()), "{names:?}");
    assert!(names.iter().any(|n| n.contains("team/app@sha256:")));

    let v = edgeiso(&["bundle", "verify", p(&path)], &[]).ok();
    assert!(v.stderr().contains("OK"), "{}", v.stderr());
    let i = edgeiso(&["--json", "bundle", "inspect", p(&path)], &[]).ok();
    let ev = &i.events("inspect")[0];
    assert_eq!(ev["images"].as_array().unwrap().len(), 4);
    assert!(ev["savedByDeduplication"].as_u64().unwrap() > 0, "app, web and multi share a base layer: {ev}");
    let table = edgeiso(&["bundle", "inspect", p(&path)], &[]).ok().stdout();
    assert!(table.contains("bootstrap") && table.contains("linux/arm64/v8"), "{table}");
}

#[test]
fn default_platform_keeps_one_manifest_of_an_index() {
    let reg = Registry::start();
    let corpus = images::corpus();
    images::push_all(&reg, &corpus);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &format!(
            "name: one\nimages:\n  - {}/team/multi:1.0\nregistries:\n  - host: {}\n    insecure: true\n",
            reg.host(),
            reg.host()
        ),
    );
    create(&spec, &dir.path().join("out"), &dir.path().join("cache"), &[]).ok();
    let bundle = Bundle::open(&dir.path().join("out/content-one.tar")).unwrap();
    let multi = by_repo(&corpus, "team/multi");
    let (amd64, _) = multi.platform_manifest("linux/amd64").unwrap();
    let rec = &bundle.meta.images[0];
    assert_eq!(rec.digest, amd64);
    assert_eq!(rec.source_digest.as_ref(), Some(&multi.digest));
    assert_eq!(rec.platforms, vec!["linux/amd64"]);
    let (arm64, _) = multi.platform_manifest("linux/arm64").unwrap();
    assert!(bundle.blob(&arm64).is_none(), "arm64 manifest must not be stored");
    edgeiso(&["bundle", "verify", p(&dir.path().join("out/content-one.tar"))], &[]).ok();
}

#[test]
fn skopeo_and_containerd_read_the_bundle_as_written() {
    let (_reg, _corpus, dir, spec) = corpus_fixture();
    create(&spec, &dir.path().join("out"), &dir.path().join("cache"), &[]).ok();
    let bundle_path = dir.path().join("out/content-store-042.tar");
    let bundle = Bundle::open(&bundle_path).unwrap();

    // skopeo copies each image out of the archive into a second registry.
    let dest = Registry::start();
    for rec in &bundle.meta.images {
        let target = format!("docker://{}/copied/{}", dest.host(), rec.reference.repository());
        let target = match rec.reference.tag() {
            Some(t) => format!("{target}:{t}"),
            None => format!("{target}:pinned"),
        };
        let out = std::process::Command::new("skopeo")
            .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
            .args(edgeiso_bundle::manifest::is_index(&rec.media_type).then_some("--all"))
            .arg(format!("oci-archive:{}:{}", bundle_path.display(), rec.reference))
            .arg(&target)
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo copy {}: {}", rec.reference, String::from_utf8_lossy(&out.stderr));
        let tag = rec.reference.tag().unwrap_or("pinned");
        let (_, bytes) = dest.get_manifest(&format!("copied/{}", rec.reference.repository()), tag).unwrap();
        assert_eq!(edgeiso_bundle::Digest::of(&bytes), rec.digest, "{}", rec.reference);
    }

    // containerd imports the very same file.
    let ctrd = edgeiso_testkit::containerd::Containerd::start();
    let out = ctrd.ctr(&["-n", "k8s.io", "images", "import", p(&bundle_path)]);
    assert!(out.status.success(), "ctr import: {}", String::from_utf8_lossy(&out.stderr));
    let out = ctrd.ctr(&["-n", "k8s.io", "images", "ls", "-q"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    for rec in &bundle.meta.images {
        assert!(listed.lines().any(|l| l == rec.reference.as_str()), "{} not imported:\n{listed}", rec.reference);
    }
}

#[test]
fn same_inputs_give_a_byte_identical_bundle_and_parts_and_zstd_agree() {
    let (_reg, _corpus, dir, spec) = corpus_fixture();
    create(&spec, &dir.path().join("a"), &dir.path().join("cache-a"), &[]).ok();
    create(&spec, &dir.path().join("b"), &dir.path().join("cache-b"), &["--locked"]).ok();
    let a = std::fs::read(dir.path().join("a/content-store-042.tar")).unwrap();
    let b = std::fs::read(dir.path().join("b/content-store-042.tar")).unwrap();
    assert!(a == b, "bundles differ");

    // Parts: the same bytes, cut; every reader accepts the first part.
    let parts_dir = dir.path().join("parts");
    create(&spec, &parts_dir, &dir.path().join("cache-a"), &["--part-size", "100000", "--zstd"]).ok();
    let names = tree(&parts_dir);
    assert!(names.contains(&"content-store-042.tar.part000".to_string()), "{names:?}");
    assert!(!names.contains(&"content-store-042.tar".to_string()), "{names:?}");
    let mut joined = Vec::new();
    for n in names.iter().filter(|n| n.contains(".part")) {
        joined.extend(std::fs::read(parts_dir.join(n)).unwrap());
    }
    assert!(joined == a, "joined parts differ from the single tar");
    let unz = zstd::decode_all(std::fs::File::open(parts_dir.join("content-store-042.tar.zst")).unwrap()).unwrap();
    assert!(unz == a, "zstd copy differs");
    edgeiso(&["bundle", "verify", p(&parts_dir.join("content-store-042.tar.part000"))], &[]).ok();
    edgeiso(&["bundle", "inspect", p(&parts_dir.join("content-store-042.tar"))], &[]).ok();
    // Every part but the last is exactly --part-size; the last is not larger.
    let sizes: Vec<u64> = names
        .iter()
        .filter(|n| n.contains(".part"))
        .map(|n| std::fs::metadata(parts_dir.join(n)).unwrap().len())
        .collect();
    assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 100000), "{sizes:?}");
    assert!(*sizes.last().unwrap() <= 100000, "{sizes:?}");
    // (The < 0.5% size overhead is measured on the benchmark corpus in
    // scripts/bench-bundle.sh: on this tiny corpus tar headers dominate.)
}

#[test]
fn cache_means_a_rebuild_downloads_only_new_blobs() {
    let (reg, _corpus, dir, spec) = corpus_fixture();
    let cache = dir.path().join("cache");
    let first = create(&spec, &dir.path().join("out"), &cache, &[]).ok();
    assert!(!first.events("blob").is_empty());
    let second = create(&spec, &dir.path().join("out"), &cache, &[]).ok();
    assert_eq!(second.events("blob").len(), 0, "everything was cached");

    // One image changes: only its new blobs are pulled.
    let changed = images::image_with_layer("team/web", "2.1", 4096, 7);
    images::push(&reg, &changed);
    let third = create(&spec, &dir.path().join("out"), &cache, &[]).ok();
    let pulled: Vec<String> = third.events("blob").iter().map(|e| e["digest"].as_str().unwrap().to_owned()).collect();
    let mut expected: Vec<String> = changed.blobs.keys().map(|d| d.to_string()).collect();
    expected.sort();
    let mut pulled_sorted = pulled.clone();
    pulled_sorted.sort();
    assert_eq!(pulled_sorted, expected);
}

#[test]
fn locked_build_uses_the_pinned_digest_even_after_the_tag_moved() {
    let (reg, corpus, dir, spec) = corpus_fixture();
    let cache = dir.path().join("cache");
    create(&spec, &dir.path().join("out"), &cache, &[]).ok();
    images::push(&reg, &images::image_with_layer("team/web", "2.1", 4096, 9));
    create(&spec, &dir.path().join("out"), &cache, &["--locked"]).ok();
    let bundle = Bundle::open(&dir.path().join("out/content-store-042.tar")).unwrap();
    let web = bundle.meta.images.iter().find(|r| r.reference.repository() == "team/web").unwrap();
    assert_eq!(web.digest, by_repo(&corpus, "team/web").digest);

    // An image the lock does not know fails --locked, naming it.
    let text =
        corpus_spec(&reg, &corpus).replacen("images:\n", &format!("images:\n  - {}/team/extra:1\n", reg.host()), 1);
    let spec3 = write_spec(dir.path(), &text);
    let r = create(&spec3, &dir.path().join("out"), &cache, &["--locked"]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("team/extra:1"), "{}", r.stderr());
}

#[test]
fn platform_requests_an_image_cannot_meet_are_refused_with_exit_3() {
    let (reg, corpus, dir, _) = corpus_fixture();
    let h = reg.host();
    // An amd64-only image asked for as arm64.
    let spec = write_spec(
        dir.path(),
        &format!("name: s\nimages:\n  - ref: {h}/team/app:1.0\n    platforms: [linux/arm64]\nregistries:\n  - host: {h}\n    insecure: true\n"),
    );
    let r = create(&spec, &dir.path().join("out"), &dir.path().join("cache"), &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("team/app:1.0") && r.stderr().contains("linux/amd64"), "{}", r.stderr());
    // An index pinned by digest cannot be narrowed to one platform.
    let multi = by_repo(&corpus, "team/multi");
    let spec = write_spec(
        dir.path(),
        &format!(
            "name: s\nimages:\n  - {h}/team/multi@{}\nregistries:\n  - host: {h}\n    insecure: true\n",
            multi.digest
        ),
    );
    let r = create(&spec, &dir.path().join("out"), &dir.path().join("cache"), &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("platforms: all"), "{}", r.stderr());
    assert!(!dir.path().join("out/content-s.tar").exists());
}

#[test]
fn a_damaged_cache_entry_is_named_evicted_and_refetched() {
    let (_reg, corpus, dir, spec) = corpus_fixture();
    let cache = dir.path().join("cache");
    create(&spec, &dir.path().join("out"), &cache, &[]).ok();
    // Same size, wrong bytes: what a torn write or bit rot leaves.
    let (layer, _) = by_repo(&corpus, "team/app").blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
    let cached = cache.join("blobs/sha256").join(layer.hex());
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[7] ^= 0xff;
    std::fs::write(&cached, &bytes).unwrap();
    let r = create(&spec, &dir.path().join("out2"), &cache, &[]);
    assert_eq!(r.code(), 4, "{}", r.stderr());
    assert!(
        r.stderr().contains(layer.as_str()) && r.stderr().contains(&cached.display().to_string()),
        "{}",
        r.stderr()
    );
    assert!(!cached.exists(), "the damaged entry must be evicted");
    create(&spec, &dir.path().join("out2"), &cache, &[]).ok();
}

#[test]
fn specs_sharing_a_folder_share_one_lock_without_clobbering() {
    let (reg, _corpus, dir, _) = corpus_fixture();
    let h = reg.host();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        format!("name: a\nimages:\n  - {h}/team/app:1.0\nregistries:\n  - host: {h}\n    insecure: true\n"),
    )
    .unwrap();
    std::fs::write(
        &b,
        format!("name: b\nimages:\n  - {h}/team/web:2.1\nregistries:\n  - host: {h}\n    insecure: true\n"),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    create(&a, &dir.path().join("out"), &cache, &[]).ok();
    create(&b, &dir.path().join("out"), &cache, &[]).ok();
    create(&a, &dir.path().join("out"), &cache, &["--locked"]).ok();
    create(&b, &dir.path().join("out"), &cache, &["--locked"]).ok();
}
