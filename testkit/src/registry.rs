//! A real OCI registry (Debian's `docker-registry`, distribution 2.8) on
//! 127.0.0.1, one process and one temp storage dir per [`Registry`].
//!
//! Findings that shape this module (verified with distribution 2.8.2 here):
//! - htpasswd auth does NOT require TLS: distribution 2.8 starts with
//!   `auth.htpasswd` on a plain-HTTP listener, answers anonymous requests with
//!   401 + `WWW-Authenticate: Basic realm=...`, and accepts basic auth over
//!   plain HTTP (see `tests/registry.rs::auth_over_plain_http_*`). Only the
//!   clients are picky: docker refuses to send credentials to a non-TLS
//!   registry unless it is an "insecure registry". Our own clients may use
//!   either; [`RegistryOptions`] allows every combination.
//! - Only bcrypt entries are accepted in the htpasswd file; we write `$2y$`
//!   hashes (what `htpasswd -B` writes) at cost 4, the minimum, because the
//!   registry re-checks the hash on every request and tests make many.
//! - `http.secret` is fixed in the config, not left to distribution's random
//!   per-start default: upload-session `_state` tokens are HMACed with it, so a
//!   random one would invalidate every open upload across [`Registry::restart`],
//!   and resumable-upload tests need those to survive.
//!
//! The HTTP helpers use `ureq` (blocking, no async runtime) on purpose: these
//! helpers get called from `#[tokio::test]` functions, where a
//! `reqwest::blocking` client panics when created or dropped.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use edgeiso_bundle::manifest::ACCEPTED_MANIFEST_TYPES;
use edgeiso_bundle::Digest;

/// The registry binary Debian's `docker-registry` package installs.
pub const REGISTRY_BIN: &str = "docker-registry";

/// How long a (re)started registry gets to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `restart` keeps trying to bind the old port.
const REBIND_TIMEOUT: Duration = Duration::from_secs(15);

/// Ports handed out in this process. A port stays here for the life of the
/// process: a stopped registry keeps its port for `restart`, so nothing else
/// in the process may take it meanwhile.
static USED_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A free TCP port on 127.0.0.1, never the same twice within this process.
/// (Another process may still grab it between now and our bind; `Registry`
/// retries on a fresh port when that happens.)
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        if USED_PORTS.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// How to start a registry. `Default` is plain HTTP without auth.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost, signed by a
    /// CA generated for this registry ([`Registry::ca_pem_path`]).
    pub tls: bool,
    /// htpasswd user and password. Works with and without TLS.
    pub auth: Option<(String, String)>,
}

impl std::fmt::Debug for RegistryOptions {
    // Never print the password: options end up in panic messages and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("tls", &self.tls)
            .field("auth", &self.auth.as_ref().map(|(user, _)| format!("{user}:<redacted>")))
            .finish()
    }
}

/// A running `docker-registry` on 127.0.0.1. Drop kills the process and
/// removes the temp dir (config, log, storage, TLS material).
pub struct Registry {
    dir: tempfile::TempDir,
    storage: PathBuf,
    config: PathBuf,
    log: PathBuf,
    ca_pem: Option<PathBuf>,
    port: u16,
    opts: RegistryOptions,
    child: Option<Child>,
    agent: ureq::Agent,
}

enum StartFailure {
    /// Someone else holds the port (another process, or our own previous
    /// instance not yet gone).
    AddrInUse,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn start() -> Registry {
        Registry::start_with(RegistryOptions::default())
    }

    /// HTTPS with a generated CA, no auth.
    pub fn start_tls() -> Registry {
        Registry::start_with(RegistryOptions { tls: true, auth: None })
    }

    pub fn start_with(opts: RegistryOptions) -> Registry {
        assert!(
            crate::have(REGISTRY_BIN),
            "`{REGISTRY_BIN}` is not on PATH: run scripts/install-test-deps.sh (Debian package docker-registry)"
        );
        let dir = tempfile::Builder::new().prefix("edgeiso-registry-").tempdir().expect("create registry temp dir");
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("create registry storage dir");
        let ca_pem = opts.tls.then(|| write_tls_material(dir.path()));
        if let Some((user, password)) = &opts.auth {
            write_htpasswd(&dir.path().join("htpasswd"), user, password);
        }
        let agent = make_agent(ca_pem.as_deref());
        let mut registry = Registry {
            config: dir.path().join("config.yml"),
            log: dir.path().join("registry.log"),
            storage,
            ca_pem,
            port: 0,
            opts,
            child: None,
            agent,
            dir,
        };
        // A fresh port can be taken by another process between free_port()
        // and the registry's bind: try a few ports before giving up.
        for _ in 0..5 {
            registry.port = free_port();
            registry.write_config();
            match registry.spawn_and_wait() {
                Ok(()) => return registry,
                Err(StartFailure::AddrInUse) => continue,
            }
        }
        panic!("registry: five fresh ports were all in use\n{}", registry.log_tail());
    }

    /// "127.0.0.1:PORT"
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The PEM file of the CA that signed the registry's certificate (TLS only).
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// The registry's `storage.filesystem.rootdirectory`.
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The htpasswd user and password, when started with auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.opts.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kill the process; storage and port are kept for [`Registry::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port with the same storage; returns once
    /// `GET /v2/` answers. Stops the running process first, if any.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(StartFailure::AddrInUse) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(StartFailure::AddrInUse) => {
                    panic!(
                        "registry restart: port {} still in use after {REBIND_TIMEOUT:?}\n{}",
                        self.port,
                        self.log_tail()
                    )
                }
            }
        }
    }

    /// The registry's log file (stdout and stderr of every run).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last 40 lines of the registry's log (stdout and stderr, all runs).
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    // ---- read helpers ---------------------------------------------------

    /// The manifest (content type, exact bytes), or None on 404.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let req = self.request(self.agent.get(self.url() + &path)).header("Accept", ACCEPTED_MANIFEST_TYPES.join(", "));
        let mut resp = self.check(req.call(), "GET", &path);
        match resp.status().as_u16() {
            200 => {
                let content_type = header(&resp, "content-type").unwrap_or_default();
                Some((content_type, read_body(&mut resp, &path)))
            }
            404 => None,
            _ => self.unexpected("GET", &path, resp),
        }
    }

    /// The blob's bytes, or None on 404.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let mut resp = self.check(self.request(self.agent.get(self.url() + &path)).call(), "GET", &path);
        match resp.status().as_u16() {
            200 => Some(read_body(&mut resp, &path)),
            404 => None,
            _ => self.unexpected("GET", &path, resp),
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: 200 -> true, 404 -> false.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.check(self.request(self.agent.head(self.url() + &path)).call(), "HEAD", &path);
        match resp.status().as_u16() {
            200 => true,
            404 => false,
            _ => self.unexpected("HEAD", &path, resp),
        }
    }

    /// Every repository, following `Link: <...>; rel="next"` pages.
    pub fn catalog(&self) -> Vec<String> {
        self.catalog_paged(100)
    }

    /// [`Registry::catalog`] with `page_size` repositories per request (to
    /// exercise pagination).
    pub fn catalog_paged(&self, page_size: usize) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        self.paged(&format!("/v2/_catalog?n={page_size}"), |body| {
            let page: Catalog = serde_json::from_slice(body).expect("catalog JSON");
            out.extend(page.repositories.unwrap_or_default());
        });
        out
    }

    /// The repository's tags (empty when the repository does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        self.paged(&format!("/v2/{repo}/tags/list?n=100"), |body| {
            let page: Tags = serde_json::from_slice(body).expect("tags JSON");
            out.extend(page.tags.unwrap_or_default());
        });
        out
    }

    // ---- write helpers (used by images::push) ---------------------------

    /// Upload one blob: `POST .../blobs/uploads/` then one monolithic
    /// `PUT <Location>&digest=`. Panics unless the registry answers 201.
    pub fn upload_blob(&self, repo: &str, digest: &Digest, bytes: &[u8]) {
        let path = format!("/v2/{repo}/blobs/uploads/");
        let resp = self.check(self.request(self.agent.post(self.url() + &path)).send_empty(), "POST", &path);
        if resp.status().as_u16() != 202 {
            self.unexpected("POST", &path, resp);
        }
        let location = header(&resp, "location").unwrap_or_else(|| panic!("POST {path}: 202 without Location"));
        let location = if location.starts_with('/') { self.url() + &location } else { location };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let what = format!("{path} (upload of {digest}, {} bytes)", bytes.len());
        let req = self.request(self.agent.put(&put_url)).header("Content-Type", "application/octet-stream");
        let resp = self.check(req.send(bytes), "PUT", &what);
        if resp.status().as_u16() != 201 {
            self.unexpected("PUT", &what, resp);
        }
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with these exact bytes; checks
    /// the registry answers 201 with `Docker-Content-Digest` = digest of bytes.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let req = self.request(self.agent.put(self.url() + &path)).header("Content-Type", media_type);
        let resp = self.check(req.send(bytes), "PUT", &path);
        if resp.status().as_u16() != 201 {
            self.unexpected("PUT", &path, resp);
        }
        let expected = Digest::of(bytes);
        let got = header(&resp, "docker-content-digest");
        assert_eq!(got.as_deref(), Some(expected.as_str()), "PUT {path}: registry computed another digest");
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`: true on 202, false on 404.
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> bool {
        let path = format!("/v2/{repo}/manifests/{digest}");
        let resp = self.check(self.request(self.agent.delete(self.url() + &path)).call(), "DELETE", &path);
        match resp.status().as_u16() {
            202 => true,
            404 => false,
            _ => self.unexpected("DELETE", &path, resp),
        }
    }

    /// `DELETE /v2/<repo>/blobs/<digest>` (unlinks it from the repo): true on 202, false on 404.
    pub fn delete_blob(&self, repo: &str, digest: &str) -> bool {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.check(self.request(self.agent.delete(self.url() + &path)).call(), "DELETE", &path);
        match resp.status().as_u16() {
            202 => true,
            404 => false,
            _ => self.unexpected("DELETE", &path, resp),
        }
    }

    /// The status of an anonymous or authenticated `GET` of `path` (e.g.
    /// "/v2/"), for tests of auth behaviour. `credentials` None = anonymous.
    pub fn status_of(&self, path: &str, credentials: Option<(&str, &str)>) -> u16 {
        let mut req = self.agent.get(self.url() + path);
        if let Some((user, password)) = credentials {
            req = req.header("Authorization", basic_auth(user, password));
        }
        self.check(req.call(), "GET", path).status().as_u16()
    }

    // ---- internals --------------------------------------------------------

    fn write_config(&self) {
        let q = |p: &Path| serde_json::to_string(p.to_str().expect("utf-8 temp path")).expect("quote");
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: \"127.0.0.1:{port}\"\n  secret: \"edgeiso-testkit-fixed-upload-state-key\"\n",
            storage = q(&self.storage),
            port = self.port,
        );
        if self.opts.tls {
            yaml += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                q(&self.dir.path().join("server.crt")),
                q(&self.dir.path().join("server.key"))
            );
        }
        if self.opts.auth.is_some() {
            yaml += &format!(
                "auth:\n  htpasswd:\n    realm: edgeiso-testkit\n    path: {}\n",
                q(&self.dir.path().join("htpasswd"))
            );
        }
        fs::write(&self.config, yaml).expect("write registry config");
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let log = OpenOptions::new().create(true).append(true).open(&self.log).expect("open registry log");
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve").arg(&self.config).stdin(Stdio::null());
        cmd.stdout(log.try_clone().expect("dup log fd")).stderr(log);
        // distribution overrides any config key from REGISTRY_* variables
        // (e.g. REGISTRY_HTTP_ADDR); a stray one in the environment must not
        // move our registry.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {REGISTRY_BIN}: {e}"));
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        let probe = format!("{}/v2/", self.url());
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("try_wait")) {
                self.child = None;
                let this_run = read_from(&self.log, log_offset);
                if this_run.contains("address already in use") {
                    return Err(StartFailure::AddrInUse);
                }
                panic!("{REGISTRY_BIN} exited with {status} before answering on {}\n{}", self.host(), self.log_tail());
            }
            if let Ok(resp) = self.agent.get(&probe).call() {
                match resp.status().as_u16() {
                    200 | 401 => return Ok(()),
                    s => {
                        self.stop();
                        panic!("GET {probe} answered {s}, expected 200 or 401\n{}", self.log_tail())
                    }
                }
            }
            if Instant::now() > deadline {
                self.stop();
                panic!("{REGISTRY_BIN} did not answer GET {probe} within {READY_TIMEOUT:?}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn request<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.opts.auth {
            Some((user, password)) => req.header("Authorization", basic_auth(user, password)),
            None => req,
        }
    }

    fn check(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        method: &str,
        what: &str,
    ) -> ureq::http::Response<ureq::Body> {
        result.unwrap_or_else(|e| panic!("registry {}: {method} {what}: {e}\n{}", self.host(), self.log_tail()))
    }

    fn unexpected(&self, method: &str, what: &str, mut resp: ureq::http::Response<ureq::Body>) -> ! {
        let status = resp.status();
        let body = resp.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
        panic!("registry {}: {method} {what}: unexpected {status}: {body}\n{}", self.host(), self.log_tail())
    }

    /// GET `first` and every `Link: <next>; rel="next"` page after it; a 404
    /// on the first page (unknown repository) yields nothing.
    fn paged(&self, first: &str, mut page: impl FnMut(&[u8])) {
        let mut next = Some(first.to_owned());
        let mut first_page = true;
        while let Some(path) = next.take() {
            let mut resp = self.check(self.request(self.agent.get(self.url() + &path)).call(), "GET", &path);
            match resp.status().as_u16() {
                200 => {}
                404 if first_page => return,
                _ => self.unexpected("GET", &path, resp),
            }
            first_page = false;
            next = header(&resp, "link").and_then(|l| next_link(&l));
            page(&read_body(&mut resp, &path));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.url())
            .field("storage", &self.storage)
            .field("opts", &self.opts)
            .finish()
    }
}

/// The path (relative to the registry) of a `Link: <url>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let url = part.split('<').nth(1)?.split('>').next()?;
        // distribution sends a path; strip scheme and host if it ever sends a URL.
        let path = match url.find("://") {
            Some(i) => &url[i + 3..][url[i + 3..].find('/')?..],
            None => url,
        };
        Some(path.to_owned())
    })
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn read_body(resp: &mut ureq::http::Response<ureq::Body>, what: &str) -> Vec<u8> {
    resp.body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("reading the body of {what}: {e}"))
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        use std::io::Seek;
        let _ = f.seek(std::io::SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut s);
    }
    s
}

fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn make_agent(ca_pem: Option<&Path>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        // Statuses are the point of these helpers: never turn them into errors.
        .http_status_as_error(false)
        // Loopback only: an http(s)_proxy in the environment must not be used.
        .proxy(None)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(600)));
    if let Some(ca) = ca_pem {
        let pem = fs::read(ca).expect("read CA PEM");
        let cert = ureq::tls::Certificate::from_pem(&pem).expect("parse CA PEM");
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[cert])).build();
        config = config.tls_config(tls);
    }
    config.build().into()
}

/// Generate a CA and a server certificate for 127.0.0.1 + localhost signed by
/// it; write `ca.pem`, `server.crt` (leaf then CA) and `server.key` into
/// `dir`. Returns the CA path. Also the webhook tests' serving certificate.
pub fn write_tls_material(dir: &Path) -> PathBuf {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name.push(DnType::CommonName, "edgeiso-testkit CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("self-sign CA");

    let leaf_key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
    leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).expect("sign server certificate");

    let ca_path = dir.join("ca.pem");
    fs::write(&ca_path, ca.pem()).expect("write ca.pem");
    fs::write(dir.join("server.crt"), leaf_cert.pem() + &ca.pem()).expect("write server.crt");
    write_private(&dir.join("server.key"), leaf_key.serialize_pem().as_bytes());
    ca_path
}

/// An htpasswd file with one bcrypt entry.
fn write_htpasswd(path: &Path, user: &str, password: &str) {
    assert!(!user.contains(':') && !user.contains('\n'), "htpasswd user names cannot contain ':' or newlines");
    let hash = bcrypt::hash_with_result(password, 4).expect("bcrypt").format_for_version(bcrypt::Version::TwoY);
    write_private(path, format!("{user}:{hash}\n").as_bytes());
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_unique_within_the_process() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let unique: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }

    #[test]
    fn next_link_parses_distribution_pagination() {
        assert_eq!(
            next_link("</v2/_catalog?last=team%2Fraw&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/_catalog?last=team%2Fraw&n=2")
        );
        assert_eq!(
            next_link("<http://h:1/v2/x/tags/list?n=1&last=a>; rel=\"next\"").as_deref(),
            Some("/v2/x/tags/list?n=1&last=a")
        );
        assert_eq!(next_link("</v2/x>; rel=\"prev\""), None);
    }

    #[test]
    fn options_debug_redacts_the_password() {
        let o = RegistryOptions { tls: false, auth: Some(("u".into(), "hunter2".into())) };
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
