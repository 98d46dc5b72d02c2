//! [`IsoError`], what inspecting, remastering and verifying an ISO can fail
//! with, and the helpers that build it.

use std::io;
use std::path::{Path, PathBuf};

use crate::bootcfg::CfgProblem;

/// Errors from inspecting, remastering and verifying ISOs.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    /// A required program is not installed.
    #[error("{tool} not found on PATH ({hint})")]
    ToolMissing {
        /// The program.
        tool: String,
        /// Which package provides it.
        hint: &'static str,
    },
    /// Running a program failed or it reported failure.
    #[error("{tool} failed on {subject}: {detail}")]
    ToolFailed {
        /// The program.
        tool: String,
        /// The ISO or image it worked on.
        subject: String,
        /// Its error output (tail).
        detail: String,
    },
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The base file has no ISO 9660 volume descriptor.
    #[error("{iso} is not an ISO 9660 image (no CD001 volume descriptor at sector 16)")]
    NotAnIso {
        /// The file.
        iso: PathBuf,
    },
    /// The base ISO has no El Torito boot record.
    #[error("{iso} is not bootable: no El Torito boot image found ({found})")]
    NotBootable {
        /// The ISO.
        iso: PathBuf,
        /// What the inspection found.
        found: String,
    },
    /// The base ISO boots, but not in a way edgeiso knows how to extend.
    #[error("{iso}: unsupported boot layout, no GRUB or isolinux config that loads an initrd; found: {found}")]
    UnsupportedLayout {
        /// The ISO.
        iso: PathBuf,
        /// What the inspection found.
        found: String,
    },
    /// The EFI system image of the base boots a kernel itself.
    #[error(
        "{iso}: EFI image config {config} loads a kernel/initrd itself; patching inside the EFI image is not supported"
    )]
    EfiImageBootsKernel {
        /// The ISO.
        iso: PathBuf,
        /// The config inside the EFI image.
        config: String,
    },
    /// A boot config has an entry that loads an initrd but cannot be made to
    /// load the overlay: booting it would skip the overlay, so it is refused.
    #[error("{iso}: boot config {config}, line {line}: {reason}")]
    UnpatchableBootConfig {
        /// The ISO.
        iso: PathBuf,
        /// The config (ISO path, or `efi.img:` path inside the EFI image).
        config: String,
        /// 1-based line of the entry.
        line: usize,
        /// Why it cannot be patched.
        reason: String,
    },
    /// Output and base are the same file.
    #[error("output {output} is the base ISO {base} itself; remastering must write a separate file (an appended session breaks hybrid USB boot)")]
    OutputIsBase {
        /// The base.
        base: PathBuf,
        /// The output.
        output: PathBuf,
    },
    /// The overlay directory is missing or lacks the initramfs overlay.
    #[error("overlay {path}: {reason}")]
    BadOverlay {
        /// The overlay path at fault.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The initramfs overlay in the overlay directory would be dropped by the kernel.
    #[error("initramfs overlay {path} fails the kernel's rules: {source}")]
    BadInitramfs {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: crate::initramfs::CpioCheckError,
    },
    /// A kernel argument to add to the boot entries is not one word the boot
    /// loaders pass on unchanged.
    #[error("kernel argument {arg:?} {reason}")]
    BadKernelArg {
        /// The argument.
        arg: String,
        /// Why it is refused.
        reason: String,
    },
    /// `SOURCE_DATE_EPOCH` is malformed.
    #[error(transparent)]
    Epoch(#[from] crate::EpochError),
    /// Read-back verification of the output failed.
    #[error("verification of {iso} failed: {reason}")]
    VerifyFailed {
        /// The output ISO.
        iso: PathBuf,
        /// What differs.
        reason: String,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IsoError + '_ {
    move |source| IsoError::Io { path: path.to_path_buf(), source }
}

pub(super) fn unpatchable(iso: &Path, config: &str, p: &CfgProblem) -> IsoError {
    IsoError::UnpatchableBootConfig {
        iso: iso.to_path_buf(),
        config: config.to_string(),
        line: p.line,
        reason: p.reason.clone(),
    }
}
