//! Pulling from source registries, on top of `oci-client`: per-host protocol,
//! CA and credentials from the spec (or the docker auth file), retries with
//! backoff for what is transient, and errors sorted into what a user can act
//! on (unknown image, refused credentials, unreachable registry, bad bytes).

use std::collections::BTreeSet;
use std::time::Duration;

use edgeiso_bundle::manifest::ACCEPTED_MANIFEST_TYPES;
use edgeiso_bundle::{Digest, ImageRef};
use edgeiso_installer_config::spec::Spec;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{image}: not found in registry {registry} ({detail})")]
    NotFound { image: String, registry: String, detail: String },
    #[error("registry {registry} refused the credentials{user} for {image}")]
    Auth { image: String, registry: String, user: String },
    #[error("registry {registry} failed for {what} after {attempts} attempts: {detail}")]
    Unreachable { registry: String, what: String, attempts: u32, detail: String },
    #[error("registry {registry} served bytes for {what} that do not match digest {digest}")]
    BadDigest { registry: String, what: String, digest: String },
    #[error("registry {registry}: {what}: {detail}")]
    Other { registry: String, what: String, detail: String },
    #[error("{0}")]
    Local(String),
    /// The spec asks for something the image cannot give (exit 3).
    #[error("{0}")]
    Spec(String),
}

impl PullError {
    /// The exit code this error deserves.
    pub fn exit_code(&self) -> i32 {
        match self {
            PullError::NotFound { .. } | PullError::Auth { .. } => crate::exit::REGISTRY_REFUSED,
            PullError::BadDigest { .. } => crate::exit::VERIFY_FAILED,
            PullError::Spec(_) => crate::exit::INVALID_INPUT,
            _ => crate::exit::FAILURE,
        }
    }
}

/// How many times a transient failure is tried, and the first backoff.
/// Tests shorten the backoff with `EDGEISO_RETRY_BASE_MS`.
const ATTEMPTS: u32 = 5;

fn retry_base() -> Duration {
    let ms = std::env::var("EDGEISO_RETRY_BASE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    Duration::from_millis(ms)
}

/// What a registry's answer (an oci-client error) means to a user: the one
/// reading of registry errors, used by pulls and by registry checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401/403, UNAUTHORIZED, DENIED: the credentials (or none) were refused.
    Refused,
    /// 404, MANIFEST_UNKNOWN, NAME_UNKNOWN, BLOB_UNKNOWN.
    NotFound,
    /// No answer, 408, 429, 5xx, TOOMANYREQUESTS: worth another try.
    Transient,
    Other,
}

pub fn error_kind(e: &OciDistributionError) -> ErrorKind {
    match e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            ErrorKind::Refused
        }
        OciDistributionError::ImageManifestNotFoundError(_) => ErrorKind::NotFound,
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| matches!(c, OciErrorCode::Toomanyrequests)) {
                // Rate limits (Docker Hub) pass: wait and try again.
                ErrorKind::Transient
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                ErrorKind::Refused
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                ErrorKind::NotFound
            } else {
                ErrorKind::Other
            }
        }
        OciDistributionError::ServerError { code, .. } => match code {
            401 | 403 => ErrorKind::Refused,
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Other,
        },
        OciDistributionError::RequestError(_) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

pub struct Source {
    client: Client,
    /// Per-registry credentials, resolved once.
    auths: std::collections::HashMap<String, (RegistryAuth, Option<String>)>,
}

impl Source {
    /// A client for every registry `images` come from, with the settings
    /// (plain HTTP, CA, credentials) the spec gives each.
    pub fn for_images<'a>(spec: &Spec, images: impl IntoIterator<Item = &'a ImageRef>) -> anyhow::Result<Source> {
        let hosts: BTreeSet<String> = images.into_iter().map(|i| i.registry().to_owned()).collect();
        let mut insecure = Vec::new();
        let mut certs = Vec::new();
        let mut auths = std::collections::HashMap::new();
        for host in &hosts {
            let reg = spec.registry(host);
            if reg.is_some_and(|r| r.insecure) {
                insecure.push(host.clone());
            }
            if let Some(ca) = reg.and_then(|r| r.ca_file.as_ref()) {
                let data = std::fs::read(ca)
                    .map_err(|e| anyhow::anyhow!("caFile {} of registry {host}: {e}", ca.display()))?;
                certs.push(Certificate { encoding: CertificateEncoding::Pem, data });
            }
            let creds = match reg.and_then(|r| r.username.clone()) {
                Some(user) => {
                    let pass = reg.unwrap().read_password()?.ok_or_else(|| {
                        anyhow::anyhow!(
                            "registry {host} has a username but no passwordFile in {}",
                            spec.source_path.display()
                        )
                    })?;
                    Some((user, pass))
                }
                None => edgeiso_installer_config::auth::docker_credentials(host)?,
            };
            let auth = match creds {
                Some((u, p)) => (RegistryAuth::Basic(u.clone(), p), Some(u)),
                None => (RegistryAuth::Anonymous, None),
            };
            auths.insert(host.clone(), auth);
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure),
            extra_root_certificates: certs,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        Ok(Source { client: Client::new(config), auths })
    }

    fn auth(&self, registry: &str) -> &RegistryAuth {
        self.auths.get(registry).map(|a| &a.0).unwrap_or(&RegistryAuth::Anonymous)
    }

    fn classify(&self, image: &ImageRef, what: &str, e: OciDistributionError) -> Classified {
        let registry = image.registry().to_owned();
        let user =
            self.auths.get(&registry).and_then(|a| a.1.clone()).map(|u| format!(" of user {u}")).unwrap_or_default();
        let auth = || PullError::Auth { image: image.to_string(), registry: registry.clone(), user: user.clone() };
        let not_found =
            |detail: String| PullError::NotFound { image: image.to_string(), registry: registry.clone(), detail };
        let other = |detail: String| PullError::Other { registry: registry.clone(), what: what.to_owned(), detail };
        match e {
            // Without the URL: a redirect to a CDN carries a signed query.
            OciDistributionError::RequestError(e) => Classified::Transient(error_chain(&e.without_url())),
            // The only io in a pull is writing our own file: local, final.
            OciDistributionError::IoError(e) => Classified::Final(PullError::Local(format!("{what}: {e}"))),
            OciDistributionError::DigestError(_) => Classified::Final(PullError::BadDigest {
                registry: registry.clone(),
                what: what.to_owned(),
                digest: image.digest().unwrap_or("?").to_owned(),
            }),
            e => {
                let detail = match &e {
                    OciDistributionError::ImageManifestNotFoundError(d) => d.clone(),
                    OciDistributionError::RegistryError { envelope, .. } => envelope.to_string(),
                    OciDistributionError::ServerError { code, message, .. } => format!("HTTP {code}: {message}"),
                    e => e.to_string(),
                };
                match error_kind(&e) {
                    ErrorKind::Refused => Classified::Final(auth()),
                    ErrorKind::NotFound => Classified::Final(not_found(detail)),
                    ErrorKind::Transient => Classified::Transient(detail),
                    ErrorKind::Other => Classified::Final(other(detail)),
                }
            }
        }
    }

    /// Run `op` with retries for transient failures.
    async fn retrying<T, F, Fut>(&self, image: &ImageRef, what: &str, mut op: F) -> Result<T, PullError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = retry_base();
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.classify(image, what, e) {
                    Classified::Final(e) => return Err(e),
                    Classified::Transient(detail) => {
                        tracing::warn!("{}: {what}: attempt {attempt}/{ATTEMPTS} failed: {detail}", image.registry());
                        last = detail;
                        if attempt < ATTEMPTS {
                            let jitter = rand::random_range(0.0..0.5);
                            tokio::time::sleep(delay.mul_f64(1.0 + jitter)).await;
                            delay *= 2;
                        }
                    }
                },
            }
        }
        Err(PullError::Unreachable {
            registry: image.registry().to_owned(),
            what: what.to_owned(),
            attempts: ATTEMPTS,
            detail: last,
        })
    }

    /// Fetch a manifest or index by tag or digest: its exact bytes and digest.
    pub async fn manifest(&self, image: &ImageRef) -> Result<(Vec<u8>, Digest), PullError> {
        let reference = to_oci_reference(image);
        let auth = self.auth(image.registry());
        let (bytes, digest) = self
            .retrying(image, &format!("manifest of {image}"), || {
                self.client.pull_manifest_raw(&reference, auth, ACCEPTED_MANIFEST_TYPES)
            })
            .await?;
        let actual = Digest::of(&bytes);
        // oci-client compares against the header; we hold the registry to the
        // bytes themselves, and to the digest we asked for.
        let expected = image.digest().map(str::to_owned).unwrap_or(digest);
        if actual.as_str() != expected {
            return Err(PullError::BadDigest {
                registry: image.registry().into(),
                what: format!("manifest of {image}"),
                digest: expected,
            });
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Stream blob `digest` of `image`'s repository into `dest` (created or
    /// truncated), verifying the digest on the way. Retries restart the blob.
    pub async fn blob_to_file(
        &self,
        image: &ImageRef,
        digest: &Digest,
        dest: &std::fs::File,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(), PullError> {
        let blob_ref = image.pinned(digest);
        let reference = to_oci_reference(&blob_ref);
        let auth = self.auth(image.registry());
        // Authenticate once for the repository; pull_blob relies on stored tokens.
        self.retrying(&blob_ref, "authentication", || {
            self.client.auth(&reference, auth, oci_client::RegistryOperation::Pull)
        })
        .await?;
        let what = format!("blob {digest} of {}", image.name());
        self.retrying(&blob_ref, &what, || async {
            // A clone of the locked descriptor: the lock stays with the file.
            let file = dest.try_clone()?;
            file.set_len(0)?;
            let mut file = tokio::fs::File::from_std(file);
            tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(0)).await?;
            let mut writer = Counting { inner: tokio::io::BufWriter::with_capacity(1 << 20, file), on_bytes };
            self.client.pull_blob(&reference, digest.as_str(), &mut writer).await?;
            writer.inner.flush().await?;
            writer.inner.get_ref().sync_data().await?;
            Ok(())
        })
        .await
        .map_err(|e| match e {
            PullError::BadDigest { registry, .. } => {
                PullError::BadDigest { registry, what, digest: digest.to_string() }
            }
            e => e,
        })
    }
}

enum Classified {
    Final(PullError),
    Transient(String),
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub fn to_oci_reference(image: &ImageRef) -> Reference {
    let registry = image.registry().to_owned();
    let repo = image.repository().to_owned();
    match (image.digest(), image.tag()) {
        (Some(d), _) => Reference::with_digest(registry, repo, d.to_owned()),
        (None, Some(t)) => Reference::with_tag(registry, repo, t.to_owned()),
        (None, None) => Reference::with_tag(registry, repo, "latest".to_owned()),
    }
}

/// Counts bytes into a progress callback as they are written.
struct Counting<'a, W> {
    inner: W,
    on_bytes: &'a (dyn Fn(u64) + Sync),
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counting<'_, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let p = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &p {
            (self.on_bytes)(*n as u64);
        }
        p
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
