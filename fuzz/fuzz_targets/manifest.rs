//! Manifest and index parsing, and the platform of an image config.
#![no_main]
use edgeiso_bundle::manifest::{ManifestView, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = ManifestView::parse(data) {
        let _ = view.is_index();
        let _ = view.effective_media_type(None);
        let _ = view.effective_media_type(Some("application/vnd.oci.image.index.v1+json"));
        for blob in view.blobs() {
            let _ = blob.digest.to_string();
        }
    }
    if let Some(p) = Platform::of_config(data) {
        let _ = p.matches(&p.id());
    }
});
