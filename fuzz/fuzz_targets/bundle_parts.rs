//! A bundle split in parts: the parts reader across part boundaries. The
//! first byte says how many parts (1-4) the rest is cut into.
#![no_main]
use edgeiso_bundle::{parts, verify::verify, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = 1 + n as usize % 4;
    edgeiso_fuzz::clear_scratch();
    let base = edgeiso_fuzz::scratch().join("content-fuzz.tar");
    let cut = rest.len().div_ceil(n).max(1);
    for (i, chunk) in rest.chunks(cut).enumerate() {
        std::fs::write(parts::part_name(&base, i), chunk).unwrap();
    }
    let first = parts::part_name(&base, 0);
    if let Ok(bundle) = Bundle::open(&first) {
        let _ = verify(&bundle, &|_| {});
    }
});
