//! `edgeiso overlay`, and the overlay step of `iso`/`build`: render the site
//! in memory and have `edgeiso_overlay::tree` lay it, the bundle and the
//! agent into the tree that goes onto the ISO (docs/iso-layout.md).

use std::path::{Path, PathBuf};

use edgeiso_installer_config::spec::Spec;
use edgeiso_overlay::initramfs::Compression;
use edgeiso_overlay::tree::{write_tree, TreeError, TreeInputs, TreeReport};

use crate::bundle_input::BundleInput;
use crate::exit::{self, with_code};
use crate::render_site::render_checked;
use crate::ui::{human_bytes, Event, Ui};
use crate::work::{parent_of, work_dir};

/// What the ISO's boot entries load besides the base's initrd: the agent's
/// initramfs overlay (the binary, its compression) and the site area.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The static agent (default: `edgeiso-agent` beside this executable).
    pub path: Option<PathBuf>,
    pub compression: Compression,
    /// The site area's size (`edgeiso_contract::site_area`).
    pub site_area_bytes: u64,
}

/// `edgeiso overlay`.
#[derive(Debug, Clone)]
pub struct OverlayOptions {
    pub spec: PathBuf,
    /// The folder to write the tree into.
    pub output: PathBuf,
    pub bundle: BundleInput,
    /// Bundle parts on the ISO are at most this many bytes.
    pub part_size: u64,
    pub agent: AgentOptions,
}

const AGENT_HINT: &str = "build it with scripts/build-agent-static.sh and pass --agent PATH (or set EDGEISO_AGENT)";

pub fn overlay(ui: &Ui, opts: &OverlayOptions) -> anyhow::Result<()> {
    let spec = Spec::load(&opts.spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let agent = agent_path(&opts.agent);
    check_agent(&agent)?;
    let work = work_dir(parent_of(&opts.output))?;
    let parts = opts.bundle.obtain(ui, &spec, opts.part_size, work.path())?;
    let report = write_overlay(ui, &spec, &parts, &agent, &opts.agent, opts.part_size, &opts.output)?;
    show(ui, &report);
    Ok(())
}

/// The agent binary: the given path, else `edgeiso-agent` beside this executable.
pub fn agent_path(opts: &AgentOptions) -> PathBuf {
    opts.path.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("edgeiso-agent")))
            .unwrap_or_else(|| PathBuf::from("edgeiso-agent"))
    })
}

/// Check the agent binary before minutes of work are spent.
pub fn check_agent(path: &Path) -> anyhow::Result<()> {
    edgeiso_overlay::agent_binary::check_static_agent(path)
        .map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("{e}; {AGENT_HINT}")))
}

/// Render `spec` and write the overlay tree with the bundle `parts` and
/// `agent` to `out` (replaced whole; an existing `out` must be empty or an
/// overlay edgeiso wrote).
pub fn write_overlay(
    ui: &Ui,
    spec: &Spec,
    parts: &[PathBuf],
    agent: &Path,
    agent_opts: &AgentOptions,
    part_size: u64,
    out: &Path,
) -> anyhow::Result<TreeReport> {
    let first = parts.first().ok_or_else(|| anyhow::anyhow!("no bundle"))?;
    crate::bundle_check::check_site_trust(spec, first)?;
    let rendered = render_checked(ui, spec, &crate::render_inputs::render_options(first)?)?;
    for w in &rendered.warnings {
        ui.line(format!("warning: {w}"));
    }
    let registry = spec.harbor.url.to_string();
    let golden_inputs =
        edgeiso_installer_config::spec::snapshot::pack(spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let inputs = TreeInputs {
        site: &spec.name,
        registry: &registry,
        rendered: &rendered.files,
        live_config: &rendered.live_agent_config,
        live_load: spec.agent.live_load,
        parts,
        part_size,
        agent,
        compression: agent_opts.compression,
        site_area_bytes: agent_opts.site_area_bytes,
        golden_inputs: &golden_inputs,
    };
    let report = write_tree(&inputs, out).map_err(|e| {
        let code = match &e {
            TreeError::NotOurs(_)
            | TreeError::Bundle(_)
            | TreeError::BootstrapTooLarge { .. }
            | TreeError::Epoch(_)
            | TreeError::SiteAreaSize(_)
            | TreeError::NoBundle => exit::INVALID_INPUT,
            TreeError::Agent(_) => return with_code(exit::INVALID_INPUT, anyhow::anyhow!("{e}; {AGENT_HINT}")),
            _ => exit::FAILURE,
        };
        with_code(code, e)
    })?;
    for w in &report.warnings {
        ui.line(format!("warning: {w}"));
    }
    Ok(report)
}

/// Tell people and pipelines what the tree holds.
pub fn show(ui: &Ui, r: &TreeReport) {
    ui.line(format!(
        "overlay {}: {} files; bundle {} in {} part(s); initramfs overlay {} ({}, agent {}); live load: {}",
        r.output.display(),
        r.files.len(),
        human_bytes(r.bundle_bytes),
        r.bundle_parts.len(),
        human_bytes(r.initrd_bytes),
        r.initrd_compression,
        human_bytes(r.agent_bytes),
        if r.live_load { format!("yes, into {}", r.registry) } else { "no (agent staged only)".into() },
    ));
    ui.event(&Event::Overlay(r.clone()));
}
