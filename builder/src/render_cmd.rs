//! `edgeiso render` and `edgeiso lint`: thin wrappers over installer-config.

use edgeiso_installer_config::lint::Severity;
use edgeiso_installer_config::spec::Spec;
use edgeiso_installer_config::{fix_profile, lint_profile, render, LintReport, RenderError, RenderOptions};

use crate::cli::{LintArgs, RenderArgs};
use crate::exit::{self, with_code};
use crate::ui::Ui;

pub fn render_site(ui: &Ui, args: RenderArgs) -> anyhow::Result<()> {
    let spec = Spec::load(&args.spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let bundle_bytes = match &args.bundle {
        Some(p) => Some(unique_blob_bytes(p)?),
        None => None,
    };
    let report = match render(&spec, &args.output, &RenderOptions { bundle_bytes }) {
        Ok(r) => r,
        Err(RenderError::Lint(lint)) => {
            show_findings(ui, &lint);
            return Err(with_code(
                exit::VERIFY_FAILED,
                anyhow::anyhow!(
                    "{}: the site does not pass its checks; nothing was written",
                    spec.source_path.display()
                ),
            ));
        }
        Err(e @ RenderError::Write { .. }) => return Err(with_code(exit::FAILURE, e)),
        Err(e) => return Err(with_code(exit::INVALID_INPUT, e)),
    };
    show_findings(ui, &report.lint);
    for w in &report.warnings {
        ui.line(format!("warning: {w}"));
    }
    for f in &report.files {
        ui.print(report.output.join(&f.path).display().to_string());
    }
    if !report.harbor_images.is_empty() {
        ui.line("Harbor's own images (bundled as bootstrap images by `edgeiso bundle create`):");
        for i in &report.harbor_images {
            ui.line(format!("  {i}"));
        }
    }
    ui.event(
        "rendered",
        serde_json::json!({
            "output": report.output,
            "files": report.files.iter().map(|f| serde_json::json!({"path": f.path, "secret": f.secret})).collect::<Vec<_>>(),
            "harborImages": report.harbor_images.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "mirroredHosts": report.mirrored_hosts,
            "configYamlBytes": report.config_yaml_bytes,
            "warnings": report.warnings,
            "findings": findings_json(&report.lint),
        }),
    );
    Ok(())
}

pub fn lint(ui: &Ui, args: LintArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.fix {
        let fixed = fix_profile(&args.profile, out).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
        let lines: Vec<String> = fixed.changed_lines.iter().map(u64::to_string).collect();
        ui.line(format!(
            "wrote {} ({} line(s) changed: {})",
            fixed.output.display(),
            fixed.changed_lines.len(),
            lines.join(", ")
        ));
    }
    let report = lint_profile(&args.profile).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    show_findings(ui, &report);
    ui.event("lint", serde_json::json!({ "profile": args.profile, "findings": findings_json(&report) }));
    if report.has_errors() {
        let hint =
            if args.fix.is_some() { " (the --fix copy is clean)" } else { "; --fix FILE writes a corrected copy" };
        return Err(with_code(exit::VERIFY_FAILED, anyhow::anyhow!("{}: lint failed{hint}", args.profile.display())));
    }
    ui.line(format!("{}: OK", args.profile.display()));
    Ok(())
}

fn show_findings(ui: &Ui, report: &LintReport) {
    for f in &report.findings {
        ui.line(f.to_string());
    }
}

fn findings_json(report: &LintReport) -> Vec<serde_json::Value> {
    report
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "severity": if f.severity == Severity::Error { "error" } else { "warning" },
                "file": f.file, "line": f.line, "message": f.message,
            })
        })
        .collect()
}

/// Unique blob bytes of a bundle: what Harbor's registry storage must hold.
pub fn unique_blob_bytes(path: &std::path::Path) -> anyhow::Result<u64> {
    let bundle = edgeiso_bundle::Bundle::open(path).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    Ok(bundle.unique_blob_bytes())
}
