//! A user's `userData` file: YAML, then its `stylus` block against the key
//! table, with the lines of problems found by indentation (`locate`).
#![no_main]
use edgeiso_installer_config::{stylus_schema, yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = yaml::parse(text) {
        let _ = stylus_schema::check_document(&doc, std::path::Path::new("user-data.yaml"), Some(text));
    }
});
