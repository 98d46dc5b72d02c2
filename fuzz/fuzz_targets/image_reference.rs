//! Image references (the grammar written by hand): whatever parses prints
//! back to a reference that parses to the same thing.
#![no_main]
use edgeiso_bundle::{harbor_target, ImageRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = text.parse::<ImageRef>() {
        let printed = r.to_string();
        let again: ImageRef = printed.parse().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}: {e}"));
        assert_eq!(again.to_string(), printed);
        let _ = harbor_target("spectro-images", &r);
    }
});
