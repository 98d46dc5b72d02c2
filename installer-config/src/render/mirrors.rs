//! Node-level pull redirection: containerd `hosts.toml` per upstream registry
//! and the k3s/RKE2 `registries.yaml` (on kubeadm sites, the containerd
//! setting that makes CRI read `hosts.toml` instead). Both send a pull of
//! `docker.io/library/nginx:1.25` to `<harbor>/v2/spectro-images/docker.io/library/nginx/...`,
//! using `edgeiso_bundle::harbor_prefix`, the mapping the agent pushes with.
//!
//! None of these files carries a credential: the ISO and the user-data
//! (which Palette copies to `/oem/userdata`) never hold one. On the node the
//! agent adds a pull-only credential and installs the completed files 0600
//! (`agent/src/node_mirrors.rs`, decision 0012).

use std::collections::BTreeSet;

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
    edgeiso_contract::registry_url::upstream_url(host, spec.registry(host).is_some_and(|r| r.insecure))
}

fn toml_str(s: &str) -> String {
    // TOML basic strings share JSON's escapes for everything we emit.
    serde_json::to_string(s).expect("strings serialize")
}

/// `containerd/certs.d/<host>/hosts.toml` for one upstream host. The agent
/// adds the nodes' credential to every `[host."<harbor>..."]` table (and, with
/// `airgapStrict`, to the top level, whose `server` is then Harbor too).
pub fn hosts_toml(spec: &Spec, host: &str) -> String {
    let h = &spec.harbor;
    let mirror = format!("{}/v2/{}", h.url, harbor_prefix(&h.project, host));
    let ca = if h.url.tls { format!("ca = {}\n", toml_str(node::HARBOR_CA)) } else { String::new() };
    let mut out = format!(
        "# Written by edgeiso render for site {site}.\n\
         # Pulls of {host}/<repo> are served by the site Harbor from {mirror}/<repo>.\n",
        site = spec.name,
    );
    let host_table = format!(
        "[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n{}",
        toml_str(&mirror),
        if ca.is_empty() { String::new() } else { format!("  {ca}") },
    );
    if spec.airgap_strict {
        // containerd 1.6 refuses a hosts.toml without a `host` table (and then
        // silently uses the upstream), so the mirror is listed as a host AND
        // as the server: both tries go to Harbor, none to the upstream.
        out.push_str("# airgapStrict: the mirror is also the server; there is no fallback to the upstream.\n");
        out.push_str(&format!(
            "server = {}\ncapabilities = [\"pull\", \"resolve\"]\noverride_path = true\n{ca}",
            toml_str(&mirror)
        ));
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
/// and the nodes' credential for it; k3s/RKE2 take them from
/// `registries.yaml`'s `configs`).
pub fn containerd_hosts(spec: &Spec) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        upstream_hosts(spec).into_iter().map(|h| (h.clone(), hosts_toml(spec, &h))).collect();
    if spec.site.image_redirect_webhook == Some(true) {
        let harbor = spec.harbor.url.authority();
        if !out.iter().any(|(h, _)| *h == harbor) {
            out.push((harbor, harbor_hosts_toml(spec)));
        }
    }
    out
}

/// `hosts.toml` for pulls that name Harbor itself.
fn harbor_hosts_toml(spec: &Spec) -> String {
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
    out
}

/// k3s/RKE2 `registries.yaml`: a mirror with a rewrite per upstream host, and
/// the Harbor endpoint's TLS. The agent adds `configs.<harbor>.auth` on the
/// node (the project is private).
pub fn registries_yaml(spec: &Spec) -> Value {
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

/// kubeadm sites: containerd 1.x reads `hosts.toml` for CRI pulls only with
/// `config_path` set (its default is empty); containerd 2.x defaults it to
/// `/etc/containerd/certs.d:/etc/docker/certs.d` (config version 3, table
/// `plugins."io.containerd.cri.v1.images".registry`), so this version-2
/// drop-in is for 1.x. It takes effect where the main config imports
/// `/etc/containerd/conf.d/*.toml`.
pub fn containerd_registry_drop_in() -> String {
    format!(
        "# Written by edgeiso render: CRI pulls read {dir}/<host>/hosts.toml.\n\
         version = 2\n\n\
         [plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = {path}\n",
        dir = node::CONTAINERD_CERTS_D,
        path = toml_str(node::CONTAINERD_CERTS_D),
    )
}

/// Runs at every boot before k3s/RKE2 start (the `initramfs` stage): puts
/// back the completed mirror files the agent installed (it keeps a copy of
/// each under `files/<absolute path>` of its 0700 folder), over the
/// credential-free ones the stage just wrote. Nothing to do before the
/// agent's first run.
pub fn reinstall_kept_script() -> String {
    format!(
        r#"set -eu
keep={keep}/files
[ -d "$keep" ] || exit 0
cd "$keep"
find . -type f | while IFS= read -r f; do install -D -m 0600 "$f" "/${{f#./}}"; done
"#,
        keep = node::NODE_PULL_DIR,
    )
}
