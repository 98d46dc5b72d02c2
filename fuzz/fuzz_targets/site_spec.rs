//! The site spec: YAML, its schema and its checks.
#![no_main]
use edgeiso_installer_config::spec::Spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = Spec::from_str(text, std::path::Path::new("site.yaml")) {
        let _ = spec.all_images().count();
    }
});
