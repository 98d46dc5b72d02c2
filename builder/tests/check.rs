//! `edgeiso check` against real registries (Debian's docker-registry on
//! loopback) that hold a bundle's images under their Harbor paths, as the
//! agent pushes them: all there, some missing or different, credentials
//! right and wrong, no registry at all, and input that is not a bundle.

mod common;
use common::{edgeiso, p};

use edgeiso_bundle::Role;
use edgeiso_testkit::bundles::{write_bundle, Entry};
use edgeiso_testkit::images::{self, TestImage};
use edgeiso_testkit::{free_port, Registry, RegistryOptions};

const PASSWORD: &str = "Check-Pw-9f2c";

/// The corpus: app (OCI), web (Docker schema 2) and multi (an index of two).
struct Site {
    dir: tempfile::TempDir,
    corpus: Vec<TestImage>,
    bundle: std::path::PathBuf,
}

fn image<'a>(corpus: &'a [TestImage], repo: &str) -> &'a TestImage {
    corpus.iter().find(|i| i.repository == repo).unwrap()
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let corpus = images::corpus();
    let entries = vec![
        Entry::workload(image(&corpus, "team/app"), "docker.io/team/app:1.0"),
        Entry::workload(image(&corpus, "team/web"), "quay.io/team/web:2.1"),
        Entry::workload(image(&corpus, "team/multi"), "127.0.0.1:9/team/multi:1.0"),
        // Bootstrap images are imported on the node, never pushed: not checked.
        Entry { image: image(&corpus, "team/raw"), source: "docker.io/team/raw:1.0".into(), role: Role::Bootstrap },
    ];
    let bundle = write_bundle(dir.path(), "site", &entries, None).remove(0);
    Site { dir, corpus, bundle }
}

/// Push `repo` of the corpus to `reg` under `harbor_path` (where the agent puts it).
fn push_as(reg: &Registry, corpus: &[TestImage], repo: &str, harbor_path: &str) {
    let mut moved = image(corpus, repo).clone();
    moved.repository = harbor_path.to_owned();
    images::push(reg, &moved);
}

fn fill(reg: &Registry, s: &Site) {
    push_as(reg, &s.corpus, "team/app", "spectro-images/docker.io/team/app");
    push_as(reg, &s.corpus, "team/web", "spectro-images/quay.io/team/web");
    push_as(reg, &s.corpus, "team/multi", "spectro-images/127.0.0.1_9/team/multi");
}

#[test]
fn all_images_present_passes_and_json_counts_them() {
    let s = site();
    let reg = Registry::start();
    fill(&reg, &s);
    let run = edgeiso(&["check", "--bundle", p(&s.bundle), "--registry", &reg.url()], &[]).ok();
    assert!(run.stderr().contains("all 5 manifests of 3 images"), "{}", run.stderr());
    let run = edgeiso(&["--json", "check", "--bundle", p(&s.bundle), "--registry", &reg.url()], &[]).ok();
    let ev = &run.events("check")[0];
    assert_eq!(
        (ev["pass"].as_bool(), ev["images"].as_u64(), ev["manifests"].as_u64(), ev["present"].as_u64()),
        (Some(true), Some(3), Some(5), Some(5))
    );
    assert_eq!(ev["problems"], serde_json::json!([]));
}

#[test]
fn missing_and_different_images_exit_4_naming_each() {
    let s = site();
    let reg = Registry::start();
    // app is missing; web holds other bytes under its tag; multi is whole.
    let mut other = image(&s.corpus, "team/app").clone();
    other.repository = "spectro-images/quay.io/team/web".into();
    other.tag = "2.1".into();
    images::push(&reg, &other);
    push_as(&reg, &s.corpus, "team/multi", "spectro-images/127.0.0.1_9/team/multi");

    let run = edgeiso(&["--json", "check", "--bundle", p(&s.bundle), "--registry", &reg.url()], &[]);
    assert_eq!(run.code(), 4, "{}", run.stderr());
    let ev = &run.events("check")[0];
    assert_eq!(ev["pass"], false);
    let problems = ev["problems"].as_array().unwrap();
    let find = |repo: &str, reference: &str| {
        problems
            .iter()
            .find(|p| p["repository"] == repo && p["reference"] == reference)
            .unwrap_or_else(|| panic!("{repo}:{reference} in {problems:?}"))
    };
    assert_eq!(find("spectro-images/docker.io/team/app", "1.0")["kind"], "missing");
    assert_eq!(find("spectro-images/quay.io/team/web", "2.1")["kind"], "different");
    assert_eq!(problems.len(), 2, "{problems:?}");
    let run = edgeiso(&["check", "--bundle", p(&s.bundle), "--registry", &reg.url()], &[]);
    assert_eq!(run.code(), 4);
    let err = run.stderr();
    assert!(err.contains("docker.io/team/app:1.0 (spectro-images/docker.io/team/app:1.0): missing"), "{err}");
    assert!(err.contains("quay.io/team/web:2.1 (spectro-images/quay.io/team/web:2.1): different"), "{err}");
}

#[test]
fn credentials_right_wrong_and_none() {
    let s = site();
    let reg = Registry::start_with(RegistryOptions { tls: true, auth: Some(("admin".into(), PASSWORD.into())) });
    fill(&reg, &s);
    let ca = reg.ca_pem_path().unwrap().to_owned();
    let pw = s.dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let wrong = s.dir.path().join("wrong");
    std::fs::write(&wrong, "not-it\n").unwrap();
    let args = |pwfile: Option<&std::path::Path>| {
        let mut a =
            vec!["check", "--bundle", p(&s.bundle), "--registry"].into_iter().map(str::to_owned).collect::<Vec<_>>();
        a.push(reg.url());
        a.extend(["--ca".into(), p(&ca).into()]);
        if let Some(f) = pwfile {
            a.extend(["--username".into(), "admin".into(), "--password-file".into(), p(f).into()]);
        }
        a
    };
    let run = |a: Vec<String>| edgeiso(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);

    run(args(Some(&pw))).ok();
    for (what, a) in [("wrong password", args(Some(&wrong))), ("anonymous", args(None))] {
        let r = run(a);
        assert_eq!(r.code(), 5, "{what}: {}", r.stderr());
        assert!(r.stderr().contains("refused the credentials"), "{what}: {}", r.stderr());
        assert!(!r.stderr().contains(PASSWORD) && !r.stdout().contains(PASSWORD));
    }
    // An unreadable password file is named.
    let r = run(args(Some(&s.dir.path().join("nope"))));
    assert_eq!(r.code(), 3);
    assert!(r.stderr().contains("nope"), "{}", r.stderr());
}

#[test]
fn no_registry_and_no_bundle() {
    let s = site();
    let port = free_port();
    let r = edgeiso(&["check", "--bundle", p(&s.bundle), "--registry", &format!("http://127.0.0.1:{port}")], &[]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("did not answer"), "{}", r.stderr());

    let not_a_bundle = s.dir.path().join("x.tar");
    std::fs::write(&not_a_bundle, b"definitely not a tar").unwrap();
    for bad in [not_a_bundle.clone(), s.dir.path().join("missing.tar")] {
        let r = edgeiso(&["check", "--bundle", p(&bad), "--registry", "http://127.0.0.1:1"], &[]);
        assert_eq!(r.code(), 3, "{}", r.stderr());
        assert!(r.stderr().contains(bad.file_name().unwrap().to_str().unwrap()), "{}", r.stderr());
    }
    let r = edgeiso(&["check", "--bundle", p(&s.bundle), "--registry", "ftp://x"], &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
}
