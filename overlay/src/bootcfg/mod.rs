//! Add the initramfs overlay to every boot entry of a GRUB or isolinux config
//! (systemd-boot entries are only recognised, to be refused).
//!
//! Boot loaders load several initrds in order and the kernel unpacks them in
//! that order, later files overriding earlier ones. So the overlay is appended
//! *after* the existing initrd(s) of each entry; every other line, and every
//! kernel argument, stays byte-for-byte as it was (line endings included).
//! Patching is idempotent: an entry that already loads the overlay is left alone.
//!
//! Optionally (`kernel_args`, the spec's `agent.liveKernelArgs` when
//! `liveLoad` is on) kernel arguments are appended after the existing
//! arguments of every kernel entry: GRUB `linux`/`linux16`/`linuxefi`
//! (`$linux`) commands and the `APPEND` line of every isolinux label that
//! boots a Linux kernel. Existing arguments stay as they are; an argument the
//! entry already has (same text; for `ip=`, any `ip=`) is not added again.
//!
//! One boot loader per file (`grub`, `isolinux`, `systemd_boot`); this one
//! holds what they share: [`CfgPatch`], [`CfgProblem`] and the
//! kernel-argument helpers.

mod grub;
mod isolinux;
mod systemd_boot;

pub use grub::patch_grub_cfg;
pub use isolinux::patch_isolinux_cfg;
pub use systemd_boot::{inspect_systemd_boot_entry, UKI_ENTRY};

/// The result of patching one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgPatch {
    /// The patched text.
    pub text: String,
    /// Lines that load an initrd (patched or already carrying the overlay).
    pub initrd_lines: usize,
    /// Initrd lines this call changed (made to load the overlay).
    pub patched_lines: usize,
    /// Lines that load a kernel (`linux`, `linuxefi`, isolinux `KERNEL`/`LINUX`).
    pub kernel_lines: usize,
    /// Kernel entries this call gave at least one kernel argument (GRUB
    /// kernel commands; isolinux labels, whose `APPEND` line was extended or
    /// added).
    pub kernel_args_lines: usize,
    /// The kernel arguments added to at least one entry, in the order asked.
    pub kernel_args_added: Vec<String>,
    /// Commands that load an initrd but could not be patched: booting them
    /// would skip the overlay.
    pub problems: Vec<CfgProblem>,
}

/// An initrd command that could not be patched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgProblem {
    /// 1-based line where the command starts.
    pub line: usize,
    /// Why.
    pub reason: String,
}

impl CfgPatch {
    /// Whether the file has anything to do with booting a kernel.
    pub fn boots_a_kernel(&self) -> bool {
        self.initrd_lines > 0 || self.kernel_lines > 0
    }
}

/// The arguments of `wanted` that an entry whose arguments are `existing`
/// lacks: for `key=value`, no `key=` at all (the entry's own setting wins:
/// `rd.neednet=0` stays as it is, an `ip=` of its own configures the network
/// its way; appending ours would override it, as the last value counts);
/// for a bare flag, not the same flag.
fn args_to_add<'a>(existing: &[&str], wanted: &'a [String]) -> Vec<&'a str> {
    let key = |a: &str| a.split_once('=').map(|(k, _)| k.to_string());
    wanted
        .iter()
        .map(String::as_str)
        .filter(|w| match key(w) {
            Some(k) => !existing.iter().any(|e| key(e).as_deref() == Some(k.as_str())),
            None => !existing.contains(w),
        })
        .collect()
}

/// Record `added` in `all` (distinct, in the order of `wanted`).
fn note_added(all: &mut Vec<String>, added: &[&str], wanted: &[String]) {
    for w in wanted {
        if added.contains(&w.as_str()) && !all.contains(w) {
            all.push(w.clone());
        }
    }
}

#[cfg(test)]
mod test_support {
    //! What the GRUB and isolinux tests share.

    pub(super) const OVERLAY: &str = "/boot/edgeiso.img";

    pub(super) fn live_args() -> Vec<String> {
        vec!["rd.neednet=1".to_string(), "ip=dhcp".to_string()]
    }
}
