//! What a registry must hold for a bundle's workload images, and the check
//! of it, read back through the registry's API: `boot-test` polls it while a
//! VM boots, `check` runs it once against a site's Harbor. Every manifest of
//! every workload image (an index and each of its children) must be under
//! its `harbor_target` repository with the bundle's digest: the top-level
//! one by tag (when it has one), children by digest.

use std::path::Path;
use std::time::Duration;

use edgeiso_bundle::manifest::ACCEPTED_MANIFEST_TYPES;
use edgeiso_bundle::{harbor_target, Bundle, BundleError, Digest, Role};
use edgeiso_contract::RegistryUrl;
use futures_util::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::exit::{self, with_code};
use crate::source::{error_kind, ErrorKind};

/// GETs in flight at once.
const CONCURRENCY: usize = 8;

/// One manifest that must be in the registry.
#[derive(Debug, Clone)]
pub struct Expected {
    pub image: String,
    pub repository: String,
    /// Tag or digest to GET.
    pub reference: String,
    pub digest: Digest,
}

/// Everything the registry must hold for `bundle`'s workload images.
pub fn expectations(bundle: &Bundle, project: &str) -> Result<Vec<Expected>, BundleError> {
    let mut out = Vec::new();
    for img in bundle.meta.images.iter().filter(|i| i.role == Role::Workload) {
        let target = harbor_target(project, &img.reference);
        let graph = bundle.image_graph(img)?;
        for m in &graph.manifests {
            let by_tag = m.digest == img.digest && target.tag.is_some();
            out.push(Expected {
                image: img.reference.to_string(),
                repository: target.repository.clone(),
                reference: if by_tag { target.tag.clone().unwrap_or_default() } else { m.digest.to_string() },
                digest: m.digest.clone(),
            });
        }
    }
    Ok(out)
}

/// Why an expected manifest is not as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The registry does not have it.
    Missing(String),
    /// It has other bytes under that name.
    Different { got: Digest },
    /// 401/403: the credentials (or their absence) were refused.
    Refused(String),
    /// No answer, or a server error.
    Unreachable(String),
    /// Any other answer.
    Other(String),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Missing(why) => write!(f, "missing ({why})"),
            Finding::Different { got } => write!(f, "different: the registry has {got}"),
            Finding::Refused(why) => write!(f, "refused: {why}"),
            Finding::Unreachable(why) => write!(f, "no answer: {why}"),
            Finding::Other(why) => f.write_str(why),
        }
    }
}

/// Registry user and password.
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({}, <redacted>)", self.username)
    }
}

pub struct Checker {
    client: Client,
    auth: RegistryAuth,
    host: String,
    runtime: tokio::runtime::Runtime,
}

impl Checker {
    pub fn new(url: &RegistryUrl, ca: Option<&Path>, insecure: bool, login: Option<Login>) -> anyhow::Result<Checker> {
        let protocol = if url.tls { ClientProtocol::Https } else { ClientProtocol::Http };
        let mut certs = Vec::new();
        if let Some(ca) = ca {
            let data = std::fs::read(ca)
                .map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("--ca {}: {e}", ca.display())))?;
            certs.push(Certificate { encoding: CertificateEncoding::Pem, data });
        }
        let config = ClientConfig {
            protocol,
            accept_invalid_certificates: insecure,
            extra_root_certificates: certs,
            connect_timeout: Some(Duration::from_secs(5)),
            read_timeout: Some(Duration::from_secs(20)),
            ..Default::default()
        };
        let auth = match login {
            Some(l) => RegistryAuth::Basic(l.username, l.password),
            None => RegistryAuth::Anonymous,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Checker { client: Client::new(config), auth, host: url.authority(), runtime })
    }

    /// The expectations not met, each with why, in the order of `want`.
    pub fn problems(&self, want: &[Expected]) -> Vec<(Expected, Finding)> {
        self.runtime.block_on(async {
            let checks = futures_util::stream::iter(want.iter().enumerate())
                .map(|(i, e)| async move { (i, self.check_one(e).await) })
                .buffer_unordered(CONCURRENCY);
            let mut found: Vec<(usize, Finding)> =
                checks.filter_map(|(i, f)| async move { f.map(|f| (i, f)) }).collect().await;
            found.sort_by_key(|(i, _)| *i);
            found.into_iter().map(|(i, f)| (want[i].clone(), f)).collect()
        })
    }

    async fn check_one(&self, e: &Expected) -> Option<Finding> {
        let r = if e.reference.starts_with("sha256:") {
            Reference::with_digest(self.host.clone(), e.repository.clone(), e.reference.clone())
        } else {
            Reference::with_tag(self.host.clone(), e.repository.clone(), e.reference.clone())
        };
        match self.client.pull_manifest_raw(&r, &self.auth, ACCEPTED_MANIFEST_TYPES).await {
            Ok((bytes, _)) => {
                let got = Digest::of(&bytes);
                (got != e.digest).then_some(Finding::Different { got })
            }
            Err(err) => {
                let why = short(&err.to_string());
                Some(match error_kind(&err) {
                    ErrorKind::NotFound => Finding::Missing(why),
                    ErrorKind::Refused => Finding::Refused(why),
                    ErrorKind::Transient => Finding::Unreachable(why),
                    ErrorKind::Other => Finding::Other(why),
                })
            }
        }
    }
}

/// The first line of an error, at most 160 characters.
pub fn short(s: &str) -> String {
    let s = s.lines().next().unwrap_or("");
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_owned()
    }
}
