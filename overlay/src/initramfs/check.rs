//! [`check_initramfs`]: reads an initramfs image (bare, gzip and zstd
//! segments, concatenated) by the kernel's own unpacking rules and lists its
//! members.

use std::collections::BTreeSet;
use std::io::{self, Read};

use super::{is_base_owned, Compression, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

const NEWC_MAGIC: &[u8; 6] = b"070701";
const NEWC_CRC_MAGIC: &[u8; 6] = b"070702";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// One member of a checked archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioMember {
    /// Name as stored (relative).
    pub name: String,
    /// Full mode, type bits included.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: u32,
    /// Data size.
    pub size: u32,
    /// Which archive of the concatenation it came from (0-based).
    pub archive: usize,
    /// sha256 of the data, hex.
    pub sha256: String,
}

/// What [`check_initramfs`] found.
#[derive(Debug, Clone, Default)]
pub struct InitramfsReport {
    /// Every member, in order, trailers excluded.
    pub entries: Vec<CpioMember>,
    /// Number of cpio archives (a compressed stream may hold several).
    pub archives: usize,
    /// Compression of each top-level segment, in order.
    pub segments: Vec<Compression>,
}

impl InitramfsReport {
    /// The member called `name`, if any (the last one wins, as at boot).
    pub fn get(&self, name: &str) -> Option<&CpioMember> {
        self.entries.iter().rev().find(|m| m.name == name)
    }
}

/// An archive the kernel would reject or unpack only in part.
#[derive(Debug, thiserror::Error)]
pub enum CpioCheckError {
    /// Bytes that are neither zero padding, a cpio header nor a known compressed stream.
    #[error("offset {offset}: invalid magic {found:?} (expected 070701, 070702, gzip or zstd)")]
    BadMagic {
        /// Offset in the (decompressed) segment.
        offset: usize,
        /// What was there.
        found: String,
    },
    /// A header that does not start on a 4-byte boundary: the kernel says "invalid magic".
    #[error("offset {offset}: cpio header not 4-byte aligned")]
    Misaligned {
        /// Offset in the (decompressed) segment.
        offset: usize,
    },
    /// The archive ends inside a header, name or data.
    #[error("offset {offset}: archive truncated ({what})")]
    Truncated {
        /// Where.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A header field that is not 8 hex digits.
    #[error("offset {offset}: header field {field} is not hexadecimal")]
    BadField {
        /// Where.
        offset: usize,
        /// Which field.
        field: &'static str,
    },
    /// A name the kernel would not create where intended.
    #[error("member {name:?}: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A mode without type bits (the member silently vanishes at boot).
    #[error("member {name:?}: mode {mode:#o} has no valid file-type bits")]
    NoTypeBits {
        /// The name.
        name: String,
        /// The mode.
        mode: u32,
    },
    /// A member whose parent directory was not created before it.
    #[error("member {name:?}: parent directory {parent:?} is not an earlier entry")]
    MissingParent {
        /// The name.
        name: String,
        /// The missing parent.
        parent: String,
    },
    /// A directory entry in the base initrd's tree: at boot it would replace
    /// what the base has there (a symlink such as `lib -> usr/lib` is deleted).
    #[error("member {name:?}: a directory entry in the base initrd's tree replaces the base's own (a symlink there, such as lib -> usr/lib or dracut-ng's hooks -> /var/lib/dracut/hooks, would be deleted)")]
    DirOverBase {
        /// The name.
        name: String,
    },
    /// A directory or symlink whose size makes no sense.
    #[error("member {name:?}: {reason}")]
    BadSize {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A `070702` member whose checksum does not match.
    #[error("member {name:?}: checksum mismatch")]
    BadChecksum {
        /// The name.
        name: String,
    },
    /// An archive that ends without its `TRAILER!!!`.
    #[error("archive {archive} has no TRAILER!!! entry")]
    NoTrailer {
        /// Which archive.
        archive: usize,
    },
    /// A compressed segment that does not decompress.
    #[error("offset {offset}: {compression:?} stream does not decompress: {source}")]
    Decompress {
        /// Where the stream starts.
        offset: usize,
        /// Its kind.
        compression: Compression,
        /// The underlying error.
        source: io::Error,
    },
    /// Nothing to check.
    #[error("no cpio archive found")]
    Empty,
}

/// Check an initramfs image (one or more archives, each bare, gzip or zstd,
/// with optional zero padding between them) by the kernel's unpacking rules:
/// `070701`/`070702` magic, 4-byte alignment of header+name and of data, a
/// type in every mode, relative names without `..`, every parent directory
/// created by an earlier entry (except in the base initrd's tree, which must
/// hold no directory entries: see [`is_base_owned`]), and a trailer ending
/// each archive.
pub fn check_initramfs(bytes: &[u8]) -> Result<InitramfsReport, CpioCheckError> {
    let mut report = InitramfsReport::default();
    let mut dirs = BTreeSet::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest[0] == 0 {
            pos += 1;
            continue;
        }
        if rest.starts_with(GZIP_MAGIC) {
            let mut reader: &[u8] = rest;
            let mut data = Vec::new();
            flate2::bufread::GzDecoder::new(&mut reader)
                .read_to_end(&mut data)
                .map_err(|e| CpioCheckError::Decompress { offset: pos, compression: Compression::Gzip, source: e })?;
            let consumed = rest.len() - reader.len();
            report.segments.push(Compression::Gzip);
            check_cpio_stream(&data, &mut report, &mut dirs)?;
            pos += consumed;
        } else if rest.starts_with(ZSTD_MAGIC) {
            // Decode straight from the slice: what the decoder leaves in it
            // is exactly what follows the frame (a BufReader would hide the
            // bytes it had buffered past the frame's end).
            let mut reader: &[u8] = rest;
            let data = {
                let mut dec = zstd::stream::read::Decoder::with_buffer(&mut reader)
                    .map_err(|e| CpioCheckError::Decompress { offset: pos, compression: Compression::Zstd, source: e })?
                    .single_frame();
                let mut data = Vec::new();
                dec.read_to_end(&mut data).map_err(|e| CpioCheckError::Decompress {
                    offset: pos,
                    compression: Compression::Zstd,
                    source: e,
                })?;
                data
            };
            let consumed = rest.len() - reader.len();
            report.segments.push(Compression::Zstd);
            check_cpio_stream(&data, &mut report, &mut dirs)?;
            pos += consumed;
        } else if rest.starts_with(b"0707") {
            // A bare archive: the kernel finds its magic only at 4-aligned offsets.
            if pos % 4 != 0 {
                return Err(CpioCheckError::Misaligned { offset: pos });
            }
            report.segments.push(Compression::None);
            let used = check_cpio_stream_prefix(rest, &mut report, &mut dirs)?;
            pos += used;
        } else {
            return Err(CpioCheckError::BadMagic {
                offset: pos,
                found: String::from_utf8_lossy(&rest[..rest.len().min(6)]).into_owned(),
            });
        }
    }
    if report.archives == 0 {
        return Err(CpioCheckError::Empty);
    }
    Ok(report)
}

/// A decompressed segment: archives and zero padding, nothing else.
fn check_cpio_stream(
    data: &[u8],
    report: &mut InitramfsReport,
    dirs: &mut BTreeSet<String>,
) -> Result<(), CpioCheckError> {
    let mut pos = 0;
    while pos < data.len() {
        if data[pos] == 0 {
            pos += 1;
            continue;
        }
        if pos % 4 != 0 {
            return Err(CpioCheckError::Misaligned { offset: pos });
        }
        pos += check_cpio_stream_prefix(&data[pos..], report, dirs)?;
    }
    Ok(())
}

fn hex_field(data: &[u8], offset: usize, index: usize, field: &'static str) -> Result<u32, CpioCheckError> {
    let start = 6 + index * 8;
    let text = std::str::from_utf8(&data[start..start + 8]).map_err(|_| CpioCheckError::BadField { offset, field })?;
    u32::from_str_radix(text, 16).map_err(|_| CpioCheckError::BadField { offset, field })
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Check one archive at the start of `data`; return the bytes it spans.
fn check_cpio_stream_prefix(
    data: &[u8],
    report: &mut InitramfsReport,
    dirs: &mut BTreeSet<String>,
) -> Result<usize, CpioCheckError> {
    use sha2::Digest as _;
    let archive = report.archives;
    report.archives += 1;
    let mut pos = 0;
    loop {
        if pos >= data.len() {
            return Err(CpioCheckError::NoTrailer { archive });
        }
        let magic = &data[pos..data.len().min(pos + 6)];
        if magic != NEWC_MAGIC && magic != NEWC_CRC_MAGIC {
            return Err(CpioCheckError::BadMagic { offset: pos, found: String::from_utf8_lossy(magic).into_owned() });
        }
        if data.len() - pos < HEADER_LEN {
            return Err(CpioCheckError::Truncated { offset: pos, what: "header" });
        }
        let h = &data[pos..pos + HEADER_LEN];
        let crc = match &h[..6] {
            m if m == NEWC_MAGIC => false,
            m if m == NEWC_CRC_MAGIC => true,
            m => return Err(CpioCheckError::BadMagic { offset: pos, found: String::from_utf8_lossy(m).into_owned() }),
        };
        let mode = hex_field(h, pos, 1, "mode")?;
        let uid = hex_field(h, pos, 2, "uid")?;
        let gid = hex_field(h, pos, 3, "gid")?;
        let mtime = hex_field(h, pos, 5, "mtime")?;
        let size = hex_field(h, pos, 6, "filesize")?;
        let namesize = hex_field(h, pos, 11, "namesize")? as usize;
        let check = hex_field(h, pos, 12, "check")?;
        let name_start = pos + HEADER_LEN;
        if namesize == 0 || data.len() < name_start + namesize {
            return Err(CpioCheckError::Truncated { offset: pos, what: "name" });
        }
        let raw_name = &data[name_start..name_start + namesize];
        if raw_name[namesize - 1] != 0 || raw_name[..namesize - 1].contains(&0) {
            return Err(CpioCheckError::BadName {
                name: String::from_utf8_lossy(raw_name).into_owned(),
                reason: "name is not NUL-terminated exactly once",
            });
        }
        let name = String::from_utf8_lossy(&raw_name[..namesize - 1]).into_owned();
        let data_start = align4(name_start + namesize);
        let data_end = data_start + size as usize;
        if data.len() < data_end {
            return Err(CpioCheckError::Truncated { offset: pos, what: "data" });
        }
        let next = align4(data_end);
        if name == TRAILER {
            return Ok(next.min(data.len()));
        }
        check_name(&name)?;
        let body = &data[data_start..data_end];
        if crc && body.iter().map(|&b| u32::from(b)).fold(0u32, u32::wrapping_add) != check {
            return Err(CpioCheckError::BadChecksum { name });
        }
        let kind = mode & S_IFMT;
        match kind {
            S_IFDIR => {
                if size != 0 {
                    return Err(CpioCheckError::BadSize { name, reason: "directory with data" });
                }
            }
            S_IFLNK => {
                if size == 0 || size > 4095 {
                    return Err(CpioCheckError::BadSize { name, reason: "symlink target empty or over PATH_MAX" });
                }
            }
            S_IFREG | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {}
            _ => return Err(CpioCheckError::NoTypeBits { name, mode }),
        }
        if kind == S_IFDIR && is_base_owned(&name) {
            return Err(CpioCheckError::DirOverBase { name });
        }
        if name != "." && !is_base_owned(&name) {
            if let Some((parent, _)) = name.rsplit_once('/') {
                if !dirs.contains(parent) {
                    return Err(CpioCheckError::MissingParent { name: name.clone(), parent: parent.to_string() });
                }
            }
        }
        if kind == S_IFDIR {
            dirs.insert(name.clone());
        }
        report.entries.push(CpioMember {
            name,
            mode,
            uid,
            gid,
            mtime,
            size,
            archive,
            sha256: hex::encode(sha2::Sha256::digest(body)),
        });
        pos = next;
    }
}

fn check_name(name: &str) -> Result<(), CpioCheckError> {
    let bad = |reason| Err(CpioCheckError::BadName { name: name.to_string(), reason });
    if name == "." {
        return Ok(());
    }
    if name.is_empty() {
        return bad("empty name");
    }
    if name.starts_with('/') {
        return bad("absolute name");
    }
    for part in name.split('/') {
        match part {
            "" => return bad("empty path component"),
            ".." => return bad("`..` component"),
            "." => return bad("`.` component"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::initramfs::test_support::{bare, sample, HOOK};
    use crate::initramfs::InitramfsBuilder;

    #[test]
    fn concatenated_archives_with_padding_are_accepted() {
        let mut img = Vec::new();
        let mut first = InitramfsBuilder::new(0);
        first.add_file("init", b"#!/bin/sh\n".to_vec(), 0o755).unwrap();
        first.write(&mut img, Compression::Gzip).unwrap();
        img.extend([0u8; 3]); // pad the gzip stream to a 4-byte boundary
        while img.len() % 4 != 0 {
            img.push(0);
        }
        sample().write(&mut img, Compression::None).unwrap();
        img.extend([0u8; 512]);
        sample().write(&mut img, Compression::Zstd).unwrap();
        let report = check_initramfs(&img).unwrap();
        assert_eq!(report.archives, 3);
        assert_eq!(report.segments, vec![Compression::Gzip, Compression::None, Compression::Zstd]);
    }

    #[test]
    fn misaligned_bare_archive_is_rejected() {
        let mut img = vec![0u8; 2];
        img[0] = 0;
        img.push(0); // 3 bytes of zeros, so the header starts at offset 3
        img.extend(bare(&sample()));
        assert!(matches!(check_initramfs(&img), Err(CpioCheckError::Misaligned { offset: 3 })));
    }

    /// A hand-made newc member, to feed the checker what the builder never makes.
    fn raw_member(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let w = cpio::newc::Builder::new(name).mode(mode).write(&mut out, data.len() as u32);
        let mut w = w;
        w.write_all(data).unwrap();
        w.finish().unwrap();
        out
    }

    fn archive(members: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = members.concat();
        cpio::newc::trailer(&mut out).unwrap();
        out
    }

    #[test]
    fn checker_rejects_what_the_kernel_drops() {
        // The cpio crate's default mode is 0: no type bits.
        let no_type = archive(&[raw_member("file", 0o644, b"x")]);
        assert!(matches!(check_initramfs(&no_type), Err(CpioCheckError::NoTypeBits { .. })));

        let orphan = archive(&[raw_member("edgeiso/bin/x", S_IFREG | 0o644, b"x")]);
        match check_initramfs(&orphan) {
            Err(CpioCheckError::MissingParent { parent, .. }) => assert_eq!(parent, "edgeiso/bin"),
            other => panic!("{other:?}"),
        }

        let absolute = archive(&[raw_member("/edgeiso", S_IFDIR | 0o755, b"")]);
        assert!(matches!(check_initramfs(&absolute), Err(CpioCheckError::BadName { .. })));

        let dotdot =
            archive(&[raw_member("edgeiso", S_IFDIR | 0o755, b""), raw_member("edgeiso/../x", S_IFREG | 0o644, b"")]);
        assert!(matches!(check_initramfs(&dotdot), Err(CpioCheckError::BadName { .. })));

        let no_trailer = raw_member("file", S_IFREG | 0o644, b"x");
        assert!(matches!(check_initramfs(&no_trailer), Err(CpioCheckError::NoTrailer { .. })));

        let odc = b"070707000000".to_vec();
        assert!(matches!(check_initramfs(&odc), Err(CpioCheckError::BadMagic { .. })));

        let mut truncated = bare(&sample());
        truncated.truncate(300);
        assert!(check_initramfs(&truncated).is_err());
    }

    #[test]
    fn directory_entries_in_the_base_tree_are_refused() {
        // What dracut-ng and usr-merge make: a directory entry for any of
        // these would delete the symlink, and with it every dracut hook.
        for dir in ["lib", "usr/lib/dracut/hooks", "var/lib/dracut/hooks/pre-pivot", "etc/cmdline.d"] {
            let a = archive(&[raw_member(dir, S_IFDIR | 0o755, b"")]);
            assert!(matches!(check_initramfs(&a), Err(CpioCheckError::DirOverBase { .. })), "{dir}");
            assert!(InitramfsBuilder::new(0).add_dir(dir, 0o755).is_err(), "{dir}");
        }
        // Files there need no parent entries: the base has the folders.
        let a = archive(&[raw_member(HOOK, S_IFREG | 0o644, b"x")]);
        assert_eq!(check_initramfs(&a).unwrap().entries.len(), 1);
    }

    #[test]
    fn zstd_segment_followed_by_a_large_archive_is_measured_exactly() {
        // The frame's end must be found exactly even when much more follows
        // (a buffered reader once hid the bytes it had read ahead).
        let mut first = InitramfsBuilder::new(0);
        let noise: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        first.add_file("edgeiso/noise", noise, 0o644).unwrap();
        let mut img = Vec::new();
        first.write(&mut img, Compression::Zstd).unwrap();
        while img.len() % 4 != 0 {
            img.push(0);
        }
        let mut second = InitramfsBuilder::new(0);
        second.add_file("edgeiso/big", vec![5u8; 100_000], 0o644).unwrap();
        second.write(&mut img, Compression::None).unwrap();
        let report = check_initramfs(&img).unwrap();
        assert_eq!(report.segments, vec![Compression::Zstd, Compression::None]);
        assert_eq!(report.get("edgeiso/big").unwrap().size, 100_000);
        assert_eq!(report.get("edgeiso/noise").unwrap().size, 200_000);
    }
}
