//! The rendered `hosts.toml` files, used by a real containerd (Debian's) to
//! pull `docker.io/library/app:1.0` from a real local registry that holds it
//! only under `spectro-images/docker.io/library/app` — the place the agent
//! pushes it to. The upstream is unreachable here, so a successful pull can
//! only have come through the mirror.

use edgeiso_installer_config::{render, RenderOptions, Spec};
use edgeiso_testkit::{images, tools_present, Containerd, Registry};

/// Push `image` under another repository name (as the agent would place it in Harbor).
fn push_as(reg: &Registry, image: &images::TestImage, repository: &str) {
    let mut moved = image.clone();
    moved.repository = repository.to_owned();
    images::push(reg, &moved);
}

fn pull(ctrd: &Containerd, hosts_dir: &std::path::Path, reference: &str) -> std::process::Output {
    ctrd.ctr(&["images", "pull", "--hosts-dir", hosts_dir.to_str().unwrap(), reference])
}

#[test]
fn ctr_pulls_through_the_rendered_hosts_toml() {
    if !tools_present("ctr_pulls_through_the_rendered_hosts_toml", &["docker-registry", "containerd", "ctr"]) {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("ctr_pulls_through_the_rendered_hosts_toml: SKIPPED: containerd needs root");
        return;
    }
    let reg = Registry::start();
    let corpus = images::corpus();
    let app = corpus.iter().find(|i| i.repository == "team/app").unwrap();
    let web = corpus.iter().find(|i| i.repository == "team/web").unwrap();
    // Where `edgeiso_bundle::harbor_target` puts them.
    push_as(&reg, app, "spectro-images/docker.io/library/app");
    // An upstream with a port: `:` becomes `_` in the Harbor path.
    push_as(&reg, web, "spectro-images/127.0.0.1_9/team/web");
    assert!(reg.get_manifest("library/app", "1.0").is_none(), "the registry must not hold the upstream path");

    let d = tempfile::tempdir().unwrap();
    let ctrd = Containerd::start();
    for strict in [false, true] {
        let text = format!(
            "name: mirror-test\nairgapStrict: {strict}\nimages:\n  - docker.io/library/app:1.0\n  - 127.0.0.1:9/team/web:2.1\nharbor:\n  url: {}\n",
            reg.url()
        );
        let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
        let out = d.path().join(format!("out-{strict}"));
        render(&spec, &out, &RenderOptions::default()).unwrap();
        let hosts_dir = out.join("containerd/certs.d");

        for (reference, image) in [("docker.io/library/app:1.0", app), ("127.0.0.1:9/team/web:2.1", web)] {
            let o = pull(&ctrd, &hosts_dir, reference);
            assert!(
                o.status.success(),
                "strict={strict}: ctr pull {reference} failed:\n{}\n{}\nhosts.toml:\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                std::fs::read_to_string(hosts_dir.join(reference.split('/').next().unwrap()).join("hosts.toml"))
                    .unwrap()
            );
            let listed = ctrd.ctr_ok(&["images", "ls"]);
            let line = listed.lines().find(|l| l.starts_with(reference)).unwrap_or_else(|| panic!("{listed}"));
            assert!(line.contains(image.digest.as_str()), "{reference} has the pushed digest: {line}");
            ctrd.ctr_ok(&["images", "rm", reference]);
        }
    }

    // Strict: an image the mirror lacks fails, and never reaches an upstream.
    let o = pull(&ctrd, &d.path().join("out-true/containerd/certs.d"), "docker.io/library/missing:1.0");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("registry-1.docker.io"), "{err}");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
