//! The checker of an initramfs (compressed cpio archives, concatenated).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = edgeiso_overlay::initramfs::check_initramfs(data);
});
