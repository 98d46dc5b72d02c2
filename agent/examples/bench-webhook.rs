//! Admission latency and memory of `edgeiso-agent webhook` (issue 12's
//! benchmark; scripts/bench-webhook.sh runs it):
//!
//!   bench-webhook AGENT_BINARY IMAGES RATE SECONDS
//!
//! Writes a load journal holding IMAGES images (what a site's Harbor holds),
//! starts the webhook on loopback with a fresh certificate, then sends pod
//! AdmissionReviews at a fixed RATE per second for SECONDS over TLS on 16
//! keep-alive connections (as the API server keeps a few), open loop: each
//! request is due at its time on one schedule, a free connection sends it
//! then, and its latency counts from that due time until its whole answer
//! is read (a wait for a free connection counts too). The peer, on the same
//! connections and schedule, is every 11th request: `GET /healthz`, the same
//! TLS and HTTP with no admission work. The client is plain threads with
//! blocking rustls, light enough not to set the tail it measures on 2
//! shared cores. Prints one line of figures per
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
/// Requests (and so connections) in flight at most, as an API server keeps
/// a few keep-alive connections to a webhook.
const CONNECTIONS: usize = 16;
/// Every this many requests of the schedule, one is the peer (healthz).
const PEER_EVERY: usize = 11;

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

/// CPU seconds process `pid` has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// One request's kind and timings.
struct Sample {
    mutate: bool,
    /// From its scheduled time to its whole answer: includes any wait for a
    /// free connection (open loop, no coordinated omission).
    from_due: Duration,
    /// How late it left against the schedule.
    late: Duration,
}

/// One keep-alive HTTPS connection driven by blocking reads and writes: a
/// load generator far lighter than an async client, so that on 2 shared
/// cores the client's own scheduling does not set the tail it measures.
struct Connection {
    tls: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    buf: Vec<u8>,
}

impl Connection {
    fn open(config: &Arc<rustls::ClientConfig>, port: u16) -> Connection {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_nodelay(true).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
        Connection { tls: rustls::StreamOwned::new(conn, tcp), buf: Vec::with_capacity(8192) }
    }

    /// Send one request, read its whole answer; the answer's body.
    fn request(&mut self, head: &[u8], body: &[u8]) -> &[u8] {
        use std::io::Read as _;
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head);
        out.extend_from_slice(body);
        self.tls.write_all(&out).expect("send");
        self.tls.flush().unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        let (head_end, length) = loop {
            let n = self.tls.read(&mut chunk).expect("read");
            assert!(n > 0, "the webhook closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .expect("content-length");
                break (end + 4, length);
            }
        };
        while self.buf.len() < head_end + length {
            let n = self.tls.read(&mut chunk).expect("read");
            assert!(n > 0, "the webhook closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        &self.buf[head_end..head_end + length]
    }
}

/// Send `rate` AdmissionReviews per second for `seconds`, and every
/// `PEER_EVERY`th request of the schedule a healthz instead (the peer, on
/// the same connections and schedule); every sample.
fn run(config: &Arc<rustls::ClientConfig>, port: u16, rate: u32, seconds: u32, images: usize) -> Vec<Sample> {
    let total = (rate * seconds) as usize * PEER_EVERY / (PEER_EVERY - 1);
    let period = Duration::from_secs_f64(seconds as f64 / total as f64);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..256).map(|i| review(i * 17, images)).collect());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(20);
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (config, bodies, next) = (config.clone(), bodies.clone(), next.clone());
            std::thread::spawn(move || {
                let mut conn = Connection::open(&config, port);
                let mut samples = Vec::new();
                // Each free connection takes the next request of the
                // schedule and sends it at its time.
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        return samples;
                    }
                    let due = start + period * i as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let late = Instant::now().saturating_duration_since(due);
                    let mutate = i % PEER_EVERY != 0;
                    if mutate {
                        let body = &bodies[i % bodies.len()];
                        let head = format!(
                            "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        let answer = conn.request(head.as_bytes(), body);
                        assert!(answer.windows(9).any(|w| w == b"JSONPatch"), "every pod has one held image");
                    } else {
                        let answer = conn.request(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n", b"");
                        assert_eq!(answer, b"ok\n");
                    }
                    samples.push(Sample { mutate, from_due: due.elapsed(), late });
                }
            })
        })
        .collect();
    workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
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
    let config = Arc::new(edgeiso_agent::tls::client_config(Some(&ca), false).unwrap());
    let up = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(up.elapsed() < Duration::from_secs(20), "webhook did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Warm up (handshakes, the index), then measure.
    run(&config, port, rate, 1, images);
    let (cpu_before, client_before) = (cpu_seconds(child.id()), cpu_seconds(std::process::id()));
    let samples = run(&config, port, rate, seconds, images);
    let server_cpu = cpu_seconds(child.id()) - cpu_before;
    let client_cpu = cpu_seconds(std::process::id()) - client_before;
    let mut m: Vec<Duration> = samples.iter().filter(|s| s.mutate).map(|s| s.from_due).collect();
    let mut h: Vec<Duration> = samples.iter().filter(|s| !s.mutate).map(|s| s.from_due).collect();
    let late = samples.iter().map(|s| s.late).max().unwrap();
    m.sort();
    h.sort();
    println!(
        "images={images} mutate rate={rate}/s seconds={seconds} mutate: n={} p50={} p90={} p99={} max={} ms | healthz: n={} p50={} p99={} ms | p99 ratio mutate/healthz={:.2} | latest send {} ms behind schedule | server CPU {:.0}% of one core ({:.0} us/request), client {:.0}% | server peak RSS {:.1} MiB",
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
        server_cpu / samples.len() as f64 * 1e6,
        client_cpu / seconds as f64 * 100.0,
        peak_rss_kib(&child) as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
