//! Where a thin bundle's left-out blobs come from: the images' own source
//! registries (issue 13). The settings are `sources:` in `agent.yaml`
//! (render writes them from the spec's `registries[]`), or a file given
//! with `--sources`, which may be the site spec itself: its `registries:`
//! entries are read with the same keys, and its other keys ignored.
//!
//! One client per source host, made once; a host with no entry is reached
//! over HTTPS without credentials (public images).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgeiso_contract::agent_config::SourceRegistry;
use edgeiso_contract::registry_url::{canonical_host, is_host_name, parse_port, split_host_port, upstream_url};
use serde::Deserialize;

use crate::auth::Credentials;
use crate::config::Endpoint;
use crate::registry::{ClientOptions, RegistryClient, Timeouts};
use crate::AgentError;

/// A `--sources` file larger than this is not one.
const MAX_SOURCES_FILE: u64 = 1 << 20;

/// One source registry, checked: its address and what to present to it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The host as image references name it, canonical (`docker.io`).
    pub host: String,
    pub endpoint: Endpoint,
    pub ca: Option<PathBuf>,
    pub credentials: Option<Credentials>,
}

/// The entries of a `--sources` file: the spec's `registries[]` keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourcesFile {
    #[serde(default)]
    registries: Vec<SpecRegistry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecRegistry {
    host: String,
    #[serde(default)]
    insecure: bool,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// `helm` entries are chart repositories, not image sources.
    kind: Option<String>,
}

/// Read `--sources FILE`: a YAML mapping whose `registries:` list has the
/// spec's keys (host, insecure, caFile, username, passwordFile,
/// passwordEnv). Relative paths are taken from the file's folder, as the
/// spec's are.
pub fn read_sources_file(path: &Path) -> Result<Vec<Source>, AgentError> {
    let bad = |why: String| AgentError::Usage(format!("--sources {}: {why}", path.display()));
    let text = edgeiso_contract::fs::read_small_file(path, MAX_SOURCES_FILE).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(text).map_err(|_| bad("not UTF-8 text".into()))?;
    let file: SourcesFile = serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let at = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
    let mut out = Vec::new();
    for (i, r) in file.registries.into_iter().enumerate() {
        if r.kind.as_deref().is_some_and(|k| k != "oci") {
            continue;
        }
        let what = format!("--sources {} registries[{i}] ({})", path.display(), shown(&r.host));
        let password = match (&r.password_file, &r.password_env) {
            (Some(f), _) => Some(read_password(&at(f.clone()), &what)?),
            (None, Some(var)) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| AgentError::Usage(format!("{what}: passwordEnv {var} is not set")))?,
            ),
            (None, None) => None,
        };
        out.push(source(&what, &r.host, r.insecure, r.ca_file.map(at), r.username, password)?);
    }
    Ok(out)
}

/// The `sources:` of `agent.yaml`, checked (paths as written: render writes
/// absolute ones).
pub fn from_config(entries: &[SourceRegistry]) -> Result<Vec<Source>, AgentError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let what = format!("sources[{i}] ({})", shown(&r.host));
            let password = r.password_file.as_deref().map(|f| read_password(f, &what)).transpose()?;
            source(&what, &r.host, r.insecure, r.ca_file.clone(), r.username.clone(), password)
        })
        .collect()
}

/// A host as messages show it: never what precedes an `@` (credentials
/// someone wrote into it).
fn shown(host: &str) -> &str {
    host.rsplit('@').next().unwrap_or(host)
}

fn read_password(path: &Path, what: &str) -> Result<String, AgentError> {
    edgeiso_contract::fs::read_secret_file(path, "passwordFile").map_err(|e| AgentError::Usage(format!("{what}: {e}")))
}

fn source(
    what: &str,
    host: &str,
    insecure: bool,
    ca: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
) -> Result<Source, AgentError> {
    // `host[:port]` only: what an image reference names. Checked before it
    // becomes a URL, whose parser would echo it (credentials and all).
    let is_host = !host.contains(['/', '@'])
        && split_host_port(host).is_ok_and(|(name, port)| {
            parse_port(port).is_ok() && (is_host_name(name) || name.parse::<std::net::Ipv6Addr>().is_ok())
        });
    if !is_host {
        return Err(AgentError::Usage(format!(
            "{what}: not a registry host: give host[:port] as image references name it (no scheme, credentials or path)"
        )));
    }
    let endpoint = Endpoint::parse(&upstream_url(host, insecure))
        .map_err(|e| AgentError::Usage(format!("{what}: not a registry host: {e}")))?;
    if let Some(ca) = &ca {
        if !ca.is_file() {
            return Err(AgentError::Usage(format!("{what}: caFile {}: no such file", ca.display())));
        }
    }
    let credentials = match (username, password) {
        (Some(u), Some(p)) => Some(Credentials::new(u, p)),
        (Some(u), None) => return Err(AgentError::Usage(format!("{what}: username {u} needs a password"))),
        (None, Some(_)) => return Err(AgentError::Usage(format!("{what}: a password needs a username"))),
        (None, None) => None,
    };
    Ok(Source { host: canonical_host(host), endpoint, ca, credentials })
}

/// The clients of the source registries a load needs, by canonical host.
pub struct SourceClients {
    clients: BTreeMap<String, Arc<RegistryClient>>,
}

impl SourceClients {
    /// One client for each of `hosts` (canonical or not), from its entry in
    /// `sources` or, without one, HTTPS and anonymous. Sources are reached
    /// through `HTTPS_PROXY`/`HTTP_PROXY` when set (they are outside the
    /// site); the site's registry never is.
    pub fn new(
        hosts: impl IntoIterator<Item = String>,
        sources: &[Source],
        timeouts: Timeouts,
        retries: Option<u32>,
    ) -> Result<SourceClients, AgentError> {
        let mut clients = BTreeMap::new();
        for host in hosts {
            let host = canonical_host(&host);
            if clients.contains_key(&host) {
                continue;
            }
            let given = sources.iter().find(|s| s.host == host);
            let anonymous;
            let s = match given {
                Some(s) => s,
                None => {
                    anonymous = source(&format!("source {host}"), &host, false, None, None, None)?;
                    &anonymous
                }
            };
            let mut client = RegistryClient::new(
                s.endpoint.clone(),
                ClientOptions {
                    ca: s.ca.as_deref(),
                    insecure: false,
                    credentials: s.credentials.clone(),
                    timeouts,
                    proxy_from_env: true,
                },
            )
            .map_err(|e| AgentError::Usage(format!("source {host}: {e}")))?;
            if let Some(r) = retries {
                client.retry.retries = r;
            }
            client.credentials_hint = "username and passwordFile of its entry in sources: or --sources";
            clients.insert(host, Arc::new(client));
        }
        Ok(SourceClients { clients })
    }

    /// The client for the registry image references name `host`.
    pub fn get(&self, host: &str) -> Option<Arc<RegistryClient>> {
        self.clients.get(&canonical_host(host)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_spec_is_a_sources_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let spec = dir.path().join("site.yaml");
        std::fs::write(
            &spec,
            "name: s\nimages: [127.0.0.1:5000/team/app:1.0]\nregistries:\n  - host: 127.0.0.1:5000\n    insecure: true\n    \
             username: puller\n    passwordFile: pw\n    secret: {name: x}\n  - host: charts.example\n    kind: helm\n  \
             - host: Index.Docker.IO\nharbor: {url: https://10.0.0.5:30003}\n",
        )
        .unwrap();
        let s = read_sources_file(&spec).unwrap();
        assert_eq!(s.len(), 2, "the helm entry is no image source: {s:?}");
        assert_eq!(s[0].endpoint.to_string(), "http://127.0.0.1:5000");
        assert_eq!(s[0].credentials.as_ref().unwrap().password(), "s3cret", "relative to the file's folder");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert_eq!(
            (s[1].host.as_str(), s[1].endpoint.to_string()),
            ("docker.io", "https://registry-1.docker.io".into())
        );
    }

    #[test]
    fn bad_sources_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.yaml");
        std::fs::write(&f, "registries:\n  - host: r.example\n    username: u\n").unwrap();
        let e = read_sources_file(&f).unwrap_err().to_string();
        assert!(e.contains("registries[0] (r.example)") && e.contains("needs a password"), "{e}");
        std::fs::write(&f, "registries:\n  - host: r.example\n    username: u\n    passwordEnv: EDGEISO_NO_SUCH_VAR\n")
            .unwrap();
        let e = read_sources_file(&f).unwrap_err().to_string();
        assert!(e.contains("EDGEISO_NO_SUCH_VAR is not set"), "{e}");
        // A FIFO would block the load on open: refused.
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = read_sources_file(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::write(&f, "registries:\n  - host: r.example\n    caFile: nope.pem\n").unwrap();
        assert!(read_sources_file(&f).unwrap_err().to_string().contains("nope.pem: no such file"));
        let e = from_config(&[SourceRegistry { host: "https://x".into(), ..Default::default() }]).unwrap_err();
        assert!(e.to_string().contains("sources[0]") && e.to_string().contains("not a registry host"), "{e}");
        // Credentials written into the host are refused, and never shown.
        let e = from_config(&[SourceRegistry { host: "puller:s3cret@r.example".into(), ..Default::default() }])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sources[0] (r.example)") && e.contains("no scheme, credentials"), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("--registry"), "{e}");
        assert!(from_config(&[SourceRegistry { host: "[::1]:5000".into(), ..Default::default() }]).is_ok());
    }
}
