//! The site spec: the minimal form, every refusal, and the shape of errors.

use std::path::{Path, PathBuf};

use edgeiso_installer_config::spec::{HarborDeployment, InterfaceSpec};
use edgeiso_installer_config::{Platforms, RegistryKind, Spec, SpecError};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn minimal() -> String {
    format!(
        "name: store-042
images:
  - docker.io/library/nginx:1.25
  - 127.0.0.1:5000/team/app@{DIGEST}
registries:
  - host: 127.0.0.1:5000
    insecure: true          # plain HTTP for this host
"
    )
}

fn err(text: &str) -> String {
    Spec::from_str(text, Path::new("sites/site.yaml")).unwrap_err().to_string()
}

#[test]
fn minimal_form_works_as_written() {
    let spec = Spec::from_str(&minimal(), Path::new("site.yaml")).unwrap();
    assert_eq!(spec.name, "store-042");
    assert_eq!(spec.images.len(), 2);
    assert_eq!(spec.images[0].reference.as_str(), "docker.io/library/nginx:1.25");
    assert_eq!(spec.images[0].platforms, Platforms::List(vec!["linux/amd64".into()]));
    assert_eq!(spec.images[1].reference.as_str(), format!("127.0.0.1:5000/team/app@{DIGEST}"));
    assert!(spec.bootstrap_images.is_empty());
    let reg = spec.registry("127.0.0.1:5000").unwrap();
    assert!(reg.insecure);
    assert_eq!(reg.kind, RegistryKind::Image);
    assert_eq!(reg.read_password().unwrap(), None);
    assert!(spec.registry("docker.io").is_none());
    assert_eq!(spec.source_path, PathBuf::from("site.yaml"));
    // Part 2 defaults.
    assert_eq!(spec.harbor.url.to_string(), "https://127.0.0.1:30003");
    assert_eq!(spec.harbor.project, "spectro-images");
    assert_eq!(spec.harbor.node_port, 30003);
    assert_eq!(spec.harbor.deployment, HarborDeployment::External);
    assert!(spec.install.reboot && !spec.install.poweroff);
    assert!(!spec.airgap_strict);
}

#[test]
fn load_reads_the_file_and_names_it_when_missing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("site.yaml");
    std::fs::write(&p, minimal()).unwrap();
    assert_eq!(Spec::load(&p).unwrap().name, "store-042");
    let missing = d.path().join("nope.yaml");
    let e = Spec::load(&missing).unwrap_err().to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
}

#[test]
fn unknown_key_names_file_line_column_and_suggests() {
    let text = "name: s\nregistries:\n  - host: x.example\n    insecur: true\n";
    let e = Spec::from_str(text, Path::new("sites/site.yaml")).unwrap_err();
    match &e {
        SpecError::Yaml { pos, hint, snippet, .. } => {
            assert_eq!(pos.map(|p| (p.line, p.column)), Some((4, 5)));
            assert_eq!(hint.as_deref(), Some("did you mean `insecure`?"));
            let snippet = snippet.as_deref().unwrap();
            assert!(snippet.contains("sites/site.yaml:4:5"), "{snippet}");
            assert!(snippet.contains("insecur: true"), "{snippet}");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.starts_with("sites/site.yaml:4:5: unknown field `insecur`"), "{msg}");
    assert!(msg.contains("did you mean `insecure`?"), "{msg}");
}

#[test]
fn unknown_top_level_and_nested_keys() {
    let e = err("name: s\nregsitries: []\n");
    assert!(e.starts_with("sites/site.yaml:2:1:"), "{e}");
    assert!(e.contains("did you mean `registries`?"), "{e}");
    let e = err("name: s\nbootstrap_images: []\n");
    assert!(e.contains("did you mean `bootstrapImages`?"), "{e}");
    let e = err("name: s\nharbor:\n  nodeport: 30003\n");
    assert!(e.starts_with("sites/site.yaml:3:3:"), "{e}");
    assert!(e.contains("did you mean `nodePort`?"), "{e}");
    let e = err("name: s\nimages:\n  - ref: nginx\n    platform: all\n");
    assert!(e.contains("did you mean `platforms`?"), "{e}");
    // Far from anything: no guess.
    let e = err("name: s\nwhatever: 1\n");
    assert!(e.contains("unknown field `whatever`") && !e.contains("did you mean"), "{e}");
}

/// Guards the wording `suggest::parse_unknown_field` relies on when the
/// structured error is not available: if serde-saphyr changes it, this fails.
#[test]
fn serde_saphyr_unknown_field_wording_is_understood() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct R {
        host: String,
        insecure: bool,
    }
    let e = serde_saphyr::from_str::<R>("host: a\ninsecur: true\n").unwrap_err();
    let text = e.without_snippet().to_string();
    assert!(text.starts_with("unknown field `insecur`, expected one of host, insecure"), "{text}");
    let (field, expected) = edgeiso_installer_config::suggest::parse_unknown_field(&text).unwrap();
    assert_eq!(field, "insecur");
    assert_eq!(expected, ["host", "insecure"]);
    assert!(matches!(e.without_snippet(), serde_saphyr::Error::SerdeUnknownField { .. }));
}

#[test]
fn bad_reference_names_line_and_reference() {
    let e = err("name: s\nimages:\n  - nginx\n  - Bad/Upper:1\n");
    assert!(e.starts_with("sites/site.yaml:4:5:"), "{e}");
    assert!(e.contains("`Bad/Upper:1`"), "{e}");
    let e = err("name: s\nimages:\n  - ref: 'nginx@sha256:abc'\n");
    assert!(e.starts_with("sites/site.yaml:3:5:") && e.contains("nginx@sha256:abc"), "{e}");
}

#[test]
fn duplicate_references_across_lists_name_both() {
    let e = err("name: s\nimages:\n  - nginx\n  - redis\nbootstrapImages:\n  - docker.io/library/nginx:latest\n");
    assert!(e.starts_with("sites/site.yaml:6:5:"), "{e}");
    assert!(e.contains("line 3 (images)"), "{e}");
    assert!(e.contains("docker.io/library/nginx:latest"), "{e}");
    let e = err("name: s\nimages:\n  - nginx:1\n  - ref: nginx:1\n    platforms: all\n");
    assert!(e.contains("listed twice") && e.contains("line 3"), "{e}");
}

#[test]
fn platforms_forms() {
    let text = "name: s
images:
  - ref: a:1
    platforms: all
  - ref: b:1
    platforms: [linux/amd64, linux/arm64/v8]
  - c:1
";
    let spec = Spec::from_str(text, Path::new("s.yaml")).unwrap();
    assert_eq!(spec.images[0].platforms, Platforms::All);
    assert_eq!(spec.images[1].platforms, Platforms::List(vec!["linux/amd64".into(), "linux/arm64/v8".into()]));
    assert_eq!(spec.images[2].platforms.to_string(), "linux/amd64");
    let e = err("name: s\nimages:\n  - ref: a\n    platforms: some\n");
    assert!(e.contains("sites/site.yaml:4:") && e.contains("`all` or a list"), "{e}");
    let e = err("name: s\nimages:\n  - ref: a\n    platforms: [amd64]\n");
    assert!(e.contains("`amd64` is not a platform"), "{e}");
    let e = err("name: s\nimages:\n  - ref: a\n    platforms: []\n");
    assert!(e.contains("platforms is empty"), "{e}");
    let e = err("name: s\nimages:\n  - 12\n");
    assert!(e.contains("sites/site.yaml:3:5") && e.contains("image reference"), "{e}");
}

#[test]
fn names_must_be_dns_labels() {
    for bad in ["Store", "store_042", "-a", "a-", "''", &"x".repeat(64)] {
        let e = err(&format!("name: {bad}\n"));
        assert!(e.starts_with("sites/site.yaml:1:7: name"), "{bad}: {e}");
    }
    let e = err("images: []\n");
    assert!(e.contains("missing field `name`"), "{e}");
}

#[test]
fn registry_host_refusals() {
    let e = err("name: s\nregistries:\n  - host: https://reg.example:5000\n");
    assert!(e.starts_with("sites/site.yaml:3:11:"), "{e}");
    assert!(e.contains("has a scheme") && e.contains("`reg.example:5000`"), "{e}");
    let e = err("name: s\nregistries:\n  - host: reg.example/path\n");
    assert!(e.contains("without a path"), "{e}");
    let e = err("name: s\nregistries:\n  - host: a.example\n  - host: A.example\n");
    assert!(e.contains("listed twice") && e.contains("line 3"), "{e}");
    let e = err("name: s\nregistries:\n  - host: a.example\n    username: u\n    password: hunter2\n");
    assert!(e.contains("sites/site.yaml:5:") && e.contains("passwordFile"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = err("name: s\nregistries:\n  - host: a.example\n    username: u\n");
    assert!(e.contains("username needs passwordFile"), "{e}");
    // A Helm repository may carry its scheme.
    let s =
        Spec::from_str("name: s\nregistries:\n  - host: https://charts.example\n    kind: helm\n", Path::new("s.yaml"))
            .unwrap();
    assert_eq!(s.registries[0].host, "charts.example");
    assert_eq!(s.registries[0].secret_url(), "https://charts.example");
}

#[test]
fn password_files_resolve_against_the_spec_folder() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("secrets")).unwrap();
    std::fs::write(d.path().join("secrets/reg.pw"), "s3cret\n").unwrap();
    std::fs::write(d.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let text = "name: s
registries:
  - host: reg.example:5000
    caFile: ca.pem
    username: bob
    passwordFile: secrets/reg.pw
    secret: {name: reg-example}
";
    let path = d.path().join("site.yaml");
    let spec = Spec::from_str(text, &path).unwrap();
    let r = spec.registry("reg.example:5000").unwrap();
    assert_eq!(r.password_file.as_deref(), Some(d.path().join("secrets/reg.pw").as_path()));
    assert_eq!(r.ca_file.as_deref(), Some(d.path().join("ca.pem").as_path()));
    assert_eq!(r.read_password().unwrap().as_deref(), Some("s3cret"));
    assert_eq!(r.secret.as_ref().unwrap().name, "reg-example");
    assert_eq!(r.secret_url(), "reg.example:5000");

    // Gone after loading: the error names the file and hides nothing it read.
    std::fs::remove_file(d.path().join("secrets/reg.pw")).unwrap();
    let e = r.read_password().unwrap_err().to_string();
    assert!(e.contains("secrets/reg.pw"), "{e}");

    // Missing at load time: file:line and the resolved path.
    let e = Spec::from_str(text, &path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:6:19: passwordFile: no such file", path.display())), "{e}");

    // Empty password file.
    std::fs::write(d.path().join("secrets/reg.pw"), "\n").unwrap();
    let e = Spec::from_str(text, &path).unwrap().registries[0].read_password().unwrap_err().to_string();
    assert!(e.contains("is empty"), "{e}");
}

#[test]
fn parse_errors_name_the_place() {
    let e = err("name: [a\n");
    assert!(e.starts_with("sites/site.yaml:1:"), "{e}");
    let e = err("name: a\nname: b\n");
    assert!(e.starts_with("sites/site.yaml:2:1: duplicate mapping key"), "{e}");
    assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    let e = err("name: a\nairgapStrict: maybe\n");
    assert!(e.starts_with("sites/site.yaml:2:"), "{e}");
}

#[test]
fn part_two_sections_parse_and_validate() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("harbor.pw"), "Harbor12345\n").unwrap();
    std::fs::write(d.path().join("chart.tgz"), b"x").unwrap();
    std::fs::write(d.path().join("reg.pw"), "pw\n").unwrap();
    let text = "name: store-042
registries:
  - host: reg.example:5000
    username: bob
    passwordFile: reg.pw
site:
  hostName: edge-1
  tags: {zone: east}
  network:
    httpProxy: http://proxy:3128
    interfaces:
      eth0: {type: static, ipAddress: 10.0.0.5, mask: '24', gateway: 10.0.0.1}
      eth1: {type: dhcp}
  registryCredentials: {registry: reg.example:5000, path: spectro-images}
install: {device: /dev/sda, poweroff: true, persistentSizeMiB: 200000}
harbor:
  nodePort: 30443
  vip: 10.0.0.10
  adminPasswordFile: harbor.pw
  storage: {registry: 300Gi, database: 5Gi}
  chart: chart.tgz
kubernetes: {distribution: rke2}
airgapStrict: true
hardware: {nodes: 3, cpus: 4, memoryGiB: 8, diskGiB: 300}
";
    let spec = Spec::from_str(text, &d.path().join("site.yaml")).unwrap();
    assert_eq!(spec.harbor.url.to_string(), "https://127.0.0.1:30443");
    assert_eq!(spec.harbor.storage.registry.as_ref().unwrap().bytes, 300 << 30);
    assert!(matches!(spec.harbor.deployment, HarborDeployment::Chart(_)));
    assert!(!spec.install.reboot && spec.install.poweroff);
    assert!(matches!(spec.site.network.as_ref().unwrap().interfaces["eth0"], InterfaceSpec::Static { .. }));
    assert_eq!(spec.site.registry_credentials.as_ref().unwrap().registry, "reg.example:5000");
    assert!(spec.airgap_strict);
    assert_eq!(spec.hardware.as_ref().unwrap().nodes, 3);

    let bad = [
        ("harbor:\n  nodePort: 80\n", "outside 30000-32767"),
        ("harbor:\n  url: 127.0.0.1:30003\n", "https://"),
        ("harbor:\n  project: Spectro\n", "Harbor project name"),
        ("harbor:\n  adminPassword: x\n", "adminPasswordFile"),
        ("harbor:\n  storage: {registry: lots}\n", "harbor.storage.registry"),
        ("harbor:\n  chart: missing.tgz\n", "no such file"),
        ("install: {reboot: true, poweroff: true}\n", "cannot both"),
        ("site:\n  network:\n    interfaces:\n      eth0: {type: static}\n", "needs ipAddress"),
        ("site:\n  network:\n    interfaces:\n      eth0: {type: dhcp, ipAddress: 1.2.3.4}\n", "takes no ipAddress"),
        ("site:\n  registryCredentials: {registry: nowhere.example}\n", "not one of registries[]"),
        ("users:\n  - name: Kairos\n", "not a valid user name"),
        ("users:\n  - name: kairos\n    password: kairos\n", "passwordFile"),
    ];
    for (snippet, want) in bad {
        let e = Spec::from_str(&format!("name: s\n{snippet}"), &d.path().join("site.yaml")).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("site.yaml:"), "{snippet}: {e}");
    }
}

#[test]
fn a_misspelt_password_key_never_echoes_the_password() {
    // Block and flow forms; the suggestion is a password key, so the value
    // on the offending line is a password written under the wrong key.
    for text in [
        "name: s\nharbor: {pasword: Hunter2Secret}\n",
        "name: s\nharbor:\n  pasword: Hunter2Secret\n",
        "name: s\nregistries:\n  - host: r.example\n    username: u\n    passwrd: \"Hunter2Secret\"\n",
        // A key that looks like a secret, even without a close suggestion.
        "name: s\nharbor:\n  myToken: Hunter2Secret\n",
    ] {
        let e = err(text);
        assert!(e.contains("unknown field"), "{e}");
        assert!(!e.contains("Hunter2Secret"), "the secret is echoed:\n{e}");
        assert!(e.contains("<redacted>"), "{e}");
    }
    // Harmless keys keep their values in the snippet.
    let e = err("name: s\nharbor:\n  nodeport: 30003\n");
    assert!(e.contains("nodeport: 30003"), "{e}");
}

#[test]
fn ipv6_hosts_need_brackets_and_masks_fit_the_family() {
    let e = err("name: s\nharbor: {url: \"https://fe80::1\"}\n");
    assert!(e.contains("harbor.url") && e.contains("brackets"), "{e}");
    let e = err("name: s\nharbor: {url: \"https://[fe80::1\"}\n");
    assert!(e.contains("harbor.url"), "{e}");
    let e = err("name: s\nharbor: {url: \"https://[nothost]:30003\"}\n");
    assert!(e.contains("harbor.url"), "{e}");
    let e = err("name: s\nharbor: {url: \"https://[::1]x\"}\n");
    assert!(e.contains("harbor.url"), "{e}");
    let spec = Spec::from_str("name: s\nharbor: {url: \"https://[fe80::1]:30003\"}\n", Path::new("s.yaml")).unwrap();
    assert_eq!(spec.harbor.url.host, "fe80::1");
    assert_eq!(spec.harbor.url.port, Some(30003));

    let e = err("name: s\nregistries:\n  - host: \"::1\"\n    insecure: true\n");
    assert!(e.contains("registry host `::1`") && e.contains("brackets"), "{e}");
    let e = err("name: s\nregistries:\n  - host: \"fe80::1:5000\"\n");
    assert!(e.contains("brackets"), "{e}");
    let e = err("name: s\nregistries:\n  - host: \"[xyz]:5000\"\n");
    assert!(e.contains("registry host"), "{e}");
    for ok in ["[::1]:5000", "[fe80::1]", "127.0.0.1:5000"] {
        let spec = Spec::from_str(&format!("name: s\nregistries:\n  - host: \"{ok}\"\n"), Path::new("s.yaml"));
        assert!(spec.is_ok(), "{ok}: {}", spec.unwrap_err());
    }

    let iface = |ip: &str, mask: &str| {
        format!("name: s\nsite:\n  network:\n    interfaces:\n      eth0: {{type: static, ipAddress: \"{ip}\", mask: \"{mask}\"}}\n")
    };
    for (ip, mask) in [
        ("10.0.0.5", "99"),
        ("10.0.0.5", "33"),
        ("10.0.0.5", "255.0.255.0"),
        ("fd00::5", "129"),
        ("fd00::5", "255.255.255.0"),
    ] {
        let e = err(&iface(ip, mask));
        assert!(e.contains(&format!("mask `{mask}`")), "{ip}/{mask}: {e}");
    }
    for (ip, mask) in
        [("10.0.0.5", "24"), ("10.0.0.5", "32"), ("10.0.0.5", "255.255.254.0"), ("fd00::5", "64"), ("fd00::5", "128")]
    {
        let spec = Spec::from_str(&iface(ip, mask), Path::new("s.yaml"));
        assert!(spec.is_ok(), "{ip}/{mask}: {}", spec.unwrap_err());
    }
}

#[test]
fn an_unset_password_variable_names_the_spec_and_line() {
    let text =
        "name: s\nregistries:\n  - host: r.example\n    username: u\n    passwordEnv: EDGEISO_TEST_SURELY_UNSET\n";
    let spec = Spec::from_str(text, Path::new("sites/site.yaml")).unwrap();
    let e = spec.registry("r.example").unwrap().read_password().unwrap_err().to_string();
    assert!(e.starts_with("sites/site.yaml:3:"), "{e}");
    assert!(e.contains("EDGEISO_TEST_SURELY_UNSET") && e.contains("not set"), "{e}");
    assert!(!e.starts_with('$'), "{e}");
}

fn agent(text: &str) -> Result<edgeiso_installer_config::AgentSpec, String> {
    Spec::from_str(&format!("{}{text}", minimal()), Path::new("sites/site.yaml"))
        .map(|s| s.agent)
        .map_err(|e| e.to_string())
}

#[test]
fn live_kernel_args_default_override_and_empty() {
    // minimal() is 7 lines: `agent:` is line 8 below.
    let a = agent("").unwrap();
    assert!(!a.live_load && a.live_kernel_args.is_empty());
    let a = agent("agent:\n  liveLoad: false\n").unwrap();
    assert!(a.live_kernel_args.is_empty(), "nothing to add without the live load");
    let a = agent("agent:\n  liveLoad: true\n").unwrap();
    assert_eq!(a.live_kernel_args, ["rd.neednet=1", "ip=dhcp"]);
    assert_eq!(a.live_kernel_args, edgeiso_installer_config::spec::DEFAULT_LIVE_KERNEL_ARGS);
    let a = agent(
        "agent:\n  liveLoad: true\n  liveKernelArgs: [rd.neednet=1, \"ip=eth0:dhcp\", rd.net.timeout.carrier=10]\n",
    )
    .unwrap();
    assert_eq!(a.live_kernel_args, ["rd.neednet=1", "ip=eth0:dhcp", "rd.net.timeout.carrier=10"]);
    let a = agent("agent:\n  liveLoad: true\n  liveKernelArgs: []\n").unwrap();
    assert!(a.live_load && a.live_kernel_args.is_empty(), "[] adds nothing");
}

#[test]
fn live_kernel_args_refusals_name_file_line_column() {
    let e =
        agent("agent:\n  liveLoad: true\n  liveKernelArgs:\n    - rd.neednet=1\n    - ip=dhcp quiet\n").unwrap_err();
    assert!(e.starts_with("sites/site.yaml:12:7: agent.liveKernelArgs: \"ip=dhcp quiet\" contains whitespace"), "{e}");
    for (bad, what) in [
        ("\"\"", "is empty"),
        ("\"a;b\"", "';'"),
        ("\"a{\"", "'{'"),
        ("\"}\"", "'}'"),
        ("\"'x'\"", "'\\''"),
        ("'\"x\"'", "'\"'"),
        ("\"a\\nb\"", "whitespace"),
        ("\"--\"", "init"),
        ("initrd=/x", "initrd="),
    ] {
        let e = agent(&format!("agent:\n  liveLoad: true\n  liveKernelArgs: [quiet, {bad}]\n")).unwrap_err();
        assert!(e.starts_with("sites/site.yaml:10:"), "{bad}: {e}");
        assert!(e.contains("agent.liveKernelArgs:") && e.contains(what), "{bad}: {e}");
    }
    let e = agent("agent:\n  liveLoad: true\n  liveKernelArgs: [quiet, quiet]\n").unwrap_err();
    assert!(e.starts_with("sites/site.yaml:10:") && e.contains("quiet is listed twice (first at line 10)"), "{e}");
    // Without the live load the arguments would do nothing: refused, not ignored.
    for load in ["liveLoad: false\n  ", ""] {
        let e = agent(&format!("agent:\n  {load}liveKernelArgs: [rd.neednet=1]\n")).unwrap_err();
        assert!(e.starts_with("sites/site.yaml:"), "{e}");
        assert!(e.contains("agent.liveKernelArgs is set but agent.liveLoad is not true"), "{e}");
    }
    let e = agent("agent:\n  liveLoad: false\n  liveKernelArgs: []\n").unwrap_err();
    assert!(e.starts_with("sites/site.yaml:10:"), "{e}");
    // A string instead of a list is a schema error at its place.
    let e = agent("agent:\n  liveLoad: true\n  liveKernelArgs: rd.neednet=1\n").unwrap_err();
    assert!(e.starts_with("sites/site.yaml:10:"), "{e}");
}

/// Every key the parser accepts is documented in a table row of
/// docs/spec.md (as `` `key` ``, `` `parent.key` ``, `` `key: ...` `` or
/// `` `parent.key.<name>` ``), and the probe finds the nested ones.
#[test]
fn every_spec_key_is_documented() {
    let keys = edgeiso_installer_config::spec::known_keys();
    for nested in ["harbor.tls.certFile", "images[].platforms", "registries[].host", "agent.liveKernelArgs"] {
        assert!(keys.iter().any(|k| k == nested), "{nested} not found by the probe: {keys:?}");
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/spec.md")).unwrap();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with('|')).collect();
    let undocumented: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let leaf = k.rsplit(['.', ']']).next().unwrap();
            let forms = [
                k.to_string(),
                format!("`{leaf}`"),
                format!(".{leaf}`"),
                format!("`{leaf}:"),
                format!("`{leaf}."),
                format!(".{leaf}."),
            ];
            !rows.iter().any(|r| forms.iter().any(|f| r.contains(f.as_str())))
        })
        .collect();
    assert!(undocumented.is_empty(), "keys without a row in docs/spec.md: {undocumented:?}");
}
