//! A small double of Harbor in front of a real registry: Harbor's ping and
//! project API (HEAD/POST `/api/v2.0/projects`), its robot accounts (POST
//! `/api/v2.0/robots`: pull-only on one project), its token service, Basic
//! or Bearer auth on `/v2/`, and `/v2/*` reverse-proxied to the real
//! `docker-registry`. Every request is recorded so tests can assert what the
//! agent asked for (and in which order).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

#[derive(Clone, Default)]
pub struct HarborOptions {
    /// Basic credentials Harbor accepts (API, token service, and `/v2/` when
    /// not in bearer mode).
    pub credentials: Option<(String, String)>,
    /// `/v2/` wants `Bearer` tokens from `/service/token`.
    pub bearer: bool,
    /// Projects that exist from the start.
    pub projects: Vec<String>,
    /// Answer the Nth PATCH (1-based) with 504 without passing it on, as
    /// Harbor's nginx does when an upload is slow: the registry's session
    /// is left exactly where the previous chunk ended.
    pub fail_patch: Option<usize>,
    /// Answer cross-repository mounts like a registry that cannot mount:
    /// 202 with an ordinary upload session instead of 201.
    pub refuse_mount: bool,
    /// Swallow the Nth PATCH (1-based) and never answer it: the client hangs
    /// with the registry's session where the previous chunk ended.
    pub hang_patch: Option<usize>,
    /// Answer every project HEAD with 404 (a race with another creator, or
    /// a robot account that cannot see the project): the POST then gets 409.
    pub head_says_absent: bool,
    /// Token lifetime the token service hands out (default 1800 s).
    pub token_expires_in: Option<u64>,
    /// Answer the Nth PATCH (1-based) with 202 at once, body unread and not
    /// passed on (`Range: 0-0`, the session's own location).
    pub early_patch_accept: Option<usize>,
    /// Pass the first closing PUT of a chunked upload on to the registry
    /// (which commits the blob), then answer 502 as if the reply was lost.
    pub lose_close_response: bool,
    /// Answer cross-repository mounts with this status (e.g. 404) without
    /// passing them on.
    pub mount_status: Option<u16>,
    /// Read the Nth whole-blob PUT (1-based; a PUT with a body) and answer
    /// 502 without passing it on: the registry's session stays empty.
    pub fail_blob_put: Option<usize>,
    /// The robot name prefix Harbor is configured with (`robot_name_prefix`;
    /// default `robot$`): robots are answered as `<prefix><project>+<name>`.
    pub robot_name_prefix: Option<String>,
    /// Answer `POST /api/v2.0/robots` with this status and body instead.
    pub robot_answer: Option<(u16, String)>,
    /// Refuse every write (blob upload close or PUT, manifest PUT) into a
    /// repository whose name contains this, as Harbor does for a project
    /// over its storage quota: 403 with [`QUOTA_EXCEEDED`].
    pub quota_exceeded_for: Option<String>,
    /// Harbor's read-only mode: every request but GET, HEAD and OPTIONS,
    /// on `/v2/` and the API alike, gets 403 with [`READ_ONLY`].
    pub read_only: bool,
    /// In bearer mode, refuse every token on `/v2/`: a request that carried
    /// an Authorization header is challenged with `Basic realm="harbor"`
    /// (as Harbor always does then), and Basic credentials are taken.
    pub refuse_tokens: bool,
}

/// A robot account the double made (`POST /api/v2.0/robots`): pull on
/// `project` and nothing else, like Harbor's project-level robots.
#[derive(Clone, Debug)]
pub struct Robot {
    pub name: String,
    pub secret: String,
    pub project: String,
}

/// Harbor's answer to a write over the project's quota: `403`, code
/// `DENIED`, the message of `src/pkg/quota/errors.go` (sent by
/// `src/server/middleware/quota/quota.go`).
pub const QUOTA_EXCEEDED: &str = r#"{"errors":[{"code":"DENIED","message":"adding 4.0 KiB of storage resource, which when updated to current usage of 9.0 KiB will exceed the configured upper limit of 10.0 KiB."}]}"#;

/// Harbor's answer to a write in read-only mode: `403`, code `DENIED`
/// (`src/server/middleware/readonly/readonly.go`).
pub const READ_ONLY: &str =
    r#"{"errors":[{"code":"DENIED","message":"The system is in read only mode. Any modification is prohibited."}]}"#;

struct State {
    upstream: String,
    base: String,
    opts: HarborOptions,
    projects: Mutex<BTreeSet<String>>,
    tokens: Mutex<BTreeSet<String>>,
    requests: Mutex<Vec<String>>,
    patches: Mutex<usize>,
    closes_lost: Mutex<usize>,
    blob_puts: Mutex<usize>,
    http: reqwest::Client,
    robots: Mutex<Vec<Robot>>,
    robot_tokens: Mutex<BTreeSet<String>>,
}

pub struct HarborDouble {
    pub url: String,
    state: Arc<State>,
    _runtime: tokio::runtime::Runtime,
}

impl HarborDouble {
    pub fn start(upstream: &str, opts: HarborOptions) -> HarborDouble {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            base: base.clone(),
            projects: Mutex::new(opts.projects.iter().cloned().collect()),
            opts,
            tokens: Mutex::default(),
            requests: Mutex::default(),
            patches: Mutex::default(),
            closes_lost: Mutex::default(),
            blob_puts: Mutex::default(),
            robots: Mutex::default(),
            robot_tokens: Mutex::default(),
            http: {
                // The workspace's one crypto provider (decision 0009).
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
            },
        });
        let st = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        HarborDouble { url: base, state, _runtime: runtime }
    }

    /// `METHOD /path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn projects(&self) -> BTreeSet<String> {
        self.state.projects.lock().unwrap().clone()
    }

    /// The robot accounts made so far (and not revoked).
    pub fn robots(&self) -> Vec<Robot> {
        self.state.robots.lock().unwrap().clone()
    }

    /// Tokens the token service gave robots (since the last revoke).
    pub fn robot_tokens(&self) -> usize {
        self.state.robot_tokens.lock().unwrap().len()
    }

    /// Delete every robot account, as an administrator would in Harbor's UI:
    /// their credentials are refused from now on.
    pub fn revoke_robots(&self) {
        self.state.robots.lock().unwrap().clear();
        self.state.robot_tokens.lock().unwrap().clear();
    }
}

/// The robot whose Basic credentials `authz` carries, if any.
fn robot_of(st: &State, authz: Option<&str>) -> Option<Robot> {
    let authz = authz?;
    st.robots.lock().unwrap().iter().find(|r| basic(&r.name, &r.secret) == authz).cloned()
}

/// May a pull-only robot of `project` make this `/v2/` request? Reads
/// (GET, HEAD) of the base or of the project's repositories only.
fn robot_may(project: &str, method: &hyper::Method, path: &str) -> bool {
    let read = *method == hyper::Method::GET || *method == hyper::Method::HEAD;
    read && (path == "/v2/" || path.starts_with(&format!("/v2/{project}/")))
}

fn denied() -> Response<Full<Bytes>> {
    reply(StatusCode::FORBIDDEN, r#"{"errors":[{"code":"DENIED","message":"robot: pull only"}]}"#)
}

/// `POST /api/v2.0/robots` as Harbor v2.2+ answers it for a project-level
/// robot: only the admin may call it; level `project`, one permission of
/// kind `project` on an existing project; 201 with `name` and `secret`.
fn create_robot(st: &State, body: &[u8]) -> Response<Full<Bytes>> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let name = v["name"].as_str().unwrap_or("");
    let perms = v["permissions"].as_array().cloned().unwrap_or_default();
    let ok = !name.is_empty()
        && v["level"] == "project"
        && perms.len() == 1
        && perms[0]["kind"] == "project"
        && v["duration"].as_i64().is_some_and(|d| d == -1 || d > 0);
    if !ok {
        return reply(StatusCode::BAD_REQUEST, r#"{"errors":[{"code":"BAD_REQUEST","message":"bad robot"}]}"#);
    }
    let project = perms[0]["namespace"].as_str().unwrap_or("").to_owned();
    if !st.projects.lock().unwrap().contains(&project) {
        return reply(StatusCode::NOT_FOUND, r#"{"errors":[{"code":"NOT_FOUND","message":"project"}]}"#);
    }
    let prefix = st.opts.robot_name_prefix.clone().unwrap_or_else(|| "robot$".into());
    let full = format!("{prefix}{project}+{name}");
    let mut robots = st.robots.lock().unwrap();
    if robots.iter().any(|r| r.name == full) {
        return reply(StatusCode::CONFLICT, r#"{"errors":[{"code":"CONFLICT","message":"exists"}]}"#);
    }
    let secret = format!("Robot-Secret-{}-{}", robots.len(), name.len());
    robots.push(Robot { name: full.clone(), secret: secret.clone(), project });
    let answer = serde_json::json!({
        "id": robots.len(), "name": full, "secret": secret,
        "creation_time": "2026-01-01T00:00:00.000Z", "expires_at": -1,
    });
    reply(StatusCode::CREATED, &answer.to_string())
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder().status(status).body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

fn unauthorized(challenge: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header("www-authenticate", challenge)
        .body(Full::new(Bytes::from_static(br#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}"#)))
        .unwrap()
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let line = format!("{} {}{}", req.method(), path, query.as_ref().map(|q| format!("?{q}")).unwrap_or_default());
    st.requests.lock().unwrap().push(line);
    // Harbor's nginx: "client sent duplicate header line" -> 400.
    if req.headers().get_all("authorization").iter().count() > 1 {
        return Ok(reply(StatusCode::BAD_REQUEST, "<html>400 Bad Request (duplicate Authorization)</html>"));
    }
    let authz = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let basic_ok = match &st.opts.credentials {
        None => true,
        Some((u, p)) => authz.as_deref() == Some(basic(u, p).as_str()),
    };

    if path == "/api/v2.0/ping" {
        return Ok(reply(StatusCode::OK, "Pong"));
    }
    if path == "/api/v2.0/robots" && req.method() == hyper::Method::POST {
        if st.opts.credentials.is_some() && !basic_ok {
            return Ok(reply(StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#));
        }
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if let Some((status, answer)) = &st.opts.robot_answer {
            return Ok(reply(StatusCode::from_u16(*status).unwrap(), answer));
        }
        return Ok(create_robot(&st, &body));
    }
    let safe = matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS);
    if st.opts.read_only && !safe && path != "/service/token" {
        return Ok(reply(StatusCode::FORBIDDEN, READ_ONLY));
    }
    if path == "/api/v2.0/projects" {
        if !basic_ok {
            return Ok(reply(StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#));
        }
        if req.method() == hyper::Method::HEAD {
            let name = query
                .as_deref()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("project_name=")))
                .unwrap_or("")
                .to_owned();
            let exists = !st.opts.head_says_absent && st.projects.lock().unwrap().contains(&name);
            return Ok(reply(if exists { StatusCode::OK } else { StatusCode::NOT_FOUND }, ""));
        }
        if req.method() == hyper::Method::POST {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let name = v["project_name"].as_str().unwrap_or("").to_owned();
            if name.is_empty() || v["metadata"]["public"] != "false" {
                return Ok(reply(StatusCode::BAD_REQUEST, "bad project"));
            }
            let created = st.projects.lock().unwrap().insert(name);
            return Ok(reply(if created { StatusCode::CREATED } else { StatusCode::CONFLICT }, ""));
        }
    }
    if path == "/service/token" {
        if let Some(r) = robot_of(&st, authz.as_deref()) {
            let token = format!("robot-tok-{}-{}", r.name.len(), st.robot_tokens.lock().unwrap().len());
            st.robot_tokens.lock().unwrap().insert(format!("{token} {}", r.project));
            return Ok(reply(StatusCode::OK, &format!(r#"{{"token":"{token}","expires_in":1800}}"#)));
        }
        if !basic_ok {
            return Ok(reply(StatusCode::UNAUTHORIZED, "bad credentials"));
        }
        let token = format!("tok-{}", st.tokens.lock().unwrap().len());
        st.tokens.lock().unwrap().insert(token.clone());
        let life = st.opts.token_expires_in.unwrap_or(1800);
        return Ok(reply(StatusCode::OK, &format!(r#"{{"token":"{token}","expires_in":{life}}}"#)));
    }
    if path.starts_with("/v2/") {
        let basic_after_refused_token = st.opts.refuse_tokens && basic_ok && authz.is_some();
        if st.opts.refuse_tokens && authz.is_some() && !basic_ok {
            return Ok(unauthorized(r#"Basic realm="harbor""#.into()));
        }
        if st.opts.bearer && !basic_after_refused_token {
            let bearer = authz.as_deref().and_then(|a| a.strip_prefix("Bearer "));
            let robot_project = bearer.and_then(|t| {
                let tokens = st.robot_tokens.lock().unwrap();
                tokens.iter().find_map(|e| e.strip_prefix(&format!("{t} ")).map(str::to_owned))
            });
            if let Some(project) = &robot_project {
                if !robot_may(project, req.method(), &path) {
                    return Ok(denied());
                }
            }
            let ok = robot_project.is_some() || bearer.is_some_and(|t| st.tokens.lock().unwrap().contains(t));
            if !ok {
                let repo = path
                    .strip_prefix("/v2/")
                    .and_then(|p| p.split("/blobs/").next().filter(|r| *r != p))
                    .or_else(|| path.strip_prefix("/v2/").and_then(|p| p.split("/manifests/").next()))
                    .unwrap_or("");
                let scope = if repo.is_empty() || path == "/v2/" {
                    String::new()
                } else {
                    format!(r#",scope="repository:{repo}:pull,push""#)
                };
                return Ok(unauthorized(format!(
                    r#"Bearer realm="{}/service/token",service="harbor-registry"{scope}"#,
                    st.base
                )));
            }
        } else if let Some(r) = robot_of(&st, authz.as_deref()) {
            if !robot_may(&r.project, req.method(), &path) {
                return Ok(denied());
            }
        } else if !basic_ok {
            return Ok(unauthorized(r#"Basic realm="harbor""#.into()));
        }
        if req.method() == hyper::Method::PATCH {
            let n = {
                let mut p = st.patches.lock().unwrap();
                *p += 1;
                *p
            };
            if st.opts.hang_patch == Some(n) {
                let _ = req.into_body().collect().await;
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                return Ok(reply(StatusCode::GATEWAY_TIMEOUT, "gave up"));
            }
            if st.opts.fail_patch == Some(n) {
                let _ = req.into_body().collect().await;
                return Ok(reply(StatusCode::GATEWAY_TIMEOUT, "<html>504 Gateway Time-out</html>"));
            }
            if st.opts.early_patch_accept == Some(n) {
                let loc = format!("{}{}{}", st.base, path, query.as_ref().map(|q| format!("?{q}")).unwrap_or_default());
                return Ok(Response::builder()
                    .status(StatusCode::ACCEPTED)
                    .header("location", loc)
                    .header("range", "0-0")
                    .body(Full::new(Bytes::new()))
                    .unwrap());
            }
        }
        if let Some(repo) = &st.opts.quota_exceeded_for {
            let write = req.method() == hyper::Method::PUT;
            if write && path.contains(repo.as_str()) {
                let _ = req.into_body().collect().await;
                return Ok(reply(StatusCode::FORBIDDEN, QUOTA_EXCEEDED));
            }
        }
        if let Some(status) = st.opts.mount_status {
            if query.as_deref().is_some_and(|q| q.contains("mount=")) {
                let status = StatusCode::from_u16(status).unwrap();
                return Ok(reply(status, r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"cannot mount"}]}"#));
            }
        }
        let is_close = req.method() == hyper::Method::PUT
            && path.contains("/blobs/uploads/")
            && req.headers().get("content-length").and_then(|v| v.to_str().ok()) == Some("0");
        let is_blob_put = req.method() == hyper::Method::PUT
            && path.contains("/blobs/uploads/")
            && req.headers().get("content-length").and_then(|v| v.to_str().ok()) != Some("0");
        if is_blob_put && st.opts.fail_blob_put.is_some() {
            let n = {
                let mut n = st.blob_puts.lock().unwrap();
                *n += 1;
                *n
            };
            if st.opts.fail_blob_put == Some(n) {
                let _ = req.into_body().collect().await;
                return Ok(reply(StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>"));
            }
        }
        if is_close && st.opts.lose_close_response {
            let first = {
                let mut n = st.closes_lost.lock().unwrap();
                *n += 1;
                *n == 1
            };
            if first {
                let r = proxy(&st, req, &path, query.as_deref()).await;
                if !r.status().is_success() {
                    return Ok(r);
                }
                return Ok(reply(StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>"));
            }
        }
        let query = match query {
            Some(q) if st.opts.refuse_mount && q.contains("mount=") => None,
            q => q,
        };
        return Ok(proxy(&st, req, &path, query.as_deref()).await);
    }
    Ok(reply(StatusCode::NOT_FOUND, "not found"))
}

async fn proxy(st: &State, req: Request<Incoming>, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let url = format!("{}{}{}", st.upstream, path, query.map(|q| format!("?{q}")).unwrap_or_default());
    let method = req.method().clone();
    let mut headers = req.headers().clone();
    headers.remove("host");
    headers.remove("authorization");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, "client went away"),
    };
    let resp = match st.http.request(method, url).headers(headers).body(body).send().await {
        Ok(r) => r,
        Err(e) => return reply(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if k == "location" {
            let loc = v.to_str().unwrap_or("").replace(&st.upstream, &st.base);
            out = out.header(k, loc);
        } else if k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    out.body(Full::new(bytes)).unwrap()
}
