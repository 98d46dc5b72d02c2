//! `edgeiso bundle import`: OCI layouts, wrapped and compressed OCI archives,
//! `docker save` tarballs; and hostile archives refused without writing
//! anything outside the output folder.

mod common;

use std::io::Write;
use std::path::Path;

use common::{edgeiso, p, tree};
use edgeiso_bundle::manifest::{ManifestView, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use edgeiso_bundle::{Bundle, Digest};
use edgeiso_testkit::images::{self, Flavor, Layer, TarEntry, TestImage};

fn import(sources: &[&Path], out: &Path) -> common::Run {
    let mut args = vec!["bundle", "import", "--output", p(out), "--name", "imp"];
    args.extend(sources.iter().map(|s| p(s)));
    edgeiso(&args, &[])
}

/// Tar a folder, optionally under a prefix, into `dest` (gzip/zstd/plain).
fn tar_dir(src: &Path, prefix: &str, dest: &Path, compress: &str) {
    let f = std::fs::File::create(dest).unwrap();
    let w: Box<dyn Write> = match compress {
        "gz" => Box::new(flate2::write::GzEncoder::new(f, flate2::Compression::fast())),
        "zst" => Box::new(zstd::Encoder::new(f, 3).unwrap().auto_finish()),
        _ => Box::new(f),
    };
    let mut b = tar::Builder::new(w);
    b.append_dir_all(prefix, src).unwrap();
    b.into_inner().unwrap().flush().unwrap();
}

#[test]
fn imports_oci_layouts_wrapped_archives_and_docker_save() {
    let corpus = images::corpus();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    images::write_oci_layout(&layout, &corpus);

    // A layout folder, read in place.
    let out = dir.path().join("out-dir");
    import(&[&layout], &out).ok();
    let b = Bundle::open(&out.join("content-imp.tar")).unwrap();
    assert_eq!(b.meta.images.len(), corpus.len());
    assert!(b.meta.images.iter().any(|i| i.reference.as_str() == "docker.io/team/app:1.0"), "names are normalized");
    edgeiso(&["bundle", "verify", p(&out.join("content-imp.tar"))], &[]).ok();

    // A vendor-style .tar.gz wrapping the layout in a folder, and a Hauler-style .tar.zst.
    for (name, prefix, comp) in
        [("vendor.tar.gz", "content-abc", "gz"), ("haul.tar.zst", ".", "zst"), ("plain.tar", "x/y", "")]
    {
        let archive = dir.path().join(name);
        tar_dir(&layout, prefix, &archive, comp);
        let out = dir.path().join(format!("out-{name}"));
        import(&[&archive], &out).ok();
        let b = Bundle::open(&out.join("content-imp.tar")).unwrap();
        assert_eq!(b.meta.images.len(), corpus.len(), "{name}");
        edgeiso(&["bundle", "verify", p(&out.join("content-imp.tar"))], &[]).ok();
    }

    // `docker save` (k3s airgap image tarball): single-platform images only.
    let singles: Vec<_> = corpus.iter().filter(|i| !i.is_index()).cloned().collect();
    let saved = dir.path().join("k3s-airgap-images.tar");
    images::write_docker_save(&saved, &singles);
    let out = dir.path().join("out-docker");
    import(&[&saved], &out).ok();
    let path = out.join("content-imp.tar");
    let b = Bundle::open(&path).unwrap();
    assert_eq!(b.meta.images.len(), singles.len());
    edgeiso(&["bundle", "verify", p(&path)], &[]).ok();
    // Config and layer bytes are carried unchanged (a new OCI manifest names them).
    for img in &singles {
        let config = edgeiso_bundle::manifest::ManifestView::parse(img.top_bytes()).unwrap().config.unwrap();
        assert!(b.blob(&config.digest).is_some(), "{}: config {} missing", img.repository, config.digest);
    }
    // skopeo reads the converted images.
    let rec = &b.meta.images[0];
    let oci = dir.path().join("skopeo-out");
    let st = std::process::Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}:{}", path.display(), rec.reference))
        .arg(format!("oci:{}:x", oci.display()))
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
}

/// A tar with one hand-made member; names are written raw so `..` and
/// absolute paths get through (the tar crate itself refuses to write them).
fn hostile_tar(dest: &Path, name: &str, kind: tar::EntryType, link: Option<&str>) {
    let mut b = tar::Builder::new(std::fs::File::create(dest).unwrap());
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let body: &[u8] = if kind == tar::EntryType::Regular { b"pwned" } else { b"" };
    h.set_size(body.len() as u64);
    h.set_cksum();
    b.append(&h, body).unwrap();
    b.finish().unwrap();
}

#[test]
fn hostile_archives_are_refused_and_nothing_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, tar::EntryType, Option<&str>, &str)] = &[
        ("../evil", tar::EntryType::Regular, None, ".."),
        ("blobs/../../evil", tar::EntryType::Regular, None, ".."),
        ("/tmp/evil-abs", tar::EntryType::Regular, None, "absolute"),
        ("index.json", tar::EntryType::Symlink, Some("../../etc/passwd"), "outside"),
        ("index.json", tar::EntryType::Symlink, Some("../../../etc/passwd"), "outside"),
        // `..` is fine while it stays inside: two levels down, three up is out.
        ("blobs/sha256/x", tar::EntryType::Symlink, Some("../../../etc/passwd"), "outside"),
        ("blobs/sha256/x", tar::EntryType::Symlink, Some("../x/../../../../y"), "outside"),
        ("index.json", tar::EntryType::Symlink, Some("/etc/passwd"), "absolute"),
        ("index.json", tar::EntryType::Link, Some("../outside"), "outside"),
        ("blobs/sha256/x", tar::EntryType::Link, Some("blobs/../../outside"), "outside"),
        ("index.json", tar::EntryType::Link, Some("/etc/passwd"), "absolute"),
        ("dev", tar::EntryType::Char, None, "not allowed"),
        ("fifo", tar::EntryType::Fifo, None, "not allowed"),
    ];
    for (i, (name, kind, link, why)) in cases.iter().enumerate() {
        let case = dir.path().join(format!("case{i}"));
        std::fs::create_dir(&case).unwrap();
        let archive = case.join("evil.tar");
        hostile_tar(&archive, name, *kind, *link);
        let out = case.join("out");
        let r = import(&[&archive], &out);
        assert_eq!(r.code(), 3, "{name}: {}", r.stderr());
        assert!(r.stderr().contains(name) && r.stderr().contains(why), "{name}: {}", r.stderr());
        assert_eq!(tree(&case), vec!["evil.tar".to_string(), "out".to_string()], "{name}: something was written");
        assert!(!Path::new("/tmp/evil-abs").exists());
    }
    assert!(!dir.path().parent().unwrap().join("evil").exists());
}

#[test]
fn unnamed_images_and_non_layouts_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    images::write_oci_layout(&layout, &images::corpus());
    let index = layout.join("index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    v["manifests"][0]["annotations"] = serde_json::json!({});
    std::fs::write(&index, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = import(&[&layout], &dir.path().join("out"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(
        r.stderr().contains("entry 0") && r.stderr().contains("org.opencontainers.image.ref.name"),
        "{}",
        r.stderr()
    );

    let junk = dir.path().join("junk.tar");
    hostile_tar(&junk, "hello.txt", tar::EntryType::Regular, None);
    let r = import(&[&junk], &dir.path().join("out2"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("junk.tar") && r.stderr().contains("neither"), "{}", r.stderr());
}

/// Rewrite a layout's index.json.
fn edit_index(layout: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let index = layout.join("index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&index, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn remove_blob(layout: &Path, d: &Digest) {
    std::fs::remove_file(layout.join(d.blob_path())).unwrap();
}

/// (reference, digest, media type, source digest) of every image, sorted.
fn records(b: &Bundle) -> Vec<(String, Digest, String, Option<Digest>)> {
    let mut v: Vec<_> = b
        .meta
        .images
        .iter()
        .map(|i| (i.reference.to_string(), i.digest.clone(), i.media_type.clone(), i.source_digest.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn layouts_from_containerd_buildkit_and_docker25_are_named_by_the_containerd_annotation() {
    let corpus = images::corpus();
    let (app, multi) = (&corpus[0], &corpus[2]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    images::write_oci_layout(&layout, &[app.clone(), multi.clone()]);
    // `ctr export`, buildkit and Docker >= 25 put the tag alone in ref.name.
    edit_index(&layout, |v| {
        v["manifests"][0]["annotations"] = serde_json::json!({
            "io.containerd.image.name": "docker.io/library/nginx:1.25",
            "org.opencontainers.image.ref.name": "1.25",
        });
        v["manifests"][1]["annotations"] = serde_json::json!({
            "io.containerd.image.name": "registry.local:5000/team/multi:1.0",
            "org.opencontainers.image.ref.name": "1.0",
        });
    });
    // Docker >= 25 also writes a manifest.json over the same blobs; the OCI
    // layout is what is read (the source manifests' digests survive).
    let view = ManifestView::parse(app.top_bytes()).unwrap();
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let docker = serde_json::json!([{
        "Config": blob(&view.config.as_ref().unwrap().digest),
        "RepoTags": ["nginx:1.25"],
        "Layers": view.layers.iter().map(|l| blob(&l.digest)).collect::<Vec<_>>(),
    }]);
    std::fs::write(layout.join("manifest.json"), serde_json::to_vec(&docker).unwrap()).unwrap();
    let archive = dir.path().join("docker25.tar");
    tar_dir(&layout, ".", &archive, "");
    let out = dir.path().join("out");
    import(&[&archive], &out).ok();
    let path = out.join("content-imp.tar");
    let b = Bundle::open(&path).unwrap();
    assert_eq!(
        records(&b),
        vec![
            ("docker.io/library/nginx:1.25".to_string(), app.digest.clone(), OCI_MANIFEST.to_string(), None),
            ("registry.local:5000/team/multi:1.0".to_string(), multi.digest.clone(), OCI_INDEX.to_string(), None),
        ]
    );
    edgeiso(&["bundle", "verify", p(&path)], &[]).ok();

    // A full reference in ref.name alone is still enough (Hauler, skopeo).
    edit_index(&layout, |v| {
        v["manifests"][0]["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": "nginx:1.25" });
        v["manifests"][1]["annotations"] =
            serde_json::json!({ "org.opencontainers.image.ref.name": "registry.local:5000/team/multi:1.0" });
    });
    let out = dir.path().join("out-refname");
    import(&[&layout], &out).ok();
    let b = Bundle::open(&out.join("content-imp.tar")).unwrap();
    let names: Vec<_> = records(&b).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["docker.io/library/nginx:1.25", "registry.local:5000/team/multi:1.0"]);

    // A bare tag, without the containerd annotation, names no image: refused.
    for tag in ["1.0", "latest", "nginx"] {
        edit_index(&layout, |v| {
            v["manifests"][1]["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": tag });
        });
        let out = dir.path().join(format!("out-{tag}"));
        let r = import(&[&layout], &out);
        assert_eq!(r.code(), 3, "{tag}: {}", r.stderr());
        let err = r.stderr();
        for want in [p(&layout), "entry 1", &multi.digest.to_string(), &format!("{tag:?}"), "io.containerd.image.name"]
        {
            assert!(err.contains(want), "{tag}: no {want:?} in: {err}");
        }
        assert!(!out.join("content-imp.tar").exists());
    }
}

/// A single-platform image whose one layer is unique to `name` and `platform`.
fn platform_image(name: &str, platform: &str) -> TestImage {
    let text = format!("{name} on {platform}\n");
    let layer = Layer::gzip(&images::tar_layer(&[TarEntry::file("id.txt", text.as_bytes())]));
    images::build_image(name, "1.0", Flavor::Oci, platform, vec![layer])
}

/// Remove one platform's manifest and blobs, as `ctr export --platform` leaves them out.
fn remove_image(layout: &Path, img: &TestImage) {
    remove_blob(layout, &img.digest);
    for d in img.blobs.keys() {
        remove_blob(layout, d);
    }
}

#[test]
fn partial_indexes_keep_the_platforms_that_are_present() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let duo = ["linux/amd64", "linux/arm64/v8"].map(|pl| platform_image("team/duo", pl));
    let tri = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"].map(|pl| platform_image("team/tri", pl));
    let duo_index = images::build_index("team/duo", "1.0", duo.to_vec());
    let tri_index = images::build_index("team/tri", "1.0", tri.to_vec());
    images::write_oci_layout(&layout, &[duo_index.clone(), tri_index.clone()]);
    remove_image(&layout, &duo[1]);
    remove_image(&layout, &tri[1]);

    let out = dir.path().join("out");
    import(&[&layout], &out).ok();
    let path = out.join("content-imp.tar");
    let b = Bundle::open(&path).unwrap();
    let recs = records(&b);
    // One platform left: its manifest is the image, as `docker pull` stores it.
    assert_eq!(
        recs[0],
        ("docker.io/team/duo:1.0".into(), duo[0].digest.clone(), OCI_MANIFEST.into(), Some(duo_index.digest.clone()))
    );
    // Several left: a new index listing just those.
    let (name, digest, media_type, source) = &recs[1];
    assert_eq!((name.as_str(), media_type.as_str()), ("docker.io/team/tri:1.0", OCI_INDEX));
    assert_eq!(source.as_ref(), Some(&tri_index.digest));
    assert_ne!(digest, &tri_index.digest);
    let index = ManifestView::parse(&b.read_manifest(name, digest).unwrap()).unwrap();
    assert_eq!(index.media_type.as_deref(), Some(OCI_INDEX));
    let kept: Vec<_> = index.manifests.iter().map(|m| m.digest.clone()).collect();
    assert_eq!(kept, vec![tri[0].digest.clone(), tri[2].digest.clone()]);
    let platforms: Vec<_> = b.meta.images.iter().map(|i| i.platforms.clone()).collect();
    assert!(platforms.contains(&vec!["linux/amd64".to_string()]), "{platforms:?}");
    assert!(platforms.contains(&vec!["linux/amd64".to_string(), "linux/arm/v7".to_string()]), "{platforms:?}");
    assert!(b.blob(&tri[1].digest).is_none() && b.blob(&duo[1].digest).is_none());
    edgeiso(&["bundle", "verify", p(&path)], &[]).ok();

    // No platform present at all: an error naming the image and what is missing.
    let gone = ["linux/amd64", "linux/arm64/v8"].map(|pl| platform_image("team/gone", pl));
    let gone_index = images::build_index("team/gone", "1.0", gone.to_vec());
    let layout = dir.path().join("gone");
    images::write_oci_layout(&layout, std::slice::from_ref(&gone_index));
    remove_image(&layout, &gone[0]);
    remove_image(&layout, &gone[1]);
    let r = import(&[&layout], &dir.path().join("out-gone"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    for want in ["docker.io/team/gone:1.0", &gone[0].digest.to_string(), &gone[1].digest.to_string()] {
        assert!(r.stderr().contains(want), "no {want:?} in: {}", r.stderr());
    }

    // A platform that is present but incomplete is still an error, naming the blob.
    let layout = dir.path().join("broken");
    images::write_oci_layout(&layout, std::slice::from_ref(&duo_index));
    remove_image(&layout, &duo[1]);
    let layer = ManifestView::parse(duo[0].top_bytes()).unwrap().layers[0].digest.clone();
    remove_blob(&layout, &layer);
    let r = import(&[&layout], &dir.path().join("out-broken"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    for want in ["docker.io/team/duo:1.0", &layer.to_string(), "missing"] {
        assert!(r.stderr().contains(want), "no {want:?} in: {}", r.stderr());
    }
}

#[test]
fn legacy_docker_save_layer_symlinks_are_followed() {
    // The same layer at different positions: docker <= 24 wrote it once and
    // linked the other folder's layer.tar to it with `../<id>/layer.tar`.
    let shared = Layer::gzip(&images::tar_layer(&[TarEntry::file("shared.txt", b"shared\n")]));
    let a = images::build_image("team/a", "1", Flavor::Oci, "linux/amd64", vec![images::base_layer(), shared.clone()]);
    let twice =
        images::build_image("team/twice", "1", Flavor::Oci, "linux/amd64", vec![shared.clone(), shared.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("old-docker.tar");
    images::write_docker_save(&saved, &[a, twice]);
    let mut links = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&saved).unwrap()).entries().unwrap() {
        let e = e.unwrap();
        if e.header().entry_type() == tar::EntryType::Symlink {
            links.push(e.link_name().unwrap().unwrap().display().to_string());
        }
    }
    assert!(links.len() >= 2 && links.iter().all(|l| l.starts_with("../")), "{links:?}");

    let out = dir.path().join("out");
    import(&[&saved], &out).ok();
    let path = out.join("content-imp.tar");
    edgeiso(&["bundle", "verify", p(&path)], &[]).ok();
    let b = Bundle::open(&path).unwrap();
    let rec = b.meta.images.iter().find(|i| i.reference.as_str() == "docker.io/team/twice:1").unwrap();
    let layers: Vec<_> = ManifestView::parse(&b.read_manifest(rec.reference.as_str(), &rec.digest).unwrap())
        .unwrap()
        .layers
        .into_iter()
        .map(|l| l.digest)
        .collect();
    // docker save layers are uncompressed: their digest is the diff id.
    assert_eq!(layers, vec![shared.diff_id.clone(), shared.diff_id.clone()]);
}

#[test]
fn index_media_types_that_contradict_the_manifest_are_refused() {
    let corpus = images::corpus();
    let app = &corpus[0];
    let dir = tempfile::tempdir().unwrap();

    // index.json says Docker, the manifest says OCI.
    let layout = dir.path().join("top");
    images::write_oci_layout(&layout, std::slice::from_ref(app));
    edit_index(&layout, |v| v["manifests"][0]["mediaType"] = DOCKER_MANIFEST.into());
    let r = import(&[&layout], &dir.path().join("out-top"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    for want in [p(&layout), "docker.io/team/app:1.0", &app.digest.to_string(), DOCKER_MANIFEST, OCI_MANIFEST] {
        assert!(r.stderr().contains(want), "no {want:?} in: {}", r.stderr());
    }

    // index.json says index, the bytes are an image manifest.
    edit_index(&layout, |v| v["manifests"][0]["mediaType"] = OCI_INDEX.into());
    let r = import(&[&layout], &dir.path().join("out-top2"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains(OCI_INDEX) && r.stderr().contains(&app.digest.to_string()), "{}", r.stderr());

    // A child descriptor inside an index that lies about its manifest.
    let mut child = platform_image("team/mixed", "linux/amd64");
    child.media_type = DOCKER_MANIFEST.into();
    let mixed = images::build_index("team/mixed", "1.0", vec![child.clone()]);
    let layout = dir.path().join("child");
    images::write_oci_layout(&layout, &[mixed]);
    let r = import(&[&layout], &dir.path().join("out-child"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    for want in [p(&layout), "docker.io/team/mixed:1.0", &child.digest.to_string(), DOCKER_MANIFEST] {
        assert!(r.stderr().contains(want), "no {want:?} in: {}", r.stderr());
    }
}

/// Hostile input: an index that lists one child 200 times, on three index
/// levels over one manifest (200^3 paths, 4 unique manifests). Import walks
/// each manifest once, collapses the repeated platforms, and writes a bundle
/// its own verify accepts (before: import ran for hours, then wrote a
/// bundle.json of hundreds of MiB that verify refused).
#[test]
fn an_index_that_repeats_one_child_is_walked_once_per_unique_node() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let img = platform_image("team/fan", "linux/amd64");
    images::write_oci_layout(&layout, std::slice::from_ref(&img));
    let mut child = serde_json::json!({
        "mediaType": img.media_type, "digest": img.digest, "size": img.top_bytes().len(),
        "platform": { "os": "linux", "architecture": "amd64" },
    });
    for _ in 0..3 {
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": vec![child.clone(); 200],
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let d = Digest::of(&bytes);
        std::fs::write(layout.join(d.blob_path()), &bytes).unwrap();
        child = serde_json::json!({ "mediaType": OCI_INDEX, "digest": d, "size": bytes.len() });
    }
    edit_index(&layout, |v| {
        child["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": "docker.io/team/fan:1.0" });
        v["manifests"] = serde_json::json!([child]);
    });
    let out = dir.path().join("out");
    import(&[&layout], &out).ok();
    let path = out.join("content-imp.tar");
    let b = Bundle::open(&path).unwrap();
    assert_eq!(b.meta.images[0].platforms, vec!["linux/amd64".to_string()]);
    assert!(b.meta_bytes.len() < 64 * 1024, "bundle.json is {} bytes", b.meta_bytes.len());
    let g = b.image_graph(&b.meta.images[0]).unwrap();
    assert_eq!(g.manifests.len(), 4, "each manifest once");
    edgeiso(&["bundle", "verify", p(&path)], &[]).ok();
}

/// Split `file` into `<file>_partNN` pieces of `size` bytes, as CanvOS does.
fn split_parts(file: &Path, size: usize) -> Vec<std::path::PathBuf> {
    let bytes = std::fs::read(file).unwrap();
    std::fs::remove_file(file).unwrap();
    let mut out = Vec::new();
    for (n, chunk) in bytes.chunks(size).enumerate() {
        let part = file.with_file_name(format!("{}_part{n:02}", file.file_name().unwrap().to_string_lossy()));
        std::fs::write(&part, chunk).unwrap();
        out.push(part);
    }
    out
}

/// Palette content bundles: a zstd tar holding `bundle-pkg/` (an OCI
/// layout), bare or under a `content-<id>/` folder, whole or split into
/// `*.zst_partNN` parts (given as the first part, every part, or the unsplit
/// name); a missing part is named.
#[test]
fn palette_content_bundles_whole_and_split_into_parts() {
    let corpus = images::corpus();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    images::write_oci_layout(&layout, &corpus);
    for (case, prefix) in [("new", "bundle-pkg"), ("wrapped", "content-3f9a/bundle-pkg")] {
        let whole = dir.path().join(format!("{case}.zst"));
        tar_dir(&layout, prefix, &whole, "zst");
        let out = dir.path().join(format!("out-{case}"));
        import(&[&whole], &out).ok();
        assert_eq!(Bundle::open(&out.join("content-imp.tar")).unwrap().meta.images.len(), corpus.len(), "{case}");

        let len = std::fs::metadata(&whole).unwrap().len() as usize;
        let parts = split_parts(&whole, len / 3 + 1);
        assert_eq!(parts.len(), 3);
        let every: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
        for (how, sources) in [("first", vec![every[0]]), ("all", every.clone()), ("unsplit", vec![whole.as_path()])] {
            let out = dir.path().join(format!("out-{case}-{how}"));
            import(&sources, &out).ok();
            let path = out.join("content-imp.tar");
            assert_eq!(Bundle::open(&path).unwrap().meta.images.len(), corpus.len(), "{case} {how}");
            edgeiso(&["bundle", "verify", p(&path)], &[]).ok();
        }
        std::fs::remove_file(&parts[1]).unwrap();
        let r = import(&[&parts[0]], &dir.path().join(format!("out-{case}-gap")));
        assert_eq!(r.code(), 3, "{}", r.stderr());
        assert!(r.stderr().contains(&format!("{case}.zst_part01 is missing")), "{}", r.stderr());
    }
}

/// A killed import leaves its staging folder behind: the next run into the
/// same output folder sweeps it (nobody holds its lock any more).
#[test]
fn a_killed_imports_staging_folder_is_swept_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    images::write_oci_layout(&layout, &[platform_image("team/one", "linux/amd64")]);
    let out = dir.path().join("out");
    let left = out.join(".edgeiso-import-killed");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("member-1.tmp"), vec![0u8; 4096]).unwrap();
    std::fs::write(left.join(".lock"), b"").unwrap();
    import(&[&layout], &out).ok();
    assert!(!left.exists(), "{:?}", tree(&out));
    assert!(tree(&out).iter().all(|n| !n.contains(".edgeiso-import-")), "{:?}", tree(&out));
}

/// An import input that names an image with terminal escape sequences (an
/// `index.json` annotation, a `docker save` RepoTag) is refused, the entry
/// named and the name shown escaped; nothing is written.
#[test]
fn names_with_escape_sequences_are_refused_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = images::corpus();
    let layout = dir.path().join("layout");
    images::write_oci_layout(&layout, &corpus);
    edit_index(&layout, |v| {
        v["manifests"][0]["annotations"] =
            serde_json::json!({ "io.containerd.image.name": "docker.io/team/app:1.0\u{1b}[31m" });
    });
    let saved = dir.path().join("saved.tar");
    let mut hostile = corpus.iter().find(|i| !i.is_index()).unwrap().clone();
    hostile.repository = "team/app\u{1b}]0;pwned\u{7}".into();
    images::write_docker_save(&saved, std::slice::from_ref(&hostile));
    for (src, entry) in [(&layout, "entry 0"), (&saved, "manifest.json entry 0")] {
        let out = dir.path().join("out");
        let r = import(&[src], &out);
        assert_eq!(r.code(), 3, "{}", r.stderr());
        let err = r.stderr();
        assert!(!err.contains(['\u{1b}', '\u{7}']), "a control character got through: {err:?}");
        assert!(err.contains(entry) && err.contains("control character \\u{1b}"), "{err}");
        assert!(!tree(&out).iter().any(|f| f.ends_with(".tar")), "{:?}", tree(&out));
    }
}
