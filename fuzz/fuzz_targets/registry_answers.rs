//! What the agent parses of a registry's answers: `WWW-Authenticate`
//! challenges and upload `Range` headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = edgeiso_agent::auth::parse_challenge(text);
    let _ = edgeiso_agent::registry::uploaded_bytes(text);
});
