//! Read-back verification: where each file's data is in an ISO (its
//! extents, from xorriso's `report_sections`), the byte-for-byte comparison
//! with the source files, and the check that the base's boot equipment
//! survived.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::boot::{boot_report, SECTOR};
use super::error::io_err;
use super::xorriso::{os, stdio, unquote};
use super::{BootSetup, EfiImage, IsoError, Xorriso};

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
/// [`Remaster::run`](super::Remaster::run) writes.
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
pub(super) struct Source {
    local: PathBuf,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

pub(super) fn stat_sources(expected: &BTreeMap<String, PathBuf>) -> Result<BTreeMap<String, Source>, IsoError> {
    expected
        .iter()
        .map(|(iso_path, local)| {
            let meta = std::fs::metadata(local).map_err(io_err(local))?;
            Ok((iso_path.clone(), Source { local: local.clone(), size: meta.len(), modified: meta.modified().ok() }))
        })
        .collect()
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
pub(super) fn check_files(x: &Xorriso, iso: &Path, sources: &BTreeMap<String, Source>) -> Result<u64, IsoError> {
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
pub(super) fn verification(
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
}
