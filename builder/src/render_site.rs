//! `edgeiso render` and `edgeiso lint`: installer-config computes, this
//! writes. A render output folder is replaced whole (staged beside it, then
//! swapped in), and only when it is empty or one edgeiso rendered before.

use std::path::{Path, PathBuf};

use anyhow::Context;
use edgeiso_contract::fs::{may_replace, write_atomic_with_mode, FileMode, StagedDir};
use edgeiso_contract::paths::out;
use edgeiso_installer_config::lint::Severity;
use edgeiso_installer_config::spec::Spec;
use edgeiso_installer_config::{
    fix_profile, lint_profile, render, LintReport, RenderError, RenderOptions, RenderReport,
};

use crate::exit::{self, with_code};
use crate::ui::events::{Finding, RenderedFile};
use crate::ui::{Event, Ui};

/// `edgeiso render`.
#[derive(Debug, Clone)]
pub struct RenderSiteOptions {
    pub spec: PathBuf,
    /// The folder to render into.
    pub output: PathBuf,
    /// The site's bundle: Harbor's registry storage is checked against its size.
    pub bundle: Option<PathBuf>,
}

/// `edgeiso lint`.
#[derive(Debug, Clone)]
pub struct LintOptions {
    pub profile: PathBuf,
    /// Write a corrected copy here.
    pub fix: Option<PathBuf>,
}

/// Render `spec` in memory, with the site checks; failures get their exit
/// codes. `opts` come from the site's bundle (`crate::render_inputs`).
pub fn render_checked(ui: &Ui, spec: &Spec, opts: &RenderOptions) -> anyhow::Result<RenderReport> {
    match render(spec, opts) {
        Ok(r) => Ok(r),
        Err(RenderError::Lint(lint)) => {
            show_findings(ui, &lint);
            Err(with_code(
                exit::VERIFY_FAILED,
                anyhow::anyhow!(
                    "{}: the site does not pass its checks; nothing was written",
                    spec.source_path.display()
                ),
            ))
        }
        Err(e) => Err(with_code(exit::INVALID_INPUT, e)),
    }
}

pub fn render_site(ui: &Ui, opts: &RenderSiteOptions) -> anyhow::Result<()> {
    let spec = Spec::load(&opts.spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let render_opts = match opts.bundle.as_deref() {
        Some(b) => crate::render_inputs::render_options(b)?,
        None => RenderOptions::default(),
    };
    // Before anything is computed: a folder that is somebody else's stays so.
    if !may_replace(&opts.output, out::MARKER).with_context(|| opts.output.display().to_string())? {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!(
                "{}: refusing to replace a folder that is not empty and was not written by edgeiso render",
                opts.output.display()
            ),
        ));
    }
    let report = render_checked(ui, &spec, &render_opts)?;
    let mut warnings = report.warnings.clone();
    if let Some(w) = write_output(&report, &spec, &opts.output)? {
        warnings.push(w);
    }
    show_findings(ui, &report.lint);
    for w in &warnings {
        ui.line(format!("warning: {w}"));
    }
    for f in report.files.iter() {
        ui.print(opts.output.join(&f.path).display().to_string());
    }
    if !report.harbor_images.is_empty() {
        ui.line("Harbor's own images (bundled as bootstrap images by `edgeiso bundle create`):");
        for i in &report.harbor_images {
            ui.line(format!("  {i}"));
        }
    }
    ui.event(&Event::Rendered {
        output: opts.output.clone(),
        files: report
            .files
            .iter()
            .map(|f| RenderedFile { path: f.path.clone(), secret: f.mode == FileMode::Secret })
            .collect(),
        harbor_images: report.harbor_images.iter().map(|i| i.to_string()).collect(),
        mirrored_hosts: report.mirrored_hosts.clone(),
        config_yaml_bytes: report.config_yaml_bytes,
        warnings,
        findings: findings(&report.lint),
    });
    Ok(())
}

/// Write the render output into `output`, replacing it whole; a warning
/// when the previous output could not be deleted.
fn write_output(report: &RenderReport, spec: &Spec, output: &Path) -> anyhow::Result<Option<String>> {
    let failed =
        |e: std::io::Error| with_code(exit::FAILURE, anyhow::anyhow!("cannot write {}: {e}", output.display()));
    let stage = StagedDir::new(output).map_err(failed)?;
    report.files.write_into(stage.path()).map_err(failed)?;
    let marker = format!("edgeiso render of site {}\n", spec.name);
    edgeiso_contract::fs::write_atomic(&stage.path().join(out::MARKER), marker.as_bytes(), FileMode::Public)
        .map_err(failed)?;
    stage.commit().map_err(failed)
}

pub fn lint(ui: &Ui, opts: &LintOptions) -> anyhow::Result<()> {
    if let Some(out) = &opts.fix {
        let fixed = fix_profile(&opts.profile, out).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
        write_atomic_with_mode(out, fixed.text.as_bytes(), fixed.mode)
            .map_err(|e| with_code(exit::FAILURE, anyhow::anyhow!("cannot write {}: {e}", out.display())))?;
        let lines: Vec<String> = fixed.changed_lines.iter().map(u64::to_string).collect();
        ui.line(format!(
            "wrote {} ({} line(s) changed: {})",
            fixed.output.display(),
            fixed.changed_lines.len(),
            lines.join(", ")
        ));
    }
    let report = lint_profile(&opts.profile).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    show_findings(ui, &report);
    ui.event(&Event::Lint { profile: opts.profile.clone(), findings: findings(&report) });
    if report.has_errors() {
        let hint =
            if opts.fix.is_some() { " (the --fix copy is clean)" } else { "; --fix FILE writes a corrected copy" };
        return Err(with_code(exit::VERIFY_FAILED, anyhow::anyhow!("{}: lint failed{hint}", opts.profile.display())));
    }
    ui.line(format!("{}: OK", opts.profile.display()));
    Ok(())
}

pub fn show_findings(ui: &Ui, report: &LintReport) {
    for f in &report.findings {
        ui.line(f.to_string());
    }
}

fn findings(report: &LintReport) -> Vec<Finding> {
    report
        .findings
        .iter()
        .map(|f| Finding {
            severity: if f.severity == Severity::Error { "error" } else { "warning" },
            file: f.file.clone(),
            line: f.line,
            message: f.message.clone(),
        })
        .collect()
}
