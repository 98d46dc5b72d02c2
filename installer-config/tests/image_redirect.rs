//! `site.imageRedirectWebhook: true`: render writes the webhook's
//! MutatingWebhookConfiguration (checked key by key and by
//! `kubernetes-validate --strict`), its certificate (verified against the
//! caBundle with openssl, SANs for the address the API server calls) and
//! key (0600), its unit, its section of the node's `agent.yaml`, and the
//! boot stage that starts it; Palette's own webhook is switched off.

mod common;
use common::openssl::openssl;
use common::render_to;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use edgeiso_contract::AgentConfig;
use edgeiso_installer_config::yaml::{self, Value};
use edgeiso_installer_config::{RenderOptions, Spec};
use edgeiso_testkit::files::mode_of;

fn render_site(extra_site: &str, vip: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let vip = vip.map(|v| format!("  vip: {v}\n")).unwrap_or_default();
    let text = format!(
        "name: store-7\nimages: [docker.io/library/nginx:1.25]\nsite:\n  hostName: edge-7\n{extra_site}harbor:\n  url: https://10.0.0.5:30003\n{vip}"
    );
    let spec = Spec::from_str(&text, &d.path().join("site.yaml")).unwrap();
    let out = d.path().join("out");
    render_to(&spec, &out, &RenderOptions::default()).unwrap();
    (d, out)
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    v.path(path).and_then(Value::as_str).unwrap_or_else(|| panic!("{path:?} in {v:?}"))
}

#[test]
fn the_webhook_gets_its_configuration_certificate_unit_and_settings() {
    let (_d, out) = render_site("  imageRedirectWebhook: true\n", Some("10.0.0.10"));
    let text = std::fs::read_to_string(out.join("manifests/image-redirect-webhook.yaml")).unwrap();
    let doc = yaml::parse(&text).unwrap();
    assert_eq!(s(&doc, &["apiVersion"]), "admissionregistration.k8s.io/v1");
    assert_eq!(s(&doc, &["kind"]), "MutatingWebhookConfiguration");
    let hooks = doc.path(&["webhooks"]).unwrap().as_seq().unwrap();
    assert_eq!(hooks.len(), 1);
    let h = &hooks[0];
    // The VIP: the API server reaches the webhook on whichever node holds it.
    assert_eq!(s(h, &["clientConfig", "url"]), "https://10.0.0.10:8443/mutate");
    assert_eq!(s(h, &["failurePolicy"]), "Ignore");
    assert_eq!(s(h, &["sideEffects"]), "None");
    assert_eq!(h.path(&["timeoutSeconds"]), Some(&Value::Int(5)));
    let strings = |path: &[&str]| -> Vec<String> {
        h.path(path).unwrap().as_seq().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(strings(&["admissionReviewVersions"]), ["v1"]);
    let rules = h.path(&["rules"]).unwrap().as_seq().unwrap();
    assert_eq!(rules.len(), 1);
    let rule = |k: &str| -> Vec<String> {
        rules[0].path(&[k]).unwrap().as_seq().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        (rule("operations"), rule("resources"), rule("apiGroups")),
        (vec!["CREATE".into()], vec!["pods".into()], vec!["".into()])
    );
    let exprs = h.path(&["namespaceSelector", "matchExpressions"]).unwrap().as_seq().unwrap();
    let expr = |i: usize| {
        let e = &exprs[i];
        let values: Vec<&str> =
            e.path(&["values"]).unwrap().as_seq().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        (s(e, &["key"]).to_owned(), s(e, &["operator"]).to_owned(), values.join(","))
    };
    assert_eq!(expr(0), ("stylus.io/imageswap".into(), "NotIn".into(), "disable".into()));
    assert_eq!(expr(1), ("kubernetes.io/metadata.name".into(), "NotIn".into(), "kube-system,harbor".into()));

    // The certificate chains to the caBundle and names the address.
    let ca = base64::engine::general_purpose::STANDARD.decode(s(h, &["clientConfig", "caBundle"])).unwrap();
    let ca_path = out.join("ca-from-bundle.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let cert = out.join("webhook/tls.crt");
    let key = out.join("webhook/tls.key");
    let sans = common::openssl::verified_sans(&ca_path, &cert, None);
    assert!(sans.contains("IP Address:10.0.0.10") && sans.contains("IP Address:127.0.0.1"), "{sans}");
    // The key fits the certificate, and only root reads it.
    let pubkey = |args: &[&str]| openssl(args);
    assert_eq!(
        pubkey(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]),
        pubkey(&["pkey", "-in", key.to_str().unwrap(), "-pubout"])
    );
    assert_eq!(mode_of(&key), 0o600);
    std::fs::remove_file(&ca_path).unwrap();

    // The node's agent.yaml says where the certificate is; the unit ships.
    let agent = AgentConfig::from_yaml(&std::fs::read_to_string(out.join("agent.yaml")).unwrap()).unwrap();
    assert_eq!(agent.webhook.tls_cert.unwrap(), Path::new("/usr/local/edgeiso/site/webhook/tls.crt"));
    assert_eq!(agent.webhook.tls_key.unwrap(), Path::new("/usr/local/edgeiso/site/webhook/tls.key"));
    assert_eq!(
        std::fs::read_to_string(out.join("systemd/edgeiso-webhook.service")).unwrap(),
        edgeiso_contract::unit::WEBHOOK_UNIT
    );
    // The user-data's boot stage starts it; Palette's own webhook is off.
    let config = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    assert!(config.contains("systemctl enable --now --no-block edgeiso-webhook.service"), "{config}");
    let c = yaml::parse(&config).unwrap();
    assert_eq!(c.path(&["stylus", "imageRedirectWebhook", "enable"]), Some(&Value::Bool(false)));
}

#[test]
fn without_a_vip_the_url_names_harbors_host() {
    let (_d, out) = render_site("  imageRedirectWebhook: true\n", None);
    let doc =
        yaml::parse(&std::fs::read_to_string(out.join("manifests/image-redirect-webhook.yaml")).unwrap()).unwrap();
    let h = &doc.path(&["webhooks"]).unwrap().as_seq().unwrap()[0];
    assert_eq!(s(h, &["clientConfig", "url"]), "https://10.0.0.5:8443/mutate");
}

#[test]
fn no_webhook_unless_asked() {
    for site in ["", "  imageRedirectWebhook: false\n"] {
        let (_d, out) = render_site(site, None);
        for rel in ["manifests/image-redirect-webhook.yaml", "webhook/tls.key", "systemd/edgeiso-webhook.service"] {
            assert!(!out.join(rel).exists(), "{site:?}: {rel}");
        }
        let agent = AgentConfig::from_yaml(&std::fs::read_to_string(out.join("agent.yaml")).unwrap()).unwrap();
        assert!(agent.webhook.is_empty());
    }
}

#[test]
fn the_configuration_passes_kubernetes_validate_strict() {
    if !edgeiso_testkit::tools_present("the_configuration_passes_kubernetes_validate_strict", &["kubernetes-validate"])
    {
        return;
    }
    let (_d, out) = render_site("  imageRedirectWebhook: true\n", Some("10.0.0.10"));
    let path = out.join("manifests/image-redirect-webhook.yaml");
    let o = Command::new("kubernetes-validate").arg("--strict").arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && !text.contains("ERROR") && !text.contains("WARN"), "{text}");
    // Not a rubber stamp: a misspelt field fails.
    let bad = out.join("bad.yaml");
    std::fs::write(&bad, std::fs::read_to_string(&path).unwrap().replace("failurePolicy", "failurePolicyy")).unwrap();
    assert!(!Command::new("kubernetes-validate").arg("--strict").arg(&bad).output().unwrap().status.success());
}
