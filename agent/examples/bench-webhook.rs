//! Admission latency and memory of `edgeiso-agent webhook` (issue 12's
//! benchmark; scripts/bench-webhook.sh runs it):
//!
//!   bench-webhook AGENT_BINARY IMAGES RATE SECONDS
//!
//! Writes a load journal holding IMAGES images (what a site's Harbor holds),
//! starts the webhook on loopback with a fresh certificate, then sends pod
//! AdmissionReviews at a fixed RATE per second for SECONDS over TLS with
//! keep-alive connections (as the API server does), open loop: each request
//! leaves at its scheduled time whether or not earlier ones are done (how
//! far behind schedule the latest one left is printed), and its latency
//! counts from when it left until its whole answer is read. The peer, run
//! side by side on the same connections and schedule: `GET /healthz`, the
//! same TLS and HTTP with no admission work. Prints one line of figures per
//! run and the server's peak RSS (VmHWM).

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgeiso_agent::journal::{journal_path, Record};
use edgeiso_bundle::{harbor_target, Digest, ImageRef};
use serde_json::json;

const REGISTRY: &str = "https://10.0.0.5:30003";
/// Requests (and so connections) in flight at most.
const CONNECTIONS: usize = 16;

fn write_journal(state: &Path, images: usize) {
    let path = journal_path(state, "10.0.0.5:30003");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..images {
        let reference: ImageRef = format!("registry.example.com/team{}/app{i}:1.{}", i % 50, i % 7).parse().unwrap();
        let target = harbor_target("spectro-images", &reference);
        let r = Record::Image {
            bundle: "bench".into(),
            reference: reference.to_string(),
            target: format!("{}:{}", target.repository, target.tag.unwrap()),
            digest: Digest::of(format!("manifest {i}").as_bytes()),
            at: "2026-12-05T00:00:00Z".into(),
        };
        serde_json::to_writer(&mut f, &r).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

fn review(i: usize, images: usize) -> Vec<u8> {
    let known = format!("registry.example.com/team{}/app{}:1.{}", (i % images) % 50, i % images, (i % images) % 7);
    serde_json::to_vec(&json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": format!("uid-{i}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": format!("pod-{i}"), "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("pod-{i}"), "namespace": "shop", "labels": {"app": "shop", "pod-template-hash": "5d9f8c7b6"},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-5d9f8c7b6", "uid": "0b7c3a52-7d1e-4b0e-9a57-3f0c2d1e4a11", "controller": true, "blockOwnerDeletion": true}]},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent"}],
                    "containers": [
                        {"name": "app", "image": known, "imagePullPolicy": "IfNotPresent", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                         "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"},
                        {"name": "sidecar", "image": "docker.io/library/nginx:1.25", "imagePullPolicy": "IfNotPresent"}
                    ],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "schedulerName": "default-scheduler",
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
                },
                "status": {}
            },
            "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .unwrap()
}

fn peak_rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

/// CPU seconds the process has used (user + system).
fn cpu_seconds(child: &Child) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Send `rate` AdmissionReviews per second for `seconds`, and between each
/// two a healthz request (so 2 x `rate` requests/s in all, on one
/// schedule); the latencies of each kind.
async fn run(
    client: &reqwest::Client,
    port: u16,
    rate: u32,
    seconds: u32,
    images: usize,
) -> (Vec<Duration>, Vec<Duration>, Duration) {
    let total = (2 * rate * seconds) as usize;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..256).map(|i| review(i * 17, images)).collect());
    // One ticker spawns each request at its time (open loop: a slow answer
    // does not delay the next request); latency counts from the tick.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / (2 * rate) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // At most this many requests in flight, so at most this many keep-alive
    // connections, as an API server keeps a few to a webhook (without the
    // cap reqwest opens one more connection per request it cannot place).
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = tick.tick().await;
        let (client, bodies, slots) = (client.clone(), bodies.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire().await.expect("never closed");
            // Latency from the moment the request leaves; how late that was
            // against the schedule (tokio's timer has 1 ms granularity) is
            // reported apart, to show the generator kept up.
            let sent = Instant::now();
            let late = sent.saturating_duration_since(due.into_std());
            let mutate = i % 2 == 0;
            let r = if mutate {
                client
                    .post(format!("https://localhost:{port}/mutate"))
                    .header("content-type", "application/json")
                    .body(bodies[i % bodies.len()].clone())
                    .send()
                    .await
            } else {
                client.get(format!("https://localhost:{port}/healthz")).send().await
            };
            let r = r.expect("request");
            assert_eq!(r.status(), 200);
            let body = r.bytes().await.expect("body");
            if mutate {
                assert!(body.windows(9).any(|w| w == b"JSONPatch"), "every pod has one held image");
            }
            (mutate, sent.elapsed(), late)
        }));
    }
    let (mut m, mut h, mut late) = (Vec::new(), Vec::new(), Duration::ZERO);
    for t in tasks {
        let (mutate, d, l) = t.await.unwrap();
        late = late.max(l);
        if mutate {
            m.push(d)
        } else {
            h.push(d)
        }
    }
    m.sort();
    h.sort();
    (m, h, late)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [agent, images, rate, seconds] = args.as_slice() else {
        eprintln!("usage: bench-webhook AGENT_BINARY IMAGES RATE SECONDS");
        std::process::exit(2);
    };
    let (images, rate, seconds): (usize, u32, u32) =
        (images.parse().unwrap(), rate.parse().unwrap(), seconds.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    write_journal(&state, images);
    let ca = edgeiso_testkit::registry::write_tls_material(dir.path());
    let port = edgeiso_testkit::free_port();
    let mut child = Command::new(agent)
        .args(["webhook", "--registry", REGISTRY, "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(dir.path().join("server.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("server.key"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--bundle")
        .arg(dir.path()) // no bundles: no bootstrap images
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the webhook");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let tls = edgeiso_agent::tls::client_config(Some(&ca), false).unwrap();
        let client = reqwest::Client::builder().tls_backend_preconfigured(tls).no_proxy().build().unwrap();
        let up = Instant::now();
        while client.get(format!("https://localhost:{port}/healthz")).send().await.is_err() {
            assert!(up.elapsed() < Duration::from_secs(20), "webhook did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Warm the connections up, then measure.
        run(&client, port, rate, 1, images).await;
        let cpu_before = cpu_seconds(&child);
        let (m, h, late) = run(&client, port, rate, seconds, images).await;
        let server_cpu = cpu_seconds(&child) - cpu_before;
        println!(
            "images={images} rate={rate}/s seconds={seconds} mutate: n={} p50={} p90={} p99={} max={} ms | healthz: n={} p50={} p99={} ms | p99 ratio mutate/healthz={:.2} | latest send {} ms behind schedule | server CPU {:.0}% of one core ({:.0} us/request) | server peak RSS {:.1} MiB",
            m.len(),
            ms(percentile(&m, 0.50)),
            ms(percentile(&m, 0.90)),
            ms(percentile(&m, 0.99)),
            ms(*m.last().unwrap()),
            h.len(),
            ms(percentile(&h, 0.50)),
            ms(percentile(&h, 0.99)),
            percentile(&m, 0.99).as_secs_f64() / percentile(&h, 0.99).as_secs_f64(),
            ms(late),
            server_cpu / seconds as f64 * 100.0,
            server_cpu / (m.len() + h.len()) as f64 * 1e6,
            peak_rss_kib(&child) as f64 / 1024.0
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
