//! `edgeiso-agent webhook` against what the API server sends and what
//! containerd does with the answer: AdmissionReview bodies built from the v1
//! schema, over real TLS on loopback; the JSONPatch applied with the
//! json-patch library; the rewritten references pulled by Debian's
//! containerd from a real registry that holds the Harbor paths (filled by
//! `edgeiso-agent load`, as on a node). No Kubernetes API server runs here:
//! the request-in, patch-out contract is what is tested, and the answer's
//! bytes are pinned in `agent/src/webhook/review.rs`.
//!
//! Needs root, `docker-registry`, `containerd` and `ctr` (CI has them).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{agent, load_cmd, run, write_bundle, Entry};
use edgeiso_bundle::Role;
use edgeiso_testkit::registry::write_tls_material;
use edgeiso_testkit::{free_port, images, Containerd, Registry};
use serde_json::{json, Value};

/// A running webhook; killed on drop.
struct Webhook {
    child: Child,
    port: u16,
    client: reqwest::Client,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    async fn start(registry: &str, bundles: &[&Path], state: &Path, tls_dir: &Path) -> Webhook {
        let ca = write_tls_material(tls_dir);
        let port = free_port();
        let mut c = agent();
        c.args(["webhook", "--registry", registry, "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(tls_dir.join("server.crt"))
            .arg("--tls-key")
            .arg(tls_dir.join("server.key"))
            .arg("--state-dir")
            .arg(state)
            .stdout(Stdio::null());
        for b in bundles {
            c.arg("--bundle").arg(b);
        }
        let child = c.spawn().expect("start the webhook");
        let tls = edgeiso_agent::tls::client_config(Some(&ca), false).unwrap();
        let client = reqwest::Client::builder().tls_backend_preconfigured(tls).no_proxy().build().unwrap();
        let w = Webhook { child, port, client };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = w.client.get(w.url("/healthz")).send().await {
                assert_eq!(r.status(), 200);
                return w;
            }
            assert!(Instant::now() < deadline, "the webhook did not come up on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        // By name: the certificate covers 127.0.0.1 and localhost.
        format!("https://localhost:{}{path}", self.port)
    }

    async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, Vec<u8>) {
        let r = self
            .client
            .post(self.url("/mutate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the webhook answers");
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    /// The response of a review of `pod`, and the pod with its patch applied.
    async fn review(&self, uid: &str, pod: &Value) -> (Value, Value) {
        let (status, body) = self.post(serde_json::to_vec(&review(uid, pod)).unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let resp = &answer["response"];
        assert_eq!(resp["uid"], uid, "the uid is echoed");
        assert_eq!(resp["allowed"], true, "never blocks a pod");
        let mut patched = pod.clone();
        if let Some(p) = resp["patch"].as_str() {
            assert_eq!(resp["patchType"], "JSONPatch");
            let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            json_patch::patch(&mut patched, &patch).expect("the patch applies to the pod");
        }
        (resp.clone(), patched)
    }
}

/// A Pod as the API server has it at admission (defaults applied).
fn pod(name: &str, init: &[&str], containers: &[&str], ephemeral: &[&str]) -> Value {
    let c = |prefix: &str, images: &[&str]| -> Vec<Value> {
        images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                json!({"name": format!("{prefix}{i}"), "image": img, "imagePullPolicy": "IfNotPresent",
                       "resources": {}, "terminationMessagePath": "/dev/termination-log",
                       "terminationMessagePolicy": "File"})
            })
            .collect()
    };
    let mut spec = json!({
        "containers": c("c", containers),
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "securityContext": {}, "schedulerName": "default-scheduler",
        "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    });
    if !init.is_empty() {
        spec["initContainers"] = Value::Array(c("i", init));
    }
    if !ephemeral.is_empty() {
        spec["ephemeralContainers"] = Value::Array(c("e", ephemeral));
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name},
                     "creationTimestamp": null, "managedFields": [{"manager": "kubectl-create", "operation": "Update",
                     "apiVersion": "v1", "time": "2026-12-05T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]},
        "spec": spec,
        "status": {}
    })
}

/// An AdmissionReview (admission.k8s.io/v1) as kube-apiserver sends it for a pod CREATE.
fn review(uid: &str, pod: &Value) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "5b3a6a1e-0f0e-4c7b-9d59-1b2f0c1b7e11",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kube-controller-manager"}
        }
    })
}

fn images_of(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .map(|cs| cs.iter().map(|c| c["image"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn require_environment(test: &str) {
    let missing: Vec<&str> =
        ["docker-registry", "containerd", "ctr"].into_iter().filter(|t| !edgeiso_testkit::have(t)).collect();
    assert!(missing.is_empty(), "{test}: {} not on PATH (run scripts/install-test-deps.sh)", missing.join(", "));
}

/// A registry filled the way a node's is: bundles loaded by the agent.
struct Site {
    reg: Registry,
    dir: tempfile::TempDir,
    corpus: Vec<images::TestImage>,
}

impl Site {
    fn new() -> Site {
        Site { reg: Registry::start(), dir: tempfile::tempdir().unwrap(), corpus: images::corpus() }
    }
    fn image(&self, repo: &str) -> &images::TestImage {
        self.corpus.iter().find(|i| i.repository == repo).unwrap()
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    /// Write bundle `name` with `entries` (image repository, source, role) and load it.
    fn load(&self, name: &str, entries: &[(&str, &str, Role)]) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let entries: Vec<Entry<'_>> = entries
            .iter()
            .map(|(repo, source, role)| Entry { image: self.image(repo), source: (*source).into(), role: *role })
            .collect();
        let path = write_bundle(&dir, name, &entries, None).remove(0);
        let out = run(load_cmd(&self.reg.url(), &path, &self.state(), &[]));
        assert_eq!(out.status.code(), Some(0), "load {name}");
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_redirected_to_what_harbor_holds_and_containerd_pulls_the_rewrite() {
    require_environment("pods_are_redirected_to_what_harbor_holds_and_containerd_pulls_the_rewrite");
    let site = Site::new();
    let host = site.reg.host();
    // team/raw is a workload image of one bundle and a bootstrap image of
    // another: it is in Harbor, and still never redirected.
    let b1 = site.load(
        "shop",
        &[
            ("team/app", "docker.io/team/app:1.0", Role::Workload),
            ("team/web", "quay.io/team/web:2.1", Role::Workload),
            ("team/raw", "docker.io/team/raw:1.0", Role::Workload),
        ],
    );
    let b2 = site.load("cni", &[("team/raw", "docker.io/team/raw:1.0", Role::Bootstrap)]);
    let tls = tempfile::tempdir().unwrap();
    let hook = Webhook::start(&site.reg.url(), &[&b1, &b2], &site.state(), tls.path()).await;

    let web_digest = site.image("team/web").digest.to_string();
    let pinned_web = format!("quay.io/team/web:2.1@{web_digest}");
    let unknown_digest = format!("quay.io/team/web@sha256:{}", "0".repeat(64));
    let already = format!("{host}/spectro-images/docker.io/team/app:1.0");
    let p = pod(
        "checkout",
        &["team/app:1.0"],
        &[&pinned_web, "redis:7", "docker.io/team/raw:1.0", &already, &unknown_digest, "team/app:2.0"],
        &["docker.io/team/app:1.0"],
    );
    let (resp, patched) = hook.review("0df28fbd-5f5f-11e8-9d00-0242ac110002", &p).await;
    assert_eq!(resp["patchType"], "JSONPatch");
    assert_eq!(images_of(&patched, "initContainers"), [format!("{host}/spectro-images/docker.io/team/app:1.0")]);
    assert_eq!(
        images_of(&patched, "containers"),
        [
            format!("{host}/spectro-images/quay.io/team/web:2.1@{web_digest}"),
            "redis:7".into(),                // not in Harbor
            "docker.io/team/raw:1.0".into(), // bootstrap: never
            already.clone(),                 // already Harbor's
            unknown_digest.clone(),          // a digest Harbor does not hold
            "team/app:2.0".into(),           // a tag Harbor does not hold
        ]
    );
    assert_eq!(images_of(&patched, "ephemeralContainers"), [format!("{host}/spectro-images/docker.io/team/app:1.0")]);
    // Nothing but the images changed.
    let mut back = patched.clone();
    for (field, original) in [("initContainers", &p), ("containers", &p), ("ephemeralContainers", &p)] {
        for (i, c) in original["spec"][field].as_array().unwrap().iter().enumerate() {
            back["spec"][field][i]["image"] = c["image"].clone();
        }
    }
    assert_eq!(back, p);

    // Idempotent: the patched pod gets no patch (no double rewrite).
    let (resp, again) = hook.review("second", &patched).await;
    assert!(resp.get("patch").is_none() && resp.get("patchType").is_none(), "{resp}");
    assert_eq!(again, patched);

    // The rewritten references are pullable: containerd pulls them from the registry.
    let ctrd = Containerd::start();
    for image in [images_of(&patched, "initContainers")[0].clone(), images_of(&patched, "containers")[0].clone()] {
        let out = ctrd.ctr(&["images", "pull", "--plain-http", &image]);
        assert!(
            out.status.success(),
            "ctr pull {image}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            ctrd.log_tail()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_error_and_the_server_keeps_serving() {
    require_environment("bad_requests_get_an_error_and_the_server_keeps_serving");
    let site = Site::new();
    let b = site.load("shop", &[("team/app", "docker.io/team/app:1.0", Role::Workload)]);
    let tls = tempfile::tempdir().unwrap();
    let hook = Webhook::start(&site.reg.url(), &[&b], &site.state(), tls.path()).await;

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let no_request = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_owned();
    let wrong_types = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#.to_owned();
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (what, body) in [
        ("empty", Vec::new()),
        ("cut short", b"{\"kind\":\"AdmissionRe".to_vec()),
        ("no request", no_request.into_bytes()),
        ("wrong types", wrong_types.into_bytes()),
        ("nested 100000 deep", deep.into_bytes()),
        ("binary noise", noise),
    ] {
        let (status, body) = hook.post(body).await;
        assert_eq!(status, 400, "{what}: {}", String::from_utf8_lossy(&body));
    }
    // A body over the limit: 413, or, when the client is still writing as
    // the server answers and closes, a broken connection. Either way the
    // server does not read it all, and goes on serving.
    let big = hook.client.post(hook.url("/mutate")).body(vec![b' '; 4 << 20]).send().await;
    match big {
        Ok(r) => assert_eq!(r.status(), 413, "a body over the limit"),
        Err(e) => {
            let e = format!("{e:?}");
            assert!(["BrokenPipe", "ConnectionReset", "IncompleteMessage"].iter().any(|k| e.contains(k)), "{e}")
        }
    }
    let get = hook.client.get(hook.url("/mutate")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let other = hook.client.post(hook.url("/validate")).body("{}").send().await.unwrap();
    assert_eq!(other.status(), 404);

    // Not a Pod: allowed, untouched.
    let mut deployment = review(
        "d1",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "team/app:1.0"}]}}}}),
    );
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let (status, body) = hook.post(serde_json::to_vec(&deployment).unwrap()).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((answer["response"]["allowed"].clone(), answer["response"].get("patch")), (json!(true), None));

    // Still serving pods after all that.
    let (resp, patched) = hook.review("after", &pod("p", &[], &["team/app:1.0"], &[])).await;
    assert_eq!(resp["patchType"], "JSONPatch");
    assert_eq!(
        images_of(&patched, "containers"),
        [format!("{}/spectro-images/docker.io/team/app:1.0", site.reg.host())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_load_is_redirected_once_its_images_are_in() {
    require_environment("a_later_load_is_redirected_once_its_images_are_in");
    let site = Site::new();
    let first = site.load("one", &[("team/app", "docker.io/team/app:1.0", Role::Workload)]);
    let tls = tempfile::tempdir().unwrap();
    let hook = Webhook::start(&site.reg.url(), &[&first], &site.state(), tls.path()).await;
    let web = pod("web", &[], &["quay.io/team/web:2.1"], &[]);
    let (resp, _) = hook.review("before", &web).await;
    assert!(resp.get("patch").is_none(), "not loaded yet: left alone");

    site.load("two", &[("team/web", "quay.io/team/web:2.1", Role::Workload)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, patched) = hook.review("after", &web).await;
        if images_of(&patched, "containers")[0] == format!("{}/spectro-images/quay.io/team/web:2.1", site.reg.host()) {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook never picked up the second load");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn bad_settings_exit_2_naming_the_culprit() {
    let d = tempfile::tempdir().unwrap();
    let ca = write_tls_material(d.path());
    let other = tempfile::tempdir().unwrap();
    write_tls_material(other.path());
    let cert = d.path().join("server.crt");
    let key = d.path().join("server.key");
    let wrong_key = other.path().join("server.key");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--registry is required"),
        (vec!["--registry".into(), "http://127.0.0.1:5000".into()], "--tls-cert is required"),
        (
            vec!["--tls-cert".into(), cert.display().to_string(), "--tls-key".into(), wrong_key.display().to_string()],
            "does not fit the certificate",
        ),
        (
            vec!["--tls-cert".into(), ca.display().to_string(), "--tls-key".into(), cert.display().to_string()],
            "server.crt: no usable PEM private key",
        ),
        (
            vec![
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
                "--listen".into(),
                "nowhere".into(),
            ],
            "--listen nowhere",
        ),
    ];
    for (i, (args, want)) in cases.into_iter().enumerate() {
        let mut c = agent();
        c.arg("webhook").args(&args);
        if i >= 2 {
            c.args(["--registry", "http://127.0.0.1:5000"]);
        }
        let out = run(c);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
}
