//! The private containerd: `ctr images import` of what the harness writes,
//! with real unpacking (which checks every layer against its diff id).

use std::path::Path;

use edgeiso_testkit::containerd::SNAPSHOTTER;
use edgeiso_testkit::{corpus, tools_present, write_docker_save, write_oci_layout, Containerd, TestImage};

/// Tar an OCI layout directory with member names relative to it
/// ("oci-layout", "index.json", "blobs/sha256/..."), as `ctr import` expects.
fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let name = path.strip_prefix(dir).unwrap();
            if path.is_dir() {
                b.append_dir(name, &path).unwrap();
                stack.push(path);
            } else {
                b.append_path_with_name(&path, name).unwrap();
            }
        }
    }
    b.finish().unwrap();
}

/// `ctr images check` lines for these refs all say complete and unpacked.
fn assert_complete_and_unpacked(ctrd: &Containerd, ns: &str, refs: &[String]) {
    let check = ctrd.ctr_ok(&["-n", ns, "images", "check"]);
    for r in refs {
        let line = check.lines().find(|l| l.split_whitespace().next() == Some(r.as_str()));
        let line = line.unwrap_or_else(|| panic!("{r} not in `ctr images check`:\n{check}"));
        assert!(line.contains("complete"), "{r} incomplete: {line}");
        assert!(line.split_whitespace().last() == Some("true"), "{r} not unpacked: {line}");
    }
}

/// The unpacked base layer's files exist in the native snapshotter's dirs.
fn assert_native_snapshots_hold_base_files(ctrd: &Containerd) {
    let snapshots = ctrd.root().join("io.containerd.snapshotter.v1.native/snapshots");
    let found = std::fs::read_dir(&snapshots)
        .unwrap_or_else(|e| panic!("{}: {e}", snapshots.display()))
        .map(|e| e.unwrap().path().join("bin/hello"))
        .find(|p| p.is_file())
        .expect("some native snapshot contains bin/hello from the base layer");
    let script = std::fs::read_to_string(&found).unwrap();
    assert!(script.starts_with("#!/bin/sh"), "{}", found.display());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&found).unwrap().permissions().mode() & 0o777, 0o755);
}

#[test]
fn ctr_imports_and_unpacks_the_corpus_from_an_oci_layout_tar() {
    if !tools_present("ctr_imports_and_unpacks_the_corpus_from_an_oci_layout_tar", &["containerd", "ctr"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let images = corpus();
    write_oci_layout(&layout, &images);
    let archive = work.path().join("corpus-oci.tar");
    tar_dir(&layout, &archive);

    let ctrd = Containerd::start();
    let out = ctrd.ctr_ok(&["-n", "test", "images", "import", archive.to_str().unwrap()]);
    assert!(out.contains("unpacking"), "import unpacks by default: {out}");

    // containerd names images from org.opencontainers.image.ref.name verbatim
    // (no docker.io/ normalisation for OCI layouts).
    let listed = ctrd.ctr_ok(&["-n", "test", "images", "ls", "-q"]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    let mut want: Vec<String> = images.iter().map(TestImage::reference).collect();
    want.sort();
    assert_eq!(listed, want);

    // Digests are the ones we wrote: ctr did not rewrite anything.
    let ls = ctrd.ctr_ok(&["-n", "test", "images", "ls"]);
    for image in &images {
        let line = ls.lines().find(|l| l.starts_with(&format!("{} ", image.reference()))).unwrap();
        assert!(line.contains(image.digest.as_str()), "{line}");
        assert!(line.contains(&image.media_type), "{line}");
    }
    assert!(ls.contains("linux/amd64,linux/arm64/v8"), "the index lists both platforms:\n{ls}");

    assert_complete_and_unpacked(&ctrd, "test", &want);
    // Unpacked through the snapshotter the harness selects, not overlayfs.
    let native = ctrd.ctr_ok(&["-n", "test", "snapshots", "--snapshotter", SNAPSHOTTER, "ls"]);
    assert!(native.lines().count() > 1, "native snapshots exist:\n{native}");
    assert_native_snapshots_hold_base_files(&ctrd);
}

#[test]
fn ctr_imports_a_docker_save_archive() {
    if !tools_present("ctr_imports_a_docker_save_archive", &["containerd", "ctr"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let images: Vec<TestImage> = corpus().into_iter().filter(|i| !i.is_index()).collect();
    let archive = work.path().join("save.tar");
    write_docker_save(&archive, &images);

    let ctrd = Containerd::start();
    ctrd.ctr_ok(&["-n", "test", "images", "import", archive.to_str().unwrap()]);
    // Docker archives carry familiar names; containerd normalises them.
    let listed = ctrd.ctr_ok(&["-n", "test", "images", "ls", "-q"]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    assert_eq!(listed, ["docker.io/team/app:1.0", "docker.io/team/raw:1.0", "docker.io/team/web:2.1"]);
    let refs: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    assert_complete_and_unpacked(&ctrd, "test", &refs);
    assert_native_snapshots_hold_base_files(&ctrd);
}

#[test]
fn containerd_stops_on_drop_and_cleans_up() {
    if !tools_present("containerd_stops_on_drop_and_cleans_up", &["containerd", "ctr"]) {
        return;
    }
    let ctrd = Containerd::start();
    assert!(String::from_utf8_lossy(&ctrd.ctr(&["version"]).stdout).contains("Server:"));
    let socket = ctrd.socket().to_owned();
    let root = ctrd.root();
    assert!(root.is_dir());
    drop(ctrd);
    assert!(!socket.exists() && !root.exists(), "temp dir removed");
}
