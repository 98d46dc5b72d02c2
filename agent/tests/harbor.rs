//! Harbor-specific behaviour against a double of Harbor's API with the real
//! registry behind it: the project is created (HEAD, then POST), Basic and
//! Bearer auth on `/v2/`, no cookies, credentials refused cleanly.

mod common;

use common::harbor::{HarborDouble, HarborOptions};
use common::*;
use edgeiso_testkit::{corpus, image_with_layer, Registry};

/// A real registry, and a bundle of the corpus in a temp dir. No silent skip:
/// `Registry::start` says what to install when docker-registry is missing.
fn setup() -> (Registry, tempfile::TempDir, Vec<edgeiso_testkit::TestImage>, std::path::PathBuf) {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let images = corpus();
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    let bundle = write_bundle(dir.path(), "site", &entries, None).remove(0);
    (reg, dir, images, bundle)
}

fn creds() -> Option<(String, String)> {
    Some(("admin".into(), "Harbor12345".into()))
}

fn load_with_password(
    url: &str,
    bundle: &std::path::Path,
    state: &std::path::Path,
    password: &str,
) -> std::process::Output {
    let mut c = load_cmd(url, bundle, state, &["--username", "admin", "--json"]);
    c.env("EDGEISO_REGISTRY_PASSWORD", password);
    run(c)
}

#[test]
fn creates_the_project_then_loads_and_a_rerun_only_checks() {
    let (reg, dir, images, bundle) = setup();
    let harbor = HarborDouble::start(&reg.url(), HarborOptions { credentials: creds(), ..Default::default() });
    let state = dir.path().join("s");
    let out = load_with_password(&harbor.url, &bundle, &state, "Harbor12345");
    assert_eq!(out.status.code(), Some(0));
    assert!(events(&out).iter().any(|e| e["event"] == "project-created" && e["project"] == "spectro-images"));
    assert!(harbor.projects().contains("spectro-images"));

    let reqs = harbor.requests();
    let pos = |p: &str| reqs.iter().position(|r| r.starts_with(p)).unwrap_or_else(|| panic!("no {p} in {reqs:#?}"));
    let ping = pos("GET /api/v2.0/ping");
    let head = pos("HEAD /api/v2.0/projects?project_name=spectro-images");
    let post = pos("POST /api/v2.0/projects");
    let first_push = reqs.iter().position(|r| r.contains("/blobs/uploads/")).unwrap();
    assert!(ping < head && head < post && post < first_push, "{reqs:#?}");
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
    // Shared layers were mounted across repositories, through Harbor.
    assert!(reqs.iter().any(|r| r.contains("mount=sha256")), "{reqs:#?}");

    // Re-run: the project exists (no POST), every image is confirmed by one
    // manifest HEAD, nothing is uploaded.
    let before = harbor.requests().len();
    let out = load_with_password(&harbor.url, &bundle, &state, "Harbor12345");
    assert_eq!(out.status.code(), Some(0));
    let again: Vec<String> = harbor.requests()[before..].to_vec();
    assert!(!again.iter().any(|r| r.starts_with("POST")), "{again:#?}");
    assert!(!again.iter().any(|r| r.starts_with("PUT") || r.starts_with("PATCH")), "{again:#?}");
    assert_eq!(again.iter().filter(|r| r.starts_with("HEAD /v2/") && r.contains("/manifests/")).count(), images.len());
}

#[test]
fn an_existing_project_is_not_created_again() {
    let (reg, dir, _, bundle) = setup();
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions { credentials: creds(), projects: vec!["spectro-images".into()], ..Default::default() },
    );
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert_eq!(out.status.code(), Some(0));
    assert!(!harbor.requests().iter().any(|r| r.starts_with("POST /api/")));
}

#[test]
fn a_409_from_project_creation_is_fine() {
    let (reg, dir, images, bundle) = setup();
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions {
            credentials: creds(),
            projects: vec!["spectro-images".into()],
            head_says_absent: true,
            ..Default::default()
        },
    );
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert_eq!(out.status.code(), Some(0));
    assert!(harbor.requests().iter().any(|r| r.starts_with("POST /api/v2.0/projects")));
    assert!(!events(&out).iter().any(|e| e["event"] == "project-created"), "409 means it already existed");
    assert_loaded(&reg, &format!("spectro-images/docker.io/{}", images[0].repository), &images[0].tag, &images[0]);
}

#[test]
fn bearer_token_flow_like_harbor_v2() {
    let (reg, dir, images, bundle) = setup();
    let harbor =
        HarborDouble::start(&reg.url(), HarborOptions { credentials: creds(), bearer: true, ..Default::default() });
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert_eq!(out.status.code(), Some(0));
    let reqs = harbor.requests();
    assert!(
        reqs.iter().any(|r| r.starts_with("GET /service/token?service=harbor-registry&scope=repository")),
        "{reqs:#?}"
    );
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
    // Tokens are cached per scope, not fetched per request.
    let tokens = reqs.iter().filter(|r| r.starts_with("GET /service/token")).count();
    let v2 = reqs.iter().filter(|r| r.contains(" /v2/")).count();
    assert!(tokens * 3 < v2, "{tokens} token requests for {v2} registry requests");
}

#[test]
fn refused_credentials_stop_at_once_with_exit_5() {
    let (reg, dir, _, bundle) = setup();
    for bearer in [false, true] {
        let harbor =
            HarborDouble::start(&reg.url(), HarborOptions { credentials: creds(), bearer, ..Default::default() });
        let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "not-the-password");
        assert_eq!(out.status.code(), Some(5), "bearer={bearer}");
        let reqs = harbor.requests();
        assert!(reqs.len() < 10, "no retry storm: {reqs:#?}");
        assert!(!reqs.iter().any(|r| r.starts_with("POST") || r.starts_with("PUT")));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("not-the-password"));
    }
}

#[test]
fn a_registry_that_cannot_mount_gets_the_blob_uploaded_into_the_offered_session() {
    let (reg, dir, images, bundle) = setup();
    let harbor = HarborDouble::start(&reg.url(), HarborOptions { refuse_mount: true, ..Default::default() });
    let out = run(load_cmd(&harbor.url, &bundle, &dir.path().join("s"), &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    let reqs = harbor.requests();
    assert!(reqs.iter().any(|r| r.contains("mount=sha256")), "a mount was tried: {reqs:#?}");
    let done = done_event(&out);
    assert_eq!(done["blobs_mounted"], 0, "{done}");
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
    // Each refused mount's 202 session was used: no extra POST for those blobs.
    let mounts = reqs.iter().filter(|r| r.contains("mount=sha256")).count();
    let posts = reqs.iter().filter(|r| r.starts_with("POST /v2/")).count();
    let puts = reqs.iter().filter(|r| r.starts_with("PUT /v2/") && r.contains("/blobs/uploads/")).count();
    assert_eq!(posts, puts, "every session opened (mount or not) was used by exactly one PUT: {reqs:#?}");
    assert!(mounts > 0);
}

#[test]
fn project_api_calls_carry_exactly_one_authorization_header_basic_and_bearer() {
    // The double answers 400 to a duplicated Authorization header, as
    // Harbor's nginx does.
    for bearer in [false, true] {
        let (reg, dir, images, bundle) = setup();
        let harbor =
            HarborDouble::start(&reg.url(), HarborOptions { credentials: creds(), bearer, ..Default::default() });
        let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
        assert_eq!(out.status.code(), Some(0), "bearer: {bearer}");
        assert!(harbor.projects().contains("spectro-images"));
        let reqs = harbor.requests();
        assert!(reqs.iter().any(|r| r.starts_with("POST /api/v2.0/projects")), "{reqs:#?}");
        for img in &images {
            assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
        }
    }
}

#[test]
fn a_token_with_an_absurd_lifetime_is_used_not_a_panic() {
    let (reg, dir, _, bundle) = setup();
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions { credentials: creds(), bearer: true, token_expires_in: Some(u64::MAX), ..Default::default() },
    );
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_mount_refused_with_404_falls_back_to_an_upload() {
    let (reg, dir, images, bundle) = setup();
    let harbor = HarborDouble::start(&reg.url(), HarborOptions { mount_status: Some(404), ..Default::default() });
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "unused");
    assert_eq!(out.status.code(), Some(0));
    let reqs = harbor.requests();
    assert!(reqs.iter().any(|r| r.contains("mount=sha256")), "a mount was tried: {reqs:#?}");
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
}

/// Two images of their own repositories (no shared blobs), in a bundle.
fn two_images(dir: &std::path::Path) -> (Vec<edgeiso_testkit::TestImage>, std::path::PathBuf) {
    let images: Vec<_> = ["quota/full", "quota/fine"]
        .iter()
        .enumerate()
        .map(|(i, r)| image_with_layer(r, "1.0", 4096, 300 + i as u64))
        .collect();
    let entries: Vec<Entry> = images.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    let bundle = write_bundle(dir, "two", &entries, None).remove(0);
    (images, bundle)
}

#[test]
fn a_project_over_its_quota_fails_those_images_with_exit_3_and_loads_the_others() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (images, bundle) = two_images(dir.path());
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions { credentials: creds(), quota_exceeded_for: Some("quota/full".into()), ..Default::default() },
    );
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert_eq!(out.status.code(), Some(3), "a quota is not wrong credentials (5)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("storage quota is exhausted") && stderr.contains("quota/full"), "{stderr}");
    assert!(!stderr.contains("refused the credentials"), "{stderr}");
    let done = done_event(&out);
    assert_eq!((done["loaded"].as_u64(), done["failed"].as_u64()), (Some(1), Some(1)), "{done}");
    assert_loaded(&reg, "spectro-images/docker.io/quota/fine", "1.0", &images[1]);
}

#[test]
fn harbor_in_read_only_mode_fails_the_images_with_exit_3_not_as_credentials() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle) = two_images(dir.path());
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions {
            credentials: creds(),
            read_only: true,
            projects: vec!["spectro-images".into()],
            ..Default::default()
        },
    );
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Harbor is in read-only mode"), "{stderr}");
    assert!(!stderr.contains("refused the credentials"), "{stderr}");

    // Without the project, its creation is refused the same way: exit 3.
    let harbor =
        HarborDouble::start(&reg.url(), HarborOptions { credentials: creds(), read_only: true, ..Default::default() });
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s2"), "Harbor12345");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only mode"));
}

#[test]
fn a_refused_bearer_token_answered_with_basic_realm_harbor_is_retried_with_basic() {
    let (reg, dir, images, bundle) = setup();
    let harbor = HarborDouble::start(
        &reg.url(),
        HarborOptions { credentials: creds(), bearer: true, refuse_tokens: true, ..Default::default() },
    );
    let out = load_with_password(&harbor.url, &bundle, &dir.path().join("s"), "Harbor12345");
    assert_eq!(out.status.code(), Some(0));
    for img in &images {
        assert_loaded(&reg, &format!("spectro-images/docker.io/{}", img.repository), &img.tag, img);
    }
    // One token was tried; after its refusal everything went with Basic.
    let tokens = harbor.requests().iter().filter(|r| r.starts_with("GET /service/token")).count();
    assert_eq!(tokens, 1, "{:#?}", harbor.requests());
}
