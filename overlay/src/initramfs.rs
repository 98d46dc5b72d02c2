//! The initramfs overlay: a `newc` cpio archive the kernel unpacks on top of the
//! base initrd, and a checker that applies the kernel's own unpacking rules.
//!
//! The kernel is unforgiving and silent: an entry whose parent directory was
//! not created earlier, or whose mode lacks its file-type bits, is simply not
//! there at boot. The [`InitramfsBuilder`] therefore emits every parent
//! directory of the overlay's own folders as its own entry, sorts entries
//! (parents sort before children), sets type bits on every mode, owns
//! everything by 0:0 and stamps one fixed mtime, so the same inputs give
//! byte-identical archives.
//!
//! The one exception is the base initrd's own tree (`lib`, `usr`, `etc`, `var`,
//! ... see [`is_base_owned`]): the kernel replaces an existing path whose type
//! differs from the entry's, so a directory entry for `lib` or
//! `usr/lib/dracut/hooks` would delete the base's symlink there (usr-merged
//! initrds have `lib -> usr/lib`; dracut-ng has `usr/lib/dracut/hooks ->
//! /var/lib/dracut/hooks`) and with it every dracut hook: the ISO would not
//! boot. Files placed into the base's tree therefore get no parent entries;
//! the kernel resolves their paths through whatever the base has there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// `S_IFMT`: the file-type part of a mode.
pub const S_IFMT: u32 = 0o170000;
/// Directory type bits.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file type bits.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link type bits.
pub const S_IFLNK: u32 = 0o120000;
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

/// How the archive is compressed. The kernel unpacks gzip always and zstd from
/// 5.9 on; both are built into Debian's and Kairos' kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// zstd, level 3: fast to write (0.08 s for the 12 MiB agent, against
    /// 0.43 s at level 10, which saves only 0.45 MiB) and as fast to unpack.
    #[default]
    Zstd,
    /// gzip, for kernels older than 5.9.
    Gzip,
    /// A bare cpio (it must then start on a 4-byte boundary when concatenated).
    None,
}

/// Errors from building an initramfs overlay.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A path that cannot be an archive member name.
    #[error("invalid initramfs path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two different kinds of entry at one path (a file where a directory is needed).
    #[error("initramfs path {path:?} is already a {existing}, cannot add a {new} there")]
    Conflict {
        /// The path in the archive.
        path: String,
        /// What is already there.
        existing: &'static str,
        /// What was being added.
        new: &'static str,
    },
    /// The newc format stores sizes in 32 bits.
    #[error("{path}: {size} bytes is too large for a newc cpio member (limit 4 GiB - 1)")]
    TooLarge {
        /// The member.
        path: String,
        /// Its size.
        size: u64,
    },
    /// Reading a source file or directory failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A source file changed size while the archive was written.
    #[error("{path} changed size while it was archived (expected {expected} bytes, read {actual})")]
    SourceChanged {
        /// The file at fault.
        path: PathBuf,
        /// Size when it was added.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// Writing the archive failed.
    #[error("writing initramfs archive {path}: {source}")]
    Write {
        /// The output, or `<stream>` when writing to a caller's writer.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Walking a source tree failed.
    #[error("walking {path}: {source}")]
    Walk {
        /// The tree at fault.
        path: PathBuf,
        /// The underlying error.
        source: walkdir::Error,
    },
}

#[derive(Debug, Clone)]
enum Content {
    Bytes(Vec<u8>),
    Disk { path: PathBuf, size: u64 },
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Disk { size, .. } => *size,
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, content: Content },
    Symlink { target: String },
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Dir { .. } => "directory",
            Node::File { .. } => "file",
            Node::Symlink { .. } => "symlink",
        }
    }
}

/// Builds a reproducible `newc` initramfs overlay.
///
/// ```
/// use edgeiso_overlay::initramfs::{InitramfsBuilder, Compression};
/// let mut b = InitramfsBuilder::new(0);
/// b.add_file("edgeiso/bin/hello.sh", b"echo hi\n".to_vec(), 0o755).unwrap();
/// let mut out = Vec::new();
/// b.write(&mut out, Compression::None).unwrap();
/// let report = edgeiso_overlay::initramfs::check_initramfs(&out).unwrap();
/// assert_eq!(report.entries[0].name, "edgeiso");
/// ```
#[derive(Debug, Clone)]
pub struct InitramfsBuilder {
    nodes: BTreeMap<String, Node>,
    mtime: u32,
}

/// Top-level folders of the base initrd (the Filesystem Hierarchy Standard's):
/// the overlay may put files inside them but never a directory or symlink
/// entry for them or anything below them that the base may own.
const BASE_TOP_LEVEL: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt", "opt", "proc", "root",
    "run", "sbin", "srv", "sys", "tmp", "usr", "var",
];

/// Whether `path` (relative, normalised) lies in the base initrd's own tree,
/// where the overlay must not write directory entries (see the module docs).
pub fn is_base_owned(path: &str) -> bool {
    let top = path.split('/').next().unwrap_or(path);
    BASE_TOP_LEVEL.contains(&top)
}

/// Normalise an archive path: relative, no empty, `.` or `..` components.
fn normalize(path: &str) -> Result<String, InitramfsError> {
    let invalid = |reason| InitramfsError::InvalidPath { path: path.to_string(), reason };
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return Err(invalid("empty path (the archive root needs no entry)"));
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" if parts.is_empty() => return Err(invalid("empty path component")),
            "" => continue, // trailing slash
            "." => return Err(invalid("`.` component")),
            ".." => return Err(invalid("`..` component")),
            p if p.contains('\0') => return Err(invalid("NUL byte")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(invalid("empty path"));
    }
    Ok(parts.join("/"))
}

impl InitramfsBuilder {
    /// A builder whose entries all carry `mtime` (seconds since 1970; use
    /// `SOURCE_DATE_EPOCH` or 0 for reproducible output). Times past 2106
    /// do not fit newc's 32 bits and are clamped.
    pub fn new(mtime: u64) -> Self {
        InitramfsBuilder { nodes: BTreeMap::new(), mtime: u32::try_from(mtime).unwrap_or(u32::MAX) }
    }

    /// A builder stamped with `SOURCE_DATE_EPOCH`, or 0 when unset.
    pub fn from_env() -> Result<Self, crate::EpochError> {
        Ok(Self::new(crate::source_date_epoch()?.unwrap_or(0)))
    }

    /// Ensure `path` and all its parents exist as directories. Folders of the
    /// base initrd's tree get no entries: the base has them (see module docs).
    fn ensure_dirs(&mut self, path: &str, mode: u32) -> Result<(), InitramfsError> {
        if is_base_owned(path) {
            return Ok(());
        }
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match self.nodes.get(&prefix) {
                Some(Node::Dir { .. }) => {}
                Some(other) => {
                    return Err(InitramfsError::Conflict {
                        path: prefix.clone(),
                        existing: other.kind(),
                        new: "directory",
                    })
                }
                None => {
                    self.nodes.insert(prefix.clone(), Node::Dir { mode: S_IFDIR | (mode & 0o7777) });
                }
            }
        }
        Ok(())
    }

    fn insert_leaf(&mut self, path: &str, node: Node) -> Result<(), InitramfsError> {
        let path = normalize(path)?;
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.ensure_dirs(parent, 0o755)?;
        }
        match self.nodes.get(&path) {
            Some(Node::Dir { .. }) => Err(InitramfsError::Conflict { path, existing: "directory", new: node.kind() }),
            _ => {
                // A later add of the same file replaces the earlier one, as a
                // later archive would at boot.
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    /// Add a directory (and its parents) with permission bits `mode`. Folders
    /// in the base initrd's tree are refused: their entries would replace
    /// what the base has there.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<&mut Self, InitramfsError> {
        let path = normalize(path)?;
        if is_base_owned(&path) {
            return Err(InitramfsError::InvalidPath {
                path,
                reason:
                    "a directory entry in the base initrd's tree would replace the base's own (add files there instead)",
            });
        }
        self.ensure_dirs(&path, 0o755)?;
        self.nodes.insert(path, Node::Dir { mode: S_IFDIR | (mode & 0o7777) });
        Ok(self)
    }

    /// Add a regular file with `data` and permission bits `mode` (type bits are added).
    pub fn add_file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<&mut Self, InitramfsError> {
        if data.len() as u64 > u64::from(u32::MAX) {
            return Err(InitramfsError::TooLarge { path: path.to_string(), size: data.len() as u64 });
        }
        self.insert_leaf(path, Node::File { mode: S_IFREG | (mode & 0o7777), content: Content::Bytes(data) })?;
        Ok(self)
    }

    /// Add a regular file whose content is streamed from `source` when the
    /// archive is written (the agent binary need not sit in memory).
    pub fn add_file_from(&mut self, path: &str, source: &Path, mode: u32) -> Result<&mut Self, InitramfsError> {
        let meta =
            std::fs::metadata(source).map_err(|e| InitramfsError::Read { path: source.to_path_buf(), source: e })?;
        if meta.len() > u64::from(u32::MAX) {
            return Err(InitramfsError::TooLarge { path: source.display().to_string(), size: meta.len() });
        }
        let content = Content::Disk { path: source.to_path_buf(), size: meta.len() };
        self.insert_leaf(path, Node::File { mode: S_IFREG | (mode & 0o7777), content })?;
        Ok(self)
    }

    /// Add a symbolic link pointing at `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, InitramfsError> {
        if target.is_empty() {
            return Err(InitramfsError::InvalidPath { path: path.to_string(), reason: "empty symlink target" });
        }
        self.insert_leaf(path, Node::Symlink { target: target.to_string() })?;
        Ok(self)
    }

    /// Add everything under `dir` at `prefix` in the archive (`""` for the
    /// root). Permission bits come from disk; owners and times do not.
    pub fn add_tree(&mut self, dir: &Path, prefix: &str) -> Result<&mut Self, InitramfsError> {
        use std::os::unix::fs::PermissionsExt;
        let prefix = prefix.trim_matches('/');
        for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| InitramfsError::Walk { path: dir.to_path_buf(), source: e })?;
            let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
            let rel = rel
                .to_str()
                .ok_or_else(|| InitramfsError::InvalidPath { path: rel.display().to_string(), reason: "not UTF-8" })?;
            let name = if prefix.is_empty() { rel.to_string() } else { format!("{prefix}/{rel}") };
            let read_err = |e| InitramfsError::Read { path: entry.path().to_path_buf(), source: e };
            let meta = entry.path().symlink_metadata().map_err(read_err)?;
            let perm = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(entry.path()).map_err(read_err)?;
                let target = target.to_str().ok_or_else(|| InitramfsError::InvalidPath {
                    path: entry.path().display().to_string(),
                    reason: "symlink target not UTF-8",
                })?;
                self.add_symlink(&name, target)?;
            } else if meta.is_dir() {
                self.add_dir(&name, perm)?;
            } else if meta.is_file() {
                self.add_file_from(&name, entry.path(), perm)?;
            } else {
                return Err(InitramfsError::InvalidPath {
                    path: entry.path().display().to_string(),
                    reason: "only directories, regular files and symlinks can be archived",
                });
            }
        }
        Ok(self)
    }

    /// The member names, in archive order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// Write the bare cpio (no compression) to `out`.
    fn write_cpio<W: Write>(&self, mut out: W) -> Result<W, InitramfsError> {
        let werr = |e| InitramfsError::Write { path: "<stream>".into(), source: e };
        // Inode numbers only need to be unique; assigning them in sorted order
        // keeps the archive reproducible.
        for (ino, (name, node)) in (1u32..).zip(self.nodes.iter()) {
            let header = cpio::newc::Builder::new(name).ino(ino).uid(0).gid(0).mtime(self.mtime);
            out = match node {
                Node::Dir { mode } => header.mode(*mode).nlink(2).write(out, 0).finish().map_err(werr)?,
                Node::Symlink { target } => {
                    let mut w = header.mode(S_IFLNK | 0o777).nlink(1).write(out, target.len() as u32);
                    w.write_all(target.as_bytes()).map_err(werr)?;
                    w.finish().map_err(werr)?
                }
                Node::File { mode, content } => {
                    let size = content.len();
                    let mut w = header.mode(*mode).nlink(1).write(out, size as u32);
                    match content {
                        Content::Bytes(b) => w.write_all(b).map_err(werr)?,
                        Content::Disk { path, .. } => {
                            let rerr = |e| InitramfsError::Read { path: path.clone(), source: e };
                            let f = File::open(path).map_err(rerr)?;
                            let copied = io::copy(&mut f.take(size), &mut w).map_err(rerr)?;
                            if copied != size {
                                return Err(InitramfsError::SourceChanged {
                                    path: path.clone(),
                                    expected: size,
                                    actual: copied,
                                });
                            }
                        }
                    }
                    w.finish().map_err(werr)?
                }
            };
        }
        cpio::newc::trailer(out).map_err(werr)
    }

    /// Write the archive, compressed as asked, to `out`.
    pub fn write<W: Write>(&self, out: W, compression: Compression) -> Result<(), InitramfsError> {
        let werr = |e| InitramfsError::Write { path: "<stream>".into(), source: e };
        match compression {
            Compression::None => {
                let mut out = self.write_cpio(out)?;
                out.flush().map_err(werr)?;
            }
            Compression::Gzip => {
                // GzBuilder writes mtime 0 and no file name: reproducible.
                let enc = flate2::GzBuilder::new().write(out, flate2::Compression::best());
                self.write_cpio(enc)?.finish().map_err(werr)?;
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, 3).map_err(werr)?;
                // The kernel's unzstd needs no checksum, but it is cheap insurance
                // against a corrupt medium.
                enc.include_checksum(true).map_err(werr)?;
                self.write_cpio(enc)?.finish().map_err(werr)?;
            }
        }
        Ok(())
    }

    /// Write the archive to `path` via a temporary file in the same directory
    /// and a rename, so a crash never leaves a half-written initramfs.
    pub fn write_to_path(&self, path: &Path, compression: Compression) -> Result<(), InitramfsError> {
        let werr = |e| InitramfsError::Write { path: path.display().to_string(), source: e };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new().prefix(".edgeiso-initramfs.").tempfile_in(dir).map_err(werr)?;
        self.write(io::BufWriter::new(tmp.as_file_mut()), compression).map_err(|e| match e {
            InitramfsError::Write { source, .. } => werr(source),
            other => other,
        })?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(path).map_err(|e| werr(e.error))?;
        Ok(())
    }
}

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
    use super::*;

    const HOOK: &str = "lib/dracut/hooks/pre-pivot/90-edgeiso.sh";

    fn sample() -> InitramfsBuilder {
        let mut b = InitramfsBuilder::new(1_700_000_000);
        b.add_file(HOOK, b"#!/bin/sh\necho hi\n".to_vec(), 0o755).unwrap();
        b.add_file("edgeiso/agent", vec![7u8; 1001], 0o755).unwrap();
        b.add_symlink("usr/bin/edgeiso-agent", "/edgeiso/agent").unwrap();
        b.add_dir("edgeiso/state/keys", 0o700).unwrap();
        b
    }

    fn bare(b: &InitramfsBuilder) -> Vec<u8> {
        let mut out = Vec::new();
        b.write(&mut out, Compression::None).unwrap();
        out
    }

    #[test]
    fn every_own_parent_is_an_entry_before_its_children_with_type_bits() {
        let report = check_initramfs(&bare(&sample())).unwrap();
        let names: Vec<_> = report.entries.iter().map(|m| m.name.as_str()).collect();
        // The base initrd's folders (lib, usr, ...) get no entries: theirs may
        // be symlinks, which a directory entry would replace.
        assert_eq!(
            names,
            [
                "edgeiso",
                "edgeiso/agent",
                "edgeiso/state",
                "edgeiso/state/keys",
                "lib/dracut/hooks/pre-pivot/90-edgeiso.sh",
                "usr/bin/edgeiso-agent",
            ]
        );
        let hook = report.get(HOOK).unwrap();
        assert_eq!(hook.mode, S_IFREG | 0o755);
        assert_eq!(report.get("edgeiso").unwrap().mode, S_IFDIR | 0o755);
        assert_eq!(report.get("edgeiso/state/keys").unwrap().mode, S_IFDIR | 0o700);
        assert_eq!(report.get("usr/bin/edgeiso-agent").unwrap().mode, S_IFLNK | 0o777);
        assert!(report.entries.iter().all(|m| m.uid == 0 && m.gid == 0 && m.mtime == 1_700_000_000));
        assert_eq!(report.archives, 1);
    }

    #[test]
    fn output_is_reproducible_for_every_compression() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            sample().write(&mut a, c).unwrap();
            sample().write(&mut b, c).unwrap();
            assert_eq!(a, b, "{c:?}");
            let report = check_initramfs(&a).unwrap();
            assert_eq!(report.segments, vec![c]);
            assert_eq!(report.get("edgeiso/agent").unwrap().size, 1001);
        }
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut b = InitramfsBuilder::new(0);
        b.add_dir("edgeiso/state/keys", 0o700).unwrap();
        b.add_symlink("usr/bin/edgeiso-agent", "/edgeiso/agent").unwrap();
        b.add_file("edgeiso/agent", vec![7u8; 1001], 0o755).unwrap();
        b.add_file(HOOK, b"#!/bin/sh\necho hi\n".to_vec(), 0o755).unwrap();
        let mut s = sample();
        s.mtime = 0;
        assert_eq!(bare(&b), bare(&s));
    }

    #[test]
    fn header_name_and_data_are_four_byte_aligned() {
        // Names of every length mod 4 and data of every length mod 4.
        let mut b = InitramfsBuilder::new(0);
        for n in 1..=8 {
            b.add_file(&"x".repeat(n), vec![1u8; n], 0o644).unwrap();
        }
        let out = bare(&b);
        assert_eq!(out.len() % 4, 0);
        let report = check_initramfs(&out).unwrap();
        assert_eq!(report.entries.len(), 8);
    }

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

    #[test]
    fn builder_refuses_bad_paths_and_conflicts() {
        let mut b = InitramfsBuilder::new(0);
        assert!(b.add_file("../etc/passwd", vec![], 0o644).is_err());
        assert!(b.add_file("a/./b", vec![], 0o644).is_err());
        assert!(b.add_file("/", vec![], 0o644).is_err());
        b.add_file("/edgeiso/x", vec![], 0o644).unwrap(); // leading slash is stripped
        assert!(b.add_file("edgeiso/x/y", vec![], 0o644).is_err());
        assert!(b.add_file("edgeiso", vec![], 0o644).is_err());
        assert_eq!(b.names().collect::<Vec<_>>(), ["edgeiso", "edgeiso/x"]);
    }

    #[test]
    fn add_tree_streams_files_from_disk() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("hooks/pre-pivot")).unwrap();
        let hook = dir.path().join("hooks/pre-pivot/90-edgeiso.sh");
        std::fs::write(&hook, "echo hi\n").unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("90-edgeiso.sh", dir.path().join("hooks/pre-pivot/link.sh")).unwrap();
        let mut b = InitramfsBuilder::new(0);
        b.add_tree(dir.path(), "/edgeiso/dracut").unwrap();
        let out_path = dir.path().join("out.img");
        b.write_to_path(&out_path, Compression::Zstd).unwrap();
        let report = check_initramfs(&std::fs::read(&out_path).unwrap()).unwrap();
        let m = report.get("edgeiso/dracut/hooks/pre-pivot/90-edgeiso.sh").unwrap();
        assert_eq!(m.mode, S_IFREG | 0o750);
        assert_eq!(m.size, 8);
        assert_eq!(report.get("edgeiso/dracut/hooks/pre-pivot/link.sh").unwrap().mode & S_IFMT, S_IFLNK);
    }
}
