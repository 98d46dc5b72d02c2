//! The nodes' pull credential (decision 0012), against the Harbor double
//! with a real registry behind it: at its first run the agent makes a
//! pull-only robot account and installs render's mirror files (the golden
//! ones of `installer-config/tests/golden/full-site`, pointed at the double)
//! with it, 0600; Debian's containerd pulls through them as the robot; the
//! robot cannot push; a later run reuses it; a robot Harbor no longer
//! accepts is replaced. Against a plain registry the files carry the agent's
//! own credentials.
//!
//! Needs root (containerd), `docker-registry`, `containerd` and `ctr`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::harbor::{HarborDouble, HarborOptions};
use common::*;
use edgeiso_contract::agent_config::NodeMirrorsConfig;
use edgeiso_contract::AgentConfig;
use edgeiso_testkit::{corpus, Containerd, Registry, RegistryOptions};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../installer-config/tests/golden/full-site");
const ADMIN_PW: &str = "Harbor12345";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Render's golden mirror files, pointed at `url` (plain HTTP: no CA line).
fn site_from_golden(site: &Path, url: &str, host: &str) {
    let certs = site.join("containerd/certs.d/docker.io");
    std::fs::create_dir_all(&certs).unwrap();
    let hosts = std::fs::read_to_string(format!("{GOLDEN}/containerd/certs.d/docker.io/hosts.toml")).unwrap();
    let hosts: Vec<&str> = hosts.lines().filter(|l| !l.trim_start().starts_with("ca = ")).collect();
    std::fs::write(certs.join("hosts.toml"), hosts.join("\n").replace("https://127.0.0.1:30003", url)).unwrap();
    // With the image-redirect webhook render also writes one for Harbor's
    // own host (`mirrors::harbor_hosts_toml`): its `server` is the registry.
    let own = site.join("containerd/certs.d").join(host);
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(
        own.join("hosts.toml"),
        format!("# Pulls that name the site Harbor.\nserver = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
    )
    .unwrap();
    let reg = std::fs::read_to_string(format!("{GOLDEN}/k3s/registries.yaml")).unwrap();
    std::fs::create_dir_all(site.join("k3s")).unwrap();
    std::fs::write(
        site.join("k3s/registries.yaml"),
        reg.replace("https://127.0.0.1:30003", url).replace("127.0.0.1:30003", host),
    )
    .unwrap();
}

struct Node {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Node {
    fn etc_certs(&self) -> PathBuf {
        self.dir.path().join("etc/containerd/certs.d")
    }
    fn k3s_certs(&self) -> PathBuf {
        self.dir.path().join("var/lib/rancher/k3s/agent/etc/containerd/certs.d")
    }
    fn registries_yaml(&self) -> PathBuf {
        self.dir.path().join("etc/rancher/k3s/registries.yaml")
    }
    fn keep(&self) -> PathBuf {
        self.dir.path().join("state/node-pull")
    }
    fn installed(&self) -> Vec<PathBuf> {
        vec![
            self.etc_certs().join("docker.io/hosts.toml"),
            self.k3s_certs().join("docker.io/hosts.toml"),
            self.registries_yaml(),
        ]
    }
}

/// A node's agent.yaml as render writes it, its paths in a temp dir.
fn node(url: &str, host: &str, bundle: &Path, password: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    site_from_golden(&site, url, host);
    let pw = site.join("admin-password");
    std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
    let d = dir.path();
    let cfg = AgentConfig {
        registry: Some(url.into()),
        project: Some(PROJECT.into()),
        username: password.then(|| "admin".into()),
        password_file: password.then_some(pw),
        bundles: vec![bundle.to_owned()],
        state_dir: Some(d.join("state")),
        wait_timeout: Some(std::time::Duration::from_secs(20)),
        node_mirrors: NodeMirrorsConfig {
            certs_d: Some(site.join("containerd/certs.d")),
            registries_yaml: Some(site.join("k3s/registries.yaml")),
            registry_host: Some(host.into()),
            install_certs_d: vec![
                d.join("etc/containerd/certs.d"),
                d.join("var/lib/rancher/k3s/agent/etc/containerd/certs.d"),
            ],
            install_registries_yaml: Some(d.join("etc/rancher/k3s/registries.yaml")),
            keep_dir: Some(d.join("state/node-pull")),
        },
        ..Default::default()
    };
    let config = d.join("agent.yaml");
    std::fs::write(&config, cfg.to_yaml()).unwrap();
    Node { dir, config }
}

fn load(node: &Node) -> std::process::Output {
    let mut c = agent();
    c.arg("load").arg("--config").arg(&node.config);
    run(c)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bundle_of_corpus(dir: &Path) -> (Vec<edgeiso_testkit::TestImage>, PathBuf) {
    let images = corpus();
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    let bundle = write_bundle(dir, "site", &entries, None).remove(0);
    (images, bundle)
}

fn pull(ctrd: &Containerd, hosts_dir: &Path, reference: &str) -> std::process::Output {
    ctrd.ctr(&["images", "pull", "--hosts-dir", hosts_dir.to_str().unwrap(), reference])
}

/// The status Harbor answers `method url` with the Basic credential `basic`.
fn status(method: reqwest::Method, url: &str, basic: &str) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        c.request(method, url).header("authorization", format!("Basic {basic}")).send().await.unwrap().status().as_u16()
    })
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc_geteuid() };
    assert!(euid == 0, "containerd needs root (euid is {euid}); run the tests as root, as CI does");
}

#[test]
fn a_pull_only_robot_serves_the_nodes_and_is_reused_until_harbor_refuses_it() {
    require_root();
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (images, bundle) = bundle_of_corpus(work.path());
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions {
            credentials: Some(("admin".into(), ADMIN_PW.into())),
            robot_name_prefix: Some("bot@".into()),
            ..Default::default()
        },
    );
    let host = harbor.url.trim_start_matches("http://").to_owned();
    let node = node(&harbor.url, &host, &bundle, true);

    // First boot: the project, then one robot, then the pushes.
    let out = load(&node);
    assert_eq!(out.status.code(), Some(0));
    let reqs = harbor.requests();
    let robot_posts = |r: &[String]| r.iter().filter(|r| r.starts_with("POST /api/v2.0/robots")).count();
    assert_eq!(robot_posts(&reqs), 1, "{reqs:#?}");
    let robots = harbor.robots();
    assert_eq!(robots.len(), 1);
    let robot = robots[0].clone();
    assert!(robot.name.starts_with("bot@spectro-images+edgeiso-nodes-"), "the name Harbor answered: {}", robot.name);
    assert_eq!(robot.project, PROJECT);

    // Installed 0600, with the robot's credential and never the admin's.
    let robot_basic = b64(&format!("{}:{}", robot.name, robot.secret));
    for f in node.installed() {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
        let text = read(&f);
        assert!(!text.contains(ADMIN_PW) && !text.contains(&b64(&format!("admin:{ADMIN_PW}"))), "{}", f.display());
        let kept = edgeiso_contract::paths::node::kept_copy(&node.keep(), &f);
        assert_eq!(read(&kept), text, "the boot stages' copy of {}", f.display());
        assert_eq!(mode(&kept), 0o600);
    }
    let hosts = read(&node.etc_certs().join("docker.io/hosts.toml"));
    assert_eq!(hosts.matches(&format!("Authorization = [\"Basic {robot_basic}\"]")).count(), 1, "{hosts}");
    let yaml: serde_json::Value = serde_saphyr::from_str(&read(&node.registries_yaml())).unwrap();
    assert_eq!(yaml["configs"][&host]["auth"]["username"], robot.name.as_str());
    assert_eq!(yaml["configs"][&host]["auth"]["password"], robot.secret.as_str());
    assert_eq!(yaml["mirrors"]["docker.io"]["rewrite"]["^(.*)$"], "spectro-images/docker.io/$1");
    assert_eq!(mode(&node.keep()), 0o700);
    assert_eq!(mode(&node.keep().join("credential.json")), 0o600);

    // Debian's containerd pulls through the installed file, as the robot.
    let ctrd = Containerd::start();
    let app = &images[0];
    let reference = format!("docker.io/{}", app.reference());
    let o = pull(&ctrd, &node.etc_certs(), &reference);
    assert!(o.status.success(), "ctr pull {reference}: {}", String::from_utf8_lossy(&o.stderr));
    let listed = ctrd.ctr_ok(&["images", "ls"]);
    assert!(listed.lines().any(|l| l.starts_with(&reference) && l.contains(app.digest.as_str())), "{listed}");
    ctrd.ctr_ok(&["images", "rm", &reference]);
    // And a reference that names Harbor itself (the webhook's).
    let own = format!("{host}/{PROJECT}/{reference}");
    let o = pull(&ctrd, &node.etc_certs(), &own);
    assert!(o.status.success(), "ctr pull {own}: {}", String::from_utf8_lossy(&o.stderr));
    ctrd.ctr_ok(&["images", "rm", &own]);

    // The robot may pull and nothing else: a push is refused.
    let push = status(
        reqwest::Method::POST,
        &format!("{}/v2/{PROJECT}/docker.io/evil/blobs/uploads/", harbor.url),
        &robot_basic,
    );
    assert_eq!(push, 403);
    let other = status(reqwest::Method::GET, &format!("{}/v2/other/x/manifests/1", harbor.url), &robot_basic);
    assert_eq!(other, 403, "no other project");

    // Second boot: the stored robot is still accepted: reused, files unchanged.
    let before = harbor.requests().len();
    let first = node.installed().iter().map(|f| read(f)).collect::<Vec<_>>();
    let out = load(&node);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(robot_posts(&harbor.requests()[before..]), 0, "reused");
    assert_eq!(node.installed().iter().map(|f| read(f)).collect::<Vec<_>>(), first);

    // An administrator deletes it: the next run makes a new one.
    harbor.revoke_robots();
    let before = harbor.requests().len();
    let out = load(&node);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(robot_posts(&harbor.requests()[before..]), 1);
    let new = harbor.robots().remove(0);
    assert_ne!(new.name, robot.name);
    let hosts = read(&node.etc_certs().join("docker.io/hosts.toml"));
    assert!(hosts.contains(&b64(&format!("{}:{}", new.name, new.secret))) && !hosts.contains(&robot_basic), "{hosts}");
    let o = pull(&ctrd, &node.etc_certs(), &reference);
    assert!(o.status.success(), "ctr pull with the new robot: {}", String::from_utf8_lossy(&o.stderr));
    // Secrets stay out of the agent's output.
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains(&new.secret) && !all.contains(ADMIN_PW), "{all}");
}

/// A plain registry has no API to make a pull-only account: the nodes get
/// the agent's own credentials (the registry's, from the spec), still only
/// on the node and 0600; containerd pulls through them.
#[test]
fn against_a_plain_registry_the_nodes_get_the_agents_credentials() {
    require_root();
    let reg = Registry::start_with(RegistryOptions { tls: false, auth: Some(("admin".into(), ADMIN_PW.into())) });
    let work = tempfile::tempdir().unwrap();
    let (images, bundle) = bundle_of_corpus(work.path());
    let node = node(&reg.url(), &reg.host(), &bundle, true);
    let out = load(&node);
    assert_eq!(out.status.code(), Some(0));
    let admin_basic = b64(&format!("admin:{ADMIN_PW}"));
    for f in node.installed() {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert!(read(&node.etc_certs().join("docker.io/hosts.toml")).contains(&admin_basic));
    assert!(!node.keep().join("credential.json").exists(), "no robot on a plain registry");
    let ctrd = Containerd::start();
    let reference = format!("docker.io/{}", images[0].reference());
    let o = pull(&ctrd, &node.etc_certs(), &reference);
    assert!(o.status.success(), "ctr pull {reference}: {}", String::from_utf8_lossy(&o.stderr));
}

/// With `/v2/` wanting Bearer tokens, the stored robot is checked through
/// the token service with its own credentials: accepted, it is reused.
#[test]
fn the_stored_robot_is_checked_through_the_token_flow() {
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (_, bundle) = bundle_of_corpus(work.path());
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions { credentials: Some(("admin".into(), ADMIN_PW.into())), bearer: true, ..Default::default() },
    );
    let host = harbor.url.trim_start_matches("http://").to_owned();
    let node = node(&harbor.url, &host, &bundle, true);
    assert_eq!(load(&node).status.code(), Some(0));
    assert_eq!(harbor.robots().len(), 1);
    assert_eq!(harbor.robot_tokens(), 0, "a new robot is not checked");
    let before = harbor.requests().len();
    assert_eq!(load(&node).status.code(), Some(0));
    let again = harbor.requests()[before..].to_vec();
    assert!(!again.iter().any(|r| r.starts_with("POST /api/v2.0/robots")), "{again:#?}");
    assert!(harbor.robot_tokens() >= 1, "the robot itself was checked: {again:#?}");
    assert_eq!(harbor.robots().len(), 1);
}

/// Answers no Harbor gives: nothing is installed, the run stops before
/// pushing with the request named, and nothing of the answer that could be
/// a secret is printed.
#[test]
fn hostile_robot_answers_install_nothing() {
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (_, bundle) = bundle_of_corpus(work.path());
    let huge = format!(r#"{{"name":"robot$x","secret":"{}"}}"#, "S".repeat(1 << 20));
    for (status, body, code) in [
        (201, r#"{"name":"robot$spectro-images+x"}"#.to_owned(), 4),
        (201, r#"{"name":"","secret":"Leaked-Secret-1"}"#.to_owned(), 4),
        (201, huge, 4),
        (201, "<html>not json</html>".to_owned(), 4),
        (403, r#"{"errors":[{"code":"FORBIDDEN","message":"no"}]}"#.to_owned(), 5),
    ] {
        let harbor = HarborDouble::start(
            &reg.url(),
            HarborOptions {
                credentials: Some(("admin".into(), ADMIN_PW.into())),
                robot_answer: Some((status, body.clone())),
                ..Default::default()
            },
        );
        let host = harbor.url.trim_start_matches("http://").to_owned();
        let node = node(&harbor.url, &host, &bundle, true);
        let out = load(&node);
        assert_eq!(out.status.code(), Some(code), "{status} {}", &body[..body.len().min(60)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("POST /api/v2.0/robots"), "{err}");
        assert!(!err.contains("Leaked-Secret-1") && !err.contains("SSSSSSSS"), "{err}");
        assert!(!node.etc_certs().exists() && !node.registries_yaml().exists(), "nothing installed");
        assert!(!node.keep().join("credential.json").exists());
        assert!(!harbor.requests().iter().any(|r| r.contains("/blobs/uploads/")), "nothing pushed");
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
