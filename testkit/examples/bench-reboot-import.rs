//! What a reboot costs a node for the bootstrap archive (issue 12; run by
//! scripts/bench-reboot-import.sh):
//!
//!   bench-reboot-import IMAGES MIB_PER_IMAGE RUNS
//!
//! Writes a bootstrap archive the way the overlay does (a bundle of images
//! with role bootstrap: an OCI layout tar named for containerd), starts a
//! private containerd (Debian's) and times `ctr -n k8s.io images import` of
//! it: once into an empty store (the first boot), then RUNS times again with
//! everything already there (each reboot of a k3s/RKE2 that imports every
//! archive at start). The third case, a k3s that skips an unchanged archive
//! (`agent/images/.cache.json`), costs one stat of the file: printed as the
//! time of that stat.

use std::time::Instant;

use edgeiso_bundle::Role;
use edgeiso_testkit::bundles::{write_bundle, Entry};
use edgeiso_testkit::images::image_with_layer;
use edgeiso_testkit::Containerd;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [images, mib, runs] = args.as_slice() else {
        eprintln!("usage: bench-reboot-import IMAGES MIB_PER_IMAGE RUNS");
        std::process::exit(2);
    };
    let (images, mib, runs): (usize, usize, usize) =
        (images.parse().unwrap(), mib.parse().unwrap(), runs.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let built: Vec<_> = (0..images)
        .map(|i| image_with_layer(&format!("bootstrap/img{i}"), "1.0", mib << 20, 1000 + i as u64))
        .collect();
    let entries: Vec<Entry<'_>> = built
        .iter()
        .enumerate()
        .map(|(i, img)| Entry { image: img, source: format!("docker.io/bootstrap/img{i}:1.0"), role: Role::Bootstrap })
        .collect();
    let archive = write_bundle(dir.path(), "site-bootstrap", &entries, None).remove(0);
    drop(built);
    let bytes = std::fs::metadata(&archive).unwrap().len();
    let ctrd = Containerd::start();
    let import = || {
        let t = Instant::now();
        ctrd.ctr_ok(&["-n", "k8s.io", "images", "import", archive.to_str().unwrap()]);
        t.elapsed().as_secs_f64()
    };
    let first = import();
    let again: Vec<f64> = (0..runs).map(|_| import()).collect();
    let t = Instant::now();
    let _ = std::fs::metadata(&archive).unwrap().modified().unwrap();
    let skip = t.elapsed().as_secs_f64();
    let median = {
        let mut v = again.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let mib_total = bytes as f64 / (1 << 20) as f64;
    println!(
        "archive {images} images, {mib_total:.0} MiB | first boot import {first:.2} s ({:.0} MiB/s) | reboot re-import median {median:.2} s ({:.0} MiB/s; runs {}) | reboot with the cache: {:.6} s",
        mib_total / first,
        mib_total / median,
        again.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", "),
        skip
    );
}
