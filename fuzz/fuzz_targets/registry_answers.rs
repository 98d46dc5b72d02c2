//! What the agent parses of a registry's answers: `WWW-Authenticate`
//! challenges, upload `Range` headers, `Location` headers (joined onto the
//! request's URL, kept on the registry's origin), error bodies (Harbor's
//! refusals, the escaped detail quoted in errors) and token answers.
#![no_main]
use edgeiso_agent::location::{resolve_location, Url};
use edgeiso_agent::registry::{detail_of, Refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Token answers are bytes off the wire: parsed before any UTF-8 check.
    let _ = edgeiso_agent::auth::TokenResponse::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = edgeiso_agent::auth::parse_challenge(text);
    let _ = edgeiso_agent::registry::uploaded_bytes(text);
    for status in [401, 403] {
        let _ = Refusal::of(status, text);
    }
    let detail = detail_of(text);
    assert!(!detail.chars().any(char::is_control), "{detail:?}");
    let registry = Url::parse("https://10.0.0.5:30003/").unwrap();
    let base = registry.join("v2/p/app/blobs/uploads/").unwrap();
    if let Ok(url) = resolve_location(&registry, &base, text) {
        assert_eq!(url.origin(), registry.origin(), "{text:?} -> {url}");
    }
    if let Err(e) = resolve_location(&registry, &base, text) {
        assert!(!e.to_string().chars().any(char::is_control), "{e:?}");
    }
});
