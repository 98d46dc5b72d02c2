//! Where the blobs a partial bundle leaves out come from (decision 0017): a
//! thin bundle's from each image's source registry, a delta's from its base,
//! which must be in the registry already.

use std::sync::Arc;

use edgeiso_bundle::manifest::Descriptor;
use edgeiso_bundle::Digest;
use edgeiso_contract::printable::escape;

use super::report::{FailKind, ImageFailure};
use super::WorkItem;
use crate::registry::RegistryClient;
use crate::upload::{BlobOrigin, BlobSource};

/// Where the blobs a bundle leaves out come from.
#[derive(Clone)]
pub(super) enum Supply {
    /// Nowhere: a whole bundle holds every blob.
    Whole,
    /// A thin bundle's: from the image's source registry.
    Source(Arc<RegistryClient>),
    /// A delta's: from its base, which must have been loaded already; the
    /// sentence that names the base and what this node's journal says of it.
    Base(Arc<str>),
}

/// What a delta's image is refused with when its base's blob is not in the
/// registry.
pub(super) fn not_from_base(digest: &Digest, base: &str) -> ImageFailure {
    ImageFailure {
        kind: FailKind::Content,
        message: format!(
            "blob {digest} is neither in this delta nor in the registry ({base}); load the base first (no \
             manifest of this image was pushed)"
        ),
    }
}

/// Where `blob` comes from when the registry lacks it; `None` for a
/// delta's blob that only its base can have brought.
pub(super) fn blob_source(item: &WorkItem, blob: &Descriptor) -> Result<Option<BlobSource>, ImageFailure> {
    let digest = blob.digest.clone();
    if let Some(loc) = item.bundle.blob(&digest) {
        let origin = BlobOrigin::Bundle { files: item.files.clone(), offset: loc.offset };
        return Ok(Some(BlobSource { origin, size: loc.size, digest }));
    }
    match &item.supply {
        Supply::Source(client) => {
            let origin =
                BlobOrigin::Registry { client: client.clone(), repo: item.record.reference.repository().to_owned() };
            Ok(Some(BlobSource { origin, size: blob.size, digest }))
        }
        Supply::Base(_) => Ok(None),
        Supply::Whole => {
            Err(ImageFailure { kind: FailKind::Content, message: format!("blob {digest} is missing from the bundle") })
        }
    }
}

/// What this node's journal says of a delta's base, as a sentence naming
/// it: a delta refers to its base by the sha256 of its `bundle.json`, so a
/// different bundle of the same name is not it. The journal keeps one plan
/// per name, and a delta is named as its base is: once the delta (`own`)
/// was planned here, the base's plan is no longer known.
pub(super) fn base_sentence(
    state: &crate::journal::JournalState,
    base: &edgeiso_bundle::BaseBundle,
    own: &Digest,
) -> String {
    let named = format!("its base bundle {} (bundle.json sha256 {})", escape(&base.name), base.bundle_json_sha256);
    match state.plans.get(&base.name) {
        _ if state.loaded_whole(&base.name, &base.bundle_json_sha256) => {
            format!("{named} was loaded here")
        }
        Some(p) if p.sha256.as_ref() == Some(own) => {
            format!("{named} is not recorded here since this delta was planned")
        }
        Some(p) if p.sha256.is_some() && p.sha256.as_ref() != Some(&base.bundle_json_sha256) => format!(
            "{named} was never loaded here: the bundle of that name loaded here is another one (bundle.json sha256 {})",
            p.sha256.as_ref().expect("checked")
        ),
        Some(_) => format!("{named} was not loaded whole here"),
        None => format!("{named} was never loaded here"),
    }
}
