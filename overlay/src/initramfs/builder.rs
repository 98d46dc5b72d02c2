//! [`InitramfsBuilder`]: a reproducible `newc` archive built from files,
//! symlinks and folders given in memory or on disk, with every parent of its
//! own folders as an entry (see the module docs of [`crate::initramfs`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{is_base_owned, Compression, S_IFDIR, S_IFLNK, S_IFREG};

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
        let (tmp, mut file) = edgeiso_contract::fs::create_locked(dir, ".edgeiso-initramfs", "tmp").map_err(werr)?;
        let _remove = edgeiso_contract::fs::RemoveOnDrop(tmp.clone());
        self.write(io::BufWriter::new(&mut file), compression).map_err(|e| match e {
            InitramfsError::Write { source, .. } => werr(source),
            other => other,
        })?;
        file.sync_all().map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::test_support::{bare, sample, HOOK};
    use crate::initramfs::{check_initramfs, S_IFMT};

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
