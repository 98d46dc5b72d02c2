//! The bundles the bundle crate's tests write.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use edgeiso_bundle::manifest::OCI_MANIFEST;
use edgeiso_bundle::writer::{BlobSource, BundlePlan};
use edgeiso_bundle::{Digest, ImageRecord, Role};

/// A one-image plan (an OCI manifest, its config and one layer of `layer`),
/// and the manifest's, config's and layer's digests.
pub fn one_image_plan(name: &str, layer: Vec<u8>) -> (BundlePlan, Digest, Digest, Digest) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let (ld, cd) = (Digest::of(&layer), Digest::of(&config));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    )
    .into_bytes();
    let md = Digest::of(&manifest);
    let size = (layer.len() + config.len() + manifest.len()) as u64;
    let mut blobs = BTreeMap::new();
    for b in [layer, config, manifest] {
        blobs.insert(Digest::of(&b), (b.len() as u64, BlobSource::Bytes(b)));
    }
    let plan = BundlePlan {
        name: name.into(),
        created: UNIX_EPOCH,
        tool: "test".into(),
        images: vec![ImageRecord {
            reference: "example.com/team/app:1".parse().unwrap(),
            digest: md.clone(),
            media_type: OCI_MANIFEST.into(),
            platforms: vec!["linux/amd64".into()],
            role: Role::Workload,
            size,
            source_digest: None,
            index_digest: None,
        }],
        blobs,
        partial: None,
    };
    (plan, md, cd, ld)
}
