//! `edgeiso render`: everything the ISO carries besides images, from the site
//! spec, as files in memory (a [`FileSet`]): the builder writes them to an
//! output folder or into an ISO's overlay tree. See `docs/render.md` for the
//! output and how it reaches the node.

pub mod agent;
pub mod credentials;
pub mod harbor;
pub mod kairos_users;
pub mod mirrors;
pub mod sources;
pub mod tls;
pub mod userdata;
pub mod webhook;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use edgeiso_bundle::ImageRef;
use edgeiso_contract::fs::{FileMode as Mode, FileSet, FileSetError};
use edgeiso_contract::paths::{out as paths, AgentSite};
use edgeiso_contract::AgentConfig;

use crate::error::SpecError;
use crate::lint::{self, LintReport};
use crate::spec::{HarborDeployment, Spec};
use crate::yaml::{self, Value};

use agent::Agent;
pub use harbor::harbor_images;

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Unique bytes of the site's bundle(s), when known: Harbor's registry
    /// storage is checked against it (plus 20% headroom).
    pub bundle_bytes: Option<u64>,
    /// The upstream hosts a thin bundle's left-out blobs are fetched from
    /// (its workload images' registries); empty for a whole bundle or none.
    /// Each becomes a `sources:` entry of the agent's configuration.
    pub fetch_from: BTreeSet<String>,
}

/// Kairos skips user-data of this size or more.
pub const MAX_USER_DATA_BYTES: u64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct RenderReport {
    /// Everything rendered, by path relative to an output folder (see
    /// `edgeiso_contract::paths::out`); secrets are [`Mode::Secret`].
    pub files: FileSet,
    /// Images Harbor runs: the builder adds them to the bundle as bootstrap images.
    pub harbor_images: Vec<ImageRef>,
    /// Upstream registries whose pulls nodes redirect to Harbor.
    pub mirrored_hosts: Vec<String>,
    pub config_yaml_bytes: u64,
    /// True when render generated Harbor's CA and certificate.
    pub generated_tls: bool,
    /// The agent's configuration for a load from the live medium (the
    /// initramfs overlay carries it); `agent.yaml` in `files` is the node's.
    pub live_agent_config: AgentConfig,
    /// Site and profile checks (storage, hardware, AlwaysPullImages).
    pub lint: LintReport,
    /// Things worth telling the user that do not stop the render.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Two outputs under one name (the first would be lost), or a name
    /// that leaves the output folder.
    #[error("render output {0}")]
    Output(#[from] FileSetError),
    /// An input file (chart, manifest, certificate, user-data) is unusable.
    #[error("{}: {message}", file.display())]
    Input { file: PathBuf, message: String },
    /// A key set both by the spec and by the user's user-data file.
    #[error(
        "user-data conflict at `{key}` ({detail}): set by the site spec {} and by the user-data file {}; remove it from one, or set `userDataWins: true` in the spec",
        spec.display(),
        user.display()
    )]
    Conflict { key: String, spec: PathBuf, user: PathBuf, detail: String },
    #[error("{path}: {bytes} bytes; Kairos skips user-data of 1 MB or more (limit {limit})")]
    TooLarge { path: &'static str, bytes: u64, limit: u64 },
    #[error("{0}")]
    Tls(String),
    /// Keys of a `stylus` block Palette's agent would not read as meant.
    #[error("{0}")]
    Stylus(#[from] crate::stylus_schema::StylusErrors),
    #[error("checks failed:\n{0}")]
    Lint(LintReport),
}

impl RenderError {
    pub(crate) fn read(path: &Path, source: std::io::Error) -> RenderError {
        RenderError::Read { path: path.to_owned(), source }
    }
    pub(crate) fn from_yaml(path: &Path, e: &serde_saphyr::Error) -> RenderError {
        RenderError::Spec(crate::spec::yaml_error_quiet(path, e))
    }
}

pub(crate) fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// Collects the output files.
struct Out {
    files: FileSet,
}

impl Out {
    fn put(&mut self, rel: &str, data: &[u8], mode: Mode) -> Result<(), RenderError> {
        Ok(self.files.put(rel, data, mode)?)
    }
}

fn docs_to_string(docs: &[Value]) -> String {
    docs.iter().map(yaml::to_string).collect::<Vec<_>>().join("---\n")
}

fn harbor_admin_password(spec: &Spec) -> Result<Option<String>, RenderError> {
    let h = &spec.harbor;
    if let Some(p) = &h.admin_password_file {
        return Ok(Some(crate::spec::read_secret_file(p, "Harbor admin password file")?));
    }
    if let Some(var) = &h.admin_password_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(RenderError::Input {
                file: spec.source_path.clone(),
                message: format!("harbor.adminPasswordEnv: environment variable {var} is not set"),
            }),
        };
    }
    Ok(None)
}

/// Render the site. Nothing is written: the caller puts the files where
/// they belong (see `docs/render.md`).
pub fn render(spec: &Spec, opts: &RenderOptions) -> Result<RenderReport, RenderError> {
    let mut warnings = Vec::new();

    // Checks first: nothing is rendered when the site would not work.
    let mut lint = lint::check_site(spec, opts.bundle_bytes);
    if let Some(profile) = &spec.profile {
        lint.merge(lint::lint_profile(profile)?);
    }
    if lint.has_errors() {
        return Err(RenderError::Lint(lint));
    }

    let admin_password = harbor_admin_password(spec)?;
    let deployment = &spec.harbor.deployment;
    if matches!(deployment, HarborDeployment::Chart(_)) && admin_password.is_none() {
        return Err(RenderError::Input {
            file: spec.source_path.clone(),
            message: "harbor.chart needs the admin password: set harbor.adminPasswordFile or harbor.adminPasswordEnv"
                .into(),
        });
    }
    if admin_password.is_none() {
        warnings.push(
            "no Harbor admin password in the spec: the agent and the nodes get no registry credentials".to_owned(),
        );
    }
    let https = spec.harbor.url.tls;
    let tls_material = match deployment {
        HarborDeployment::Manifests(dir) if https => {
            let Some(t) = &spec.harbor.tls else {
                return Err(RenderError::Input {
                    file: dir.clone(),
                    message: "harbor.manifests with an https url: give harbor.tls (caFile, or certFile and keyFile) so nodes and the agent trust the certificate your manifests carry".into(),
                });
            };
            let ca = tls::read_pem(t.ca_file.as_ref().unwrap_or(&t.cert_file))?;
            // Only the CA is used: the manifests carry their own certificate.
            Some(tls::TlsMaterial { cert_pem: String::new(), key_pem: String::new(), ca_pem: ca, generated: false })
        }
        _ if https => Some(tls::material(spec)?),
        _ => None,
    };
    if matches!(deployment, HarborDeployment::External) && tls_material.is_some() {
        warnings.push(format!(
            "Harbor comes from the cluster profile's pack: put {} into the Harbor Edge Native Config pack's values, or nodes and the agent will not trust the certificate the pack makes",
            harbor::PACK_VALUES
        ));
    }
    if tls_material.as_ref().is_some_and(|t| t.generated) && tls::source_date_epoch()?.is_some() {
        warnings.push(
            "SOURCE_DATE_EPOCH is set, but Harbor's CA and certificate are generated with new random keys on every render: give harbor.tls for byte-identical builds".to_owned(),
        );
    }
    let harbor_images = harbor_images(spec)?;

    let (sources, source_files) = sources::sources(spec, &opts.fetch_from)?;

    let mut out = Out { files: FileSet::new() };
    for f in &source_files {
        out.put(&f.rel, &f.data, f.mode)?;
    }
    let agent = Agent { has_ca: tls_material.is_some(), has_password: admin_password.is_some(), sources: &sources };
    let config_yaml_bytes =
        write_all(spec, &mut out, admin_password.as_deref(), tls_material.as_ref(), &agent, &mut warnings)?;
    // Said once: a warning lint already gives is not repeated.
    warnings.retain(|w| !lint.warnings().any(|f| f.message == *w));
    let live_agent_config = agent::agent_config(spec, &AgentSite::LIVE, &agent);

    Ok(RenderReport {
        files: out.files,
        harbor_images,
        mirrored_hosts: mirrors::upstream_hosts(spec),
        config_yaml_bytes,
        generated_tls: tls_material.as_ref().is_some_and(|t| t.generated),
        live_agent_config,
        lint,
        warnings,
    })
}

fn write_all(
    spec: &Spec,
    out: &mut Out,
    admin_password: Option<&str>,
    tls: Option<&tls::TlsMaterial>,
    agent: &Agent,
    warnings: &mut Vec<String>,
) -> Result<u64, RenderError> {
    // Harbor: CA for nodes and agent, password for the agent, the deployment.
    if let Some(t) = tls {
        out.put(paths::HARBOR_CA, t.ca_pem.as_bytes(), Mode::Public)?;
    }
    // The key the agent checks bundles by, as the spec gave it.
    if let Some(t) = &spec.trust {
        out.put(paths::TRUST_KEY, &t.public_key_pem, Mode::Public)?;
    }
    if let Some(pw) = admin_password {
        out.put(paths::HARBOR_PASSWORD, format!("{pw}\n").as_bytes(), Mode::Secret)?;
    }
    match &spec.harbor.deployment {
        HarborDeployment::Chart(p) => {
            let chart = harbor::read_chart(p)?;
            let doc = harbor::helm_chart(spec, &chart);
            out.put(paths::HARBOR_CHART, yaml::to_string(&doc).as_bytes(), Mode::Public)?;
            let secrets = harbor::secrets(spec, tls, admin_password.unwrap_or_default());
            out.put(paths::HARBOR_SECRETS, docs_to_string(&secrets).as_bytes(), Mode::Secret)?;
        }
        HarborDeployment::Manifests(dir) => {
            let mut taken: std::collections::BTreeMap<String, PathBuf> = Default::default();
            for f in harbor::read_manifests(dir)? {
                let stem = f.source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let stem = stem.strip_prefix("harbor-").unwrap_or(&stem).to_owned();
                let rel = format!("{}/harbor-{stem}.yaml", paths::MANIFESTS);
                if let Some(first) = taken.insert(rel.clone(), f.source.clone()) {
                    return Err(RenderError::Input {
                        file: dir.clone(),
                        message: format!(
                            "{} and {} would both be written as {rel}: rename one",
                            first.file_name().unwrap_or_default().to_string_lossy(),
                            f.source.file_name().unwrap_or_default().to_string_lossy()
                        ),
                    });
                }
                // Pre-rendered manifests may hold Secrets: treat them as secret.
                out.put(&rel, f.text.as_bytes(), Mode::Secret)?;
            }
        }
        // The pack makes its own `harbor-tls` Secret and admin password:
        // render gives it the values to make them from, and no Secret.
        HarborDeployment::External => {
            if let Some(values) = harbor::pack_values(spec, tls, admin_password) {
                out.put(harbor::PACK_VALUES, yaml::to_string(&values).as_bytes(), Mode::Secret)?;
            }
        }
    }

    // Palette registry credential Secrets.
    let creds = credentials::secrets(spec)?;
    if !creds.is_empty() {
        out.put(paths::REGISTRY_CREDENTIALS, docs_to_string(&creds).as_bytes(), Mode::Secret)?;
    }

    // Node mirrors, without credentials: the agent adds the nodes' pull-only
    // credential on the node (decision 0012).
    for (host, toml) in mirrors::containerd_hosts(spec) {
        let rel = format!("{}/{host}/hosts.toml", paths::CERTS_D);
        out.put(&rel, toml.as_bytes(), Mode::Public)?;
    }
    let rancher = spec.kubernetes.distribution.is_rancher();
    let registries_yaml = rancher.then(|| yaml::to_string(&mirrors::registries_yaml(spec)));
    if let Some(r) = &registries_yaml {
        out.put(paths::K3S_REGISTRIES, r.as_bytes(), Mode::Public)?;
        if spec.airgap_strict {
            out.put(paths::K3S_STRICT, yaml::to_string(&mirrors::strict_config()).as_bytes(), Mode::Public)?;
        }
    } else {
        out.put(paths::CONTAINERD_REGISTRY_DROP_IN, mirrors::containerd_registry_drop_in().as_bytes(), Mode::Public)?;
        // What k3s/RKE2 do by themselves: bootstrap images and manifests/.
        out.put(paths::KUBEADM_BOOTSTRAP, edgeiso_contract::unit::KUBEADM_BOOTSTRAP.as_bytes(), Mode::Public)?;
        out.put(paths::KUBEADM_UNIT, edgeiso_contract::unit::KUBEADM_UNIT.as_bytes(), Mode::Public)?;
    }

    // The agent.
    let agent = agent::agent_config(spec, &AgentSite::NODE, agent);
    out.put(paths::AGENT_CONFIG, agent.to_yaml().as_bytes(), Mode::Public)?;
    out.put(paths::UNIT, edgeiso_contract::unit::AGENT_UNIT.as_bytes(), Mode::Public)?;
    // Updates by courier stick: the boot stage installs the rule and unit.
    out.put(paths::COURIER_SCRIPT, edgeiso_contract::unit::COURIER_SCRIPT.as_bytes(), Mode::Public)?;
    out.put(paths::COURIER_UNIT, edgeiso_contract::unit::COURIER_UNIT.as_bytes(), Mode::Public)?;
    out.put(paths::COURIER_RULE, edgeiso_contract::unit::COURIER_RULE.as_bytes(), Mode::Public)?;

    // The image-redirect webhook: its configuration for the API server, its
    // certificate and key (the key only in the site folder, 0600), its unit.
    if spec.site.image_redirect_webhook == Some(true) {
        let t = tls::webhook_material(spec, &webhook::address(spec), tls::source_date_epoch()?)?;
        out.put(paths::WEBHOOK_CERT, t.cert_pem.as_bytes(), Mode::Public)?;
        out.put(paths::WEBHOOK_KEY, t.key_pem.as_bytes(), Mode::Secret)?;
        let config = yaml::to_string(&webhook::configuration(spec, &t.ca_pem));
        out.put(paths::WEBHOOK_MANIFEST, config.as_bytes(), Mode::Public)?;
        out.put(paths::WEBHOOK_UNIT, edgeiso_contract::unit::WEBHOOK_UNIT.as_bytes(), Mode::Public)?;
    }

    // The user-data, last: it embeds some of the above.
    let inputs = userdata::Inputs { registries_yaml: registries_yaml.as_deref() };
    let (mut config, mut secret) = userdata::build(spec, &inputs)?;
    // Both `stylus` blocks, ours and the user's, as Palette documents them.
    crate::stylus_schema::check_document(&config, Path::new(paths::CONFIG_YAML), None)?;
    if let Some(user_file) = &spec.user_data {
        let (user, user_text) = userdata::read_user_data(user_file)?;
        crate::stylus_schema::check_document(&user, user_file, Some(&user_text))?;
        let src = userdata::Sources { spec: &spec.source_path, user: user_file };
        userdata::merge(&mut config, user, spec.user_data_wins, &src)?;
        // We cannot know what the user's file holds: keep it private.
        secret = true;
    }
    if let Some(w) = kairos_users::apply(spec, &mut config)? {
        warnings.push(w.to_owned());
    }
    let text = format!("#cloud-config\n{}", yaml::to_string(&config));
    let bytes = text.len() as u64;
    if bytes >= MAX_USER_DATA_BYTES {
        return Err(RenderError::TooLarge { path: paths::CONFIG_YAML, bytes, limit: MAX_USER_DATA_BYTES });
    }
    out.put(paths::CONFIG_YAML, text.as_bytes(), if secret { Mode::Secret } else { Mode::Public })?;
    Ok(bytes)
}
