//! Inspect a base ISO's boot setup and remaster it with `xorriso`.
//!
//! Remastering maps an overlay directory onto the base ISO's tree and writes a
//! *separate* output file, replaying the base's boot equipment (El Torito
//! images, MBR/GPT, appended EFI partition) with `-boot_image any replay`.
//! Writing into the base itself would append a session whose data lands
//! outside the hybrid GPT's partition 1, breaking USB boot: that is refused.
//!
//! Every GRUB and isolinux config on the ISO that loads an initrd is patched
//! (see [`crate::bootcfg`]) to also load the initramfs overlay. GRUB configs
//! inside an EFI system image are inspected too; grub-mkrescue's and Kairos'
//! only hand over to the ISO's own grub.cfg, and a layout that boots a kernel
//! straight from inside the EFI image is refused rather than half-patched.
//!
//! One concern per file:
//! - `xorriso`: the xorriso driver (finding and running it, `stdio:`
//!   addresses, its quoting) and its file listings;
//! - `boot`: what a base ISO's boot setup is ([`BootSetup`], El Torito,
//!   System Area, volume descriptors), [`inspect`] and [`check_supported`];
//! - `efi`: the EFI system image, read with mtools;
//! - `remaster`: [`Remaster`];
//! - `verify`: the read-back verification ([`verify()`], [`file_extents`]);
//! - `error`: [`IsoError`].

mod boot;
mod efi;
mod error;
mod remaster;
mod verify;
mod xorriso;

pub use boot::{
    check_supported, inspect, inspect_base, BaseInspection, BootConfig, BootConfigKind, BootSetup, EfiImage,
};
pub use error::IsoError;
pub use remaster::{PatchedConfig, Remaster, RemasterReport};
pub use verify::{file_extents, verify, Extents, Verification};
pub use xorriso::{list_files, IsoFile, Xorriso};
