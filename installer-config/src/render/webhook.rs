//! The image-redirect webhook's Kubernetes side (`site.imageRedirectWebhook:
//! true`): the MutatingWebhookConfiguration that sends new pods to
//! `edgeiso-agent webhook` on the node, the webhook's certificate, and its
//! settings in the node's `agent.yaml`. See `docs/render.md`, "Two layers of
//! redirection".

use std::net::IpAddr;

use edgeiso_contract::agent_config::{DEFAULT_WEBHOOK_PORT, WEBHOOK_PATH};

use super::b64;
use crate::spec::Spec;
use crate::yaml::{Map, Value};

/// The namespace label that opts a namespace out, as Palette's agent reads it.
pub const OPT_OUT_LABEL: &str = "stylus.io/imageswap";
pub const OPT_OUT_VALUE: &str = "disable";
pub const CONFIGURATION_NAME: &str = "edgeiso-image-redirect";
/// The API server gives up on the webhook after this long (and admits the
/// pod unchanged: failurePolicy Ignore).
pub const TIMEOUT_SECONDS: u64 = 5;

/// The host the API server calls the webhook at: the cluster's VIP when
/// there is one (the webhook runs on every node the user-data installs),
/// else the host nodes reach Harbor at.
pub fn address(spec: &Spec) -> String {
    match spec.harbor.vip {
        Some(vip) => vip.to_string(),
        None => spec.harbor.url.host.clone(),
    }
}

/// `https://ADDRESS:8443/mutate` (an IPv6 address in brackets).
pub fn url(spec: &Spec) -> String {
    let host = address(spec);
    let host = if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) { format!("[{host}]") } else { host };
    format!("https://{host}:{DEFAULT_WEBHOOK_PORT}{WEBHOOK_PATH}")
}

/// The MutatingWebhookConfiguration: pods CREATE, every namespace but
/// kube-system, Harbor's and those labelled `stylus.io/imageswap=disable`;
/// never blocks a pod.
pub fn configuration(spec: &Spec, ca_pem: &str) -> Value {
    let not_in =
        |key: &str, values: Vec<&str>| Map::new().with("key", key).with("operator", "NotIn").with("values", values);
    let webhook = Map::new()
        .with("name", "image-redirect.edgeiso.io")
        .with("admissionReviewVersions", vec!["v1"])
        .with("clientConfig", Map::new().with("url", url(spec)).with("caBundle", b64(ca_pem)))
        .with(
            "rules",
            vec![Map::new()
                .with("apiGroups", vec![""])
                .with("apiVersions", vec!["v1"])
                .with("operations", vec!["CREATE"])
                .with("resources", vec!["pods"])
                .with("scope", "Namespaced")],
        )
        .with(
            "namespaceSelector",
            Map::new().with(
                "matchExpressions",
                vec![
                    not_in(OPT_OUT_LABEL, vec![OPT_OUT_VALUE]),
                    // Harbor cannot serve its own start; kube-system holds
                    // what the cluster needs to come up.
                    not_in("kubernetes.io/metadata.name", vec!["kube-system", spec.harbor.namespace.as_str()]),
                ],
            ),
        )
        .with("failurePolicy", "Ignore")
        .with("sideEffects", "None")
        .with("timeoutSeconds", TIMEOUT_SECONDS)
        .with("reinvocationPolicy", "Never");
    Value::Map(
        Map::new()
            .with("apiVersion", "admissionregistration.k8s.io/v1")
            .with("kind", "MutatingWebhookConfiguration")
            .with(
                "metadata",
                Map::new()
                    .with("name", CONFIGURATION_NAME)
                    .with("labels", Map::new().with("app.kubernetes.io/managed-by", "edgeiso")),
            )
            .with("webhooks", vec![webhook]),
    )
}
