//! Writes the seed corpora of the fuzz targets that read bundles, image
//! archives, manifests and references (fuzz/corpus/<target>/), from the same
//! synthesized images the tests use. scripts/fuzz.sh runs it when a corpus
//! is missing; the seeds are committed.
//!
//!   fuzz-seeds CORPUS_DIR

use std::path::Path;

use edgeiso_testkit::bundles::{write_bundle, Entry};
use edgeiso_testkit::images::{self, TestImage};

fn tar_folder(src: &Path, dest: &Path) {
    let mut out = tar::Builder::new(std::fs::File::create(dest).unwrap());
    out.mode(tar::HeaderMode::Deterministic);
    out.append_dir_all(".", src).unwrap();
    out.finish().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [corpus] = args.as_slice() else {
        eprintln!("usage: fuzz-seeds CORPUS_DIR");
        std::process::exit(2);
    };
    let corpus = Path::new(corpus);
    let dir = |t: &str| {
        let d = corpus.join(t);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let work = tempfile::tempdir().unwrap();
    let all = images::corpus();
    // Small seeds: the fuzzer mutates bytes, and a seed of megabytes makes
    // each run slow; the two smallest images and the first index.
    let mut small: Vec<&TestImage> = all.iter().filter(|i| !i.is_index()).collect();
    small.sort_by_key(|i| i.total_bytes());
    small.truncate(2);
    if let Some(index) = all.iter().filter(|i| i.is_index()).min_by_key(|i| i.total_bytes()) {
        small.push(index);
    }
    let entries: Vec<Entry<'_>> =
        small.iter().map(|i| Entry::workload(i, &format!("docker.io/{}:{}", i.repository, i.tag))).collect();

    // bundle_open: one whole bundle; bundle_parts: the first byte is the
    // number of parts.
    let whole = write_bundle(work.path(), "seed", &entries, None).remove(0);
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(dir("bundle_open").join("small-bundle"), &bytes).unwrap();
    let mut parts = vec![2u8];
    parts.extend_from_slice(&bytes);
    std::fs::write(dir("bundle_parts").join("small-bundle-2-parts"), &parts).unwrap();

    // import_archive: an OCI layout as a tar, and a `docker save` tarball.
    let layout = work.path().join("layout");
    let owned: Vec<TestImage> = small.iter().map(|i| (*i).clone()).collect();
    images::write_oci_layout(&layout, &owned);
    tar_folder(&layout, &dir("import_archive").join("oci-layout.tar"));
    let singles: Vec<TestImage> = owned.iter().filter(|i| !i.is_index()).cloned().collect();
    images::write_docker_save(&dir("import_archive").join("docker-save.tar"), &singles);

    // manifest: every manifest and index of the corpus; image_reference:
    // the references the tests use and the forms the grammar knows.
    for image in &all {
        for (_, bytes) in &image.manifests {
            let name = edgeiso_bundle::Digest::of(bytes).hex()[..16].to_owned();
            std::fs::write(dir("manifest").join(name), bytes).unwrap();
        }
    }
    let references = [
        "nginx",
        "nginx:1.25",
        "docker.io/library/nginx:1.25",
        "registry.example.com:5000/team/app:1.0",
        "[fd00::1]:5000/team/app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "quay.io/team/app:1.0@sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "localhost/a/b/c/d:latest",
    ];
    for (i, r) in references.iter().enumerate() {
        std::fs::write(dir("image_reference").join(format!("ref-{i}")), r).unwrap();
    }
}
