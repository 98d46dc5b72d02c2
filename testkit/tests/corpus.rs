//! The synthetic corpus: deterministic, internally consistent, and readable by
//! independent tools (skopeo) in every on-disk form the harness writes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use edgeiso_bundle::manifest::{
    ManifestView, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_MANIFEST,
};
use edgeiso_bundle::Digest;
use edgeiso_testkit::images::{
    base_layer, build_image, tar_layer, TarEntry, ANNOTATION_REF_NAME, DOCKER_CONFIG, DOCKER_LAYER_GZIP,
};
use edgeiso_testkit::{
    corpus, image_with_layer, tools_present, write_docker_save, write_oci_layout, Flavor, Layer, TestImage,
};

fn by_ref(images: &[TestImage]) -> BTreeMap<String, &TestImage> {
    images.iter().map(|i| (i.reference(), i)).collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

fn diff_ids(image: &TestImage, manifest: &ManifestView) -> Vec<Digest> {
    #[derive(serde::Deserialize)]
    struct C {
        rootfs: R,
    }
    #[derive(serde::Deserialize)]
    struct R {
        #[serde(rename = "type")]
        kind: String,
        diff_ids: Vec<Digest>,
    }
    let c: C = serde_json::from_slice(&image.blobs[&manifest.config.as_ref().unwrap().digest]).unwrap();
    assert_eq!(c.rootfs.kind, "layers");
    c.rootfs.diff_ids
}

/// Every image manifest of an image (the children of an index, or itself).
fn image_manifests(image: &TestImage) -> Vec<ManifestView> {
    image.manifests.iter().map(|(_, b)| ManifestView::parse(b).unwrap()).filter(|m| !m.is_index()).collect()
}

#[test]
fn corpus_is_deterministic() {
    let (a, b) = (corpus(), corpus());
    assert_eq!(a, b, "two calls give identical images, byte for byte");
    let digests: Vec<&Digest> = a.iter().map(|i| &i.digest).collect();
    assert_eq!(digests, b.iter().map(|i| &i.digest).collect::<Vec<_>>());
}

/// The corpus bytes are the same on every run and every machine. If this
/// fails after a dependency change, the likely cause is a different deflate
/// backend in flate2 (feature unification with another crate): find out which
/// crate switched it, rather than updating these values blindly.
#[test]
fn corpus_digests_are_pinned() {
    let got: Vec<(String, String)> = corpus().iter().map(|i| (i.reference(), i.digest.to_string())).collect();
    let want = [
        ("team/app:1.0", "sha256:97d7ba01d99b40b5fe7caaa63533ea34afe397f24120e81537b3f3df35835e56"),
        ("team/web:2.1", "sha256:c7e8e006e42956c70c7f598e82be11800e2e564e1357b5ceca8cea80460af8bb"),
        ("team/multi:1.0", "sha256:2b4de483b085a0461aaae276b556556c99fa882aca37f006e42190d9591236ff"),
        ("team/raw:1.0", "sha256:e66534361ea5652d4a29469f3fb80b2188b3ba2e99ab2086eabc055a541b3823"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(r, d)| (r.to_string(), d.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn corpus_has_the_four_promised_shapes_and_is_small() {
    let images = corpus();
    let refs = by_ref(&images);
    assert_eq!(refs.keys().collect::<Vec<_>>(), ["team/app:1.0", "team/multi:1.0", "team/raw:1.0", "team/web:2.1"]);

    let app = refs["team/app:1.0"];
    assert_eq!(app.media_type, OCI_MANIFEST);
    let m = ManifestView::parse(app.top_bytes()).unwrap();
    assert_eq!(m.config.as_ref().unwrap().media_type, OCI_CONFIG);
    assert_eq!(m.layers.iter().map(|l| l.media_type.as_str()).collect::<Vec<_>>(), [OCI_LAYER_GZIP, OCI_LAYER_GZIP]);

    let web = refs["team/web:2.1"];
    assert_eq!(web.media_type, DOCKER_MANIFEST);
    let m = ManifestView::parse(web.top_bytes()).unwrap();
    assert_eq!(m.media_type.as_deref(), Some(DOCKER_MANIFEST));
    assert_eq!(m.config.as_ref().unwrap().media_type, DOCKER_CONFIG);
    assert!(m.layers.iter().all(|l| l.media_type == DOCKER_LAYER_GZIP));

    let multi = refs["team/multi:1.0"];
    assert_eq!(multi.media_type, OCI_INDEX);
    let idx = ManifestView::parse(multi.top_bytes()).unwrap();
    let platforms: Vec<String> = idx.manifests.iter().map(|d| d.platform.as_ref().unwrap().id()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(multi.manifests.len(), 3, "two children and the index");

    let raw = refs["team/raw:1.0"];
    let m = ManifestView::parse(raw.top_bytes()).unwrap();
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.layers[0].media_type, OCI_LAYER_TAR);

    // The base layer bytes are shared by app, web and multi's amd64 image.
    let base = base_layer().digest;
    for image in [app, web] {
        assert_eq!(ManifestView::parse(image.top_bytes()).unwrap().layers[0].digest, base, "{}", image.reference());
    }
    let (_, amd64) = multi.platform_manifest("linux/amd64").unwrap();
    assert_eq!(ManifestView::parse(&amd64).unwrap().layers[0].digest, base);
    let (_, arm64) = multi.platform_manifest("linux/arm64").unwrap();
    assert_ne!(ManifestView::parse(&arm64).unwrap().layers[0].digest, base);

    let total: u64 = images.iter().map(TestImage::total_bytes).sum();
    assert!((50_000..400_000).contains(&total), "corpus is a few hundred KB, got {total}");
}

#[test]
fn every_image_is_internally_consistent() {
    for image in corpus() {
        let name = image.reference();
        // Top-level last, and it is what `digest` and `media_type` describe.
        let (last_type, last_bytes) = image.manifests.last().unwrap();
        assert_eq!(*last_type, image.media_type, "{name}");
        assert_eq!(Digest::of(last_bytes), image.digest, "{name}");
        assert_eq!(image.top_bytes(), &last_bytes[..]);
        // Children come before the index that references them.
        let top = ManifestView::parse(image.top_bytes()).unwrap();
        for child in &top.manifests {
            let pos = image.manifests.iter().position(|(_, b)| Digest::of(b) == child.digest).expect("child present");
            assert!(pos < image.manifests.len() - 1, "{name}: child after the index");
            assert_eq!(child.size, image.manifests[pos].1.len() as u64);
        }
        // Blobs are keyed by their digest, and every referenced blob is there with its size.
        for (d, bytes) in &image.blobs {
            assert_eq!(Digest::of(bytes), *d, "{name}: blob stored under a wrong digest");
        }
        for m in image_manifests(&image) {
            for desc in m.blobs() {
                let blob = image.blobs.get(&desc.digest).unwrap_or_else(|| panic!("{name}: missing {}", desc.digest));
                assert_eq!(blob.len() as u64, desc.size, "{name}: size of {}", desc.digest);
            }
        }
    }
}

/// containerd checks these while unpacking; so do we, for every image, and in
/// particular for the Docker schema-2 one.
#[test]
fn configs_carry_the_diff_ids_of_the_uncompressed_layers() {
    for image in corpus() {
        for m in image_manifests(&image) {
            let ids = diff_ids(&image, &m);
            assert_eq!(ids.len(), m.layers.len(), "{}", image.reference());
            for (layer, diff_id) in m.layers.iter().zip(&ids) {
                let blob = &image.blobs[&layer.digest];
                let tar = if layer.media_type.ends_with("gzip") { gunzip(blob) } else { blob.clone() };
                assert_eq!(Digest::of(&tar), *diff_id, "{}: layer {}", image.reference(), layer.digest);
                if layer.media_type == OCI_LAYER_TAR {
                    assert_eq!(layer.digest, *diff_id, "an uncompressed layer's digest is its diff id");
                } else {
                    assert_ne!(layer.digest, *diff_id);
                }
            }
        }
    }
    let images = corpus();
    let web = by_ref(&images)["team/web:2.1"];
    let m = ManifestView::parse(web.top_bytes()).unwrap();
    assert_eq!(diff_ids(web, &m)[0], Digest::of(&gunzip(&base_layer().bytes)));
}

#[test]
fn layers_are_real_tars_with_fixed_metadata_and_fixed_gzip_headers() {
    for image in corpus() {
        for m in image_manifests(&image) {
            for layer in &m.layers {
                let blob = &image.blobs[&layer.digest];
                let tar = if layer.media_type.ends_with("gzip") {
                    // magic, deflate, no flags, mtime 0, OS 255 (unknown)
                    assert_eq!(&blob[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
                    assert_eq!(blob[9], 255);
                    gunzip(blob)
                } else {
                    blob.clone()
                };
                let mut archive = tar::Archive::new(&tar[..]);
                let mut files = 0;
                for entry in archive.entries().unwrap() {
                    let entry = entry.unwrap();
                    let h = entry.header();
                    assert_eq!(h.mtime().unwrap(), 1_700_000_000);
                    assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
                    if h.entry_type().is_file() {
                        files += 1;
                    }
                }
                assert!(files >= 1, "{}: layer {} has files", image.reference(), layer.digest);
            }
        }
    }
}

#[test]
fn platform_manifest_picks_children_and_matches_plain_images() {
    let images = corpus();
    let refs = by_ref(&images);
    let multi = refs["team/multi:1.0"];
    let idx = ManifestView::parse(multi.top_bytes()).unwrap();
    let (amd64, amd64_bytes) = multi.platform_manifest("linux/amd64").unwrap();
    assert_eq!(amd64, idx.manifests[0].digest);
    assert_eq!(Digest::of(&amd64_bytes), amd64);
    let (arm64, _) = multi.platform_manifest("linux/arm64").unwrap();
    assert_eq!(arm64, idx.manifests[1].digest);
    assert_eq!(multi.platform_manifest("linux/arm64/v8").unwrap().0, arm64);
    assert_eq!(multi.platform_manifest("linux/arm64/v7"), None);
    assert_eq!(multi.platform_manifest("linux/s390x"), None);

    let app = refs["team/app:1.0"];
    assert_eq!(app.platform_manifest("linux/amd64"), Some((app.digest.clone(), app.top_bytes().to_vec())));
    assert_eq!(app.platform_manifest("linux/arm64"), None);
}

#[test]
fn image_with_layer_is_sized_deterministic_and_seeded() {
    let a = image_with_layer("perf/big", "1", 3 * 1024 * 1024 + 17, 42);
    assert_eq!(a, image_with_layer("perf/big", "1", 3 * 1024 * 1024 + 17, 42));
    let b = image_with_layer("perf/big", "1", 3 * 1024 * 1024 + 17, 43);
    assert_ne!(a.digest, b.digest, "seed changes the layer");
    let m = ManifestView::parse(a.top_bytes()).unwrap();
    assert_eq!(m.layers.len(), 1);
    let layer = &m.layers[0];
    assert_eq!(layer.media_type, OCI_LAYER_GZIP);
    let size = layer.size as usize;
    assert!((3 * 1024 * 1024..3 * 1024 * 1024 + 4096).contains(&(size - 1024)), "layer ~requested size, got {size}");
    let tar = gunzip(&a.blobs[&layer.digest]);
    assert_eq!(diff_ids(&a, &m), vec![Digest::of(&tar)]);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("data/blob-42.bin"));
    let mut data = Vec::new();
    entry.read_to_end(&mut data).unwrap();
    assert_eq!(data.len(), 3 * 1024 * 1024 + 17);
    assert_eq!(data, edgeiso_testkit::images::noise(42, data.len()));
}

fn sha_of_file(path: &Path) -> Digest {
    Digest::of(&std::fs::read(path).unwrap())
}

#[test]
fn oci_layout_holds_everything_under_its_digest_and_names_images() {
    let dir = tempfile::tempdir().unwrap();
    let images = corpus();
    write_oci_layout(dir.path(), &images);
    assert_eq!(std::fs::read_to_string(dir.path().join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
    for entry in std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(sha_of_file(&path).hex(), name, "blob file named by its digest");
    }
    for image in &images {
        for d in image.blobs.keys().cloned().chain(image.manifests.iter().map(|(_, b)| Digest::of(b))) {
            assert!(dir.path().join(d.blob_path()).is_file(), "{}: {d} missing", image.reference());
        }
    }
    let index = ManifestView::parse(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let named: Vec<(String, Digest, String)> = index
        .manifests
        .iter()
        .map(|d| (d.annotations[ANNOTATION_REF_NAME].clone(), d.digest.clone(), d.media_type.clone()))
        .collect();
    let want: Vec<(String, Digest, String)> =
        images.iter().map(|i| (i.reference(), i.digest.clone(), i.media_type.clone())).collect();
    assert_eq!(named, want);

    // skopeo (an independent reader) resolves every OCI-typed name to the
    // exact top-level bytes. Finding: skopeo 1.9 (containers/image) skips
    // index.json entries whose mediaType is a Docker schema-2 manifest, so
    // `oci:DIR:team/web:2.1` fails with "no descriptor found" although the
    // layout is valid (containerd imports it: tests/containerd.rs). A newer
    // skopeo that reads it must still return the exact bytes.
    if tools_present("oci_layout (skopeo part)", &["skopeo"]) {
        for image in &images {
            let target = format!("oci:{}:{}", dir.path().display(), image.reference());
            let out = Command::new("skopeo").args(["inspect", "--raw", &target]).output().unwrap();
            if out.status.success() {
                assert_eq!(out.stdout, image.top_bytes(), "{target}");
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(image.media_type, DOCKER_MANIFEST, "skopeo failed on an OCI-typed image {target}: {err}");
                assert!(err.contains("no descriptor found"), "unexpected skopeo failure for {target}: {err}");
            }
        }
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Members of a tar: path -> (is symlink target, contents).
fn tar_members(path: &Path) -> BTreeMap<String, (Option<String>, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(file);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_str().unwrap().to_owned();
        let link = entry.link_name().unwrap().map(|l| l.to_str().unwrap().to_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.insert(name, (link, data));
    }
    out
}

#[test]
fn docker_save_archive_has_the_classic_layout_with_uncompressed_layers() {
    let images: Vec<TestImage> = corpus().into_iter().filter(|i| !i.is_index()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("save.tar");
    write_docker_save(&path, &images);
    let members = tar_members(&path);

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        repo_tags: Vec<String>,
        layers: Vec<String>,
    }
    let manifest: Vec<Entry> = serde_json::from_slice(&members["manifest.json"].1).unwrap();
    assert_eq!(manifest.len(), images.len());
    for (entry, image) in manifest.iter().zip(&images) {
        assert_eq!(entry.repo_tags, vec![image.reference()]);
        let m = ManifestView::parse(image.top_bytes()).unwrap();
        let config_digest = &m.config.as_ref().unwrap().digest;
        assert_eq!(entry.config, format!("{}.json", config_digest.hex()));
        assert_eq!(&members[&entry.config].1, &image.blobs[config_digest]);
        let want = diff_ids(image, &m);
        let got: Vec<Digest> = entry.layers.iter().map(|l| Digest::of(&resolve(&members, l))).collect();
        assert_eq!(got, want, "{}: layer.tar files are the uncompressed layers", image.reference());
        for l in &entry.layers {
            let id = l.strip_suffix("/layer.tar").expect("<id>/layer.tar");
            assert_eq!(members[&format!("{id}/VERSION")].1, b"1.0");
            assert!(members.contains_key(&format!("{id}/json")));
        }
    }
    // app and web share the base layer at the same position: one directory.
    assert_eq!(manifest[0].layers[0], manifest[1].layers[0]);
    let repositories: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_slice(&members["repositories"].1).unwrap();
    assert_eq!(repositories["team/web"]["2.1"], manifest[1].layers[1].strip_suffix("/layer.tar").unwrap());
}

/// A member's bytes, following a relative symlink (as docker wrote them).
fn resolve(members: &BTreeMap<String, (Option<String>, Vec<u8>)>, name: &str) -> Vec<u8> {
    match &members[name] {
        (None, data) => data.clone(),
        (Some(target), _) => {
            let dir = Path::new(name).parent().unwrap();
            let joined = dir.join(target);
            let mut parts: Vec<&str> = Vec::new();
            for c in joined.to_str().unwrap().split('/') {
                match c {
                    ".." => {
                        parts.pop();
                    }
                    "." | "" => {}
                    c => parts.push(c),
                }
            }
            resolve(members, &parts.join("/"))
        }
    }
}

#[test]
fn docker_save_writes_a_repeated_layer_once_and_symlinks_the_rest() {
    let shared = tar_layer(&[TarEntry::dir("etc/"), TarEntry::file("etc/marker", b"same bytes twice\n")]);
    let middle = tar_layer(&[TarEntry::file("middle", b"in between\n")]);
    let image = build_image(
        "team/dup",
        "1",
        Flavor::Docker,
        "linux/amd64",
        vec![Layer::gzip(&shared).as_docker(), Layer::gzip(&middle).as_docker(), Layer::gzip(&shared).as_docker()],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.tar");
    write_docker_save(&path, std::slice::from_ref(&image));
    let members = tar_members(&path);
    let layer_files: Vec<(&String, &Option<String>)> =
        members.iter().filter(|(n, _)| n.ends_with("/layer.tar")).map(|(n, (l, _))| (n, l)).collect();
    assert_eq!(layer_files.len(), 3);
    let links: Vec<&String> = layer_files.iter().filter_map(|(_, l)| l.as_ref()).collect();
    assert_eq!(links.len(), 1, "the repeated layer is a symlink");
    assert!(links[0].starts_with("../") && links[0].ends_with("/layer.tar"), "relative like docker's: {}", links[0]);

    if tools_present("docker_save symlink (skopeo part)", &["skopeo"]) {
        let cfg = skopeo(&["inspect", "--config", "--raw", &format!("docker-archive:{}:team/dup:1", path.display())]);
        let m = ManifestView::parse(image.top_bytes()).unwrap();
        assert_eq!(cfg, image.blobs[&m.config.as_ref().unwrap().digest], "skopeo reads the archive's config");
    }
}

#[test]
fn skopeo_reads_docker_save_archives() {
    if !tools_present("skopeo_reads_docker_save_archives", &["skopeo"]) {
        return;
    }
    let images: Vec<TestImage> = corpus().into_iter().filter(|i| !i.is_index()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("save.tar");
    write_docker_save(&path, &images);
    for image in &images {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            layers: Vec<edgeiso_bundle::manifest::Descriptor>,
        }
        let raw = skopeo(&["inspect", "--raw", &format!("docker-archive:{}:{}", path.display(), image.reference())]);
        let raw: Raw = serde_json::from_slice(&raw).unwrap();
        let m = ManifestView::parse(image.top_bytes()).unwrap();
        let got: Vec<Digest> = raw.layers.into_iter().map(|d| d.digest).collect();
        assert_eq!(got, diff_ids(image, &m), "{}: skopeo sees the uncompressed layers", image.reference());
    }
}

#[test]
#[should_panic(expected = "single-platform images only")]
fn docker_save_refuses_an_index() {
    let images = corpus();
    let multi = images.iter().find(|i| i.is_index()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_docker_save(&dir.path().join("x.tar"), std::slice::from_ref(multi));
}
