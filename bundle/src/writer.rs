//! Writing a bundle: `bundle.json` first, then the OCI layout files, then every
//! blob once, sorted by digest. Member sizes and digests are all known before
//! the first byte is written, which is what lets `bundle.json` (with the
//! checksum of every other member) come first.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::digest::HashingReader;
use crate::format::{self, BundleJson, ImageRecord, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX};
use crate::parts::SplitWriter;
use crate::{BundleError, Digest};

/// Where a blob's bytes come from while writing.
#[derive(Debug, Clone)]
pub enum BlobSource {
    File(PathBuf),
    /// A file whose bytes this process digest-checked as it wrote them (a
    /// download just verified): copied without hashing it a second time.
    VerifiedFile(PathBuf),
    Bytes(Vec<u8>),
    /// A member of another bundle: its parts, and the member's offset.
    Parts {
        paths: Vec<PathBuf>,
        offset: u64,
    },
}

#[derive(Debug, Clone)]
pub struct BundlePlan {
    pub name: String,
    pub created: SystemTime,
    pub tool: String,
    pub images: Vec<ImageRecord>,
    /// Every manifest and blob, each once (of a partial bundle: those it
    /// holds).
    pub blobs: BTreeMap<Digest, (u64, BlobSource)>,
    /// A thin or delta bundle: what is left out of `blobs` ([`BundlePlan::leave_out`]).
    pub partial: Option<format::Partial>,
}

#[derive(Default)]
pub struct WriteOptions<'a> {
    /// Split into parts of at most this many bytes.
    pub part_size: Option<u64>,
    /// Also write `NAME.tar.zst`.
    pub zstd: bool,
    /// Called with the number of bytes just written.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

#[derive(Debug, Clone)]
pub struct Written {
    /// The tar, or its parts.
    pub paths: Vec<PathBuf>,
    pub zstd: Option<PathBuf>,
    pub total_bytes: u64,
    pub meta: BundleJson,
}

/// `content-NAME.tar`: the file name of a site's workload bundle.
pub fn bundle_file_name(name: &str) -> String {
    format!("content-{name}.tar")
}

/// The OCI index `index.json` names for a Docker-typed top level: a list is
/// re-expressed with the same children; a single manifest becomes a one-entry
/// index carrying its platform. `None` for OCI-typed images.
pub fn oci_view(img: &ImageRecord, docker_bytes: Option<&[u8]>, size: u64) -> Option<(Digest, Vec<u8>)> {
    let children = match img.media_type.as_str() {
        DOCKER_MANIFEST_LIST => {
            let list: serde_json::Value = serde_json::from_slice(docker_bytes?).ok()?;
            list.get("manifests")?.clone()
        }
        DOCKER_MANIFEST => {
            let mut d = serde_json::json!({ "mediaType": img.media_type, "digest": img.digest, "size": size });
            if let Some(p) = img.platforms.first() {
                let mut it = p.split('/');
                let (os, arch, variant) = (it.next(), it.next(), it.next());
                d["platform"] = serde_json::json!({ "os": os, "architecture": arch });
                if let Some(v) = variant {
                    d["platform"]["variant"] = v.into();
                }
            }
            serde_json::json!([d])
        }
        _ => return None,
    };
    let view = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children });
    let bytes = serde_json::to_vec(&view).expect("json");
    Some((Digest::of(&bytes), bytes))
}

fn is_docker_type(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == DOCKER_MANIFEST_LIST
}

impl BundlePlan {
    /// Add the OCI views of Docker-typed images (see [`oci_view`]) to the
    /// blobs and record their digests. Idempotent.
    pub fn add_oci_views(&mut self) -> Result<(), BundleError> {
        for img in &mut self.images {
            if img.index_digest.is_some() || !is_docker_type(&img.media_type) {
                continue;
            }
            let (size, bytes) = match self.blobs.get(&img.digest) {
                Some((size, BlobSource::Bytes(b))) => (*size, b.clone()),
                Some((size, BlobSource::File(p) | BlobSource::VerifiedFile(p))) => {
                    (*size, std::fs::read(p).map_err(|e| BundleError::io(p, e))?)
                }
                Some((size, BlobSource::Parts { paths, offset })) => {
                    let mut r = crate::parts::PartsReader::open(paths)?;
                    let mut b = vec![0; *size as usize];
                    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(*offset))
                        .and_then(|_| r.read_exact(&mut b))
                        .map_err(|e| BundleError::io(&paths[0], e))?;
                    (*size, b)
                }
                None => {
                    return Err(BundleError::Graph {
                        image: img.reference.to_string(),
                        digest: img.digest.clone(),
                        what: "missing manifest".into(),
                    })
                }
            };
            let (d, view) = oci_view(img, Some(&bytes), size).ok_or_else(|| BundleError::Graph {
                image: img.reference.to_string(),
                digest: img.digest.clone(),
                what: format!("is typed {} but is not one:", img.media_type),
            })?;
            self.blobs.insert(d.clone(), (view.len() as u64, BlobSource::Bytes(view)));
            img.index_digest = Some(d);
        }
        Ok(())
    }

    /// `index.json`: one entry per image, named for skopeo and containerd.
    pub fn index_json(&self) -> Vec<u8> {
        let manifests: Vec<serde_json::Value> = self
            .images
            .iter()
            .map(|img| {
                let (media_type, digest) = match &img.index_digest {
                    Some(d) => (OCI_INDEX, d),
                    None => (img.media_type.as_str(), &img.digest),
                };
                serde_json::json!({
                    "mediaType": media_type,
                    "digest": digest,
                    "size": self.blobs.get(digest).map(|b| b.0).unwrap_or(0),
                    "annotations": {
                        ANNOTATION_CONTAINERD_NAME: img.reference.to_string(),
                        ANNOTATION_REF_NAME: img.reference.to_string(),
                    }
                })
            })
            .collect();
        let index = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
        let mut out = serde_json::to_vec_pretty(&index).expect("json");
        out.push(b'\n');
        out
    }

    pub fn bundle_json(&self, index_json: &[u8]) -> BundleJson {
        let mut members = BTreeMap::new();
        members.insert(format::OCI_LAYOUT.to_owned(), Digest::of(format::OCI_LAYOUT_CONTENT));
        members.insert(format::INDEX_JSON.to_owned(), Digest::of(index_json));
        for d in self.blobs.keys() {
            members.insert(d.blob_path(), d.clone());
        }
        BundleJson {
            format_version: BundleJson::version_for(self.partial.as_ref()),
            name: self.name.clone(),
            created: format::rfc3339(self.created),
            tool: self.tool.clone(),
            images: self.images.clone(),
            members,
            partial: self.partial.clone(),
        }
    }

    /// Make this a partial bundle: the config and layer blobs `leave`
    /// selects are not written, and `bundle.json` says why (`partial`).
    /// The caller selects only config and layer blobs: manifests and indexes
    /// are always kept (a reader walks every image from them).
    pub fn leave_out(&mut self, partial: format::Partial, leave: impl Fn(&Digest, u64) -> bool) {
        self.blobs.retain(|d, (size, _)| !leave(d, *size));
        self.partial = Some(partial);
    }

    /// Write the bundle as `dir/content-NAME.tar` (or parts). Nothing gets its
    /// final name until everything is written and synced.
    pub fn write(&self, dir: &Path, opts: &WriteOptions) -> Result<Written, BundleError> {
        if self.images.iter().any(|i| i.index_digest.is_none() && is_docker_type(&i.media_type)) {
            let mut with_views = self.clone();
            with_views.add_oci_views()?;
            return with_views.write_as_is(dir, opts);
        }
        self.write_as_is(dir, opts)
    }

    fn write_as_is(&self, dir: &Path, opts: &WriteOptions) -> Result<Written, BundleError> {
        let base = dir.join(bundle_file_name(&self.name));
        let index = self.index_json();
        let meta = self.bundle_json(&index);
        // What a reader refuses is never written: a source registry's
        // platform strings, media types and the bundle's name land here.
        crate::names::check_bundle_json(&meta)
            .map_err(|name| BundleError::UnprintableName { path: base.clone(), name })?;
        let mut meta_bytes = serde_json::to_vec_pretty(&meta).expect("json");
        meta_bytes.push(b'\n');
        let mtime = format::epoch_seconds(self.created);
        let werr = |e: io::Error| BundleError::io(&base, e);

        let split = SplitWriter::new(&base, opts.part_size.unwrap_or(u64::MAX));
        let mut tar = tar::Builder::new(Counting { inner: split, count: 0, progress: opts.progress });
        append(&mut tar, format::BUNDLE_JSON, &meta_bytes[..], meta_bytes.len() as u64, mtime).map_err(werr)?;
        append(
            &mut tar,
            format::OCI_LAYOUT,
            format::OCI_LAYOUT_CONTENT,
            format::OCI_LAYOUT_CONTENT.len() as u64,
            mtime,
        )
        .map_err(werr)?;
        append(&mut tar, format::INDEX_JSON, &index[..], index.len() as u64, mtime).map_err(werr)?;
        for d in ["blobs/", "blobs/sha256/"] {
            let mut h = header(d, 0, mtime);
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_cksum();
            tar.append(&h, io::empty()).map_err(werr)?;
        }
        for (digest, (size, source)) in &self.blobs {
            let reader: Box<dyn Read> = match source {
                BlobSource::File(p) | BlobSource::VerifiedFile(p) => {
                    Box::new(File::open(p).map_err(|e| BundleError::io(p, e))?)
                }
                BlobSource::Bytes(b) => Box::new(&b[..]),
                BlobSource::Parts { paths, offset } => {
                    let mut r = crate::parts::PartsReader::open(paths)?;
                    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(*offset))
                        .map_err(|e| BundleError::io(&paths[0], e))?;
                    Box::new(r)
                }
            };
            if let BlobSource::VerifiedFile(p) = source {
                // Hashed on its way to disk moments ago; only the size is
                // checked (tar::Builder pads a short read instead of failing).
                let len = std::fs::metadata(p).map_err(|e| BundleError::io(p, e))?.len();
                if len != *size {
                    return Err(BundleError::SourceMismatch {
                        origin: p.display().to_string(),
                        digest: digest.clone(),
                        actual: Digest::of(b""),
                        bytes: len,
                    });
                }
                append(&mut tar, &digest.blob_path(), reader.take(*size), *size, mtime).map_err(werr)?;
                continue;
            }
            // Re-hash on the way in: a corrupted cache must not become a
            // corrupted bundle.
            let mut hr = HashingReader::new(reader.take(*size));
            append(&mut tar, &digest.blob_path(), &mut hr, *size, mtime).map_err(werr)?;
            let (actual, n) = hr.finish();
            if &actual != digest || n != *size {
                let source = match source {
                    BlobSource::File(p) | BlobSource::VerifiedFile(p) => p.display().to_string(),
                    BlobSource::Bytes(_) => "memory".to_owned(),
                    BlobSource::Parts { paths, .. } => paths[0].display().to_string(),
                };
                return Err(BundleError::SourceMismatch { origin: source, digest: digest.clone(), actual, bytes: n });
            }
        }
        let counting = tar.into_inner().map_err(werr)?;
        let total_bytes = counting.count;
        let paths = counting.inner.commit().map_err(werr)?;
        let zstd = if opts.zstd {
            Some(write_zstd(&paths, &base)?)
        } else {
            // A `.zst` of an earlier bundle of the same name would now lie.
            let stale = PathBuf::from(format!("{}.zst", base.display()));
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(BundleError::io(&stale, e)),
                _ => None,
            }
        };
        Ok(Written { paths, zstd, total_bytes, meta })
    }
}

fn header(path: &str, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("member paths are short and relative");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: impl Read, size: u64, mtime: u64) -> io::Result<()> {
    let mut h = header(path, size, mtime);
    h.set_cksum();
    tar.append(&h, data)
}

/// Compress the finished tar into `BASE.zst`, again through a temp name.
fn write_zstd(parts: &[PathBuf], base: &Path) -> Result<PathBuf, BundleError> {
    let mut out = base.as_os_str().to_owned();
    out.push(".zst");
    let out = PathBuf::from(out);
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (tmp, f) =
        edgeiso_contract::fs::create_locked(dir, &format!(".{}", out.file_name().unwrap().to_string_lossy()), "tmp")
            .map_err(|e| BundleError::io(&out, e))?;
    let result = (|| -> io::Result<()> {
        let mut enc = zstd::Encoder::new(io::BufWriter::with_capacity(1 << 20, f), 3)?;
        let threads = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        enc.multithread(threads)?;
        let mut r = crate::parts::PartsReader::open(parts).map_err(io::Error::other)?;
        io::copy(&mut r, &mut enc)?;
        let w = enc.finish()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &out)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        BundleError::io(&out, e)
    })?;
    Ok(out)
}

struct Counting<'a, W> {
    inner: W,
    count: u64,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        if let Some(p) = self.progress {
            p(n as u64);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
