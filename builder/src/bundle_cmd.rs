//! `edgeiso bundle verify` and `edgeiso bundle inspect`.

use std::collections::BTreeMap;

use edgeiso_bundle::verify::verify as verify_bundle;
use edgeiso_bundle::{Bundle, BundleError};

use crate::cli::{InspectArgs, VerifyArgs};
use crate::exit::{self, with_code};
use crate::ui::{human_bytes, Ui};

fn open(path: &std::path::Path) -> anyhow::Result<Bundle> {
    Bundle::open(path).map_err(|e| {
        let code = match e {
            BundleError::Io { .. } => exit::FAILURE,
            BundleError::NotFound(_) => exit::INVALID_INPUT,
            _ => exit::VERIFY_FAILED,
        };
        with_code(code, e)
    })
}

pub fn verify(ui: &Ui, args: VerifyArgs) -> anyhow::Result<()> {
    let bundle = open(&args.bundle)?;
    let bar = ui.bytes_bar(bundle.total_len(), "verifying");
    let report = verify_bundle(&bundle, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    for p in &report.problems {
        ui.line(format!("  {p}"));
    }
    ui.event(
        "verified",
        serde_json::json!({
            "bundle": bundle.path(), "ok": report.problems.is_empty(), "members": report.members_checked,
            "bytes": report.bytes_checked, "problems": report.problems,
        }),
    );
    if report.problems.is_empty() {
        ui.line(format!(
            "{}: OK ({} images, {} members, {})",
            bundle.path().display(),
            bundle.meta.images.len(),
            report.members_checked,
            human_bytes(report.bytes_checked)
        ));
        Ok(())
    } else {
        Err(with_code(
            exit::VERIFY_FAILED,
            anyhow::anyhow!("{}: {} problem(s) found", bundle.path().display(), report.problems.len()),
        ))
    }
}

pub fn inspect(ui: &Ui, args: InspectArgs) -> anyhow::Result<()> {
    let bundle = open(&args.bundle)?;
    let unique = bundle.unique_blob_bytes();
    let summed: u64 = bundle.meta.images.iter().map(|i| i.size).sum();
    let mut by_role: BTreeMap<String, usize> = BTreeMap::new();
    for i in &bundle.meta.images {
        *by_role.entry(i.role.to_string()).or_default() += 1;
    }
    if ui.is_json() {
        ui.event(
            "inspect",
            serde_json::json!({
                "bundle": bundle.path(), "parts": bundle.paths, "name": bundle.meta.name,
                "created": bundle.meta.created, "tool": bundle.meta.tool, "formatVersion": bundle.meta.format_version,
                "images": bundle.meta.images, "uniqueBlobBytes": unique, "imageBytes": summed,
                "savedByDeduplication": summed.saturating_sub(unique), "bundleBytes": bundle.total_len(),
            }),
        );
        return Ok(());
    }
    ui.print(format!(
        "bundle {} (format {}, {}, created {})",
        bundle.meta.name, bundle.meta.format_version, bundle.meta.tool, bundle.meta.created
    ));
    ui.print(format!("{} part(s), {}", bundle.paths.len(), human_bytes(bundle.total_len())));
    let width = bundle.meta.images.iter().map(|i| i.reference.as_str().len()).max().unwrap_or(5).max(5);
    ui.print(format!("{:<width$}  {:<9}  {:<24}  {:>10}", "IMAGE", "ROLE", "PLATFORMS", "SIZE"));
    for i in &bundle.meta.images {
        ui.print(format!(
            "{:<width$}  {:<9}  {:<24}  {:>10}",
            i.reference.as_str(),
            i.role.to_string(),
            i.platforms.join(","),
            human_bytes(i.size)
        ));
    }
    let roles: Vec<String> = by_role.iter().map(|(r, n)| format!("{n} {r}")).collect();
    ui.print(format!(
        "{} images ({}); unique blobs {}; {} saved by deduplication",
        bundle.meta.images.len(),
        roles.join(", "),
        human_bytes(unique),
        human_bytes(summed.saturating_sub(unique))
    ));
    Ok(())
}
