//! `edgeiso bundle import`: turn airgap artifacts that already exist into a
//! bundle. OCI layout folders are read in place; archives (.tar, .tar.gz,
//! .tar.zst; compression found by magic bytes, not by name) are streamed once
//! into a content-addressed staging folder inside the output folder.
//!
//! Archive member names are never used as paths on disk: each file is stored
//! under its sha256, so a hostile archive (`..`, absolute paths, links out,
//! devices) cannot write anywhere; such members are refused outright anyway,
//! naming the archive and the member. Links are resolved lexically, a
//! symlink from its own folder (old `docker save` writes `../<id>/layer.tar`),
//! a hard link from the archive root, and refused only when they lead out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use edgeiso_bundle::digest::HashingWriter;
use edgeiso_bundle::format::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use edgeiso_bundle::manifest::{self, Descriptor, ManifestView, Platform};
use edgeiso_bundle::writer::{BlobSource, BundlePlan, WriteOptions};
use edgeiso_bundle::{Digest, ImageRecord, ImageRef, Role};

use crate::create::OutputOptions;
use crate::exit::{self, with_code};
use crate::ui::{human_bytes, Event, Ui};

/// `edgeiso bundle import`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// OCI layout folders, OCI archives or `docker save` tarballs.
    pub sources: Vec<PathBuf>,
    pub output: OutputOptions,
    /// Bundle name (the file is `content-NAME.tar`).
    pub name: String,
}

/// The import staging folders beside the output (locked while their run lives).
const STAGING_PREFIX: &str = ".edgeiso-import-";

/// Where the files of one source are: path inside the source -> blob.
struct SourceFiles {
    label: String,
    files: BTreeMap<String, (Digest, u64, PathBuf)>,
}

impl SourceFiles {
    fn get(&self, path: &str) -> Option<&(Digest, u64, PathBuf)> {
        self.files.get(path)
    }
    fn read(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let (_, size, p) = self.get(path).ok_or_else(|| anyhow!("{}: no {path}", self.label))?;
        if *size > edgeiso_bundle::reader::MAX_MANIFEST_BYTES {
            bail!("{}: {path} is {size} bytes, too large for a manifest", self.label);
        }
        std::fs::read(p).with_context(|| format!("{}: {path}", self.label))
    }
}

pub fn import(ui: &Ui, args: &ImportOptions) -> anyhow::Result<()> {
    let name_ok = !args.name.is_empty()
        && args
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_');
    if !name_ok {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow!("--name {:?}: use lower-case letters, digits, '-', '_' and '.'", args.name),
        ));
    }
    let out_dir = &args.output.dir;
    std::fs::create_dir_all(out_dir).with_context(|| format!("output folder {}", out_dir.display()))?;
    let _output = crate::output_lock::lock_output(out_dir, &args.name)?;
    crate::cache::sweep_stale_temps(out_dir);
    edgeiso_contract::fs::sweep_orphan_dirs(out_dir, STAGING_PREFIX);
    let staging = edgeiso_contract::fs::create_locked_dir(out_dir, STAGING_PREFIX)
        .with_context(|| format!("staging folder in {}", out_dir.display()))?;

    let mut images: Vec<ImageRecord> = Vec::new();
    let mut blobs: BTreeMap<Digest, (u64, BlobSource)> = BTreeMap::new();
    let mut split_bundles = BTreeSet::new();
    for src in &args.sources {
        // All parts of one split bundle (a shell glob names each) are one source.
        let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some((stem, _)) = part_number(&name) {
            if !split_bundles.insert(src.with_file_name(stem)) {
                continue;
            }
        }
        let files = if src.is_dir() { scan_dir(src)? } else { stage_archive(src, staging.path())? };
        let before = images.len();
        import_source(&files, &mut images, &mut blobs).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
        ui.line(format!("{}: {} image(s)", src.display(), images.len() - before));
    }
    let mut seen = BTreeSet::new();
    for i in &images {
        if !seen.insert(i.reference.to_string()) {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow!("image {} appears in more than one source", i.reference),
            ));
        }
    }
    if images.is_empty() {
        return Err(with_code(exit::INVALID_INPUT, anyhow!("no images found in the sources")));
    }
    let plan = BundlePlan {
        name: args.name.clone(),
        created: edgeiso_bundle::format::creation_time().map_err(|e| with_code(exit::INVALID_INPUT, e))?,
        tool: format!("edgeiso {}", env!("CARGO_PKG_VERSION")),
        images,
        blobs,
        partial: None,
    };
    let total = plan.blobs.values().map(|b| b.0).sum();
    let bar = ui.bytes_bar(total, "writing");
    let progress = |n: u64| bar.inc(n);
    let opts =
        WriteOptions { part_size: Some(args.output.part_size), zstd: args.output.zstd, progress: Some(&progress) };
    let written = plan.write(out_dir, &opts)?;
    bar.finish_and_clear();
    for p in &written.paths {
        ui.print(p.display().to_string());
    }
    ui.line(format!(
        "bundle {}: {} images, {}",
        args.name,
        written.meta.images.len(),
        human_bytes(written.total_bytes)
    ));
    ui.event(&Event::Done {
        paths: written.paths.clone(),
        zstd: written.zstd.clone(),
        bytes: written.total_bytes,
        images: written.meta.images.len(),
        unique_blob_bytes: None,
    });
    Ok(())
}

/// An OCI layout folder, read in place.
fn scan_dir(dir: &Path) -> anyhow::Result<SourceFiles> {
    let label = dir.display().to_string();
    let mut files = BTreeMap::new();
    for name in ["index.json", "oci-layout", "manifest.json"] {
        let p = dir.join(name);
        if p.is_file() {
            let (d, n) = edgeiso_bundle::digest::digest_reader(File::open(&p)?)?;
            files.insert(name.to_owned(), (d, n, p));
        }
    }
    if !files.contains_key("index.json") {
        return Err(with_code(exit::INVALID_INPUT, anyhow!("{label}: not an OCI image layout (no index.json)")));
    }
    let blob_dir = dir.join("blobs/sha256");
    if let Ok(rd) = std::fs::read_dir(&blob_dir) {
        for e in rd.flatten() {
            let hex = e.file_name().to_string_lossy().into_owned();
            let Ok(d) = format!("sha256:{hex}").parse::<Digest>() else { continue };
            let meta = e.metadata()?;
            if meta.is_file() {
                // Trusting the name here is safe: the bundle writer re-hashes
                // every blob it copies and refuses a mismatch.
                files.insert(d.blob_path(), (d, meta.len(), e.path()));
            }
        }
    }
    Ok(SourceFiles { label, files })
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// `io::copy` that tells a bad archive (read) from a full disk (write).
fn copy_member(from: &mut impl Read, to: &mut impl std::io::Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// The number NN of a split part named `<file>_partNN`.
fn part_number(name: &str) -> Option<(&str, u32)> {
    let (stem, n) = name.rsplit_once("_part")?;
    if stem.is_empty() || n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem, n.parse().ok()?))
}

/// An archive as one byte stream. A Palette content bundle split by CanvOS
/// (`<file>_part00`, `_part01`, ...) is read as the concatenation of its
/// parts, in number order, whichever part (or the unsplit `<file>` name,
/// when it does not exist) is given; a gap in the numbering is refused.
fn open_parts(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    let label = path.display().to_string();
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = match part_number(&file_name) {
        Some((stem, _)) => stem.to_owned(),
        None if !path.exists() => file_name.clone(),
        None => return Ok(Box::new(File::open(path).with_context(|| label.clone())?)),
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut parts: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("{label}: reading {}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (s, n) = part_number(&name)?;
            (s == stem).then(|| (n, e.path()))
        })
        .collect();
    parts.sort();
    if parts.is_empty() {
        return Err(anyhow!("{label}: no such file, and no split parts {stem}_partNN beside it"));
    }
    let first = parts[0].0;
    if first > 1 {
        return Err(with_code(exit::INVALID_INPUT, anyhow!("{label}: the first part, {stem}_part00, is missing")));
    }
    for (i, (n, _)) in parts.iter().enumerate() {
        if *n != first + i as u32 {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow!("{label}: split part {stem}_part{:02} is missing", first + i as u32),
            ));
        }
    }
    let mut reader: Box<dyn Read> = Box::new(std::io::empty());
    for (_, p) in parts {
        let f = File::open(&p).with_context(|| p.display().to_string())?;
        reader = Box::new(reader.chain(f));
    }
    Ok(reader)
}

/// Stream an archive into `staging`, one content-addressed file per member.
fn stage_archive(path: &Path, staging: &Path) -> anyhow::Result<SourceFiles> {
    let label = path.display().to_string();
    let mut reader = BufReader::with_capacity(1 << 20, open_parts(path)?);
    let magic = {
        let buf = std::io::BufRead::fill_buf(&mut reader).with_context(|| label.clone())?;
        buf[..buf.len().min(4)].to_vec()
    };
    let decoded: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    };
    let invalid =
        |member: &str, why: String| with_code(exit::INVALID_INPUT, anyhow!("{label}: member {member:?}: {why}"));
    let mut files: BTreeMap<String, (Digest, u64, PathBuf)> = BTreeMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut archive = tar::Archive::new(decoded);
    let entries =
        archive.entries().map_err(|e| with_code(exit::INVALID_INPUT, anyhow!("{label}: not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| with_code(exit::INVALID_INPUT, anyhow!("{label}: unreadable archive: {e}")))?;
        let raw = entry.path().map_err(|e| invalid("?", e.to_string()))?.into_owned();
        let shown = raw.display().to_string();
        let kind = entry.header().entry_type();
        // `./` (the archive's root folder) is common and harmless.
        if kind.is_dir() && raw.components().all(|c| matches!(c, Component::CurDir)) {
            continue;
        }
        let name = clean_member(&raw).map_err(|why| invalid(&shown, why))?;
        match kind {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // Inside this run's locked staging folder: no other run sweeps it.
                let (tmp, file) = edgeiso_contract::fs::create_locked(staging, "member", "tmp")?;
                let _remove = edgeiso_contract::fs::RemoveOnDrop(tmp.clone());
                let mut w = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
                copy_member(&mut entry, &mut w).map_err(|e| match e {
                    CopyError::Read(e) => invalid(&shown, format!("cannot read: {e}")),
                    // A full disk is ours, not the archive's fault: exit 1.
                    CopyError::Write(e) => anyhow!("{label}: member {shown:?}: writing to {}: {e}", staging.display()),
                })?;
                let (bw, digest, size) = w.finish();
                bw.into_inner().map_err(|e| e.into_error())?;
                let dest = staging.join(digest.hex());
                std::fs::rename(&tmp, &dest)?;
                files.insert(name, (digest, size, dest));
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target =
                    entry.link_name().ok().flatten().ok_or_else(|| invalid(&shown, "link without a target".into()))?;
                let target = target.into_owned();
                // A symlink is relative to its own folder (docker <= 24 wrote
                // `<id2>/layer.tar -> ../<id1>/layer.tar`); a hard link to the
                // archive root.
                let base = if kind == tar::EntryType::Symlink { Path::new(&name).parent() } else { None };
                let resolved = resolve_link(base.unwrap_or(Path::new("")), &target).map_err(|why| {
                    let what = if kind == tar::EntryType::Symlink { "symlink" } else { "hard link" };
                    invalid(&shown, format!("{what} to {}: {why}", target.display()))
                })?;
                links.push((name, resolved));
            }
            other => return Err(invalid(&shown, format!("{other:?} members (devices, fifos) are not allowed"))),
        }
    }
    // Links resolve to files staged above (or to other links, a few hops).
    for _ in 0..8 {
        let mut unresolved = Vec::new();
        for (name, target) in links {
            match files.get(&target).cloned() {
                Some(f) => {
                    files.insert(name, f);
                }
                None => unresolved.push((name, target)),
            }
        }
        links = unresolved;
        if links.is_empty() {
            break;
        }
    }
    if let Some((name, target)) = links.first() {
        return Err(invalid(name, format!("link to {target}, which is not a file in the archive")));
    }
    // A vendor bundle may wrap the layout in a folder: use the shallowest one.
    let prefix = files
        .keys()
        .filter_map(|k| k.strip_suffix("index.json"))
        .filter(|p| p.is_empty() || p.ends_with('/'))
        .min_by_key(|p| p.len())
        .map(str::to_owned);
    let files = match prefix {
        Some(p) if !p.is_empty() => {
            files.into_iter().filter_map(|(k, v)| k.strip_prefix(&p).map(|s| (s.to_owned(), v))).collect()
        }
        _ => files,
    };
    Ok(SourceFiles { label, files })
}

/// A member name as a clean relative path, or why it is refused.
fn clean_member(p: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path".into()),
        }
    }
    if parts.is_empty() {
        return Err("empty name".into());
    }
    Ok(parts.join("/"))
}

/// Where a link with this target, in folder `base` (a clean member path),
/// points: lexically, `..` taking off one folder. Refused when it is absolute
/// or climbs above the archive root. Nothing is ever extracted, so lexical
/// resolution is all there is: the result names another member or nothing.
fn resolve_link(base: &Path, target: &Path) -> Result<String, String> {
    let mut parts: Vec<String> = base.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    for c in target.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err("points outside the archive".into());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path, outside the archive".into()),
        }
    }
    if parts.is_empty() {
        return Err("points at the archive root, not a file".into());
    }
    Ok(parts.join("/"))
}

fn import_source(
    src: &SourceFiles,
    images: &mut Vec<ImageRecord>,
    blobs: &mut BTreeMap<Digest, (u64, BlobSource)>,
) -> anyhow::Result<()> {
    if src.get("index.json").is_some() {
        import_oci_layout(src, images, blobs)
    } else if src.get("manifest.json").is_some() {
        import_docker_save(src, images, blobs)
    } else {
        bail!("{}: neither an OCI image layout (index.json) nor a `docker save` archive (manifest.json)", src.label)
    }
}

fn blob_of<'a>(src: &'a SourceFiles, image: &str, d: &Digest) -> anyhow::Result<&'a (Digest, u64, PathBuf)> {
    let f = src.get(&d.blob_path()).ok_or_else(|| anyhow!("{}: image {image}: blob {d} is missing", src.label))?;
    if &f.0 != d {
        bail!("{}: image {image}: blob {d} does not match its digest (it hashes to {})", src.label, f.0);
    }
    Ok(f)
}

fn import_oci_layout(
    src: &SourceFiles,
    images: &mut Vec<ImageRecord>,
    blobs: &mut BTreeMap<Digest, (u64, BlobSource)>,
) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Descriptor>,
    }
    let index: Index =
        serde_json::from_slice(&src.read("index.json")?).map_err(|e| anyhow!("{}: index.json: {e}", src.label))?;
    for (n, entry) in index.manifests.iter().enumerate() {
        let reference = entry_reference(src, n, entry)?;
        let image = reference.to_string();
        let (bytes, path) = read_manifest(src, &image, entry)?;
        let view = parse_manifest(src, &image, entry, &bytes)?;
        let missing: Vec<&Descriptor> = if view.is_index() {
            view.manifests.iter().filter(|c| src.get(&c.digest.blob_path()).is_none()).collect()
        } else {
            Vec::new()
        };
        let record = |digest: Digest, stored: Stored, source_digest: Option<Digest>| ImageRecord {
            reference: reference.clone(),
            digest,
            media_type: stored.media_type,
            platforms: stored.platforms,
            role: Role::Workload,
            size: stored.size,
            source_digest,
            index_digest: None,
        };
        if missing.is_empty() {
            let stored = store_graph(src, &image, entry, bytes, BlobSource::File(path), blobs)?;
            images.push(record(entry.digest.clone(), stored, None));
            continue;
        }
        // A partial index (`ctr export --platform`, Docker >= 25 `docker
        // save`): it lists every platform, the source holds only some.
        let kept = present_children(&view.manifests, &missing);
        if !kept.iter().any(|c| !is_attestation(c)) {
            let missing: Vec<String> = missing.iter().map(|c| c.digest.to_string()).collect();
            bail!(
                "{}: image {image}: index {} lists {} manifest(s) and none of them is in the source (missing: {})",
                src.label,
                entry.digest,
                view.manifests.len(),
                missing.join(", ")
            );
        }
        if let [child] = kept.as_slice() {
            // One platform: its manifest is the image, as `docker pull` stores it.
            let (bytes, path) = read_manifest(src, &image, child)?;
            let stored = store_graph(src, &image, child, bytes, BlobSource::File(path), blobs)?;
            images.push(record(child.digest.clone(), stored, Some(entry.digest.clone())));
        } else {
            // Several: a new index listing just those (everything else in the
            // source index's JSON kept as it was).
            let mut json: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("{}: image {image}: {}: {e}", src.label, entry.digest))?;
            let keep: BTreeSet<String> = kept.iter().map(|c| c.digest.to_string()).collect();
            if let Some(list) = json.get_mut("manifests").and_then(|m| m.as_array_mut()) {
                list.retain(|m| m.get("digest").and_then(|d| d.as_str()).is_some_and(|d| keep.contains(d)));
            }
            let new_bytes = serde_json::to_vec(&json)?;
            let desc = Descriptor {
                media_type: view.effective_media_type(Some(&entry.media_type)),
                digest: Digest::of(&new_bytes),
                size: new_bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            };
            let stored = store_graph(src, &image, &desc, new_bytes.clone(), BlobSource::Bytes(new_bytes), blobs)?;
            images.push(record(desc.digest.clone(), stored, Some(entry.digest.clone())));
        }
    }
    Ok(())
}

/// The name of the image an index.json entry holds. containerd (`ctr
/// export`), buildkit and Docker >= 25 put the full name in
/// `io.containerd.image.name` and only the tag in ref.name; Hauler, skopeo and
/// edgeiso put the full name in ref.name.
fn entry_reference(src: &SourceFiles, n: usize, entry: &Descriptor) -> anyhow::Result<ImageRef> {
    let at = format!("{}: index.json entry {n} ({})", src.label, entry.digest);
    if let Some(name) = entry.annotations.get(ANNOTATION_CONTAINERD_NAME) {
        return ImageRef::parse(name).map_err(|e| anyhow!("{at}: {ANNOTATION_CONTAINERD_NAME}: {e}"));
    }
    let Some(ref_name) = entry.annotations.get(ANNOTATION_REF_NAME) else {
        bail!(
            "{at} has no {ANNOTATION_CONTAINERD_NAME} or {ANNOTATION_REF_NAME} annotation to name the image; \
             add {ANNOTATION_CONTAINERD_NAME} with its full name (e.g. docker.io/library/nginx:1.25)"
        );
    };
    // A tag cannot hold '/', ':' or '@'; a reference without any of them
    // (`1.25`, `latest`, even `nginx`) may be a tag alone, and parsing it as
    // a name would invent `docker.io/library/1.25:latest`.
    if !ref_name.contains(['/', ':', '@']) {
        bail!(
            "{at}: {ANNOTATION_REF_NAME} is {ref_name:?}, which may be a tag alone rather than an image name; \
             add an {ANNOTATION_CONTAINERD_NAME} annotation with the image's full name \
             (e.g. docker.io/library/nginx:1.25)"
        );
    }
    ImageRef::parse(ref_name).map_err(|e| anyhow!("{at}: {ANNOTATION_REF_NAME}: {e}"))
}

/// A manifest's bytes, checked against its descriptor, and where they are.
fn read_manifest(src: &SourceFiles, image: &str, desc: &Descriptor) -> anyhow::Result<(Vec<u8>, PathBuf)> {
    let f = blob_of(src, image, &desc.digest)?;
    let bytes = src.read(&desc.digest.blob_path())?;
    if Digest::of(&bytes) != desc.digest {
        bail!("{}: image {image}: manifest {} does not match its digest", src.label, desc.digest);
    }
    if bytes.len() as u64 != desc.size {
        bail!(
            "{}: image {image}: manifest {} is {} bytes, its descriptor says {}",
            src.label,
            desc.digest,
            bytes.len(),
            desc.size
        );
    }
    Ok((bytes, f.2.clone()))
}

/// Parse a manifest and check that it is what its descriptor says it is:
/// a wrong media type carried into the bundle would make every registry
/// refuse the push, or every client misread the image.
fn parse_manifest(src: &SourceFiles, image: &str, desc: &Descriptor, bytes: &[u8]) -> anyhow::Result<ManifestView> {
    let view = ManifestView::parse(bytes).map_err(|e| anyhow!("{}: image {image}: {}: {e}", src.label, desc.digest))?;
    let contradiction = match view.media_type.as_deref() {
        Some(own) if own != desc.media_type => Some(format!("the manifest itself says {own}")),
        Some(_) => None,
        None if view.is_index() != manifest::is_index(&desc.media_type) => {
            let what = if view.is_index() { "an index" } else { "an image manifest" };
            Some(format!("the document is {what}"))
        }
        None => None,
    };
    if let Some(why) = contradiction {
        bail!(
            "{}: image {image}: manifest {} is listed with media type {}, but {why}",
            src.label,
            desc.digest,
            desc.media_type
        );
    }
    Ok(view)
}

/// The children of a partial index that are kept: those in the source, less
/// attestations of images that are not.
fn present_children<'a>(children: &'a [Descriptor], missing: &[&Descriptor]) -> Vec<&'a Descriptor> {
    let absent = |d: &Digest| missing.iter().any(|m| &m.digest == d);
    children
        .iter()
        .filter(|c| !absent(&c.digest))
        .filter(|c| match c.annotations.get("vnd.docker.reference.digest") {
            Some(subject) if is_attestation(c) => subject.parse::<Digest>().is_ok_and(|d| !absent(&d)),
            _ => true,
        })
        .collect()
}

/// A buildkit attestation manifest (platform `unknown/unknown`), not an image.
fn is_attestation(d: &Descriptor) -> bool {
    d.annotations.get("vnd.docker.reference.type").is_some_and(|t| t == "attestation-manifest")
        || d.platform.as_ref().is_some_and(|p| p.os == "unknown")
}

struct Stored {
    media_type: String,
    platforms: Vec<String>,
    size: u64,
}

/// Add `root` (bytes already read and checked) and everything under it to
/// `blobs`.
fn store_graph(
    src: &SourceFiles,
    image: &str,
    root: &Descriptor,
    root_bytes: Vec<u8>,
    root_source: BlobSource,
    blobs: &mut BTreeMap<Digest, (u64, BlobSource)>,
) -> anyhow::Result<Stored> {
    let mut size = 0;
    let mut platforms = Vec::new();
    let mut media_type = None;
    // Each manifest once: an index that repeats a child (200 times on 4
    // levels) is walked, sized and described linearly in unique nodes.
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    let mut stack = vec![(root.clone(), Some((root_bytes, root_source)), 0)];
    while let Some((desc, read, depth)) = stack.pop() {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let (bytes, source) = match read {
            Some(r) => r,
            None => {
                let (bytes, path) = read_manifest(src, image, &desc)?;
                (bytes, BlobSource::File(path))
            }
        };
        let view = parse_manifest(src, image, &desc, &bytes)?;
        media_type.get_or_insert_with(|| view.effective_media_type(Some(&desc.media_type)));
        size += bytes.len() as u64;
        blobs.insert(desc.digest.clone(), (bytes.len() as u64, source));
        if depth > 3 {
            bail!("{}: image {image}: indexes nested too deeply", src.label);
        }
        for child in &view.manifests {
            if let Some(p) = child.platform.as_ref().filter(|p| p.os != "unknown") {
                if !platforms.contains(&p.id()) {
                    platforms.push(p.id());
                }
            }
            if !seen.contains(&child.digest) {
                stack.push((child.clone(), None, depth + 1));
            }
        }
        for b in view.blobs() {
            if !seen.insert(b.digest.clone()) {
                continue;
            }
            let f = blob_of(src, image, &b.digest)?;
            if f.1 != b.size {
                bail!("{}: image {image}: blob {} is {} bytes, its manifest says {}", src.label, b.digest, f.1, b.size);
            }
            blobs.insert(b.digest.clone(), (f.1, BlobSource::File(f.2.clone())));
            size += b.size;
        }
        if platforms.is_empty() && !view.is_index() {
            if let Some(c) = &view.config {
                platforms
                    .extend(Platform::of_config(&std::fs::read(&blob_of(src, image, &c.digest)?.2)?).map(|p| p.id()));
            }
        }
    }
    Ok(Stored { media_type: media_type.unwrap_or_else(|| root.media_type.clone()), platforms, size })
}

/// Old-style `docker save` archives (k3s airgap image tarballs): one OCI
/// manifest is written for each, over the same config and layer bytes.
fn import_docker_save(
    src: &SourceFiles,
    images: &mut Vec<ImageRecord>,
    blobs: &mut BTreeMap<Digest, (u64, BlobSource)>,
) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(&src.read("manifest.json")?)
        .map_err(|e| anyhow!("{}: manifest.json: {e}", src.label))?;
    for (n, e) in entries.iter().enumerate() {
        let tags = e.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            bail!("{}: manifest.json entry {n} has no RepoTags to name the image", src.label);
        }
        let file = |p: &str| {
            let key = clean_member(Path::new(p))
                .map_err(|why| anyhow!("{}: manifest.json entry {n}: {p:?} {why}", src.label))?;
            src.get(&key).cloned().ok_or_else(|| anyhow!("{}: manifest.json entry {n}: {p} is missing", src.label))
        };
        let config = file(&e.config)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let f = file(l)?;
            let mut magic = [0u8; 2];
            let gz = File::open(&f.2).and_then(|mut h| h.read_exact(&mut magic)).is_ok() && magic == [0x1f, 0x8b];
            let media_type = if gz { manifest::OCI_LAYER_GZIP } else { manifest::OCI_LAYER_TAR };
            layers.push(serde_json::json!({ "mediaType": media_type, "digest": f.0, "size": f.1 }));
            blobs.insert(f.0.clone(), (f.1, BlobSource::File(f.2.clone())));
        }
        blobs.insert(config.0.clone(), (config.1, BlobSource::File(config.2.clone())));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": { "mediaType": manifest::OCI_CONFIG, "digest": config.0, "size": config.1 },
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest)?;
        let digest = Digest::of(&bytes);
        let size =
            bytes.len() as u64 + config.1 + e.layers.iter().filter_map(|l| file(l).ok()).map(|f| f.1).sum::<u64>();
        let platforms: Vec<String> =
            Platform::of_config(&std::fs::read(&config.2)?).map(|p| p.id()).into_iter().collect();
        blobs.insert(digest.clone(), (bytes.len() as u64, BlobSource::Bytes(bytes)));
        for t in tags {
            let reference = ImageRef::parse(&t).map_err(|e| anyhow!("{}: manifest.json entry {n}: {e}", src.label))?;
            images.push(ImageRecord {
                reference,
                digest: digest.clone(),
                media_type: manifest::OCI_MANIFEST.into(),
                platforms: platforms.clone(),
                role: Role::Workload,
                size,
                source_digest: None,
                index_digest: None,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk while staging is a write error, not a bad archive.
    #[test]
    fn a_full_disk_is_a_write_error_and_a_bad_archive_a_read_error() {
        let mut full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut data: &[u8] = &[7u8; 1 << 20];
        assert!(matches!(copy_member(&mut data, &mut full), Err(CopyError::Write(_))));
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt zstd frame"))
            }
        }
        assert!(matches!(copy_member(&mut Broken, &mut Vec::new()), Err(CopyError::Read(_))));
        let mut data: &[u8] = b"hello";
        let mut out = Vec::new();
        assert!(matches!(copy_member(&mut data, &mut out), Ok(5)));
        assert_eq!(out, b"hello");
    }
}
