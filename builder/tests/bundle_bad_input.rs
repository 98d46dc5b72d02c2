//! Every bad input of `edgeiso bundle`: a clear error naming the culprit, a
//! meaningful exit code, and nothing half-written.

mod common;

use std::path::Path;

use common::{edgeiso, p, simple_spec, tree, write_spec};
use edgeiso_testkit::images;
use edgeiso_testkit::{Registry, RegistryOptions};

fn create(spec: &Path, out: &Path, cache: &Path) -> common::Run {
    edgeiso(&["bundle", "create", "--spec", p(spec), "--output", p(out), "--cache", p(cache)], &[])
}

fn no_bundle_in(out: &Path) {
    // A killed run leaves its (unlocked, empty of meaning) lock file; the
    // next run takes it over and removes it.
    let left: Vec<String> =
        tree(out).into_iter().filter(|f| f.contains("content-") && !f.ends_with(".tar.lock")).collect();
    assert!(left.is_empty(), "a failed run left {left:?}");
}

#[test]
fn unknown_images_and_tags_are_all_reported_together() {
    let reg = Registry::start();
    images::push_all(&reg, &images::corpus());
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    let spec = simple_spec(dir.path(), &h, &["team/app:1.0", "team/app:no-such-tag", "nobody/here:1"]);
    let r = create(&spec, &dir.path().join("out"), &dir.path().join("cache"));
    assert_eq!(r.code(), 5, "{}", r.stderr());
    let err = r.stderr();
    assert!(err.contains("team/app:no-such-tag") && err.contains("nobody/here:1"), "{err}");
    assert!(err.contains("2 image(s)"), "{err}");
    no_bundle_in(&dir.path().join("out"));
}

#[test]
fn wrong_credentials_name_the_registry_and_never_print_the_secret() {
    let reg =
        Registry::start_with(RegistryOptions { tls: false, auth: Some(("edge".into(), "right-password".into())) });
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    std::fs::write(dir.path().join("pw"), "Wr0ng-S3cret-Value\n").unwrap();
    let spec = write_spec(
        dir.path(),
        &format!("name: s\nimages:\n  - {h}/team/app:1.0\nregistries:\n  - host: {h}\n    insecure: true\n    username: edge\n    passwordFile: pw\n"),
    );
    let r = edgeiso(
        &[
            "-vv",
            "bundle",
            "create",
            "--spec",
            p(&spec),
            "--output",
            p(&dir.path().join("out")),
            "--cache",
            p(&dir.path().join("c")),
        ],
        &[],
    );
    assert_eq!(r.code(), 5, "{}", r.stderr());
    assert!(r.stderr().contains(&h) && r.stderr().contains("credentials"), "{}", r.stderr());
    assert!(!r.stderr().contains("Wr0ng-S3cret-Value") && !r.stdout().contains("Wr0ng-S3cret-Value"), "secret leaked");

    // The right password works (the registry is real, with htpasswd auth).
    images::push_all(&reg, &images::corpus());
    std::fs::write(dir.path().join("pw"), "right-password\n").unwrap();
    create(&spec, &dir.path().join("out"), &dir.path().join("c")).ok();
}

#[test]
fn docker_auth_file_supplies_credentials_when_the_spec_has_none() {
    let reg = Registry::start_with(RegistryOptions {
        tls: false,
        auth: Some(("edge".into(), "pw-from-docker-config".into())),
    });
    images::push_all(&reg, &images::corpus());
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    let auth = base64_encode(b"edge:pw-from-docker-config");
    std::fs::write(dir.path().join("auth.json"), format!(r#"{{"auths":{{"{h}":{{"auth":"{auth}"}}}}}}"#)).unwrap();
    let spec = simple_spec(dir.path(), &h, &["team/app:1.0"]);
    edgeiso(
        &[
            "bundle",
            "create",
            "--spec",
            p(&spec),
            "--output",
            p(&dir.path().join("out")),
            "--cache",
            p(&dir.path().join("c")),
        ],
        &[("REGISTRY_AUTH_FILE", p(&dir.path().join("auth.json")))],
    )
    .ok();
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn registry_down_mid_pull_fails_clearly_then_resumes() {
    let mut reg = Registry::start();
    let big = images::image_with_layer("team/big", "1", 48 << 20, 3);
    images::push(&reg, &big);
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    let spec = simple_spec(dir.path(), &h, &["team/big:1"]);
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso"))
        .args(["bundle", "create", "--spec", p(&spec), "--output", p(&out), "--cache", p(&cache)])
        .env("EDGEISO_RETRY_BASE_MS", "50")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the registry once the big layer is on its way.
    let blobs = cache.join("blobs/sha256");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !tree(&blobs).iter().any(|f| f.ends_with(".partial")) {
        assert!(std::time::Instant::now() < deadline, "download never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    reg.stop();
    let r = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(!r.status.success(), "must fail with the registry down");
    assert!(err.contains(&h), "error must name the registry: {err}");
    no_bundle_in(&out);
    assert!(!tree(&blobs).iter().any(|f| f.ends_with(".partial")), "partial download left behind");

    reg.restart();
    create(&spec, &out, &cache).ok();
    edgeiso(&["bundle", "verify", p(&out.join("content-s.tar"))], &[]).ok();
}

#[test]
fn a_registry_serving_wrong_bytes_is_caught_naming_the_blob() {
    let reg = Registry::start();
    let img = images::image_with_layer("team/app", "1.0", 64 << 10, 5);
    images::push(&reg, &img);
    // Corrupt the layer in the registry's own storage.
    let (layer, bytes) = img.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
    let data =
        reg.storage_dir().join(format!("docker/registry/v2/blobs/sha256/{}/{}/data", &layer.hex()[..2], layer.hex()));
    let mut evil = bytes.clone();
    evil[100] ^= 0xff;
    std::fs::write(&data, &evil).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    let spec = simple_spec(dir.path(), &h, &["team/app:1.0"]);
    let r = create(&spec, &dir.path().join("out"), &dir.path().join("cache"));
    assert_eq!(r.code(), 4, "{}", r.stderr());
    assert!(r.stderr().contains(layer.as_str()), "must name the blob: {}", r.stderr());
    no_bundle_in(&dir.path().join("out"));
    assert!(!dir.path().join("cache/blobs/sha256").join(layer.hex()).exists(), "bad blob entered the cache");
}

#[test]
fn disk_full_leaves_no_partial_bundle() {
    let reg = Registry::start();
    images::push(&reg, &images::image_with_layer("team/app", "1.0", 3 << 20, 11));
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", p(&small)])
        .status()
        .unwrap();
    assert!(mount.success(), "tests run as root and mount a 1 MiB tmpfs to fill");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&small);
    let h = reg.host();
    let spec = simple_spec(dir.path(), &h, &["team/app:1.0"]);
    let r = create(&spec, &small, &dir.path().join("cache"));
    assert_ne!(r.code(), 0);
    assert!(r.stderr().contains("content-s.tar") && r.stderr().to_lowercase().contains("space"), "{}", r.stderr());
    assert_eq!(tree(&small), Vec::<String>::new(), "nothing may be left on the full disk");
}

#[test]
fn a_typo_in_the_spec_names_file_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "name: s\nimages:\n  - nginx\nregistries:\n  - host: 127.0.0.1:5000\n    insecur: true\n",
    );
    let r = create(&spec, &dir.path().join("out"), &dir.path().join("cache"));
    assert_eq!(r.code(), 3, "{}", r.stderr());
    let err = r.stderr();
    assert!(err.contains("site.yaml:6:5"), "{err}");
    assert!(err.contains("insecure"), "did-you-mean missing: {err}");
}

#[test]
fn verify_names_the_corrupted_blob_and_its_image() {
    let reg = Registry::start();
    let img = images::image_with_layer("team/app", "1.0", 64 << 10, 5);
    images::push(&reg, &img);
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    let spec = simple_spec(dir.path(), &h, &["team/app:1.0"]);
    create(&spec, &dir.path().join("out"), &dir.path().join("cache")).ok();
    let path = dir.path().join("out/content-s.tar");
    let bundle = edgeiso_bundle::Bundle::open(&path).unwrap();
    let (layer, _) = img.blobs.iter().max_by_key(|(_, b)| b.len()).unwrap();
    let loc = bundle.blob(layer).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(loc.offset + 10) as usize] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let r = edgeiso(&["bundle", "verify", p(&path)], &[]);
    assert_eq!(r.code(), 4, "{}", r.stderr());
    assert!(
        r.stderr().contains(&layer.blob_path()) && r.stderr().contains(&format!("{h}/team/app:1.0")),
        "{}",
        r.stderr()
    );

    // A missing last part is named too.
    let parts = dir.path().join("parts");
    edgeiso(
        &[
            "bundle",
            "create",
            "--spec",
            p(&spec),
            "--output",
            p(&parts),
            "--cache",
            p(&dir.path().join("cache")),
            "--part-size",
            "20000",
        ],
        &[],
    )
    .ok();
    let last = tree(&parts).into_iter().filter(|n| n.contains(".part")).max().unwrap();
    std::fs::remove_file(parts.join(&last)).unwrap();
    let r = edgeiso(&["bundle", "verify", p(&parts.join("content-s.tar.part000"))], &[]);
    assert_eq!(r.code(), 4, "{}", r.stderr());
    assert!(r.stderr().contains(&last) && r.stderr().contains("missing"), "must name the missing part: {}", r.stderr());
}

#[test]
fn killed_run_resumes_without_downloading_finished_blobs() {
    let reg = Registry::start();
    let corpus = images::corpus();
    images::push_all(&reg, &corpus);
    let big = images::image_with_layer("team/big", "1", 64 << 20, 21);
    images::push(&reg, &big);
    let dir = tempfile::tempdir().unwrap();
    let h = reg.host();
    let spec = simple_spec(dir.path(), &h, &["team/big:1", "team/app:1.0", "team/web:2.1"]);
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso"))
        .args(["bundle", "create", "--spec", p(&spec), "--output", p(&out), "--cache", p(&cache)])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let blobs = cache.join("blobs/sha256");
    let finished = |t: &[String]| t.iter().filter(|f| !f.ends_with(".partial")).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let t = tree(&blobs);
        if t.iter().any(|f| f.ends_with(".partial")) && finished(&t) >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never got mid-download: {t:?}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup code runs
    child.wait().unwrap();
    let cached_before: Vec<String> = tree(&blobs).into_iter().filter(|f| !f.ends_with(".partial")).collect();
    assert!(!cached_before.is_empty());
    no_bundle_in(&out);

    let r =
        edgeiso(&["--json", "bundle", "create", "--spec", p(&spec), "--output", p(&out), "--cache", p(&cache)], &[])
            .ok();
    let pulled: Vec<String> = r
        .events("blob")
        .iter()
        .map(|e| e["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned())
        .collect();
    assert!(!pulled.is_empty(), "the unfinished big layer must be pulled");
    for d in &pulled {
        assert!(!cached_before.contains(d), "finished blob {d} downloaded again");
    }
    assert!(!tree(&blobs).iter().any(|f| f.ends_with(".partial")), "stale partial files not swept");
    edgeiso(&["bundle", "verify", p(&out.join("content-s.tar"))], &[]).ok();
}

/// A bundle whose name carries terminal escape sequences is refused by
/// verify and inspect, naming the bundle and the entry, escaped: nothing of
/// it reaches the terminal as a control character, with or without --json.
#[test]
fn a_bundle_with_escape_sequences_in_a_name_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = edgeiso_testkit::bundles::write_bundle_with_hostile_name(dir.path());
    for args in [vec!["bundle", "verify"], vec!["bundle", "inspect"], vec!["--json", "bundle", "inspect"]] {
        let mut args = args.clone();
        args.push(p(&path));
        let r = edgeiso(&args, &[]);
        assert_ne!(r.code(), 0, "{args:?}: {}", r.stderr());
        let (out, err) = (r.stdout(), r.stderr());
        for text in [&out, &err] {
            assert!(!text.contains(['\u{1b}', '\u{7}']), "{args:?}: a control character got through: {text:?}");
        }
        let all = format!("{out}{err}");
        assert!(all.contains("content-hostile.tar"), "names the bundle: {all}");
        assert!(all.contains("bundle.json: name site\\u{1b}[31m"), "names the entry, escaped: {all}");
    }
}

/// Two `bundle create` runs into one output folder, for one bundle name:
/// the second fails at once, naming the folder and the run that holds it,
/// and never replaces the first's bundle; once the first has ended, a run
/// goes ahead. (The first run is held up by a registry that accepts
/// connections and never answers.)
#[test]
fn a_second_create_into_the_same_output_fails_naming_the_first() {
    use std::process::{Command, Stdio};
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_host = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let reg = Registry::start();
    images::push_all(&reg, &images::corpus());
    let dir = tempfile::tempdir().unwrap();
    let (first_dir, second_dir) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let first_spec = simple_spec(&first_dir, &silent_host, &["team/app:1.0"]);
    let second_spec = simple_spec(&second_dir, &reg.host(), &["team/app:1.0"]);
    let out = dir.path().join("out");
    let mut first = Command::new(env!("CARGO_BIN_EXE_edgeiso"))
        .args(["bundle", "create", "--spec", p(&first_spec), "--output", p(&out), "--cache", p(&dir.path().join("c1"))])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first run holds the lock once it has written its pid into it.
    let lock = edgeiso::output_lock::lock_path(&out, "s");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).unwrap_or_default().contains(&format!("pid {}", first.id())) {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the first run never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = create(&second_spec, &out, &dir.path().join("c2"));
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(still_running, "the runs overlapped");
    assert_eq!(second.code(), 1, "{}", second.stderr());
    let err = second.stderr();
    assert!(err.contains(p(&out)) && err.contains("another run is writing bundle content-s.tar"), "{err}");
    assert!(err.contains(&format!("edgeiso pid {}", first.id())), "names the other run: {err}");
    let left: Vec<String> = tree(&out).into_iter().filter(|f| f.ends_with(".tar")).collect();
    assert!(left.is_empty(), "{left:?}");
    // The first run is gone (killed): its lock went with it (the file stays).
    create(&second_spec, &out, &dir.path().join("c2")).ok();
    assert!(out.join("content-s.tar").exists());
}
