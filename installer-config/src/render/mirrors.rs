//! Node-level pull redirection: containerd `hosts.toml` per upstream registry
//! and the k3s/RKE2 `registries.yaml`. Both send a pull of
//! `docker.io/library/nginx:1.25` to `<harbor>/v2/spectro-images/docker.io/library/nginx/...`,
//! using `edgeiso_bundle::harbor_prefix`, the mapping the agent pushes with.

use std::collections::BTreeSet;

use base64::Engine as _;
use edgeiso_bundle::harbor_prefix;
use edgeiso_contract::paths::node;

use crate::spec::Spec;
use crate::yaml::{Map, Value};

/// The upstream registries whose pulls are redirected: those of the
/// workload images (bootstrap images are imported, never pulled).
pub fn upstream_hosts(spec: &Spec) -> Vec<String> {
    spec.images.iter().map(|i| i.reference.registry().to_owned()).collect::<BTreeSet<_>>().into_iter().collect()
}

/// Where containerd reaches an upstream registry itself (the fallback).
fn upstream_server(spec: &Spec, host: &str) -> String {
    if host == "docker.io" {
        return "https://registry-1.docker.io".into();
    }
    let scheme = if spec.registry(host).is_some_and(|r| r.insecure) { "http" } else { "https" };
    format!("{scheme}://{host}")
}

fn toml_str(s: &str) -> String {
    // TOML basic strings share JSON's escapes for everything we emit.
    serde_json::to_string(s).expect("strings serialize")
}

/// `containerd/certs.d/<host>/hosts.toml` for one upstream host. With Harbor's
/// admin password, requests to the mirror carry `Authorization: Basic ...`
/// (the agent creates the project private): the file then holds a secret.
pub fn hosts_toml(spec: &Spec, host: &str, admin_password: Option<&str>) -> String {
    let h = &spec.harbor;
    let mirror = format!("{}/v2/{}", h.url, harbor_prefix(&h.project, host));
    let ca = if h.url.tls { format!("ca = {}\n", toml_str(node::HARBOR_CA)) } else { String::new() };
    let auth = admin_password.map(authorization);
    let mut out = format!(
        "# Written by edgeiso render for site {site}.\n\
         # Pulls of {host}/<repo> are served by the site Harbor from {mirror}/<repo>.\n",
        site = spec.name,
    );
    let mut host_table = format!(
        "[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n{}",
        toml_str(&mirror),
        if ca.is_empty() { String::new() } else { format!("  {ca}") },
    );
    if let Some(a) = &auth {
        host_table.push_str(&format!("\n  [host.{}.header]\n    {a}", toml_str(&mirror)));
    }
    if spec.airgap_strict {
        // containerd 1.6 refuses a hosts.toml without a `host` table (and then
        // silently uses the upstream), so the mirror is listed as a host AND
        // as the server: both tries go to Harbor, none to the upstream.
        out.push_str("# airgapStrict: the mirror is also the server; there is no fallback to the upstream.\n");
        out.push_str(&format!(
            "server = {}\ncapabilities = [\"pull\", \"resolve\"]\noverride_path = true\n{ca}",
            toml_str(&mirror)
        ));
        if let Some(a) = &auth {
            out.push_str(&format!("\n[header]\n  {a}"));
        }
        out.push_str(&format!("\n{host_table}"));
    } else {
        out.push_str("# containerd tries the mirror first and the upstream `server` last.\n");
        out.push_str(&format!("server = {}\n\n{host_table}", toml_str(&upstream_server(spec, host))));
    }
    out
}

/// Every `containerd/certs.d/<host>/hosts.toml` of the site, by host: one per
/// upstream, and, with the image-redirect webhook, one for Harbor itself
/// (the webhook's references name it directly: containerd then needs its CA
/// and credentials for it; k3s/RKE2 take them from `registries.yaml`'s
/// `configs`).
pub fn containerd_hosts(spec: &Spec, admin_password: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        upstream_hosts(spec).into_iter().map(|h| (h.clone(), hosts_toml(spec, &h, admin_password))).collect();
    if spec.site.image_redirect_webhook == Some(true) {
        let harbor = spec.harbor.url.authority();
        if !out.iter().any(|(h, _)| *h == harbor) {
            out.push((harbor, harbor_hosts_toml(spec, admin_password)));
        }
    }
    out
}

/// `hosts.toml` for pulls that name Harbor itself.
fn harbor_hosts_toml(spec: &Spec, admin_password: Option<&str>) -> String {
    let h = &spec.harbor;
    let server = h.url.to_string();
    let mut out = format!(
        "# Written by edgeiso render for site {site}.\n\
         # Pulls that name the site Harbor (the image-redirect webhook's references).\n\
         server = {server}\n\n[host.{server}]\n  capabilities = [\"pull\", \"resolve\"]\n",
        site = spec.name,
        server = toml_str(&server),
    );
    if h.url.tls {
        out.push_str(&format!("  ca = {}\n", toml_str(node::HARBOR_CA)));
    }
    if let Some(pw) = admin_password {
        out.push_str(&format!("\n  [host.{}.header]\n    {}", toml_str(&server), authorization(pw)));
    }
    out
}

/// The `Authorization` header line of Harbor's admin credentials.
fn authorization(admin_password: &str) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{admin_password}"));
    format!("Authorization = [{}]\n", toml_str(&format!("Basic {basic}")))
}

/// k3s/RKE2 `registries.yaml`: a mirror with a rewrite per upstream host, and
/// the Harbor endpoint's TLS and credentials (the project is private).
pub fn registries_yaml(spec: &Spec, admin_password: Option<&str>) -> Value {
    let h = &spec.harbor;
    let mut mirrors = Map::new();
    for host in upstream_hosts(spec) {
        mirrors.insert(
            host.clone(),
            Map::new()
                .with("endpoint", vec![h.url.to_string()])
                .with("rewrite", Map::new().with("^(.*)$", format!("{}/$1", harbor_prefix(&h.project, &host)))),
        );
    }
    let mut config = Map::new();
    if let Some(pw) = admin_password {
        config.insert("auth", Map::new().with("username", "admin").with("password", pw));
    }
    if h.url.tls {
        config.insert("tls", Map::new().with("ca_file", node::HARBOR_CA));
    }
    let mut root = Map::new().with("mirrors", mirrors);
    if !config.is_empty() {
        root.insert("configs", Map::new().with(h.url.authority(), config));
    }
    Value::Map(root)
}

/// With `airgapStrict`, k3s/RKE2 must not try the upstream after the mirror;
/// that is a server flag, given as a config drop-in.
pub fn strict_config() -> Value {
    Value::Map(Map::new().with("disable-default-registry-endpoint", true))
}
