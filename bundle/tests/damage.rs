//! Damaged bundles: every reader names the part or member at fault.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use edgeiso_bundle::manifest::OCI_MANIFEST;
use edgeiso_bundle::writer::{BlobSource, BundlePlan, WriteOptions};
use edgeiso_bundle::{Bundle, BundleError, Digest, ImageRecord};

/// A one-image bundle of about 40 KB, split into 4 KB parts.
fn split_bundle(dir: &Path) -> Vec<PathBuf> {
    let paths = bundle_claiming(dir, OCI_MANIFEST);
    assert!(paths.len() > 5, "{paths:?}");
    Bundle::open(&paths[0]).expect("intact bundle opens");
    paths
}

/// The same, its image recorded in bundle.json with `media_type`.
fn bundle_claiming(dir: &Path, media_type: &str) -> Vec<PathBuf> {
    bundle_recording(dir, |r| r.media_type = media_type.into())
}

/// The same, its image recorded in bundle.json as it is, then changed by
/// `claim` (a hand-edited bundle.json: the members' hashes still agree).
fn bundle_recording(dir: &Path, claim: impl FnOnce(&mut ImageRecord)) -> Vec<PathBuf> {
    write_split(&plan_recording(claim), dir).unwrap().paths
}

fn write_split(plan: &BundlePlan, dir: &Path) -> Result<edgeiso_bundle::writer::Written, BundleError> {
    plan.write(dir, &WriteOptions { part_size: Some(4096), ..Default::default() })
}

/// The plan of that bundle.
fn plan_recording(claim: impl FnOnce(&mut ImageRecord)) -> BundlePlan {
    let layer: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let (mut plan, ..) = common::one_image_plan("d", layer);
    plan.created = UNIX_EPOCH + Duration::from_secs(1);
    claim(&mut plan.images[0]);
    plan
}

/// bundle.json claims an index where an image manifest is stored: verify
/// says so (before, it passed and the agent failed on the node).
#[test]
fn verify_checks_the_media_type_bundle_json_claims() {
    let dir = tempfile::tempdir().unwrap();
    let paths = bundle_claiming(dir.path(), edgeiso_bundle::manifest::OCI_INDEX);
    let b = Bundle::open(&paths[0]).unwrap();
    let report = edgeiso_bundle::verify::verify(&b, &|_| {}).unwrap();
    let all: Vec<String> = report.problems.iter().map(|p| format!("{}: {}", p.member, p.message)).collect();
    assert!(all.iter().any(|m| m.contains("media type") && m.contains(edgeiso_bundle::manifest::OCI_INDEX)), "{all:?}");
    let dir = tempfile::tempdir().unwrap();
    let paths = bundle_claiming(dir.path(), OCI_MANIFEST);
    let b = Bundle::open(&paths[0]).unwrap();
    let report = edgeiso_bundle::verify::verify(&b, &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// The problems verify finds, as "member: message (image ...)".
fn problems(paths: &[PathBuf]) -> Vec<String> {
    let b = Bundle::open(&paths[0]).unwrap();
    edgeiso_bundle::verify::verify(&b, &|_| {}).unwrap().problems.iter().map(ToString::to_string).collect()
}

/// A change to a true record of bundle.json.
type Lie = dyn Fn(&mut ImageRecord);

/// bundle.json claims a platform the stored manifest's config does not
/// declare, or a size the stored bytes are not: verify names the image and
/// the claim.
#[test]
fn verify_checks_the_platforms_and_size_bundle_json_claims() {
    let lies: [(&Lie, &[&str]); 3] = [
        (&|r| r.platforms.push("linux/arm64".into()), &["claims platform linux/arm64", "it has linux/amd64"]),
        (&|r| r.size += 1, &["claims a size of 40440 bytes", "are 40439 bytes"]),
        (&|r| r.size = 1 << 40, &["claims a size of 1099511627776 bytes"]),
    ];
    for (lie, says) in lies {
        let dir = tempfile::tempdir().unwrap();
        let all = problems(&bundle_recording(dir.path(), lie));
        assert_eq!(all.len(), 1, "{all:?}");
        for s in says.iter().chain(&["image example.com/team/app:1"]) {
            assert!(all[0].contains(s), "{s}: {all:?}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(problems(&bundle_recording(dir.path(), |_| {})), Vec::<String>::new(), "the truth passes");
}

/// A platform (or media type, or name) with a control character, as a
/// hostile source registry's index could give create, is never written.
#[test]
fn a_bundle_json_string_with_a_control_character_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_recording(|r| r.platforms = vec!["linux/amd64\u{1b}[31m".into()]);
    let message = write_split(&plan, dir.path()).expect_err("written").to_string();
    assert!(message.contains("platform linux/amd64\\u{1b}[31m contains the control character"), "{message}");
    assert!(!message.contains('\u{1b}'), "{message:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

fn err(path: &Path) -> String {
    match Bundle::open(path) {
        Ok(_) => panic!("damaged bundle opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_first_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let parts = split_bundle(dir.path());
    std::fs::remove_file(&parts[0]).unwrap();
    let base = dir.path().join("content-d.tar");
    let e = err(&base);
    assert!(e.contains("content-d.tar.part000") && e.contains("missing"), "{e}");
}

#[test]
fn missing_middle_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let parts = split_bundle(dir.path());
    std::fs::remove_file(&parts[2]).unwrap();
    let e = err(&parts[0]);
    assert!(e.contains("content-d.tar.part002"), "{e}");
}

#[test]
fn missing_last_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let parts = split_bundle(dir.path());
    let last = parts.last().unwrap();
    std::fs::remove_file(last).unwrap();
    let e = err(&parts[0]);
    assert!(e.contains(&last.file_name().unwrap().to_string_lossy().into_owned()), "{e}");
    assert!(matches!(Bundle::open(&parts[0]), Err(BundleError::NextPartMissing(_))));
}

#[test]
fn a_middle_part_cut_short_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let parts = split_bundle(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&parts[1]).unwrap();
    f.set_len(1000).unwrap();
    let e = err(&parts[0]);
    assert!(e.contains("content-d.tar.part001") && e.contains("cut short"), "{e}");
}

#[test]
fn a_last_part_cut_short_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let parts = split_bundle(dir.path());
    let last = parts.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len / 2).unwrap();
    let e = err(&parts[0]);
    assert!(e.contains(&last.file_name().unwrap().to_string_lossy().into_owned()), "{e}");
}

#[test]
fn a_verified_file_of_the_wrong_size_is_refused_not_padded() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"short").unwrap();
    let d = Digest::of(b"the real bytes");
    let mut blobs = BTreeMap::new();
    blobs.insert(d.clone(), (14, BlobSource::VerifiedFile(blob.clone())));
    let plan =
        BundlePlan { name: "v".into(), created: UNIX_EPOCH, tool: "test".into(), images: vec![], blobs, partial: None };
    let e = plan.write(dir.path(), &WriteOptions::default()).unwrap_err().to_string();
    assert!(e.contains(&blob.display().to_string()) && e.contains(d.as_str()), "{e}");
    assert!(!dir.path().join("content-v.tar").exists(), "nothing half-written");
}
