//! One AdmissionReview in, one out: the webhook's contract with the API
//! server (`admission.k8s.io/v1`, kube-core's types). Every image of a Pod's
//! `initContainers`, `containers` and `ephemeralContainers` that Harbor
//! holds is replaced by its Harbor reference with a JSONPatch; the answer is
//! always `allowed: true` (a webhook that cannot decide must not block
//! pods), with the request's `uid`.
//!
//! The request is read with kube-core's types; the answer is written here,
//! because kube-core 5 serializes `patch` as an array of numbers
//! (kube-rs/kube#1781) where the API documents, and liggitt confirms
//! (kubernetes/website#34308), base64 of the JSONPatch.

use base64::Engine as _;
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use kube_core::admission::{AdmissionRequest, AdmissionReview};
use kube_core::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::index::KnownImages;

/// The pod fields that hold containers, in the order they are patched.
pub const CONTAINER_FIELDS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// A body the webhook cannot answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("an AdmissionReview without a request")]
    NoRequest,
}

/// One image the answer replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub path: String,
    pub from: String,
    pub to: String,
}

/// The answer: an AdmissionReview of the request's version and kind.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: Response<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    uid: &'a str,
    allowed: bool,
    /// base64 of the JSONPatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
}

/// The answer to `body`, and what it rewrote.
pub fn answer(body: &[u8], known: &KnownImages) -> Result<(Vec<u8>, Vec<Rewrite>), ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    let types = review.types.clone();
    let request: AdmissionRequest<DynamicObject> = review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    let rewrites = match (&request.object, is_pod) {
        (Some(pod), true) => rewrites(&pod.data, known),
        _ => Vec::new(),
    };
    let patch = if rewrites.is_empty() {
        None
    } else {
        let ops: Vec<PatchOperation> = rewrites
            .iter()
            .map(|r| {
                PatchOperation::Replace(ReplaceOperation {
                    path: PointerBuf::parse(&r.path).expect("built from plain tokens"),
                    value: Value::String(r.to.clone()),
                })
            })
            .collect();
        Some(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&Patch(ops))?))
    };
    let answer = Answer {
        api_version: &types.api_version,
        kind: &types.kind,
        response: Response {
            uid: &request.uid,
            allowed: true,
            patch_type: patch.is_some().then_some("JSONPatch"),
            patch,
        },
    };
    Ok((serde_json::to_vec(&answer)?, rewrites))
}

/// The replacements for a Pod's (`data`: everything but its metadata)
/// container images.
pub fn rewrites(pod: &Value, known: &KnownImages) -> Vec<Rewrite> {
    let mut out = Vec::new();
    for field in CONTAINER_FIELDS {
        let Some(containers) = pod.pointer(&format!("/spec/{field}")).and_then(Value::as_array) else { continue };
        for (i, c) in containers.iter().enumerate() {
            let Some(image) = c.get("image").and_then(Value::as_str) else { continue };
            if let Some(to) = known.rewrite(image) {
                out.push(Rewrite { path: format!("/spec/{field}/{i}/image"), from: image.to_owned(), to });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::webhook::LoadedImage;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// The contract with the API server, byte for byte: this request in
    /// (trimmed to what matters, as the v1 schema has it), this answer out.
    #[test]
    fn request_in_patch_out_byte_for_byte() {
        let known = KnownImages::new(
            "10.0.0.5:30003",
            "spectro-images",
            [LoadedImage { reference: "docker.io/library/nginx:1.25".parse().unwrap(), digest: D.into() }],
            &HashSet::new(),
        );
        let request = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","operation":"CREATE","userInfo":{"username":"admin"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop"},"spec":{"initContainers":[{"name":"init","image":"busybox:1.36"}],"containers":[{"name":"web","image":"nginx:1.25"},{"name":"side","image":"docker.io/library/nginx:1.25"}]}},"oldObject":null,"dryRun":false}}"#;
        let (answer, rewrites) = answer(request, &known).unwrap();
        // The JSONPatch, base64 in the answer.
        let patch = r#"[{"op":"replace","path":"/spec/containers/0/image","value":"10.0.0.5:30003/spectro-images/docker.io/library/nginx:1.25"},{"op":"replace","path":"/spec/containers/1/image","value":"10.0.0.5:30003/spectro-images/docker.io/library/nginx:1.25"}]"#;
        let want = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true,"patch":"{}","patchType":"JSONPatch"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(patch)
        );
        assert_eq!(String::from_utf8(answer).unwrap(), want);
        assert_eq!(rewrites.len(), 2);
        assert_eq!(rewrites[0].from, "nginx:1.25");
    }

    #[test]
    fn no_patch_when_nothing_is_held() {
        let known = KnownImages::default();
        let request = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{},"object":{"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"nginx"},{"name":"d"},{"name":"e","image":42}]}}}}"#;
        let (answer, rewrites) = answer(request, &known).unwrap();
        assert!(rewrites.is_empty());
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true}}"#
        );
    }
}
