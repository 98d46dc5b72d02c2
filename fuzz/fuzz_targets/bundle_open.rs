//! A bundle file: the tar member index, `bundle.json`, every image's graph
//! of manifests and indexes, and `bundle verify`.
#![no_main]
use edgeiso_bundle::{verify::verify, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = edgeiso_fuzz::scratch_file("content-fuzz.tar", data);
    if let Ok(bundle) = Bundle::open(&path) {
        for image in &bundle.meta.images {
            let _ = bundle.image_graph(image);
        }
        let _ = verify(&bundle, &|_| {});
    }
});
