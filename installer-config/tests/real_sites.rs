//! What plain Kairos and Palette read from the rendered user-data (issue 11):
//! unattended install and `install.nousers`, the stylus types, the check of
//! `stylus` blocks against Palette's documented keys, the `userData` file,
//! Harbor from the profile's pack, and image names Harbor cannot store.

mod common;
use common::render_to;

use std::path::Path;

use edgeiso_installer_config::render::harbor;
use edgeiso_installer_config::yaml::{self, Value};
use edgeiso_installer_config::{check_site, RenderError, RenderOptions, Spec};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn config(out: &Path) -> Value {
    yaml::parse(&std::fs::read_to_string(out.join("config.yaml")).unwrap()).unwrap()
}

#[test]
fn no_admin_user_sets_nousers_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("site.yaml");
    let spec = Spec::from_str("name: s\n", &site).unwrap();
    let report = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    let c = config(&d.path().join("out"));
    assert_eq!(c.path(&["install", "auto"]), Some(&Value::Bool(true)));
    assert_eq!(c.path(&["install", "nousers"]), Some(&Value::Bool(true)));
    assert!(report.lint.warnings().any(|f| f.message.contains("install.nousers")), "{}", report.lint);
    // Lint alone says it too.
    assert!(check_site(&spec, None).warnings().any(|f| f.message.contains("group `admin`")));

    // install.auto: false is carried; an admin user means no nousers.
    std::fs::write(d.path().join("h"), "$6$x$y\n").unwrap();
    let spec = Spec::from_str(
        "name: s\ninstall: {auto: false}\nusers: [{name: ops, passwordFile: h, groups: [admin]}]\n",
        &site,
    )
    .unwrap();
    let report = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    let c = config(&d.path().join("out"));
    assert_eq!(c.path(&["install", "auto"]), Some(&Value::Bool(false)));
    assert_eq!(c.path(&["install", "nousers"]), None);
    assert!(!report.lint.to_string().contains("admin"), "{}", report.lint);

    // An admin user from the userData file's stages counts (Kairos looks at every stage).
    std::fs::write(
        d.path().join("ud.yaml"),
        "#cloud-config\nstages:\n  initramfs:\n    - users:\n        ops: {groups: [wheel, admin]}\n",
    )
    .unwrap();
    let spec = Spec::from_str("name: s\nuserData: ud.yaml\n", &site).unwrap();
    render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    assert_eq!(config(&d.path().join("out")).path(&["install", "nousers"]), None);
}

#[test]
fn no_users_false_without_an_admin_names_the_spec_line() {
    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("site.yaml");
    let out = d.path().join("out");
    let spec = Spec::from_str("name: s\ninstall:\n  device: auto\n  noUsers: false\n", &site).unwrap();
    let e = render_to(&spec, &out, &RenderOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("site.yaml:4") && msg.contains("install.noUsers"), "{msg}");
    assert!(!out.exists(), "nothing written on failure");
    // With a userData file lint cannot see into, render still refuses, at the line.
    std::fs::write(d.path().join("ud.yaml"), "#cloud-config\nstages: {}\n").unwrap();
    let spec = Spec::from_str("name: s\nuserData: ud.yaml\ninstall:\n  noUsers: false\n", &site).unwrap();
    let msg = render_to(&spec, &out, &RenderOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("site.yaml:4:") && msg.contains("install.noUsers"), "{msg}");
    assert!(!out.exists());
    // noUsers: true is said without a warning.
    let spec = Spec::from_str("name: s\ninstall: {noUsers: true}\n", &site).unwrap();
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert_eq!(config(&out).path(&["install", "nousers"]), Some(&Value::Bool(true)));
    assert!(!report.lint.to_string().contains("nousers") && !report.warnings.iter().any(|w| w.contains("nousers")));
}

#[test]
fn external_registries_get_a_certificate_list_and_insecure() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let ca = std::fs::read_to_string(Path::new(FIXTURES).join("tls/ca.crt")).unwrap();
    let crt = std::fs::read_to_string(Path::new(FIXTURES).join("tls/tls.crt")).unwrap();
    std::fs::write(p.join("bundle.pem"), format!("# two certificates\n{ca}{crt}")).unwrap();
    std::fs::write(p.join("pw"), "pull\n").unwrap();
    let text = "name: s\ninstall: {noUsers: true}\nregistries:\n  - {host: reg.example:5000, insecure: true, username: u, passwordFile: pw}\n  - {host: sec.example, caFile: bundle.pem, username: u, passwordFile: pw}\nsite:\n  externalRegistries:\n    registries: [{registry: reg.example:5000}, {registry: sec.example}]\n";
    let spec = Spec::from_str(text, &p.join("site.yaml")).unwrap();
    render_to(&spec, &p.join("out"), &RenderOptions::default()).unwrap();
    let c = config(&p.join("out"));
    let regs = c.path(&["stylus", "externalRegistries", "registries"]).unwrap().as_seq().unwrap();
    assert_eq!(regs[0].path(&["insecure"]), Some(&Value::Bool(true)));
    assert_eq!(regs[0].path(&["certificates"]), None);
    assert_eq!(regs[1].path(&["insecure"]), None);
    let certs = regs[1].path(&["certificates"]).unwrap().as_seq().unwrap();
    assert_eq!(certs.len(), 2, "one string per certificate");
    assert_eq!(certs[0].as_str(), Some(ca.as_str()));
    assert_eq!(certs[1].as_str(), Some(crt.as_str()));
}

#[test]
fn user_data_stylus_keys_are_checked_with_line_and_suggestion() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let out = p.join("out");
    let run = |user: &str| {
        std::fs::write(p.join("ud.yaml"), user).unwrap();
        let spec =
            Spec::from_str("name: s\ninstall: {noUsers: true}\nuserData: ud.yaml\n", &p.join("site.yaml")).unwrap();
        render_to(&spec, &out, &RenderOptions::default())
    };
    // A typo: file, line, the key meant.
    let e = run("#cloud-config\nstylus:\n  localUI:\n    prot: 5080\n").unwrap_err();
    assert!(matches!(e, RenderError::Stylus(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("ud.yaml:4: stylus.localUI.prot") && msg.contains("did you mean `port`?"), "{msg}");
    assert!(!out.exists(), "nothing written on failure");
    // A wrong type, inside a list.
    let e = run("#cloud-config\nstylus:\n  site:\n    deviceUIDPaths:\n      - name: /sys/x\n        regex: 7\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ud.yaml:6: stylus.site.deviceUIDPaths[0].regex: must be a string, found a number"), "{e}");
    let e = run("#cloud-config\nstylus:\n  localUI: {port: \"5080\"}\n").unwrap_err().to_string();
    assert!(e.contains("stylus.localUI.port: must be an integer"), "{e}");
    let e = run("#cloud-config\nstylus:\n  managementMode: locl\n").unwrap_err().to_string();
    assert!(e.contains("ud.yaml:3:") && e.contains("did you mean `local`?"), "{e}");
    let e = run("#cloud-config\nstylus: [a]\n").unwrap_err().to_string();
    assert!(e.contains("stylus: must be a mapping"), "{e}");
    // Keys with no typed spec key are welcome in userData.
    run("#cloud-config\nstylus:\n  localUI: {port: 5081}\n  includeTui: true\n  enableMultiNode: true\n  vip: {skip: true}\n  imageRedirectWebhook: {port: 8443}\n  featureGate: UserDataForm\n  site:\n    deviceUIDPaths: [{name: /sys/class/dmi/id/board_serial, regex: \"[A-Z0-9]+\"}]\n    prefix: store\n    tagsFromFile: {fileName: /etc/palette/tags.txt, delimiter: \";\"}\n")
        .unwrap();
    let c = config(&out);
    assert_eq!(c.path(&["stylus", "localUI", "port"]), Some(&Value::Int(5081)));
    assert_eq!(c.path(&["stylus", "managementMode"]).and_then(Value::as_str), Some("local"));
}

#[test]
fn user_data_must_be_a_cloud_config_named_at_the_spec_line() {
    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("site.yaml");
    let err = |text: &str| Spec::from_str(text, &site).unwrap_err().to_string();
    let e = err("name: s\nuserData: /etc/shadow\n");
    assert!(e.contains("site.yaml:2:") && e.contains("userData"), "{e}");
    assert!(!e.contains("root:"), "{e}");
    let e = err("name: s\nuserData: /etc/passwd\n");
    assert!(e.contains("site.yaml:2:") && e.contains("#cloud-config"), "{e}");
    assert!(!e.contains("root:"), "never the content: {e}");
    std::fs::write(d.path().join("list.yaml"), "#cloud-config\n- a\n- b\n").unwrap();
    let e = err("name: s\n\nuserData: list.yaml\n");
    assert!(e.contains("site.yaml:3:") && e.contains("must be a mapping, found a list"), "{e}");
    std::fs::write(d.path().join("bin"), b"#cloud-config\n\xff\xfe").unwrap();
    assert!(err("name: s\nuserData: bin\n").contains("not UTF-8"));
    std::fs::write(d.path().join("big.yaml"), format!("#cloud-config\n#{}\n", "x".repeat(3 << 20))).unwrap();
    assert!(err("name: s\nuserData: big.yaml\n").contains("over 2 MiB"));
}

#[test]
fn harbor_from_the_pack_gets_pack_values_not_a_secret() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("pw"), "Harbor12345\n").unwrap();
    let text = "name: s\ninstall: {noUsers: true}\nharbor:\n  url: https://harbor.site.example:30003\n  vip: 10.1.2.3\n  adminPasswordFile: pw\n  storage: {registry: 300Gi, database: 2Gi}\n";
    let spec = Spec::from_str(text, &p.join("site.yaml")).unwrap();
    let out = p.join("out");
    let report = render_to(&spec, &out, &RenderOptions::default()).unwrap();
    assert!(!out.join("manifests/harbor-secrets.yaml").exists(), "the pack makes harbor/harbor-tls itself");
    let all: String = report.files.iter().map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).collect();
    assert!(!all.contains("name: harbor-tls"), "no Secret harbor-tls of ours anywhere");
    let pack = out.join(harbor::PACK_VALUES);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&pack).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let v = yaml::parse(&std::fs::read_to_string(&pack).unwrap()).unwrap();
    let s = |path: &[&str]| v.path(path).and_then(Value::as_str).unwrap_or_else(|| panic!("{path:?}")).to_owned();
    assert_eq!(s(&["harbor-config", "auth", "password"]), "Harbor12345");
    assert_eq!(s(&["harbor-config", "storage", "registry"]), "300Gi");
    assert_eq!(s(&["harbor-config", "storage", "database"]), "2Gi");
    // The agent pushes to harbor.url's host: the certificate must cover it.
    let agent =
        edgeiso_contract::AgentConfig::from_yaml(&std::fs::read_to_string(out.join("agent.yaml")).unwrap()).unwrap();
    assert_eq!(agent.registry.as_deref(), Some("https://harbor.site.example:30003"));
    if edgeiso_testkit::tools_present("harbor_from_the_pack_gets_pack_values_not_a_secret", &["openssl"]) {
        let crt = p.join("tls.crt");
        std::fs::write(&crt, s(&["harbor-config", "auth", "certs", "tls.crt"])).unwrap();
        let ca = p.join("ca.crt");
        std::fs::write(&ca, s(&["harbor-config", "auth", "certs", "ca.crt"])).unwrap();
        // openssl checks the name the agent uses against the certificate.
        let sans = common::openssl::verified_sans(&ca, &crt, Some("harbor.site.example"));
        for want in ["DNS:spectro.registry.local", "IP Address:10.1.2.3", "DNS:harbor.site.example"] {
            assert!(sans.contains(want), "{sans}");
        }
    }
}

#[test]
fn lint_reads_the_harbor_packs_storage_from_the_profile() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("profile.yaml"),
        "packs:\n  - name: csi-rook-ceph\n  - name: harbor-edge-native-config\n    values: |\n      harbor-config:\n        storage:\n          registry: 100\n",
    )
    .unwrap();
    // The spec says 1Ti, but the pack's 100 GB is what Harbor gets.
    let spec = Spec::from_str(
        "name: s\ninstall: {noUsers: true}\nprofile: profile.yaml\nharbor: {storage: {registry: 1Ti}}\n",
        &p.join("site.yaml"),
    )
    .unwrap();
    let r = check_site(&spec, Some(100 << 30));
    let e: Vec<_> = r.errors().collect();
    assert_eq!(e.len(), 1, "{r}");
    assert!(
        e[0].to_string().contains("profile.yaml") && e[0].message.contains("harbor-config.storage.registry 100"),
        "{}",
        e[0]
    );
    assert!(!check_site(&spec, Some(50 << 30)).has_errors());
}

#[test]
fn image_names_harbor_cannot_store_are_refused_at_spec_load() {
    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("site.yaml");
    // `spectro-images/` (15) + `docker.io/` (10) + path: 255 fits, 256 does not.
    let path_of = |n: usize| format!("a/{}", "b".repeat(n - 2));
    let fits = path_of(255 - 25);
    Spec::from_str(&format!("name: s\nimages:\n  - docker.io/{fits}:1\n"), &site).unwrap();
    let long = path_of(256 - 25);
    let e = Spec::from_str(&format!("name: s\nimages:\n  - nginx:1\n  - docker.io/{long}:1\n"), &site)
        .unwrap_err()
        .to_string();
    assert!(e.contains("site.yaml:4:") && e.contains("images") && e.contains("256 characters"), "{e}");
    // The project counts too, and bootstrap images are held to it as well.
    let e = Spec::from_str(
        &format!("name: s\nharbor: {{project: spectro-images-2}}\nbootstrapImages:\n  - docker.io/{fits}:1\n"),
        &site,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("site.yaml:4:") && e.contains("bootstrapImages"), "{e}");
}

/// A Harbor certificate the site brings is checked when the spec is read,
/// with the verifier the agent uses: it must chain to `caFile` and serve
/// `harbor.url`'s host, and with Harbor from the pack also
/// `spectro.registry.local` and the VIP. A miss names the spec line and the
/// name; a certificate that covers everything is taken as it is.
#[test]
fn a_harbor_certificate_the_site_brings_must_serve_the_names_nodes_use() {
    if !edgeiso_testkit::tools_present("a_harbor_certificate_the_site_brings", &["openssl"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let site = p.join("site.yaml");
    let spec_with = |sans: &str, deploy: &str| {
        let dir = tempfile::tempdir_in(p).unwrap().keep();
        common::openssl::make_server_cert(&dir, sans);
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let text = format!(
            "name: s\nharbor:\n  url: https://harbor.site.example:30003\n  vip: 10.1.2.3\n{deploy}  tls:\n    certFile: {name}/tls.crt\n    keyFile: {name}/tls.key\n    caFile: {name}/ca.crt\n"
        );
        Spec::from_str(&text, &site)
    };
    std::fs::create_dir(p.join("m")).unwrap();

    // From the pack: all three names, or the spec line says which is missing.
    let full = "DNS:spectro.registry.local,DNS:harbor.site.example,IP:10.1.2.3";
    let spec = spec_with(full, "").unwrap();
    let out = p.join("out");
    render_to(&spec, &out, &RenderOptions::default()).unwrap();
    let values = yaml::parse(&std::fs::read_to_string(out.join("harbor/pack-values.yaml")).unwrap()).unwrap();
    let served = values.path(&["harbor-config", "auth", "certs", "tls.crt"]).and_then(Value::as_str).unwrap();
    assert!(served.contains("BEGIN CERTIFICATE"));
    for (sans, missing) in [
        ("DNS:harbor.site.example,IP:10.1.2.3", "spectro.registry.local"),
        ("DNS:spectro.registry.local,DNS:harbor.site.example", "10.1.2.3"),
        ("DNS:spectro.registry.local,IP:10.1.2.3", "harbor.site.example"),
    ] {
        let e = spec_with(sans, "").unwrap_err().to_string();
        assert!(e.contains("site.yaml:6:") && e.contains("harbor.tls.certFile"), "{e}");
        assert!(e.contains(&format!("does not name `{missing}`")), "{e}");
    }
    // A wildcard serves what it matches, as on the node.
    spec_with("DNS:*.site.example,DNS:spectro.registry.local,IP:10.1.2.3", "").unwrap();

    // Harbor from manifests: only url's host is needed.
    spec_with("DNS:harbor.site.example", "  manifests: m\n").unwrap();
    let e = spec_with("DNS:other.example", "  manifests: m\n").unwrap_err().to_string();
    assert!(e.contains("does not name `harbor.site.example`") && e.contains("other.example"), "{e}");

    // Signed by a CA other than the one nodes are given.
    let a = tempfile::tempdir_in(p).unwrap();
    let b = tempfile::tempdir_in(p).unwrap();
    common::openssl::make_server_cert(a.path(), full);
    common::openssl::make_server_cert(b.path(), full);
    let text = format!(
        "name: s\nharbor:\n  url: https://harbor.site.example:30003\n  vip: 10.1.2.3\n  tls: {{certFile: {}, keyFile: {}, caFile: {}}}\n",
        a.path().join("tls.crt").display(),
        a.path().join("tls.key").display(),
        b.path().join("ca.crt").display()
    );
    let e = Spec::from_str(&text, &site).unwrap_err().to_string();
    assert!(
        e.contains("is not signed by the CA in") && e.contains(&b.path().join("ca.crt").display().to_string()),
        "{e}"
    );
    // No caFile: the certificate must then be its own anchor.
    let text = format!(
        "name: s\nharbor:\n  url: https://harbor.site.example:30003\n  vip: 10.1.2.3\n  tls: {{certFile: {}, keyFile: {}}}\n",
        a.path().join("tls.crt").display(),
        a.path().join("tls.key").display(),
    );
    let e = Spec::from_str(&text, &site).unwrap_err().to_string();
    assert!(e.contains("caFile"), "{e}");
}
