//! The builder's `--json` events: one JSON object per line on stdout, tagged
//! by `event`, for pipelines. Typed here (as the agent's are in
//! `edgeiso_contract::events`), so an event's fields are written in one place
//! and a pipeline can rely on them.

use std::path::PathBuf;

use edgeiso_bundle::verify::{Expected, Problem};
use edgeiso_bundle::{Digest, ImageRecord, Partial};
use edgeiso_overlay::tree::TreeReport;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Event {
    /// `bundle create`: a reference resolved to a digest.
    Resolved { image: String, digest: Digest },
    /// `bundle create`: a blob downloaded into the cache.
    Blob { digest: Digest, bytes: u64, image: String, done: u64 },
    /// `bundle create` / `bundle import`: the bundle is written.
    Done {
        paths: Vec<PathBuf>,
        zstd: Option<PathBuf>,
        bytes: u64,
        images: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        unique_blob_bytes: Option<u64>,
    },
    /// `bundle sign` (or `bundle create --sign-key`): the signature is written.
    Signed { bundle: PathBuf, signature: PathBuf },
    /// `bundle verify`.
    Verified {
        bundle: PathBuf,
        ok: bool,
        members: usize,
        bytes: u64,
        problems: Vec<Problem>,
        /// A thin or delta bundle: what it leaves out (absent for a whole one).
        #[serde(skip_serializing_if = "Option::is_none")]
        partial: Option<Partial>,
        /// The blobs it leaves out, each with where it is to come from.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        expected: Vec<Expected>,
    },
    /// `bundle inspect --json`.
    Inspect {
        bundle: PathBuf,
        parts: Vec<PathBuf>,
        name: String,
        created: String,
        tool: String,
        format_version: u32,
        /// A thin or delta bundle (`{"kind":"thin"}`, `{"kind":"delta","base":{...}}`); absent for a whole one.
        #[serde(skip_serializing_if = "Option::is_none")]
        partial: Option<Partial>,
        images: Vec<ImageRecord>,
        unique_blob_bytes: u64,
        image_bytes: u64,
        saved_by_deduplication: u64,
        bundle_bytes: u64,
    },
    /// `personalize` (and `personalize --reset`, with no site).
    Personalized {
        iso: PathBuf,
        site: Option<String>,
        golden: String,
        area_bytes: u64,
        used_bytes: u64,
        /// The area's members.
        files: Vec<String>,
    },
    /// `personalize --show`: secrets' text is never included.
    SiteAreaShown { iso: PathBuf, golden: String, site: Option<String>, files: Vec<crate::personalize::ShownFile> },
    /// `render`.
    Rendered {
        output: PathBuf,
        files: Vec<RenderedFile>,
        harbor_images: Vec<String>,
        mirrored_hosts: Vec<String>,
        config_yaml_bytes: u64,
        warnings: Vec<String>,
        findings: Vec<Finding>,
    },
    /// `lint`.
    Lint { profile: PathBuf, findings: Vec<Finding> },
    /// `overlay` (and the overlay step of `iso`/`build`).
    Overlay(TreeReport),
    /// A numbered step of `iso`/`build`.
    Step { step: usize, of: usize, what: String },
    /// `iso`/`build`: the ISO is written and verified.
    Iso(Box<IsoDone>),
    /// `site-iso`.
    SiteIso { output: PathBuf, bytes: u64, volume_id: String },
    /// `boot-test`: the VM started.
    BootStarted { iso: PathBuf, firmware: String, media: String, log: PathBuf },
    /// `boot-test`: more manifests arrived in the registry.
    Arrived { present: usize, of: usize },
    /// `boot-test` passed.
    #[serde(rename = "boot-test")]
    BootPassed { pass: bool, seconds: f64, images: Vec<String>, manifests: usize, marker: Option<String>, log: PathBuf },
    /// `boot-test` failed.
    #[serde(rename = "boot-test")]
    BootFailed { pass: bool, seconds: f64, reasons: Vec<String>, missing: Vec<Missing>, log: PathBuf },
    /// `check`: what the registry holds of the bundle's workload images.
    Check {
        registry: String,
        project: String,
        pass: bool,
        images: usize,
        manifests: usize,
        present: usize,
        problems: Vec<CheckProblem>,
    },
    /// Any command failed.
    Error { message: String, code: i32 },
}

/// One manifest `check` did not find as the bundle has it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckProblem {
    pub image: String,
    pub repository: String,
    pub reference: String,
    /// `missing`, `different`, `refused`, `unreachable` or `other`.
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenderedFile {
    pub path: String,
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `error` or `warning`.
    pub severity: &'static str,
    pub file: Option<PathBuf>,
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IsoDone {
    pub output: PathBuf,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub base: PathBuf,
    pub volume_id: String,
    pub patched_configs: Vec<String>,
    pub files_checked: usize,
    pub bytes_checked: u64,
    pub boot_images: Vec<String>,
    pub notes: Vec<String>,
    pub initrd_bytes: u64,
    pub live_load: bool,
    pub kernel_args: Vec<String>,
    pub kernel_args_added: Vec<KernelArgsAdded>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelArgsAdded {
    pub path: String,
    pub args: Vec<String>,
    pub entries: usize,
    pub kernel_entries: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub image: String,
    pub repository: String,
    pub reference: String,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_names_and_fields_pipelines_read() {
        let line = |e: &Event| serde_json::to_value(e).unwrap();
        let v = line(&Event::Done { paths: vec![], zstd: None, bytes: 1, images: 2, unique_blob_bytes: Some(3) });
        assert_eq!(
            v,
            serde_json::json!({"event": "done", "paths": [], "zstd": null, "bytes": 1, "images": 2, "uniqueBlobBytes": 3})
        );
        let v = line(&Event::Done { paths: vec![], zstd: None, bytes: 1, images: 2, unique_blob_bytes: None });
        assert!(v.get("uniqueBlobBytes").is_none());
        let v = line(&Event::SiteIso { output: "o".into(), bytes: 1, volume_id: "cidata".into() });
        assert_eq!(v, serde_json::json!({"event": "site-iso", "output": "o", "bytes": 1, "volumeId": "cidata"}));
        let v =
            line(&Event::BootFailed { pass: false, seconds: 1.0, reasons: vec![], missing: vec![], log: "l".into() });
        assert_eq!(v["event"], "boot-test");
        let v = line(&Event::Error { message: "m".into(), code: 3 });
        assert_eq!(v, serde_json::json!({"event": "error", "message": "m", "code": 3}));
    }
}
