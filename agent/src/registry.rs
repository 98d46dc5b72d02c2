//! A small OCI distribution push client on reqwest: just the calls a loader
//! needs, each with per-request retries (exponential backoff, jitter), the
//! Basic and Bearer auth flows, and errors that say what was being done.
//! Why not `oci-client`: see `docs/decisions/0004-agent-push-client.md`.
//!
//! Requests with a replayable body go through [`RegistryClient::send`], which
//! retries transient failures itself. Uploads stream their bodies from the
//! bundle, so they use [`RegistryClient::send_once`] and the upload code
//! decides how to resume (see `upload.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgeiso_bundle::manifest::ACCEPTED_MANIFEST_TYPES;
use edgeiso_bundle::Digest;
use edgeiso_contract::printable::escape;
use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use tracing::{debug, warn};

use crate::auth::{self, Challenge, Credentials, Scheme, Token, TokenResponse};
use crate::config::Endpoint;
use crate::location::resolve_location;
use crate::retry::RetryPolicy;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    #[error("{what}: HTTP {status}{detail}")]
    Status { what: String, status: u16, detail: String },
    #[error("{what}: the registry refused the credentials (HTTP {status}){detail}")]
    Auth { what: String, status: u16, detail: String },
    #[error("{what}: TLS certificate verification failed: {message}")]
    Tls { what: String, message: String },
    #[error("{what}: {message}")]
    Protocol { what: String, message: String },
    /// The registry refuses writes for a reason of its own that credentials
    /// cannot change (Harbor's project quota, its read-only mode): the
    /// images it concerns fail, the others are still loaded.
    #[error("{what}: {state} (HTTP {status}){detail}")]
    Refused { what: String, status: u16, state: Refusal, detail: String },
}

/// Why a registry refuses writes that credentials cannot fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Harbor: `403 DENIED` "adding N of storage resource, which when updated
    /// to current usage of M will exceed the configured upper limit of L."
    /// (`src/pkg/quota/errors.go`, sent by `server/middleware/quota`).
    Quota,
    /// Harbor: `403 DENIED` "The system is in read only mode. Any
    /// modification is prohibited." (`server/middleware/readonly`).
    ReadOnly,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Quota => "the Harbor project's storage quota is exhausted (raise the project quota or free space)",
            Refusal::ReadOnly => "Harbor is in read-only mode (an administrator must turn it off)",
        })
    }
}

impl Refusal {
    /// What a 403 body says, if it is one of Harbor's refusals. Only a 403
    /// that says so is one: any other 401/403 is a credentials problem.
    pub fn of(status: u16, body: &str) -> Option<Refusal> {
        if status != 403 {
            return None;
        }
        let lower = body.to_ascii_lowercase();
        if lower.contains("will exceed the configured upper limit") {
            Some(Refusal::Quota)
        } else if lower.contains("read only mode") || lower.contains("read-only mode") {
            Some(Refusal::ReadOnly)
        } else {
            None
        }
    }
}

impl RegistryError {
    /// Worth retrying: the network, a restarting registry, an overloaded one.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. }
            | RegistryError::Auth { status, .. }
            | RegistryError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Counters for the summary and for tests ("nothing finished was re-uploaded").
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

/// How long one request may take. Every request has all three bounds, so
/// a registry that accepts a connection and then says nothing, or trickles
/// its answer a byte at a time, costs a bounded wait and then counts as a
/// registry that stopped answering (retried, then exit 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connection set-up.
    pub connect: Duration,
    /// From the start of a request to the end of the answer's status line
    /// and headers: the first-byte bound, which a trickled head cannot
    /// stretch. A request with a body gets one more second per
    /// [`MIN_UPLOAD_RATE`] bytes of it (and a blob's closing PUT per byte of
    /// the blob: a registry may move or hash it before answering).
    pub answer: Duration,
    /// Between two pieces of an answer's body; the whole body (the agent
    /// reads only small ones: errors, tokens) within `answer` as well.
    pub idle_read: Duration,
}

/// The slowest upload rate a request body is granted time for (bytes/s).
pub const MIN_UPLOAD_RATE: u64 = 512 << 10;

/// The most of an answer's body the agent reads (error texts, tokens).
const MAX_ANSWER_BODY: usize = 64 << 10;

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            answer: Duration::from_secs(60),
            idle_read: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The answer bound of a request that sends (or makes the registry
    /// process) `body_len` bytes.
    pub fn answer_within(&self, body_len: u64) -> Duration {
        self.answer + Duration::from_secs(body_len / MIN_UPLOAD_RATE)
    }
}

fn no_answer(what: &str, within: Duration) -> RegistryError {
    RegistryError::Transport {
        what: what.to_owned(),
        message: format!("no answer within {}", humantime::format_duration(within)),
    }
}

pub struct RegistryClient {
    http: reqwest::Client,
    pub timeouts: Timeouts,
    pub url: Endpoint,
    creds: Option<Credentials>,
    scheme: Mutex<Scheme>,
    tokens: Mutex<HashMap<String, Token>>,
    pub retry: RetryPolicy,
    pub stats: Arc<Stats>,
    /// Where this registry's credentials are given, for the error that says
    /// they are needed.
    pub credentials_hint: &'static str,
}

/// What answers at the registry address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/api/v2.0/ping` answers: projects must exist before a push.
    Harbor,
    /// Only `/v2/`: any OCI distribution registry.
    Plain,
}

/// Whose `Authorization` a request carries. Exactly one header is ever sent:
/// nginx in front of Harbor answers 400 to a duplicated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// What `/v2/` asked for (Basic or a Bearer token), learnt from its 401s.
    Registry,
    /// Basic credentials, always, and no challenge handling: Harbor's
    /// `/api/v2.0`.
    Basic,
}

/// An `Authorization` header value, marked sensitive (never logged by hyper).
fn sensitive(what: &str, value: &str) -> Result<HeaderValue, RegistryError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| RegistryError::Protocol { what: what.into(), message: "unusable credentials".into() })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The start of a blob upload.
#[derive(Debug)]
pub enum UploadStart {
    /// Cross-repository mount done (201): nothing to send.
    Mounted,
    /// An upload session to send the bytes to.
    Session(Url),
}

pub struct ClientOptions<'a> {
    pub ca: Option<&'a std::path::Path>,
    pub insecure: bool,
    pub credentials: Option<Credentials>,
    pub timeouts: Timeouts,
    /// Go through `HTTPS_PROXY`/`HTTP_PROXY` when set: for the registries
    /// a thin bundle's blobs come from, which are outside the site. The
    /// site's own registry is local and never is.
    pub proxy_from_env: bool,
}

/// Bytes a session holds, from its `Range: 0-<last byte>` header.
/// Distribution answers `0-0` both for an empty session and for one holding
/// a single byte (and some registries `0--1` for empty): both are read as 0,
/// the safe side. Resuming at 0 a session that holds 1 byte is refused (416)
/// or caught by the digest check; resuming at 1 an empty one would corrupt
/// the blob on a registry that ignores `Content-Range` (distribution 2.8).
pub fn uploaded_bytes(range: &str) -> u64 {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let Some((start, end)) = range.split_once('-') else { return 0 };
    match (start.trim().parse::<u64>(), end.trim().parse::<u64>()) {
        (Ok(0), Ok(end)) if end > 0 => end + 1,
        _ => 0,
    }
}

/// The `Docker-Content-Digest` an answer carries.
fn content_digest(resp: &Response) -> Option<&str> {
    resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Whether an answer names `digest` as its content.
fn confirms(resp: &Response, digest: &Digest) -> bool {
    content_digest(resp) == Some(digest.as_str())
}

/// What an error message quotes of an answer's body: its first 300
/// characters, escaped (it reaches terminals, the journal and the console).
pub fn detail_of(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        let cut: String = body.chars().take(300).collect();
        format!(": {}", escape(&cut))
    }
}

impl RegistryClient {
    pub fn new(url: Endpoint, opts: ClientOptions<'_>) -> Result<RegistryClient, crate::tls::TlsSetupError> {
        let tls = crate::tls::client_config(opts.ca, opts.insecure)?;
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(crate::dns::Resolver::default()));
        if !opts.proxy_from_env {
            // The registry is local; an HTTP_PROXY meant for the outside world
            // must not capture it.
            http = http.no_proxy();
        }
        let http = http
            .connect_timeout(opts.timeouts.connect)
            // No client-wide read timeout: reqwest's counts from the start of
            // the request, upload included. Each request gets its own bound
            // instead (`Timeouts`), and bodies are read by `read_body`.
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .user_agent(concat!("edgeiso-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::tls::TlsSetupError::Ca { path: "(client)".into(), reason: e.to_string() })?;
        Ok(RegistryClient {
            http,
            timeouts: opts.timeouts,
            url,
            creds: opts.credentials,
            scheme: Mutex::new(Scheme::Unknown),
            tokens: Mutex::new(HashMap::new()),
            retry: RetryPolicy::default(),
            stats: Arc::default(),
            credentials_hint: "--username, --password-file",
        })
    }

    pub fn v2(&self, path: &str) -> Url {
        self.url.join(&format!("v2/{path}"))
    }

    pub(crate) fn transport_error(what: &str, e: &reqwest::Error) -> RegistryError {
        if let Some(message) = crate::tls::is_cert_error(e) {
            return RegistryError::Tls { what: what.to_owned(), message };
        }
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        RegistryError::Transport { what: what.to_owned(), message }
    }

    /// At most `limit` bytes of an answer's body, each piece within
    /// `idle_read` and all of it within `answer`. `Ok` holds what came, cut
    /// at `limit` (the rest is not read).
    async fn read_body(&self, what: &str, mut resp: Response, limit: usize) -> Result<Vec<u8>, RegistryError> {
        let t = self.timeouts;
        let read = async {
            let mut body = Vec::new();
            while body.len() < limit {
                let chunk = match tokio::time::timeout(t.idle_read, resp.chunk()).await {
                    Ok(Ok(Some(c))) => c,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => return Err(Self::transport_error(what, &e)),
                    Err(_) => {
                        return Err(RegistryError::Transport {
                            what: what.to_owned(),
                            message: format!(
                                "the answer stalled: nothing for {}",
                                humantime::format_duration(t.idle_read)
                            ),
                        })
                    }
                };
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
            }
            Ok(body)
        };
        tokio::time::timeout(t.answer, read).await.unwrap_or_else(|_| {
            Err(RegistryError::Transport {
                what: what.to_owned(),
                message: format!("the answer's body did not arrive within {}", humantime::format_duration(t.answer)),
            })
        })
    }

    /// The body as text for an error message (what arrived in time).
    async fn read_text(&self, what: &str, resp: Response) -> String {
        match self.read_body(what, resp, MAX_ANSWER_BODY).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => format!("(body unread: {e})"),
        }
    }

    pub(crate) async fn status_error(&self, what: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        let body = self.read_text(what, resp).await;
        if let Some(state) = Refusal::of(status, &body) {
            RegistryError::Refused { what: what.to_owned(), status, state, detail: detail_of(&body) }
        } else if status == 401 || status == 403 {
            RegistryError::Auth { what: what.to_owned(), status, detail: detail_of(&body) }
        } else {
            RegistryError::Status { what: what.to_owned(), status, detail: detail_of(&body) }
        }
    }

    fn scope_key(scopes: &[String]) -> String {
        let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        s.sort_unstable();
        s.dedup();
        s.join(" ")
    }

    /// The `Authorization` header to send, fetching a token if the registry
    /// uses the Bearer flow and none is cached for these scopes.
    async fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let scheme = self.scheme.lock().unwrap().clone();
        match scheme {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => Ok(self.creds.as_ref().map(Credentials::basic_header)),
            Scheme::Bearer { realm, service } => {
                let key = Self::scope_key(scopes);
                if let Some(t) = self.tokens.lock().unwrap().get(&key).filter(|t| t.expires > Instant::now()) {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                let header = format!("Bearer {}", token.value);
                self.tokens.lock().unwrap().insert(key, token);
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<Token, RegistryError> {
        let what = "token request";
        let mut url = Url::parse(realm)
            .map_err(|e| RegistryError::Protocol { what: what.into(), message: format!("bad realm {realm:?}: {e}") })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut attempt = 0;
        loop {
            let mut rb = self.http.get(url.clone());
            if let Some(c) = &self.creds {
                rb = rb.header(AUTHORIZATION, sensitive(what, &c.basic_header())?);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let within = self.timeouts.answer;
            let sent = tokio::time::timeout(within, rb.send()).await.map_err(|_| no_answer(what, within));
            let err = match sent {
                Err(e) => e,
                Ok(Ok(resp)) if resp.status().is_success() => {
                    let bytes = match self.read_body(what, resp, MAX_ANSWER_BODY).await {
                        Ok(b) if b.len() < MAX_ANSWER_BODY => b,
                        Ok(_) => {
                            return Err(RegistryError::Protocol {
                                what: what.into(),
                                message: format!("token response larger than {MAX_ANSWER_BODY} bytes"),
                            })
                        }
                        Err(e) => return Err(e),
                    };
                    return TokenResponse::parse(&bytes)
                        .map_err(|e| RegistryError::Protocol { what: what.into(), message: e.to_string() });
                }
                Ok(Ok(resp)) => self.status_error(what, resp).await,
                Ok(Err(e)) => Self::transport_error(what, &e),
            };
            attempt += 1;
            if !err.is_transient() || attempt > self.retry.retries {
                return Err(err);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.retry.delay(attempt)).await;
        }
    }

    /// Learn from a 401. Returns false when retrying cannot help (we already
    /// sent what the challenge asks for, or we have no credentials).
    fn handle_challenge(&self, resp: &Response, scopes: &mut Vec<String>, sent_auth: bool) -> bool {
        let Some(challenge) =
            resp.headers().get(WWW_AUTHENTICATE).and_then(|h| h.to_str().ok()).and_then(auth::parse_challenge)
        else {
            return false;
        };
        match challenge {
            Challenge::Basic => {
                // Harbor answers a refused token with `Basic realm="harbor"`
                // (once a request carried an Authorization header, its
                // challenge is always Basic) and takes Basic credentials on
                // `/v2/` directly: switch to them, once. Basic credentials
                // refused are final.
                let mut scheme = self.scheme.lock().unwrap();
                let after_bearer = matches!(*scheme, Scheme::Bearer { .. });
                if self.creds.is_none() || (sent_auth && !after_bearer) {
                    return false;
                }
                if after_bearer {
                    debug!("the registry refused the Bearer token and asks for Basic credentials; switching to Basic");
                }
                *scheme = Scheme::Basic;
                true
            }
            Challenge::Bearer { realm, service, scope } => {
                let key = Self::scope_key(scopes);
                let had_token = self.tokens.lock().unwrap().remove(&key).is_some();
                let mut widened = false;
                if let Some(scope) = scope {
                    for s in scope.split(' ') {
                        if !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_owned());
                            widened = true;
                        }
                    }
                }
                *self.scheme.lock().unwrap() = Scheme::Bearer { realm, service };
                // A fresh token for a token that was refused only helps if
                // the old one may have expired or the scope grew.
                !sent_auth || had_token || widened
            }
        }
    }

    /// One request, no transient retry (the body may be a stream). A 401
    /// that a new token or Basic credentials can answer is retried once when
    /// `replayable` (no body, or a buffered one); otherwise it is returned as
    /// a transient error after the auth state was updated, so the caller's
    /// own retry goes out with the right credentials.
    /// `body_len`: the bytes the request sends (or makes the registry
    /// process), which extend its answer bound ([`Timeouts::answer_within`]).
    pub async fn send_once(
        &self,
        what: &str,
        scopes: &[String],
        replayable: bool,
        body_len: u64,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        self.send_once_as(AuthMode::Registry, what, scopes, replayable, body_len, make).await
    }

    async fn send_once_as(
        &self,
        mode: AuthMode,
        what: &str,
        scopes: &[String],
        replayable: bool,
        body_len: u64,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        let within = self.timeouts.answer_within(body_len);
        let mut scopes = scopes.to_vec();
        let mut auth_rounds = 0;
        loop {
            let authz = match mode {
                AuthMode::Registry => self.authorization(&scopes).await?,
                AuthMode::Basic => self.creds.as_ref().map(Credentials::basic_header),
            };
            let sent_auth = authz.is_some();
            let mut rb = make(&self.http);
            if let Some(a) = authz {
                // `header` appends: `make` must not have set one already.
                rb = rb.header(AUTHORIZATION, sensitive(what, &a)?);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let resp = tokio::time::timeout(within, rb.send())
                .await
                .map_err(|_| no_answer(what, within))?
                .map_err(|e| Self::transport_error(what, &e))?;
            if mode == AuthMode::Basic {
                return Ok(resp);
            }
            if resp.status() == StatusCode::UNAUTHORIZED
                && auth_rounds < 2
                && self.handle_challenge(&resp, &mut scopes, sent_auth)
            {
                auth_rounds += 1;
                if replayable {
                    continue;
                }
                return Err(RegistryError::Transport {
                    what: what.into(),
                    message: "authentication renewed; retrying".into(),
                });
            }
            if resp.status() == StatusCode::UNAUTHORIZED && !sent_auth && self.creds.is_none() {
                let body = self.read_text(what, resp).await;
                return Err(RegistryError::Auth {
                    what: what.into(),
                    status: 401,
                    detail: format!(
                        ": the registry requires credentials ({}){}",
                        self.credentials_hint,
                        detail_of(&body)
                    ),
                });
            }
            return Ok(resp);
        }
    }

    /// A request with a replayable body, retried on transient failures.
    /// Answers other than 401/403 and transient ones are returned as they are
    /// for the caller to interpret (404 means "absent" for a HEAD).
    pub async fn send(
        &self,
        what: &str,
        scopes: &[String],
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        self.send_as(AuthMode::Registry, what, scopes, 0, make).await
    }

    /// [`send`](Self::send) with the given kind of `Authorization`.
    pub async fn send_as(
        &self,
        mode: AuthMode,
        what: &str,
        scopes: &[String],
        body_len: u64,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        loop {
            let err = match self.send_once_as(mode, what, scopes, true, body_len, make).await {
                Ok(resp) => {
                    let s = resp.status();
                    if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN {
                        return Err(self.status_error(what, resp).await);
                    }
                    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT {
                        self.status_error(what, resp).await
                    } else {
                        return Ok(resp);
                    }
                }
                Err(e) => e,
            };
            attempt += 1;
            if !err.is_transient() || attempt > self.retry.retries {
                return Err(err);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let pause = self.retry.delay(attempt);
            debug!(%err, attempt, ?pause, "retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// One probe of what answers at the address (no retry, no auth): used
    /// while waiting for the registry to come up.
    pub async fn probe(&self) -> Result<Flavor, RegistryError> {
        let ping = self.url.join("api/v2.0/ping");
        let within = self.timeouts.answer;
        let answer = |r: Result<reqwest::Result<Response>, _>, what: &str| {
            r.map_err(|_| no_answer(what, within))?.map_err(|e| Self::transport_error(what, &e))
        };
        let harbor = match answer(tokio::time::timeout(within, self.http.get(ping).send()).await, "GET /api/v2.0/ping")
        {
            Ok(r) if r.status().is_success() => true,
            Ok(r) if r.status().is_server_error() => return Err(self.status_error("GET /api/v2.0/ping", r).await),
            Ok(_) => false,
            Err(e) => return Err(e),
        };
        match answer(tokio::time::timeout(within, self.http.get(self.v2("")).send()).await, "GET /v2/") {
            Ok(r) if r.status().is_success() || r.status() == StatusCode::UNAUTHORIZED => {
                Ok(if harbor { Flavor::Harbor } else { Flavor::Plain })
            }
            Ok(r) => Err(self.status_error("GET /v2/", r).await),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/` with credentials: fails fast on refused credentials.
    pub async fn check_access(&self) -> Result<(), RegistryError> {
        let url = self.v2("");
        let resp = self.send("GET /v2/", &[], &|c| c.get(url.clone())).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error("GET /v2/", resp).await)
        }
    }

    /// Harbor: create `project` unless it exists (HEAD, then POST; 409 is fine).
    pub async fn ensure_harbor_project(&self, project: &str) -> Result<bool, RegistryError> {
        let mut head = self.url.join("api/v2.0/projects");
        head.query_pairs_mut().append_pair("project_name", project);
        let what = format!("HEAD /api/v2.0/projects?project_name={project}");
        let resp = self.send_as(AuthMode::Basic, &what, &[], 0, &|c| c.head(head.clone())).await?;
        match resp.status() {
            s if s.is_success() => return Ok(false),
            StatusCode::NOT_FOUND => {}
            _ => return Err(self.status_error(&what, resp).await),
        }
        let post = self.url.join("api/v2.0/projects");
        let body = serde_json::json!({ "project_name": project, "metadata": { "public": "false" } }).to_string();
        let what = format!("POST /api/v2.0/projects {project}");
        let resp = self
            .send_as(AuthMode::Basic, &what, &[], 0, &|c| {
                c.post(post.clone()).header(CONTENT_TYPE, "application/json").body(body.clone())
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    /// Whether `repo` holds blob `digest`: only a 2xx that names the digest
    /// (`Docker-Content-Digest`) says so. A 200 without it (a proxy's page,
    /// a catch-all server) is not "already there".
    pub async fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.v2(&format!("{repo}/blobs/{digest}"));
        let what = format!("HEAD {repo} blob {digest}");
        let resp = self.send(&what, &[auth::push_scope(repo)], &|c| c.head(url.clone())).await?;
        match resp.status() {
            s if s.is_success() => {
                let confirmed = confirms(&resp, digest);
                if !confirmed {
                    warn!(%digest, status = %s, "the registry answered a blob HEAD without the blob's digest; not taken as present");
                }
                Ok(confirmed)
            }
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    /// After a 2xx to a request that should have stored blob `digest`: the
    /// answer names the digest, or a HEAD by digest confirms it.
    async fn confirm_blob(
        &self,
        what: &str,
        resp: &Response,
        repo: &str,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        if let Some(got) = content_digest(resp) {
            if got != digest.as_str() {
                return Err(RegistryError::Protocol {
                    what: what.into(),
                    message: format!("the registry stored digest {got}, expected {digest}"),
                });
            }
            return Ok(());
        }
        if self.blob_exists(repo, digest).await? {
            return Ok(());
        }
        Err(RegistryError::Protocol {
            what: what.into(),
            message: format!(
                "the registry answered HTTP {} but does not confirm blob {digest} (no Docker-Content-Digest, and a HEAD by digest does not find it)",
                resp.status()
            ),
        })
    }

    /// The digest `reference` (tag or digest) points to, if it exists.
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<Digest>, RegistryError> {
        let url = self.v2(&format!("{repo}/manifests/{reference}"));
        let what = format!("HEAD {repo}:{reference}");
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");
        let resp =
            self.send(&what, &[auth::pull_scope(repo)], &|c| c.head(url.clone()).header(ACCEPT, &accept)).await?;
        match resp.status() {
            s if s.is_success() => {
                let d = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok());
                // A registry that does not say is treated as "unknown", so the
                // caller pushes (idempotent) rather than trusting a guess.
                Ok(d)
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    /// Put a manifest's exact bytes under `reference` and check the registry
    /// computed the same digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &bytes::Bytes,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let url = self.v2(&format!("{repo}/manifests/{reference}"));
        let what = format!("PUT {repo} manifest {reference}");
        let resp = self
            .send(&what, &[auth::push_scope(repo)], &|c| {
                c.put(url.clone()).header(CONTENT_TYPE, media_type).body(bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(&what, resp).await);
        }
        // Pushed only when the registry says so with the digest, or a HEAD
        // by digest finds it.
        match content_digest(&resp) {
            Some(got) if got == digest.as_str() => Ok(()),
            Some(got) => Err(RegistryError::Protocol {
                what,
                message: format!("the registry stored digest {got}, expected {digest}"),
            }),
            None if self.manifest_digest(repo, digest.as_str()).await?.as_ref() == Some(digest) => Ok(()),
            None => Err(RegistryError::Protocol {
                what,
                message: format!(
                    "the registry answered HTTP {} but does not confirm manifest {digest} (no Docker-Content-Digest, and a HEAD by digest does not find it)",
                    resp.status()
                ),
            }),
        }
    }

    /// The session URL a `Location` header names, on the registry's own
    /// origin only ([`resolve_location`]): the next request carries the
    /// credentials.
    fn location(&self, what: &str, resp: &Response) -> Result<Url, RegistryError> {
        let loc =
            resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| RegistryError::Protocol {
                what: what.into(),
                message: format!("HTTP {} without a Location header", resp.status()),
            })?;
        resolve_location(&self.url.base, resp.url(), loc)
            .map_err(|e| RegistryError::Protocol { what: what.into(), message: e.to_string() })
    }

    /// Open an upload session, or mount `digest` from `from` when given.
    pub async fn start_upload(&self, repo: &str, mount: Option<(&Digest, &str)>) -> Result<UploadStart, RegistryError> {
        let mut url = self.v2(&format!("{repo}/blobs/uploads/"));
        let mut scopes = vec![auth::push_scope(repo)];
        if let Some((digest, from)) = mount {
            url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", from);
            scopes.push(auth::pull_scope(from));
        }
        let what = match mount {
            Some((d, from)) => format!("POST {repo} mount {d} from {from}"),
            None => format!("POST {repo} upload"),
        };
        let resp = self.send(&what, &scopes, &|c| c.post(url.clone()).header(CONTENT_LENGTH, "0")).await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => {
                let (digest, _) = mount.expect("checked");
                self.confirm_blob(&what, &resp, repo, digest).await?;
                Ok(UploadStart::Mounted)
            }
            // A registry that cannot mount opens an ordinary session (202).
            StatusCode::ACCEPTED => Ok(UploadStart::Session(self.location(&what, &resp)?)),
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    /// How many bytes the session holds (`GET <location>` -> 204 + Range),
    /// and the session's current location. `None` when the session is gone.
    pub async fn upload_offset(&self, repo: &str, location: &Url) -> Result<Option<(u64, Url)>, RegistryError> {
        let what = format!("GET {repo} upload status");
        let resp = self.send(&what, &[auth::push_scope(repo)], &|c| c.get(location.clone())).await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => {
                let offset = resp.headers().get("range").and_then(|v| v.to_str().ok()).map_or(0, uploaded_bytes);
                let loc = self.location(&what, &resp).unwrap_or_else(|_| location.clone());
                Ok(Some((offset, loc)))
            }
            // 404 unknown upload; 400/416 a session the registry cannot resume.
            s if s.is_client_error() => {
                debug!(status = %s, "upload session not resumable");
                Ok(None)
            }
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    fn with_digest(location: &Url, digest: &Digest) -> Url {
        let mut u = location.clone();
        u.query_pairs_mut().append_pair("digest", digest.as_str());
        u
    }

    /// The whole blob in one streamed PUT. Not retried here.
    pub async fn put_blob_monolithic(
        &self,
        repo: &str,
        location: &Url,
        digest: &Digest,
        len: u64,
        body: impl Fn() -> reqwest::Body + Sync,
    ) -> Result<(), RegistryError> {
        let url = Self::with_digest(location, digest);
        let what = format!("PUT {repo} blob {digest}");
        let resp = self
            .send_once(&what, &[auth::push_scope(repo)], false, len, &|c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .body(body())
            })
            .await?;
        if resp.status().is_success() {
            self.confirm_blob(&what, &resp, repo, digest).await
        } else {
            Err(self.status_error(&what, resp).await)
        }
    }

    /// Send bytes `[start, start + len)` of a chunked upload. Returns the
    /// session's next location. Not retried here.
    pub async fn patch_chunk(
        &self,
        repo: &str,
        location: &Url,
        start: u64,
        len: u64,
        body: impl Fn() -> reqwest::Body + Sync,
    ) -> Result<Url, RegistryError> {
        let what = format!("PATCH {repo} bytes {start}-{}", start + len - 1);
        let resp = self
            .send_once(&what, &[auth::push_scope(repo)], false, len, &|c| {
                c.patch(location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .header(CONTENT_RANGE, format!("{start}-{}", start + len - 1))
                    .body(body())
            })
            .await?;
        if resp.status() == StatusCode::ACCEPTED || resp.status().is_success() {
            self.location(&what, &resp)
        } else {
            Err(self.status_error(&what, resp).await)
        }
    }

    /// Close a chunked upload: `PUT <location>?digest=` with no body.
    /// `size`: the blob's, which the registry may move or hash before it
    /// answers.
    pub async fn finish_upload(
        &self,
        repo: &str,
        location: &Url,
        digest: &Digest,
        size: u64,
    ) -> Result<(), RegistryError> {
        let url = Self::with_digest(location, digest);
        let what = format!("PUT {repo} blob {digest} (close upload)");
        let resp = self
            .send_as(AuthMode::Registry, &what, &[auth::push_scope(repo)], size, &|c| {
                c.put(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status().is_success() {
            self.confirm_blob(&what, &resp, repo, digest).await
        } else {
            Err(self.status_error(&what, resp).await)
        }
    }

    /// Best effort: the registry garbage-collects abandoned sessions anyway.
    pub async fn cancel_upload(&self, repo: &str, location: &Url) {
        let what = format!("DELETE {repo} upload");
        match self.send_once(&what, &[auth::push_scope(repo)], true, 0, &|c| c.delete(location.clone())).await {
            Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_FOUND => {}
            Ok(r) => warn!(status = %r.status(), "could not cancel an upload session"),
            Err(e) => debug!(%e, "could not cancel an upload session"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{detail_of, uploaded_bytes, Refusal};

    #[test]
    fn error_bodies_are_quoted_escaped_and_cut() {
        let body = "{\"errors\":[{\"message\":\"\u{1b}[31mred\u{1b}]0;pwned\u{7}\u{9b}2J\r\"}]}";
        let d = detail_of(body);
        assert!(!d.chars().any(char::is_control), "{d:?}");
        assert!(d.contains("\\u{1b}[31mred"), "{d}");
        assert_eq!(detail_of(&"x".repeat(1000)).len(), 2 + 300);
        assert_eq!(detail_of(" \n "), "");
    }

    #[test]
    fn only_harbors_quota_and_read_only_403s_are_refusals() {
        let quota = r#"{"errors":[{"code":"DENIED","message":"adding 2.1 MiB of storage resource, which when updated to current usage of 8.3 MiB will exceed the configured upper limit of 10.0 MiB."}]}"#;
        let ro = r#"{"errors":[{"code":"DENIED","message":"The system is in read only mode. Any modification is prohibited."}]}"#;
        assert_eq!(Refusal::of(403, quota), Some(Refusal::Quota));
        assert_eq!(Refusal::of(403, ro), Some(Refusal::ReadOnly));
        assert_eq!(
            Refusal::of(
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#
            ),
            None
        );
        assert_eq!(Refusal::of(403, ""), None);
        assert_eq!(Refusal::of(401, quota), None, "a 401 is about credentials, whatever it says");
    }

    #[test]
    fn upload_range_headers_count_bytes_held() {
        // distribution: `0-0` for an empty session (and for 1 byte): read as
        // 0, never as 1 (resuming an empty session at 1 corrupts the blob).
        assert_eq!(uploaded_bytes("0-0"), 0);
        assert_eq!(uploaded_bytes("0--1"), 0);
        assert_eq!(uploaded_bytes("bytes=0-0"), 0);
        assert_eq!(uploaded_bytes(""), 0);
        assert_eq!(uploaded_bytes("garbage"), 0);
        assert_eq!(uploaded_bytes("0-1048575"), 1 << 20);
        assert_eq!(uploaded_bytes(" 0 - 9 "), 10);
        assert_eq!(uploaded_bytes("5-9"), 0, "a range not from 0 is not an offset");
    }
}
