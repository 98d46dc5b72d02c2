//! The site area: a fixed-size region every ISO edgeiso builds reserves for
//! one site's settings, so that one golden ISO becomes many sites by a write
//! of at most the area's size, in place (`edgeiso personalize`; decision
//! 0014, `docs/iso-layout.md`).
//!
//! The area is a file of the ISO ([`crate::paths::iso::SITE_AREA`]), a single
//! extent as every ISO 9660 file is, that every boot entry loads as its last
//! initrd. The kernel unpacks initrds in order and skips zero bytes between
//! archives (init/initramfs.c), so:
//!
//! - **empty**, the area is all zeros: the kernel unpacks nothing from it
//!   and the boot is the golden's;
//! - **written**, it is one gzip-compressed `newc` cpio archive (gzip: the
//!   one compression every kernel's initramfs unpacker has) followed by
//!   zeros up to its size. The kernel unpacks it over the initramfs overlay:
//!   - [`MANIFEST`]: what was written, by whom, for which site (no secret),
//!     and every other member's mode, size and sha256;
//!   - [`FILES`]`/edgeiso/site/...`: the site's render output, which the
//!     hook copies over the medium's into [`crate::paths::live::SITE_DIR`];
//!   - [`OEM`]`/*.yaml`: the site's user-data for Kairos, which the hook puts
//!     into the live root's `/oem` (Kairos reads `/oem` after the medium's
//!     `/config.yaml`, later files winning; decision 0014);
//!   - [`crate::paths::initrd::AGENT_CONFIG`]: the live load's configuration,
//!     over the overlay's.
//!
//! The size is fixed when the ISO is built; `overlay.json` records it (key
//! `siteArea`), which is also how `personalize` tells an ISO that has an area
//! from one that does not.

/// The area's size when none is asked for: room for a site's rendered
/// settings (user-data, agent configuration, certificates) compressed.
pub const DEFAULT_BYTES: u64 = 1 << 20;
/// Smallest area: a site's certificates alone need a few KiB.
pub const MIN_BYTES: u64 = 64 << 10;
/// Largest area: a boot loader reads the whole initrd into memory.
pub const MAX_BYTES: u64 = 64 << 20;
/// ISO 9660 blocks are 2048 bytes; the area is a whole number of them so
/// that it never shares a block with another file.
pub const BLOCK: u64 = 2048;
/// The layout version written into `overlay.json` and [`MANIFEST`].
pub const FORMAT: u32 = 1;

/// Where the area's archive unpacks, in the initramfs root.
pub const ROOT: &str = "edgeiso-site";
/// What the archive holds: JSON, see [`AreaManifest`].
pub const MANIFEST: &str = "edgeiso-site/area.json";
/// The site's files, each at its ISO path below this folder
/// (`edgeiso-site/files/edgeiso/site/agent.yaml`).
pub const FILES: &str = "edgeiso-site/files";
/// The site's cloud-config files for the live root's `/oem`.
pub const OEM: &str = "edgeiso-site/oem";
/// The site file as given (its paths made absolute; it holds no secret):
/// what `personalize --show` prints.
pub const SITE_FILE: &str = "edgeiso-site/site.yaml";

/// Whether an area may hold a file at `path` (a path in its archive): the
/// site's render output, its `/oem` cloud-configs, the live load's
/// configuration. Nothing else: the kernel would unpack anything anywhere.
pub fn allowed_file(path: &str) -> bool {
    let plain = !path.is_empty() && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    let site = format!("{FILES}{}/", crate::paths::iso::SITE_DIR);
    let oem = path.strip_prefix(&format!("{OEM}/")).is_some_and(|name| !name.contains('/') && name.ends_with(".yaml"));
    plain && (path.starts_with(&site) || oem || path == crate::paths::initrd::AGENT_CONFIG || path == SITE_FILE)
}

/// Whether `bytes` is a size an area may have, and why not.
pub fn check_size(bytes: u64) -> Result<(), String> {
    if !(MIN_BYTES..=MAX_BYTES).contains(&bytes) {
        return Err(format!(
            "a site area must be {} KiB to {} MiB, not {bytes} bytes",
            MIN_BYTES >> 10,
            MAX_BYTES >> 20
        ));
    }
    if !bytes.is_multiple_of(BLOCK) {
        return Err(format!("a site area must be a multiple of {BLOCK} bytes (ISO blocks), not {bytes}"));
    }
    Ok(())
}

/// The area's table of contents ([`MANIFEST`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AreaManifest {
    pub format: u32,
    /// The site these settings are for.
    pub site: String,
    /// The golden ISO's site (its spec's `name`).
    pub golden: String,
    /// The tool that wrote it (`edgeiso 0.1.0`).
    pub tool: String,
    /// Every file of the archive but this manifest: its path in the
    /// archive, mode, size and sha256; a reader checks every one before it
    /// uses any.
    pub files: Vec<AreaFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AreaFile {
    /// Path in the archive (`edgeiso-site/files/edgeiso/site/agent.yaml`).
    pub path: String,
    pub mode: u32,
    pub bytes: u64,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_area_holds_site_files_oem_configs_and_the_live_config_only() {
        assert!(allowed_file("edgeiso-site/files/edgeiso/site/agent.yaml"));
        assert!(allowed_file("edgeiso-site/files/edgeiso/site/harbor/ca.crt"));
        assert!(allowed_file("edgeiso-site/oem/99_edgeiso-site.yaml"));
        assert!(allowed_file("edgeiso/agent-live.yaml"));
        for no in [
            "edgeiso-site/files/config.yaml",
            "edgeiso-site/files/edgeiso/site/../../../etc/shadow",
            "edgeiso-site/oem/x/y.yaml",
            "edgeiso-site/oem/run.sh",
            "etc/passwd",
            "lib/dracut/hooks/pre-pivot/00-evil.sh",
            "",
        ] {
            assert!(!allowed_file(no), "{no}");
        }
    }

    #[test]
    fn sizes_are_whole_blocks_within_bounds() {
        check_size(DEFAULT_BYTES).unwrap();
        check_size(MIN_BYTES).unwrap();
        check_size(MAX_BYTES).unwrap();
        assert!(check_size(MIN_BYTES - BLOCK).unwrap_err().contains("64 KiB"));
        assert!(check_size(MAX_BYTES + BLOCK).is_err());
        assert!(check_size(DEFAULT_BYTES + 1).unwrap_err().contains("2048"));
    }
}
