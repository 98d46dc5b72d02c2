//! The Harbor deployment: a `HelmChart` embedding the chart archive (k3s and
//! RKE2 auto-deploy it), or a folder of pre-rendered manifests, validated and
//! copied; plus the Secrets it needs and the list of images it runs.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use edgeiso_bundle::ImageRef;

use super::{b64, RenderError};
use crate::spec::{HarborDeployment, Spec};
use crate::yaml::{self, Map, Value};

/// Harbor chart defaults for PVC sizes, used when the spec leaves one unset
/// (lint compares the registry size against the bundle).
pub const CHART_DEFAULT_REGISTRY_SIZE: &str = "5Gi";
pub const TLS_SECRET: &str = "harbor-tls";
pub const ADMIN_SECRET: &str = "harbor-admin";
pub const ADMIN_SECRET_KEY: &str = "HARBOR_ADMIN_PASSWORD";
/// Values for the Harbor Edge Native Config pack, when Harbor comes from the
/// cluster profile (a site file: it holds the admin password and the key).
pub const PACK_VALUES: &str = "harbor/pack-values.yaml";

/// What a chart archive holds that render cares about.
#[derive(Debug)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    pub values: Value,
    pub bytes: Vec<u8>,
}

/// Read and check a Helm chart archive (`.tgz`): the top folder's
/// `Chart.yaml` (apiVersion, name, version) and `values.yaml`.
pub fn read_chart(path: &Path) -> Result<Chart, RenderError> {
    let bad = |m: String| RenderError::Input { file: path.to_owned(), message: m };
    let bytes = std::fs::read(path).map_err(|e| RenderError::read(path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut chart_yaml = None;
    let mut values_yaml = None;
    let entries = archive.entries().map_err(|e| bad(format!("not a gzip-compressed tar (a Helm chart .tgz): {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a gzip-compressed tar (a Helm chart .tgz): {e}")))?;
        let name = entry.path().map_err(|e| bad(e.to_string()))?.to_string_lossy().into_owned();
        let parts: Vec<&str> = name.trim_start_matches("./").split('/').collect();
        // Only the chart's own files, not those of its subcharts (charts/x/...).
        if parts.len() != 2 {
            continue;
        }
        let slot = match parts[1] {
            "Chart.yaml" => &mut chart_yaml,
            "values.yaml" => &mut values_yaml,
            _ => continue,
        };
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(|e| bad(format!("{name}: {e}")))?;
        *slot = Some((name, text));
    }
    let (chart_name, chart_text) = chart_yaml.ok_or_else(|| bad("no Chart.yaml in the archive's top folder".into()))?;
    let meta = yaml::parse(&chart_text).map_err(|e| bad(format!("{chart_name}: {}", e.without_snippet())))?;
    let field = |k: &str| meta.path(&[k]).and_then(Value::as_str).map(str::to_owned);
    let name = field("name").ok_or_else(|| bad(format!("{chart_name}: no `name`")))?;
    let version = field("version").ok_or_else(|| bad(format!("{chart_name}: no `version`")))?;
    if field("apiVersion").is_none() {
        return Err(bad(format!("{chart_name}: no `apiVersion`")));
    }
    let values = match values_yaml {
        Some((n, t)) => yaml::parse(&t).map_err(|e| bad(format!("{n}: {}", e.without_snippet())))?,
        None => Value::Map(Map::new()),
    };
    Ok(Chart { name, version, app_version: field("appVersion"), values, bytes })
}

/// Images a values tree or a manifest references: every `image:` that is a
/// reference string, or a `{registry?, repository, tag?}` mapping (the Helm
/// convention; a missing tag falls back to `default_tag`, as charts do with
/// `.Chart.AppVersion`). Subtrees with `enabled: false` are skipped.
pub fn scan_images(v: &Value, default_tag: Option<&str>, out: &mut BTreeSet<String>) {
    match v {
        Value::Map(m) => {
            if m.get("enabled") == Some(&Value::Bool(false)) {
                return;
            }
            for (k, child) in m.iter() {
                if k == "image" {
                    match child {
                        Value::String(s) if !s.trim().is_empty() => {
                            out.insert(s.trim().to_owned());
                            continue;
                        }
                        Value::Map(im) => {
                            if let Some(repo) = im.get("repository").and_then(Value::as_str) {
                                let tag = im.get("tag").and_then(scalar).or(default_tag.map(str::to_owned));
                                let registry = im.get("registry").and_then(Value::as_str).filter(|r| !r.is_empty());
                                let mut r = match registry {
                                    Some(reg) => format!("{reg}/{repo}"),
                                    None => repo.to_owned(),
                                };
                                if let Some(d) = im.get("digest").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                                    r = format!("{r}@{d}");
                                } else if let Some(t) = tag.filter(|t| !t.is_empty()) {
                                    r = format!("{r}:{t}");
                                }
                                out.insert(r);
                                continue;
                            }
                        }
                        _ => {}
                    }
                }
                scan_images(child, default_tag, out);
            }
        }
        Value::Seq(s) => s.iter().for_each(|x| scan_images(x, default_tag, out)),
        _ => {}
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// A manifest file of the `manifests:` folder, validated.
pub struct ManifestFile {
    pub source: PathBuf,
    pub text: String,
    pub docs: Vec<Value>,
}

/// Read every `*.yaml`/`*.yml`/`*.json` of `dir` (sorted, not recursive):
/// each document must be a mapping with `apiVersion`, `kind` and `metadata.name`.
pub fn read_manifests(dir: &Path) -> Result<Vec<ManifestFile>, RenderError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| RenderError::read(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(RenderError::Input {
            file: dir.to_owned(),
            message: "harbor.manifests: no .yaml, .yml or .json file in the folder".into(),
        });
    }
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| RenderError::read(&p, e))?;
        let docs = yaml::parse_all(&text).map_err(|e| RenderError::from_yaml(&p, &e))?;
        for (i, d) in docs.iter().enumerate() {
            let bad =
                |what: &str| RenderError::Input { file: p.clone(), message: format!("document {} {what}", i + 1) };
            let m = d.as_map().ok_or_else(|| bad(&format!("is {}, not a Kubernetes object", d.kind())))?;
            for k in ["apiVersion", "kind"] {
                if m.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(bad(&format!("has no `{k}`")));
                }
            }
            if d.path(&["metadata", "name"]).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(bad("has no `metadata.name`"));
            }
        }
        out.push(ManifestFile { source: p, text, docs });
    }
    Ok(out)
}

/// The images Harbor itself runs, per the chart's values or the manifests:
/// they must be on the node before Harbor is, so they become bootstrap images.
pub fn harbor_images(spec: &Spec) -> Result<Vec<ImageRef>, RenderError> {
    let mut raw = BTreeSet::new();
    let source: PathBuf = match &spec.harbor.deployment {
        HarborDeployment::External => return Ok(Vec::new()),
        HarborDeployment::Chart(p) => {
            let chart = read_chart(p)?;
            scan_images(&chart.values, chart.app_version.as_deref(), &mut raw);
            p.clone()
        }
        HarborDeployment::Manifests(dir) => {
            for f in read_manifests(dir)? {
                f.docs.iter().for_each(|d| scan_images(d, None, &mut raw));
            }
            dir.clone()
        }
    };
    let mut out = BTreeSet::new();
    for r in raw {
        let parsed = ImageRef::parse(&r)
            .map_err(|e| RenderError::Input { file: source.clone(), message: format!("Harbor image: {e}") })?;
        out.insert(parsed);
    }
    Ok(out.into_iter().collect())
}

/// Chart values rendered from the spec.
pub fn chart_values(spec: &Spec) -> Value {
    let h = &spec.harbor;
    let tls = h.url.tls;
    let port_name = if tls { "https" } else { "http" };
    let mut expose = Map::new().with("type", "nodePort").with(
        "tls",
        if tls {
            Map::new()
                .with("enabled", true)
                .with("certSource", "secret")
                .with("secret", Map::new().with("secretName", TLS_SECRET))
        } else {
            Map::new().with("enabled", false)
        },
    );
    expose.insert(
        "nodePort",
        Map::new()
            .with("name", "harbor")
            .with("ports", Map::new().with(port_name, Map::new().with("nodePort", h.node_port))),
    );
    let mut pvc = Map::new();
    let size = |s: &Option<crate::spec::Size>| s.as_ref().map(|s| s.text.clone());
    let with_class = |mut m: Map| {
        if let Some(c) = &h.storage_class {
            m.insert("storageClass", c.as_str());
        }
        m
    };
    for (key, s) in [
        ("registry", &h.storage.registry),
        ("database", &h.storage.database),
        ("redis", &h.storage.redis),
        ("trivy", &h.storage.trivy),
    ] {
        if let Some(sz) = size(s) {
            pvc.insert(key, with_class(Map::new().with("size", sz)));
        } else if h.storage_class.is_some() {
            pvc.insert(key, with_class(Map::new()));
        }
    }
    if let Some(sz) = size(&h.storage.job_service) {
        pvc.insert("jobservice", Map::new().with("jobLog", with_class(Map::new().with("size", sz))));
    } else if h.storage_class.is_some() {
        pvc.insert("jobservice", Map::new().with("jobLog", with_class(Map::new())));
    }
    let mut persistence = Map::new().with("enabled", true);
    if !pvc.is_empty() {
        persistence.insert("persistentVolumeClaim", pvc);
    }
    Value::Map(
        Map::new()
            .with("expose", expose)
            .with("externalURL", h.url.to_string())
            .with("existingSecretAdminPassword", ADMIN_SECRET)
            .with("existingSecretAdminPasswordKey", ADMIN_SECRET_KEY)
            .with("persistence", persistence),
    )
}

/// The `helm.cattle.io/v1` HelmChart carrying the chart archive inline.
pub fn helm_chart(spec: &Spec, chart: &Chart) -> Value {
    let values = yaml::to_string(&chart_values(spec));
    Value::Map(
        Map::new().with("apiVersion", "helm.cattle.io/v1").with("kind", "HelmChart").with(
            "metadata",
            Map::new().with("name", "harbor").with("namespace", "kube-system").with(
                "annotations",
                Map::new()
                    .with("edgeiso.io/chart", format!("{}-{}", chart.name, chart.version))
                    .with("edgeiso.io/site", spec.name.as_str()),
            ),
        ),
    )
    .with_spec(
        Map::new()
            .with("targetNamespace", spec.harbor.namespace.as_str())
            .with("createNamespace", true)
            .with("chartContent", base64::engine::general_purpose::STANDARD.encode(&chart.bytes))
            .with("valuesContent", values),
    )
}

trait WithSpec {
    fn with_spec(self, spec: Map) -> Value;
}
impl WithSpec for Value {
    fn with_spec(self, spec: Map) -> Value {
        match self {
            Value::Map(m) => Value::Map(m.with("spec", spec)),
            other => other,
        }
    }
}

/// The Namespace, the TLS Secret and the admin-password Secret the chart
/// values point at. Holds a private key and a password: written 0600.
pub fn secrets(spec: &Spec, tls: Option<&super::tls::TlsMaterial>, admin_password: &str) -> Vec<Value> {
    let ns = spec.harbor.namespace.as_str();
    let meta = |name: &str| Map::new().with("name", name).with("namespace", ns);
    let mut docs = vec![Value::Map(
        Map::new().with("apiVersion", "v1").with("kind", "Namespace").with("metadata", Map::new().with("name", ns)),
    )];
    if let Some(t) = tls {
        docs.push(Value::Map(
            Map::new()
                .with("apiVersion", "v1")
                .with("kind", "Secret")
                .with("metadata", meta(TLS_SECRET))
                .with("type", "kubernetes.io/tls")
                .with(
                    "data",
                    Map::new()
                        .with("tls.crt", b64(&t.cert_pem))
                        .with("tls.key", b64(&t.key_pem))
                        .with("ca.crt", b64(&t.ca_pem)),
                ),
        ));
    }
    docs.push(Value::Map(
        Map::new()
            .with("apiVersion", "v1")
            .with("kind", "Secret")
            .with("metadata", meta(ADMIN_SECRET))
            .with("type", "Opaque")
            .with("data", Map::new().with(ADMIN_SECRET_KEY, b64(admin_password))),
    ));
    docs
}

/// What the Harbor Edge Native Config pack takes (spectrocloud/librarium
/// `docs/docs-content/integrations/harbor-edge.md`): `harbor-config.auth.password`
/// (the admin password; the pack makes a random one without it),
/// `harbor-config.auth.certs` (the certificate and key it puts in its own
/// `harbor-tls` Secret; they must name `spectro.registry.local` and the VIP,
/// and the certificate render makes also names `harbor.url`'s host, where the
/// agent pushes), and `harbor-config.storage` (PVC sizes, `registry` first).
/// The docs name the keys but not the inside of `certs`: the Secret's own
/// keys (`tls.crt`, `tls.key`, `ca.crt`) are used. `None` when the spec gives
/// none of these.
pub fn pack_values(spec: &Spec, tls: Option<&super::tls::TlsMaterial>, admin_password: Option<&str>) -> Option<Value> {
    let mut auth = Map::new();
    if let Some(pw) = admin_password {
        auth.insert("password", pw);
    }
    if let Some(t) = tls.filter(|t| !t.key_pem.is_empty()) {
        auth.insert(
            "certs",
            Map::new()
                .with("tls.crt", t.cert_pem.as_str())
                .with("tls.key", t.key_pem.as_str())
                .with("ca.crt", t.ca_pem.as_str()),
        );
    }
    let mut storage = Map::new();
    let st = &spec.harbor.storage;
    for (key, size) in [
        ("registry", &st.registry),
        ("jobService", &st.job_service),
        ("database", &st.database),
        ("redis", &st.redis),
        ("trivy", &st.trivy),
    ] {
        if let Some(s) = size {
            storage.insert(key, s.text.as_str());
        }
    }
    let mut config = Map::new();
    if !auth.is_empty() {
        config.insert("auth", auth);
    }
    if !storage.is_empty() {
        config.insert("storage", storage);
    }
    (!config.is_empty()).then(|| Value::Map(Map::new().with("harbor-config", config)))
}
