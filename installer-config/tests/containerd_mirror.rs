//! The rendered `hosts.toml` files, used by a real containerd (Debian's) to
//! pull `docker.io/library/app:1.0` from a real local registry that holds it
//! only under `spectro-images/docker.io/library/app` — the place the agent
//! pushes it to. The upstream is unreachable here, so a successful pull can
//! only have come through the mirror. The registry runs once anonymous and
//! once with htpasswd auth (Harbor's project is private): then the pull
//! works only through the `Authorization` header render writes from the
//! admin password.
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

        if auth {
            // Control: without the admin password (so without the header) the
            // private registry refuses the pull.
            let text =
                format!("name: mirror-test\nimages: [docker.io/library/app:1.0]\nharbor:\n  url: {}\n", reg.url());
            let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
            let out = d.path().join("out-noauth");
            render_to(&spec, &out, &RenderOptions::default()).unwrap();
            let o = pull(&ctrd, &out.join("containerd/certs.d"), "docker.io/library/app:1.0");
            assert!(!o.status.success(), "an anonymous pull from the htpasswd registry must fail");
        } else {
            // Strict: an image the mirror lacks fails, and never reaches an upstream.
            let o = pull(&ctrd, &d.path().join("out-false-true/containerd/certs.d"), "docker.io/library/missing:1.0");
            assert!(!o.status.success());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("registry-1.docker.io"), "{err}");
        }
    }
}

/// With the image-redirect webhook, pods name Harbor itself
/// (`<harbor>/spectro-images/docker.io/library/app:1.0`): the rendered
/// `hosts.toml` for Harbor's own host lets containerd pull that from the
/// private registry (only its `Authorization` header gets through).
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
        let o = pull(&ctrd, &hosts_dir, &reference);
        if password {
            assert!(
                o.status.success(),
                "ctr pull {reference}:\n{}\nhosts.toml:\n{}",
                String::from_utf8_lossy(&o.stderr),
                shown(&toml)
            );
            let listed = ctrd.ctr_ok(&["images", "ls"]);
            let line = listed.lines().find(|l| l.starts_with(&reference)).unwrap_or_else(|| panic!("{listed}"));
            assert!(line.contains(app.digest.as_str()), "{line}");
            ctrd.ctr_ok(&["images", "rm", &reference]);
        } else {
            assert!(!o.status.success(), "without the password's header the private registry refuses");
        }
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
