//! kubeadm sites: the bootstrap script the rendered unit runs
//! (`edgeiso-kubeadm-bootstrap.sh`, from the contract crate as render ships
//! it) against Debian's containerd. It imports the bootstrap bundle (Harbor's
//! own images, an OCI archive as the ISO carries it) into the `k8s.io`
//! namespace once per archive version, and on a node with an admin
//! kubeconfig applies every manifest with server-side apply, failing (for
//! systemd to retry) while the API server does not answer. No API server
//! runs here: `kubectl` is a stand-in that records its arguments and fails
//! on request; containerd and `ctr` are real.
//!
//! Needs root, `containerd` and `ctr` (CI has them): fails, never skips.

mod common;
use common::render_to;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeiso_bundle::Role;
use edgeiso_installer_config::{RenderOptions, Spec};
use edgeiso_testkit::bundles::{write_bundle, Entry};
use edgeiso_testkit::{have, images, Containerd};

fn script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Node {
    d: tempfile::TempDir,
    ctrd: Containerd,
}

impl Node {
    fn p(&self, rel: &str) -> PathBuf {
        self.d.path().join(rel)
    }
    fn run(&self, bootstrap: &Path) -> Output {
        let path = format!("{}:{}", self.p("bin").display(), std::env::var("PATH").unwrap());
        Command::new("sh")
            .arg(bootstrap)
            .env("PATH", path)
            .env("EDGEISO_IMAGES_DIR", self.p("images"))
            .env("EDGEISO_MANIFESTS_DIR", self.p("site/manifests"))
            .env("EDGEISO_IMPORTED_DIR", self.p("state/imported"))
            .env("EDGEISO_KUBECONFIG", self.p("admin.conf"))
            .env("CONTAINERD_ADDRESS", self.ctrd.socket())
            .env("CONTAINERD_SNAPSHOTTER", edgeiso_testkit::containerd::SNAPSHOTTER)
            .output()
            .unwrap()
    }
    fn log(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.p(name)).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

#[test]
fn the_kubeadm_bootstrap_imports_harbors_images_once_and_applies_the_manifests() {
    let missing: Vec<&str> = ["containerd", "ctr"].into_iter().filter(|t| !have(t)).collect();
    assert!(missing.is_empty(), "cannot run: {missing:?} not on PATH (run scripts/install-test-deps.sh)");

    // What render ships for a kubeadm site with Harbor from manifests.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("harbor")).unwrap();
    std::fs::write(
        d.path().join("harbor/core.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: harbor-core, namespace: harbor}\ndata: {a: b}\n",
    )
    .unwrap();
    let text =
        "name: s\nkubernetes: {distribution: kubeadm}\nharbor:\n  url: http://10.0.0.5:30002\n  manifests: harbor\n";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    let out = d.path().join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert!(!report.warnings.iter().any(|w| w.contains("manifests/")), "{:?}", report.warnings);
    let shipped = out.join("kubeadm-bootstrap.sh");
    assert_eq!(std::fs::read_to_string(&shipped).unwrap(), edgeiso_contract::unit::KUBEADM_BOOTSTRAP);
    assert_eq!(
        std::fs::read_to_string(out.join("systemd/edgeiso-kubeadm-bootstrap.service")).unwrap(),
        edgeiso_contract::unit::KUBEADM_UNIT
    );
    // The boot stage installs and starts its unit, and nothing of k3s'.
    let config =
        edgeiso_installer_config::yaml::parse(&std::fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap();
    let boot = config.path(&["stages", "boot"]).unwrap().as_seq().unwrap()[0].path(&["commands"]).unwrap();
    let boot = boot.as_seq().unwrap()[0].as_str().unwrap();
    assert!(boot.contains("systemctl enable --now --no-block edgeiso-kubeadm-bootstrap.service"), "{boot}");
    assert!(!boot.contains("/var/lib/rancher"), "{boot}");
    // A k3s site gets neither.
    let k3s = Spec::from_str("name: s\n", &d.path().join("site.yaml")).unwrap();
    render_to(&k3s, &d.path().join("out-k3s"), &RenderOptions::default()).unwrap();
    assert!(!d.path().join("out-k3s/kubeadm-bootstrap.sh").exists());

    // The node: the bootstrap bundle, the site's manifests, a kubectl
    // stand-in, and ctr wrapped to count imports.
    let node = Node { d: tempfile::tempdir().unwrap(), ctrd: Containerd::start() };
    for dir in ["images", "site/manifests", "bin"] {
        std::fs::create_dir_all(node.p(dir)).unwrap();
    }
    let corpus = images::corpus();
    let core = corpus.iter().find(|i| i.repository == "team/app").unwrap();
    let reference = "docker.io/goharbor/harbor-core:v2.11.0";
    write_bundle(
        &node.p("images"),
        "s-bootstrap",
        &[Entry { image: core, source: reference.into(), role: Role::Bootstrap }],
        None,
    );
    for m in ["harbor-core.yaml", "registry-credentials.yaml"] {
        std::fs::write(node.p("site/manifests").join(m), "kind: ConfigMap\n").unwrap();
    }
    let real_ctr = String::from_utf8(Command::new("sh").args(["-c", "command -v ctr"]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    script(
        &node.p("bin/ctr"),
        &format!("#!/bin/sh\necho \"$*\" >> {}\nexec {real_ctr} \"$@\"\n", node.p("ctr.log").display()),
    );
    script(
        &node.p("bin/kubectl"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> {log}\nif [ -e {down} ]; then echo 'connection refused' >&2; exit 1; fi\n",
            log = node.p("kubectl.log").display(),
            down = node.p("api-down").display()
        ),
    );

    // A worker (no admin kubeconfig): images imported, nothing applied.
    let o = node.run(&shipped);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not a control-plane node"));
    let listed = node.ctrd.ctr_ok(&["--namespace", "k8s.io", "images", "ls"]);
    let line = listed.lines().find(|l| l.starts_with(reference)).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains(core.digest.as_str()), "{line}");
    assert!(node.log("kubectl.log").is_empty());
    let imports = || node.log("ctr.log").iter().filter(|l| l.contains("images import")).count();
    assert_eq!(imports(), 1);

    // The next boot imports nothing; an archive that changed is imported again.
    assert!(node.run(&shipped).status.success());
    assert_eq!(imports(), 1, "an unchanged archive is imported once");
    let archive = std::fs::read_dir(node.p("images")).unwrap().next().unwrap().unwrap().path();
    let f = std::fs::File::options().append(true).open(&archive).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    assert!(node.run(&shipped).status.success());
    assert_eq!(imports(), 2, "a changed archive is imported again");

    // A control-plane node whose API server is not up yet: kubectl fails, so
    // does the script (systemd retries); then it answers and all is applied.
    std::fs::write(node.p("admin.conf"), "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::write(node.p("api-down"), "").unwrap();
    let o = node.run(&shipped);
    assert!(!o.status.success(), "a refused apply fails the run");
    std::fs::remove_file(node.p("api-down")).unwrap();
    std::fs::remove_file(node.p("kubectl.log")).unwrap();
    let o = node.run(&shipped);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let applied = node.log("kubectl.log");
    let conf = node.p("admin.conf").display().to_string();
    for m in ["harbor-core.yaml", "registry-credentials.yaml"] {
        let want = format!(
            "--kubeconfig {conf} apply --server-side --force-conflicts --field-manager=edgeiso -f {}",
            node.p("site/manifests").join(m).display()
        );
        assert!(applied.contains(&want), "{applied:?} lacks {want}");
    }
    assert_eq!(applied.len(), 2);
}
