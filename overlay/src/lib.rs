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

mod epoch;

pub use epoch::{source_date_epoch, EpochError};

/// Where the initramfs overlay lives on the ISO, and what every boot entry loads.
pub const EDGEISO_INITRD_ISO_PATH: &str = "/boot/edgeiso.img";

/// The dracut hook the initramfs overlay carries, in dracut's `$hookdir`
/// (`/lib/dracut/hooks`, what dracut-lib.sh and dracut-pre-pivot.service
/// read). On usr-merged initrds that is `/usr/lib/dracut/hooks/pre-pivot/`;
/// on dracut-ng it resolves on to `/var/lib/dracut/hooks/pre-pivot/`; on
/// initrds that are not usr-merged it is `/lib` itself. The archive holds no
/// entries for its folders, so the kernel follows the base's symlinks.
pub const EDGEISO_DRACUT_HOOK_PATH: &str = "lib/dracut/hooks/pre-pivot/90-edgeiso.sh";
