//! What a base ISO's boot setup is: [`BootSetup`] and its parts, read from
//! the ISO 9660 volume descriptors, xorriso's El Torito and System Area
//! reports and the boot configs on the ISO; [`inspect`] and
//! [`check_supported`].

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use edgeiso_contract::paths::iso::INITRD;

use super::efi::inspect_efi_image;
use super::error::{io_err, unpatchable};
use super::xorriso::{extract, list_entries, os, stdio, unquote};
use super::{IsoError, IsoFile, Xorriso};
use crate::bootcfg::{inspect_systemd_boot_entry, patch_grub_cfg, patch_isolinux_cfg, CfgPatch, CfgProblem};

/// Where the EFI El Torito image of an ISO is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EfiImage {
    /// A file in the ISO tree (grub-mkrescue's `/efi.img`).
    File(String),
    /// A byte range of the ISO file: an appended partition (AuroraBoot, Debian).
    Range {
        /// Start, in bytes.
        offset: u64,
        /// Length, in bytes.
        len: u64,
    },
}

/// A boot config found on the ISO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// Path in the ISO tree (or inside the EFI image, prefixed `efi.img:`).
    pub path: String,
    /// GRUB or isolinux syntax.
    pub kind: BootConfigKind,
    /// Lines that load an initrd.
    pub initrd_lines: usize,
    /// Lines that load a kernel.
    pub kernel_lines: usize,
    /// Initrd-loading entries that cannot be patched.
    pub problems: Vec<CfgProblem>,
}

/// Syntax of a boot config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootConfigKind {
    /// GRUB 2 (`grub.cfg`, `loopback.cfg`, ...).
    Grub,
    /// isolinux/syslinux.
    Isolinux,
    /// systemd-boot entries (`loader/entries/*.conf`): recognised, never patched.
    SystemdBoot,
}

/// The boot setup of an ISO, as `xorriso` reports it.
#[derive(Debug, Clone, Default)]
pub struct BootSetup {
    /// ISO 9660 volume id (`COS_LIVE` for Kairos, a contract with dracut).
    pub volume_id: String,
    /// BIOS El Torito boot image (ISO path).
    pub bios_boot_image: Option<String>,
    /// Which loader `xorriso` recognises in the BIOS image (`grub`, `isolinux`, `any`).
    pub bios_loader: Option<String>,
    /// UEFI El Torito boot image.
    pub efi_boot_image: Option<EfiImage>,
    /// An EFI system partition appended after the ISO data.
    pub appended_efi_partition: bool,
    /// The System Area summary (`MBR protective-msdos-label grub2-mbr GPT`...).
    pub system_area: String,
    /// A GPT is present.
    pub gpt: bool,
    /// An MBR partition table is present.
    pub mbr: bool,
    /// HFS+ hybrid for Intel Macs (grub-mkrescue).
    pub hfsplus: bool,
    /// A Joliet tree is present.
    pub joliet: bool,
    /// GRUB/isolinux configs on the ISO that load kernels or initrds.
    pub configs: Vec<BootConfig>,
    /// Configs inside the EFI image (paths prefixed `efi.img:`).
    pub efi_image_configs: Vec<BootConfig>,
    /// Files in the EFI image (paths prefixed `efi.img:`), for the record.
    pub efi_image_files: Vec<String>,
    /// The `-boot_image` commands `replay` will run.
    pub replay_commands: Vec<String>,
}

impl BootSetup {
    /// Whether there is any El Torito boot image.
    pub fn is_bootable(&self) -> bool {
        self.bios_boot_image.is_some() || self.efi_boot_image.is_some()
    }

    /// Configs on the ISO that load an initrd (these get the overlay).
    pub fn patchable_configs(&self) -> impl Iterator<Item = &BootConfig> {
        self.configs.iter().filter(|c| c.initrd_lines > 0 && c.kind != BootConfigKind::SystemdBoot)
    }

    /// One line naming everything found, for error messages.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("volume {:?}", self.volume_id)];
        match (&self.bios_boot_image, &self.bios_loader) {
            (Some(p), Some(l)) => parts.push(format!("BIOS El Torito {p} ({l})")),
            (Some(p), None) => parts.push(format!("BIOS El Torito {p}")),
            _ => parts.push("no BIOS El Torito".into()),
        }
        match &self.efi_boot_image {
            Some(EfiImage::File(p)) => parts.push(format!("UEFI El Torito {p}")),
            Some(EfiImage::Range { offset, len }) => {
                parts.push(format!("UEFI El Torito image at byte {offset} ({len} bytes)"))
            }
            None => parts.push("no UEFI El Torito".into()),
        }
        if self.appended_efi_partition {
            parts.push("appended EFI partition".into());
        }
        parts.push(format!(
            "system area: {}",
            if self.system_area.is_empty() { "none" } else { self.system_area.as_str() }
        ));
        let cfgs: Vec<String> = self
            .configs
            .iter()
            .chain(&self.efi_image_configs)
            .map(|c| format!("{} ({:?}, {} kernel, {} initrd lines)", c.path, c.kind, c.kernel_lines, c.initrd_lines))
            .collect();
        parts.push(if cfgs.is_empty() { "no boot configs".into() } else { format!("configs: {}", cfgs.join(", ")) });
        parts.join("; ")
    }
}

impl fmt::Display for BootSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

pub(super) const SECTOR: u64 = 2048;

/// Read the ISO 9660 volume descriptors: is it an ISO, and has it Joliet?
fn read_volume_descriptors(iso: &Path) -> Result<(bool, bool), IsoError> {
    let mut f = File::open(iso).map_err(io_err(iso))?;
    let mut joliet = false;
    for sector in 16..64u64 {
        let mut vd = [0u8; 2048];
        f.seek(SeekFrom::Start(sector * SECTOR)).map_err(io_err(iso))?;
        if f.read_exact(&mut vd).is_err() || &vd[1..6] != b"CD001" {
            return Ok((sector > 16, joliet));
        }
        // A Supplementary Volume Descriptor with a UCS-2 escape sequence is Joliet.
        if vd[0] == 2 && matches!(&vd[88..91], b"%/@" | b"%/C" | b"%/E") {
            joliet = true;
        }
        if vd[0] == 255 {
            return Ok((true, joliet));
        }
    }
    Ok((true, joliet))
}

pub(super) fn classify_config(path: &str) -> Option<BootConfigKind> {
    let lower = path.to_ascii_lowercase();
    if !lower.ends_with(".cfg") && !lower.ends_with(".conf") {
        return None;
    }
    if lower.ends_with(".conf") && lower.trim_end_matches(|c| c != '/').ends_with("/loader/entries/") {
        return Some(BootConfigKind::SystemdBoot);
    }
    let name = lower.rsplit('/').next().unwrap_or("");
    if lower.contains("/isolinux/") || lower.contains("/syslinux/") || name == "isolinux.cfg" || name == "syslinux.cfg"
    {
        Some(BootConfigKind::Isolinux)
    } else if lower.ends_with(".cfg") {
        Some(BootConfigKind::Grub)
    } else {
        None
    }
}

pub(super) fn patch_config(kind: BootConfigKind, text: &str, overlay: &str, kernel_args: &[String]) -> CfgPatch {
    match kind {
        BootConfigKind::Grub => patch_grub_cfg(text, overlay, kernel_args),
        BootConfigKind::Isolinux => patch_isolinux_cfg(text, overlay, kernel_args),
        BootConfigKind::SystemdBoot => inspect_systemd_boot_entry(text),
    }
}

/// Parse `-report_el_torito cmd` into the setup.
fn parse_el_torito(cmds: &str, setup: &mut BootSetup) {
    let interval_range = regex::Regex::new(r"start_(\d+)s_size_(\d+)d").expect("static regex");
    for line in cmds.lines().map(str::trim) {
        if !line.starts_with('-') {
            continue;
        }
        setup.replay_commands.push(line.to_string());
        let mut words = line.splitn(3, ' ');
        let (cmd, a, b) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
        match cmd {
            "-volid" => setup.volume_id = unquote(a),
            "-hfsplus" => setup.hfsplus = a == "on",
            "-append_partition" => {
                // -append_partition 2 <type> <source>: EFI type 0xef or the ESP GUID.
                let ty = b.split(' ').next().unwrap_or("");
                if ty.eq_ignore_ascii_case("0xef") || ty.eq_ignore_ascii_case("28732ac11ff8d211ba4b00a0c93ec93b") {
                    setup.appended_efi_partition = true;
                }
            }
            "-boot_image" => {
                if let Some(v) = b.strip_prefix("bin_path=") {
                    setup.bios_boot_image = Some(unquote(v));
                    setup.bios_loader = Some(a.to_string());
                } else if let Some(v) = b.strip_prefix("efi_path=") {
                    let v = unquote(v);
                    setup.efi_boot_image = Some(match interval_range.captures(&v) {
                        Some(c) => EfiImage::Range {
                            offset: c[1].parse::<u64>().unwrap_or(0) * SECTOR,
                            len: c[2].parse::<u64>().unwrap_or(0) * 512,
                        },
                        None => EfiImage::File(v),
                    });
                }
            }
            _ => {}
        }
    }
}

fn parse_system_area(report: &str, setup: &mut BootSetup) {
    for line in report.lines() {
        if let Some(s) = line.strip_prefix("System area summary:") {
            setup.system_area = s.trim().to_string();
        }
        if line.starts_with("GPT ") {
            setup.gpt = true;
        }
        if line.starts_with("MBR partition ") {
            setup.mbr = true;
        }
    }
}

/// Inspect `iso`: boot images, partition tables, boot configs.
///
/// Errors with [`IsoError::NotAnIso`] or [`IsoError::NotBootable`]; a bootable
/// ISO with an unknown layout is returned as is (see [`check_supported`]).
pub fn inspect(x: &Xorriso, iso: &Path) -> Result<BootSetup, IsoError> {
    inspect_base(x, iso).map(|b| b.setup)
}

/// A base ISO inspected once: what [`inspect`] returns, plus its file list
/// and its boot configs extracted to a scratch folder, so that
/// [`Remaster::inspected`](super::Remaster::inspected) spares the remaster a second inspection.
#[derive(Debug)]
pub struct BaseInspection {
    /// The ISO inspected.
    pub iso: PathBuf,
    /// Its boot setup.
    pub setup: BootSetup,
    pub(super) files: Vec<IsoFile>,
    pub(super) scratch: edgeiso_contract::fs::LockedDir,
}

/// [`inspect`], keeping what a [`Remaster`](super::Remaster) of `iso` needs.
pub fn inspect_base(x: &Xorriso, iso: &Path) -> Result<BaseInspection, IsoError> {
    let scratch = edgeiso_contract::fs::scratch_dir("edgeiso-inspect.").map_err(io_err(&std::env::temp_dir()))?;
    let (setup, files) = inspect_with_files(x, iso, scratch.path())?;
    Ok(BaseInspection { iso: iso.to_path_buf(), setup, files, scratch })
}

/// [`inspect`], also returning the file list and leaving extracted configs
/// under `scratch/iso/`.
pub(super) fn inspect_with_files(
    x: &Xorriso,
    iso: &Path,
    scratch: &Path,
) -> Result<(BootSetup, Vec<IsoFile>), IsoError> {
    // xorriso treats a missing or non-ISO -indev as a blank medium and succeeds,
    // so check by hand first.
    let (is_iso, joliet) = read_volume_descriptors(iso)?;
    if !is_iso {
        return Err(IsoError::NotAnIso { iso: iso.to_path_buf() });
    }
    let mut setup = boot_report(x, iso)?;
    setup.joliet = joliet;
    let files = list_entries(x, iso)?;
    if !setup.is_bootable() {
        return Err(IsoError::NotBootable { iso: iso.to_path_buf(), found: setup.summary() });
    }

    let candidates: Vec<(&IsoFile, BootConfigKind)> = files
        .iter()
        .filter(|f| !f.is_dir && f.size < 1 << 20)
        .filter_map(|f| classify_config(&f.path).map(|k| (f, k)))
        .collect();
    let paths: Vec<&str> = candidates.iter().map(|(f, _)| f.path.as_str()).collect();
    let extracted = scratch.join("iso");
    extract(x, iso, &paths, &extracted)?;
    for (file, kind) in candidates {
        let local = extracted.join(file.path.trim_start_matches('/'));
        let text = std::fs::read(&local).map_err(io_err(&local))?;
        let p = patch_config(kind, &String::from_utf8_lossy(&text), INITRD, &[]);
        if p.boots_a_kernel() {
            setup.configs.push(BootConfig {
                path: file.path.clone(),
                kind,
                initrd_lines: p.initrd_lines,
                kernel_lines: p.kernel_lines,
                problems: p.problems,
            });
        }
    }
    inspect_efi_image(x, iso, &mut setup, scratch)?;
    Ok((setup, files))
}

/// Refuse layouts that cannot carry the initramfs overlay to every boot.
pub fn check_supported(iso: &Path, setup: &BootSetup) -> Result<(), IsoError> {
    if !setup.is_bootable() {
        return Err(IsoError::NotBootable { iso: iso.to_path_buf(), found: setup.summary() });
    }
    // A UKI (trusted boot) base: say so, and what works instead.
    let uki = setup
        .efi_image_configs
        .iter()
        .chain(&setup.configs)
        .find_map(|c| c.problems.iter().find(|p| p.reason == crate::bootcfg::UKI_ENTRY).map(|p| (c, p)));
    if let Some((c, p)) = uki {
        return Err(unpatchable(iso, &c.path, p));
    }
    if let Some(c) = setup.efi_image_configs.iter().find(|c| c.initrd_lines > 0 || c.kernel_lines > 0) {
        return Err(IsoError::EfiImageBootsKernel { iso: iso.to_path_buf(), config: c.path.clone() });
    }
    // An entry that loads an initrd without the overlay (one the patcher cannot
    // handle, or a systemd-boot entry) would boot the ISO without edgeiso.
    if let Some((c, p)) = setup.configs.iter().find_map(|c| c.problems.first().map(|p| (c, p))) {
        return Err(unpatchable(iso, &c.path, p));
    }
    if setup.patchable_configs().next().is_none() {
        return Err(IsoError::UnsupportedLayout { iso: iso.to_path_buf(), found: setup.summary() });
    }
    Ok(())
}

/// Read the boot equipment of `iso` back.
pub(super) fn boot_report(x: &Xorriso, iso: &Path) -> Result<BootSetup, IsoError> {
    let mut result = BootSetup::default();
    let report = x.run(
        iso,
        &[os("-indev"), stdio(iso), os("-report_el_torito"), os("cmd"), os("-report_system_area"), os("plain")],
    )?;
    parse_el_torito(&report, &mut result);
    parse_system_area(&report, &mut result);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auroraboot_style_report() {
        let report = "-volid 'COS_LIVE'\n-volume_date uuid '2023111422132000'\n\
-boot_image grub grub2_mbr=--interval:imported_iso:0s-15s:zero_mbrpt,zero_gpt:'a.iso'\n\
-append_partition 2 28732ac11ff8d211ba4b00a0c93ec93b --interval:imported_iso:21360d-23695d::'a.iso'\n\
-boot_image any appended_part_as=gpt\n\
-boot_image grub bin_path='/boot/x86_64/loader/eltorito.img'\n\
-boot_image any next\n\
-boot_image any efi_path='--interval:appended_partition_2_start_5340s_size_2336d:all::'\n\
System area summary: MBR protective-msdos-label grub2-mbr cyl-align-off GPT\n\
MBR partition table:   N Status  Type        Start       Blocks\n\
GPT                :   N  Info\n";
        let mut s = BootSetup::default();
        parse_el_torito(report, &mut s);
        parse_system_area(report, &mut s);
        assert_eq!(s.volume_id, "COS_LIVE");
        assert_eq!(s.bios_boot_image.as_deref(), Some("/boot/x86_64/loader/eltorito.img"));
        assert_eq!(s.bios_loader.as_deref(), Some("grub"));
        assert_eq!(s.efi_boot_image, Some(EfiImage::Range { offset: 5340 * 2048, len: 2336 * 512 }));
        assert!(s.appended_efi_partition && s.gpt && s.mbr && !s.hfsplus);
        assert_eq!(s.system_area, "MBR protective-msdos-label grub2-mbr cyl-align-off GPT");
        assert!(s.summary().contains("appended EFI partition"));
    }

    #[test]
    fn classifies_configs() {
        assert_eq!(classify_config("/boot/grub/grub.cfg"), Some(BootConfigKind::Grub));
        assert_eq!(classify_config("/boot/grub2/grub.cfg"), Some(BootConfigKind::Grub));
        assert_eq!(classify_config("/isolinux/isolinux.cfg"), Some(BootConfigKind::Isolinux));
        assert_eq!(classify_config("/isolinux/txt.cfg"), Some(BootConfigKind::Isolinux));
        assert_eq!(classify_config("/syslinux.cfg"), Some(BootConfigKind::Isolinux));
        assert_eq!(classify_config("/boot/kernel"), None);
        assert_eq!(classify_config("/loader/entries/01-archiso.conf"), Some(BootConfigKind::SystemdBoot));
        assert_eq!(classify_config("/loader/loader.conf"), None);
    }
}
