//! The site area of an ISO edgeiso built (`edgeiso_contract::site_area`):
//! find it, read what it holds, and write a site's files into it in place.
//!
//! Finding it costs one `xorriso` listing of the ISO's files and two reads
//! (`/edgeiso/overlay.json`, the area): nothing grows with the bundle.
//! Writers hold an exclusive `flock` on the ISO, readers a shared one, so a
//! second `personalize` waits for the first (up to [`LOCK_WAIT`]) and a
//! `--show` never sees half an area.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgeiso_contract::paths::iso;
use edgeiso_contract::site_area::{self, AreaFile, AreaManifest};
use sha2::{Digest as _, Sha256};

use crate::initramfs::{check_initramfs, Compression, InitramfsBuilder, InitramfsError};
use crate::iso::{file_extents, IsoError, Xorriso};

/// How long a writer waits for another to finish with the same ISO.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);
/// `overlay.json` lists a few hundred files at most.
const MAX_OVERLAY_JSON: u64 = 16 << 20;
/// What an area's archive may unpack to: the area's largest size, decompressed
/// at most 16:1. A crafted ISO must not make a reader allocate more.
const MAX_UNPACKED: u64 = 16 * site_area::MAX_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum SiteAreaError {
    #[error("{}: {why}", iso.display())]
    NoArea { iso: PathBuf, why: String },
    #[error(transparent)]
    Iso(#[from] IsoError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the site's settings take {needed} bytes, the site area holds {area} (build the golden with a larger --site-area-size)", iso.display())]
    TooLarge { iso: PathBuf, needed: u64, area: u64 },
    #[error("{}: another edgeiso is using this ISO's site area; gave up after {waited} s", iso.display())]
    Locked { iso: PathBuf, waited: u64 },
    #[error("{}: the site area is damaged: {why}", iso.display())]
    Corrupt { iso: PathBuf, why: String },
    #[error(transparent)]
    Archive(#[from] InitramfsError),
    #[error(
        "{path:?} cannot go into a site area (only the site's files, /oem cloud-configs and the live configuration)"
    )]
    NotAllowed { path: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SiteAreaError + '_ {
    move |source| SiteAreaError::Io { path: path.to_owned(), source }
}

/// Where an ISO's site area is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteArea {
    pub iso: PathBuf,
    /// Byte offset of the area in the image file.
    pub offset: u64,
    pub bytes: u64,
    /// The golden's site name (`overlay.json` `site`).
    pub golden: String,
    /// How long to wait for another reader or writer ([`LOCK_WAIT`]).
    pub lock_wait: Duration,
    /// Where every file of the ISO is (from the same listing).
    extents: std::collections::BTreeMap<String, crate::iso::Extents>,
}

/// What an area holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AreaContent {
    /// All zeros: the golden boots as built.
    Empty,
    /// A site's files, each checked against the manifest.
    Written { manifest: AreaManifest, files: Vec<(AreaFile, Vec<u8>)> },
}

/// One file to put into an area: its path in the archive
/// (`contract::site_area`), mode and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// Find the site area of `iso`, refusing an ISO without one.
pub fn locate(x: &Xorriso, iso: &Path) -> Result<SiteArea, SiteAreaError> {
    let no_area = |why: &str| SiteAreaError::NoArea { iso: iso.to_owned(), why: why.to_owned() };
    let extents = file_extents(x, iso)?;
    let single = |path: &str| match extents.get(path).map(Vec::as_slice) {
        Some([one]) => Some(*one),
        _ => None,
    };
    let Some((json_at, json_len)) = single(iso::OVERLAY_JSON) else {
        return Err(no_area(&format!("no {}: not an ISO edgeiso built", iso::OVERLAY_JSON)));
    };
    if json_len > MAX_OVERLAY_JSON {
        return Err(no_area(&format!("{} is {json_len} bytes, not one edgeiso wrote", iso::OVERLAY_JSON)));
    }
    let file = File::open(iso).map_err(io_at(iso))?;
    let mut json = vec![0u8; json_len as usize];
    file.read_exact_at(&mut json, json_at).map_err(io_at(iso))?;
    let overlay: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| no_area(&format!("{} is not JSON: {e}", iso::OVERLAY_JSON)))?;
    let area = &overlay["siteArea"];
    if area.is_null() {
        return Err(no_area(
            "no site area (built by an edgeiso older than personalize): rebuild the golden with `edgeiso iso` or `edgeiso build`",
        ));
    }
    let (Some(path), Some(bytes), Some(format)) =
        (area["path"].as_str(), area["bytes"].as_u64(), area["format"].as_u64())
    else {
        return Err(no_area("overlay.json's siteArea lacks path, bytes or format"));
    };
    if format != u64::from(site_area::FORMAT) || path != iso::SITE_AREA {
        return Err(no_area(&format!(
            "site area format {format} at {path}; this edgeiso knows format {} at {}",
            site_area::FORMAT,
            iso::SITE_AREA
        )));
    }
    site_area::check_size(bytes).map_err(|why| no_area(&why))?;
    let Some((offset, len)) = single(iso::SITE_AREA) else {
        return Err(no_area(&format!("overlay.json names a site area but the ISO has no {}", iso::SITE_AREA)));
    };
    if len != bytes || !offset.is_multiple_of(site_area::BLOCK) {
        return Err(no_area(&format!("{} is {len} bytes at {offset}; overlay.json says {bytes}", iso::SITE_AREA)));
    }
    let image_len = file.metadata().map_err(io_at(iso))?.len();
    if offset + bytes > image_len {
        return Err(no_area(&format!("the site area ends past the image ({image_len} bytes): a truncated ISO?")));
    }
    let golden = overlay["site"].as_str().unwrap_or_default().to_owned();
    Ok(SiteArea { iso: iso.to_owned(), offset, bytes, golden, lock_wait: LOCK_WAIT, extents })
}

/// Lock `file` (`exclusive` or shared), waiting up to `wait`.
fn lock(file: &File, iso: &Path, exclusive: bool, wait: Duration) -> Result<(), SiteAreaError> {
    let deadline = Instant::now() + wait;
    loop {
        let got = if exclusive { file.try_lock() } else { file.try_lock_shared() };
        match got {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SiteAreaError::Locked { iso: iso.to_owned(), waited: wait.as_secs() })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(SiteAreaError::Io { path: iso.to_owned(), source: e }),
        }
    }
}

impl SiteArea {
    /// The bytes of the ISO's file at `path` (an ISO path), when it has one
    /// of at most `max` bytes: the golden's own files, read in place.
    pub fn iso_file(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, SiteAreaError> {
        let Some(sections) = self.extents.get(path) else { return Ok(None) };
        let total: u64 = sections.iter().map(|(_, len)| len).sum();
        if total > max {
            return Err(SiteAreaError::NoArea {
                iso: self.iso.clone(),
                why: format!("{path} is {total} bytes, more than the {max} it may be"),
            });
        }
        let file = File::open(&self.iso).map_err(io_at(&self.iso))?;
        let mut out = Vec::with_capacity(total as usize);
        for (offset, len) in sections {
            let mut buf = vec![0u8; *len as usize];
            file.read_exact_at(&mut buf, *offset).map_err(io_at(&self.iso))?;
            out.extend_from_slice(&buf);
        }
        Ok(Some(out))
    }

    /// The ISO's files below the folder `dir` (an ISO path), sorted.
    pub fn iso_files_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.extents.keys().filter(|p| p.starts_with(&prefix)).cloned().collect()
    }

    /// What the area holds, every file checked against the manifest.
    pub fn read(&self) -> Result<AreaContent, SiteAreaError> {
        let file = File::open(&self.iso).map_err(io_at(&self.iso))?;
        lock(&file, &self.iso, false, self.lock_wait)?;
        let mut raw = vec![0u8; self.bytes as usize];
        file.read_exact_at(&mut raw, self.offset).map_err(io_at(&self.iso))?;
        decode(&raw).map_err(|why| SiteAreaError::Corrupt { iso: self.iso.clone(), why })
    }

    /// Write `files` for `site` into the area (`None`: empty it), in place:
    /// the archive, then zeros to the area's end, then fsync.
    pub fn write(&self, content: Option<(&AreaManifest, &[SiteFile])>) -> Result<u64, SiteAreaError> {
        let payload = self.payload(content)?;
        let mut file = OpenOptions::new().read(true).write(true).open(&self.iso).map_err(io_at(&self.iso))?;
        lock(&file, &self.iso, true, self.lock_wait)?;
        self.write_payload(&mut file, payload)
    }

    /// [`SiteArea::write`] through `file`, an open, writable handle of the
    /// ISO whose exclusive lock the caller already holds (a copy being made).
    pub fn write_locked(
        &self,
        file: &mut File,
        content: Option<(&AreaManifest, &[SiteFile])>,
    ) -> Result<u64, SiteAreaError> {
        let payload = self.payload(content)?;
        self.write_payload(file, payload)
    }

    /// The archive for `content` (nothing, to empty the area), refused when
    /// it does not fit.
    fn payload(&self, content: Option<(&AreaManifest, &[SiteFile])>) -> Result<Vec<u8>, SiteAreaError> {
        let payload = match content {
            Some((manifest, files)) => encode(manifest, files)?,
            None => Vec::new(),
        };
        if payload.len() as u64 > self.bytes {
            return Err(SiteAreaError::TooLarge {
                iso: self.iso.clone(),
                needed: payload.len() as u64,
                area: self.bytes,
            });
        }
        Ok(payload)
    }

    fn write_payload(&self, file: &mut File, payload: Vec<u8>) -> Result<u64, SiteAreaError> {
        let mut area = payload;
        let used = area.len() as u64;
        area.resize(self.bytes as usize, 0);
        for (at, bytes) in write_steps(&area) {
            file.seek(SeekFrom::Start(self.offset + at)).map_err(io_at(&self.iso))?;
            file.write_all(bytes).map_err(io_at(&self.iso))?;
            file.sync_data().map_err(io_at(&self.iso))?;
        }
        Ok(used)
    }
}

/// The bytes of the area where the gzip header lies: written last.
const HEAD: usize = 2048;

/// The writes that put `area` in place, in order, each synced before the
/// next: the head zeroed, then everything after it, then the head. A crash
/// at any point leaves the old area (before the first write lands), an
/// area whose start is zeros and whose rest is not (the kernel skips the
/// zeros, finds no archive magic and unpacks nothing of it; the hook finds
/// no manifest; `read` calls it interrupted), or the new area whole. Never
/// a mix the kernel would unpack part of.
fn write_steps(area: &[u8]) -> [(u64, &[u8]); 3] {
    const ZEROS: [u8; HEAD] = [0; HEAD];
    let head = HEAD.min(area.len());
    [(0, &ZEROS[..head]), (head as u64, &area[head..]), (0, &area[..head])]
}

/// The area's archive: [`site_area::ROOT`], the manifest, then each file
/// under [`site_area::FILES`] at its ISO path; gzip, checked by the kernel's
/// rules before it is written.
pub fn encode(manifest: &AreaManifest, files: &[SiteFile]) -> Result<Vec<u8>, SiteAreaError> {
    if let Some(f) = files.iter().find(|f| !site_area::allowed_file(&f.path)) {
        return Err(SiteAreaError::NotAllowed { path: f.path.clone() });
    }
    let mut img = InitramfsBuilder::new(0);
    img.add_dir(site_area::ROOT, 0o700)?;
    img.add_dir(site_area::FILES, 0o700)?;
    let json = serde_json::to_vec_pretty(manifest).expect("plain data serializes");
    img.add_file(site_area::MANIFEST, json, 0o644)?;
    for f in files {
        img.add_file(&f.path, f.bytes.clone(), f.mode)?;
    }
    let mut out = Vec::new();
    img.write(&mut out, Compression::Gzip)?;
    check_initramfs(&out)
        .map_err(|e| InitramfsError::Write { path: iso::SITE_AREA.into(), source: io::Error::other(e.to_string()) })?;
    Ok(out)
}

/// The manifest entry of `f`.
pub fn area_file(f: &SiteFile) -> AreaFile {
    AreaFile { path: f.path.clone(), mode: f.mode, bytes: f.bytes.len() as u64, sha256: hex(&Sha256::digest(&f.bytes)) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read an area's bytes: zeros, or one gzip'd archive then zeros.
fn decode(raw: &[u8]) -> Result<AreaContent, String> {
    let Some(start) = raw.iter().position(|&b| b != 0) else { return Ok(AreaContent::Empty) };
    if start >= HEAD.min(raw.len()) {
        return Err(
            "its start is zeros and the rest is not: a write was interrupted (personalize again, or --reset)".into()
        );
    }
    if start != 0 || !raw.starts_with(&[0x1f, 0x8b]) {
        return Err("it holds neither zeros nor a gzip archive at its start".into());
    }
    let mut reader: &[u8] = raw;
    let mut cpio = Vec::new();
    flate2::bufread::GzDecoder::new(&mut reader)
        .take(MAX_UNPACKED + 1)
        .read_to_end(&mut cpio)
        .map_err(|e| format!("its archive does not decompress: {e}"))?;
    if cpio.len() as u64 > MAX_UNPACKED {
        return Err(format!("its archive unpacks to more than {MAX_UNPACKED} bytes"));
    }
    if reader.iter().any(|&b| b != 0) {
        return Err("bytes other than zeros follow its archive".into());
    }
    let mut entries: Vec<(String, u32, Vec<u8>)> = Vec::new();
    let mut rest: &[u8] = &cpio;
    loop {
        let mut entry = cpio::NewcReader::new(rest).map_err(|e| format!("its archive is not newc cpio: {e}"))?;
        if entry.entry().is_trailer() {
            break;
        }
        let (name, mode, size) = (entry.entry().name().to_owned(), entry.entry().mode(), entry.entry().file_size());
        // The header's size is the archive's word: never reserve more than is left of it.
        let mut data = Vec::with_capacity((size as usize).min(rest.len()));
        (&mut entry).take(u64::from(size)).read_to_end(&mut data).map_err(|e| format!("{name:?}: {e}"))?;
        rest = entry.finish().map_err(|e| format!("{name:?}: {e}"))?;
        entries.push((name, mode, data));
    }
    let manifest_bytes = entries
        .iter()
        .find(|(n, ..)| n == site_area::MANIFEST)
        .map(|(.., d)| d)
        .ok_or_else(|| format!("its archive has no {}", site_area::MANIFEST))?;
    let manifest: AreaManifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| format!("{}: {e}", site_area::MANIFEST))?;
    if manifest.format != site_area::FORMAT {
        return Err(format!("format {} (this edgeiso reads {})", manifest.format, site_area::FORMAT));
    }
    let mut files = Vec::new();
    for want in &manifest.files {
        if !site_area::allowed_file(&want.path) {
            return Err(format!("it lists {:?}, which no site area may hold", want.path));
        }
        let (_, mode, data) = entries
            .iter()
            .find(|(n, ..)| *n == want.path)
            .ok_or_else(|| format!("{:?} is listed but not in the archive", want.path))?;
        let got = AreaFile {
            path: want.path.clone(),
            mode: mode & 0o7777,
            bytes: data.len() as u64,
            sha256: hex(&Sha256::digest(data)),
        };
        if &got != want {
            return Err(format!("{:?} does not match the manifest (mode, size or sha256)", want.path));
        }
        files.push((got, data.clone()));
    }
    // Nothing else: folders of the area's own tree, and no other kind of entry.
    for (name, mode, _) in &entries {
        let ours = name == site_area::ROOT || name.starts_with(&format!("{}/", site_area::ROOT));
        let parent_of_listed = files.iter().any(|(f, _)| f.path.starts_with(&format!("{name}/")));
        let accounted = match mode & 0o170000 {
            0o040000 => ours || parent_of_listed,
            0o100000 => name == site_area::MANIFEST || files.iter().any(|(f, _)| f.path == *name),
            _ => false,
        };
        if !accounted {
            return Err(format!("its archive holds {name:?}, which the manifest does not account for"));
        }
    }
    Ok(AreaContent::Written { manifest, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (AreaManifest, Vec<SiteFile>) {
        let files = vec![
            SiteFile {
                path: "edgeiso-site/files/edgeiso/site/agent.yaml".into(),
                mode: 0o644,
                bytes: b"registry: https://h:30003\n".to_vec(),
            },
            SiteFile {
                path: "edgeiso-site/files/edgeiso/site/harbor/admin-password".into(),
                mode: 0o600,
                bytes: b"pw\n".to_vec(),
            },
        ];
        let manifest = AreaManifest {
            format: site_area::FORMAT,
            site: "store-7".into(),
            golden: "fleet".into(),
            tool: "edgeiso test".into(),
            files: files.iter().map(area_file).collect(),
        };
        (manifest, files)
    }

    #[test]
    fn an_area_round_trips_and_zeros_read_as_empty() {
        let (manifest, files) = sample();
        let mut raw = encode(&manifest, &files).unwrap();
        raw.resize(64 << 10, 0);
        match decode(&raw).unwrap() {
            AreaContent::Written { manifest: m, files: got } => {
                assert_eq!(m, manifest);
                assert_eq!(got[1].1, b"pw\n");
                assert_eq!(got[1].0.mode, 0o600);
            }
            AreaContent::Empty => panic!("written area read as empty"),
        }
        assert_eq!(decode(&vec![0u8; 4096]).unwrap(), AreaContent::Empty);
        // The kernel reads it: the archive and its zero padding.
        let report = check_initramfs(&raw).unwrap();
        assert!(report.get("edgeiso-site/files/edgeiso/site/harbor/admin-password").is_some());
    }

    #[test]
    fn a_write_cut_off_after_any_step_leaves_the_old_area_an_ignored_one_or_the_new_one() {
        let (manifest, files) = sample();
        let old_manifest = AreaManifest { files: vec![area_file(&files[0])], ..manifest.clone() };
        let mut old = encode(&old_manifest, &files[..1]).unwrap();
        old.resize(64 << 10, 0);
        // The new area reaches past its head: some bytes that do not compress.
        let mut files = files;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..16 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        files.push(SiteFile {
            path: "edgeiso-site/files/edgeiso/site/manifests/big.yaml".into(),
            mode: 0o644,
            bytes: noise,
        });
        let manifest = AreaManifest { files: files.iter().map(area_file).collect(), ..manifest };
        let mut new = encode(&manifest, &files).unwrap();
        assert!(new.len() > 2 * HEAD);
        new.resize(64 << 10, 0);
        let steps = write_steps(&new);
        let mut interrupted = 0;
        for done in 0..=steps.len() {
            let mut area = old.clone();
            for (at, bytes) in &steps[..done] {
                area[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
            }
            match (done, decode(&area)) {
                (0, Ok(AreaContent::Written { files: got, .. })) => assert_eq!(got.len(), 1),
                // Nothing of either: empty, or refused as interrupted.
                (1 | 2, Ok(AreaContent::Empty)) => {}
                (1 | 2, Err(why)) => {
                    assert!(why.contains("interrupted"), "{why}");
                    interrupted += 1;
                }
                (3, Ok(AreaContent::Written { files: got, .. })) => assert_eq!(got.len(), files.len()),
                (n, other) => panic!("after {n} steps: {other:?}"),
            }
        }
        assert_eq!(interrupted, 1, "the state with the new body and a zeroed head was met");
        // The kernel finds no archive in an interrupted area.
        let mut cut = new.clone();
        cut[..HEAD].fill(0);
        assert!(check_initramfs(&cut).is_err() || check_initramfs(&cut).unwrap().get(site_area::MANIFEST).is_none());
    }

    #[test]
    fn damaged_areas_are_refused_with_the_reason() {
        let (manifest, files) = sample();
        let good = encode(&manifest, &files).unwrap();
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"\0\0junk");
        assert!(decode(&trailing).unwrap_err().contains("other than zeros"));
        assert!(decode(b"\0\0\0\x1f\x8b").unwrap_err().contains("neither zeros"));
        assert!(decode(b"hello").unwrap_err().contains("neither zeros"));
        // A file that is not what the manifest says.
        let mut lying = manifest.clone();
        lying.files[0].sha256 = "0".repeat(64);
        let raw = encode(&lying, &files).unwrap();
        assert!(decode(&raw).unwrap_err().contains("does not match the manifest"));
        // A gzip bomb stops at the ceiling, not at the end of memory.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..(MAX_UNPACKED >> 20) + 2 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(decode(&bomb).unwrap_err().contains("more than"));
    }
}
