//! What `bundle.json` says of an image against what the bundle stores: its
//! media type, its platforms and its size. The members' hashes do not cover
//! these claims (bundle.json is their source, not their subject), so a
//! hand-edited or buggy bundle.json passes every hash and then misleads:
//! a media type that fails every push on the node, a platform the site
//! cannot run, a size the site's storage checks trust.

use std::collections::BTreeSet;

use crate::manifest::{is_index, ManifestView, Platform};
use crate::{Bundle, ImageGraph, ImageRecord};

/// Every claim of `img` that the stored bytes contradict, as a sentence
/// naming the claim (the caller names the image). `graph` is the image's,
/// walked already.
pub fn contradictions(bundle: &Bundle, img: &ImageRecord, graph: &ImageGraph) -> Vec<String> {
    let name = img.reference.to_string();
    let mut found = Vec::new();
    let mut views = Vec::new();
    for m in &graph.manifests {
        match bundle.read_manifest(&name, &m.digest).ok().and_then(|b| ManifestView::parse(&b).ok()) {
            Some(view) => views.push((m.digest.clone(), view)),
            // Unreadable manifests are the graph walk's problems, reported there.
            None => return found,
        }
    }
    if let Some((_, top)) = views.iter().find(|(d, _)| *d == img.digest) {
        found.extend(media_type(img, top));
    }
    found.extend(platforms(bundle, img, &views));
    found.extend(size(img, graph, &views));
    found
}

/// A record that claims an index where a manifest is stored passes the
/// hashes but fails every push on the node.
fn media_type(img: &ImageRecord, top: &ManifestView) -> Option<String> {
    let stored = match top.media_type.as_deref() {
        Some(own) if own != img.media_type => own.to_string(),
        Some(_) => return None,
        None if top.is_index() != is_index(&img.media_type) => {
            (if top.is_index() { "an index" } else { "an image manifest" }).to_string()
        }
        None => return None,
    };
    Some(format!("bundle.json gives the image media type {}, but the stored manifest is {stored}", img.media_type))
}

/// The platforms the stored bytes have: every index's entries that name a
/// real one (`unknown/unknown` marks attestations), and every image
/// manifest's config. `None` when a config a partial bundle left out would
/// have to say (the claim cannot be checked from this bundle alone).
fn stored_platforms(bundle: &Bundle, views: &[(crate::Digest, ManifestView)]) -> Option<Vec<Platform>> {
    let mut stored = Vec::new();
    for (_, view) in views {
        stored.extend(view.manifests.iter().filter_map(|d| d.platform.clone()).filter(|p| p.os != "unknown"));
        if let Some(config) = &view.config {
            if bundle.partial().is_some() && bundle.blob(&config.digest).is_none() {
                return None;
            }
            if let Some(p) = bundle.read_small(&config.digest.blob_path()).ok().and_then(|b| Platform::of_config(&b)) {
                stored.push(p);
            }
        }
    }
    Some(stored)
}

/// Each platform bundle.json claims is one the stored index lists or the
/// stored manifest's config declares (`linux/arm64` is had by
/// `linux/arm64/v8`).
fn platforms(bundle: &Bundle, img: &ImageRecord, views: &[(crate::Digest, ManifestView)]) -> Vec<String> {
    let Some(stored) = stored_platforms(bundle, views) else { return Vec::new() };
    img.platforms
        .iter()
        .filter(|claim| !stored.iter().any(|s| s.id() == **claim || s.matches(claim)))
        .map(|claim| {
            let have: BTreeSet<String> = stored.iter().map(Platform::id).collect();
            let have = if have.is_empty() { "none".into() } else { have.into_iter().collect::<Vec<_>>().join(", ") };
            format!("bundle.json claims platform {claim}, which the stored image does not have (it has {have})")
        })
        .collect()
}

/// bundle.json's size is every manifest and blob the image needs: each
/// once (what `import` and `create` write for an index), or each blob as
/// often as its manifest lists it (what `create` writes for a single
/// manifest that repeats a layer).
fn size(img: &ImageRecord, graph: &ImageGraph, views: &[(crate::Digest, ManifestView)]) -> Option<String> {
    let once = graph.total_size();
    let manifests: u64 = graph.manifests.iter().map(|m| m.size).sum();
    let as_listed = manifests + views.iter().flat_map(|(_, v)| v.blobs()).map(|b| b.size).sum::<u64>();
    (img.size != once && img.size != as_listed).then(|| {
        format!("bundle.json claims a size of {} bytes, the stored manifests and blobs are {once} bytes", img.size)
    })
}
