//! Laying edgeiso's files onto an installer ISO.
//!
//! - [`initramfs`]: builds the initramfs overlay (`/boot/edgeiso.img`), a `newc`
//!   cpio the kernel unpacks after the base initrd, and checks archives by the
//!   kernel's own rules.
//! - [`bootcfg`]: adds that overlay to every boot entry of GRUB and isolinux
//!   configurations.
//! - [`iso`]: inspects a base ISO's boot setup and remasters it with `xorriso`
//!   into a separate output, then reads the result back to verify it.
//! - [`qemu`]: boots an ISO in QEMU (KVM when it works, else TCG) from CD or USB, BIOS or UEFI, and
//!   watches the serial console for a marker.
//!
//! See `docs/iso-layout.md` for the layout these build and
//! `docs/decisions/0003-iso-remaster-with-xorriso.md` for why xorriso.

pub mod bootcfg;
pub mod initramfs;
pub mod iso;
pub mod qemu;

pub mod agent_binary;
pub mod cidata;
pub mod hook;
pub mod site_area;
pub mod tree;

pub use edgeiso_contract::epoch::{source_date_epoch, EpochError};
