//! The webhook's HTTPS server: rustls (the workspace's one provider) and
//! hyper's HTTP/1.1 connections, kept alive as the API server reuses them.
//! Every input is bounded: connections in flight, the TLS handshake and the
//! request head in time, the body in size and time. `POST /mutate` answers
//! AdmissionReviews; `GET /healthz` says it is up.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use edgeiso_contract::agent_config::WEBHOOK_PATH;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::index::KnownImages;
use super::review;
use crate::AgentError;

/// An AdmissionReview of a Pod is a few KiB; the API server's own request
/// limit is 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 << 20;
/// Connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 256;
/// A handshake, a request head or a body slower than this is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share: the current index, swapped whole on refresh.
pub type Shared = Arc<RwLock<Arc<KnownImages>>>;

/// The server's TLS configuration from PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, AgentError> {
    let bad = |p: &Path, why: String| AgentError::Usage(format!("{}: {why}", p.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert, "no PEM certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, format!("no usable PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Usage(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(key, format!("does not fit the certificate {}: {e}", cert.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accept and serve until the listener fails.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, index: Shared) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            // Out of file descriptors and the like: pause, do not spin.
            Err(e) => {
                warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let index = index.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return debug!(%peer, %e, "TLS handshake failed"),
                Err(_) => return debug!(%peer, "TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |req| {
                let index = index.clone();
                async move { Ok::<_, Infallible>(handle(req, &index).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(IO_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                debug!(%peer, %e, "connection ended");
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static header values")
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", message + "\n")
}

async fn handle(req: Request<Incoming>, index: &Shared) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, WEBHOOK_PATH) => {}
        (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok".into()),
        (_, WEBHOOK_PATH) => return text(StatusCode::METHOD_NOT_ALLOWED, "POST an AdmissionReview".into()),
        (_, path) => return text(StatusCode::NOT_FOUND, format!("no such path: {}", path.escape_debug())),
    }
    let body = match tokio::time::timeout(IO_TIMEOUT, Limited::new(req.into_body(), MAX_BODY_BYTES).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            // The rest of the body is not read: the connection cannot carry
            // another request, and the client must be told so.
            let mut r = text(StatusCode::PAYLOAD_TOO_LARGE, format!("body over {MAX_BODY_BYTES} bytes"));
            r.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
            return r;
        }
        Ok(Err(e)) => return text(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "body too slow".into()),
    };
    let known = index.read().expect("the index lock is never poisoned").clone();
    match review::answer(&body, &known) {
        Ok((answer, rewrites)) => {
            for r in &rewrites {
                debug!(path = %r.path, from = %r.from, to = %r.to, "image redirected");
            }
            reply(StatusCode::OK, "application/json", answer)
        }
        Err(e) => {
            info!(%e, "refused a request body");
            text(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}
