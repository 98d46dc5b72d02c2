//! `edgeiso bundle import`: OCI layouts, wrapped and compressed OCI archives,
//! `docker save` tarballs; and hostile archives refused without writing
//! anything outside the output folder.

mod common;

use std::io::Write;
use std::path::Path;

use common::{edgeiso, p, tree};
use edgeiso_bundle::Bundle;
use edgeiso_testkit::images;

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
        ("index.json", tar::EntryType::Symlink, Some("../../../etc/passwd"), "outside"),
        ("index.json", tar::EntryType::Symlink, Some("/etc/passwd"), "absolute"),
        ("index.json", tar::EntryType::Link, Some("../outside"), "outside"),
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
