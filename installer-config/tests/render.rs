//! `render`: golden files for every output, each output parsed back and
//! checked, Secrets decoded field by field, core-kind manifests validated with
//! `kubernetes-validate --strict`, and the refusals.
//!
//! `UPDATE_GOLDEN=1 cargo test -p edgeiso-installer-config --test render`
//! rewrites `tests/golden/`. The TLS material under `tests/fixtures/tls` is a
//! throwaway test CA and key, committed so golden files are stable.

mod common;
use common::render_to;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use edgeiso_contract::AgentConfig;
use edgeiso_installer_config::render::harbor;
use edgeiso_installer_config::yaml::{self, Value};
use edgeiso_installer_config::{RenderError, RenderOptions, Spec};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// A tiny Harbor chart archive, byte-for-byte reproducible (fixed tar headers,
/// gzip without a timestamp).
pub fn fake_chart() -> Vec<u8> {
    let chart_yaml = "apiVersion: v2\nname: harbor\nversion: 1.15.0\nappVersion: \"2.11.0\"\n";
    let values = "\
expose:
  type: ingress
nginx:
  image: {repository: goharbor/nginx-photon, tag: v2.11.0}
portal:
  image: {repository: goharbor/harbor-portal, tag: v2.11.0}
core:
  image: {repository: goharbor/harbor-core, tag: v2.11.0}
registry:
  registry:
    image: {repository: goharbor/registry-photon, tag: v2.11.0}
trivy:
  enabled: false
  image: {repository: goharbor/trivy-adapter-photon, tag: v2.11.0}
database:
  internal:
    image: {repository: goharbor/harbor-db}
";
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("harbor/Chart.yaml", chart_yaml),
        ("harbor/values.yaml", values),
        ("harbor/templates/NOTES.txt", "hi\n"),
        ("harbor/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A site folder with every input of the full spec.
fn full_site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("secrets")).unwrap();
    std::fs::create_dir_all(p.join("tls")).unwrap();
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::copy(Path::new(FIXTURES).join("tls").join(f), p.join("tls").join(f)).unwrap();
    }
    std::fs::write(p.join("secrets/registry.pw"), "robot-pass\n").unwrap();
    std::fs::write(p.join("secrets/charts.pw"), "charts:pass/with\"odd'chars\n").unwrap();
    std::fs::write(p.join("secrets/harbor.pw"), "Harbor12345\n").unwrap();
    // `openssl passwd -6 -salt edgeiso kairos`
    std::fs::write(
        p.join("secrets/kairos.hash"),
        "$6$edgeiso$2h9gi8dI3YjdR9ihzUzkg9MP58ebx6jOJuMmfByhkc5xwoeR4KoyrXylhhBzYsN6wNrffDZa4jKvwcOH2UOTb/\n",
    )
    .unwrap();
    std::fs::write(p.join("harbor-1.15.0.tgz"), fake_chart()).unwrap();
    std::fs::write(
        p.join("user-data.yaml"),
        "#cloud-config\nstages:\n  network:\n    - name: user stage\n      commands: [echo hello]\ninstall:\n  grub_options:\n    extra_cmdline: console=ttyS0\n",
    )
    .unwrap();
    std::fs::write(p.join("profile.yaml"), "kube-apiserver-arg:\n  - enable-admission-plugins=NodeRestriction\n")
        .unwrap();
    std::fs::write(p.join("site.yaml"), full_spec_text()).unwrap();
    d
}

fn full_spec_text() -> String {
    format!(
        r#"name: store-042
images:
  - docker.io/library/nginx:1.25
  - 127.0.0.1:5000/team/app@{DIGEST}
  - ref: quay.io/prometheus/node-exporter:v1.8.1
    platforms: [linux/amd64, linux/arm64]
bootstrapImages:
  - docker.io/rancher/mirrored-pause:3.6
registries:
  - host: 127.0.0.1:5000
    insecure: true
  - host: registry.example.com
    username: robot
    passwordFile: secrets/registry.pw
    secret: {{name: example-registry}}
  - host: https://charts.example.com
    kind: helm
    username: charts
    passwordFile: secrets/charts.pw
    secret: {{name: example-charts}}
site:
  hostName: edge-042
  tags: {{region: east, store: "042"}}
  network:
    httpProxy: http://proxy.example:3128
    noProxy: 10.0.0.0/8,.svc
    interfaces:
      eth0: {{type: static, ipAddress: 10.0.0.5, mask: 24, gateway: 10.0.0.1, nameserver: 10.0.0.2}}
  caCerts: [tls/ca.crt]
  registryCredentials: {{registry: registry.example.com, path: spectro-images}}
install: {{device: /dev/sda, persistentSizeMiB: 200000}}
users:
  - name: kairos
    passwordFile: secrets/kairos.hash
    groups: [admin]
    sshAuthorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"]
userData: user-data.yaml
harbor:
  vip: 10.0.0.10
  adminPasswordFile: secrets/harbor.pw
  storage: {{registry: 300Gi, jobService: 1Gi, database: 2Gi, redis: 1Gi, trivy: 5Gi}}
  storageClass: local-path
  tls: {{certFile: tls/tls.crt, keyFile: tls/tls.key, caFile: tls/ca.crt}}
  chart: harbor-1.15.0.tgz
hardware: {{nodes: 1, cpus: 8, memoryGiB: 16, diskGiB: 500}}
profile: profile.yaml
"#
    )
}

fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Compare a rendered tree with `tests/golden/<case>`, or rewrite it.
fn golden(case: &str, out: &Path) {
    let dir = Path::new(GOLDEN).join(case);
    let got = read_tree(out);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, data) in &got {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        return;
    }
    let want = read_tree(&dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "files of {case} (UPDATE_GOLDEN=1 to accept)"
    );
    for (rel, data) in &got {
        assert!(
            want[rel] == *data,
            "{case}/{rel} differs from the golden file (UPDATE_GOLDEN=1 to accept):\n{}",
            String::from_utf8_lossy(data)
        );
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn b64d(v: &Value) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
}

fn render_full() -> (tempfile::TempDir, PathBuf, edgeiso_installer_config::RenderReport) {
    let site = full_site();
    let spec = Spec::load(&site.path().join("site.yaml")).unwrap();
    let out = site.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions { bundle_bytes: Some(10 << 30), ..Default::default() }).unwrap();
    (site, out, report)
}

#[test]
fn full_site_matches_golden_files() {
    let (_site, out, report) = render_full();
    golden("full-site", &out);
    assert!(report.lint.findings.is_empty(), "{}", report.lint);
    assert!(!report.generated_tls);
}

#[test]
fn config_yaml_parses_back_with_every_part() {
    let (site, out, report) = render_full();
    let text = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    assert!(text.starts_with("#cloud-config\n"));
    assert!((text.len() as u64) < 1_000_000 && report.config_yaml_bytes == text.len() as u64);
    let c = yaml::parse(&text).unwrap();
    let s = |path: &[&str]| c.path(path).and_then(Value::as_str).unwrap_or_else(|| panic!("{path:?}")).to_owned();
    assert_eq!(s(&["stylus", "managementMode"]), "local");
    assert!(c.path(&["stylus", "installationMode"]).is_none());
    assert_eq!(s(&["stylus", "site", "name"]), "store-042");
    assert_eq!(s(&["stylus", "site", "hostName"]), "edge-042");
    assert_eq!(s(&["stylus", "site", "tags", "store"]), "042");
    // CanvOS' user-data.template form: CIDR in ipAddress, no mask.
    assert_eq!(s(&["stylus", "site", "network", "interfaces", "eth0", "ipAddress"]), "10.0.0.5/24");
    assert_eq!(c.path(&["stylus", "site", "network", "interfaces", "eth0", "mask"]), None);
    // Kairos installs unattended; the spec has an admin user, so no nousers.
    assert_eq!(c.path(&["install", "auto"]), Some(&Value::Bool(true)));
    assert_eq!(c.path(&["install", "nousers"]), None);
    let ca = std::fs::read_to_string(site.path().join("tls/ca.crt")).unwrap();
    assert_eq!(c.path(&["stylus", "site", "caCerts"]).unwrap().as_seq().unwrap()[0].as_str(), Some(ca.as_str()));
    assert_eq!(s(&["stylus", "registryCredentials", "domain"]), "registry.example.com/spectro-images");
    assert_eq!(s(&["stylus", "registryCredentials", "password"]), "robot-pass");
    assert_eq!(s(&["install", "device"]), "/dev/sda");
    assert_eq!(c.path(&["install", "reboot"]), Some(&Value::Bool(true)));
    assert_eq!(c.path(&["install", "partitions", "persistent", "size"]), Some(&Value::Int(200000)));
    // Merged from the user's file.
    assert_eq!(s(&["install", "grub_options", "extra_cmdline"]), "console=ttyS0");
    assert_eq!(c.path(&["stages", "network"]).unwrap().as_seq().unwrap().len(), 1);

    let initramfs = c.path(&["stages", "initramfs"]).unwrap().as_seq().unwrap();
    let users = initramfs[0].path(&["users", "kairos"]).unwrap();
    assert!(users.path(&["passwd"]).unwrap().as_str().unwrap().starts_with("$6$edgeiso$"));
    let files = initramfs[1].path(&["files"]).unwrap().as_seq().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path(&["path"]).unwrap().as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/etc/rancher/k3s/registries.yaml",
            "/etc/containerd/certs.d/127.0.0.1:5000/hosts.toml",
            "/etc/containerd/certs.d/docker.io/hosts.toml",
            "/etc/containerd/certs.d/quay.io/hosts.toml"
        ]
    );
    // Same bytes as the files render wrote, and Go-safe decimal modes.
    assert_eq!(
        files[0].path(&["content"]).unwrap().as_str().unwrap(),
        std::fs::read_to_string(out.join("k3s/registries.yaml")).unwrap()
    );
    assert_eq!(files[0].path(&["permissions"]), Some(&Value::Int(0o644)), "no credential in it");
    // Then the agent's completed copies, once it made them (decision 0012).
    let kept = initramfs[2].path(&["commands"]).unwrap().as_seq().unwrap()[0].as_str().unwrap();
    assert!(kept.contains("keep=/usr/local/edgeiso/state/node-pull/files") && kept.contains("install -D -m 0600"));
    assert_eq!(
        files[2].path(&["content"]).unwrap().as_str().unwrap(),
        std::fs::read_to_string(out.join("containerd/certs.d/docker.io/hosts.toml")).unwrap()
    );
    let after = c.path(&["stages", "after-install"]).unwrap().as_seq().unwrap()[0].path(&["commands"]).unwrap();
    let script = after.as_seq().unwrap()[0].as_str().unwrap();
    assert!(script.contains("mount /dev/disk/by-label/COS_PERSISTENT"), "{script}");
    // The site's files as the boot used them (a personalised site's), else the medium's.
    assert!(script.contains("site=/run/edgeiso/site\n"), "{script}");
    assert!(script.contains(r#"[ -d "$site" ] || site="$live/edgeiso/site""#), "{script}");
    assert!(script.contains(r#"cp -a "$site/." "$dest/site/""#), "{script}");
    assert!(script.contains("/opt/spectrocloud/content"), "{script}");
    let boot = c.path(&["stages", "boot"]).unwrap().as_seq().unwrap()[0].path(&["commands"]).unwrap();
    let boot = boot.as_seq().unwrap()[0].as_str().unwrap();
    assert!(boot.contains("systemctl enable --now --no-block edgeiso-agent.service"), "{boot}");
    assert!(boot.contains("/var/lib/rancher/k3s/server/manifests"), "{boot}");
    // Bootstrap images reach containerd through k3s' agent/images folder.
    assert!(script.contains(r#"cp -a "$live/edgeiso/images/." "$dest/images/""#), "{script}");
    assert!(
        boot.contains("for f in /usr/local/edgeiso/images/*.tar")
            && boot.contains("/var/lib/rancher/k3s/agent/images/"),
        "{boot}"
    );
    // Holds passwords: private.
    assert_eq!(mode(&out.join("config.yaml")), 0o600);
}

#[test]
fn registry_credential_secrets_decode_field_by_field() {
    let (_site, out, _) = render_full();
    let p = out.join("manifests/registry-credentials.yaml");
    assert_eq!(mode(&p), 0o600);
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(text.matches("\n---\n").count(), 1, "{text}");
    let docs = yaml::parse_all(&text).unwrap();
    assert_eq!(docs.len(), 2);
    let want = [
        ("example-registry", "registry.example.com", "robot", "robot-pass"),
        ("example-charts", "https://charts.example.com", "charts", "charts:pass/with\"odd'chars"),
    ];
    for (d, (name, url, user, pass)) in docs.iter().zip(want) {
        assert_eq!(d.path(&["apiVersion"]).unwrap().as_str(), Some("v1"));
        assert_eq!(d.path(&["kind"]).unwrap().as_str(), Some("Secret"));
        assert_eq!(d.path(&["type"]).unwrap().as_str(), Some("Opaque"));
        assert_eq!(d.path(&["metadata", "name"]).unwrap().as_str(), Some(name));
        let labels = d.path(&["metadata", "labels"]).unwrap().as_map().unwrap();
        assert_eq!(labels.get("spectrocloud.com/registry").unwrap().as_str(), Some("true"));
        assert_eq!(labels.get("spectrocloud.com/copyToTarget").unwrap().as_str(), Some("true"));
        let data = d.path(&["data"]).unwrap().as_map().unwrap();
        assert_eq!(data.0.len(), 3);
        assert_eq!(b64d(data.get("url").unwrap()), url);
        assert_eq!(b64d(data.get("username").unwrap()), user);
        assert_eq!(b64d(data.get("password").unwrap()), pass);
    }
    // Labels are strings "true", quoted in the YAML (a bare true is a boolean).
    assert!(text.contains("spectrocloud.com/registry: \"true\""), "{text}");
}

#[test]
fn harbor_chart_embeds_the_archive_and_values_from_the_spec() {
    let (site, out, report) = render_full();
    let doc = yaml::parse(&std::fs::read_to_string(out.join("manifests/harbor.yaml")).unwrap()).unwrap();
    assert_eq!(doc.path(&["apiVersion"]).unwrap().as_str(), Some("helm.cattle.io/v1"));
    assert_eq!(doc.path(&["kind"]).unwrap().as_str(), Some("HelmChart"));
    assert_eq!(doc.path(&["spec", "targetNamespace"]).unwrap().as_str(), Some("harbor"));
    let content = doc.path(&["spec", "chartContent"]).unwrap().as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(content).unwrap();
    assert_eq!(bytes, std::fs::read(site.path().join("harbor-1.15.0.tgz")).unwrap());
    let values = yaml::parse(doc.path(&["spec", "valuesContent"]).unwrap().as_str().unwrap()).unwrap();
    assert_eq!(values.path(&["expose", "type"]).unwrap().as_str(), Some("nodePort"));
    assert_eq!(values.path(&["expose", "nodePort", "ports", "https", "nodePort"]), Some(&Value::Int(30003)));
    assert_eq!(values.path(&["expose", "tls", "secret", "secretName"]).unwrap().as_str(), Some("harbor-tls"));
    assert_eq!(values.path(&["externalURL"]).unwrap().as_str(), Some("https://127.0.0.1:30003"));
    let pvc = |k: &str| {
        values.path(&["persistence", "persistentVolumeClaim", k, "size"]).unwrap().as_str().unwrap().to_owned()
    };
    assert_eq!(pvc("registry"), "300Gi");
    assert_eq!(pvc("database"), "2Gi");
    assert_eq!(
        values.path(&["persistence", "persistentVolumeClaim", "jobservice", "jobLog", "size"]).unwrap().as_str(),
        Some("1Gi")
    );
    // The chart's images become bootstrap images (trivy is disabled; the
    // database image takes the chart's appVersion).
    let imgs: Vec<String> = report.harbor_images.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        imgs,
        [
            "docker.io/goharbor/harbor-core:v2.11.0",
            "docker.io/goharbor/harbor-db:2.11.0",
            "docker.io/goharbor/harbor-portal:v2.11.0",
            "docker.io/goharbor/nginx-photon:v2.11.0",
            "docker.io/goharbor/registry-photon:v2.11.0",
        ]
    );
    let spec = Spec::load(&site.path().join("site.yaml")).unwrap();
    assert_eq!(edgeiso_installer_config::harbor_images(&spec).unwrap(), report.harbor_images);

    // Secrets for the chart: TLS from the spec, admin password.
    let p = out.join("manifests/harbor-secrets.yaml");
    assert_eq!(mode(&p), 0o600);
    let docs = yaml::parse_all(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(
        docs.iter().map(|d| d.path(&["kind"]).unwrap().as_str().unwrap()).collect::<Vec<_>>(),
        ["Namespace", "Secret", "Secret"]
    );
    assert_eq!(
        b64d(docs[1].path(&["data", "tls.crt"]).unwrap()),
        std::fs::read_to_string(site.path().join("tls/tls.crt")).unwrap()
    );
    assert_eq!(b64d(docs[2].path(&["data", "HARBOR_ADMIN_PASSWORD"]).unwrap()), "Harbor12345");
}

#[test]
fn mirrors_agent_config_and_unit() {
    let (site, out, report) = render_full();
    assert_eq!(report.mirrored_hosts, ["127.0.0.1:5000", "docker.io", "quay.io"]);
    let hosts = std::fs::read_to_string(out.join("containerd/certs.d/docker.io/hosts.toml")).unwrap();
    assert!(hosts.contains("server = \"https://registry-1.docker.io\""), "{hosts}");
    assert!(hosts.contains("[host.\"https://127.0.0.1:30003/v2/spectro-images/docker.io\"]"), "{hosts}");
    assert!(hosts.contains("override_path = true") && hosts.contains("ca = \"/usr/local/edgeiso/site/harbor/ca.crt\""));
    let local = std::fs::read_to_string(out.join("containerd/certs.d/127.0.0.1:5000/hosts.toml")).unwrap();
    assert!(local.contains("server = \"http://127.0.0.1:5000\""), "{local}");
    assert!(local.contains("/v2/spectro-images/127.0.0.1_5000\""), "{local}");

    let reg = yaml::parse(&std::fs::read_to_string(out.join("k3s/registries.yaml")).unwrap()).unwrap();
    assert_eq!(mode(&out.join("k3s/registries.yaml")), 0o644);
    let m = reg.path(&["mirrors", "127.0.0.1:5000"]).unwrap();
    assert_eq!(m.path(&["endpoint"]).unwrap().as_seq().unwrap()[0].as_str(), Some("https://127.0.0.1:30003"));
    assert_eq!(m.path(&["rewrite", "^(.*)$"]).unwrap().as_str(), Some("spectro-images/127.0.0.1_5000/$1"));
    assert_eq!(
        reg.path(&["mirrors", "docker.io", "rewrite", "^(.*)$"]).unwrap().as_str(),
        Some("spectro-images/docker.io/$1")
    );
    let cfg = reg.path(&["configs", "127.0.0.1:30003"]).unwrap();
    assert!(cfg.path(&["auth"]).is_none(), "the agent adds the nodes' credential on the node");
    assert_eq!(cfg.path(&["tls", "ca_file"]).unwrap().as_str(), Some("/usr/local/edgeiso/site/harbor/ca.crt"));
    assert!(!out.join("k3s/config.yaml.d").exists());

    let agent = AgentConfig::from_yaml(&std::fs::read_to_string(out.join("agent.yaml")).unwrap()).unwrap();
    assert_eq!(agent.registry.as_deref(), Some("https://127.0.0.1:30003"));
    assert_eq!(agent.project.as_deref(), Some("spectro-images"));
    assert_eq!(agent.ca.as_deref(), Some(Path::new("/usr/local/edgeiso/site/harbor/ca.crt")));
    assert_eq!(agent.username.as_deref(), Some("admin"));
    assert_eq!(agent.password_file.as_deref(), Some(Path::new("/usr/local/edgeiso/site/harbor/admin-password")));
    assert_eq!(agent.bundles, [PathBuf::from("/usr/local/edgeiso/content")]);
    assert!(!agent.insecure);
    let nm = &agent.node_mirrors;
    assert_eq!(nm.certs_d.as_deref(), Some(Path::new("/usr/local/edgeiso/site/containerd/certs.d")));
    assert_eq!(nm.registries_yaml.as_deref(), Some(Path::new("/usr/local/edgeiso/site/k3s/registries.yaml")));
    assert_eq!(nm.registry_host.as_deref(), Some("127.0.0.1:30003"));
    assert_eq!(
        nm.install_certs_d,
        [PathBuf::from("/etc/containerd/certs.d"), PathBuf::from("/var/lib/rancher/k3s/agent/etc/containerd/certs.d")]
    );
    assert_eq!(nm.install_registries_yaml.as_deref(), Some(Path::new("/etc/rancher/k3s/registries.yaml")));
    assert_eq!(nm.keep_dir.as_deref(), Some(Path::new("/usr/local/edgeiso/state/node-pull")));
    assert!(report.live_agent_config.node_mirrors.is_empty(), "the live system is not the node");
    assert_eq!(std::fs::read_to_string(out.join("harbor/admin-password")).unwrap(), "Harbor12345\n");
    assert_eq!(mode(&out.join("harbor/admin-password")), 0o600);
    assert_eq!(
        std::fs::read_to_string(out.join("harbor/ca.crt")).unwrap(),
        std::fs::read_to_string(site.path().join("tls/ca.crt")).unwrap()
    );
    let unit = std::fs::read_to_string(out.join("systemd/edgeiso-agent.service")).unwrap();
    assert!(unit
        .contains("ExecStart=/usr/local/edgeiso/bin/edgeiso-agent load --config /usr/local/edgeiso/site/agent.yaml"));
    // Every file the report lists exists, and secret ones are 0600.
    for f in report.files.iter() {
        assert_eq!(mode(&out.join(&f.path)), f.mode.bits(), "{}", f.path);
    }
}

/// Reboots do not import the bootstrap archive again: the boot stage opts
/// k3s/RKE2 into skipping unchanged archives (`.cache.json`, created only
/// when absent so their record survives) and copies the archive only when
/// it changed (so its mtime, which the skip keys on, holds).
#[test]
fn the_boot_stage_lets_k3s_skip_an_unchanged_bootstrap_archive() {
    let (_site, out, _) = render_full();
    let c = yaml::parse(&std::fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap();
    let boot = c.path(&["stages", "boot"]).unwrap().as_seq().unwrap();
    let script = boot[0].path(&["commands"]).unwrap().as_seq().unwrap()[0].as_str().unwrap();
    let images = "/var/lib/rancher/k3s/agent/images";
    let cache = format!("[ -e {images}/.cache.json ] || : > {images}/.cache.json");
    let copy = format!("cmp -s \"$f\" \"{images}/$(basename \"$f\")\" || cp \"$f\" {images}/");
    let at = |needle: &str| script.find(needle).unwrap_or_else(|| panic!("{needle} in:\n{script}"));
    assert!(at(&cache) < at(&copy), "the cache file exists before the first archive lands");
    assert_eq!(script.matches(".cache.json ]").count(), 1, "written only where it is absent: k3s' record survives");
}

#[test]
fn core_manifests_pass_kubernetes_validate_strict() {
    if !edgeiso_testkit::tools_present("core_manifests_pass_kubernetes_validate_strict", &["kubernetes-validate"]) {
        return;
    }
    let (_site, out, _) = render_full();
    for rel in ["manifests/registry-credentials.yaml", "manifests/harbor-secrets.yaml"] {
        let o = Command::new("kubernetes-validate").arg("--strict").arg(out.join(rel)).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{rel}: {text}");
        assert!(!text.contains("ERROR") && !text.contains("WARN"), "{rel}: {text}");
    }
    // The validator is not a rubber stamp: a Secret with a stray field fails.
    let bad = out.join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ntype: Opaque\ndatta: {}\n").unwrap();
    assert!(!Command::new("kubernetes-validate").arg("--strict").arg(&bad).output().unwrap().status.success());
}

#[test]
fn minimal_spec_renders_with_generated_tls() {
    let d = tempfile::tempdir().unwrap();
    let text = format!(
        "name: store-042\nimages:\n  - docker.io/library/nginx:1.25\n  - 127.0.0.1:5000/team/app@{DIGEST}\nregistries:\n  - host: 127.0.0.1:5000\n    insecure: true\n"
    );
    let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert!(report.generated_tls);
    assert!(report.harbor_images.is_empty());
    assert!(report.warnings.iter().any(|w| w.contains("no Harbor admin password")), "{:?}", report.warnings);
    assert!(!out.join("manifests/harbor.yaml").exists());
    assert!(!out.join("manifests/registry-credentials.yaml").exists());
    // Harbor from the profile's pack: no Secret of ours (the pack makes
    // `harbor/harbor-tls` itself), its values instead, 0600, no password.
    assert!(!out.join("manifests/harbor-secrets.yaml").exists());
    let pack = out.join(harbor::PACK_VALUES);
    assert_eq!(mode(&pack), 0o600);
    let values = yaml::parse(&std::fs::read_to_string(&pack).unwrap()).unwrap();
    assert!(values.path(&["harbor-config", "auth", "password"]).is_none());
    let certs = values.path(&["harbor-config", "auth", "certs"]).unwrap();
    assert!(certs.path(&["tls.key"]).and_then(Value::as_str).unwrap().contains("PRIVATE KEY"));
    let ca = std::fs::read_to_string(out.join("harbor/ca.crt")).unwrap();
    assert_eq!(certs.path(&["ca.crt"]).and_then(Value::as_str), Some(ca.as_str()));
    // Config without passwords is not secret.
    assert_eq!(mode(&out.join("config.yaml")), 0o644);
    let agent = AgentConfig::from_yaml(&std::fs::read_to_string(out.join("agent.yaml")).unwrap()).unwrap();
    assert_eq!(agent.username, None);

    // The generated certificate: signed by the CA, with Palette's SANs.
    if edgeiso_testkit::tools_present("minimal_spec_renders_with_generated_tls", &["openssl"]) {
        let crt = out.join("tls.crt");
        std::fs::write(&crt, certs.path(&["tls.crt"]).and_then(Value::as_str).unwrap()).unwrap();
        let sans = common::openssl::verified_sans(&out.join("harbor/ca.crt"), &crt, None);
        for want in ["DNS:spectro.registry.local", "IP Address:127.0.0.1"] {
            assert!(sans.contains(want), "{sans}");
        }
    }
}

#[test]
fn generated_certificate_names_the_vip_and_url_host() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("pw"), "x\n").unwrap();
    std::fs::write(d.path().join("chart.tgz"), fake_chart()).unwrap();
    let text = "name: s\nharbor:\n  url: https://harbor.site.example:30003\n  vip: 10.1.2.3\n  adminPasswordFile: pw\n  chart: chart.tgz\n";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    let sans = edgeiso_installer_config::render::tls::sans(&spec);
    assert_eq!(sans[..3], ["spectro.registry.local", "10.1.2.3", "harbor.site.example"]);
    let report = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    assert!(report.generated_tls);
}

#[test]
fn airgap_strict_never_falls_back() {
    let d = tempfile::tempdir().unwrap();
    let text = "name: s\nairgapStrict: true\nkubernetes: {distribution: rke2}\nimages: [nginx:1.25]\n";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    let out = d.path().join("out");
    render_to(&spec, &out, &RenderOptions::default()).unwrap();
    golden("strict", &out.join("containerd"));
    let hosts = std::fs::read_to_string(out.join("containerd/certs.d/docker.io/hosts.toml")).unwrap();
    assert!(hosts.contains("server = \"https://127.0.0.1:30003/v2/spectro-images/docker.io\""), "{hosts}");
    assert!(!hosts.contains("registry-1.docker.io"), "{hosts}");
    // containerd 1.6 ignores a hosts.toml without a host table: the mirror is one too.
    assert!(hosts.contains("[host.\"https://127.0.0.1:30003/v2/spectro-images/docker.io\"]"), "{hosts}");
    let strict = std::fs::read_to_string(out.join("k3s/config.yaml.d/90-edgeiso-airgap.yaml")).unwrap();
    assert_eq!(strict, "disable-default-registry-endpoint: true\n");
    let c = yaml::parse(&std::fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap();
    let files = c.path(&["stages", "initramfs"]).unwrap().as_seq().unwrap()[0]
        .path(&["files"])
        .unwrap()
        .as_seq()
        .unwrap()
        .to_vec();
    let paths: Vec<&str> = files.iter().map(|f| f.path(&["path"]).unwrap().as_str().unwrap()).collect();
    assert!(paths.contains(&"/etc/rancher/rke2/registries.yaml"), "{paths:?}");
    assert!(paths.contains(&"/etc/rancher/rke2/config.yaml.d/90-edgeiso-airgap.yaml"), "{paths:?}");
}

#[test]
fn legacy_agent_gets_installation_mode_airgap() {
    let d = tempfile::tempdir().unwrap();
    let spec = Spec::from_str("name: s\nsite: {legacyAgent: true}\n", &d.path().join("site.yaml")).unwrap();
    render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    let c = yaml::parse(&std::fs::read_to_string(d.path().join("out/config.yaml")).unwrap()).unwrap();
    assert_eq!(c.path(&["stylus", "installationMode"]).unwrap().as_str(), Some("airgap"));
    assert!(c.path(&["stylus", "managementMode"]).is_none());
}

#[test]
fn prerendered_manifests_are_validated_and_copied() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("harbor");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(
        m.join("core.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: harbor-core}\nspec:\n  template:\n    spec:\n      containers:\n        - name: core\n          image: goharbor/harbor-core:v2.11.0\n---\napiVersion: v1\nkind: Service\nmetadata: {name: harbor}\n",
    )
    .unwrap();
    std::fs::write(m.join("notes.txt"), "ignored").unwrap();
    std::fs::copy(Path::new(FIXTURES).join("tls/ca.crt"), d.path().join("ca.crt")).unwrap();
    std::fs::copy(Path::new(FIXTURES).join("tls/tls.crt"), d.path().join("tls.crt")).unwrap();
    std::fs::copy(Path::new(FIXTURES).join("tls/tls.key"), d.path().join("tls.key")).unwrap();
    let text = "name: s\nharbor:\n  manifests: harbor\n  tls: {certFile: tls.crt, keyFile: tls.key, caFile: ca.crt}\n";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert_eq!(
        report.harbor_images.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        ["docker.io/goharbor/harbor-core:v2.11.0"]
    );
    assert_eq!(
        std::fs::read(out.join("manifests/harbor-core.yaml")).unwrap(),
        std::fs::read(m.join("core.yaml")).unwrap()
    );
    assert!(!out.join("manifests/harbor-secrets.yaml").exists());
    assert_eq!(std::fs::read(out.join("harbor/ca.crt")).unwrap(), std::fs::read(d.path().join("ca.crt")).unwrap());

    // A document without a kind is refused, naming the file and the document.
    std::fs::write(m.join("bad.yaml"), "apiVersion: v1\nmetadata: {name: x}\n").unwrap();
    let e = render_to(&spec, &out, &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("bad.yaml") && e.contains("document 1 has no `kind`"), "{e}");
    std::fs::remove_file(m.join("bad.yaml")).unwrap();
    std::fs::write(m.join("broken.yaml"), "kind: [\n").unwrap();
    let e = render_to(&spec, &out, &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("broken.yaml:"), "{e}");
    std::fs::remove_file(m.join("broken.yaml")).unwrap();

    // https without TLS material: nodes could not trust the manifests' certificate.
    let spec = Spec::from_str("name: s\nharbor:\n  manifests: harbor\n", &d.path().join("site.yaml")).unwrap();
    let e = render_to(&spec, &out, &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("give harbor.tls"), "{e}");
}

#[test]
fn user_data_conflicts_name_both_files_unless_the_user_wins() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("user.yaml"),
        "#cloud-config\ninstall:\n  device: /dev/vdb\n  reboot: true\nstylus:\n  site:\n    name: other\n",
    )
    .unwrap();
    let text = "name: s\nuserData: user.yaml\ninstall: {device: /dev/sda}\n";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    let e = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, RenderError::Conflict { .. }));
    let msg = e.to_string();
    assert!(msg.contains("`install.device`") && msg.contains("site.yaml") && msg.contains("user.yaml"), "{msg}");
    assert!(msg.contains("userDataWins"), "{msg}");
    assert!(!msg.contains("/dev/vdb"), "values are not printed (they may be secrets): {msg}");
    assert!(!d.path().join("out").exists(), "nothing written on failure");

    let spec = Spec::from_str(&format!("{text}userDataWins: true\n"), &d.path().join("site.yaml")).unwrap();
    render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    let c = yaml::parse(&std::fs::read_to_string(d.path().join("out/config.yaml")).unwrap()).unwrap();
    assert_eq!(c.path(&["install", "device"]).unwrap().as_str(), Some("/dev/vdb"));
    assert_eq!(c.path(&["stylus", "site", "name"]).unwrap().as_str(), Some("other"));
    assert_eq!(c.path(&["stylus", "managementMode"]).unwrap().as_str(), Some("local"));
}

#[test]
fn user_data_over_one_megabyte_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let big = format!(
        "#cloud-config\nstages:\n  boot:\n    - name: big\n      commands: [\"echo {}\"]\n",
        "x".repeat(1_100_000)
    );
    std::fs::write(d.path().join("user.yaml"), big).unwrap();
    let spec = Spec::from_str("name: s\nuserData: user.yaml\n", &d.path().join("site.yaml")).unwrap();
    let e = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, RenderError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("1 MB"), "{e}");
}

#[test]
fn bad_inputs_give_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("pw"), "x\n").unwrap();
    let spec_at = |text: &str| Spec::from_str(text, &p.join("site.yaml")).unwrap();
    let err =
        |text: &str| render_to(&spec_at(text), &p.join("out"), &RenderOptions::default()).unwrap_err().to_string();

    // A chart that is not a chart.
    std::fs::write(p.join("junk.tgz"), b"not gzip").unwrap();
    let e = err("name: s\nharbor: {chart: junk.tgz, adminPasswordFile: pw}\n");
    assert!(e.contains("junk.tgz") && e.contains("Helm chart"), "{e}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut t = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_cksum();
        t.append_data(&mut h, "harbor/values.yaml", &b"{}"[..]).unwrap();
        t.finish().unwrap();
    }
    std::fs::write(p.join("nochart.tgz"), gz.finish().unwrap()).unwrap();
    let e = err("name: s\nharbor: {chart: nochart.tgz, adminPasswordFile: pw}\n");
    assert!(e.contains("nochart.tgz") && e.contains("no Chart.yaml"), "{e}");

    // A chart without the admin password.
    std::fs::write(p.join("chart.tgz"), fake_chart()).unwrap();
    let e = err("name: s\nharbor: {chart: chart.tgz}\n");
    assert!(e.contains("adminPasswordFile"), "{e}");

    // The password file of a Secret vanished after the spec was read.
    std::fs::write(p.join("gone.pw"), "x\n").unwrap();
    let spec =
        spec_at("name: s\nregistries:\n  - {host: r.example, username: u, passwordFile: gone.pw, secret: {name: r}}\n");
    std::fs::remove_file(p.join("gone.pw")).unwrap();
    let e = render_to(&spec, &p.join("out"), &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("gone.pw") && e.contains("password file"), "{e}");

    // A password from an unset variable.
    let e = err("name: s\nregistries:\n  - {host: r.example, username: u, passwordEnv: EDGEISO_TEST_UNSET_VAR, secret: {name: r}}\n");
    assert!(e.contains("EDGEISO_TEST_UNSET_VAR") && e.contains("not set"), "{e}");

    // A certificate file that is not PEM: refused when the spec is read.
    std::fs::write(p.join("c.pem"), "nope").unwrap();
    let e = Spec::from_str("name: s\nharbor: {tls: {certFile: c.pem, keyFile: c.pem}}\n", &p.join("site.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.pem") && e.contains("no PEM CERTIFICATE") && e.contains("site.yaml:2:"), "{e}");

    // A broken user-data file, refused when the spec is read: the spec's
    // line, the file and its line, but not its lines (they may hold secrets).
    std::fs::write(
        p.join("ud.yaml"),
        "#cloud-config\nstylus:\n  registryCredentials:\n    password: TOPSECRET\n   bad: [\n",
    )
    .unwrap();
    let e = Spec::from_str("name: s\nuserData: ud.yaml\n", &p.join("site.yaml")).unwrap_err().to_string();
    assert!(e.contains("site.yaml:2:") && e.contains("userData") && e.contains("ud.yaml:"), "{e}");
    assert!(!e.contains("TOPSECRET"), "{e}");
}

#[test]
fn rerender_replaces_the_output_whole() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let spec = Spec::from_str("name: s\nimages: [nginx:1, quay.io/a/b:1]\n", &d.path().join("site.yaml")).unwrap();
    render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert!(out.join("containerd/certs.d/quay.io/hosts.toml").exists());
    let spec = Spec::from_str("name: s\nimages: [nginx:1]\n", &d.path().join("site.yaml")).unwrap();
    render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert!(!out.join("containerd/certs.d/quay.io").exists(), "stale files from the last render are gone");
    let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no staging folders left: {leftovers:?}");
}

#[test]
fn render_runs_the_checks_first() {
    let site = full_site();
    let spec = Spec::load(&site.path().join("site.yaml")).unwrap();
    // 300Gi cannot hold 280 GiB + 20%.
    let e = render_to(
        &spec,
        &site.path().join("out"),
        &RenderOptions { bundle_bytes: Some(280 << 30), ..Default::default() },
    )
    .unwrap_err();
    match &e {
        RenderError::Lint(r) => assert!(r.to_string().contains("harbor.storage.registry 300Gi"), "{r}"),
        other => panic!("{other}"),
    }
    assert!(!site.path().join("out").exists());
    // A profile with AlwaysPullImages stops render too.
    std::fs::write(
        site.path().join("profile.yaml"),
        "kube-apiserver-arg:\n  - enable-admission-plugins=AlwaysPullImages,NodeRestriction\n",
    )
    .unwrap();
    let e = render_to(&spec, &site.path().join("out"), &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("profile.yaml:2: AlwaysPullImages"), "{e}");
    let _ = harbor::CHART_DEFAULT_REGISTRY_SIZE;
}

#[test]
fn prerendered_manifests_that_would_share_an_output_name_are_refused() {
    // core.yaml, harbor-core.yaml and core.json all map to manifests/harbor-core.yaml.
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("harbor");
    std::fs::create_dir(&m).unwrap();
    let doc = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n");
    std::fs::write(m.join("core.yaml"), doc("a")).unwrap();
    std::fs::write(m.join("harbor-core.yaml"), doc("b")).unwrap();
    std::fs::write(m.join("core.json"), r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#)
        .unwrap();
    let spec = Spec::from_str(
        "name: s\nharbor:\n  url: http://127.0.0.1:30002\n  manifests: harbor\n",
        &d.path().join("site.yaml"),
    )
    .unwrap();
    let out = d.path().join("out");
    let e = render_to(&spec, &out, &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("core.json") && e.contains("core.yaml") && e.contains("manifests/harbor-core.yaml"), "{e}");
    assert!(!out.exists(), "nothing written");

    // Distinct names render, each once.
    std::fs::remove_file(m.join("core.json")).unwrap();
    std::fs::rename(m.join("harbor-core.yaml"), m.join("portal.yaml")).unwrap();
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    let names: Vec<String> = report.files.iter().map(|f| f.path.clone()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(
        names.contains(&"manifests/harbor-core.yaml".into()) && names.contains(&"manifests/harbor-portal.yaml".into())
    );
}

/// The admin password in every form render could write it (plain, base64
/// alone as in a Secret, base64 of `admin:<pw>` as in a Basic header) is in
/// no rendered file but the two that need it: the agent's password file and
/// the chart's Secret. Node mirror files carry no credential at all: the
/// agent adds the nodes' pull-only one on the node (decision 0012).
#[test]
fn no_admin_password_outside_the_agents_file_and_the_charts_secret() {
    let (_site, out, _) = render_full();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let forms = ["Harbor12345".to_owned(), b64("Harbor12345"), b64("admin:Harbor12345")];
    let mut checked = 0;
    for (rel, bytes) in read_tree(&out) {
        let text = String::from_utf8_lossy(&bytes);
        let holders = ["harbor/admin-password", "manifests/harbor-secrets.yaml"];
        let holds = forms.iter().any(|form| text.contains(form.as_str()));
        assert_eq!(holds, holders.contains(&rel.as_str()), "{rel}: does it hold the admin password?");
        if rel.ends_with("hosts.toml") || rel.ends_with("registries.yaml") {
            assert!(!text.contains("Authorization") && !text.contains("auth:"), "{rel}: {text}");
            assert_eq!(mode(&out.join(&rel)), 0o644, "{rel}");
        }
        checked += 1;
    }
    assert!(checked > 10, "the whole tree was read");
    let c = yaml::parse(&std::fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap();
    let files = c.path(&["stages", "initramfs"]).unwrap().as_seq().unwrap()[1].path(&["files"]).unwrap();
    for f in files.as_seq().unwrap() {
        let path = f.path(&["path"]).unwrap().as_str().unwrap();
        assert_eq!(f.path(&["permissions"]), Some(&Value::Int(0o644)), "{path}");
        assert!(!f.path(&["content"]).unwrap().as_str().unwrap().contains("Authorization"), "{path}");
    }

    // Strict too: the mirror is the server, and still no header.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("pw"), "s3cret\n").unwrap();
    let text = "name: s\nairgapStrict: true\nimages: [nginx:1.25]\nharbor: {adminPasswordFile: pw}\n";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    let p = d.path().join("out/containerd/certs.d/docker.io/hosts.toml");
    let hosts = std::fs::read_to_string(&p).unwrap();
    assert!(!hosts.contains("Authorization") && !hosts.contains("[header]"), "{hosts}");
    let config = std::fs::read_to_string(d.path().join("out/config.yaml")).unwrap();
    assert!(!config.contains("s3cret") && !config.contains(&b64("admin:s3cret")), "{config}");
}

#[test]
fn generated_certificate_dates_follow_source_date_epoch() {
    if !edgeiso_testkit::tools_present("generated_certificate_dates_follow_source_date_epoch", &["openssl"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let spec = Spec::from_str("name: s\n", &d.path().join("site.yaml")).unwrap();
    let dates = |pem: &str| {
        let p = d.path().join("c.pem");
        std::fs::write(&p, pem).unwrap();
        let o =
            Command::new("openssl").args(["x509", "-noout", "-startdate", "-enddate", "-in"]).arg(&p).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    // 1700000000 is 2023-11-14 22:13:20 UTC: valid from the day before, for ten years.
    let t = edgeiso_installer_config::render::tls::material_at(&spec, Some(1_700_000_000)).unwrap();
    assert!(t.generated);
    let want = "notBefore=Nov 13 00:00:00 2023 GMT\nnotAfter=Nov 14 00:00:00 2033 GMT\n";
    assert_eq!(dates(&t.ca_pem), want);
    let secrets = harbor::secrets(&spec, Some(&t), "");
    assert_eq!(dates(&b64d(secrets[1].path(&["data", "tls.crt"]).unwrap())), want);
    let again = edgeiso_installer_config::render::tls::material_at(&spec, Some(1_700_000_000)).unwrap();
    assert_eq!(dates(&again.ca_pem), want);
}
