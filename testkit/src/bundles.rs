//! Content bundles written straight from synthesized images (no registry,
//! no `edgeiso bundle create`): the fixtures of the agent's and the overlay's
//! tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use edgeiso_bundle::writer::{BlobSource, BundlePlan, WriteOptions};
use edgeiso_bundle::{Digest, ImageRecord, ImageRef, Role};

use crate::TestImage;

/// One image to put in a bundle, under the source reference it had.
pub struct Entry<'a> {
    pub image: &'a TestImage,
    pub source: String,
    pub role: Role,
}

impl<'a> Entry<'a> {
    pub fn workload(image: &'a TestImage, source: &str) -> Entry<'a> {
        Entry { image, source: source.to_owned(), role: Role::Workload }
    }
}

/// Write `content-NAME.tar` (or parts) into `dir`.
pub fn write_bundle(dir: &Path, name: &str, entries: &[Entry<'_>], part_size: Option<u64>) -> Vec<PathBuf> {
    let plan = plan(name, entries);
    plan.write(dir, &WriteOptions { part_size, ..Default::default() }).expect("write bundle").paths
}

/// Write a thin `content-NAME.tar` into `dir`: every manifest, no config or
/// layer blob (`bundle create --thin`'s shape).
pub fn write_thin_bundle(dir: &Path, name: &str, entries: &[Entry<'_>]) -> PathBuf {
    let mut plan = plan(name, entries);
    let left: Vec<Digest> = entries.iter().flat_map(|e| e.image.blobs.keys().cloned()).collect();
    plan.leave_out(edgeiso_bundle::Partial::Thin, |d, _| left.contains(d));
    plan.write(dir, &WriteOptions::default()).expect("write bundle").paths.remove(0)
}

/// Write a delta `content-NAME.tar` into `dir` on the bundle at `base`:
/// every manifest, and the config and layer blobs the base does not hold
/// (`bundle create --base`'s shape).
pub fn write_delta_bundle(dir: &Path, name: &str, entries: &[Entry<'_>], base: &Path) -> PathBuf {
    let base = edgeiso_bundle::Bundle::open(base).expect("open the base bundle");
    let mut plan = plan(name, entries);
    let left: Vec<Digest> =
        entries.iter().flat_map(|e| e.image.blobs.keys().cloned()).filter(|d| base.blob(d).is_some()).collect();
    let partial = edgeiso_bundle::Partial::Delta {
        base: edgeiso_bundle::BaseBundle {
            name: base.meta.name.clone(),
            bundle_json_sha256: base.bundle_json_sha256(),
        },
    };
    plan.leave_out(partial, |d, _| left.contains(d));
    plan.write(dir, &WriteOptions::default()).expect("write bundle").paths.remove(0)
}

fn plan(name: &str, entries: &[Entry<'_>]) -> BundlePlan {
    let mut blobs: BTreeMap<Digest, (u64, BlobSource)> = BTreeMap::new();
    let mut images = Vec::new();
    for e in entries {
        for (_, bytes) in &e.image.manifests {
            blobs.insert(Digest::of(bytes), (bytes.len() as u64, BlobSource::Bytes(bytes.clone())));
        }
        for (d, bytes) in &e.image.blobs {
            blobs.insert(d.clone(), (bytes.len() as u64, BlobSource::Bytes(bytes.clone())));
        }
        images.push(ImageRecord {
            reference: ImageRef::parse(&e.source).unwrap(),
            digest: e.image.digest.clone(),
            media_type: e.image.media_type.clone(),
            platforms: vec!["linux/amd64".into()],
            role: e.role,
            size: e.image.total_bytes(),
            source_digest: None,
            index_digest: None,
        });
    }
    BundlePlan {
        name: name.to_owned(),
        created: SystemTime::UNIX_EPOCH,
        tool: "edgeiso tests".into(),
        images,
        blobs,
        partial: None,
    }
}

/// What the bundle of [`write_bundle_with_hostile_name`] calls itself.
pub const HOSTILE_BUNDLE_NAME: &str = "site\u{1b}[31m\u{1b}]0;pwned\u{7}";

/// A one-image bundle, `content-hostile.tar` in `dir`, whose `bundle.json`
/// name carries terminal escape sequences (a colour, a window title): the
/// file name is plain, so only what is read from inside the bundle is
/// hostile. The writer refuses such a name, so the tar is rewritten by hand
/// (`bundle.json`'s own bytes are pinned by nothing).
pub fn write_bundle_with_hostile_name(dir: &Path) -> PathBuf {
    let image = crate::image_with_layer("hostile/app", "1.0", 1024, 7);
    let written = dir.join("written");
    std::fs::create_dir_all(&written).unwrap();
    let paths = write_bundle(&written, "hostile", &[Entry::workload(&image, &image.reference())], None);
    assert_eq!(paths.len(), 1, "{paths:?}");
    let plain = dir.join("content-hostile.tar");
    let mut input = tar::Archive::new(std::fs::File::open(&paths[0]).unwrap());
    let mut output = tar::Builder::new(std::fs::File::create(&plain).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if entry.path().unwrap().to_str() == Some(edgeiso_bundle::format::BUNDLE_JSON) {
            let mut meta: serde_json::Value = serde_json::from_slice(&data).unwrap();
            meta["name"] = HOSTILE_BUNDLE_NAME.into();
            data = serde_json::to_vec_pretty(&meta).unwrap();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        output.append(&header, &data[..]).unwrap();
    }
    output.finish().unwrap();
    plain
}
