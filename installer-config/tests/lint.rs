//! `lint`: AlwaysPullImages in every form it hides in, `--fix`, storage
//! against the bundle, the storage layer, and host prerequisites.

use std::path::Path;

use edgeiso_installer_config::lint::{fix_profile, fix_text, lint_profile, lint_profile_text, Severity};
use edgeiso_installer_config::{check_site, Spec};

/// `fix_profile`, and the copy written the way `edgeiso lint --fix` writes it.
fn fix(input: &Path, out: &Path) -> edgeiso_installer_config::FixReport {
    let report = fix_profile(input, out).unwrap();
    edgeiso_contract::fs::write_atomic_with_mode(out, report.text.as_bytes(), report.mode).unwrap();
    report
}

fn lint(text: &str) -> edgeiso_installer_config::LintReport {
    lint_profile_text(text, Path::new("profile.yaml")).unwrap()
}

fn error_lines(text: &str) -> Vec<Option<u64>> {
    lint(text).errors().map(|f| f.line).collect()
}

/// Palette's k3s/RKE2 pack values: `cluster.config.kube-apiserver-arg`.
const SEED: &str = "\
pack:
  k8sHardening: True
cluster:
  config:
    # Enable audit logging
    kube-apiserver-arg:
      - anonymous-auth=true
      - profiling=false
      - disable-admission-plugins=AlwaysAdmit
      - enable-admission-plugins=AlwaysPullImages,EventRateLimit,NamespaceLifecycle,ServiceAccount,NodeRestriction
    kube-controller-manager-arg:
      - profiling=false
";

#[test]
fn seed_form_fails_naming_the_line() {
    let r = lint(SEED);
    assert_eq!(r.errors().map(|f| f.line).collect::<Vec<_>>(), [Some(10)]);
    let msg = r.to_string();
    assert!(msg.contains("error: profile.yaml:10: AlwaysPullImages is in enable-admission-plugins"), "{msg}");
    // This file shows no storage layer: a warning, not an error.
    assert!(r.warnings().any(|w| w.message.contains("storage (CSI) layer")), "{msg}");
}

#[test]
fn clean_profiles_pass() {
    let clean = SEED.replace("AlwaysPullImages,", "");
    assert!(!lint(&clean).has_errors());
    // Only disabling, or only mentioning it in a comment, is fine.
    assert!(error_lines("kube-apiserver-arg:\n  - disable-admission-plugins=AlwaysPullImages\n").is_empty());
    assert!(error_lines("# enable-admission-plugins=AlwaysPullImages\nkube-apiserver-arg: []\n").is_empty());
    // A plugin whose name merely starts the same.
    assert!(error_lines("kube-apiserver-arg:\n  - enable-admission-plugins=AlwaysPullImagesX\n").is_empty());
}

#[test]
fn plain_k3s_config_forms() {
    // List form, with leading dashes and quotes.
    let t = "write-kubeconfig-mode: \"0644\"\nkube-apiserver-arg:\n  - \"--enable-admission-plugins=NodeRestriction,AlwaysPullImages\"\n";
    assert_eq!(error_lines(t), [Some(3)]);
    // A single string.
    assert_eq!(error_lines("kube-apiserver-arg: enable-admission-plugins=AlwaysPullImages\n"), [Some(1)]);
    // k3s ships local-path storage: no storage warning...
    assert_eq!(lint(t).warnings().count(), 0);
    // ...unless it is disabled.
    let r = lint("disable: [local-storage]\nkube-apiserver-arg: []\n");
    assert!(r.warnings().any(|w| w.message.contains("local-storage is disabled")), "{r}");
}

#[test]
fn yaml_inside_strings_and_kubeadm_form() {
    // `cluster.config` as a block scalar (older packs), kubeadm-style key.
    let t = "\
cluster:
  config: |
    clusterConfiguration:
      apiServer:
        extraArgs:
          enable-admission-plugins: AlwaysPullImages,NamespaceLifecycle,NodeRestriction
";
    assert_eq!(error_lines(t), [Some(6)]);
    // An exported profile: pack values are strings; a CSI layer is present.
    let t = r#"{"metadata": {"name": "edge"}, "spec": {"template": {"packs": [
  {"name": "edge-k3s", "layer": "k8s", "values": "cluster:\n  config:\n    kube-apiserver-arg:\n      - enable-admission-plugins=AlwaysPullImages\n"},
  {"name": "csi-longhorn", "layer": "csi", "values": ""}
]}}}
"#;
    let r = lint(t);
    // The plugin sits inside a JSON string: no line of its own to name.
    assert_eq!(r.errors().map(|f| f.line).collect::<Vec<_>>(), [None]);
    assert_eq!(r.warnings().count(), 0, "{r}");
    // Same profile without a CSI pack warns.
    let r = lint(&t.replace("\"csi-longhorn\", \"layer\": \"csi\"", "\"addon\", \"layer\": \"addon\""));
    assert!(r.warnings().any(|w| w.message.contains("has no storage (CSI) layer")), "{r}");
}

#[test]
fn fix_writes_a_corrected_copy() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("profile.yaml");
    std::fs::write(&input, SEED).unwrap();
    let out = d.path().join("fixed.yaml");
    let report = fix(&input, &out);
    assert_eq!(report.changed_lines, [10]);
    let fixed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(fixed, SEED.replace("AlwaysPullImages,", ""));
    assert!(fixed.contains("# Enable audit logging"), "comments kept");
    assert!(!lint_profile(&out).unwrap().has_errors());
    // The input is untouched, and cannot be the output.
    assert_eq!(std::fs::read_to_string(&input).unwrap(), SEED);
    let e = fix_profile(&input, &input).unwrap_err().to_string();
    assert!(e.contains("new file"), "{e}");
    // When it cannot be fixed line by line, say so rather than write a copy that still fails.
    let json = d.path().join("p.json");
    std::fs::write(&json, r#"{"packs": [{"name": "k3s", "values": "kube-apiserver-arg:\n  - enable-admission-plugins=AlwaysPullImages\n"}]}"#)
        .unwrap();
    let e = fix_profile(&json, &d.path().join("p2.json")).unwrap_err().to_string();
    assert!(e.contains("edit the file by hand"), "{e}");
    assert!(!d.path().join("p2.json").exists());
}

#[test]
fn fix_drops_a_list_left_empty() {
    let (t, changed) =
        fix_text("kube-apiserver-arg:\n  - profiling=false\n  - enable-admission-plugins=AlwaysPullImages\n");
    assert_eq!(t, "kube-apiserver-arg:\n  - profiling=false\n");
    assert_eq!(changed, [3]);
}

#[test]
fn fix_removes_only_the_offending_setting() {
    // Block list: only the plugin leaves a comma list; a lone plugin drops its item.
    let (t, c) = fix_text("kube-apiserver-arg:\n  - enable-admission-plugins=NodeRestriction,AlwaysPullImages\n  - anonymous-auth=false\n");
    assert_eq!(t, "kube-apiserver-arg:\n  - enable-admission-plugins=NodeRestriction\n  - anonymous-auth=false\n");
    assert_eq!(c, [2]);
    // Flow list: the item goes, its neighbours stay.
    let (t, c) = fix_text("kube-apiserver-arg: [enable-admission-plugins=AlwaysPullImages, anonymous-auth=false]\n");
    assert_eq!(t, "kube-apiserver-arg: [anonymous-auth=false]\n");
    assert_eq!(c, [1]);
    let (t, _) =
        fix_text("kube-apiserver-arg: [anonymous-auth=false, \"--enable-admission-plugins=AlwaysPullImages\"]\n");
    assert_eq!(t, "kube-apiserver-arg: [anonymous-auth=false]\n");
    let (t, _) = fix_text("kube-apiserver-arg: [a=1, enable-admission-plugins=AlwaysPullImages, b=2]\n");
    assert_eq!(t, "kube-apiserver-arg: [a=1, b=2]\n");
    let (t, _) = fix_text(
        "kube-apiserver-arg: [\"enable-admission-plugins=NodeRestriction,AlwaysPullImages\", anonymous-auth=false]\n",
    );
    assert_eq!(t, "kube-apiserver-arg: [\"enable-admission-plugins=NodeRestriction\", anonymous-auth=false]\n");
    // One string holding several flags: only the flag goes.
    let (t, c) = fix_text("args: \"--enable-admission-plugins=AlwaysPullImages --anonymous-auth=false\"\n");
    assert_eq!(t, "args: \"--anonymous-auth=false\"\n");
    assert_eq!(c, [1]);
    let (t, _) = fix_text("args: \"--anonymous-auth=false --enable-admission-plugins=AlwaysPullImages\"\n");
    assert_eq!(t, "args: \"--anonymous-auth=false\"\n");
    let (t, _) =
        fix_text("args: --anonymous-auth=false --enable-admission-plugins=NodeRestriction,AlwaysPullImages # c\n");
    assert_eq!(t, "args: --anonymous-auth=false --enable-admission-plugins=NodeRestriction # c\n");
    // A single string that is only the flag: the key has nothing left, the line goes.
    let (t, _) = fix_text("a: 1\nkube-apiserver-arg: \"--enable-admission-plugins=AlwaysPullImages\"\nb: 2\n");
    assert_eq!(t, "a: 1\nb: 2\n");
    // Comma plugin list under a kubeadm key.
    let (t, _) = fix_text("    enable-admission-plugins: NodeRestriction,AlwaysPullImages,EventRateLimit # keep\n");
    assert_eq!(t, "    enable-admission-plugins: NodeRestriction,EventRateLimit # keep\n");
    let (t, _) = fix_text("x:\n    enable-admission-plugins: AlwaysPullImages\n    y: 1\n");
    assert_eq!(t, "x:\n    y: 1\n");
}

#[test]
fn fixed_flow_and_string_forms_lint_clean_and_keep_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("k3s.yaml");
    let text = "kube-apiserver-arg: [enable-admission-plugins=AlwaysPullImages, anonymous-auth=false]\n";
    std::fs::write(&input, text).unwrap();
    assert!(lint_profile(&input).unwrap().has_errors());
    let out = d.path().join("fixed.yaml");
    fix(&input, &out);
    let fixed = std::fs::read_to_string(&out).unwrap();
    assert!(fixed.contains("anonymous-auth=false"), "{fixed}");
    assert!(!lint_profile(&out).unwrap().has_errors());
}

#[test]
fn fix_keeps_the_mode_of_the_input() {
    use std::os::unix::fs::PermissionsExt;
    // A profile may hold secrets (pack values with passwords): a 0600 input
    // must not become a 0644 copy.
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("profile.yaml");
    std::fs::write(&input, SEED).unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = d.path().join("fixed.yaml");
    fix(&input, &out);
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn bad_profiles_give_clear_errors() {
    let e = lint_profile_text("a: [\n", Path::new("p.yaml")).unwrap_err().to_string();
    assert!(e.starts_with("p.yaml:"), "{e}");
    let e = lint_profile(Path::new("/nonexistent/profile.yaml")).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/profile.yaml"), "{e}");
}

#[test]
fn harbor_storage_must_hold_the_bundle_plus_headroom() {
    let d = tempfile::tempdir().unwrap();
    let spec = |storage: &str| {
        Spec::from_str(&format!("name: s\nharbor:\n  storage: {{registry: {storage}}}\n"), &d.path().join("site.yaml"))
            .unwrap()
    };
    // 100 GiB of blobs needs 120 GiB.
    let bundle = 100u64 << 30;
    let r = check_site(&spec("110Gi"), Some(bundle));
    let e: Vec<_> = r.errors().collect();
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("harbor.storage.registry 110Gi") && e[0].message.contains("120.0 GiB"), "{}", e[0]);
    assert!(e[0].to_string().contains("site.yaml"), "{}", e[0]);
    assert!(!check_site(&spec("120Gi"), Some(bundle)).has_errors());
    assert!(!check_site(&spec("110Gi"), None).has_errors(), "no bundle size, nothing to compare");
    // Unset with a chart: the chart's default 5Gi is what Harbor gets.
    std::fs::write(d.path().join("c.tgz"), b"x").unwrap();
    std::fs::write(d.path().join("pw"), b"x").unwrap();
    let chart = Spec::from_str("name: s\nharbor: {chart: c.tgz, adminPasswordFile: pw}\n", &d.path().join("site.yaml"))
        .unwrap();
    let r = check_site(&chart, Some(6 << 30));
    assert!(r.errors().any(|f| f.message.contains("5Gi (the chart's default)")), "{r}");
    // Unset without a chart: cannot tell, warn (no user is meant: no other warning).
    let r = check_site(
        &Spec::from_str("name: s\ninstall: {noUsers: true}\n", &d.path().join("site.yaml")).unwrap(),
        Some(bundle),
    );
    assert!(!r.has_errors() && r.warnings().count() == 1, "{r}");
}

#[test]
fn host_prerequisites_warn() {
    let d = tempfile::tempdir().unwrap();
    let spec = |hw: &str| {
        Spec::from_str(&format!("name: s\ninstall: {{noUsers: true}}\nhardware: {hw}\n"), &d.path().join("site.yaml"))
            .unwrap()
    };
    let r = check_site(&spec("{nodes: 1, cpus: 4, memoryGiB: 8, diskGiB: 120}"), None);
    assert!(r.findings.iter().all(|f| f.severity == Severity::Warning));
    let text = r.to_string();
    assert!(text.contains("6 CPU for a single-node cluster"), "{text}");
    assert!(text.contains("12 GB for a single-node cluster"), "{text}");
    assert!(text.contains("about 300 GB"), "{text}");
    assert!(check_site(&spec("{nodes: 3, cpus: 4, memoryGiB: 8, diskGiB: 300}"), None).findings.is_empty());
    let r = check_site(&spec("{nodes: 3, cpus: 2}"), None);
    assert!(r.to_string().contains("4 CPU for each node"), "{r}");
    // No hardware described: nothing to say.
    let no_hw = Spec::from_str("name: s\ninstall: {noUsers: true}\n", &d.path().join("site.yaml")).unwrap();
    assert!(check_site(&no_hw, None).findings.is_empty());
}
