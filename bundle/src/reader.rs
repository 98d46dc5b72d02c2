//! Opening a bundle: find its parts, index the tar members by offset without
//! reading their data, and read `bundle.json`. Any blob can then be streamed
//! by offset, which is what lets the agent push straight off the ISO.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::format::{BundleJson, Partial, BUNDLE_JSON, FORMAT_VERSION, FORMAT_VERSION_PARTIAL};
use crate::manifest::{Descriptor, ManifestView};
use crate::parts::{self, PartsReader};
use crate::{BundleError, Digest, ImageRecord};

/// Where a member's data lies in the bundle's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberLoc {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct Bundle {
    /// The tar, or its parts in order.
    pub paths: Vec<PathBuf>,
    pub meta: BundleJson,
    /// Raw bytes of `bundle.json` as stored.
    pub meta_bytes: Vec<u8>,
    members: BTreeMap<String, MemberLoc>,
    /// Regular-file members in archive order, `bundle.json` first.
    order: Vec<String>,
    total_len: u64,
}

/// Manifests and blobs one image needs, in push order.
#[derive(Debug, Clone, Default)]
pub struct ImageGraph {
    /// Image manifests before the index that lists them; the top-level one last.
    pub manifests: Vec<Descriptor>,
    /// Config and layer blobs the bundle holds, each once.
    pub blobs: Vec<Descriptor>,
    /// Config and layer blobs the manifests reference that a partial bundle
    /// leaves out, each once (always empty for a whole bundle, whose walk
    /// fails on a missing blob instead).
    pub absent: Vec<Descriptor>,
}

impl ImageGraph {
    /// Bytes of every manifest and blob the image needs, held or not.
    pub fn total_size(&self) -> u64 {
        self.manifests.iter().chain(&self.blobs).chain(&self.absent).map(|d| d.size).sum()
    }
}

/// Manifests are small; anything bigger than this is not one (registries cap
/// them at 4 MiB) and reading it into memory would be a mistake.
pub const MAX_MANIFEST_BYTES: u64 = 8 << 20;

impl Bundle {
    /// Open the bundle at `path`: a tar, a `.partNNN` file, or a tar name whose
    /// parts exist.
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        let paths = parts::discover(path)?;
        parts::check_part_sizes(&paths)?;
        let mut reader = PartsReader::open(&paths)?;
        let total_len = reader.len();
        let shown = paths[0].clone();
        let not_bundle = |reason: String| BundleError::NotABundle { path: shown.clone(), reason };

        let mut members = BTreeMap::new();
        let mut order = Vec::new();
        {
            let mut archive = tar::Archive::new(&mut reader);
            let entries = archive.entries_with_seek().map_err(|e| not_bundle(format!("not a tar archive: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| not_bundle(format!("unreadable tar header: {e}")))?;
                let name = entry.path().map_err(|e| not_bundle(format!("bad member name: {e}")))?;
                let name = name.to_string_lossy().trim_start_matches("./").to_owned();
                crate::names::check_member_name(&name)
                    .map_err(|name| BundleError::UnprintableName { path: shown.clone(), name })?;
                let kind = entry.header().entry_type();
                if kind.is_dir() {
                    continue;
                }
                if !kind.is_file() {
                    return Err(not_bundle(format!("member {name} is not a regular file ({kind:?})")));
                }
                let loc = MemberLoc { offset: entry.raw_file_position(), size: entry.size() };
                if order.is_empty() && name != BUNDLE_JSON {
                    return Err(not_bundle(format!("first member is {name}, not {BUNDLE_JSON}")));
                }
                let available = total_len.saturating_sub(loc.offset);
                if loc.size > available {
                    if let Some(e) = ended_early(&paths) {
                        return Err(e);
                    }
                    return Err(BundleError::Truncated {
                        path: paths.last().cloned().unwrap_or_default(),
                        member: name,
                        needed: loc.size,
                        available,
                    });
                }
                if members.insert(name.clone(), loc).is_some() {
                    return Err(not_bundle(format!("member {name} appears twice")));
                }
                order.push(name);
            }
        }
        let Some(meta_loc) = members.get(BUNDLE_JSON).copied() else {
            return Err(not_bundle(format!("no {BUNDLE_JSON}")));
        };
        if meta_loc.size > MAX_MANIFEST_BYTES * 4 {
            return Err(not_bundle(format!("{BUNDLE_JSON} is implausibly large ({} bytes)", meta_loc.size)));
        }
        let meta_bytes = read_range(&mut reader, meta_loc).map_err(|e| BundleError::io(&shown, e))?;
        let meta: BundleJson =
            serde_json::from_slice(&meta_bytes).map_err(|e| not_bundle(format!("{BUNDLE_JSON}: {e}")))?;
        crate::names::check_bundle_json(&meta)
            .map_err(|name| BundleError::UnprintableName { path: shown.clone(), name })?;
        // Version 2 is a partial bundle and nothing else: a `partial`
        // under version 1 (which old readers would ignore) is refused too.
        if meta.format_version != BundleJson::version_for(meta.partial.as_ref()) {
            return Err(not_bundle(match &meta.partial {
                None if meta.format_version == FORMAT_VERSION_PARTIAL => {
                    format!("format version {FORMAT_VERSION_PARTIAL} without a `partial` description")
                }
                None => format!(
                    "format version {} (this edgeiso reads versions {FORMAT_VERSION} and {FORMAT_VERSION_PARTIAL})",
                    meta.format_version
                ),
                Some(_) => format!(
                    "format version {} with a `partial` description (a partial bundle is version \
                     {FORMAT_VERSION_PARTIAL})",
                    meta.format_version
                ),
            }));
        }
        let bundle = Bundle { paths, meta, meta_bytes, members, order, total_len };
        // A part cut at a member boundary leaves a valid-looking tar: only the
        // member list in bundle.json shows what is gone.
        if let Some(missing) = bundle.meta.members.keys().find(|m| !bundle.members.contains_key(*m)) {
            if let Some(e) = ended_early(&bundle.paths) {
                return Err(e);
            }
            return Err(BundleError::MissingMember {
                path: bundle.paths.last().cloned().unwrap(),
                member: missing.clone(),
            });
        }
        // The tar's end-of-archive marker (two zero blocks) is the last thing
        // written: without it, a part that held only the tail is missing.
        let data_end = bundle.members.values().map(|l| (l.offset + l.size).div_ceil(512) * 512).max().unwrap_or(0);
        if bundle.total_len < data_end + 1024 {
            return Err(ended_early(&bundle.paths).unwrap_or_else(|| BundleError::Truncated {
                path: bundle.paths.last().cloned().unwrap(),
                member: "(end-of-archive marker)".into(),
                needed: 1024,
                available: bundle.total_len.saturating_sub(data_end),
            }));
        }
        Ok(bundle)
    }

    /// What a thin or delta bundle leaves out; `None` for a whole bundle.
    pub fn partial(&self) -> Option<&Partial> {
        self.meta.partial.as_ref()
    }

    /// A whole bundle, or [`BundleError::Partial`]: for the readers that
    /// push or copy every blob and cannot fetch one from elsewhere (yet).
    pub fn require_whole(&self) -> Result<(), BundleError> {
        match self.partial() {
            None => Ok(()),
            Some(p) => Err(BundleError::Partial { path: self.path().to_path_buf(), partial: p.clone() }),
        }
    }

    /// sha256 of `bundle.json` as stored: what a delta records of its base.
    pub fn bundle_json_sha256(&self) -> Digest {
        Digest::of(&self.meta_bytes)
    }

    /// A path to name this bundle in messages (the tar, or its first part).
    pub fn path(&self) -> &Path {
        &self.paths[0]
    }

    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    pub fn reader(&self) -> Result<PartsReader, BundleError> {
        PartsReader::open(&self.paths)
    }

    pub fn member(&self, name: &str) -> Option<MemberLoc> {
        self.members.get(name).copied()
    }

    /// Regular-file members in archive order.
    pub fn members(&self) -> impl Iterator<Item = (&str, MemberLoc)> {
        self.order.iter().map(|n| (n.as_str(), self.members[n]))
    }

    /// Bytes of all blobs, each counted once: what a registry must store.
    pub fn unique_blob_bytes(&self) -> u64 {
        self.members().filter(|(n, _)| n.starts_with("blobs/")).map(|(_, l)| l.size).sum()
    }

    /// The config and layer blobs a partial bundle leaves out, each once,
    /// with their sizes (empty for a whole bundle).
    pub fn left_out(&self) -> Result<BTreeMap<Digest, u64>, BundleError> {
        let mut out = BTreeMap::new();
        if self.partial().is_some() {
            for img in &self.meta.images {
                out.extend(self.image_graph(img)?.absent.into_iter().map(|d| (d.digest, d.size)));
            }
        }
        Ok(out)
    }

    pub fn blob(&self, digest: &Digest) -> Option<MemberLoc> {
        self.member(&digest.blob_path())
    }

    /// A reader over one member's bytes.
    pub fn open_member(&self, name: &str) -> Result<std::io::Take<PartsReader>, BundleError> {
        let loc = self
            .member(name)
            .ok_or_else(|| BundleError::MissingMember { path: self.path().to_path_buf(), member: name.to_owned() })?;
        let mut r = self.reader()?;
        r.seek(SeekFrom::Start(loc.offset)).map_err(|e| BundleError::io(self.path(), e))?;
        Ok(r.take(loc.size))
    }

    /// A small member (manifest, index.json) read whole.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>, BundleError> {
        let loc = self
            .member(name)
            .ok_or_else(|| BundleError::MissingMember { path: self.path().to_path_buf(), member: name.to_owned() })?;
        if loc.size > MAX_MANIFEST_BYTES {
            return Err(BundleError::NotABundle {
                path: self.path().to_path_buf(),
                reason: format!("member {name} is {} bytes, too large for a manifest", loc.size),
            });
        }
        let mut r = self.reader()?;
        read_range(&mut r, loc).map_err(|e| BundleError::io(self.path(), e))
    }

    /// Read a manifest blob and check it against its digest.
    pub fn read_manifest(&self, image: &str, digest: &Digest) -> Result<Vec<u8>, BundleError> {
        let bytes = self.read_small(&digest.blob_path()).map_err(|e| match e {
            BundleError::MissingMember { .. } => {
                BundleError::Graph { image: image.into(), digest: digest.clone(), what: "missing manifest".into() }
            }
            other => other,
        })?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(BundleError::DigestMismatch { image: image.into(), digest: digest.clone(), actual });
        }
        Ok(bytes)
    }

    /// Everything `image` needs, children before parents, each blob once.
    pub fn image_graph(&self, image: &ImageRecord) -> Result<ImageGraph, BundleError> {
        let name = image.reference.to_string();
        let top = Descriptor {
            media_type: image.media_type.clone(),
            digest: image.digest.clone(),
            size: 0,
            platform: None,
            annotations: Default::default(),
        };
        let mut graph = ImageGraph::default();
        let mut seen = Seen::default();
        self.walk(&name, top, &mut graph, &mut seen, 0)?;
        Ok(graph)
    }

    fn walk(
        &self,
        image: &str,
        mut desc: Descriptor,
        graph: &mut ImageGraph,
        seen: &mut Seen,
        depth: u32,
    ) -> Result<(), BundleError> {
        let graph_err = |d: &Digest, what: String| BundleError::Graph { image: image.into(), digest: d.clone(), what };
        // Linear in unique nodes: an index that lists one child 200 times on
        // 4 levels is walked once per child, not 200^4 times.
        if !seen.manifests.insert(desc.digest.clone()) {
            return Ok(());
        }
        if depth > 4 {
            return Err(graph_err(&desc.digest, "indexes nested too deeply at".into()));
        }
        let bytes = self.read_manifest(image, &desc.digest)?;
        desc.size = bytes.len() as u64;
        let view = ManifestView::parse(&bytes).map_err(|e| graph_err(&desc.digest, format!("bad manifest ({e}):")))?;
        for child in &view.manifests {
            self.walk(image, child.clone(), graph, seen, depth + 1)?;
        }
        for b in view.blobs() {
            match self.blob(&b.digest) {
                // A partial bundle leaves config and layer blobs out on
                // purpose (verify accounts for each); a whole one never.
                None if self.meta.partial.is_some() => {
                    if seen.blobs.insert(b.digest.clone()) {
                        graph.absent.push(b.clone());
                    }
                    continue;
                }
                None => return Err(graph_err(&b.digest, "missing blob".into())),
                Some(loc) if loc.size != b.size => {
                    return Err(graph_err(
                        &b.digest,
                        format!("size mismatch (stored {} bytes, manifest says {}) for blob", loc.size, b.size),
                    ))
                }
                Some(_) => {}
            }
            if seen.blobs.insert(b.digest.clone()) {
                graph.blobs.push(b.clone());
            }
        }
        graph.manifests.push(desc);
        Ok(())
    }
}

/// Manifests and blobs an image walk has already met.
#[derive(Default)]
struct Seen {
    manifests: BTreeSet<Digest>,
    blobs: BTreeSet<Digest>,
}

/// When the byte stream ends early, the culprit is the part after the last
/// one present if that one is full-size (a whole part is missing), else
/// `None`: the last part itself was cut short. `None` for a single tar.
fn ended_early(paths: &[PathBuf]) -> Option<BundleError> {
    let next = parts::next_part(paths)?;
    let len = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).ok();
    // A bundle that fits one part is written as `NAME.tar`, so a lone
    // `.part000` always had successors.
    (paths.len() == 1 || len(&paths[paths.len() - 1]) == len(&paths[0])).then_some(BundleError::NextPartMissing(next))
}

impl Bundle {
    /// A plan for a new bundle named `name` holding only this bundle's images
    /// of `role` (the bootstrap images k3s/RKE2 import at boot), streaming
    /// their blobs out of this bundle. `None` when there are none.
    pub fn subset(&self, role: crate::Role, name: &str) -> Result<Option<crate::writer::BundlePlan>, BundleError> {
        use crate::writer::BlobSource;
        let images: Vec<ImageRecord> = self.meta.images.iter().filter(|i| i.role == role).cloned().collect();
        if images.is_empty() {
            return Ok(None);
        }
        let mut blobs = BTreeMap::new();
        for img in &images {
            let graph = self.image_graph(img)?;
            let view = img.index_digest.iter().map(|d| Descriptor {
                media_type: crate::manifest::OCI_INDEX.into(),
                digest: d.clone(),
                size: 0,
                platform: None,
                annotations: Default::default(),
            });
            for d in graph.manifests.iter().cloned().chain(graph.blobs.iter().cloned()).chain(view) {
                let loc = self.blob(&d.digest).ok_or_else(|| BundleError::Graph {
                    image: img.reference.to_string(),
                    digest: d.digest.clone(),
                    what: "missing blob".into(),
                })?;
                blobs.insert(d.digest, (loc.size, BlobSource::Parts { paths: self.paths.clone(), offset: loc.offset }));
            }
        }
        let created = humantime::parse_rfc3339(&self.meta.created).unwrap_or(std::time::UNIX_EPOCH);
        Ok(Some(crate::writer::BundlePlan {
            name: name.to_owned(),
            created,
            tool: self.meta.tool.clone(),
            images,
            blobs,
            partial: None,
        }))
    }
}

fn read_range(r: &mut PartsReader, loc: MemberLoc) -> std::io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(loc.offset))?;
    let mut buf = vec![0; loc.size as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}
