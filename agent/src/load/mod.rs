//! `edgeiso-agent load`: wait for the registry, make sure the project exists,
//! then push every workload image of every bundle, blobs first (skipped,
//! mounted or uploaded, each once), then manifests children-first with the
//! tag last, recording progress in the journal as it goes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgeiso_bundle::manifest::Descriptor;
use edgeiso_bundle::{harbor_target, Bundle, Digest, ImageRecord, Role, TargetRef};
use edgeiso_contract::printable::escape;
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

use crate::config::LoadSettings;
use crate::events::{human_bytes, Event, Reporter};
use crate::journal::{journal_path, Journal, PlannedImage, Record};
use crate::registry::{ClientOptions, Flavor, RegistryClient, RegistryError, UploadStart};
use crate::retry::RetryPolicy;
mod report;
mod supply;

use report::ImageFailure;
pub use report::{FailKind, LoadReport};
use supply::{base_sentence, blob_source, not_from_base, Supply};

use crate::sources::SourceClients;
use crate::upload::{upload_blob, BlobOrigin, BundleFiles, UploadError, UploadOptions, Uploaded};
use crate::{discover, AgentError};

/// One image to push.
struct WorkItem {
    bundle: Arc<Bundle>,
    files: Arc<BundleFiles>,
    supply: Supply,
    record: ImageRecord,
    target: TargetRef,
    /// `tag` or the digest: what the top-level manifest is put under.
    reference: String,
}

impl WorkItem {
    fn target_key(&self) -> String {
        match &self.target.tag {
            Some(t) => format!("{}:{t}", self.target.repository),
            None => format!("{}@{}", self.target.repository, self.record.digest),
        }
    }
}

#[derive(Default)]
struct Counters {
    uploaded: AtomicUsize,
    mounted: AtomicUsize,
    present: AtomicUsize,
    done: AtomicUsize,
}

/// Per-run shared state.
struct Run {
    client: RegistryClient,
    journal: Journal,
    settings: LoadSettings,
    blob_slots: Semaphore,
    /// One lock per blob digest: images sharing a layer wait for the first
    /// upload and then mount it, instead of uploading it twice.
    blob_locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// Blobs found corrupt or unreadable in this run: every image needing
    /// one fails.
    bad_blobs: Mutex<HashMap<Digest, ImageFailure>>,
    sent: Arc<AtomicU64>,
    counters: Counters,
    reporter: Reporter,
    total: usize,
}

#[derive(Debug)]
enum BlobOutcome {
    Present,
    Mounted,
    Uploaded,
    /// Uploaded from the image's source registry (a thin bundle's blob).
    Fetched,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// How long after `--deadline` the process is ended if the load has not
/// stopped by itself (it stops at the deadline; this is the backstop).
pub const DEADLINE_GRACE: Duration = Duration::from_secs(15);

/// How long one probe of the registry may take while waiting for it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait until something answers at the registry address, with backoff.
pub async fn wait_for_registry(client: &RegistryClient, timeout: Duration) -> Result<Flavor, AgentError> {
    let started = Instant::now();
    let policy = RetryPolicy { retries: u32::MAX, base: Duration::from_millis(500), cap: Duration::from_secs(15) };
    let mut attempt = 0;
    let mut last_note = Instant::now();
    loop {
        // A registry that accepts the connection and never answers must not
        // outlast --wait-timeout (the client's read timeout is 10 minutes).
        let remaining = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(100));
        let limit = remaining.min(PROBE_TIMEOUT);
        let probe = match tokio::time::timeout(limit, client.probe()).await {
            Ok(r) => r,
            Err(_) => Err(RegistryError::Transport {
                what: "GET /api/v2.0/ping".into(),
                message: format!("no answer within {}", humantime::format_duration(limit)),
            }),
        };
        match probe {
            Ok(flavor) => {
                if attempt > 0 {
                    info!(waited = %humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())), "registry is up");
                }
                return Ok(flavor);
            }
            Err(RegistryError::Tls { message, .. }) => {
                return Err(AgentError::Tls { url: client.url.to_string(), message });
            }
            Err(e) => {
                let elapsed = started.elapsed();
                if elapsed >= timeout {
                    return Err(AgentError::RegistryTimeout {
                        url: client.url.to_string(),
                        waited: humantime::format_duration(Duration::from_secs(elapsed.as_secs())).to_string(),
                        last_error: e.to_string(),
                    });
                }
                if attempt == 0 || last_note.elapsed() > Duration::from_secs(30) {
                    info!(registry = %client.url, error = %e, "waiting for the registry to answer");
                    last_note = Instant::now();
                }
                attempt += 1;
                let pause = policy.delay(attempt.min(30)).min(timeout - elapsed);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

fn registry_error_to_agent(url: &str, user: &str, e: RegistryError) -> AgentError {
    match e {
        RegistryError::Tls { message, .. } => AgentError::Tls { url: url.into(), message },
        RegistryError::Auth { .. } => AgentError::Auth { url: url.into(), user: user.into(), message: e.to_string() },
        RegistryError::Refused { .. } => AgentError::Refused { url: url.into(), message: e.to_string() },
        other => AgentError::Registry { url: url.into(), message: other.to_string() },
    }
}

fn node_mirror_error(url: &str, user: &str, e: crate::node_mirrors::NodeMirrorError) -> AgentError {
    use crate::node_mirrors::NodeMirrorError as E;
    match e {
        E::Registry(e) => registry_error_to_agent(url, user, e),
        E::Io { path, source } => AgentError::State { path, source },
        e @ E::Input { .. } => AgentError::Usage(e.to_string()),
    }
}

/// The whole `load` command.
pub async fn run(settings: LoadSettings) -> Result<LoadReport, AgentError> {
    // --deadline counts from here: bundle search, waiting, and pushing.
    let deadline = settings.deadline.map(|d| tokio::time::Instant::now() + d);
    let reporter = Reporter { json: settings.json };
    let bundle_paths = settings.bundles.clone();
    let bundles = tokio::task::spawn_blocking(move || {
        discover::find_bundles(&bundle_paths, edgeiso_contract::paths::DEFAULT_BUNDLE_SEARCH)
    })
    .await
    .map_err(|e| AgentError::Usage(format!("bundle search panicked: {e}")))??;
    // Signatures before the registry is asked anything: a refused bundle
    // pushes nothing (decision 0015).
    if let Some(key) = &settings.trust {
        crate::trust::check_all(key, &bundles)?;
    }
    // A thin bundle's blobs come from the images' source registries: one
    // client for each source host its workload images name.
    let source_hosts: Vec<String> = bundles
        .iter()
        .filter(|b| matches!(b.partial(), Some(edgeiso_bundle::Partial::Thin)))
        .flat_map(|b| b.meta.images.iter().filter(|i| i.role == Role::Workload))
        .map(|i| i.reference.registry().to_owned())
        .collect();
    let sources = SourceClients::new(source_hosts, &settings.sources, settings.timeouts, settings.retries)?;

    if settings.insecure {
        warn!(registry = %settings.registry, "--insecure: TLS certificates are NOT verified");
    }
    let client = RegistryClient::new(
        settings.registry.clone(),
        ClientOptions {
            ca: settings.ca.as_deref(),
            insecure: settings.insecure,
            credentials: settings.credentials.clone(),
            timeouts: settings.timeouts,
            proxy_from_env: false,
        },
    )
    .map_err(|e| AgentError::Usage(e.to_string()))?;
    let mut client = client;
    if let Some(retries) = settings.retries {
        client.retry.retries = retries;
    }
    let url = settings.registry.to_string();
    let user = settings.credentials.as_ref().map(|c| format!(" for user {}", c.username())).unwrap_or_default();

    // The journal first: a second agent loading into the same registry is
    // refused before anything waits or pushes.
    let journal = if settings.journal {
        let path = journal_path(&settings.state_dir, &settings.registry.host_port);
        Journal::open(&path).map_err(|e| AgentError::State { path: e.path, source: e.source })?
    } else {
        Journal::in_memory()
    };

    // The work list: every workload image once (by target), bundle order.
    let mut work = Vec::new();
    let mut by_target: BTreeMap<String, Digest> = BTreeMap::new();
    let mut skipped = 0;
    let bundle_count = bundles.len();
    for bundle in bundles {
        let bundle = Arc::new(bundle);
        let files = BundleFiles::open(&bundle)?;
        let base = match bundle.partial() {
            Some(edgeiso_bundle::Partial::Delta { base }) => {
                let sentence = base_sentence(&journal.state(), base, &bundle.bundle_json_sha256());
                info!(bundle = %escape(&bundle.meta.name), "a delta: {sentence}");
                Some(Supply::Base(sentence.into()))
            }
            _ => None,
        };
        let mut planned = Vec::new();
        for record in &bundle.meta.images {
            if record.role == Role::Bootstrap {
                skipped += 1;
                info!(image = %record.reference, "bootstrap image: imported at boot, not pushed");
                reporter.emit(&Event::ImageSkipped {
                    reference: record.reference.to_string(),
                    reason: "bootstrap role".into(),
                });
                continue;
            }
            let target = harbor_target(&settings.project, &record.reference);
            let reference = target.tag.clone().unwrap_or_else(|| record.digest.to_string());
            let supply = match (&base, bundle.partial()) {
                (Some(b), _) => b.clone(),
                (None, Some(edgeiso_bundle::Partial::Thin)) => {
                    Supply::Source(sources.get(record.reference.registry()).expect("a client for every source host"))
                }
                _ => Supply::Whole,
            };
            let item = WorkItem {
                bundle: bundle.clone(),
                files: files.clone(),
                supply,
                record: record.clone(),
                target,
                reference,
            };
            let key = item.target_key();
            if let Some(prev) = by_target.get(&key) {
                if prev != &record.digest {
                    warn!(target = %key, "two bundles carry different images for the same target; the first one wins");
                }
                skipped += 1;
                continue;
            }
            by_target.insert(key.clone(), record.digest.clone());
            planned.push(PlannedImage {
                reference: record.reference.to_string(),
                target: key,
                digest: record.digest.clone(),
            });
            work.push(item);
        }
        journal
            .append(Record::Plan {
                bundle: bundle.meta.name.clone(),
                path: bundle.path().display().to_string(),
                images: planned,
                at: now_rfc3339(),
                sha256: Some(bundle.bundle_json_sha256()),
            })
            .map_err(|e| AgentError::State { path: e.path, source: e.source })?;
    }

    // Wait for the registry, check the credentials, make the project; all of
    // it within --wait-timeout (and --deadline).
    let start_phase = async {
        let started = Instant::now();
        let flavor = wait_for_registry(&client, settings.wait_timeout).await?;
        // The registry answered; give the calls that follow what is left of
        // --wait-timeout, at least a minute, so a registry that goes silent
        // now does not hold the agent for the client's 10-minute read timeout.
        let within = settings.wait_timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(60));
        let silent = |what: &str| AgentError::RegistryTimeout {
            url: url.clone(),
            waited: humantime::format_duration(within).to_string(),
            last_error: format!("{what} got no answer"),
        };
        tokio::time::timeout(within, client.check_access())
            .await
            .map_err(|_| silent("GET /v2/"))?
            .map_err(|e| registry_error_to_agent(&url, &user, e))?;
        if flavor == Flavor::Harbor {
            let created = tokio::time::timeout(within, client.ensure_harbor_project(&settings.project))
                .await
                .map_err(|_| silent("the Harbor project API"))?
                .map_err(|e| registry_error_to_agent(&url, &user, e))?;
            if created {
                info!(project = %settings.project, "created the Harbor project");
                reporter.emit(&Event::ProjectCreated { project: settings.project.clone() });
            }
        }
        if !settings.node_mirrors.is_empty() {
            // The nodes' pull credential and mirror files (decision 0012).
            tokio::time::timeout(within, crate::node_mirrors::install(&client, flavor, &settings))
                .await
                .map_err(|_| silent("the node mirror setup"))?
                .map_err(|e| node_mirror_error(&url, &user, e))?;
        }
        Ok::<_, AgentError>(flavor)
    };
    let flavor = match deadline {
        Some(at) => match tokio::time::timeout_at(at, start_phase).await {
            Ok(r) => r?,
            Err(_) => {
                let keys: Vec<String> = work.iter().map(WorkItem::target_key).collect();
                log_not_loaded(&keys);
                return Err(AgentError::Deadline {
                    deadline: humantime::format_duration(settings.deadline.unwrap_or_default()).to_string(),
                    not_loaded: keys.len(),
                    failed: 0,
                    total: keys.len(),
                });
            }
        },
        None => start_phase.await?,
    };

    let total_bytes: u64 = work.iter().map(|w| w.record.size).sum();
    info!(
        registry = %url,
        flavor = ?flavor,
        project = %settings.project,
        images = work.len(),
        bytes = %human_bytes(total_bytes),
        concurrency = settings.concurrency,
        "loading"
    );
    reporter.emit(&Event::Start {
        registry: url.clone(),
        flavor: format!("{flavor:?}").to_lowercase(),
        project: settings.project.clone(),
        bundles: bundle_count,
        images: work.len(),
        bytes: total_bytes,
    });

    let started = Instant::now();
    let total = work.len();
    let run = Arc::new(Run {
        client,
        journal,
        blob_slots: Semaphore::new(settings.concurrency),
        blob_locks: Mutex::default(),
        bad_blobs: Mutex::default(),
        sent: Arc::default(),
        counters: Counters::default(),
        reporter,
        total,
        settings,
    });

    // Overall throughput every few seconds while pushing.
    let ticker = {
        let run = run.clone();
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let sent = run.sent.load(Ordering::Relaxed);
                let rate = ((sent - last.1) as f64 / last.0.elapsed().as_secs_f64()) as u64;
                last = (Instant::now(), sent);
                let done = run.counters.done.load(Ordering::Relaxed);
                info!("progress: {done}/{} images, {} sent, {}/s", run.total, human_bytes(sent), human_bytes(rate));
                run.reporter.emit(&Event::Progress {
                    images_done: done,
                    images_total: run.total,
                    bytes_sent: sent,
                    bytes_per_second: rate,
                });
            }
        })
    };

    // Images in parallel (more than blob slots, so manifests and HEADs of
    // one image overlap another's uploads); blob transfers bounded globally.
    let image_parallelism = run.settings.concurrency * 2;
    let results: Vec<(String, Result<bool, ImageFailure>)> = futures_util::stream::iter(work)
        .map(|item| {
            let run = run.clone();
            async move {
                let key = item.target_key();
                let expired = || ImageFailure { kind: FailKind::Deadline, message: "--deadline expired".into() };
                // On expiry the image's work is dropped where it stands:
                // journal lines are written whole (no await inside), and an
                // unfinished upload's session is left for the next run.
                let r = match deadline {
                    Some(at) if tokio::time::Instant::now() >= at => Err(expired()),
                    Some(at) => {
                        tokio::time::timeout_at(at, load_image(&run, &item)).await.unwrap_or_else(|_| Err(expired()))
                    }
                    None => load_image(&run, &item).await,
                };
                (key, r)
            }
        })
        .buffer_unordered(image_parallelism)
        .collect()
        .await;
    ticker.abort();

    let seconds = started.elapsed().as_secs_f64();
    let bytes_sent = run.sent.load(Ordering::Relaxed);
    let mut report = LoadReport {
        skipped,
        bytes_sent,
        seconds,
        blobs_uploaded: run.counters.uploaded.load(Ordering::Relaxed),
        blobs_mounted: run.counters.mounted.load(Ordering::Relaxed),
        blobs_present: run.counters.present.load(Ordering::Relaxed),
        requests: run.client.stats.requests.load(Ordering::Relaxed),
        retries: run.client.stats.retries.load(Ordering::Relaxed),
        deadline: run.settings.deadline,
        ..Default::default()
    };
    let mut not_loaded = Vec::new();
    for (key, r) in results {
        match r {
            Ok(_) => report.loaded += 1,
            Err(f) => {
                if f.kind == FailKind::Deadline {
                    not_loaded.push(key.clone());
                }
                report.failed.push((key, f.kind, f.message))
            }
        }
    }
    log_not_loaded(&not_loaded);
    let rate = if seconds > 0.0 { (bytes_sent as f64 / seconds) as u64 } else { 0 };
    info!(
        "done: {} loaded, {} failed, {} skipped; {} sent in {:.1}s ({}/s); blobs: {} uploaded, {} mounted, {} already there; {} requests, {} retries",
        report.loaded,
        report.failed.len(),
        report.skipped,
        human_bytes(bytes_sent),
        seconds,
        human_bytes(rate),
        report.blobs_uploaded,
        report.blobs_mounted,
        report.blobs_present,
        report.requests,
        report.retries
    );
    run.reporter.emit(&Event::Done {
        loaded: report.loaded,
        failed: report.failed.len(),
        skipped: report.skipped,
        bytes_sent,
        seconds,
        bytes_per_second: rate,
        blobs_uploaded: report.blobs_uploaded,
        blobs_mounted: report.blobs_mounted,
        blobs_present: report.blobs_present,
        requests: report.requests,
        retries: report.retries,
    });
    Ok(report)
}

/// Name every image a `--deadline` cut off (they stay "pending" in the
/// journal: they were planned and neither loaded nor failed).
fn log_not_loaded(keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    error!("--deadline expired; {} images not loaded:", keys.len());
    for k in keys {
        error!("  not loaded: {k}");
    }
}

/// Push one image. `Ok(true)` when it was already there.
async fn load_image(run: &Run, item: &WorkItem) -> Result<bool, ImageFailure> {
    let name = item.record.reference.to_string();
    let key = item.target_key();
    let result = load_image_inner(run, item).await;
    let n = run.counters.done.fetch_add(1, Ordering::Relaxed) + 1;
    match &result {
        Ok(stats) => {
            if stats.already_present {
                info!("[{n}/{}] {name} -> {key}: already present", run.total);
            } else {
                info!(
                    "[{n}/{}] {name} -> {key}: loaded ({} sent; blobs {} uploaded, {} mounted, {} already there)",
                    run.total,
                    human_bytes(stats.uploaded_bytes),
                    stats.uploaded,
                    stats.mounted,
                    stats.present
                );
            }
            run.reporter.emit(&Event::ImageLoaded {
                index: n,
                total: run.total,
                reference: name.clone(),
                target: key.clone(),
                digest: item.record.digest.to_string(),
                uploaded_bytes: stats.uploaded_bytes,
                blobs_uploaded: stats.uploaded,
                blobs_mounted: stats.mounted,
                blobs_present: stats.present,
                already_present: stats.already_present,
            });
            let known = run.journal.state().images.get(&key).is_some_and(|e| e.digest == item.record.digest);
            if !known {
                let _ = run
                    .journal
                    .append(Record::Image {
                        bundle: item.bundle.meta.name.clone(),
                        reference: name.clone(),
                        target: key.clone(),
                        digest: item.record.digest.clone(),
                        at: now_rfc3339(),
                    })
                    .map_err(|e| error!(%e, "cannot write the journal"));
            }
        }
        Err(f) => {
            error!("[{n}/{}] {name} -> {key}: FAILED: {}", run.total, f.message);
            run.reporter.emit(&Event::ImageFailed {
                index: n,
                total: run.total,
                reference: name.clone(),
                target: key.clone(),
                error: f.message.clone(),
            });
            let _ = run
                .journal
                .append(Record::Failed {
                    bundle: item.bundle.meta.name.clone(),
                    reference: name.clone(),
                    target: key.clone(),
                    error: f.message.clone(),
                    at: now_rfc3339(),
                })
                .map_err(|e| error!(%e, "cannot write the journal"));
        }
    }
    result.map(|s| s.already_present)
}

#[derive(Default)]
struct ImageStats {
    already_present: bool,
    uploaded_bytes: u64,
    uploaded: usize,
    mounted: usize,
    present: usize,
}

async fn load_image_inner(run: &Run, item: &WorkItem) -> Result<ImageStats, ImageFailure> {
    let name = item.record.reference.to_string();
    let repo = &item.target.repository;
    let with_image = |f: ImageFailure| ImageFailure { kind: f.kind, message: format!("image {name}: {}", f.message) };

    // Already there, byte for byte (same digest under the same reference)?
    // One HEAD per image makes a re-run a fast no-op, journal or not.
    if run.client.manifest_digest(repo, &item.reference).await.map_err(|e| with_image(e.into()))?.as_ref()
        == Some(&item.record.digest)
    {
        return Ok(ImageStats { already_present: true, ..Default::default() });
    }

    let graph = {
        let bundle = item.bundle.clone();
        let record = item.record.clone();
        tokio::task::spawn_blocking(move || bundle.image_graph(&record))
            .await
            .map_err(|e| ImageFailure::internal(e.to_string()))?
            .map_err(|e| with_image(e.into()))?
    };

    let mut stats = ImageStats::default();
    let mut trust_journal = true;
    for round in 0..2 {
        // A delta's blobs from its base must all be there before anything
        // of the image is sent; a thin bundle's come with the others.
        if let Supply::Base(_) = item.supply {
            push_blobs(run, item, &graph.absent, trust_journal, &mut stats).await.map_err(with_image)?;
            push_blobs(run, item, &graph.blobs, trust_journal, &mut stats).await.map_err(with_image)?;
        } else {
            let all: Vec<Descriptor> = graph.blobs.iter().chain(&graph.absent).cloned().collect();
            push_blobs(run, item, &all, trust_journal, &mut stats).await.map_err(with_image)?;
        }
        match push_manifests(run, item, &graph.manifests).await {
            Ok(()) => return Ok(stats),
            // The journal said a blob was there and the registry disagrees
            // (registry wiped or garbage-collected): check every blob again.
            Err(f) if round == 0 && f.message.contains("BLOB_UNKNOWN") => {
                warn!(image = %name, "the registry lacks blobs the journal recorded; checking every blob again");
                trust_journal = false;
            }
            Err(f) => return Err(with_image(f)),
        }
    }
    unreachable!("the second round returns")
}

async fn push_blobs(
    run: &Run,
    item: &WorkItem,
    blobs: &[Descriptor],
    trust_journal: bool,
    stats: &mut ImageStats,
) -> Result<(), ImageFailure> {
    // All of an image's blobs at once; the global semaphore bounds transfers.
    let results = futures_util::future::join_all(blobs.iter().map(|b| ensure_blob(run, item, b, trust_journal))).await;
    let mut first_err = None;
    for (blob, r) in blobs.iter().zip(results) {
        match r {
            Ok(BlobOutcome::Present) => stats.present += 1,
            Ok(BlobOutcome::Mounted) => stats.mounted += 1,
            Ok(BlobOutcome::Uploaded | BlobOutcome::Fetched) => {
                stats.uploaded += 1;
                stats.uploaded_bytes += blob.size;
            }
            // Every blob is still tried: the others are then in place for
            // the next run, and the first failure names the image's problem.
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn blob_lock(run: &Run, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
    run.blob_locks.lock().unwrap().entry(digest.clone()).or_default().clone()
}

async fn ensure_blob(
    run: &Run,
    item: &WorkItem,
    blob: &Descriptor,
    trust_journal: bool,
) -> Result<BlobOutcome, ImageFailure> {
    let r = ensure_blob_inner(run, item, blob, trust_journal).await;
    if let Ok(outcome) = &r {
        run.reporter.emit(&Event::Blob {
            repository: item.target.repository.clone(),
            digest: blob.digest.to_string(),
            size: blob.size,
            outcome: format!("{outcome:?}").to_lowercase(),
        });
    }
    r
}

async fn ensure_blob_inner(
    run: &Run,
    item: &WorkItem,
    blob: &Descriptor,
    trust_journal: bool,
) -> Result<BlobOutcome, ImageFailure> {
    let digest = &blob.digest;
    let repo = &item.target.repository;
    let lock = blob_lock(run, digest);
    let _held = lock.lock().await;
    if let Some(why) = run.bad_blobs.lock().unwrap().get(digest) {
        return Err(why.clone());
    }
    let (holders, resume) = {
        let st = run.journal.state();
        let holders = st.blobs.get(digest).cloned().unwrap_or_default();
        let resume = st.uploads.get(&(repo.clone(), digest.clone())).and_then(|(loc, _)| reqwest::Url::parse(loc).ok());
        (holders, resume)
    };
    if trust_journal && holders.contains(repo) {
        run.counters.present.fetch_add(1, Ordering::Relaxed);
        return Ok(BlobOutcome::Present);
    }
    let source = blob_source(item, blob)?;
    let _slot = run.blob_slots.acquire().await.expect("semaphore never closed");
    let record_blob = |run: &Run| {
        run.journal
            .append(Record::Blob { repo: repo.clone(), digest: digest.clone() })
            .map_err(|e| ImageFailure { kind: FailKind::State, message: format!("cannot write the journal: {e}") })
    };

    // Another repository of the project holds it: mount (no bytes sent).
    let mut session = None;
    let from = holders.iter().find(|h| *h != repo && h.starts_with(&format!("{}/", run.settings.project)));
    if let (Some(from), true) = (from, trust_journal) {
        match run.client.start_upload(repo, Some((digest, from))).await {
            Ok(UploadStart::Mounted) => {
                record_blob(run)?;
                run.counters.mounted.fetch_add(1, Ordering::Relaxed);
                return Ok(BlobOutcome::Mounted);
            }
            // The registry could not mount (source gone, or no mount
            // support) and opened a plain upload session: use it, unless
            // the blob turns out to be there already.
            Ok(UploadStart::Session(url)) => session = Some(url),
            // Refused outright (404 source unknown, 400, 405 no mount
            // support...): check and upload as if there were no holder.
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s) && ![401, 403, 408, 429].contains(&s)) => {
                warn!(%e, %digest, "the registry cannot mount the blob; uploading it instead");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // A delta's blob the registry could not mount: the session it opened
    // instead is of no use (there is nothing to send).
    if source.is_none() {
        if let Some(s) = session.take() {
            run.client.cancel_upload(repo, &s).await;
        }
    }
    // A journaled session to resume skips the HEAD, but never for a delta's
    // blob: only the registry can say whether its base brought it.
    if session.is_none() && (resume.is_none() || source.is_none()) && run.client.blob_exists(repo, digest).await? {
        record_blob(run)?;
        run.counters.present.fetch_add(1, Ordering::Relaxed);
        return Ok(BlobOutcome::Present);
    }
    let Some(source) = source else {
        let Supply::Base(base) = &item.supply else { unreachable!("only a delta's blobs have no source") };
        return Err(not_from_base(digest, base));
    };
    let fetched = matches!(source.origin, BlobOrigin::Registry { .. });
    let on_chunk = |loc: &reqwest::Url, offset: u64| {
        let _ = run.journal.append(Record::Upload {
            repo: repo.clone(),
            digest: digest.clone(),
            location: loc.to_string(),
            offset,
        });
    };
    let opts = UploadOptions {
        chunk_threshold: run.settings.chunk_threshold,
        chunk_size: run.settings.chunk_size,
        sent: run.sent.clone(),
        on_chunk: &on_chunk,
        resume,
    };
    let result = upload_blob(&run.client, repo, &source, session, &opts).await;
    if let Err(e) = &result {
        // A journaled session that will not be resumed (the blob is bad, or
        // the registry refused the upload) is forgotten, so `status` does not
        // report it forever. One the registry merely stopped answering in
        // stays, for the next run.
        let resumable = matches!(e, UploadError::Registry(r) if r.is_transient()) || e.is_transient_source();
        let journaled = run.journal.state().uploads.contains_key(&(repo.clone(), digest.clone()));
        if journaled && !resumable {
            let _ = run
                .journal
                .append(Record::UploadCancelled { repo: repo.clone(), digest: digest.clone() })
                .map_err(|e| error!(%e, "cannot write the journal"));
        }
    }
    match result {
        Ok(how) => {
            record_blob(run)?;
            match how {
                Uploaded::Sent => {
                    run.counters.uploaded.fetch_add(1, Ordering::Relaxed);
                    Ok(if fetched { BlobOutcome::Fetched } else { BlobOutcome::Uploaded })
                }
                Uploaded::Found => {
                    run.counters.present.fetch_add(1, Ordering::Relaxed);
                    Ok(BlobOutcome::Present)
                }
            }
        }
        Err(e @ (UploadError::Corrupt { .. } | UploadError::Read { .. })) => {
            let failure = ImageFailure::from(e);
            run.bad_blobs.lock().unwrap().insert(digest.clone(), failure.clone());
            Err(failure)
        }
        Err(e) => Err(e.into()),
    }
}

async fn push_manifests(run: &Run, item: &WorkItem, manifests: &[Descriptor]) -> Result<(), ImageFailure> {
    let repo = &item.target.repository;
    let last = manifests.len().saturating_sub(1);
    for (i, m) in manifests.iter().enumerate() {
        let bytes = {
            let bundle = item.bundle.clone();
            let name = item.record.reference.to_string();
            let digest = m.digest.clone();
            tokio::task::spawn_blocking(move || bundle.read_manifest(&name, &digest))
                .await
                .map_err(|e| ImageFailure::internal(e.to_string()))?
                .map_err(ImageFailure::from)?
        };
        // Children by digest; the top-level manifest under the tag (or its
        // digest for a digest-only reference), last of all.
        let reference = if i == last { item.reference.clone() } else { m.digest.to_string() };
        run.client.put_manifest(repo, &reference, &m.media_type, &Bytes::from(bytes), &m.digest).await?;
    }
    Ok(())
}
