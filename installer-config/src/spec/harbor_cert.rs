//! A Harbor certificate the user brings (`harbor.tls`) must serve every name
//! nodes and the agent reach Harbor under, and chain to the CA they are given.
//!
//! The check is rustls' own server-certificate verification (webpki, with the
//! workspace's one crypto provider): the agent verifies Harbor with exactly
//! that, so what passes here passes on the node, and a certificate that does
//! not cover a name fails at spec load with the spec line instead of as a TLS
//! error on a site with no one to read it.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

/// PEM files are a few KiB; a chain a few dozen. Anything larger is not one.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Check that `cert_file` (the server certificate first, then any
/// intermediates) chains to `ca_file` (or is its own anchor when there is
/// none, as render then hands nodes the certificate itself) and is valid now
/// for each of `names`. The error says which name is missing and what the
/// certificate does cover as far as rustls reports it.
pub fn check(cert_file: &Path, ca_file: Option<&Path>, names: &[String]) -> Result<(), String> {
    let chain = certificates(cert_file)?;
    let anchors = match ca_file {
        Some(ca) => certificates(ca)?,
        None => chain[..1].to_vec(),
    };
    let mut roots = RootCertStore::empty();
    for (i, c) in anchors.into_iter().enumerate() {
        roots.add(c).map_err(|e| {
            let from = ca_file.unwrap_or(cert_file).display();
            format!("certificate {} of {from} cannot be a trust anchor: {e}", i + 1)
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("cannot check {}: {e}", cert_file.display()))?;
    let (leaf, intermediates) = chain.split_first().expect("certificates() refuses an empty file");
    for name in names {
        let server = ServerName::try_from(name.as_str()).map_err(|e| format!("`{name}` is not a server name: {e}"))?;
        verifier.verify_server_cert(leaf, intermediates, &server, &[], UnixTime::now()).map_err(|e| {
            let why = match &e {
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. }) => {
                    let names: Vec<_> = presented.iter().map(|n| plain_name(n)).collect();
                    format!("does not name `{name}` (it names {})", names.join(", "))
                }
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                    format!("does not name `{name}`")
                }
                // BadSignature: a CA of the same name that did not sign it.
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
                    match ca_file {
                        Some(ca) => format!("is not signed by the CA in {}", ca.display()),
                        None => "is not self-signed; give its CA as harbor.tls.caFile".into(),
                    }
                }
                // A self-signed certificate made as a CA (`openssl req -x509`
                // marks it CA:TRUE) is refused by the agent's TLS as well.
                rustls::Error::InvalidCertificate(CertificateError::Other(o))
                    if format!("{o:?}").contains("CaUsedAsEndEntity") =>
                {
                    "is a CA certificate (basicConstraints CA:TRUE) serving as Harbor's own, which the agent's TLS refuses: give a server certificate (CA:FALSE, e.g. `-addext basicConstraints=critical,CA:FALSE`), or one a caFile signed".into()
                }
                other => other.to_string(),
            };
            format!("{} {why}", cert_file.display())
        })?;
    }
    Ok(())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = edgeiso_contract::fs::read_bounded(path, MAX_PEM_BYTES).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM CERTIFICATE", path.display()));
    }
    Ok(certs)
}

/// `DnsName("a.example")` / `IpAddress(10.0.0.1)`, as rustls presents a
/// certificate's names, as the plain name.
fn plain_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}
