//! `edgeiso iso` and `edgeiso build`.
//!
//! `iso` builds what is missing (the bundle unless one is given, the render
//! output and the overlay tree, in a work folder beside the output), then
//! remasters the base with xorriso into a separate file, replaying its boot
//! setup, and reads the result back (`edgeiso_overlay::iso::Remaster`).
//! `build` is the same chain shown as numbered steps, plus `OUT.sha256`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use edgeiso_contract::fs::{write_atomic, FileMode};
use edgeiso_installer_config::spec::Spec;
use edgeiso_overlay::iso::{self, IsoError, Remaster, Xorriso};
use sha2::{Digest as _, Sha256};

use crate::bundle_input::BundleInput;
use crate::exit::{self, with_code};
use crate::overlay_tree::{agent_path, check_agent, show, write_overlay, AgentOptions};
use crate::ui::events::{IsoDone, KernelArgsAdded};
use crate::ui::{human_bytes, Event, Ui};
use crate::work::{parent_of, work_dir};

/// `edgeiso iso` and `edgeiso build`.
#[derive(Debug, Clone)]
pub struct IsoOptions {
    pub spec: PathBuf,
    /// The base installer ISO (never modified).
    pub base: PathBuf,
    /// The ISO to write (a separate file: never the base).
    pub output: PathBuf,
    pub bundle: BundleInput,
    /// Bundle parts on the ISO are at most this many bytes.
    pub part_size: u64,
    pub agent: AgentOptions,
    /// Keep the intermediate files here instead of a temporary folder.
    pub work_dir: Option<PathBuf>,
    /// `build`: numbered steps on the terminal, and `OUT.sha256`.
    pub build: bool,
}

/// Exit code for an ISO error: bad inputs are 3, a failed read-back 4.
pub fn iso_error(e: IsoError) -> anyhow::Error {
    let code = match &e {
        IsoError::NotAnIso { .. }
        | IsoError::NotBootable { .. }
        | IsoError::UnsupportedLayout { .. }
        | IsoError::EfiImageBootsKernel { .. }
        | IsoError::UnpatchableBootConfig { .. }
        | IsoError::OutputIsBase { .. }
        | IsoError::BadOverlay { .. }
        | IsoError::BadKernelArg { .. }
        | IsoError::Epoch(_) => exit::INVALID_INPUT,
        IsoError::VerifyFailed { .. } | IsoError::BadInitramfs { .. } => exit::VERIFY_FAILED,
        _ => exit::FAILURE,
    };
    with_code(code, e)
}

struct Steps<'a> {
    ui: &'a Ui,
    shown: bool,
    total: usize,
    n: usize,
    started: Instant,
}

impl Steps<'_> {
    fn step(&mut self, what: &str) {
        self.n += 1;
        if self.shown {
            self.ui.line(format!("[{}/{}] {what} ({:.1}s)", self.n, self.total, self.started.elapsed().as_secs_f64()));
        }
        self.ui.event(&Event::Step { step: self.n, of: self.total, what: what.to_owned() });
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
        if x.dev() == y.dev() && x.ino() == y.ino() {
            return true;
        }
    }
    let parent = b.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (fs::canonicalize(a), fs::canonicalize(parent), b.file_name()) {
        (Ok(ca), Ok(pb), Some(name)) => ca == pb.join(name),
        _ => false,
    }
}

/// Lay the site onto the base ISO.
pub fn iso(ui: &Ui, args: &IsoOptions) -> anyhow::Result<()> {
    let build = args.build;
    let started = Instant::now();
    let mut steps = Steps { ui, shown: build, total: if build { 5 } else { 4 }, n: 0, started };
    // Cheap checks first, before minutes of pulling.
    let spec = Spec::load(&args.spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    if !args.base.is_file() {
        return Err(with_code(exit::INVALID_INPUT, anyhow::anyhow!("base ISO {}: no such file", args.base.display())));
    }
    if same_file(&args.base, &args.output) {
        return Err(iso_error(IsoError::OutputIsBase { base: args.base.clone(), output: args.output.clone() }));
    }
    let x = Xorriso::find().map_err(iso_error)?;
    // Inspected once: the remaster below reuses it.
    let inspected = std::sync::Arc::new(iso::inspect_base(&x, &args.base).map_err(iso_error)?);
    let base_setup = &inspected.setup;
    iso::check_supported(&args.base, base_setup).map_err(iso_error)?;
    let agent = agent_path(&args.agent);
    check_agent(&agent)?;
    ui.line(format!("base {}: {}", args.base.display(), base_setup.summary().lines().next().unwrap_or("")));

    let out_dir = parent_of(&args.output).to_path_buf();
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let temp_work;
    let work: PathBuf = match &args.work_dir {
        Some(d) => {
            fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp_work = work_dir(&out_dir)?;
            temp_work.path().to_path_buf()
        }
    };

    steps.step(if args.bundle.is_given() { "bundle: using --bundle" } else { "bundle: pulling the site's images" });
    let parts = args.bundle.obtain(ui, &spec, args.part_size, &work)?;
    steps.step("render + overlay tree + initramfs overlay");
    let overlay_dir = work.join("overlay");
    let report = write_overlay(ui, &spec, &parts, &agent, &args.agent, args.part_size, &overlay_dir)?;
    show(ui, &report);
    steps.step("remaster with xorriso (boot setup replayed) + read-back verification");
    let mut job = Remaster::new(&args.base, &overlay_dir, &args.output).map_err(iso_error)?;
    job.xorriso = x;
    job.inspected = Some(inspected);
    // The live load needs the network in the live initramfs, which dracut
    // brings up only when the kernel command line asks (spec.md, liveKernelArgs).
    if report.live_load {
        job.kernel_args = spec.agent.live_kernel_args.clone();
    }
    let r = job.run().map_err(iso_error)?;
    steps.step("verified");
    for n in &r.notes {
        ui.line(format!("note: {n}"));
    }
    for c in &r.patched_configs {
        ui.line(format!(
            "  {}: {} of {} initrd line(s) now also load /boot/edgeiso.img",
            c.path, c.patched_lines, c.initrd_lines
        ));
        if !r.kernel_args.is_empty() {
            let added = if c.kernel_args_added.is_empty() { "none".to_string() } else { c.kernel_args_added.join(" ") };
            ui.line(format!(
                "  {}: kernel arguments added: {added} ({} of {} kernel entr{} changed; asked: {})",
                c.path,
                c.kernel_args_lines,
                c.kernel_lines,
                if c.kernel_lines == 1 { "y" } else { "ies" },
                r.kernel_args.join(" ")
            ));
        }
    }
    let size = fs::metadata(&args.output)?.len();
    let mut sha = None;
    if build {
        steps.step("checksum");
        let digest = sha256_file(&args.output)?;
        let name = args.output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut sum = args.output.as_os_str().to_owned();
        sum.push(".sha256");
        write_atomic(Path::new(&sum), format!("{digest}  {name}\n").as_bytes(), FileMode::Public)
            .with_context(|| format!("writing {}", Path::new(&sum).display()))?;
        sha = Some(digest);
    }
    ui.line(format!(
        "wrote {} ({}; {} overlay files, {} read back and checked) in {:.1}s",
        args.output.display(),
        human_bytes(size),
        report.files.len(),
        r.verification.files_checked,
        started.elapsed().as_secs_f64()
    ));
    ui.print(args.output.display().to_string());
    ui.event(&Event::Iso(Box::new(IsoDone {
        output: args.output.clone(),
        bytes: size,
        sha256: sha,
        base: args.base.clone(),
        volume_id: r.result.volume_id.clone(),
        patched_configs: r.patched_configs.iter().map(|c| c.path.clone()).collect(),
        files_checked: r.verification.files_checked,
        bytes_checked: r.verification.bytes_checked,
        boot_images: r.verification.boot_images.clone(),
        notes: r.notes.clone(),
        initrd_bytes: report.initrd_bytes,
        live_load: report.live_load,
        kernel_args: r.kernel_args.clone(),
        kernel_args_added: r
            .patched_configs
            .iter()
            .map(|c| KernelArgsAdded {
                path: c.path.clone(),
                args: c.kernel_args_added.clone(),
                entries: c.kernel_args_lines,
                kernel_entries: c.kernel_lines,
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })));
    Ok(())
}

fn sha256_file(p: &Path) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut fs::File::open(p)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}
