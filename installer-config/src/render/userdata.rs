//! `config.yaml`: the Kairos cloud-config of an airgap site.

use std::path::{Path, PathBuf};

use edgeiso_contract::paths::{iso, live, node};
use edgeiso_contract::unit::{AGENT_UNIT_NAME, COURIER_LABEL, COURIER_UNIT_NAME, KUBEADM_UNIT_NAME, WEBHOOK_UNIT_NAME};

use super::{mirrors, RenderError};
use crate::spec::{read_secret_file, InterfaceSpec, Spec};
use crate::yaml::{self, Map, Value};

/// Go's yaml reads a plain `0644` as octal; we write decimal to be unambiguous.
const MODE_0644: u64 = 0o644;

/// Everything user-data needs that render computed elsewhere.
pub struct Inputs<'a> {
    /// k3s/RKE2 only; without credentials (the agent adds them on the node).
    pub registries_yaml: Option<&'a str>,
}

/// The cloud-config as a value (before the user's file is merged in), and
/// whether it holds a secret (a password) so the file must be 0600.
pub fn build(spec: &Spec, inp: &Inputs<'_>) -> Result<(Value, bool), RenderError> {
    let mut secret = false;
    let mut root = Map::new();

    // install
    let mut install = Map::new()
        .with("auto", spec.install.auto)
        .with("device", spec.install.device.as_str())
        .with("reboot", spec.install.reboot)
        .with("poweroff", spec.install.poweroff);
    if let Some(size) = spec.install.persistent_size_mib {
        install.insert("partitions", Map::new().with("persistent", Map::new().with("size", size)));
    }
    root.insert("install", install);

    // stylus
    let mut stylus = Map::new();
    let mut site = Map::new().with("name", spec.site.name.clone().unwrap_or_else(|| spec.name.clone()));
    if let Some(h) = &spec.site.host_name {
        site.insert("hostName", h.as_str());
    }
    if !spec.site.tags.is_empty() {
        let mut tags = Map::new();
        for (k, v) in &spec.site.tags {
            tags.insert(k.as_str(), v.as_str());
        }
        site.insert("tags", tags);
    }
    if let Some(n) = &spec.site.network {
        let mut net = Map::new();
        for (k, v) in [
            ("httpProxy", &n.http_proxy),
            ("httpsProxy", &n.https_proxy),
            ("noProxy", &n.no_proxy),
            ("nameserver", &n.nameserver),
        ] {
            if let Some(v) = v {
                net.insert(k, v.as_str());
            }
        }
        if !n.interfaces.is_empty() {
            let mut ifs = Map::new();
            for (nic, i) in &n.interfaces {
                let m = match i {
                    InterfaceSpec::Dhcp => Map::new().with("type", "dhcp"),
                    // CanvOS' user-data.template writes the address in CIDR
                    // form and no `mask` (the installer reference types
                    // `mask` as a string, and shows no example of it).
                    InterfaceSpec::Static { ip_address, prefix_len, gateway, nameserver } => {
                        let mut m =
                            Map::new().with("type", "static").with("ipAddress", format!("{ip_address}/{prefix_len}"));
                        if let Some(g) = gateway {
                            m.insert("gateway", g.to_string());
                        }
                        if let Some(ns) = nameserver {
                            m.insert("nameserver", ns.to_string());
                        }
                        m
                    }
                };
                ifs.insert(nic.as_str(), m);
            }
            net.insert("interfaces", ifs);
        }
        site.insert("network", net);
    }
    if !spec.site.ca_certs.is_empty() {
        let mut certs = Vec::new();
        for p in &spec.site.ca_certs {
            certs.push(read_pem(p)?);
        }
        site.insert("caCerts", certs);
    }
    stylus.insert("site", site);
    if spec.site.legacy_agent {
        stylus.insert("installationMode", "airgap");
    } else {
        stylus.insert("managementMode", "local");
    }
    // One webhook per site: with edgeiso's own (`true`), Palette's agent,
    // if the base has one, is told not to install a second one that would
    // rewrite the same pods.
    if spec.site.image_redirect_webhook.is_some() {
        stylus.insert("imageRedirectWebhook", Map::new().with("enable", false));
    }
    if let Some(rc) = &spec.site.registry_credentials {
        let r = spec.registry(&rc.registry).expect("validated: registryCredentials names a registry");
        let password = r.read_password()?.unwrap_or_default();
        secret = true;
        stylus.insert(
            "registryCredentials",
            Map::new()
                .with("domain", domain(&r.host, rc.path.as_deref()))
                .with("username", r.username.clone().unwrap_or_default())
                .with("password", password)
                .with("insecure", r.insecure),
        );
    }
    if let Some(er) = &spec.site.external_registries {
        let mut list = Vec::new();
        for e in &er.registries {
            let r = spec.registry(&e.registry).expect("validated: externalRegistries names a registry");
            let password = r.read_password()?.unwrap_or_default();
            secret = true;
            let mut m = Map::new()
                .with("domain", domain(&r.host, e.path.as_deref()))
                .with("username", r.username.clone().unwrap_or_default())
                .with("password", password);
            if let Some(n) = &e.repository_name {
                m.insert("repositoryName", n.as_str());
            }
            // Palette's installer reference: `insecure` (boolean) and
            // `certificates` (a list of PEM strings, one per certificate).
            if r.insecure {
                m.insert("insecure", true);
            }
            if let Some(ca) = &r.ca_file {
                m.insert("certificates", pem_certificates(ca)?);
            }
            list.push(Value::Map(m));
        }
        let mut rules = Map::new();
        for (k, v) in &er.mapping_rules {
            rules.insert(k.as_str(), v.as_str());
        }
        stylus.insert("externalRegistries", Map::new().with("registries", list).with("registryMappingRules", rules));
    }
    root.insert("stylus", stylus);

    // stages
    let mut initramfs = Vec::new();
    if !spec.users.is_empty() {
        let mut users = Map::new();
        for u in &spec.users {
            let mut m = Map::new();
            if let Some(p) = &u.password_file {
                m.insert("passwd", read_secret_file(p, "user password file")?);
                secret = true;
            }
            if !u.groups.is_empty() {
                m.insert("groups", u.groups.clone());
            }
            if !u.ssh_authorized_keys.is_empty() {
                m.insert("ssh_authorized_keys", u.ssh_authorized_keys.clone());
            }
            users.insert(u.name.as_str(), m);
        }
        initramfs.push(Value::Map(Map::new().with("name", "edgeiso: OS users").with("users", users)));
    }
    // Node mirror configuration, written at every boot before any runtime
    // starts: without credentials; then the agent's completed copies (with
    // the nodes' pull-only credential, 0600) over them, once it made them.
    let dist = spec.kubernetes.distribution.as_str();
    let mut files = Vec::new();
    if let Some(r) = inp.registries_yaml {
        files.push(file(&node::rancher_registries_yaml(dist), r, MODE_0644));
    }
    for (host, toml) in mirrors::containerd_hosts(spec) {
        files.push(file(&format!("{}/{host}/hosts.toml", node::CONTAINERD_CERTS_D), &toml, MODE_0644));
    }
    if inp.registries_yaml.is_none() {
        files.push(file(node::CONTAINERD_REGISTRY_DROP_IN, &mirrors::containerd_registry_drop_in(), MODE_0644));
    } else if spec.airgap_strict {
        files.push(file(
            &format!("/etc/rancher/{dist}/config.yaml.d/90-edgeiso-airgap.yaml"),
            &yaml::to_string(&mirrors::strict_config()),
            MODE_0644,
        ));
    }
    initramfs
        .push(Value::Map(Map::new().with("name", "edgeiso: pull images through the site Harbor").with("files", files)));
    initramfs.push(Value::Map(
        Map::new()
            .with("name", "edgeiso: the nodes' pull credential, once the agent made it")
            .with("commands", vec![mirrors::reinstall_kept_script()]),
    ));

    let after_install = vec![Value::Map(
        Map::new()
            .with("name", "edgeiso: copy the agent, site files and bundles to the persistent partition")
            .with("commands", vec![install_script()]),
    )];
    let boot = vec![Value::Map(
        Map::new()
            .with("name", "edgeiso: deploy Harbor manifests and start the agent")
            .with("commands", vec![boot_script(dist, spec.kubernetes.distribution.is_rancher())]),
    )];
    root.insert(
        "stages",
        Map::new().with("initramfs", initramfs).with("after-install", after_install).with("boot", boot),
    );
    Ok((Value::Map(root), secret))
}

fn domain(host: &str, path: Option<&str>) -> String {
    match path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => format!("{host}/{p}"),
        None => host.to_owned(),
    }
}

fn read_pem(p: &Path) -> Result<String, RenderError> {
    let text = super::tls::read_pem(p)?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(RenderError::Input { file: p.to_owned(), message: "not a PEM certificate".into() });
    }
    Ok(text)
}

/// Each certificate of a PEM file, as its own PEM string.
fn pem_certificates(p: &Path) -> Result<Vec<String>, RenderError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = read_pem(p)?;
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            return Err(RenderError::Input { file: p.to_owned(), message: "a certificate has no END line".into() });
        };
        let end = start + len + END.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    Ok(out)
}

fn file(path: &str, content: &str, mode: u64) -> Value {
    Value::Map(
        Map::new()
            .with("path", path)
            .with("permissions", mode)
            .with("owner", 0u64)
            .with("group", 0u64)
            .with("content", content),
    )
}

/// Runs on the live installer after the OS is written: the persistent
/// partition is mounted by label (it becomes /usr/local on the node).
fn install_script() -> String {
    format!(
        r#"set -eu
live={live}
mnt=/run/edgeiso-persistent
mkdir -p "$mnt"
mount /dev/disk/by-label/{label} "$mnt"
trap 'umount "$mnt"' EXIT
dest="$mnt/{rel}"
mkdir -p "$dest/bin" "$dest/site" "$dest/content" "$dest/state" "$dest/images"
cp -a "$live{bin}" "$dest/bin/"
# The site's files as this boot used them (the hook's copy: a personalised
# site's over the medium's), else the medium's.
site={merged}
[ -d "$site" ] || site="$live{site}"
cp -a "$site/." "$dest/site/"
if [ -d "$live{content}" ]; then cp -a "$live{content}/." "$dest/content/"; fi
if [ -d "$live{images}" ]; then cp -a "$live{images}/." "$dest/images/"; fi
chmod 0700 "$dest/site" "$dest/state"
sync
"#,
        live = live::MEDIUM,
        label = node::PERSISTENT_LABEL,
        rel = node::ROOT.trim_start_matches("/usr/local/"),
        bin = iso::AGENT_BIN,
        site = iso::SITE_DIR,
        merged = live::SITE_DIR,
        content = iso::CONTENT_DIR,
        images = iso::IMAGES_DIR,
    )
}

/// Runs at every boot of the installed node: idempotent. Puts the bootstrap
/// images and manifests where the distribution takes them (k3s/RKE2: their
/// own folders; kubeadm: the bootstrap unit does it), then starts the units.
fn boot_script(dist: &str, rancher: bool) -> String {
    let handoff = if rancher {
        format!(
            r#"# Images that must run before Harbor does (Harbor's own): k3s/RKE2 import
# every archive in agent/images/ when they start, unless .cache.json exists
# there: then (k3s >= 1.30.13, 1.31.9, 1.32.5, 1.33.1; k3s #12243) an archive
# whose size and mtime did not change since its import is skipped. They never
# create the file themselves. The archive is copied only when it changed, so
# its mtime, and the skip, hold from boot to boot.
mkdir -p /var/lib/rancher/{dist}/agent/images
[ -e /var/lib/rancher/{dist}/agent/images/.cache.json ] || : > /var/lib/rancher/{dist}/agent/images/.cache.json
for f in {images}/*.tar; do
  [ -e "$f" ] || continue
  cmp -s "$f" "/var/lib/rancher/{dist}/agent/images/$(basename "$f")" || cp "$f" /var/lib/rancher/{dist}/agent/images/
done
mkdir -p /var/lib/rancher/{dist}/server/manifests
for f in "$site"/manifests/*.yaml; do
  [ -e "$f" ] || continue
  install -m 0600 "$f" "/var/lib/rancher/{dist}/server/manifests/edgeiso-$(basename "$f")"
done
"#,
            images = node::IMAGES_DIR,
        )
    } else {
        format!(
            r#"# kubeadm has no images folder and no deploy folder: a unit imports the
# bootstrap images into containerd and applies manifests/ once the API
# server answers (docs/render.md, "kubeadm sites").
install -m 0644 {kubeadm_unit_src} /etc/systemd/system/{kubeadm_unit}
"#,
            kubeadm_unit_src = node::KUBEADM_UNIT,
            kubeadm_unit = KUBEADM_UNIT_NAME,
        )
    };
    let start_kubeadm =
        if rancher { String::new() } else { format!("systemctl enable --now --no-block {KUBEADM_UNIT_NAME}\n") };
    format!(
        r#"set -eu
site={site}
[ -d "$site" ] || exit 0
{handoff}install -m 0644 {unit_src} /etc/systemd/system/{unit}
# Updates by courier stick (a file system labelled {courier_label}).
install -m 0644 {courier_unit_src} /etc/systemd/system/{courier_unit}
install -D -m 0644 {courier_rule_src} {courier_rule}
udevadm control --reload 2>/dev/null || true
# The image-redirect webhook, when the site has one: ordered after the load.
if [ -f {webhook_unit_src} ]; then install -m 0644 {webhook_unit_src} /etc/systemd/system/{webhook_unit}; fi
systemctl daemon-reload
{start_kubeadm}systemctl enable --now --no-block {unit}
if [ -f {webhook_unit_src} ]; then systemctl enable --now --no-block {webhook_unit}; fi
"#,
        site = node::SITE_DIR,
        unit_src = node::UNIT,
        unit = AGENT_UNIT_NAME,
        webhook_unit_src = node::WEBHOOK_UNIT,
        webhook_unit = WEBHOOK_UNIT_NAME,
        courier_label = COURIER_LABEL,
        courier_unit_src = node::COURIER_UNIT,
        courier_unit = COURIER_UNIT_NAME,
        courier_rule_src = node::COURIER_RULE,
        courier_rule = node::COURIER_RULE_INSTALLED,
    )
}

/// Where a key came from, for conflict messages.
pub struct Sources<'a> {
    pub spec: &'a Path,
    pub user: &'a Path,
}

/// Deep-merge `user` into `base`: mappings merge key by key, lists append
/// (the spec's entries first), equal scalars agree; anything else is a
/// conflict, an error naming both files, unless `user_wins`.
pub fn merge(base: &mut Value, user: Value, user_wins: bool, src: &Sources<'_>) -> Result<(), RenderError> {
    merge_at(base, user, user_wins, src, &mut Vec::new())
}

fn merge_at(
    base: &mut Value,
    user: Value,
    user_wins: bool,
    src: &Sources<'_>,
    path: &mut Vec<String>,
) -> Result<(), RenderError> {
    match (base, user) {
        (Value::Map(b), Value::Map(u)) => {
            for (k, v) in u.0 {
                path.push(k.clone());
                match b.get_mut(&k) {
                    Some(existing) => merge_at(existing, v, user_wins, src, path)?,
                    None => b.0.push((k, v)),
                }
                path.pop();
            }
            Ok(())
        }
        (Value::Seq(b), Value::Seq(u)) => {
            b.extend(u);
            Ok(())
        }
        (b, u) if *b == u => Ok(()),
        (b, u) => {
            if user_wins {
                *b = u;
                return Ok(());
            }
            Err(RenderError::Conflict {
                key: path.join("."),
                spec: src.spec.to_owned(),
                user: src.user.to_owned(),
                detail: if b.kind() == u.kind() {
                    "different values".into()
                } else {
                    format!("{} in one, {} in the other", b.kind(), u.kind())
                },
            })
        }
    }
}

/// Read the user's user-data file (checked when the spec was read: see
/// `spec::user_data`), as a value and as text (for the lines of errors).
pub fn read_user_data(p: &PathBuf) -> Result<(Value, String), RenderError> {
    let text = std::fs::read_to_string(p).map_err(|e| RenderError::read(p, e))?;
    let v = yaml::parse(&text).map_err(|e| RenderError::from_yaml(p, &e))?;
    match v {
        Value::Map(_) => Ok((v, text)),
        Value::Null => Ok((Value::Map(Map::new()), text)),
        other => Err(RenderError::Input {
            file: p.clone(),
            message: format!("user-data must be a mapping, found {}", other.kind()),
        }),
    }
}
