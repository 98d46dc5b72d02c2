//! `edgeiso bundle verify` and `edgeiso bundle inspect`.

use std::collections::BTreeMap;
use std::path::Path;

use edgeiso_bundle::signature::VerifyingKey;
use edgeiso_bundle::verify::verify_with_base;
use edgeiso_bundle::{Bundle, BundleError};

use crate::exit::{self, with_code};
use crate::ui::{human_bytes, Event, Ui};

pub(crate) fn open(path: &Path) -> anyhow::Result<Bundle> {
    Bundle::open(path).map_err(|e| {
        let code = match e {
            BundleError::Io { .. } => exit::FAILURE,
            BundleError::NotFound(_) => exit::INVALID_INPUT,
            _ => exit::VERIFY_FAILED,
        };
        with_code(code, e)
    })
}

/// The signature beside `bundle` must be `key`'s over its `bundle.json`:
/// else exit 6, naming the bundle and why.
fn check_signature(bundle: &Bundle, key: &VerifyingKey) -> anyhow::Result<()> {
    key.verify_bundle(bundle.path(), &bundle.meta_bytes).map_err(|e| {
        with_code(exit::SIGNATURE_REFUSED, anyhow::anyhow!("bundle {} refused: {e}", bundle.path().display()))
    })
}

/// With the spec's `trust.publicKey`, the bundle an ISO carries must be
/// signed by it: the site's agent would refuse it on the node, so the ISO
/// is not made.
pub fn check_site_trust(spec: &edgeiso_installer_config::Spec, first: &Path) -> anyhow::Result<()> {
    let Some(trust) = &spec.trust else { return Ok(()) };
    let key = VerifyingKey::from_pem(&trust.public_key, &trust.public_key_pem)
        .map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    check_signature(&open(first)?, &key).map_err(|e| {
        e.context(
            "the site's agent checks bundles by trust.publicKey and would refuse it: give a bundle signed by its \
             key (edgeiso bundle create --sign-key, or edgeiso bundle sign) with --bundle",
        )
    })
}

/// Check every checksum, blob digest and manifest reference of the bundle at
/// `path`, and first, with `key`, that `bundle.json` is signed by it. A
/// delta's left-out blobs are checked against `base` when given.
pub fn verify(ui: &Ui, path: &Path, key: Option<&Path>, base: Option<&Path>) -> anyhow::Result<()> {
    let bundle = open(path)?;
    let base = base
        .map(|b| {
            Bundle::open(b).map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("--base {}: {e}", b.display())))
        })
        .transpose()?;
    if let Some(key) = key {
        let key = VerifyingKey::read(key).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
        check_signature(&bundle, &key)?;
        ui.line(format!("{}: signature OK ({})", bundle.path().display(), key.path().display()));
    }
    let bar = ui.bytes_bar(bundle.total_len(), "verifying");
    let report = verify_with_base(&bundle, base.as_ref(), &|n| bar.inc(n)).map_err(|e| {
        let code = match e {
            BundleError::NotADelta { .. } => exit::INVALID_INPUT,
            _ => exit::VERIFY_FAILED,
        };
        with_code(code, e)
    })?;
    bar.finish_and_clear();
    for p in &report.problems {
        ui.line(format!("  {p}"));
    }
    if let Some(partial) = bundle.partial() {
        ui.line(format!("{}: partial bundle, {partial}", bundle.path().display()));
        ui.line(format!("  {} blob(s) expected from elsewhere:", report.expected.len()));
        for e in &report.expected {
            ui.line(format!("    {e}"));
        }
    }
    ui.event(&Event::Verified {
        bundle: bundle.path().to_path_buf(),
        ok: report.problems.is_empty(),
        members: report.members_checked,
        bytes: report.bytes_checked,
        problems: report.problems.clone(),
        partial: bundle.partial().cloned(),
        expected: report.expected.clone(),
    });
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

/// List the bundle's images, platforms, sizes and roles.
pub fn inspect(ui: &Ui, path: &Path) -> anyhow::Result<()> {
    let bundle = open(path)?;
    let unique = bundle.unique_blob_bytes();
    let summed: u64 = bundle.meta.images.iter().map(|i| i.size).sum();
    let mut by_role: BTreeMap<String, usize> = BTreeMap::new();
    for i in &bundle.meta.images {
        *by_role.entry(i.role.to_string()).or_default() += 1;
    }
    if ui.is_json() {
        ui.event(&Event::Inspect {
            bundle: bundle.path().to_path_buf(),
            parts: bundle.paths.clone(),
            name: bundle.meta.name.clone(),
            created: bundle.meta.created.clone(),
            tool: bundle.meta.tool.clone(),
            format_version: bundle.meta.format_version,
            partial: bundle.partial().cloned(),
            images: bundle.meta.images.clone(),
            unique_blob_bytes: unique,
            image_bytes: summed,
            saved_by_deduplication: summed.saturating_sub(unique),
            bundle_bytes: bundle.total_len(),
        });
        return Ok(());
    }
    ui.print(format!(
        "bundle {} (format {}, {}, created {})",
        bundle.meta.name, bundle.meta.format_version, bundle.meta.tool, bundle.meta.created
    ));
    ui.print(format!("{} part(s), {}", bundle.paths.len(), human_bytes(bundle.total_len())));
    match bundle.partial() {
        Some(p) => {
            ui.print(format!("partial: {p}"));
            let left_out = bundle.left_out().map_err(|e| with_code(exit::VERIFY_FAILED, e))?;
            ui.print(format!(
                "left out: {} config and layer blob(s), {}",
                left_out.len(),
                human_bytes(left_out.values().sum())
            ));
        }
        None => ui.print("whole: every blob inside"),
    }
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
