//! The registry harness against the real `docker-registry` (distribution 2.8).

use std::process::Command;

use edgeiso_bundle::Digest;
use edgeiso_testkit::{corpus, have, image_with_layer, push, push_all, tools_present, Registry, RegistryOptions};

const CORPUS_REPOS: [&str; 4] = ["team/app", "team/multi", "team/raw", "team/web"];

/// Every manifest (by digest and by tag) comes back byte-identical with the
/// right content type, every blob exists and comes back identical, and the
/// catalog and tags are exactly the corpus'.
fn assert_serves_corpus(reg: &Registry) {
    for image in corpus() {
        let repo = &image.repository;
        for (media_type, bytes) in &image.manifests {
            let digest = Digest::of(bytes);
            let (ct, got) =
                reg.get_manifest(repo, digest.as_str()).unwrap_or_else(|| panic!("{repo}@{digest} missing"));
            assert_eq!(&ct, media_type, "{repo}@{digest}: content type");
            assert!(got == *bytes, "{repo}@{digest}: bytes differ from what was pushed");
        }
        let (ct, got) = reg.get_manifest(repo, &image.tag).expect("tag resolves");
        assert_eq!(ct, image.media_type, "{}: content type by tag", image.reference());
        assert_eq!(Digest::of(&got), image.digest, "{}: tag points at the top-level manifest", image.reference());
        for (digest, bytes) in &image.blobs {
            assert!(reg.blob_exists(repo, digest.as_str()), "{repo}: blob {digest} should exist");
            assert!(
                reg.get_blob(repo, digest.as_str()).as_deref() == Some(&bytes[..]),
                "{repo}: blob {digest} differs"
            );
        }
        assert_eq!(reg.tags(repo), vec![image.tag.clone()]);
    }
    assert_eq!(reg.catalog(), CORPUS_REPOS);
    // Page size 1 forces four Link-header hops.
    assert_eq!(reg.catalog_paged(1), CORPUS_REPOS);
}

fn assert_absent_things_are_absent(reg: &Registry) {
    let nothing = Digest::of(b"not pushed anywhere");
    assert!(!reg.blob_exists("team/app", nothing.as_str()));
    assert_eq!(reg.get_blob("team/app", nothing.as_str()), None);
    assert_eq!(reg.get_manifest("team/app", "no-such-tag"), None);
    assert_eq!(reg.get_manifest("team/app", nothing.as_str()), None);
    assert!(reg.tags("team/none").is_empty());
}

#[test]
fn plain_registry_serves_the_corpus_byte_identical() {
    if !tools_present("plain_registry_serves_the_corpus_byte_identical", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start();
    assert_eq!(reg.url(), format!("http://{}", reg.host()));
    assert!(reg.host().starts_with("127.0.0.1:"));
    assert!(reg.ca_pem_path().is_none());
    assert!(reg.catalog().is_empty(), "a new registry is empty");
    push_all(&reg, &corpus());
    assert_serves_corpus(&reg);
    assert_absent_things_are_absent(&reg);
    // Content lives in the temp storage dir the harness reports.
    assert!(reg.storage_dir().join("docker/registry/v2/repositories/team/app").is_dir());
}

#[test]
fn pushing_twice_is_idempotent() {
    if !tools_present("pushing_twice_is_idempotent", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start();
    push_all(&reg, &corpus());
    push_all(&reg, &corpus());
    assert_serves_corpus(&reg);
}

#[test]
fn tls_registry_serves_the_corpus_and_its_ca_is_what_clients_need() {
    if !tools_present("tls_registry_serves_the_corpus_and_its_ca_is_what_clients_need", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start_tls();
    assert_eq!(reg.url(), format!("https://{}", reg.host()));
    let ca = reg.ca_pem_path().expect("TLS registry has a CA");
    let pem = std::fs::read_to_string(ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "CA file is a PEM certificate");
    push_all(&reg, &corpus());
    assert_serves_corpus(&reg);

    // A client that does not trust the generated CA must fail the handshake:
    // proves the helpers really verify rather than skip verification.
    let untrusting: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    let err = untrusting.get(format!("{}/v2/", reg.url())).call().expect_err("unknown CA must be rejected");
    assert!(format!("{err}").to_lowercase().contains("certificate"), "unexpected error: {err}");

    // An independent Go client (skopeo) trusts the CA, for 127.0.0.1 and localhost.
    if have("skopeo") {
        let certs = tempfile::tempdir().unwrap();
        std::fs::copy(ca, certs.path().join("ca.crt")).unwrap();
        for host in [reg.host(), format!("localhost:{}", reg.port())] {
            let raw = skopeo(&[
                "inspect",
                "--raw",
                "--cert-dir",
                certs.path().to_str().unwrap(),
                &format!("docker://{host}/team/app:1.0"),
            ]);
            assert_eq!(raw, corpus()[0].top_bytes(), "skopeo over TLS to {host}");
        }
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn stop_and_restart_keep_content_and_port() {
    if !tools_present("stop_and_restart_keep_content_and_port", &["docker-registry"]) {
        return;
    }
    let mut reg = Registry::start();
    let images = corpus();
    push_all(&reg, &images);
    let host = reg.host();

    reg.stop();
    assert!(!reg.is_running());
    assert!(std::net::TcpStream::connect(&host).is_err(), "nothing listens on {host} after stop");
    assert!(reg.storage_dir().join("docker/registry/v2/blobs").is_dir(), "storage kept across stop");

    reg.restart();
    assert!(reg.is_running());
    assert_eq!(reg.host(), host, "restart reuses the port");
    assert_serves_corpus(&reg);

    // Restart while running (stop + start) works too, and the registry still takes writes.
    reg.restart();
    let extra = image_with_layer("team/extra", "1", 4096, 9);
    push(&reg, &extra);
    assert_eq!(reg.get_manifest("team/extra", "1").map(|(_, b)| b).as_deref(), Some(extra.top_bytes()));
}

#[test]
fn an_open_upload_session_survives_a_restart() {
    // The harness fixes http.secret so upload `_state` tokens stay valid across
    // restart (resume tests rely on it). Prove it: open an upload, restart,
    // finish the upload at the old Location.
    if !tools_present("an_open_upload_session_survives_a_restart", &["docker-registry"]) {
        return;
    }
    let mut reg = Registry::start();
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
    let resp = agent.post(format!("{}/v2/team/resume/blobs/uploads/", reg.url())).send_empty().unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers().get("location").unwrap().to_str().unwrap().to_owned();
    reg.restart();
    let body = b"resumed after a registry restart".to_vec();
    let digest = Digest::of(&body);
    let resp = agent.put(format!("{location}&digest={digest}")).send(&body[..]).unwrap();
    assert_eq!(resp.status().as_u16(), 201, "upload finished after restart");
    assert_eq!(reg.get_blob("team/resume", digest.as_str()), Some(body));
}

#[test]
fn auth_over_plain_http_rejects_anonymous_and_wrong_passwords() {
    if !tools_present("auth_over_plain_http_rejects_anonymous_and_wrong_passwords", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start_with(RegistryOptions { tls: false, auth: Some(("edge".into(), "pa55:word".into())) });
    assert_eq!(reg.credentials(), Some(("edge", "pa55:word")));
    assert_eq!(reg.status_of("/v2/", None), 401, "anonymous");
    assert_eq!(reg.status_of("/v2/", Some(("edge", "wrong"))), 401, "wrong password");
    assert_eq!(reg.status_of("/v2/", Some(("nobody", "pa55:word"))), 401, "unknown user");
    assert_eq!(reg.status_of("/v2/", Some(("edge", "pa55:word"))), 200, "right password");
    assert_eq!(reg.status_of("/v2/_catalog", None), 401, "catalog needs auth too");

    // The helpers authenticate: push and read back everything.
    push_all(&reg, &corpus());
    assert_serves_corpus(&reg);

    // Anonymous reads of pushed content are refused as well.
    let app = &corpus()[0];
    assert_eq!(reg.status_of(&format!("/v2/team/app/manifests/{}", app.digest), None), 401);
}

#[test]
fn auth_over_tls_works_too() {
    if !tools_present("auth_over_tls_works_too", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start_with(RegistryOptions { tls: true, auth: Some(("edge".into(), "s3cret".into())) });
    assert_eq!(reg.status_of("/v2/", None), 401);
    assert_eq!(reg.status_of("/v2/", Some(("edge", "s3cret"))), 200);
    push_all(&reg, &corpus());
    assert_serves_corpus(&reg);
    // No secret leaks into the registry log (credentials travel in headers,
    // which the access log does not record).
    let log = std::fs::read_to_string(reg.log_path()).unwrap();
    assert!(!log.contains("s3cret"));
}

#[test]
fn deletes_are_enabled() {
    if !tools_present("deletes_are_enabled", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start();
    let images = corpus();
    push_all(&reg, &images);
    let app = &images[0];
    assert!(reg.delete_manifest("team/app", app.digest.as_str()));
    assert_eq!(reg.get_manifest("team/app", app.digest.as_str()), None);
    assert_eq!(reg.get_manifest("team/app", "1.0"), None, "the tag went with the manifest");
    assert!(!reg.delete_manifest("team/app", app.digest.as_str()), "second delete is a 404");
    let (layer, _) = app.blobs.iter().next_back().unwrap();
    assert!(reg.delete_blob("team/app", layer.as_str()));
    assert!(!reg.blob_exists("team/app", layer.as_str()));
    // Unlinking from one repository leaves the others alone.
    assert_serves_other_than_app(&reg, &images);
}

fn assert_serves_other_than_app(reg: &Registry, images: &[edgeiso_testkit::TestImage]) {
    for image in &images[1..] {
        assert_eq!(reg.get_manifest(&image.repository, &image.tag).map(|(_, b)| b).as_deref(), Some(image.top_bytes()));
        for d in image.blobs.keys() {
            assert!(reg.blob_exists(&image.repository, d.as_str()));
        }
    }
}

#[test]
fn registries_in_one_process_get_distinct_ports() {
    if !tools_present("registries_in_one_process_get_distinct_ports", &["docker-registry"]) {
        return;
    }
    let regs: Vec<Registry> = (0..3).map(|_| Registry::start()).collect();
    let mut ports: Vec<u16> = regs.iter().map(Registry::port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    assert_ne!(regs[0].storage_dir(), regs[1].storage_dir());
}

#[test]
fn drop_kills_the_registry_and_removes_its_storage() {
    if !tools_present("drop_kills_the_registry_and_removes_its_storage", &["docker-registry"]) {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let storage = reg.storage_dir().to_owned();
    drop(reg);
    assert!(!storage.exists(), "temp storage removed");
    assert!(std::net::TcpStream::connect(&host).is_err(), "process gone");
}
