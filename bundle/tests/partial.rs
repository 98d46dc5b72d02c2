//! Partial bundles (decision 0016): the reader walks past the blobs a thin
//! or delta bundle leaves out and still fails on those a whole bundle lacks;
//! verify accounts for every left-out blob; the format version tells a
//! partial bundle from a whole one.

mod common;

use std::path::{Path, PathBuf};

use edgeiso_bundle::verify::{verify, verify_with_base};
use edgeiso_bundle::writer::{BundlePlan, WriteOptions};
use edgeiso_bundle::{BaseBundle, Bundle, BundleError, Digest, Partial};

/// The one-image plan (manifest, config, layer) and those three digests.
fn plan(name: &str) -> (BundlePlan, Digest, Digest, Digest) {
    common::one_image_plan(name, vec![7u8; 5000])
}

fn write(plan: &BundlePlan, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    plan.write(dir, &WriteOptions::default()).unwrap().paths.remove(0)
}

#[test]
fn a_thin_bundle_walks_and_verifies_a_whole_one_lacking_a_blob_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (mut whole, md, cd, ld) = plan("w");
    whole.blobs.remove(&ld);
    let tar = write(&whole, &dir.path().join("whole"));
    let b = Bundle::open(&tar).unwrap();
    assert!(b.image_graph(&b.meta.images[0]).is_err(), "a whole bundle's missing blob fails the walk");
    let report = verify(&b, &|_| {}).unwrap();
    assert!(
        report.problems.iter().any(|p| p.message.contains("missing blob") && p.message.contains(ld.as_str())),
        "{report:?}"
    );
    assert!(report.expected.is_empty());

    let (mut thin, _, _, _) = plan("t");
    thin.leave_out(Partial::Thin, |d, _| *d == cd || *d == ld);
    let tar = write(&thin, &dir.path().join("thin"));
    let b = Bundle::open(&tar).unwrap();
    assert_eq!(b.meta.format_version, 2);
    let g = b.image_graph(&b.meta.images[0]).unwrap();
    assert!(g.blobs.is_empty());
    let absent: Vec<&Digest> = g.absent.iter().map(|d| &d.digest).collect();
    assert_eq!(absent, [&cd, &ld]);
    assert_eq!(g.total_size(), b.meta.images[0].size, "sizes count left-out blobs");
    let left_out = b.left_out().unwrap();
    assert_eq!(left_out.keys().collect::<Vec<_>>(), [&cd, &ld]);
    assert_eq!(left_out[&ld], 5000);
    let report = verify(&b, &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.expected.len(), 2);
    assert!(b.require_whole().unwrap_err().to_string().contains("partial bundle, thin"));

    // A manifest is never left out: a thin bundle without one fails.
    let (mut bad, _, _, _) = plan("b");
    bad.leave_out(Partial::Thin, |d, _| *d == md || *d == cd || *d == ld);
    let tar = write(&bad, &dir.path().join("bad"));
    let report = verify(&Bundle::open(&tar).unwrap(), &|_| {}).unwrap();
    assert!(report.problems.iter().any(|p| p.message.contains("missing manifest")), "{report:?}");
}

#[test]
fn a_delta_is_checked_against_its_base_sum_and_what_the_base_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (base_plan, _, cd, ld) = plan("base");
    let base_tar = write(&base_plan, &dir.path().join("base"));
    let base = Bundle::open(&base_tar).unwrap();
    let delta_of = |base: &Bundle, sub: &str| {
        let (mut p, _, _, _) = plan("new");
        let rec = BaseBundle { name: base.meta.name.clone(), bundle_json_sha256: base.bundle_json_sha256() };
        p.leave_out(Partial::Delta { base: rec }, |d, _| *d == cd || *d == ld);
        Bundle::open(&write(&p, &dir.path().join(sub))).unwrap()
    };
    let delta = delta_of(&base, "delta");
    let report = verify_with_base(&delta, Some(&base), &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.expected.iter().all(|e| e.checked) && report.expected.len() == 2);

    // Another base: refused, naming both sums.
    let (mut other_plan, _, _, _) = plan("base");
    other_plan.tool = "other".into();
    let other = Bundle::open(&write(&other_plan, &dir.path().join("other"))).unwrap();
    let e = verify_with_base(&delta, Some(&other), &|_| {}).unwrap_err();
    assert!(matches!(e, BundleError::BaseMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(base.bundle_json_sha256().as_str()) && msg.contains(other.bundle_json_sha256().as_str()),
        "{msg}"
    );

    // The recorded base, but it does not hold a left-out blob.
    let (mut holey_plan, _, _, _) = plan("holey");
    holey_plan.blobs.remove(&ld);
    let holey = Bundle::open(&write(&holey_plan, &dir.path().join("holey"))).unwrap();
    let delta = delta_of(&holey, "delta2");
    let report = verify_with_base(&delta, Some(&holey), &|_| {}).unwrap();
    assert!(
        report.problems.iter().any(|p| p.member == ld.blob_path() && p.message.contains("does not hold it")),
        "{:?}",
        report.problems
    );
}

/// `bundle.json` (with no images or members) as the only content of a tar.
fn tar_with_bundle_json(dir: &Path, json: &str) -> PathBuf {
    let path = dir.join("content-x.tar");
    let mut t = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(json.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "bundle.json", json.as_bytes()).unwrap();
    t.finish().unwrap();
    path
}

#[test]
fn the_format_version_and_the_partial_description_go_together() {
    let dir = tempfile::tempdir().unwrap();
    let json = |v: u32, partial: &str| {
        format!(
            r#"{{"formatVersion":{v},"name":"x","created":"1970-01-01T00:00:00Z","tool":"t","images":[],"members":{{}}{partial}}}"#
        )
    };
    let thin = r#","partial":{"kind":"thin"}"#;
    assert!(Bundle::open(&tar_with_bundle_json(dir.path(), &json(1, ""))).is_ok());
    assert!(Bundle::open(&tar_with_bundle_json(dir.path(), &json(2, thin))).is_ok());
    for (v, p, says) in
        [(1, thin, "with a `partial` description"), (2, "", "without a `partial`"), (3, "", "format version 3")]
    {
        let e = Bundle::open(&tar_with_bundle_json(dir.path(), &json(v, p))).unwrap_err().to_string();
        assert!(e.contains("not an edgeiso bundle") && e.contains(says), "{v} {p}: {e}");
    }
    // An unknown kind is not guessed at.
    let e = Bundle::open(&tar_with_bundle_json(dir.path(), &json(2, r#","partial":{"kind":"sparse"}"#)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sparse"), "{e}");
}
