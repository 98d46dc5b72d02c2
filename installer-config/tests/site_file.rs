//! Site files (`edgeiso personalize --site`): what one site of a golden
//! sets, checked where written, and merged into the golden's spec.

use std::path::Path;

use edgeiso_installer_config::site_file::SiteFile;
use edgeiso_installer_config::Spec;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GOLDEN: &str = "name: fleet\nimages: [docker.io/library/nginx:1.25]\nregistries:\n  - {host: registry.example.com, username: fleet, passwordEnv: FLEET_PW}\nsite:\n  tags: {region: east}\n  network: {nameserver: 10.0.0.2}\nharbor:\n  url: https://10.0.0.5:30003\n  vip: 10.0.0.10\n";

#[test]
fn a_site_file_is_checked_then_merged_into_the_golden() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir(p.join("secrets")).unwrap();
    write(p, "secrets/harbor.pw", "Store7-Harbor\n");
    write(p, "secrets/reg.pw", "store7-reg\n");
    let site = write(
        p,
        "store-7.yaml",
        "site:\n  name: store-7\n  hostName: edge-7\n  tags: {store: \"7\"}\nharbor:\n  url: https://10.7.0.5:30003\n  vip: 10.7.0.10\n  adminPasswordFile: secrets/harbor.pw\nregistries:\n  - {host: registry.example.com, username: store7, passwordFile: secrets/reg.pw}\n",
    );
    let s = SiteFile::load(&site).unwrap();
    let golden_path = p.join("golden/spec.yaml");
    let merged = s.merge_into(GOLDEN, &golden_path).unwrap();
    let spec = Spec::from_str(&merged, &golden_path).unwrap();
    assert_eq!(spec.name, "fleet", "the golden's name stays");
    assert_eq!(spec.site.name.as_deref(), Some("store-7"));
    assert_eq!(spec.site.host_name.as_deref(), Some("edge-7"));
    // site merges key by key: the golden's tag and nameserver stay, the site's tag joins.
    assert_eq!(spec.site.tags.get("region").map(String::as_str), Some("east"));
    assert_eq!(spec.site.tags.get("store").map(String::as_str), Some("7"));
    assert_eq!(spec.harbor.url.to_string(), "https://10.7.0.5:30003");
    assert_eq!(spec.harbor.vip.unwrap().to_string(), "10.7.0.10");
    // Paths of the site file are its own, made absolute.
    assert_eq!(spec.harbor.admin_password_file.as_deref(), Some(p.join("secrets/harbor.pw").as_path()));
    let reg = spec.registry("registry.example.com").unwrap();
    assert_eq!(reg.username.as_deref(), Some("store7"));
    assert_eq!(reg.password_env, None, "the site's credential replaces the golden's whole");
    assert_eq!(reg.read_password().unwrap().as_deref(), Some("store7-reg"));
    assert_eq!(spec.images.len(), 1, "the images are the golden's");
}

#[test]
fn what_a_site_may_not_set_is_refused_at_its_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let err = |text: &str| SiteFile::load(&write(p, "s.yaml", text)).unwrap_err().to_string();

    // A key the golden fixes.
    let e = err("site:\n  name: s\nimages: [nginx:1]\n");
    assert!(e.contains("s.yaml:3:") && e.contains("`images` is fixed by the golden"), "{e}");
    let e = err("harbor:\n  url: https://h:30003\n  chart: harbor.tgz\n");
    assert!(e.contains("s.yaml:3:") && e.contains("`harbor.chart` is fixed"), "{e}");
    // A secret written inline.
    let e = err("registries:\n  - host: r.example\n    username: u\n    password: hunter2\n");
    assert!(e.contains("s.yaml:4:") && e.contains("secrets are not written in a site file"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    // A typo: the spec's own message, with the key meant.
    let e = err("site:\n  hostNmae: edge-7\n");
    assert!(e.contains("s.yaml:2:") && e.contains("hostName"), "{e}");
    // A wrong type, where it is written.
    let e = err("harbor:\n  vip: not-an-ip\n");
    assert!(e.contains("s.yaml:2:") && e.contains("harbor.vip"), "{e}");
    // Not a mapping at all.
    let e = err("- a\n- b\n");
    assert!(e.contains("mapping"), "{e}");
    // A registry the golden does not name.
    write(p, "pw", "x\n");
    let s =
        SiteFile::load(&write(p, "r.yaml", "registries:\n  - {host: other.example, username: u, passwordFile: pw}\n"))
            .unwrap();
    let e = s.merge_into(GOLDEN, &p.join("golden.yaml")).unwrap_err().to_string();
    assert!(e.contains("r.yaml:2:") && e.contains("no registry `other.example`"), "{e}");
}

/// A site's own Harbor certificate is judged against the golden it joins:
/// with Harbor from manifests it need serve only the site's host; with
/// Harbor from the pack, also `spectro.registry.local` and the VIP.
#[test]
fn a_sites_certificate_is_judged_by_the_golden_it_joins() {
    if !edgeiso_testkit::tools_present("a_sites_certificate_is_judged_by_the_golden_it_joins", &["openssl"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let o = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=h", "-addext", "subjectAltName=DNS:harbor.store7.example"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(p.join("tls.key"))
        .arg("-out")
        .arg(p.join("tls.crt"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let site = write(
        p,
        "store-7.yaml",
        "site: {name: store-7}\nharbor:\n  url: https://harbor.store7.example:30003\n  tls: {certFile: tls.crt, keyFile: tls.key}\n",
    );
    let s = SiteFile::load(&site).unwrap();
    std::fs::create_dir(p.join("m")).unwrap();
    let golden_path = p.join("golden.yaml");
    // Harbor from manifests: the site's host is all the certificate must serve.
    let merged = s.merge_into("name: fleet\nharbor:\n  manifests: m\n", &golden_path).unwrap();
    Spec::from_str(&merged, &golden_path).unwrap();
    // Harbor from the pack: Palette's name is missing, and said so.
    let merged = s.merge_into("name: fleet\n", &golden_path).unwrap();
    let e = Spec::from_str(&merged, &golden_path).unwrap_err().to_string();
    assert!(e.contains("does not name `spectro.registry.local`"), "{e}");
    // `openssl req -x509` without CA:FALSE makes a CA: the agent's TLS
    // refuses it as a server's certificate, and so does the check, saying why.
    let o = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=h", "-addext", "subjectAltName=DNS:harbor.store7.example"])
        .arg("-keyout")
        .arg(p.join("tls.key"))
        .arg("-out")
        .arg(p.join("tls.crt"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = s.merge_into("name: fleet\nharbor:\n  manifests: m\n", &golden_path).unwrap();
    let e = Spec::from_str(&merged, &golden_path).unwrap_err().to_string();
    assert!(e.contains("is a CA certificate (basicConstraints CA:TRUE)"), "{e}");
}
