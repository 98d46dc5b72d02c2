//! `edgeiso personalize` at the command line (no boot; the boots of
//! personalised goldens are in iso_e2e.rs): one golden built by `edgeiso
//! iso`, made two sites in place and by copy; what goes into the site area
//! (the site's files that differ, its user-data for /oem, its live
//! configuration); `--show` without secrets; `--reset`; and every refusal
//! with exit 3 and the ISO unchanged.

mod common;
mod iso_common;

use std::path::{Path, PathBuf};

use common::{edgeiso, p, write_spec};
use edgeiso_testkit::files::fake_static_agent;
use edgeiso_testkit::{images, Registry};
use iso_common::{base_iso, sha256_file, E2E_EPOCH};

/// A golden ISO: the corpus' app image, Harbor at a made-up address, a
/// registry credential from a variable, a live load.
fn golden(dir: &Path, source: &Registry) -> PathBuf {
    let host = source.host();
    std::fs::write(dir.join("harbor.pw"), "Golden-Harbor-1\n").unwrap();
    let spec = write_spec(
        dir,
        &format!(
            "name: fleet\nimages:\n  - {host}/team/app:1.0\nregistries:\n  - host: {host}\n    insecure: true\n\
             site:\n  tags: {{region: east}}\n\
             harbor:\n  url: http://10.0.2.2:5999\n  adminPasswordFile: harbor.pw\nagent: {{liveLoad: true}}\n"
        ),
    );
    build_golden(dir, &spec, &["--cache", p(&dir.join("cache"))])
}

/// `edgeiso iso` of `spec` on the grub-mkrescue base, with a stand-in agent,
/// into `dir/golden.iso`.
fn build_golden(dir: &Path, spec: &Path, extra: &[&str]) -> PathBuf {
    let iso = dir.join("golden.iso");
    let agent = fake_static_agent(dir);
    let base = base_iso("grub-mkrescue");
    let args = ["iso", "--spec", p(spec), "--base", p(&base), "--output", p(&iso), "--agent", p(&agent)];
    edgeiso(&[&args[..], extra].concat(), &[("SOURCE_DATE_EPOCH", &E2E_EPOCH.to_string())]).ok();
    iso
}

fn site_file(dir: &Path, name: &str, port: u16) -> PathBuf {
    std::fs::create_dir_all(dir.join("sites")).unwrap();
    std::fs::write(dir.join(format!("sites/{name}.pw")), format!("{name}-Harbor-1\n")).unwrap();
    let path = dir.join(format!("sites/{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "site:\n  name: {name}\n  hostName: edge-{name}\n  tags: {{store: \"{name}\"}}\nharbor:\n  url: http://10.0.2.2:{port}\n  adminPasswordFile: {name}.pw\n"
        ),
    )
    .unwrap();
    path
}

/// A reader of the files a personalised ISO's site area holds, by path.
fn area_members(iso: &Path) -> impl Fn(&str) -> String {
    let x = edgeiso_overlay::iso::Xorriso::find().unwrap();
    let area = edgeiso_overlay::site_area::locate(&x, iso).unwrap();
    let edgeiso_overlay::site_area::AreaContent::Written { files, .. } = area.read().unwrap() else { panic!("empty") };
    move |path: &str| {
        let (_, bytes) = files.iter().find(|(f, _)| f.path == path).unwrap_or_else(|| panic!("{path} not in the area"));
        String::from_utf8(bytes.clone()).unwrap()
    }
}

#[test]
fn reset_and_show_refuse_an_output_they_would_not_write() {
    // `--reset` empties ISO itself: with --output it would have emptied the
    // golden while the user asked for a copy.
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("golden.iso");
    std::fs::write(&iso, b"not touched").unwrap();
    for action in ["--reset", "--show"] {
        let r = edgeiso(&["personalize", p(&iso), action, "--output", p(&dir.path().join("copy.iso"))], &[]);
        assert_eq!(r.code(), 2, "{}", r.stderr());
        assert!(r.stderr().contains("--output"), "{}", r.stderr());
        assert_eq!(std::fs::read(&iso).unwrap(), b"not touched");
    }
}

#[test]
fn one_golden_becomes_two_sites_and_back() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let source = Registry::start();
    images::push_all(&source, &images::corpus());
    let golden = golden(dir, &source);
    let golden_sum = sha256_file(&golden);

    // Empty to begin with.
    let shown = edgeiso(&["personalize", p(&golden), "--show", "--json"], &[]).ok();
    let e = &shown.events("site-area-shown")[0];
    assert_eq!(e["golden"], "fleet");
    assert!(e["site"].is_null());

    // Site 1 by copy: the golden stays as it is. The copy a killed run left
    // (its lock gone) is swept.
    let s1 = dir.join("store-1.iso");
    let orphan = dir.join(".store-1.iso.k1ll3d.partial");
    std::fs::write(&orphan, b"half a copy").unwrap();
    let run = edgeiso(
        &["personalize", p(&golden), "--site", p(&site_file(dir, "store-1", 5001)), "--output", p(&s1), "--json"],
        &[],
    )
    .ok();
    assert_eq!(sha256_file(&golden), golden_sum, "--output leaves the golden alone");
    assert!(!orphan.exists(), "a dead run's copy is swept");
    let done = &run.events("personalized")[0];
    assert_eq!(done["site"], "store-1");
    let files: Vec<String> = done["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    for want in [
        "edgeiso-site/site.yaml",
        "edgeiso/agent-live.yaml",
        "edgeiso-site/oem/98_edgeiso-reset.yaml",
        "edgeiso-site/oem/99_edgeiso-site.yaml",
        "edgeiso-site/files/edgeiso/site/agent.yaml",
        "edgeiso-site/files/edgeiso/site/harbor/admin-password",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
    }
    assert!(done["usedBytes"].as_u64().unwrap() < done["areaBytes"].as_u64().unwrap());
    assert_eq!(std::fs::metadata(&s1).unwrap().len(), std::fs::metadata(&golden).unwrap().len());

    // What the area holds: the site's registry for the live load and the
    // node; its user-data; its password never shown.
    let shown = edgeiso(&["personalize", p(&s1), "--show", "--json"], &[]).ok();
    assert!(!shown.stdout().contains("store-1-Harbor-1"), "a secret was printed");
    let e = &shown.events("site-area-shown")[0];
    assert_eq!(e["site"], "store-1");
    let file = |path: &str| e["files"].as_array().unwrap().iter().find(|f| f["path"] == path).cloned().unwrap();
    assert!(file("edgeiso/agent-live.yaml")["text"].as_str().unwrap().contains("registry: http://10.0.2.2:5001"));
    assert!(file("edgeiso-site/files/edgeiso/site/agent.yaml")["text"].as_str().unwrap().contains("10.0.2.2:5001"));
    assert!(file("edgeiso-site/files/edgeiso/site/harbor/admin-password")["text"].is_null());
    assert_eq!(file("edgeiso-site/oem/99_edgeiso-site.yaml")["mode"], 0o600);
    let human = edgeiso(&["personalize", p(&s1), "--show"], &[]).ok();
    assert!(
        human.stderr().contains("site store-1") && human.stderr().contains("secret: not shown"),
        "{}",
        human.stderr()
    );
    assert!(!human.stderr().contains("store-1-Harbor-1") && !human.stdout().contains("store-1-Harbor-1"));

    // Site 2 in place on a copy of site 1: the site's settings replace site
    // 1's. It has users, and its Harbor on https at a VIP: everything that
    // depends on them is the site's (user-data, node mirrors, certificate).
    let s2 = dir.join("store-2.iso");
    std::fs::copy(&s1, &s2).unwrap();
    let site2 = site_file(dir, "store-2", 5002);
    std::fs::write(dir.join("sites/ops.hash"), "$6$salt$hash\n").unwrap();
    let text = std::fs::read_to_string(&site2)
        .unwrap()
        .replace("http://10.0.2.2:5002", "https://10.2.0.5:30003\n  vip: 10.2.0.10");
    std::fs::write(&site2, format!("{text}users:\n  - {{name: ops, passwordFile: ops.hash, groups: [admin]}}\n"))
        .unwrap();
    edgeiso(&["personalize", p(&s2), "--site", p(&site2), "--in-place"], &[]).ok();
    let member = area_members(&s2);
    let user_data = member("edgeiso-site/oem/99_edgeiso-site.yaml");
    assert!(user_data.contains("name: store-2") && user_data.contains("hostName: edge-store-2"), "{user_data}");
    assert!(user_data.contains("ops:") && user_data.contains("$6$salt$hash"), "the site's users: {user_data}");
    assert!(
        user_data.contains("https://10.2.0.5:30003/v2/spectro-images"),
        "node mirrors to the site's Harbor: {user_data}"
    );
    assert!(!user_data.contains("10.0.2.2:5999"), "nothing of the golden's Harbor: {user_data}");
    let reset = member("edgeiso-site/oem/98_edgeiso-reset.yaml");
    assert!(
        reset.starts_with("#cloud-config\n") && reset.contains("stylus: null") && reset.contains("stages: null"),
        "{reset}"
    );
    // Harbor from the pack: its certificate (in pack-values.yaml) serves the site's VIP and host.
    let values = member("edgeiso-site/files/edgeiso/site/harbor/pack-values.yaml");
    let values = edgeiso_installer_config::yaml::parse(&values).unwrap();
    let crt = values.path(&["harbor-config", "auth", "certs", "tls.crt"]).and_then(|v| v.as_str()).unwrap().to_owned();
    std::fs::write(dir.join("site2.crt"), crt).unwrap();
    let o = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.join("site2.crt"))
        .output()
        .unwrap();
    let sans = String::from_utf8_lossy(&o.stdout);
    assert!(sans.contains("IP Address:10.2.0.10") && sans.contains("IP Address:10.2.0.5"), "{sans}");
    let shown = edgeiso(&["personalize", p(&s2), "--show", "--json"], &[]).ok();
    let e = &shown.events("site-area-shown")[0];
    assert_eq!(e["site"], "store-2");
    let live = e["files"].as_array().unwrap().iter().find(|f| f["path"] == "edgeiso/agent-live.yaml").unwrap();
    assert!(live["text"].as_str().unwrap().contains("https://10.2.0.5:30003"));

    // Reset: the golden's bytes again.
    edgeiso(&["personalize", p(&s2), "--reset"], &[]).ok();
    assert_eq!(sha256_file(&s2), golden_sum, "an emptied area is the golden, byte for byte");
}

#[test]
fn a_site_of_a_thin_golden_keeps_the_source_registries_its_agent_fetches_from() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let image = images::image_with_layer("team/app", "1.0", 4096, 5);
    let entries = [edgeiso_testkit::bundles::Entry::workload(&image, "127.0.0.1:9/team/app:1.0")];
    let thin = edgeiso_testkit::bundles::write_thin_bundle(dir, "fleet", &entries);
    std::fs::write(dir.join("source.pw"), "source-secret\n").unwrap();
    let spec = write_spec(
        dir,
        "name: fleet\nimages:\n  - 127.0.0.1:9/team/app:1.0\nregistries:\n  - host: 127.0.0.1:9\n    insecure: true\n\
         \x20   username: puller\n    passwordFile: source.pw\nharbor:\n  url: http://10.0.2.2:5999\n",
    );
    let golden = build_golden(dir, &spec, &["--bundle", p(&thin)]);
    let site = site_file(dir, "store-1", 5001);
    edgeiso(&["personalize", p(&golden), "--site", p(&site), "--in-place"], &[]).ok();
    let member = area_members(&golden);
    // The site's Harbor differs, so its agent.yaml is the site's: with the golden's sources.
    let node = member("edgeiso-site/files/edgeiso/site/agent.yaml");
    assert!(node.contains("http://10.0.2.2:5001"), "{node}");
    let node = edgeiso_contract::AgentConfig::from_yaml(&node).unwrap();
    assert_eq!(node.sources.len(), 1, "{:?}", node.sources);
    assert_eq!(node.sources[0].host, "127.0.0.1:9");
    assert!(node.sources[0].insecure);
    assert_eq!(node.sources[0].password_file.as_deref(), Some(Path::new("/usr/local/edgeiso/site/sources/0.password")));
    let live = edgeiso_contract::AgentConfig::from_yaml(&member("edgeiso/agent-live.yaml")).unwrap();
    assert_eq!(live.sources.len(), 1, "the live load fetches too: {:?}", live.sources);
}

#[test]
fn bad_input_is_refused_with_exit_3_and_the_iso_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let source = Registry::start();
    images::push_all(&source, &images::corpus());
    let golden = golden(dir, &source);
    let sum = sha256_file(&golden);
    let refused = |site_text: &str, want: &str| {
        let site = dir.join("bad.yaml");
        std::fs::write(&site, site_text).unwrap();
        let run = edgeiso(&["personalize", p(&golden), "--site", p(&site), "--in-place"], &[]);
        assert_eq!(run.code(), 3, "{}", run.stderr());
        assert!(run.stderr().contains(want), "{want}: {}", run.stderr());
        assert_eq!(sha256_file(&golden), sum, "nothing written");
    };
    refused("site: {name: s}\nimages: [nginx:1]\n", "`images` is fixed by the golden ISO");
    refused(
        "site: {name: s}\nharbor:\n  url: http://h:1\n  adminPassword: x\n",
        "secrets are not written in a site file",
    );
    refused("site: {name: s, hostNmae: x}\n", "hostName");
    refused("site: {hostName: x}\n", "site.name");
    refused(
        "site: {name: s}\nregistries:\n  - {host: other.example, username: u, passwordEnv: X}\n",
        "no registry `other.example`",
    );

    // Not a golden: a base ISO, and a plain file.
    let ok_site = site_file(dir, "s", 5001);
    let run = edgeiso(
        &["personalize", p(&base_iso("isolinux")), "--site", p(&ok_site), "--output", p(&dir.join("x.iso"))],
        &[],
    );
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("not an ISO edgeiso built"), "{}", run.stderr());
    assert!(!dir.join("x.iso").exists());
    // --output onto the golden itself would lose it.
    let run = edgeiso(&["personalize", p(&golden), "--site", p(&ok_site), "--output", p(&golden)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("is the golden itself"), "{}", run.stderr());
    assert_eq!(sha256_file(&golden), sum);
    // The flags: a site needs --in-place or --output.
    let run = edgeiso(&["personalize", p(&golden), "--site", p(&ok_site)], &[]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
}
