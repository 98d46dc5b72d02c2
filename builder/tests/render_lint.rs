//! `edgeiso render` and `edgeiso lint` as a pipeline calls them: files, exit
//! codes, `--json`. (The rendering itself is tested in installer-config.)

mod common;

use common::{edgeiso, p, write_spec};

/// A spec `name` of one `image`, its Harbor's admin password in a file, and
/// `harbor` (more lines of the harbor section).
fn harbor_site(dir: &std::path::Path, name: &str, image: &str, harbor: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("harbor-pw"), "Harbor12345\n").unwrap();
    write_spec(dir, &format!("name: {name}\nimages:\n  - {image}\nharbor:\n  adminPasswordFile: harbor-pw\n{harbor}"))
}

#[test]
fn render_writes_the_site_and_reports_it_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let spec = harbor_site(dir.path(), "store-042", "docker.io/library/nginx:1.25", "");
    let out = dir.path().join("site");
    let r = edgeiso(&["--json", "render", "--spec", p(&spec), "--output", p(&out)], &[]).ok();
    let ev = &r.events("rendered")[0];
    let files: Vec<&str> = ev["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(files.contains(&"config.yaml"), "{files:?}");
    let config = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    assert!(config.starts_with("#cloud-config\n"), "{config}");
    assert!(config.contains("stylus"), "{config}");
    assert!(out.join("containerd/certs.d/docker.io/hosts.toml").is_file(), "mirror config for docker.io: {files:?}");
    assert!(!r.stdout().contains("Harbor12345") && !r.stderr().contains("Harbor12345"), "secret leaked");
}

#[test]
fn lint_fails_on_always_pull_images_and_fix_writes_a_clean_copy() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("k3s.yaml");
    std::fs::write(&profile, "write-kubeconfig-mode: \"0644\"\nkube-apiserver-arg:\n  - enable-admission-plugins=NodeRestriction,AlwaysPullImages\n").unwrap();
    let r = edgeiso(&["lint", "--profile", p(&profile)], &[]);
    assert_eq!(r.code(), 4, "{}", r.stderr());
    assert!(r.stderr().contains("k3s.yaml:3"), "must name the line: {}", r.stderr());
    let fixed = dir.path().join("k3s.fixed.yaml");
    let r = edgeiso(&["lint", "--profile", p(&profile), "--fix", p(&fixed)], &[]);
    assert_eq!(r.code(), 4, "the original still fails: {}", r.stderr());
    let text = std::fs::read_to_string(&fixed).unwrap();
    assert!(text.contains("NodeRestriction") && !text.contains("AlwaysPullImages"), "{text}");
    edgeiso(&["lint", "--profile", p(&fixed)], &[]).ok();
}

#[test]
fn render_refuses_a_bad_spec_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "name: s\nimages: [nginx]\nharbor:\n  urll: https://x\n");
    let r = edgeiso(&["render", "--spec", p(&spec), "--output", p(&dir.path().join("o"))], &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("site.yaml:4") && r.stderr().contains("url"), "{}", r.stderr());
    assert!(!dir.path().join("o").exists());
}

#[test]
fn render_checks_harbor_storage_against_what_a_thin_bundle_leaves_out_too() {
    let dir = tempfile::tempdir().unwrap();
    let spec = harbor_site(dir.path(), "s", "docker.io/team/app:1.0", "  storage: {registry: 1Mi}\n");
    // 2 MiB of layer, none of it in the bundle: Harbor still ends up holding it.
    let image = edgeiso_testkit::images::image_with_layer("team/app", "1.0", 2 << 20, 9);
    let entries = [edgeiso_testkit::bundles::Entry::workload(&image, "docker.io/team/app:1.0")];
    let thin = edgeiso_testkit::bundles::write_thin_bundle(dir.path(), "s", &entries);
    assert!(std::fs::metadata(&thin).unwrap().len() < 64 << 10);
    let out = dir.path().join("site");
    let r = edgeiso(&["render", "--spec", p(&spec), "--output", p(&out), "--bundle", p(&thin)], &[]);
    assert_ne!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("harbor.storage.registry 1Mi") && r.stderr().contains("2.0 MiB of unique"),
        "{}",
        r.stderr()
    );
}
