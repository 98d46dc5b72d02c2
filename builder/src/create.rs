//! `edgeiso bundle create`: resolve every reference first (all failures
//! reported together, before a byte is downloaded), pin them in
//! `edgeiso.lock`, download the missing blobs in parallel into the cache, then
//! write the bundle through temp names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use edgeiso_bundle::manifest::{Descriptor, ManifestView, Platform};
use edgeiso_bundle::writer::{BlobSource, BundlePlan, WriteOptions, Written};
use edgeiso_bundle::{BaseBundle, Bundle, Digest, ImageRecord, ImageRef, Partial, Role};
use edgeiso_installer_config::spec::{ImageSpec, Platforms, Spec};
use futures_util::stream::{self, StreamExt};

use crate::cache::BlobCache;
use crate::exit::{self, with_code};
use crate::lockfile::{self, LockFile};
use crate::source::{PullError, Source};
use crate::ui::{human_bytes, Event, Ui};

/// Blobs downloaded at once, unless told otherwise.
pub const DEFAULT_CONCURRENCY: u16 = 8;

/// Where and how a bundle is written.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    /// Folder to write `content-NAME.tar` (or its parts) into.
    pub dir: PathBuf,
    /// Parts of at most this many bytes.
    pub part_size: u64,
    /// Also write `NAME.tar.zst`.
    pub zstd: bool,
}

/// `edgeiso bundle create`, and the bundle step of `iso`/`build`.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub output: OutputOptions,
    /// Use the digests in `edgeiso.lock` beside the spec.
    pub locked: bool,
    /// Blob cache folder (default: the user's cache folder).
    pub cache: Option<PathBuf>,
    /// Blobs downloaded at once.
    pub concurrency: usize,
    /// A whole bundle, or which blobs a partial one leaves out.
    pub partial: PartialOptions,
}

/// `bundle create`'s `--thin` and `--base` (decision 0016).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PartialOptions {
    /// Every blob.
    #[default]
    Whole,
    /// No config or layer blob of a workload image (bootstrap images whole).
    Thin,
    /// No config or layer blob this (whole) bundle holds.
    Delta(PathBuf),
}

/// The base of a delta: a whole bundle that verifies, and that the delta
/// (`content-NAME.tar` in `out`) would not replace; else exit 3 naming it.
fn open_base(ui: &Ui, path: &std::path::Path, out: &std::path::Path, name: &str) -> anyhow::Result<Bundle> {
    let invalid = |e: String| with_code(exit::INVALID_INPUT, anyhow::anyhow!("--base {}: {e}", path.display()));
    let base = Bundle::open(path).map_err(|e| invalid(e.to_string()))?;
    let target = std::fs::canonicalize(out).map(|d| d.join(edgeiso_bundle::writer::bundle_file_name(name)));
    let first = std::fs::canonicalize(base.path()).map(|p| edgeiso_bundle::parts::part_base(&p).unwrap_or(p));
    if let (Ok(target), Ok(first)) = (target, first) {
        if target == first {
            return Err(invalid(format!(
                "the delta would replace its own base ({}): write it to another --output folder",
                target.display()
            )));
        }
    }
    base.require_whole().map_err(|e| invalid(format!("{e} (a delta is made on a whole bundle)")))?;
    ui.line(format!("verifying the base {}", base.path().display()));
    let report = edgeiso_bundle::verify::verify(&base, &|_| {}).map_err(|e| invalid(e.to_string()))?;
    if let Some(first) = report.problems.first() {
        return Err(invalid(format!("damaged: {} problem(s), first: {first}", report.problems.len())));
    }
    Ok(base)
}

/// Which config and layer blobs (digest, size) a partial bundle leaves out.
type LeaveOut<'a> = Box<dyn Fn(&Digest, u64) -> bool + 'a>;

/// The partial description of a new bundle and what it leaves out: a thin
/// one every config and layer blob (but a bootstrap image's, see `create`);
/// a delta those the base pins in its
/// bundle.json and holds at that size (the base was verified when opened).
fn leave_out<'a>(partial: &PartialOptions, base: Option<&'a Bundle>) -> Option<(Partial, LeaveOut<'a>)> {
    match (partial, base) {
        (PartialOptions::Thin, _) => Some((Partial::Thin, Box::new(|_: &Digest, _| true))),
        (PartialOptions::Delta(_), Some(base)) => Some((
            Partial::Delta {
                base: BaseBundle { name: base.meta.name.clone(), bundle_json_sha256: base.bundle_json_sha256() },
            },
            Box::new(move |d: &Digest, size| {
                base.meta.members.get(&d.blob_path()) == Some(d) && base.blob(d).is_some_and(|l| l.size == size)
            }),
        )),
        _ => None,
    }
}

/// Build the bundle of `spec`: resolve, lock, pull, write.
pub fn create_bundle(ui: &Ui, spec: &Spec, opts: &CreateOptions) -> anyhow::Result<Written> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(create(ui, spec, opts))
}

/// One image of the spec, as the bundle will hold it.
struct Planned {
    reference: ImageRef,
    role: Role,
    platforms: Platforms,
    /// What the registry served for the reference (index or manifest).
    served: Digest,
    /// The top-level manifest or index stored, and its media type.
    top: (Digest, String),
    /// Every manifest stored for this image (children first, top last).
    manifests: Vec<(Digest, Vec<u8>)>,
    blobs: Vec<Descriptor>,
    stored_platforms: Vec<String>,
}

async fn create(ui: &Ui, spec: &Spec, args: &CreateOptions) -> anyhow::Result<Written> {
    // First: a second run into the same output fails before it downloads.
    std::fs::create_dir_all(&args.output.dir)
        .with_context(|| format!("output folder {}", args.output.dir.display()))?;
    let _output = crate::output_lock::lock_output(&args.output.dir, &spec.name)?;
    // A bad base fails before anything is resolved or pulled.
    let base = match &args.partial {
        PartialOptions::Delta(p) => Some(open_base(ui, p, &args.output.dir, &spec.name)?),
        _ => None,
    };
    let partial = leave_out(&args.partial, base.as_ref());
    let cache = BlobCache::open(args.cache.clone())?;
    let lock_path = lockfile::path_for(&spec.source_path);
    let lock = lockfile::read(&lock_path).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    // Harbor's own images must run before Harbor exists: bootstrap images,
    // even when the spec also lists one under `images`.
    let harbor_refs = edgeiso_installer_config::harbor_images(spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let harbor: Vec<ImageSpec> = harbor_refs
        .iter()
        .filter(|r| !spec.all_images().any(|i| &i.reference == *r))
        .map(|reference| ImageSpec {
            reference: reference.clone(),
            platforms: Platforms::List(vec!["linux/amd64".into()]),
        })
        .collect();
    let entries: Vec<(&ImageSpec, Role)> = spec
        .images
        .iter()
        .map(|i| (i, if harbor_refs.contains(&i.reference) { Role::Bootstrap } else { Role::Workload }))
        .chain(spec.bootstrap_images.iter().chain(&harbor).map(|i| (i, Role::Bootstrap)))
        .collect();
    let source = Source::for_images(spec, entries.iter().map(|(i, _)| &i.reference))
        .map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    if entries.is_empty() {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("{}: no images to bundle", spec.source_path.display()),
        ));
    }

    // 1. Resolve every reference to a digest; report every failure at once.
    let pins: Vec<ImageRef> = if args.locked {
        let lock = lock.as_ref().ok_or_else(|| {
            with_code(exit::INVALID_INPUT, anyhow::anyhow!("--locked, but {} does not exist", lock_path.display()))
        })?;
        let missing: Vec<String> = entries
            .iter()
            .filter(|(i, _)| !lock.images.contains_key(i.reference.as_str()))
            .map(|(i, _)| i.reference.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!("--locked, but {} has no digest for: {}", lock_path.display(), missing.join(", ")),
            ));
        }
        entries.iter().map(|(i, _)| i.reference.pinned(&lock.images[i.reference.as_str()])).collect()
    } else {
        entries.iter().map(|(i, _)| i.reference.clone()).collect()
    };
    ui.line(format!("resolving {} images", entries.len()));
    let resolved: Vec<Result<(Vec<u8>, Digest), PullError>> =
        stream::iter(pins.iter().map(|r| source.manifest(r))).buffered(8).collect().await;
    let mut failures = Vec::new();
    let mut tops = Vec::new();
    for ((img, _), r) in entries.iter().zip(resolved) {
        match r {
            Ok(t) => {
                ui.event(&Event::Resolved { image: img.reference.to_string(), digest: t.1.clone() });
                tops.push(t)
            }
            Err(e) => failures.push(e),
        }
    }
    fail_together(failures, "could not resolve")?;

    if !args.locked {
        // Merge, not replace: specs of several sites may share one folder
        // (and one lock); a reference pins the same digest for all of them.
        let mut images = lock.map(|l| l.images).unwrap_or_default();
        images.extend(entries.iter().zip(&tops).map(|((i, _), (_, d))| (i.reference.to_string(), d.clone())));
        let lock = LockFile { version: lockfile::LOCK_VERSION, images };
        if lockfile::write(&lock_path, &lock)? {
            ui.line(format!("wrote {}", lock_path.display()));
        }
    }

    // 2. Choose platforms and fetch the child manifests that are kept.
    let mut planned = Vec::new();
    let mut failures = Vec::new();
    for (((img, role), (bytes, digest)), pin) in entries.iter().zip(tops).zip(&pins) {
        match plan_image(&source, pin, img.reference.clone(), *role, img.platforms.clone(), bytes, digest).await {
            Ok(p) => match too_large_for_harbor(&p.reference, &p.manifests) {
                Some(e) => failures.push(e),
                None => planned.push(p),
            },
            Err(e) => failures.push(e),
        }
    }
    fail_together(failures, "could not plan")?;
    // A thin bundle still carries its bootstrap images whole: nodes import
    // them from the bundle at boot, before any registry runs (Harbor's own
    // images among them), so nothing could fetch them.
    let bootstrap_blobs: std::collections::BTreeSet<Digest> = match args.partial {
        PartialOptions::Thin => planned
            .iter()
            .filter(|p| p.role == Role::Bootstrap)
            .flat_map(|p| p.blobs.iter().map(|b| b.digest.clone()))
            .collect(),
        _ => Default::default(),
    };
    let left_out = |b: &Descriptor| {
        !bootstrap_blobs.contains(&b.digest) && partial.as_ref().is_some_and(|(_, leave)| leave(&b.digest, b.size))
    };

    // 3. Download every blob the cache lacks.
    // A partial bundle's left-out blobs are not pulled, but for a single
    // manifest's config: it says the image's platform.
    let mut wanted: BTreeMap<Digest, (u64, ImageRef)> = BTreeMap::new();
    for p in &planned {
        let config = p.blobs.first().filter(|_| p.stored_platforms.is_empty());
        for b in p.blobs.iter().filter(|b| !left_out(b) || Some(*b) == config) {
            wanted.entry(b.digest.clone()).or_insert((b.size, p.reference.clone()));
        }
    }
    let missing: Vec<(Digest, u64, ImageRef)> =
        wanted.iter().filter(|(d, (s, _))| !cache.has(d, *s)).map(|(d, (s, r))| (d.clone(), *s, r.clone())).collect();
    let missing_bytes: u64 = missing.iter().map(|m| m.1).sum();
    ui.line(format!(
        "{} unique blobs, {} cached, downloading {} ({})",
        wanted.len(),
        wanted.len() - missing.len(),
        missing.len(),
        human_bytes(missing_bytes)
    ));
    // Downloaded now means hashed as written: the writer need not hash again.
    let fresh: std::collections::BTreeSet<Digest> = missing.iter().map(|m| m.0.clone()).collect();
    download(ui, &source, &cache, missing, missing_bytes, args.concurrency).await?;

    // 4. Write the bundle.
    let mut blobs: BTreeMap<Digest, (u64, BlobSource)> = BTreeMap::new();
    let mut images = Vec::new();
    let mut mismatched = Vec::new();
    let planned_blobs: Vec<Descriptor> = planned.iter().flat_map(|p| p.blobs.iter().cloned()).collect();
    for p in planned {
        let mut size = 0;
        for (d, bytes) in &p.manifests {
            size += bytes.len() as u64;
            blobs.insert(d.clone(), (bytes.len() as u64, BlobSource::Bytes(bytes.clone())));
        }
        for b in &p.blobs {
            size += b.size;
            let path = cache.path(&b.digest);
            let source =
                if fresh.contains(&b.digest) { BlobSource::VerifiedFile(path) } else { BlobSource::File(path) };
            blobs.insert(b.digest.clone(), (b.size, source));
        }
        let platforms = if p.stored_platforms.is_empty() {
            // A single manifest: its config says what it runs on, and that
            // must be what the spec asked for (index children were chosen so).
            let declared = p.blobs.first().and_then(|c| std::fs::read(cache.path(&c.digest)).ok());
            let declared = declared.as_deref().and_then(Platform::of_config);
            if let (Platforms::List(wanted), Some(have)) = (&p.platforms, &declared) {
                if !wanted.iter().any(|w| have.matches(w)) {
                    let have = have.id();
                    mismatched.push(format!("  - {}: is {have}, the spec wants {}", p.reference, wanted.join(", ")));
                }
            }
            declared.iter().map(Platform::id).collect()
        } else {
            p.stored_platforms
        };
        ui.line(format!("  {} [{}] {} {}", p.reference, p.role, platforms.join(","), human_bytes(size)));
        images.push(ImageRecord {
            reference: p.reference,
            digest: p.top.0.clone(),
            media_type: p.top.1,
            platforms,
            role: p.role,
            size,
            source_digest: (p.served != p.top.0).then_some(p.served),
            index_digest: None,
        });
    }
    if !mismatched.is_empty() {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("images for the wrong platform (set `platforms` on them):\n{}", mismatched.join("\n")),
        ));
    }
    let mut plan = BundlePlan {
        name: spec.name.clone(),
        created: edgeiso_bundle::format::creation_time().map_err(|e| with_code(exit::INVALID_INPUT, e))?,
        tool: format!("edgeiso {}", env!("CARGO_PKG_VERSION")),
        images,
        blobs,
        partial: None,
    };
    let config_and_layers: std::collections::BTreeSet<Digest> =
        planned_blobs.iter().filter(|b| left_out(b)).map(|b| b.digest.clone()).collect();
    let before: u64 = plan.blobs.values().map(|b| b.0).sum();
    if let Some((description, _)) = &partial {
        plan.leave_out(description.clone(), |d, _| config_and_layers.contains(d));
    }
    let left_out_bytes = before - plan.blobs.values().map(|b| b.0).sum::<u64>();
    crate::cache::sweep_stale_temps(&args.output.dir);
    let total: u64 = plan.blobs.values().map(|b| b.0).sum();
    let bar = ui.bytes_bar(total, "writing");
    let written = {
        let progress = |n: u64| bar.inc(n);
        let opts =
            WriteOptions { part_size: Some(args.output.part_size), zstd: args.output.zstd, progress: Some(&progress) };
        let plan = &plan;
        let out = &args.output.dir;
        tokio::task::block_in_place(|| plan.write(out, &opts)).map_err(|e| match e {
            edgeiso_bundle::BundleError::SourceMismatch { ref digest, .. } => {
                cache.evict(digest);
                with_code(
                    exit::VERIFY_FAILED,
                    anyhow::anyhow!("{e}: the cache entry was damaged and is removed; run again"),
                )
            }
            e => e.into(),
        })?
    };
    bar.finish_and_clear();
    let unique: u64 = total;
    let summed: u64 = written.meta.images.iter().map(|i| i.size).sum();
    for p in &written.paths {
        ui.print(p.display().to_string());
    }
    if let Some(z) = &written.zstd {
        ui.print(z.display().to_string());
    }
    ui.line(format!(
        "bundle {}: {} images, {} ({} saved by deduplication)",
        spec.name,
        written.meta.images.len(),
        human_bytes(written.total_bytes),
        human_bytes(summed.saturating_sub(unique + left_out_bytes))
    ));
    if let Some(p) = &written.meta.partial {
        ui.line(format!("partial bundle: {p}; {} of blobs left out", human_bytes(left_out_bytes)));
    }
    ui.event(&Event::Done {
        paths: written.paths.clone(),
        zstd: written.zstd.clone(),
        bytes: written.total_bytes,
        images: written.meta.images.len(),
        unique_blob_bytes: Some(unique),
    });
    Ok(written)
}

/// The largest manifest Harbor accepts: the distribution registry under it
/// reads at most 4 MiB of a manifest PUT (`maxManifestBodySize = 4 << 20`,
/// registry/handlers/manifests.go) and refuses the rest, so such an image
/// could never be loaded on the node.
pub const HARBOR_MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A manifest of `image` over Harbor's cap, named with its digest and size.
fn too_large_for_harbor(image: &ImageRef, manifests: &[(Digest, Vec<u8>)]) -> Option<PullError> {
    let (d, bytes) = manifests.iter().find(|(_, b)| b.len() > HARBOR_MAX_MANIFEST_BYTES)?;
    Some(PullError::Spec(format!(
        "{image}: manifest {d} is {} bytes, over the {} bytes (4 MiB) a Harbor registry accepts: the node could not \
         load it",
        bytes.len(),
        HARBOR_MAX_MANIFEST_BYTES
    )))
}

/// Several independent failures become one error listing them all, with the
/// most specific exit code among them.
fn fail_together(failures: Vec<PullError>, what: &str) -> anyhow::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let code = failures.iter().map(PullError::exit_code).max().unwrap_or(exit::FAILURE);
    let list: Vec<String> = failures.iter().map(|f| format!("  - {f}")).collect();
    Err(with_code(code, anyhow::anyhow!("{what} {} image(s):\n{}", failures.len(), list.join("\n"))))
}

#[allow(clippy::too_many_arguments)]
async fn plan_image(
    source: &Source,
    pin: &ImageRef,
    reference: ImageRef,
    role: Role,
    platforms: Platforms,
    bytes: Vec<u8>,
    served: Digest,
) -> Result<Planned, PullError> {
    let local = |m: String| PullError::Local(format!("{reference}: {m}"));
    let unsatisfiable = |m: String| PullError::Spec(format!("{reference}: {m}"));
    let view = ManifestView::parse(&bytes).map_err(|e| local(e.to_string()))?;
    let media_type = view.effective_media_type(None);
    let mut planned = Planned {
        reference: reference.clone(),
        role,
        platforms: platforms.clone(),
        served: served.clone(),
        top: (served.clone(), media_type.clone()),
        manifests: Vec::new(),
        blobs: Vec::new(),
        stored_platforms: Vec::new(),
    };
    if !view.is_index() {
        planned.blobs = view.blobs().cloned().collect();
        planned.manifests.push((served, bytes));
        return Ok(planned);
    }
    let available: Vec<String> = view.manifests.iter().filter_map(|m| m.platform.as_ref()).map(|p| p.id()).collect();
    let is_real = |d: &Descriptor| d.platform.as_ref().is_some_and(|p| p.os != "unknown");
    let keep_all = match &platforms {
        Platforms::All => true,
        Platforms::List(list) => view
            .manifests
            .iter()
            .filter(|d| is_real(d))
            .all(|d| list.iter().any(|w| d.platform.as_ref().unwrap().matches(w))),
    };
    let chosen: Vec<Descriptor> = match &platforms {
        _ if keep_all => view.manifests.clone(),
        Platforms::List(list) => view
            .manifests
            .iter()
            .filter(|d| is_real(d) && list.iter().any(|w| d.platform.as_ref().unwrap().matches(w)))
            .cloned()
            .collect(),
        Platforms::All => unreachable!(),
    };
    if chosen.is_empty() {
        let wanted = match &platforms {
            Platforms::List(l) => l.join(", "),
            Platforms::All => "all".into(),
        };
        return Err(unsatisfiable(format!(
            "no manifest for platform {wanted} (the index has: {})",
            available.join(", ")
        )));
    }
    for child in &chosen {
        let child_ref = pin.pinned(&child.digest);
        let (child_bytes, child_digest) = source.manifest(&child_ref).await?;
        let child_view =
            ManifestView::parse(&child_bytes).map_err(|e| local(format!("manifest {child_digest}: {e}")))?;
        if child_view.is_index() {
            return Err(local(format!("nested index {child_digest} is not supported")));
        }
        for b in child_view.blobs() {
            if !planned.blobs.iter().any(|x| x.digest == b.digest) {
                planned.blobs.push(b.clone());
            }
        }
        if let Some(p) = child.platform.as_ref().filter(|_| is_real(child)) {
            planned.stored_platforms.push(p.id());
        }
        planned.manifests.push((child_digest, child_bytes));
    }
    if !keep_all && reference.digest().is_some() {
        // The site pulls this image by that digest; a filtered copy would
        // have another, and the pull would fail at the site.
        return Err(unsatisfiable(format!(
            "is pinned to the index {served}, but the platform filter keeps {} of its platforms ({}); \
             pin a platform's manifest digest instead, or set `platforms: all`",
            chosen.len(),
            available.join(", ")
        )));
    }
    if keep_all {
        planned.manifests.push((served, bytes));
    } else if chosen.len() == 1 {
        // One platform: store its manifest as the image, like `docker pull`.
        let (d, b) = planned.manifests.last().cloned().expect("one child");
        let view = ManifestView::parse(&b).map_err(|e| local(e.to_string()))?;
        planned.top = (d, view.effective_media_type(Some(&chosen[0].media_type)));
    } else {
        // Several platforms but not all: a new index listing just those.
        // Its digest differs from the source's; bundle.json keeps both.
        let mut index: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| local(e.to_string()))?;
        index["manifests"] = serde_json::to_value(&chosen).expect("descriptors");
        let new_bytes = serde_json::to_vec(&index).expect("json");
        let d = Digest::of(&new_bytes);
        planned.top = (d.clone(), media_type);
        planned.manifests.push((d, new_bytes));
    }
    Ok(planned)
}

async fn download(
    ui: &Ui,
    source: &Source,
    cache: &BlobCache,
    missing: Vec<(Digest, u64, ImageRef)>,
    total: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let bar = ui.bytes_bar(total, "pulling");
    let done = Arc::new(AtomicU64::new(0));
    let results: Vec<Result<(), PullError>> = stream::iter(missing.into_iter().map(|(digest, size, image)| {
        let bar = bar.clone();
        let done = done.clone();
        async move {
            let (partial, file) = match cache.partial(&digest) {
                Ok(p) => p,
                Err(e) => return Err(PullError::Local(format!("cache: {e}"))),
            };
            let on_bytes = |n: u64| bar.inc(n);
            let r = source.blob_to_file(&image, &digest, &file, &on_bytes).await;
            let r = r.and_then(|()| {
                let got = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
                if got != size {
                    return Err(PullError::Other {
                        registry: image.registry().into(),
                        what: format!("blob {digest} of {}", image.name()),
                        detail: format!("{got} bytes served, the manifest says {size}"),
                    });
                }
                cache.commit(&partial, &digest).map_err(|e| PullError::Local(format!("cache: {e}")))
            });
            drop(file);
            if r.is_err() {
                let _ = std::fs::remove_file(&partial);
            } else {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                ui.event(&Event::Blob { digest: digest.clone(), bytes: size, image: image.to_string(), done: n });
                tracing::info!("pulled {digest} ({size} bytes) for {image}");
            }
            r
        }
    }))
    .buffer_unordered(concurrency)
    .collect()
    .await;
    bar.finish_and_clear();
    let failures: Vec<PullError> = results.into_iter().filter_map(Result::err).collect();
    fail_together(failures, "could not download blobs of")
}

#[cfg(test)]
mod harbor_cap_tests {
    use super::*;

    #[test]
    fn manifests_over_harbors_4_mib_are_refused_naming_the_image() {
        let image = ImageRef::parse("docker.io/team/huge:1.0").unwrap();
        let at_cap = vec![b'{'; HARBOR_MAX_MANIFEST_BYTES];
        let over = vec![b'{'; HARBOR_MAX_MANIFEST_BYTES + 1];
        assert!(too_large_for_harbor(&image, &[(Digest::of(&at_cap), at_cap)]).is_none());
        let d = Digest::of(&over);
        let e = too_large_for_harbor(&image, &[(Digest::of(b"x"), b"x".to_vec()), (d.clone(), over)]).unwrap();
        assert_eq!(e.exit_code(), crate::exit::INVALID_INPUT);
        let msg = e.to_string();
        assert!(
            msg.contains("docker.io/team/huge:1.0") && msg.contains(&d.to_string()) && msg.contains("4 MiB"),
            "{msg}"
        );
    }
}
