//! The rendered `hosts.toml` files, used by a real containerd (Debian's) to
//! pull `docker.io/library/app:1.0` from a real local registry that holds it
//! only under `spectro-images/docker.io/library/app` — the place the agent
//! pushes it to. The upstream is unreachable here, so a successful pull can
//! only have come through the mirror. The registry runs once anonymous and
//! once with htpasswd auth (Harbor's project is private): then the rendered
//! files alone are refused, even with the admin password in the spec, since
//! render writes no credential (decision 0012); the agent adds the nodes'
//! pull-only one on the node, and `agent/tests/node_mirrors.rs` pulls through
//! the files it installs.
//!
//! Needs root, `docker-registry`, `containerd` and `ctr` (CI has them): it
//! fails, never skips, without them, so a green run always means the pulls
//! were checked.

mod common;
use common::render_to;

use edgeiso_installer_config::{RenderOptions, Spec};
use edgeiso_testkit::{have, images, Containerd, Registry, RegistryOptions};

/// Push `image` under another repository name (as the agent would place it in Harbor).
fn push_as(reg: &Registry, image: &images::TestImage, repository: &str) {
    let mut moved = image.clone();
    moved.repository = repository.to_owned();
    images::push(reg, &moved);
}

fn pull(ctrd: &Containerd, hosts_dir: &std::path::Path, reference: &str) -> std::process::Output {
    ctrd.ctr(&["images", "pull", "--hosts-dir", hosts_dir.to_str().unwrap(), reference])
}

/// A hosts.toml for a failure message, credentials blanked.
fn shown(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| if l.contains("Authorization") { "    Authorization = <redacted>" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn require_environment(test: &str) {
    let missing: Vec<&str> = ["docker-registry", "containerd", "ctr"].into_iter().filter(|t| !have(t)).collect();
    assert!(
        missing.is_empty(),
        "{test}: cannot run: {} not on PATH (run scripts/install-test-deps.sh); this test checks real pulls and does not skip",
        missing.join(", ")
    );
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc_geteuid() };
    assert!(euid == 0, "{test}: cannot run: containerd needs root (euid is {euid}); run the tests as root, as CI does");
}

#[test]
fn ctr_pulls_through_the_rendered_hosts_toml() {
    require_environment("ctr_pulls_through_the_rendered_hosts_toml");
    let corpus = images::corpus();
    let app = corpus.iter().find(|i| i.repository == "team/app").unwrap();
    let web = corpus.iter().find(|i| i.repository == "team/web").unwrap();
    let d = tempfile::tempdir().unwrap();
    let ctrd = Containerd::start();

    for auth in [false, true] {
        let reg = Registry::start_with(RegistryOptions {
            tls: false,
            auth: auth.then(|| ("admin".to_owned(), "Harbor-Test-Pw1".to_owned())),
        });
        // Where `edgeiso_bundle::harbor_target` puts them.
        push_as(&reg, app, "spectro-images/docker.io/library/app");
        // An upstream with a port: `:` becomes `_` in the Harbor path.
        push_as(&reg, web, "spectro-images/127.0.0.1_9/team/web");
        assert!(reg.get_manifest("library/app", "1.0").is_none(), "the registry must not hold the upstream path");
        std::fs::write(d.path().join("admin.pw"), "Harbor-Test-Pw1\n").unwrap();
        let password = if auth { "  adminPasswordFile: admin.pw\n" } else { "" };

        for strict in [false, true] {
            let text = format!(
                "name: mirror-test\nairgapStrict: {strict}\nimages:\n  - docker.io/library/app:1.0\n  - 127.0.0.1:9/team/web:2.1\nharbor:\n  url: {}\n{password}",
                reg.url()
            );
            let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
            let out = d.path().join(format!("out-{auth}-{strict}"));
            render_to(&spec, &out, &RenderOptions::default()).unwrap();
            let hosts_dir = out.join("containerd/certs.d");

            for (reference, image) in [("docker.io/library/app:1.0", app), ("127.0.0.1:9/team/web:2.1", web)] {
                let o = pull(&ctrd, &hosts_dir, reference);
                if auth {
                    // No credential on the ISO: the private registry refuses the rendered file alone.
                    assert!(!o.status.success(), "auth: {reference} pulled without a credential");
                    assert!(!shown(&hosts_dir.join(reference.split('/').next().unwrap()).join("hosts.toml"))
                        .contains("Authorization"));
                    continue;
                }
                assert!(
                    o.status.success(),
                    "auth={auth} strict={strict}: ctr pull {reference} failed:\n{}\n{}\nhosts.toml:\n{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr),
                    shown(&hosts_dir.join(reference.split('/').next().unwrap()).join("hosts.toml"))
                );
                let listed = ctrd.ctr_ok(&["images", "ls"]);
                let line = listed.lines().find(|l| l.starts_with(reference)).unwrap_or_else(|| panic!("{listed}"));
                assert!(line.contains(image.digest.as_str()), "{reference} has the pushed digest: {line}");
                ctrd.ctr_ok(&["images", "rm", reference]);
            }
        }

        if !auth {
            // Strict: an image the mirror lacks fails, and never reaches an upstream.
            let o = pull(&ctrd, &d.path().join("out-false-true/containerd/certs.d"), "docker.io/library/missing:1.0");
            assert!(!o.status.success());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("registry-1.docker.io"), "{err}");
        }
    }
}

/// With the image-redirect webhook, pods name Harbor itself
/// (`<harbor>/spectro-images/docker.io/library/app:1.0`): render writes a
/// `hosts.toml` for Harbor's own host, without a credential even when the
/// spec gives the admin password (the private registry refuses it alone);
/// the agent adds the nodes' credential (`agent/tests/node_mirrors.rs`).
#[test]
fn ctr_pulls_the_webhooks_harbor_reference_with_the_rendered_hosts_toml() {
    require_environment("ctr_pulls_the_webhooks_harbor_reference_with_the_rendered_hosts_toml");
    let corpus = images::corpus();
    let app = corpus.iter().find(|i| i.repository == "team/app").unwrap();
    let d = tempfile::tempdir().unwrap();
    let ctrd = Containerd::start();
    let reg = Registry::start_with(RegistryOptions {
        tls: false,
        auth: Some(("admin".to_owned(), "Harbor-Test-Pw1".to_owned())),
    });
    push_as(&reg, app, "spectro-images/docker.io/library/app");
    std::fs::write(d.path().join("admin.pw"), "Harbor-Test-Pw1\n").unwrap();
    let reference = format!("{}/spectro-images/docker.io/library/app:1.0", reg.host());
    for password in [true, false] {
        let text = format!(
            "name: webhook-test\nimages: [docker.io/library/app:1.0]\nsite: {{imageRedirectWebhook: true}}\nharbor:\n  url: {}\n{}",
            reg.url(),
            if password { "  adminPasswordFile: admin.pw\n" } else { "" }
        );
        let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
        let out = d.path().join(format!("out-{password}"));
        render_to(&spec, &out, &RenderOptions::default()).unwrap();
        let hosts_dir = out.join("containerd/certs.d");
        let toml = hosts_dir.join(reg.host()).join("hosts.toml");
        assert!(toml.is_file(), "a hosts.toml for Harbor's own host");
        assert!(std::fs::read_to_string(&toml).unwrap().contains("capabilities = [\"pull\", \"resolve\"]"));
        assert!(!shown(&toml).contains("Authorization"), "password={password}");
        let o = pull(&ctrd, &hosts_dir, &reference);
        assert!(!o.status.success(), "password={password}: no credential on the ISO: the private registry refuses");
    }
}

/// kubeadm sites (Palette PXK-E): no k3s/RKE2 to read `registries.yaml`, so
/// render writes the containerd drop-in that sets CRI's `config_path` to
/// `/etc/containerd/certs.d`, and the `hosts.toml` files there. Debian's
/// containerd merges the rendered drop-in (its `config dump` shows the
/// path; without the drop-in it is empty), and pulls through the files the
/// user-data installs at that path. What is not run here: a CRI pull (no
/// CRI client on these machines); `ctr` reads the same `hosts.toml` code.
#[test]
fn kubeadm_containerd_reads_the_rendered_config_path_and_pulls_through_it() {
    require_environment("kubeadm_containerd_reads_the_rendered_config_path_and_pulls_through_it");
    let corpus = images::corpus();
    let app = corpus.iter().find(|i| i.repository == "team/app").unwrap();
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::start_with(RegistryOptions { tls: false, auth: None });
    push_as(&reg, app, "spectro-images/docker.io/library/app");
    let text = format!(
        "name: kubeadm-site\nkubernetes: {{distribution: kubeadm}}\nimages: [docker.io/library/app:1.0]\nharbor:\n  url: {}\n",
        reg.url()
    );
    let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    // manifests/ and the bootstrap images: the kubeadm bootstrap unit
    // (tests/kubeadm_bootstrap.rs), so nothing to warn about.
    assert!(!report.warnings.iter().any(|w| w.contains("manifests/")), "{:?}", report.warnings);
    assert!(!out.join("k3s").exists(), "no registries.yaml (nor the k3s strict drop-in) on kubeadm");
    assert!(!out.join("manifests/harbor.yaml").exists(), "no HelmChart on kubeadm");
    let drop_in = out.join("containerd/conf.d/90-edgeiso-registry.toml");
    // The node's agent installs into containerd's certs.d only.
    let agent =
        edgeiso_contract::AgentConfig::from_yaml(&std::fs::read_to_string(out.join("agent.yaml")).unwrap()).unwrap();
    let nm = agent.node_mirrors;
    assert_eq!(nm.install_certs_d, [std::path::PathBuf::from("/etc/containerd/certs.d")]);
    assert!(nm.registries_yaml.is_none() && nm.install_registries_yaml.is_none(), "{nm:?}");

    // Debian's containerd merges the drop-in: CRI's config_path is set.
    let dump = |imports: &str| {
        let main = d.path().join("main.toml");
        let root = d.path().join("root");
        std::fs::write(&main, format!("version = 2\nimports = [{imports}]\nroot = {root:?}\nstate = {root:?}\n"))
            .unwrap();
        let o = std::process::Command::new("containerd")
            .arg("--config")
            .arg(&main)
            .args(["config", "dump"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let config_path = |dump: &str| {
        let cri = dump.split("[plugins.\"io.containerd.grpc.v1.cri\".registry]").nth(1).expect("CRI registry table");
        let line = cri.lines().find(|l| l.trim_start().starts_with("config_path")).expect("config_path");
        line.split('"').nth(1).unwrap_or_default().to_owned()
    };
    assert_eq!(config_path(&dump("")), "", "containerd 1.6's own default: no hosts.toml for CRI");
    let merged = dump(&format!("{:?}", drop_in.to_str().unwrap()));
    assert_eq!(config_path(&merged), "/etc/containerd/certs.d");

    // The user-data installs the drop-in and the hosts.toml files there, and no registries.yaml.
    let config =
        edgeiso_installer_config::yaml::parse(&std::fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap();
    let stages = config.path(&["stages", "initramfs"]).unwrap().as_seq().unwrap();
    let files = stages.iter().find_map(|s| s.path(&["files"])).unwrap().as_seq().unwrap();
    let node = d.path().join("node");
    for f in files {
        let path = f.path(&["path"]).unwrap().as_str().unwrap();
        assert!(!path.contains("rancher"), "{path}");
        let content = f.path(&["content"]).unwrap().as_str().unwrap();
        let at = node.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, content).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(node.join("etc/containerd/conf.d/90-edgeiso-registry.toml")).unwrap(),
        std::fs::read_to_string(&drop_in).unwrap()
    );
    let ctrd = Containerd::start();
    let hosts_dir = node.join(config_path(&merged).trim_start_matches('/'));
    let o = pull(&ctrd, &hosts_dir, "docker.io/library/app:1.0");
    assert!(o.status.success(), "ctr pull through {}: {}", hosts_dir.display(), String::from_utf8_lossy(&o.stderr));
    let listed = ctrd.ctr_ok(&["images", "ls"]);
    assert!(listed.lines().any(|l| l.starts_with("docker.io/library/app:1.0") && l.contains(app.digest.as_str())));

    // harbor.chart needs the HelmChart controller: refused, naming the line.
    std::fs::write(d.path().join("chart.tgz"), b"x").unwrap();
    let text = "name: s\nkubernetes:\n  distribution: kubeadm\nharbor:\n  chart: chart.tgz\n";
    let e = Spec::from_str(text, &d.path().join("site.yaml")).unwrap_err().to_string();
    assert!(e.contains("site.yaml:5") && e.contains("harbor.chart") && e.contains("kubeadm"), "{e}");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
