//! The webhook's answer to any body: never a panic, and a body it answers is
//! an AdmissionReview with `allowed: true`.
#![no_main]
use std::collections::HashSet;
use std::sync::OnceLock;

use edgeiso_agent::webhook::{review, KnownImages, LoadedImage};
use libfuzzer_sys::fuzz_target;

const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn known() -> &'static KnownImages {
    static KNOWN: OnceLock<KnownImages> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let images = ["docker.io/library/nginx:1.25".to_string(), format!("quay.io/team/app@{D}")]
            .into_iter()
            .map(|r| LoadedImage { reference: r.parse().unwrap(), digest: D.into() })
            .collect::<Vec<_>>();
        KnownImages::new("10.0.0.5:30003", "spectro-images", images, &HashSet::new())
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok((answer, _)) = review::answer(data, known()) {
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("the answer is JSON");
        assert_eq!(v["response"]["allowed"], true);
    }
});
