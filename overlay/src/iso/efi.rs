//! The EFI system image of an ISO (a file in its tree or an appended
//! partition), read with mtools for the GRUB configs and systemd-boot
//! entries inside it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};

use edgeiso_contract::paths::iso::INITRD;

use super::boot::{classify_config, patch_config};
use super::error::io_err;
use super::xorriso::{extract, tail};
use super::{BootConfig, BootConfigKind, BootSetup, EfiImage, IsoError, Xorriso};

/// Run `mtools` on an EFI image.
fn mtools(tool: &str, image: &Path, args: &[&str]) -> Result<Vec<u8>, IsoError> {
    let out = Command::new(tool)
        .arg("-i")
        .arg(image)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                IsoError::ToolMissing { tool: tool.into(), hint: "Debian package mtools" }
            } else {
                IsoError::Io { path: tool.into(), source: e }
            }
        })?;
    if !out.status.success() {
        return Err(IsoError::ToolFailed {
            tool: tool.into(),
            subject: image.display().to_string(),
            detail: tail(&String::from_utf8_lossy(&out.stderr), 4),
        });
    }
    Ok(out.stdout)
}

/// Look inside the EFI system image for GRUB configs.
pub(super) fn inspect_efi_image(
    x: &Xorriso,
    iso: &Path,
    setup: &mut BootSetup,
    scratch: &Path,
) -> Result<(), IsoError> {
    let image = scratch.join("efi.img");
    match setup.efi_boot_image.clone() {
        None => return Ok(()),
        Some(EfiImage::File(path)) => {
            let dir = scratch.join("efi-extract");
            extract(x, iso, &[&path], &dir)?;
            std::fs::rename(dir.join(path.trim_start_matches('/')), &image).map_err(io_err(&image))?;
        }
        Some(EfiImage::Range { offset, len }) => {
            let mut f = File::open(iso).map_err(io_err(iso))?;
            f.seek(SeekFrom::Start(offset)).map_err(io_err(iso))?;
            let mut out = File::create(&image).map_err(io_err(&image))?;
            let copied = io::copy(&mut f.take(len), &mut out).map_err(io_err(&image))?;
            if copied != len {
                return Err(IsoError::Io {
                    path: iso.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::UnexpectedEof, "EFI image range runs past the end"),
                });
            }
        }
    }
    let listing = String::from_utf8_lossy(&mtools("mdir", &image, &["-/", "-b", "::"])?).into_owned();
    for name in listing.lines().map(str::trim).filter(|l| !l.is_empty() && !l.ends_with('/')) {
        let inner = name.trim_start_matches("::");
        setup.efi_image_files.push(format!("efi.img:{inner}"));
        // GRUB configs anywhere, systemd-boot entries under loader/entries/.
        let kind = match classify_config(&format!("/{}", inner.trim_start_matches('/'))) {
            Some(BootConfigKind::SystemdBoot) => BootConfigKind::SystemdBoot,
            _ if inner.to_ascii_lowercase().ends_with(".cfg") => BootConfigKind::Grub,
            _ => continue,
        };
        let text = mtools("mtype", &image, &[&format!("::{inner}")])?;
        let p = patch_config(kind, &String::from_utf8_lossy(&text), INITRD, &[]);
        setup.efi_image_configs.push(BootConfig {
            path: format!("efi.img:{inner}"),
            kind,
            initrd_lines: p.initrd_lines,
            kernel_lines: p.kernel_lines,
            problems: p.problems,
        });
    }
    Ok(())
}
