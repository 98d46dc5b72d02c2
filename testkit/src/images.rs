//! Deterministic synthetic container images: the same bytes on every run.
//!
//! They are real enough for containerd to unpack: every layer is a tar stream
//! with files in it, and every config's `rootfs.diff_ids` is the sha256 of the
//! *uncompressed* tar, which containerd checks while unpacking.
//!
//! Determinism, and its two hazards:
//! - tar headers carry a fixed mtime, uid/gid 0, no user or group names; gzip
//!   headers carry mtime 0, no file name and OS byte 255, at fixed levels;
//! - JSON documents are serialised from structs (field order is declaration
//!   order), never from `serde_json::Value`, whose key order flips when any
//!   crate in a build enables serde_json's `preserve_order` feature;
//! - the one thing left to the build is the deflate backend: flate2 uses
//!   miniz_oxide unless some crate in the same build enables another backend.
//!   `tests/corpus.rs::corpus_digests_are_pinned` fails loudly if that ever changes
//!   the bytes.
//!
//! Manifests are pretty-printed on purpose: a consumer that re-serialises a
//! manifest (instead of keeping the exact bytes) changes its digest, and tests
//! built on this corpus catch that.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::Path;

use edgeiso_bundle::digest::HashingWriter;
use edgeiso_bundle::manifest::{
    Descriptor, ManifestView, Platform, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR,
    OCI_MANIFEST,
};
use edgeiso_bundle::Digest;
use flate2::{Compression, GzBuilder};
use serde::Serialize;

use crate::registry::Registry;

/// Docker schema-2 image config media type (not in `edgeiso_bundle::manifest`).
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker schema-2 gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The index.json annotation `write_oci_layout` names images with.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// mtime of every tar entry (2023-11-14T22:13:20Z): fixed so bytes never change.
const TAR_MTIME: u64 = 1_700_000_000;
/// The same instant, for `created` fields in configs.
const CREATED: &str = "2023-11-14T22:13:20Z";

/// One synthetic image: everything needed to push it, lay it out or save it.
/// (`Debug` summarises bytes as digests and sizes, so failed `assert_eq!`s
/// stay readable.)
#[derive(Clone, PartialEq, Eq)]
pub struct TestImage {
    /// e.g. "team/app"
    pub repository: String,
    /// e.g. "1.0"
    pub tag: String,
    /// Media type of the top-level manifest or index.
    pub media_type: String,
    /// Digest of the top-level manifest or index bytes.
    pub digest: Digest,
    /// Every manifest, children first, top-level LAST: (media type, exact bytes).
    pub manifests: Vec<(String, Vec<u8>)>,
    /// Configs and layers, by digest.
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

impl TestImage {
    /// The exact bytes of the top-level manifest or index.
    pub fn top_bytes(&self) -> &[u8] {
        &self.manifests.last().expect("a TestImage always has a top-level manifest").1
    }

    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// Whether the top level is an index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        edgeiso_bundle::manifest::is_index(&self.media_type)
    }

    /// Sum of the sizes of all blobs and manifests (what a full push uploads).
    pub fn total_bytes(&self) -> u64 {
        let blobs: usize = self.blobs.values().map(Vec::len).sum();
        let manifests: usize = self.manifests.iter().map(|(_, b)| b.len()).sum();
        (blobs + manifests) as u64
    }

    /// The image manifest for `platform` ("linux/amd64", "linux/arm64",
    /// "linux/arm64/v8"): for an index, the matching child; for a plain
    /// manifest, itself when its config's platform matches.
    pub fn platform_manifest(&self, platform: &str) -> Option<(Digest, Vec<u8>)> {
        let top = ManifestView::parse(self.top_bytes()).expect("testkit images have valid manifests");
        if top.is_index() {
            let child = top.manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| p.matches(platform)))?;
            let bytes = self.manifest_bytes(&child.digest)?;
            return Some((child.digest.clone(), bytes.to_vec()));
        }
        let config = top.config.as_ref()?;
        let config: ConfigPlatform = serde_json::from_slice(self.blobs.get(&config.digest)?).ok()?;
        let own = Platform { architecture: config.architecture, os: config.os, variant: config.variant };
        own.matches(platform).then(|| (self.digest.clone(), self.top_bytes().to_vec()))
    }

    /// The bytes of the manifest (child or top-level) with this digest.
    pub fn manifest_bytes(&self, digest: &Digest) -> Option<&[u8]> {
        self.manifests.iter().map(|(_, b)| b.as_slice()).find(|b| Digest::of(b) == *digest)
    }
}

impl std::fmt::Debug for TestImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let manifests: Vec<String> =
            self.manifests.iter().map(|(t, b)| format!("{t} {} ({} bytes)", Digest::of(b), b.len())).collect();
        let blobs: Vec<String> = self.blobs.iter().map(|(d, b)| format!("{d} ({} bytes)", b.len())).collect();
        f.debug_struct("TestImage")
            .field("repository", &self.repository)
            .field("tag", &self.tag)
            .field("media_type", &self.media_type)
            .field("digest", &self.digest)
            .field("manifests", &manifests)
            .field("blobs", &blobs)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct ConfigPlatform {
    architecture: String,
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

// ---------------------------------------------------------------------------
// Layers

/// A layer blob as it goes into a manifest.
#[derive(Clone, Debug)]
pub struct Layer {
    pub media_type: String,
    /// Digest of `bytes` (the blob as stored and pushed).
    pub digest: Digest,
    /// Digest of the uncompressed tar (what goes into `rootfs.diff_ids`).
    pub diff_id: Digest,
    pub bytes: Vec<u8>,
}

impl Layer {
    /// A gzip-compressed layer (level 6) of this tar, with the OCI media type.
    pub fn gzip(tar: &[u8]) -> Layer {
        let bytes = gzip(tar, Compression::new(6));
        Layer { media_type: OCI_LAYER_GZIP.into(), digest: Digest::of(&bytes), diff_id: Digest::of(tar), bytes }
    }

    /// An uncompressed layer: the tar itself, `application/vnd.oci.image.layer.v1.tar`.
    pub fn uncompressed(tar: Vec<u8>) -> Layer {
        let d = Digest::of(&tar);
        Layer { media_type: OCI_LAYER_TAR.into(), digest: d.clone(), diff_id: d, bytes: tar }
    }

    /// The same layer as a Docker schema-2 layer (only the media type changes:
    /// the bytes, and so the digest, are shared with the OCI flavour).
    pub fn as_docker(mut self) -> Layer {
        assert_eq!(self.media_type, OCI_LAYER_GZIP, "Docker schema-2 layers are gzip");
        self.media_type = DOCKER_LAYER_GZIP.into();
        self
    }
}

/// An entry of a synthetic layer: a path ending in '/' is a directory.
pub struct TarEntry<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub data: &'a [u8],
}

impl<'a> TarEntry<'a> {
    pub fn dir(path: &'a str) -> Self {
        TarEntry { path, mode: 0o755, data: b"" }
    }
    pub fn file(path: &'a str, data: &'a [u8]) -> Self {
        TarEntry { path, mode: 0o644, data }
    }
    pub fn exe(path: &'a str, data: &'a [u8]) -> Self {
        TarEntry { path, mode: 0o755, data }
    }
}

/// A tar stream with fixed headers (ustar, mtime fixed, uid/gid 0, no names).
pub fn tar_layer(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = fixed_header(e.mode, e.data.len() as u64);
        if e.path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
        }
        b.append_data(&mut h, e.path, e.data).expect("tar into memory");
    }
    b.into_inner().expect("tar into memory")
}

fn fixed_header(mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(TAR_MTIME);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// A gzip member with a fixed header (mtime 0, no name, OS 255).
fn gzip(data: &[u8], level: Compression) -> Vec<u8> {
    let mut enc = gzip_encoder(Vec::with_capacity(data.len() / 2 + 64), level);
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn gzip_encoder<W: Write>(w: W, level: Compression) -> flate2::write::GzEncoder<W> {
    GzBuilder::new().mtime(0).operating_system(255).write(w, level)
}

/// Deterministic, incompressible bytes (splitmix64, which is counter-based:
/// word k depends only on the seed and k, so the stream does not depend on how
/// a caller sizes its reads). A reader, so big layers can be generated without
/// holding the uncompressed tar in memory.
pub struct NoiseReader {
    seed: u64,
    pos: u64,
    len: u64,
}

impl NoiseReader {
    pub fn new(seed: u64, len: u64) -> Self {
        NoiseReader { seed: seed ^ 0x6a09_e667_f3bc_c908, pos: 0, len }
    }

    fn word(&self, k: u64) -> [u8; 8] {
        let mut z = self.seed.wrapping_add((k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }
}

impl Read for NoiseReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        let mut i = 0;
        while i < n {
            if self.pos.is_multiple_of(8) && n - i >= 8 {
                buf[i..i + 8].copy_from_slice(&self.word(self.pos / 8));
                i += 8;
                self.pos += 8;
            } else {
                buf[i] = self.word(self.pos / 8)[(self.pos % 8) as usize];
                i += 1;
                self.pos += 1;
            }
        }
        Ok(n)
    }
}

/// `len` deterministic incompressible bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    NoiseReader::new(seed, len as u64).read_to_end(&mut v).expect("noise");
    v
}

// ---------------------------------------------------------------------------
// Manifests and configs (structs, so field order is fixed)

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifestDoc<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexDoc<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ConfigDoc<'a> {
    created: &'a str,
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: &'a str,
    config: RunConfig,
    rootfs: RootFs,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
struct RunConfig {
    #[serde(rename = "Env")]
    env: Vec<String>,
    #[serde(rename = "Cmd")]
    cmd: Vec<String>,
    #[serde(rename = "WorkingDir")]
    working_dir: String,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Digest>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: String,
}

fn pretty(doc: &impl Serialize) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(doc).expect("serialise");
    v.push(b'\n');
    v
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// Which manifest format an image is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// OCI image manifest + OCI config.
    Oci,
    /// Docker schema-2 manifest + Docker config (layers must be gzip).
    Docker,
}

/// Parse "os/arch[/variant]".
fn parse_platform(platform: &str) -> (&str, &str, Option<&str>) {
    let mut it = platform.split('/');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => (os, arch, variant),
        _ => panic!("platform {platform:?} is not os/arch[/variant]"),
    }
}

/// One single-platform image from these layers (bottom first).
pub fn build_image(repository: &str, tag: &str, flavor: Flavor, platform: &str, layers: Vec<Layer>) -> TestImage {
    let (os, architecture, variant) = parse_platform(platform);
    let config = ConfigDoc {
        created: CREATED,
        architecture,
        variant,
        os,
        config: RunConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: vec!["/bin/hello".into()],
            working_dir: "/".into(),
        },
        rootfs: RootFs { kind: "layers", diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect() },
        history: layers
            .iter()
            .map(|l| History { created: CREATED, created_by: format!("edgeiso-testkit: add layer {}", l.diff_id) })
            .collect(),
    };
    let config = pretty(&config);
    let (manifest_type, config_type) = match flavor {
        Flavor::Oci => (OCI_MANIFEST, OCI_CONFIG),
        Flavor::Docker => {
            for l in &layers {
                assert_eq!(l.media_type, DOCKER_LAYER_GZIP, "Docker images take Layer::gzip(..).as_docker() layers");
            }
            (DOCKER_MANIFEST, DOCKER_CONFIG)
        }
    };
    let manifest = ImageManifestDoc {
        schema_version: 2,
        media_type: manifest_type,
        config: descriptor(config_type, &config),
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.digest.clone(),
                size: l.bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            })
            .collect(),
    };
    let manifest = pretty(&manifest);
    let mut blobs = BTreeMap::new();
    blobs.insert(Digest::of(&config), config);
    for l in layers {
        blobs.insert(l.digest, l.bytes);
    }
    TestImage {
        repository: repository.into(),
        tag: tag.into(),
        media_type: manifest_type.into(),
        digest: Digest::of(&manifest),
        manifests: vec![(manifest_type.into(), manifest)],
        blobs,
    }
}

/// An OCI index over single-platform images (their repository/tag are ignored).
pub fn build_index(repository: &str, tag: &str, children: Vec<TestImage>) -> TestImage {
    let mut descriptors = Vec::new();
    let mut manifests = Vec::new();
    let mut blobs = BTreeMap::new();
    for child in children {
        assert!(!child.is_index(), "build_index takes single-platform images");
        let bytes = child.top_bytes();
        let view = ManifestView::parse(bytes).expect("valid child manifest");
        let config: ConfigPlatform =
            serde_json::from_slice(&child.blobs[&view.config.as_ref().expect("config").digest]).expect("config");
        let mut d = descriptor(&child.media_type, bytes);
        d.platform = Some(Platform { architecture: config.architecture, os: config.os, variant: config.variant });
        descriptors.push(d);
        manifests.extend(child.manifests);
        blobs.extend(child.blobs);
    }
    let index = pretty(&IndexDoc { schema_version: 2, media_type: OCI_INDEX, manifests: descriptors });
    let digest = Digest::of(&index);
    manifests.push((OCI_INDEX.into(), index));
    TestImage { repository: repository.into(), tag: tag.into(), media_type: OCI_INDEX.into(), digest, manifests, blobs }
}

// ---------------------------------------------------------------------------
// The corpus

fn base_layer_tar(arch: &str) -> Vec<u8> {
    let os_release = format!("NAME=\"edgeiso test base\"\nID=edgeiso-test\nVERSION_ID=1\nARCH={arch}\n");
    let data = noise(if arch == "amd64" { 1 } else { 11 }, 48 * 1024);
    tar_layer(&[
        TarEntry::dir("bin/"),
        TarEntry::exe("bin/hello", b"#!/bin/sh\necho hello from the edgeiso test base\n"),
        TarEntry::dir("etc/"),
        TarEntry::file("etc/os-release", os_release.as_bytes()),
        TarEntry::dir("usr/"),
        TarEntry::dir("usr/share/"),
        TarEntry::file("usr/share/base.dat", &data),
    ])
}

fn app_layer_tar(dir: &str, name: &str, seed: u64, size: usize) -> Vec<u8> {
    let data = noise(seed, size);
    let text = format!("{{\"name\":\"{name}\"}}\n");
    let dir_slash = format!("{dir}/");
    let cfg = format!("{dir}/config.json");
    let dat = format!("{dir}/{name}.dat");
    tar_layer(&[TarEntry::dir(&dir_slash), TarEntry::file(&cfg, text.as_bytes()), TarEntry::file(&dat, &data)])
}

/// The shared amd64 base layer (gzip) used by app, web and multi's amd64 image.
pub fn base_layer() -> Layer {
    Layer::gzip(&base_layer_tar("amd64"))
}

/// The four-image corpus (about 200 KB in all):
/// 1. `team/app:1.0`   OCI manifest: base (gzip) + app layer (gzip);
/// 2. `team/web:2.1`   Docker schema-2 manifest, same base layer bytes + web layer;
/// 3. `team/multi:1.0` OCI index: linux/amd64 (shares base) and linux/arm64/v8;
/// 4. `team/raw:1.0`   OCI manifest with one uncompressed tar layer.
pub fn corpus() -> Vec<TestImage> {
    let base = base_layer();
    let app = build_image(
        "team/app",
        "1.0",
        Flavor::Oci,
        "linux/amd64",
        vec![base.clone(), Layer::gzip(&app_layer_tar("app", "app", 2, 16 * 1024))],
    );
    let web = build_image(
        "team/web",
        "2.1",
        Flavor::Docker,
        "linux/amd64",
        vec![base.clone().as_docker(), Layer::gzip(&app_layer_tar("srv/www", "web", 3, 16 * 1024)).as_docker()],
    );
    let multi_amd64 = build_image(
        "team/multi",
        "1.0",
        Flavor::Oci,
        "linux/amd64",
        vec![base, Layer::gzip(&app_layer_tar("opt/multi", "multi-amd64", 4, 8 * 1024))],
    );
    let multi_arm64 = build_image(
        "team/multi",
        "1.0",
        Flavor::Oci,
        "linux/arm64/v8",
        vec![
            Layer::gzip(&base_layer_tar("arm64")),
            Layer::gzip(&app_layer_tar("opt/multi", "multi-arm64", 5, 8 * 1024)),
        ],
    );
    let multi = build_index("team/multi", "1.0", vec![multi_amd64, multi_arm64]);
    let raw = build_image(
        "team/raw",
        "1.0",
        Flavor::Oci,
        "linux/amd64",
        vec![Layer::uncompressed(app_layer_tar("data", "raw", 6, 16 * 1024))],
    );
    vec![app, web, multi, raw]
}

/// One OCI image (linux/amd64) with one gzip layer holding `layer_bytes` of
/// incompressible data (one file, `data/blob-<seed>.bin`). Different seeds give
/// different layers. Takes about 20 ms per MiB in a debug build. The layer is streamed through the compressor (stored
/// deflate blocks: the data does not compress, and this keeps multi-GB layers
/// fast to generate), so only the compressed blob is held in memory.
pub fn image_with_layer(repository: &str, tag: &str, layer_bytes: usize, seed: u64) -> TestImage {
    let compressed = Vec::with_capacity(layer_bytes + layer_bytes / 4096 + 4096);
    let hashing = HashingWriter::new(gzip_encoder(compressed, Compression::none()));
    let mut b = tar::Builder::new(hashing);
    let mut h = fixed_header(0o644, layer_bytes as u64);
    b.append_data(&mut h, format!("data/blob-{seed}.bin"), NoiseReader::new(seed, layer_bytes as u64))
        .expect("tar into memory");
    let (gz, diff_id, _) = b.into_inner().expect("tar into memory").finish();
    let bytes = gz.finish().expect("gzip into memory");
    let layer = Layer { media_type: OCI_LAYER_GZIP.into(), digest: Digest::of(&bytes), diff_id, bytes };
    build_image(repository, tag, Flavor::Oci, "linux/amd64", vec![layer])
}

// ---------------------------------------------------------------------------
// Pushing

/// Push one image: blobs (HEAD, then POST + monolithic PUT when missing), then
/// child manifests by digest, then the top-level by digest, then the tag.
/// Panics with the registry's answer on any failure.
pub fn push(registry: &Registry, image: &TestImage) {
    let repo = &image.repository;
    for (digest, bytes) in &image.blobs {
        if !registry.blob_exists(repo, digest.as_str()) {
            registry.upload_blob(repo, digest, bytes);
        }
    }
    for (media_type, bytes) in &image.manifests {
        registry.put_manifest(repo, Digest::of(bytes).as_str(), media_type, bytes);
    }
    registry.put_manifest(repo, &image.tag, &image.media_type, image.top_bytes());
}

pub fn push_all(registry: &Registry, images: &[TestImage]) {
    for image in images {
        push(registry, image);
    }
}

// ---------------------------------------------------------------------------
// OCI image layout

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayoutIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

/// Write an OCI image layout into `dir` (created if missing): `oci-layout`,
/// `index.json` naming each image `org.opencontainers.image.ref.name =
/// "<repository>:<tag>"`, and `blobs/sha256/*` holding every manifest and blob.
pub fn write_oci_layout(dir: &Path, images: &[TestImage]) {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).unwrap_or_else(|e| panic!("create {}: {e}", blob_dir.display()));
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    let mut written = BTreeSet::new();
    let mut entries = Vec::new();
    for image in images {
        let all = image.blobs.iter().map(|(d, b)| (d.clone(), b.as_slice()));
        let all = all.chain(image.manifests.iter().map(|(_, b)| (Digest::of(b), b.as_slice())));
        for (digest, bytes) in all {
            if written.insert(digest.clone()) {
                write(&blob_dir.join(digest.hex()), bytes);
            }
        }
        let mut d = descriptor(&image.media_type, image.top_bytes());
        d.annotations.insert(ANNOTATION_REF_NAME.into(), image.reference());
        entries.push(d);
    }
    write(&dir.join("oci-layout"), b"{\"imageLayoutVersion\":\"1.0.0\"}");
    write(
        &dir.join("index.json"),
        &pretty(&LayoutIndex { schema_version: 2, media_type: OCI_INDEX, manifests: entries }),
    );
}

// ---------------------------------------------------------------------------
// docker save

#[derive(Serialize)]
struct DockerSaveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Serialize)]
struct LegacyLayerJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
    created: &'a str,
    container_config: LegacyContainerConfig,
}

#[derive(Serialize)]
struct LegacyContainerConfig {
    #[serde(rename = "Cmd")]
    cmd: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct ConfigRootFs {
    rootfs: ConfigDiffIds,
}

#[derive(serde::Deserialize)]
struct ConfigDiffIds {
    diff_ids: Vec<Digest>,
}

/// Write a `docker save`-style tar (the pre-containerd-store format docker
/// wrote up to v24): `<v1 id>/{VERSION,json,layer.tar}` per layer, with
/// `layer.tar` UNCOMPRESSED; `<config hex>.json`; `manifest.json`;
/// `repositories`. Layer directories are named by a chain id (parent + diff
/// id), as docker's v1 ids were, so a layer at the same position in two images
/// is written once; a layer whose content was already written under another
/// directory becomes a relative symlink `../<id>/layer.tar`, as old docker did.
/// Only single-platform images: panics on an index.
pub fn write_docker_save(path: &Path, images: &[TestImage]) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut out = tar::Builder::new(io::BufWriter::new(file));
    let add_file = |out: &mut tar::Builder<_>, name: &str, data: &[u8]| {
        let mut h = fixed_header(0o644, data.len() as u64);
        out.append_data(&mut h, name, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    let mut dirs_written = BTreeSet::new();
    let mut diff_id_paths: BTreeMap<Digest, String> = BTreeMap::new();
    let mut configs_written = BTreeSet::new();
    let mut manifest_json = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        assert!(
            !image.is_index(),
            "write_docker_save: {} is an index; docker save archives hold single-platform images only",
            image.reference()
        );
        let view = ManifestView::parse(image.top_bytes()).expect("valid manifest");
        let config_digest = &view.config.as_ref().expect("image manifest has a config").digest;
        let config = &image.blobs[config_digest];
        let diff_ids: ConfigRootFs = serde_json::from_slice(config).expect("config with rootfs.diff_ids");
        let diff_ids = diff_ids.rootfs.diff_ids;
        assert_eq!(diff_ids.len(), view.layers.len(), "{}: diff_ids and layers differ in count", image.reference());
        let config_name = format!("{}.json", config_digest.hex());
        if configs_written.insert(config_name.clone()) {
            add_file(&mut out, &config_name, config);
        }
        let mut parent: Option<String> = None;
        let mut layer_paths = Vec::new();
        for (layer, diff_id) in view.layers.iter().zip(&diff_ids) {
            let id = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                format!("{}\n{}", parent.as_deref().unwrap_or(""), diff_id).as_bytes(),
            ));
            let layer_path = format!("{id}/layer.tar");
            if dirs_written.insert(id.clone()) {
                let mut h = fixed_header(0o755, 0);
                h.set_entry_type(tar::EntryType::Directory);
                out.append_data(&mut h, format!("{id}/"), io::empty()).expect("tar");
                add_file(&mut out, &format!("{id}/VERSION"), b"1.0");
                let legacy = LegacyLayerJson {
                    id: &id,
                    parent: parent.as_deref(),
                    created: CREATED,
                    container_config: LegacyContainerConfig { cmd: None },
                };
                add_file(&mut out, &format!("{id}/json"), &serde_json::to_vec(&legacy).expect("json"));
                match diff_id_paths.get(diff_id) {
                    Some(first) => {
                        let mut h = fixed_header(0o644, 0);
                        h.set_entry_type(tar::EntryType::Symlink);
                        out.append_link(&mut h, &layer_path, format!("../{first}")).expect("tar symlink");
                    }
                    None => {
                        let tar = uncompressed_layer(image, layer, diff_id);
                        add_file(&mut out, &layer_path, &tar);
                        diff_id_paths.insert(diff_id.clone(), layer_path.clone());
                    }
                }
            }
            layer_paths.push(layer_path);
            parent = Some(id);
        }
        manifest_json.push(DockerSaveEntry {
            config: config_name,
            repo_tags: vec![image.reference()],
            layers: layer_paths,
        });
        if let Some(top) = parent {
            repositories.entry(image.repository.clone()).or_default().insert(image.tag.clone(), top);
        }
    }
    add_file(&mut out, "manifest.json", &serde_json::to_vec(&manifest_json).expect("json"));
    add_file(&mut out, "repositories", &serde_json::to_vec(&repositories).expect("json"));
    out.into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("finish {}: {e}", path.display()));
}

/// The uncompressed tar of a layer blob, checked against its diff id.
fn uncompressed_layer(image: &TestImage, layer: &Descriptor, diff_id: &Digest) -> Vec<u8> {
    let blob = image
        .blobs
        .get(&layer.digest)
        .unwrap_or_else(|| panic!("{}: missing blob {}", image.reference(), layer.digest));
    let tar = if layer.media_type.ends_with("gzip") {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut tar).expect("gunzip layer");
        tar
    } else {
        blob.clone()
    };
    assert_eq!(Digest::of(&tar), *diff_id, "{}: layer {} does not match its diff id", image.reference(), layer.digest);
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_does_not_depend_on_read_sizes() {
        let whole = noise(7, 1001);
        let mut r = NoiseReader::new(7, 1001);
        let mut pieces = Vec::new();
        let mut buf = [0u8; 13];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            pieces.extend_from_slice(&buf[..n]);
        }
        assert_eq!(whole, pieces);
        assert_ne!(noise(7, 64), noise(8, 64));
    }
}
