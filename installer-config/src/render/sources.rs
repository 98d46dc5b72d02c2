//! A thin bundle's source registries: the agent fetches the config and
//! layer blobs the bundle leaves out from each image's upstream registry,
//! so its `agent.yaml` gets a `sources:` entry per upstream host, rendered
//! from the spec's `registries[]` entry for that host. The password and CA
//! go to the site folder as files (`sources/<n>.password` 0600,
//! `sources/<n>.ca.pem`); `agent.yaml` names them by where the agent sees
//! the site folder, on the node and in the live initramfs alike.
//!
//! A whole bundle (or none) gets no sources: nodes never hold source
//! credentials they do not need.

use std::collections::BTreeSet;

use edgeiso_contract::agent_config::SourceRegistry;
use edgeiso_contract::fs::FileMode;
use edgeiso_contract::paths::{out, AgentSite};
use edgeiso_contract::registry_url::canonical_host;

use super::{tls, RenderError};
use crate::spec::Spec;

/// One source registry as rendered, before it is placed at a site: the
/// files are relative to the render output (`out::source_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `host[:port]` as image references name it (`docker.io`).
    pub host: String,
    pub insecure: bool,
    pub username: Option<String>,
    /// `out::source_password(n)`, when the spec gives a password.
    pub password_file: Option<String>,
    /// `out::source_ca(n)`, when the spec gives a `caFile`.
    pub ca_file: Option<String>,
}

impl Source {
    /// The `sources:` entry of an agent that sees the site's files at `site`.
    pub fn at(&self, site: &AgentSite) -> SourceRegistry {
        SourceRegistry {
            host: self.host.clone(),
            insecure: self.insecure,
            ca_file: self.ca_file.as_deref().map(|f| site.site_file(f).into()),
            username: self.username.clone(),
            password_file: self.password_file.as_deref().map(|f| site.site_file(f).into()),
        }
    }
}

/// A file render writes for a source: its path in the output, its bytes,
/// its mode.
pub struct SourceFile {
    pub rel: String,
    pub data: Vec<u8>,
    pub mode: FileMode,
}

/// The sources for the upstream hosts a thin bundle's blobs come from
/// (`fetch_from`; empty for a whole bundle), and the files they name. A host
/// without a `registries[]` entry is reached over HTTPS, anonymously (its
/// entry holds only the host, which the agent reads as just that). Errors
/// name the spec line (an unset `passwordEnv`) or the file (`caFile`), never
/// a password.
pub fn sources(spec: &Spec, fetch_from: &BTreeSet<String>) -> Result<(Vec<Source>, Vec<SourceFile>), RenderError> {
    let hosts: BTreeSet<String> = fetch_from.iter().map(|h| canonical_host(h)).collect();
    let mut sources = Vec::with_capacity(hosts.len());
    let mut files = Vec::new();
    for (n, host) in hosts.into_iter().enumerate() {
        let Some(r) = spec.registry(&host) else {
            sources.push(Source { host, insecure: false, username: None, password_file: None, ca_file: None });
            continue;
        };
        let password_file = match r.read_password()? {
            Some(pw) => {
                let rel = out::source_password(n);
                files.push(SourceFile {
                    rel: rel.clone(),
                    data: format!("{pw}\n").into_bytes(),
                    mode: FileMode::Secret,
                });
                Some(rel)
            }
            None => None,
        };
        let ca_file = match &r.ca_file {
            Some(p) => {
                let rel = out::source_ca(n);
                files.push(SourceFile {
                    rel: rel.clone(),
                    data: tls::read_pem(p)?.into_bytes(),
                    mode: FileMode::Public,
                });
                Some(rel)
            }
            None => None,
        };
        sources.push(Source {
            host,
            insecure: r.insecure,
            // Validation pairs a username with a password source.
            username: password_file.as_ref().and(r.username.clone()),
            password_file,
            ca_file,
        });
    }
    Ok((sources, files))
}
