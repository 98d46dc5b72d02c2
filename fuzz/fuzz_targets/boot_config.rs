//! The boot configuration parsers: the first byte picks GRUB, isolinux or a
//! systemd-boot entry; the rest is the file.
#![no_main]
use edgeiso_overlay::bootcfg::{inspect_systemd_boot_entry, patch_grub_cfg, patch_isolinux_cfg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let args = ["rd.neednet=1".to_string(), "ip=dhcp".to_string()];
    let _ = match which % 3 {
        0 => patch_grub_cfg(text, "/boot/edgeiso.img", &args),
        1 => patch_isolinux_cfg(text, "/boot/edgeiso.img", &args),
        _ => inspect_systemd_boot_entry(text),
    };
});
