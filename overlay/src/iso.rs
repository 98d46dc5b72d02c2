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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use edgeiso_bundle::fsutil;

use crate::bootcfg::{
    check_kernel_arg, inspect_systemd_boot_entry, patch_grub_cfg, patch_isolinux_cfg, CfgPatch, CfgProblem,
};

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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IsoError + '_ {
    move |source| IsoError::Io { path: path.to_path_buf(), source }
}

/// The `xorriso` program.
#[derive(Debug, Clone)]
pub struct Xorriso {
    program: PathBuf,
}

/// Find `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.contains(": UPDATE :")).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Xorriso {
    /// `xorriso` from `$EDGEISO_XORRISO` or `PATH`.
    pub fn find() -> Result<Self, IsoError> {
        if let Some(p) = std::env::var_os("EDGEISO_XORRISO") {
            return Ok(Xorriso { program: PathBuf::from(p) });
        }
        which("xorriso")
            .map(|program| Xorriso { program })
            .ok_or(IsoError::ToolMissing { tool: "xorriso".into(), hint: "Debian package xorriso" })
    }

    /// Use a specific program.
    pub fn at(program: impl Into<PathBuf>) -> Self {
        Xorriso { program: program.into() }
    }

    /// The program path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        // The environment must not change what xorriso writes behind our back.
        cmd.env_remove("SOURCE_DATE_EPOCH").env("LC_ALL", "C").stdin(Stdio::null());
        cmd
    }

    /// Run with `args`; on success return stdout (the "result" channel).
    fn run(&self, subject: &Path, args: &[OsString]) -> Result<String, IsoError> {
        let out = self.command().args(["-abort_on", "FAILURE", "-return_with", "SORRY", "32"]).args(args).output();
        let out = out.map_err(|e| self.spawn_error(e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(IsoError::ToolFailed {
                tool: self.program.display().to_string(),
                subject: subject.display().to_string(),
                detail: tail(&stderr, 8),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn spawn_error(&self, e: io::Error) -> IsoError {
        if e.kind() == io::ErrorKind::NotFound {
            IsoError::ToolMissing { tool: self.program.display().to_string(), hint: "Debian package xorriso" }
        } else {
            IsoError::Io { path: self.program.clone(), source: e }
        }
    }
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// An ISO file as xorriso's drive address: `stdio:` makes any path a plain
/// file to it; without it a path under /dev (an ISO on /dev/shm) is refused
/// as a drive.
fn stdio(path: &Path) -> OsString {
    let mut address = OsString::from("stdio:");
    address.push(path.as_os_str());
    address
}

/// Undo xorriso's quoting: `'a'"'"'b'` -> `a'b`.
fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => out.extend(chars.by_ref().take_while(|&c| c != '"')),
            c => out.push(c),
        }
    }
    out
}

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

const SECTOR: u64 = 2048;

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

/// A file of the ISO tree, as `-find ... -exec lsdl` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    /// Absolute path in the ISO.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Rock Ridge permission bits (`0o644`), without the file type.
    pub mode: u32,
    /// A directory (else a regular file, link or special file).
    pub is_dir: bool,
}

/// `-rw-r--r--` -> `0o644` (setuid/setgid/sticky included).
fn parse_mode(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let mut mode = 0;
    for (i, &c) in b[1..].iter().enumerate() {
        let bit = 1 << (8 - i);
        match (i, c) {
            (_, b'-') => {}
            (0 | 3 | 6, b'r') | (1 | 4 | 7, b'w') | (2 | 5 | 8, b'x') => mode |= bit,
            (2, b's') => mode |= bit | 0o4000,
            (2, b'S') => mode |= 0o4000,
            (5, b's') => mode |= bit | 0o2000,
            (5, b'S') => mode |= 0o2000,
            (8, b't') => mode |= bit | 0o1000,
            (8, b'T') => mode |= 0o1000,
            _ => return None,
        }
    }
    Some(mode)
}

/// List every entry of an ISO (directories included, `/` first).
fn list_entries(x: &Xorriso, iso: &Path) -> Result<Vec<IsoFile>, IsoError> {
    let out = x.run(iso, &[os("-indev"), stdio(iso), os("-find"), os("/"), os("-exec"), os("lsdl")])?;
    let mut files = Vec::new();
    for line in out.lines() {
        // -rw-r--r--    1 0        0              64 Nov 14  2023 '/EDGEISO-BASE.txt'
        let parsed = (|| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let perms = words.first()?;
            // Regular files and directories; links and specials are not ours to touch.
            if !perms.starts_with(['-', 'd']) {
                return None;
            }
            let size = words.get(4)?.parse::<u64>().ok()?;
            let quote = line.find('\'')?;
            Some(IsoFile {
                path: unquote(&line[quote..]),
                size,
                mode: parse_mode(perms)?,
                is_dir: perms.starts_with('d'),
            })
        })();
        if let Some(f) = parsed {
            files.push(f);
        }
    }
    Ok(files)
}

/// List the regular files of an ISO.
pub fn list_files(x: &Xorriso, iso: &Path) -> Result<Vec<IsoFile>, IsoError> {
    let mut files = list_entries(x, iso)?;
    files.retain(|f| !f.is_dir);
    Ok(files)
}

/// Copy `paths` out of the ISO into `dest` (keeping their ISO paths below it).
fn extract(x: &Xorriso, iso: &Path, paths: &[&str], dest: &Path) -> Result<(), IsoError> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut args = vec![os("-osirrox"), os("on"), os("-indev"), stdio(iso), os("-extract_l"), os("/")];
    args.push(dest.as_os_str().to_owned());
    args.extend(paths.iter().map(os));
    args.push(os("--"));
    x.run(iso, &args)?;
    Ok(())
}

fn classify_config(path: &str) -> Option<BootConfigKind> {
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

fn patch_config(kind: BootConfigKind, text: &str, overlay: &str, kernel_args: &[String]) -> CfgPatch {
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
fn inspect_efi_image(x: &Xorriso, iso: &Path, setup: &mut BootSetup, scratch: &Path) -> Result<(), IsoError> {
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
        let p = patch_config(kind, &String::from_utf8_lossy(&text), crate::EDGEISO_INITRD_ISO_PATH, &[]);
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

/// Inspect `iso`: boot images, partition tables, boot configs.
///
/// Errors with [`IsoError::NotAnIso`] or [`IsoError::NotBootable`]; a bootable
/// ISO with an unknown layout is returned as is (see [`check_supported`]).
pub fn inspect(x: &Xorriso, iso: &Path) -> Result<BootSetup, IsoError> {
    inspect_base(x, iso).map(|b| b.setup)
}

/// A base ISO inspected once: what [`inspect`] returns, plus its file list
/// and its boot configs extracted to a scratch folder, so that
/// [`Remaster::inspected`] spares the remaster a second inspection.
#[derive(Debug)]
pub struct BaseInspection {
    /// The ISO inspected.
    pub iso: PathBuf,
    /// Its boot setup.
    pub setup: BootSetup,
    files: Vec<IsoFile>,
    scratch: tempfile::TempDir,
}

/// [`inspect`], keeping what a [`Remaster`] of `iso` needs.
pub fn inspect_base(x: &Xorriso, iso: &Path) -> Result<BaseInspection, IsoError> {
    let scratch = tempfile::Builder::new().prefix("edgeiso-inspect.").tempdir().map_err(io_err(Path::new("/tmp")))?;
    let (setup, files) = inspect_with_files(x, iso, scratch.path())?;
    Ok(BaseInspection { iso: iso.to_path_buf(), setup, files, scratch })
}

/// [`inspect`], also returning the file list and leaving extracted configs
/// under `scratch/iso/`.
fn inspect_with_files(x: &Xorriso, iso: &Path, scratch: &Path) -> Result<(BootSetup, Vec<IsoFile>), IsoError> {
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
        let p = patch_config(kind, &String::from_utf8_lossy(&text), crate::EDGEISO_INITRD_ISO_PATH, &[]);
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

fn unpatchable(iso: &Path, config: &str, p: &CfgProblem) -> IsoError {
    IsoError::UnpatchableBootConfig {
        iso: iso.to_path_buf(),
        config: config.to_string(),
        line: p.line,
        reason: p.reason.clone(),
    }
}

/// A boot config the remaster changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedConfig {
    /// Path in the ISO.
    pub path: String,
    /// Initrd lines changed to also load the overlay.
    pub patched_lines: usize,
    /// Lines loading an initrd.
    pub initrd_lines: usize,
    /// Kernel entries (GRUB kernel commands, isolinux labels booting Linux
    /// and other kernel lines) in the config.
    pub kernel_lines: usize,
    /// Kernel entries given at least one of [`Remaster::kernel_args`].
    pub kernel_args_lines: usize,
    /// Which of [`Remaster::kernel_args`] were added to at least one entry
    /// (an entry that already has an argument does not get it again).
    pub kernel_args_added: Vec<String>,
}

/// What [`Remaster::run`] did.
#[derive(Debug, Clone)]
pub struct RemasterReport {
    /// The output ISO.
    pub output: PathBuf,
    /// The base's boot setup.
    pub base: BootSetup,
    /// The output's boot setup (read back).
    pub result: BootSetup,
    /// Boot configs patched to load the initramfs overlay.
    pub patched_configs: Vec<PatchedConfig>,
    /// The kernel arguments asked for ([`Remaster::kernel_args`]); what each
    /// config got is in [`PatchedConfig::kernel_args_added`].
    pub kernel_args: Vec<String>,
    /// Read-back verification.
    pub verification: Verification,
    /// Things worth telling the user (for example HFS+ dropped).
    pub notes: Vec<String>,
}

/// A remaster job: `base` + `overlay_dir` -> `output`.
#[derive(Debug, Clone)]
pub struct Remaster {
    /// The base installer ISO (never modified).
    pub base: PathBuf,
    /// Directory whose tree is laid onto the ISO root.
    pub overlay_dir: PathBuf,
    /// The new ISO; must not be the base.
    pub output: PathBuf,
    /// ISO path of the initramfs overlay inside `overlay_dir` to add to every
    /// boot entry (normally [`crate::EDGEISO_INITRD_ISO_PATH`]); `None` lays the
    /// files without touching boot configs.
    pub initrd_overlay: Option<String>,
    /// Fixed time for every date in the ISO (reproducible output); `None`
    /// leaves xorriso's defaults (current time).
    pub source_date_epoch: Option<u64>,
    /// Kernel arguments appended to every kernel entry of the patched boot
    /// configs that lacks them (see [`crate::bootcfg::patch_grub_cfg`] and
    /// [`crate::bootcfg::patch_isolinux_cfg`]); only with `initrd_overlay`.
    /// `edgeiso iso` passes the spec's `agent.liveKernelArgs` when
    /// `liveLoad` is on (`rd.neednet=1 ip=dhcp` by default), empty otherwise.
    pub kernel_args: Vec<String>,
    /// The xorriso to run.
    pub xorriso: Xorriso,
    /// The base as already inspected ([`inspect_base`]); `None`, or an
    /// inspection of another file, inspects it again.
    pub inspected: Option<std::sync::Arc<BaseInspection>>,
}

impl Remaster {
    /// A job with the initramfs overlay at `/boot/edgeiso.img` and the time
    /// from `SOURCE_DATE_EPOCH`.
    pub fn new(
        base: impl Into<PathBuf>,
        overlay_dir: impl Into<PathBuf>,
        output: impl Into<PathBuf>,
    ) -> Result<Self, IsoError> {
        let epoch = crate::source_date_epoch()
            .map_err(|e| IsoError::BadOverlay { path: PathBuf::from("SOURCE_DATE_EPOCH"), reason: e.to_string() })?;
        Ok(Remaster {
            base: base.into(),
            overlay_dir: overlay_dir.into(),
            output: output.into(),
            initrd_overlay: Some(crate::EDGEISO_INITRD_ISO_PATH.to_string()),
            source_date_epoch: epoch,
            kernel_args: Vec::new(),
            xorriso: Xorriso::find()?,
            inspected: None,
        })
    }

    /// Refuse to write the output over the base, by path or by inode.
    fn check_output_is_not_base(&self) -> Result<(), IsoError> {
        use std::os::unix::fs::MetadataExt;
        let base_meta = std::fs::metadata(&self.base).map_err(io_err(&self.base))?;
        let refuse = || IsoError::OutputIsBase { base: self.base.clone(), output: self.output.clone() };
        if let Ok(out_meta) = std::fs::metadata(&self.output) {
            if out_meta.dev() == base_meta.dev() && out_meta.ino() == base_meta.ino() {
                return Err(refuse());
            }
        }
        let canon_base = std::fs::canonicalize(&self.base).map_err(io_err(&self.base))?;
        let out_parent = self.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let (Ok(parent), Some(name)) = (std::fs::canonicalize(out_parent), self.output.file_name()) {
            if parent.join(name) == canon_base {
                return Err(refuse());
            }
        }
        Ok(())
    }

    /// Inspect, patch boot configs, write the output via a temporary file and
    /// a rename, then read it back and verify it.
    pub fn run(&self) -> Result<RemasterReport, IsoError> {
        self.check_output_is_not_base()?;
        for arg in &self.kernel_args {
            check_kernel_arg(arg).map_err(|reason| IsoError::BadKernelArg { arg: arg.clone(), reason })?;
        }
        if !self.overlay_dir.is_dir() {
            return Err(IsoError::BadOverlay { path: self.overlay_dir.clone(), reason: "not a directory".into() });
        }
        let x = &self.xorriso;
        let scratch =
            tempfile::Builder::new().prefix("edgeiso-remaster.").tempdir().map_err(io_err(Path::new("/tmp")))?;
        let inspected = match &self.inspected {
            Some(done) if done.iso == self.base => done.clone(),
            _ => std::sync::Arc::new(inspect_base(x, &self.base)?),
        };
        let (base_setup, base_entries) = (&inspected.setup, &inspected.files);
        let base_modes: BTreeMap<&str, (u32, bool)> =
            base_entries.iter().map(|f| (f.path.as_str(), (f.mode, f.is_dir))).collect();

        // Boot configs to replace: ISO path -> patched file on disk.
        let mut patched: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut patched_configs = Vec::new();
        if let Some(overlay_iso_path) = &self.initrd_overlay {
            check_supported(&self.base, base_setup)?;
            let local = self.overlay_dir.join(overlay_iso_path.trim_start_matches('/'));
            let bytes = std::fs::read(&local).map_err(|e| IsoError::BadOverlay {
                path: local.clone(),
                reason: format!("initramfs overlay {overlay_iso_path} missing from the overlay tree: {e}"),
            })?;
            crate::initramfs::check_initramfs(&bytes)
                .map_err(|source| IsoError::BadInitramfs { path: local.clone(), source })?;
            let patched_dir = scratch.path().join("patched");
            for cfg in base_setup.patchable_configs() {
                // A config the overlay itself supplies is the one to patch.
                let rel = cfg.path.trim_start_matches('/');
                let from_overlay = self.overlay_dir.join(rel);
                let source =
                    if from_overlay.is_file() { from_overlay } else { inspected.scratch.path().join("iso").join(rel) };
                let text = std::fs::read(&source).map_err(io_err(&source))?;
                let p = patch_config(cfg.kind, &String::from_utf8_lossy(&text), overlay_iso_path, &self.kernel_args);
                if let Some(problem) = p.problems.first() {
                    return Err(unpatchable(&self.base, &cfg.path, problem));
                }
                let dest = patched_dir.join(rel);
                std::fs::create_dir_all(dest.parent().expect("joined path has a parent")).map_err(io_err(&dest))?;
                std::fs::write(&dest, p.text.as_bytes()).map_err(io_err(&dest))?;
                patched_configs.push(PatchedConfig {
                    path: cfg.path.clone(),
                    patched_lines: p.patched_lines,
                    initrd_lines: p.initrd_lines,
                    kernel_lines: p.kernel_lines,
                    kernel_args_lines: p.kernel_args_lines,
                    kernel_args_added: p.kernel_args_added,
                });
                patched.insert(cfg.path.clone(), dest);
            }
        }

        let out_dir = self.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let out_name = self.output.file_name().ok_or_else(|| IsoError::BadOverlay {
            path: self.output.clone(),
            reason: "output has no file name".into(),
        })?;
        // Temp files of runs that died (killed, power cut) go first; a live
        // run's are locked and stay.
        let tmp_prefix = format!(".{}.partial-", out_name.to_string_lossy());
        fsutil::sweep_orphans(out_dir, |name| name.starts_with(&tmp_prefix));
        // xorriso must get an empty file: a non-empty one would be treated as a
        // medium to append to. Created 0600 (the ISO carries the site's
        // secrets) and flock-held while this run lives, so no other run sweeps
        // it (it gets its swept name only once locked).
        let (tmp, tmp_file) = fsutil::create_locked_as(out_dir, &tmp_prefix, "", Some(0o600))
            .map_err(|source| IsoError::Io { path: out_dir.to_path_buf(), source })?;
        let _cleanup = fsutil::RemoveOnDrop(tmp.clone());
        let modes = self.overlay_modes(&patched, &base_modes)?;

        let mut expected = overlay_files(&self.overlay_dir)?;
        for (iso_path, local) in &patched {
            expected.insert(iso_path.clone(), local.clone());
        }
        let sources = stat_sources(&expected)?;
        let started = std::time::Instant::now();

        let mut notes = Vec::new();
        let attempt = |drop_hfsplus: bool| -> Result<(), IsoError> {
            tmp_file.set_len(0).map_err(io_err(&tmp))?;
            let args = self.xorriso_args(base_setup, &patched, &modes, &tmp, drop_hfsplus);
            let mut cmd = x.command();
            if let Some(epoch) = self.source_date_epoch {
                // Also fixes -iso_nowtime and the GPT disk GUID (derived from the volume uuid).
                cmd.env("SOURCE_DATE_EPOCH", epoch.to_string());
            }
            tracing::debug!(program = %x.program().display(), ?args, "remastering");
            let out = with_writeback(&tmp_file, || cmd.args(&args).output()).map_err(|e| x.spawn_error(e))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(IsoError::ToolFailed {
                    tool: x.program().display().to_string(),
                    subject: format!("{} -> {}", self.base.display(), self.output.display()),
                    detail: tail(&String::from_utf8_lossy(&out.stderr), 8),
                })
            }
        };
        match attempt(false) {
            Ok(()) => {}
            // xorriso 1.5.4 cannot replay grub-mkrescue's HFS+/APM hybrid: its GPT
            // gap partitions come out overlapping. HFS+ only serves Intel Macs
            // booting the ISO; BIOS, UEFI, CD and USB boot do not need it.
            Err(IsoError::ToolFailed { detail, .. }) if base_setup.hfsplus && detail.contains("overlap") => {
                attempt(true)?;
                notes.push(format!(
                    "{}: HFS+/APM hybrid (Intel Mac boot) dropped: xorriso cannot replay it ({})",
                    self.base.display(),
                    detail.lines().find(|l| l.contains("overlap")).unwrap_or("").trim()
                ));
            }
            Err(e) => return Err(e),
        }

        let written = started.elapsed();
        // The output goes to disk while it is read back (from the page cache).
        let flushing = {
            let tmp = tmp.clone();
            std::thread::spawn(move || File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err(&tmp)))
        };
        // Inspecting the output (xorriso and mtools runs) overlaps the comparison.
        let (result_setup, bytes) = std::thread::scope(|s| {
            let inspecting = s.spawn(|| {
                let s2 = tempfile::Builder::new()
                    .prefix("edgeiso-readback.")
                    .tempdir()
                    .map_err(io_err(Path::new("/tmp")))?;
                inspect_with_files(x, &tmp, s2.path()).map(|(setup, _)| setup)
            });
            let bytes = check_files(x, &tmp, &sources);
            (inspecting.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), bytes)
        });
        let as_output = |e| match e {
            IsoError::VerifyFailed { reason, .. } => IsoError::VerifyFailed { iso: self.output.clone(), reason },
            other => other,
        };
        let bytes = bytes.map_err(as_output)?;
        let result_setup = result_setup?;
        let verification = verification(&tmp, base_setup, &result_setup, sources.len(), bytes).map_err(as_output)?;
        let verified = started.elapsed();
        join(flushing)?;
        tracing::debug!(?written, ?verified, synced = ?started.elapsed(), "remaster timings (from xorriso's start)");
        std::fs::rename(&tmp, &self.output).map_err(io_err(&self.output))?;
        Ok(RemasterReport {
            output: self.output.clone(),
            base: base_setup.clone(),
            result: result_setup,
            patched_configs,
            kernel_args: self.kernel_args.clone(),
            verification,
            notes,
        })
    }

    fn xorriso_args(
        &self,
        setup: &BootSetup,
        patched: &BTreeMap<String, PathBuf>,
        modes: &BTreeMap<u32, Vec<String>>,
        tmp: &Path,
        drop_hfsplus: bool,
    ) -> Vec<OsString> {
        let mut a: Vec<OsString> = ["-abort_on", "FAILURE", "-return_with", "SORRY", "32", "-report_about", "WARNING"]
            .into_iter()
            .map(os)
            .collect();
        a.extend([os("-indev"), stdio(&self.base), os("-outdev"), stdio(tmp)]);
        // xorriso's default fsyncs the output every 16 MiB while writing,
        // which made it slower than `cp` of the same bytes; `run` syncs once
        // at the end, while it reads the result back.
        a.extend([os("-stdio_sync"), os("off")]);
        // xorriso notices the end of its write on its pacifier's tick, 1 s
        // by default: 0.1 s measured ~7% faster (docs/benchmarks.md).
        a.extend([os("-pacifier"), os("interval=0.1")]);
        if setup.joliet {
            // Loading an ISO drops its Joliet tree unless asked to write one.
            a.extend([os("-joliet"), os("on")]);
        }
        a.extend([os("-map"), self.overlay_dir.as_os_str().to_owned(), os("/")]);
        for (iso_path, local) in patched {
            a.extend([os("-map"), local.as_os_str().to_owned(), os(iso_path)]);
        }
        // Owners from the build machine mean nothing on the target.
        a.extend(["-chown_r", "0", "/", "--", "-chgrp_r", "0", "/", "--"].map(os));
        // Nor do its modes (umask, a 0700 temp dir mapped onto /): see
        // `overlay_modes`. Paths are literal, not patterns.
        a.extend([os("-iso_rr_pattern"), os("off")]);
        for (mode, paths) in modes {
            a.extend([os("-chmod"), os(format!("{mode:04o}"))]);
            a.extend(paths.iter().map(os));
            a.push(os("--"));
        }
        // Replays the base's El Torito, MBR/GPT, appended partitions and
        // volume uuid (grub-mkrescue's core image searches the ISO by that uuid).
        a.extend([os("-boot_image"), os("any"), os("replay")]);
        if drop_hfsplus {
            a.extend([os("-hfsplus"), os("off")]);
        }
        if let Some(e) = self.source_date_epoch {
            let at = format!("={e}");
            for which in ["c", "m"] {
                a.extend([os("-volume_date"), os(which), os(&at)]);
            }
            for which in ["x", "f"] {
                a.extend([os("-volume_date"), os(which), os("default")]);
            }
            a.extend([os("-volume_date"), os("all_file_dates"), os(&at)]);
        }
        a.push(os("-commit"));
        a
    }
}

impl Remaster {
    /// The Rock Ridge mode of every path the remaster adds or replaces,
    /// grouped by mode, so the output does not depend on the host's umask:
    /// `/` keeps the base's mode (0755 if unknown), directories new to the ISO
    /// get 0755, overlay files 0755 when their owner may execute them (the
    /// agent), 0600 when others may not read them (render's secrets: Harbor's
    /// password and TLS key, credential-bearing config.yaml and hosts.toml,
    /// which must not become readable by every user of the live system),
    /// else 0644; patched configs the base file's mode. Directories the base
    /// already has keep their mode (`-map` leaves them alone), as do all
    /// other files of the base.
    fn overlay_modes(
        &self,
        patched: &BTreeMap<String, PathBuf>,
        base: &BTreeMap<&str, (u32, bool)>,
    ) -> Result<BTreeMap<u32, Vec<String>>, IsoError> {
        use std::os::unix::fs::PermissionsExt;
        let mut modes: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let root = base.get("/").filter(|(_, dir)| *dir).map_or(0o755, |(m, _)| *m);
        modes.entry(root).or_default().push("/".into());
        for entry in walkdir::WalkDir::new(&self.overlay_dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| IsoError::Io {
                path: self.overlay_dir.clone(),
                source: e.into_io_error().unwrap_or_else(|| io::Error::other("walk failed")),
            })?;
            let rel = entry.path().strip_prefix(&self.overlay_dir).expect("walkdir yields paths under its root");
            let iso_path = format!("/{}", rel.to_string_lossy());
            if patched.contains_key(&iso_path) {
                continue;
            }
            let mode = if entry.file_type().is_dir() {
                if base.get(iso_path.as_str()).is_some_and(|(_, dir)| *dir) {
                    continue;
                }
                0o755
            } else if entry.file_type().is_file() {
                let meta = entry.metadata().map_err(|e| IsoError::Io {
                    path: entry.path().to_path_buf(),
                    source: e.into_io_error().unwrap_or_else(|| io::Error::other("stat failed")),
                })?;
                let mode = meta.permissions().mode();
                if mode & 0o100 != 0 {
                    0o755
                } else if mode & 0o004 == 0 {
                    0o600
                } else {
                    0o644
                }
            } else {
                continue;
            };
            modes.entry(mode).or_default().push(iso_path);
        }
        for iso_path in patched.keys() {
            let mode = base.get(iso_path.as_str()).map_or(0o644, |(m, _)| *m);
            modes.entry(mode).or_default().push(iso_path.clone());
        }
        Ok(modes)
    }
}

/// Run `work` (xorriso writing the output) while starting the disk writeback
/// of what it has written so far every 200 ms (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`: asynchronous, it waits for nothing). The disk then
/// flushes while xorriso is still copying, instead of all of it at the final
/// fsync: `cp` gets that overlap from the kernel's in-kernel copy, xorriso's
/// own `-stdio_sync` fsyncs synchronously every 16 MiB and is slower still.
/// Measured: xorriso's 2 GiB write then fsync 4.8-5.3 s; overlapped, see
/// docs/benchmarks.md.
fn with_writeback<T>(file: &File, work: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let fd = file.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                // SAFETY: `fd` stays open for the whole scope (`file` outlives
                // it); the call only reads its arguments. A failure (a file
                // system without it) just means no early writeback.
                unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// Regular files under `dir`, keyed by ISO path.
fn overlay_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, IsoError> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| IsoError::Io {
            path: dir.to_path_buf(),
            source: e.into_io_error().unwrap_or_else(|| io::Error::other("walk failed")),
        })?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
            files.insert(format!("/{}", rel.to_string_lossy()), entry.path().to_path_buf());
        }
    }
    Ok(files)
}

/// What the read-back verification checked.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Files found in the output with exactly their source's bytes.
    pub files_checked: usize,
    /// Bytes compared.
    pub bytes_checked: u64,
    /// El Torito boot images present in the output.
    pub boot_images: Vec<String>,
    /// The output's System Area summary.
    pub system_area: String,
}

/// Where a file's data is in an ISO image: `(byte offset, length)` per
/// section, in file order (a file of 4 GiB or more has several sections).
pub type Extents = Vec<(u64, u64)>;

/// Where the data of every regular file of `iso` is, from
/// `-find / -type f -exec report_sections`. Offsets count from the start of
/// the image file, which holds for a single-session image such as
/// [`Remaster::run`] writes.
pub fn file_extents(x: &Xorriso, iso: &Path) -> Result<BTreeMap<String, Extents>, IsoError> {
    let out = x.run(
        iso,
        &[
            os("-indev"),
            stdio(iso),
            os("-find"),
            os("/"),
            os("-type"),
            os("f"),
            os("-exec"),
            os("report_sections"),
            os("--"),
        ],
    )?;
    Ok(parse_sections(&out))
}

/// Parse `report_sections` lines:
/// `File data lba:  0 ,     5344 ,        3 ,     5000 , '/a.bin'`
/// (extent number, start block, blocks, bytes in this section, path).
fn parse_sections(report: &str) -> BTreeMap<String, Extents> {
    let mut sections: BTreeMap<String, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for line in report.lines() {
        let Some(rest) = line.strip_prefix("File data lba:") else { continue };
        let fields: Vec<&str> = rest.splitn(5, ',').collect();
        let [xt, lba, _blocks, size, path] = fields[..] else { continue };
        let (Ok(xt), Ok(lba), Ok(size)) =
            (xt.trim().parse::<u64>(), lba.trim().parse::<u64>(), size.trim().parse::<u64>())
        else {
            continue;
        };
        sections.entry(unquote(path.trim())).or_default().push((xt, lba * SECTOR, size));
    }
    sections
        .into_iter()
        .map(|(path, mut s)| {
            s.sort_unstable();
            (path, s.into_iter().map(|(_, offset, len)| (offset, len)).collect())
        })
        .collect()
}

/// A source file and the metadata it had before xorriso read it.
#[derive(Debug, Clone)]
struct Source {
    local: PathBuf,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

fn stat_sources(expected: &BTreeMap<String, PathBuf>) -> Result<BTreeMap<String, Source>, IsoError> {
    expected
        .iter()
        .map(|(iso_path, local)| {
            let meta = std::fs::metadata(local).map_err(io_err(local))?;
            Ok((iso_path.clone(), Source { local: local.clone(), size: meta.len(), modified: meta.modified().ok() }))
        })
        .collect()
}

fn join<T>(handle: std::thread::JoinHandle<T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Compare every source file with its data in `iso`, byte for byte, reading
/// the ISO straight at the files' extents (one open file, positioned reads,
/// 1 MiB blocks spread over up to 4 threads; two 1 MiB buffers stay in the
/// CPU's caches where two of 8 MiB did not: 0.45 s instead of 1.2 s for
/// 2 GiB). Err names the first file that differs, with the offset.
fn compare_extents(
    iso: &Path,
    sources: &BTreeMap<String, Source>,
    extents: &BTreeMap<String, Extents>,
) -> Result<u64, String> {
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 1 << 20;
    struct Job {
        file: usize,
        iso_offset: u64,
        file_offset: u64,
        len: u64,
    }
    let image = File::open(iso).map_err(|e| format!("{}: {e}", iso.display()))?;
    let image_len = image.metadata().map_err(|e| format!("{}: {e}", iso.display()))?.len();
    let mut files: Vec<(&String, &Source, File)> = Vec::new();
    let mut jobs = Vec::new();
    for (iso_path, src) in sources {
        let ranges = extents.get(iso_path).ok_or_else(|| format!("{iso_path} is missing"))?;
        let size: u64 = ranges.iter().map(|r| r.1).sum();
        if size != src.size {
            return Err(format!("{iso_path} has {size} bytes, {} has {}", src.local.display(), src.size));
        }
        if let Some((offset, len)) = ranges.iter().find(|(o, l)| o + l > image_len) {
            return Err(format!(
                "{iso_path}: its data ({len} bytes at byte {offset}) runs past the end of the image ({image_len} bytes)"
            ));
        }
        let local = File::open(&src.local).map_err(|e| format!("{}: {e}", src.local.display()))?;
        let mut file_offset = 0;
        for &(start, len) in ranges {
            let mut done = 0;
            while done < len {
                let n = BLOCK.min(len - done);
                jobs.push(Job { file: files.len(), iso_offset: start + done, file_offset: file_offset + done, len: n });
                done += n;
            }
            file_offset += len;
        }
        files.push((iso_path, src, local));
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // The first difference in (file, offset) order among those found.
    let first: std::sync::Mutex<Option<(usize, u64, String)>> = std::sync::Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut a = vec![0u8; BLOCK as usize];
                let mut b = vec![0u8; BLOCK as usize];
                while !failed.load(Ordering::Relaxed) {
                    let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    let (iso_path, src, local) = &files[job.file];
                    let (a, b) = (&mut a[..job.len as usize], &mut b[..job.len as usize]);
                    let problem =
                        match (image.read_exact_at(a, job.iso_offset), local.read_exact_at(b, job.file_offset)) {
                            (Err(e), _) => Some((job.file_offset, format!("{iso_path}: reading the image: {e}"))),
                            (_, Err(e)) => Some((job.file_offset, format!("{}: {e}", src.local.display()))),
                            (Ok(()), Ok(())) if a != b => {
                                let at = job.file_offset
                                    + a.iter().zip(b.iter()).position(|(x, y)| x != y).unwrap_or(0) as u64;
                                Some((
                                    at,
                                    format!(
                                        "{iso_path}: differs from {} at byte {at} (image byte {})",
                                        src.local.display(),
                                        job.iso_offset + at - job.file_offset
                                    ),
                                ))
                            }
                            _ => None,
                        };
                    if let Some((at, reason)) = problem {
                        failed.store(true, Ordering::Relaxed);
                        let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
                        if first.as_ref().is_none_or(|(f, o, _)| (job.file, at) < (*f, *o)) {
                            *first = Some((job.file, at, reason));
                        }
                    }
                }
            });
        }
    });
    if let Some((_, _, reason)) = first.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(reason);
    }
    Ok(sources.values().map(|s| s.size).sum())
}

/// Read the boot equipment of `iso` back.
fn boot_report(x: &Xorriso, iso: &Path) -> Result<BootSetup, IsoError> {
    let mut result = BootSetup::default();
    let report = x.run(
        iso,
        &[os("-indev"), stdio(iso), os("-report_el_torito"), os("cmd"), os("-report_system_area"), os("plain")],
    )?;
    parse_el_torito(&report, &mut result);
    parse_system_area(&report, &mut result);
    Ok(result)
}

/// The El Torito images and partition tables of `base` must be in `result`.
fn check_boot(base: &BootSetup, result: &BootSetup) -> Result<(), String> {
    if base.bios_boot_image.is_some() && result.bios_boot_image != base.bios_boot_image {
        return Err(format!("BIOS El Torito image {:?} became {:?}", base.bios_boot_image, result.bios_boot_image));
    }
    if base.efi_boot_image.is_some() && result.efi_boot_image.is_none() {
        return Err("the UEFI El Torito image is gone".into());
    }
    if base.gpt && !result.gpt {
        return Err("the GPT is gone".into());
    }
    if base.mbr && !result.mbr {
        return Err("the MBR partition table is gone".into());
    }
    if base.appended_efi_partition && !result.appended_efi_partition {
        return Err("the appended EFI partition is gone".into());
    }
    if base.volume_id != result.volume_id {
        return Err(format!("volume id {:?} became {:?}", base.volume_id, result.volume_id));
    }
    Ok(())
}

/// Every source's bytes must be in `iso` at the file's extents, and the
/// sources must be as they were before xorriso read them. Returns the bytes
/// compared.
fn check_files(x: &Xorriso, iso: &Path, sources: &BTreeMap<String, Source>) -> Result<u64, IsoError> {
    let fail = |reason: String| IsoError::VerifyFailed { iso: iso.to_path_buf(), reason };
    let t = std::time::Instant::now();
    let extents = file_extents(x, iso)?;
    let listed = t.elapsed();
    let bytes = compare_extents(iso, sources, &extents).map_err(fail)?;
    tracing::debug!(?listed, compared = ?t.elapsed() - listed, bytes, "read back the overlay at its extents");
    // A source rewritten while xorriso read it could differ from what the
    // comparison read.
    for (iso_path, src) in sources {
        let meta = std::fs::metadata(&src.local).map_err(io_err(&src.local))?;
        if meta.len() != src.size || meta.modified().ok() != src.modified {
            return Err(fail(format!("{iso_path}: {} changed while remastering", src.local.display())));
        }
    }
    Ok(bytes)
}

/// The verification record, once the files are checked and the output's
/// boot setup (`result`) is known to keep the base's.
fn verification(
    iso: &Path,
    base: &BootSetup,
    result: &BootSetup,
    files_checked: usize,
    bytes_checked: u64,
) -> Result<Verification, IsoError> {
    check_boot(base, result).map_err(|reason| IsoError::VerifyFailed { iso: iso.to_path_buf(), reason })?;
    let mut v = Verification { files_checked, bytes_checked, ..Verification::default() };
    v.boot_images.extend(result.bios_boot_image.clone());
    v.boot_images.extend(result.efi_boot_image.as_ref().map(|e| match e {
        EfiImage::File(p) => p.clone(),
        EfiImage::Range { offset, len } => format!("EFI image at byte {offset} ({len} bytes)"),
    }));
    v.system_area = result.system_area.clone();
    Ok(v)
}

/// Read `iso` back: every `expected` file (ISO path -> local file) must be
/// there with exactly the local file's bytes (hence its sha256); the El
/// Torito images and the partition tables of `base` must still be present.
///
/// The ISO's copies are read straight at their extents (one xorriso run
/// lists them) and compared byte for byte with the local files: cheaper than
/// hashing both sides, and a mismatch names the file and the first differing
/// byte.
pub fn verify(
    x: &Xorriso,
    iso: &Path,
    base: &BootSetup,
    expected: &BTreeMap<String, PathBuf>,
) -> Result<Verification, IsoError> {
    let sources = stat_sources(expected)?;
    let bytes = check_files(x, iso, &sources)?;
    verification(iso, base, &boot_report(x, iso)?, sources.len(), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lsdl_modes() {
        assert_eq!(parse_mode("-rw-r--r--"), Some(0o644));
        assert_eq!(parse_mode("drwxr-xr-x"), Some(0o755));
        assert_eq!(parse_mode("dr-xr-xr-x"), Some(0o555));
        assert_eq!(parse_mode("-rwsr-xr-T"), Some(0o5754));
        assert_eq!(parse_mode("junk"), None);
    }

    #[test]
    fn unquote_handles_xorriso_quoting() {
        assert_eq!(unquote("'/efi.img'"), "/efi.img");
        assert_eq!(unquote("'it'\"'\"'s'"), "it's");
        assert_eq!(unquote("plain"), "plain");
    }

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
    fn parses_report_sections_in_extent_order() {
        let report = "Report layout: xt , Startlba ,   Blocks , Sectsize , ISO image path\n\
File data lba:  0 ,     5343 ,        1 ,       64 , '/EDGEISO-BASE.txt'\n\
File data lba:  1 ,  2102000 ,  1000000 , 2048000000 , '/big, part'\n\
File data lba:  0 ,       40 ,  2097151 , 4294965248 , '/big, part'\n\
File data lba:  0 ,      117 ,        0 ,        0 , '/empty'\n\
File data lba:  0 ,     7789 ,        1 ,        3 , '/sub/it'\"'\"'s x.txt'\n";
        let e = parse_sections(report);
        assert_eq!(e["/EDGEISO-BASE.txt"], [(5343 * 2048, 64)]);
        assert_eq!(e["/big, part"], [(40 * 2048, 4294965248), (2102000 * 2048, 2048000000)]);
        assert_eq!(e["/empty"], [(117 * 2048, 0)]);
        assert_eq!(e["/sub/it's x.txt"], [(7789 * 2048, 3)]);
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn compare_names_the_differing_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&a, b"hello").unwrap();
        std::fs::write(&b, &big).unwrap();
        // An "image": 100 bytes of junk, then b split in two sections around 7 more, then a.
        let cut = 12_345_678;
        let mut image = vec![0xeeu8; 100];
        image.extend_from_slice(&big[..cut]);
        image.extend_from_slice(&[0xdd; 7]);
        image.extend_from_slice(&big[cut..]);
        image.extend_from_slice(b"hello");
        let iso = dir.path().join("image");
        std::fs::write(&iso, &image).unwrap();
        let mut expected = BTreeMap::new();
        expected.insert("/a".to_string(), a.clone());
        expected.insert("/b".to_string(), b.clone());
        let sources = stat_sources(&expected).unwrap();
        let mut extents = BTreeMap::new();
        let after = 100 + big.len() as u64 + 7;
        extents.insert("/a".to_string(), vec![(after, 5)]);
        extents.insert("/b".to_string(), vec![(100, cut as u64), (100 + cut as u64 + 7, (big.len() - cut) as u64)]);
        assert_eq!(compare_extents(&iso, &sources, &extents), Ok(big.len() as u64 + 5));

        // One byte of /b's second section flipped.
        let mut bad = image.clone();
        bad[100 + cut + 7 + 1_000_000] ^= 1;
        std::fs::write(&iso, &bad).unwrap();
        let err = compare_extents(&iso, &sources, &extents).unwrap_err();
        assert!(err.starts_with("/b: differs from") && err.contains(&format!("at byte {}", cut + 1_000_000)), "{err}");

        // Missing, wrong size, past the end.
        std::fs::write(&iso, &image).unwrap();
        let mut missing = extents.clone();
        missing.remove("/a");
        assert_eq!(compare_extents(&iso, &sources, &missing).unwrap_err(), "/a is missing");
        let mut short = extents.clone();
        short.insert("/a".to_string(), vec![(after, 4)]);
        assert!(compare_extents(&iso, &sources, &short).unwrap_err().contains("/a has 4 bytes"));
        let mut past = extents;
        past.insert("/a".to_string(), vec![(after + 1, 5)]);
        assert!(compare_extents(&iso, &sources, &past).unwrap_err().contains("runs past the end"));
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
