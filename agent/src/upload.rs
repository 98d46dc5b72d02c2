//! Blob bodies streamed straight from the bundle (tar or parts) by offset,
//! or from the image's source registry for a blob a thin bundle leaves out,
//! hashed on the way out, and the two upload strategies: one streamed PUT,
//! or resumable chunks for big layers.
//!
//! The one rule: never complete an upload whose bytes do not match the
//! digest. The stream holds back its last buffer until the digest of the
//! whole blob is known; on a mismatch it fails instead, so the request body
//! is cut short and the registry discards the session (and would refuse the
//! closing `?digest=` anyway). Memory per upload is two read buffers (or
//! two pieces of the source's answer), whatever the blob size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use edgeiso_bundle::parts::PartsReader;
use edgeiso_bundle::{Bundle, BundleError, Digest};
use reqwest::Url;
use sha2::{Digest as _, Sha256};
use tracing::{debug, info, warn};

use crate::registry::{RegistryClient, RegistryError, UploadStart};

/// Bytes per read and per body frame.
const READ_BUF: usize = 1 << 20;

/// The open files of one bundle, shared by every upload from it.
pub struct BundleFiles {
    files: Vec<File>,
    layout: PartsReader,
    pub name: PathBuf,
}

impl BundleFiles {
    pub fn open(bundle: &Bundle) -> Result<Arc<BundleFiles>, BundleError> {
        let files =
            bundle.paths.iter().map(|p| File::open(p).map_err(|e| BundleError::io(p, e))).collect::<Result<_, _>>()?;
        Ok(Arc::new(BundleFiles { files, layout: bundle.reader()?, name: bundle.path().to_path_buf() }))
    }

    /// Read `buf.len()` bytes at absolute bundle offset `at`, across parts.
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let mut filled = 0usize;
        for (i, off, len) in self.layout.segments(at, buf.len() as u64) {
            let end = filled + len as usize;
            self.files[i].read_exact_at(&mut buf[filled..end], off)?;
            filled = end;
        }
        if filled != buf.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the bundle ends before the blob does"));
        }
        Ok(())
    }
}

/// Where a blob's bytes are read from.
#[derive(Clone)]
pub enum BlobOrigin {
    /// A member of a bundle, at this offset of its byte stream.
    Bundle { files: Arc<BundleFiles>, offset: u64 },
    /// The image's source registry: a blob a thin bundle leaves out, fetched
    /// by digest while it is pushed (never stored whole on the node).
    Registry { client: Arc<RegistryClient>, repo: String },
}

/// One blob to push: where it comes from, and what it must be.
#[derive(Clone)]
pub struct BlobSource {
    pub origin: BlobOrigin,
    pub size: u64,
    pub digest: Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("blob {digest} {from} is corrupt: its content hashes to {actual}; nothing of it was committed")]
    Corrupt { digest: Digest, actual: Digest, from: String },
    #[error("blob {digest}: cannot read it from {bundle}: {message}")]
    Read { digest: Digest, bundle: String, message: String },
    /// The source registry of a thin bundle's blob failed to give it.
    #[error("blob {digest} from its source registry: {error}")]
    Source { digest: Digest, error: RegistryError },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl UploadError {
    /// The source registry failed in a way worth asking it again (the
    /// network, a stall, a 5xx): the upload into the site can continue.
    pub fn is_transient_source(&self) -> bool {
        matches!(self, UploadError::Source { error, .. } if error.is_transient())
    }
}

/// Why a blob's bytes could not be read.
enum ReadFailure {
    Bundle(io::Error),
    Source(RegistryError),
}

/// What the stream found, read by the uploader after the request ends.
#[derive(Default)]
struct StreamOutcome {
    /// The hasher after the stream's last byte (chunked uploads continue it).
    hasher: Mutex<Option<Sha256>>,
    mismatch: Mutex<Option<Digest>>,
    read_error: Mutex<Option<ReadFailure>>,
    /// The body was waiting for the source registry's next piece: when the
    /// request fails then, the source is the one that stalled, not the site
    /// registry (whose answer bound may run out first).
    waiting_on_source: std::sync::atomic::AtomicBool,
}

/// The bytes of a range of a blob, piece by piece, from where it lies.
enum RangeReader {
    Bundle {
        files: Arc<BundleFiles>,
        at: u64,
        left: u64,
    },
    /// The answer is asked for at the first read.
    Registry {
        body: Option<Box<crate::fetch::BlobBody>>,
        src: BlobSource,
        from: u64,
        to: u64,
    },
}

impl RangeReader {
    /// The next piece, fed to `hasher` (a bundle's in the blocking thread
    /// that reads it, keeping the hashing off the runtime's workers).
    async fn next(&mut self, hasher: &mut Sha256) -> Result<Option<Bytes>, ReadFailure> {
        match self {
            RangeReader::Bundle { files, at, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                let n = (*left).min(READ_BUF as u64) as usize;
                let (files, pos) = (files.clone(), *at);
                let mut h = std::mem::replace(hasher, Sha256::new());
                let (buf, h) = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0; n];
                    files.read_exact_at(&mut buf, pos)?;
                    h.update(&buf);
                    Ok::<_, io::Error>((buf, h))
                })
                .await
                .map_err(|e| ReadFailure::Bundle(io::Error::other(e)))?
                .map_err(ReadFailure::Bundle)?;
                *hasher = h;
                *at += n as u64;
                *left -= n as u64;
                Ok(Some(Bytes::from(buf)))
            }
            // Nothing to read is nothing to ask for (a `Range` of no bytes
            // is refused with 416).
            RangeReader::Registry { from, to, .. } if from == to => Ok(None),
            RangeReader::Registry { body, src, from, to } => {
                if body.is_none() {
                    let BlobOrigin::Registry { client, repo } = &src.origin else { unreachable!("a registry range") };
                    let answer = client.get_blob(repo, &src.digest, *from, *to, src.size).await;
                    *body = Some(Box::new(answer.map_err(ReadFailure::Source)?));
                }
                let piece = body.as_mut().expect("opened above").next().await.map_err(ReadFailure::Source)?;
                if let Some(p) = &piece {
                    hasher.update(p);
                }
                Ok(piece)
            }
        }
    }
}

impl BlobSource {
    /// Where the bytes come from, for messages.
    fn origin_name(&self) -> String {
        match &self.origin {
            BlobOrigin::Bundle { files, .. } => format!("in {}", files.name.display()),
            BlobOrigin::Registry { client, repo } => format!("served by source registry {} ({repo})", client.url),
        }
    }

    fn range(&self, from: u64, to: u64) -> RangeReader {
        match &self.origin {
            BlobOrigin::Bundle { files, offset } => {
                RangeReader::Bundle { files: files.clone(), at: offset + from, left: to - from }
            }
            BlobOrigin::Registry { .. } => RangeReader::Registry { body: None, src: self.clone(), from, to },
        }
    }

    fn read_error(&self, e: ReadFailure) -> UploadError {
        match e {
            ReadFailure::Bundle(e) => UploadError::Read {
                digest: self.digest.clone(),
                bundle: match &self.origin {
                    BlobOrigin::Bundle { files, .. } => files.name.display().to_string(),
                    BlobOrigin::Registry { .. } => unreachable!("registry reads fail as Source"),
                },
                message: e.to_string(),
            },
            ReadFailure::Source(error) => UploadError::Source { digest: self.digest.clone(), error },
        }
    }

    /// Read `[from, to)` of the blob, feeding `hasher`.
    async fn hash_range(&self, mut hasher: Sha256, from: u64, to: u64) -> Result<Sha256, UploadError> {
        let mut r = self.range(from, to);
        while r.next(&mut hasher).await.map_err(|e| self.read_error(e))?.is_some() {}
        Ok(hasher)
    }

    /// A request body with bytes `[from, to)`, continuing `hasher`. When
    /// `to` is the end of the blob the digest is checked before the last
    /// piece goes out.
    fn body(
        &self,
        hasher: Sha256,
        from: u64,
        to: u64,
        outcome: Arc<StreamOutcome>,
        sent: Arc<AtomicU64>,
    ) -> reqwest::Body {
        struct State {
            src: BlobSource,
            reader: RangeReader,
            to: u64,
            hasher: Option<Sha256>,
            held: Option<Bytes>,
            checked: bool,
            outcome: Arc<StreamOutcome>,
            sent: Arc<AtomicU64>,
        }
        let state = State {
            src: self.clone(),
            reader: self.range(from, to),
            to,
            hasher: Some(hasher),
            held: None,
            checked: false,
            outcome,
            sent,
        };
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            loop {
                let from_source = matches!(st.reader, RangeReader::Registry { .. });
                st.outcome.waiting_on_source.store(from_source, Ordering::Relaxed);
                let next = st.reader.next(st.hasher.as_mut().expect("hasher present while reading")).await;
                st.outcome.waiting_on_source.store(false, Ordering::Relaxed);
                match next {
                    Ok(Some(piece)) => {
                        if let Some(prev) = st.held.replace(piece) {
                            st.sent.fetch_add(prev.len() as u64, Ordering::Relaxed);
                            return Some((Ok(prev), st));
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let message = match &e {
                            ReadFailure::Bundle(e) => e.to_string(),
                            ReadFailure::Source(e) => e.to_string(),
                        };
                        *st.outcome.read_error.lock().unwrap() = Some(e);
                        return Some((Err(io::Error::other(message)), st));
                    }
                }
                if !st.checked {
                    st.checked = true;
                    let h = st.hasher.take().expect("hasher present at end");
                    if st.to == st.src.size {
                        let actual = Digest::from_hasher(h.clone());
                        if actual != st.src.digest {
                            *st.outcome.mismatch.lock().unwrap() = Some(actual.clone());
                            let e = io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("blob {} hashes to {actual}", st.src.digest),
                            );
                            return Some((Err(e), st));
                        }
                    }
                    *st.outcome.hasher.lock().unwrap() = Some(h);
                }
                let last = st.held.take()?;
                st.sent.fetch_add(last.len() as u64, Ordering::Relaxed);
                return Some((Ok(last), st));
            }
        });
        reqwest::Body::wrap_stream(stream)
    }

    fn corrupt_or_read_error(&self, outcome: &StreamOutcome) -> Option<UploadError> {
        if let Some(actual) = outcome.mismatch.lock().unwrap().clone() {
            return Some(UploadError::Corrupt { digest: self.digest.clone(), actual, from: self.origin_name() });
        }
        if let Some(e) = outcome.read_error.lock().unwrap().take() {
            return Some(self.read_error(e));
        }
        match &self.origin {
            BlobOrigin::Registry { client, repo } if outcome.waiting_on_source.load(Ordering::Relaxed) => {
                Some(UploadError::Source {
                    digest: self.digest.clone(),
                    error: RegistryError::Transport {
                        what: format!("GET {} {repo} blob {}", client.url, self.digest),
                        message: "stopped sending: the upload into the site registry ran out of time waiting for it"
                            .into(),
                    },
                })
            }
            _ => None,
        }
    }
}

/// Tuning and hooks for one upload.
pub struct UploadOptions<'a> {
    pub chunk_threshold: u64,
    pub chunk_size: u64,
    /// Bytes put on the wire (progress, bytes/s).
    pub sent: Arc<AtomicU64>,
    /// Called after each acknowledged chunk with the session's location and
    /// offset, so the journal can resume it after a crash.
    pub on_chunk: &'a (dyn Fn(&Url, u64) + Sync),
    /// A session left by an earlier run (from the journal) to resume.
    pub resume: Option<Url>,
}

/// How an upload ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// This upload committed the blob.
    Sent,
    /// The registry had it already: an earlier attempt (whose answer was
    /// lost) or an earlier run committed it.
    Found,
}

/// After a closing PUT that failed (or whose answer was lost), or when a
/// journaled session is gone: is the blob committed anyway? A blob HEAD is
/// by digest, and counts only when its answer names the digest.
async fn committed_anyway(client: &RegistryClient, repo: &str, digest: &Digest) -> bool {
    match client.blob_exists(repo, digest).await {
        Ok(true) => {
            info!(%digest, "the registry has the blob although the upload did not say so");
            true
        }
        Ok(false) => false,
        Err(e) => {
            debug!(%e, "cannot check whether the blob is there");
            false
        }
    }
}

/// Upload `blob` into `repo`, starting from `start` (a session opened by a
/// mount attempt that fell back to 202, or a fresh one).
pub async fn upload_blob(
    client: &RegistryClient,
    repo: &str,
    blob: &BlobSource,
    session: Option<Url>,
    opts: &UploadOptions<'_>,
) -> Result<Uploaded, UploadError> {
    if blob.size > opts.chunk_threshold {
        upload_chunked(client, repo, blob, session, opts).await
    } else {
        upload_monolithic(client, repo, blob, session, opts).await
    }
}

async fn new_session(client: &RegistryClient, repo: &str) -> Result<Url, RegistryError> {
    match client.start_upload(repo, None).await? {
        UploadStart::Session(u) => Ok(u),
        UploadStart::Mounted => unreachable!("no mount was asked for"),
    }
}

async fn upload_monolithic(
    client: &RegistryClient,
    repo: &str,
    blob: &BlobSource,
    mut session: Option<Url>,
    opts: &UploadOptions<'_>,
) -> Result<Uploaded, UploadError> {
    let mut attempt = 0;
    loop {
        let loc = match session.take() {
            Some(u) => u,
            None => new_session(client, repo).await?,
        };
        let outcome = Arc::new(StreamOutcome::default());
        let result = client
            .put_blob_monolithic(repo, &loc, &blob.digest, blob.size, || {
                blob.body(Sha256::new(), 0, blob.size, outcome.clone(), opts.sent.clone())
            })
            .await;
        let err = match result {
            Ok(()) => return Ok(Uploaded::Sent),
            Err(e) => e,
        };
        if let Some(bad) = blob.corrupt_or_read_error(&outcome) {
            client.cancel_upload(repo, &loc).await;
            // A source that dropped the connection or stalled is asked
            // again, as a site registry that did would be.
            attempt += 1;
            if !bad.is_transient_source() || attempt > client.retry.retries {
                return Err(bad);
            }
            warn!(error = %bad, attempt, "the source failed mid-blob; fetching it again");
            client.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(client.retry.delay(attempt)).await;
            continue;
        }
        // The whole body went out: the registry may have committed it and
        // its answer been lost on the way back.
        if outcome.hasher.lock().unwrap().is_some() && committed_anyway(client, repo, &blob.digest).await {
            return Ok(Uploaded::Found);
        }
        // A cut-off PUT leaves the session at an unknown offset: a new session
        // is the only safe restart for a monolithic upload. The old one is
        // cancelled rather than left for the registry's garbage collector.
        client.cancel_upload(repo, &loc).await;
        attempt += 1;
        if !err.is_transient() || attempt > client.retry.retries {
            return Err(err.into());
        }
        warn!(%err, attempt, "blob upload failed; retrying with a new session");
        client.stats.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(client.retry.delay(attempt)).await;
    }
}

async fn upload_chunked(
    client: &RegistryClient,
    repo: &str,
    blob: &BlobSource,
    session: Option<Url>,
    opts: &UploadOptions<'_>,
) -> Result<Uploaded, UploadError> {
    let size = blob.size;
    // Resume a session an earlier run left, if the registry still has it.
    let (mut loc, mut offset, mut hasher) = match (&opts.resume, session) {
        (Some(prev), fresh) => match client.upload_offset(repo, prev).await? {
            Some((off, l)) if off <= size => {
                info!(digest = %blob.digest, offset = off, "resuming an interrupted upload");
                if let Some(f) = fresh {
                    client.cancel_upload(repo, &f).await;
                }
                (l, off, blob.hash_range(Sha256::new(), 0, off).await?)
            }
            _ => {
                // The session is gone: maybe because it was committed (the
                // closing PUT's answer was lost before the journal heard).
                if committed_anyway(client, repo, &blob.digest).await {
                    if let Some(f) = fresh {
                        client.cancel_upload(repo, &f).await;
                    }
                    return Ok(Uploaded::Found);
                }
                (
                    match fresh {
                        Some(f) => f,
                        None => new_session(client, repo).await?,
                    },
                    0,
                    Sha256::new(),
                )
            }
        },
        (None, Some(f)) => (f, 0, Sha256::new()),
        (None, None) => (new_session(client, repo).await?, 0, Sha256::new()),
    };
    let mut attempt = 0;
    while offset < size {
        let end = (offset + opts.chunk_size).min(size);
        let outcome = Arc::new(StreamOutcome::default());
        let start_hasher = hasher.clone();
        let result = client
            .patch_chunk(repo, &loc, offset, end - offset, || {
                blob.body(start_hasher.clone(), offset, end, outcome.clone(), opts.sent.clone())
            })
            .await;
        let err = match result {
            Ok(next) => match outcome.hasher.lock().unwrap().take() {
                Some(h) => {
                    loc = next;
                    offset = end;
                    hasher = h;
                    attempt = 0;
                    (opts.on_chunk)(&loc, offset);
                    continue;
                }
                // A 2xx before the whole body went out: the registry did not
                // take the chunk as sent. Ask it where it stands, as after
                // any failed chunk.
                None => RegistryError::Transport {
                    what: format!("PATCH {repo} bytes {offset}-{}", end - 1),
                    message: "the registry answered before the chunk was sent".into(),
                },
            },
            Err(e) => e,
        };
        // A source that dropped the connection or stalled mid-chunk: the
        // session stays, and the registry says below how far it got.
        let source_failed = match blob.corrupt_or_read_error(&outcome) {
            Some(bad) if bad.is_transient_source() => Some(bad),
            Some(bad) => {
                client.cancel_upload(repo, &loc).await;
                return Err(bad);
            }
            None => None,
        };
        attempt += 1;
        // 416: the registry holds a different offset than the chunk assumed;
        // it says which below.
        let range_refused = err.status() == Some(416);
        let retry = source_failed.is_some() || err.is_transient() || range_refused;
        if !retry || attempt > client.retry.retries {
            return Err(source_failed.unwrap_or(err.into()));
        }
        client.stats.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(client.retry.delay(attempt)).await;
        // Ask the registry how far it got, and continue from there.
        match client.upload_offset(repo, &loc).await {
            Ok(Some((off, l))) if off >= offset && off <= end => {
                warn!(%err, digest = %blob.digest, from = off, "chunk failed; resuming the upload where the registry stopped");
                hasher = blob.hash_range(start_hasher, offset, off).await?;
                offset = off;
                loc = l;
            }
            Ok(other) => {
                warn!(%err, digest = %blob.digest, registry_offset = ?other.map(|o| o.0), "the registry cannot resume this upload; starting it again");
                loc = new_session(client, repo).await?;
                offset = 0;
                hasher = Sha256::new();
            }
            Err(e) if e.is_transient() => debug!(%e, "upload status unavailable; retrying the chunk"),
            Err(e) => return Err(e.into()),
        }
    }
    match client.finish_upload(repo, &loc, &blob.digest, size).await {
        Ok(()) => Ok(Uploaded::Sent),
        // The close may have been committed and its answer lost (a proxy's
        // 502, a dropped connection): a retried close then gets 404.
        Err(e) => {
            if committed_anyway(client, repo, &blob.digest).await {
                Ok(Uploaded::Found)
            } else {
                Err(e.into())
            }
        }
    }
}
