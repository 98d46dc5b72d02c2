//! `edgeiso iso`, `edgeiso build` and `edgeiso site-iso`.
//!
//! `iso` builds what is missing (the bundle unless `--bundle`, the render
//! output and the overlay tree, in a work folder beside the output), then
//! remasters the base with xorriso into a separate file, replaying its boot
//! setup, and reads the result back (`edgeiso_overlay::iso::Remaster`).
//! `build` is the same chain shown as numbered steps, plus `OUT.sha256`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use edgeiso_bundle::fsutil;
use edgeiso_installer_config::spec::Spec;
use edgeiso_overlay::iso::{self, IsoError, Remaster, Xorriso};
use sha2::{Digest as _, Sha256};

use crate::cli::{IsoArgs, SiteIsoArgs};
use crate::exit::{self, with_code};
use crate::overlay_cmd;
use crate::ui::{human_bytes, Ui};

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
        self.ui.event("step", serde_json::json!({ "step": self.n, "of": self.total, "what": what }));
    }
}

pub fn run_iso(ui: &Ui, args: IsoArgs) -> anyhow::Result<()> {
    run(ui, args, false)
}

pub fn run_build(ui: &Ui, args: IsoArgs) -> anyhow::Result<()> {
    run(ui, args, true)
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

fn run(ui: &Ui, args: IsoArgs, build: bool) -> anyhow::Result<()> {
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
    let agent = overlay_cmd::resolve_agent(&args.agent)?;
    ui.line(format!("base {}: {}", args.base.display(), base_setup.summary().lines().next().unwrap_or("")));

    let out_dir = args.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let temp_work;
    let work: PathBuf = match &args.work_dir {
        Some(d) => {
            fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp_work = locked_temp_dir(&out_dir, WORK_PREFIX)?;
            temp_work.path().to_path_buf()
        }
    };

    steps.step(if args.bundle.bundle.is_some() {
        "bundle: using --bundle"
    } else {
        "bundle: pulling the site's images"
    });
    let parts = overlay_cmd::obtain_bundle(ui, &spec, &args.spec, &args.bundle, &work)?;
    steps.step("render + overlay tree + initramfs overlay");
    let overlay_dir = work.join("overlay");
    let report =
        overlay_cmd::write_overlay(ui, &spec, &parts, &agent, &args.agent, args.bundle.part_size, &overlay_dir)?;
    report.show(ui);
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
        write_replacing(Path::new(&sum), format!("{digest}  {name}\n").as_bytes())?;
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
    ui.event(
        "iso",
        serde_json::json!({
            "output": args.output, "bytes": size, "sha256": sha, "base": args.base,
            "volumeId": r.result.volume_id,
            "patchedConfigs": r.patched_configs.iter().map(|c| &c.path).collect::<Vec<_>>(),
            "filesChecked": r.verification.files_checked, "bytesChecked": r.verification.bytes_checked,
            "bootImages": r.verification.boot_images, "notes": r.notes,
            "initrdBytes": report.initrd_bytes, "liveLoad": report.live_load,
            "kernelArgs": r.kernel_args,
            "kernelArgsAdded": r.patched_configs.iter().map(|c| serde_json::json!({
                "path": c.path, "args": c.kernel_args_added,
                "entries": c.kernel_args_lines, "kernelEntries": c.kernel_lines,
            })).collect::<Vec<_>>(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
    Ok(())
}

/// Work folders beside the output: `.edgeiso-work.XXXX` (`iso`, `build`).
const WORK_PREFIX: &str = ".edgeiso-work.";
/// The staging folder of `site-iso`.
const CIDATA_PREFIX: &str = ".edgeiso-cidata.";

/// A temporary folder beside the output that says whether its run is alive
/// (see [`edgeiso_bundle::fsutil::create_locked_dir`]). Creating one first
/// removes the folders of runs that died (killed, power cut) without cleaning
/// up; a live run's stay. Where the file system cannot lock (some NFS
/// mounts), the folder is used unlocked and nothing is swept.
fn locked_temp_dir(parent: &Path, prefix: &str) -> anyhow::Result<fsutil::LockedDir> {
    fsutil::sweep_orphan_dirs(parent, prefix);
    fsutil::create_locked_dir(parent, prefix)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))
}

/// Write `bytes` to `path` through a temp file and a rename, so a reader
/// never sees half a file and a crash leaves the old one.
fn write_replacing(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = format!(".{}", file_name(path));
    fsutil::sweep_orphans(dir, |n| n.starts_with(&format!("{stem}.")) && n.ends_with(".partial"));
    let (tmp, mut f) = fsutil::create_locked(dir, &stem, "partial")
        .with_context(|| format!("creating a temp file for {}", path.display()))?;
    let done = f.write_all(bytes).and_then(|()| f.sync_all()).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

fn sha256_file(p: &Path) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut fs::File::open(p)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// `edgeiso site-iso`: the NoCloud-style `cidata` ISO.
pub fn site_iso(ui: &Ui, args: SiteIsoArgs) -> anyhow::Result<()> {
    let user_data = fs::read(&args.user_data)
        .map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("{}: {e}", args.user_data.display())))?;
    if !user_data.starts_with(b"#cloud-config") {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("{}: user-data must start with the line #cloud-config", args.user_data.display()),
        ));
    }
    if user_data.len() as u64 >= edgeiso_installer_config::layout::MAX_USER_DATA_BYTES {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("{}: user-data is 1 MB or more; Kairos would skip it", args.user_data.display()),
        ));
    }
    let out_dir = args.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    fs::create_dir_all(&out_dir)?;
    let stage = locked_temp_dir(&out_dir, CIDATA_PREFIX)?;
    let stage = stage.path();
    fs::write(stage.join("user-data"), &user_data)?;
    let meta = match &args.meta_data {
        Some(p) => fs::read(p).map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("{}: {e}", p.display())))?,
        None => {
            let id = &hex::encode(Sha256::digest(&user_data))[..16];
            format!("instance-id: edgeiso-{id}\n").into_bytes()
        }
    };
    fs::write(stage.join("meta-data"), meta)?;
    // Rock Ridge modes from the host's umask would make the ISO differ between hosts.
    for f in ["user-data", "meta-data"] {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(stage.join(f), fs::Permissions::from_mode(0o644))?;
    }
    let x = Xorriso::find().map_err(iso_error)?;
    // The cidata ISO carries the user-data (secrets): 0600, whatever the umask.
    // xorriso writes into the empty temp file, which stays flock-held (so a
    // later run sweeps it only once this one is gone) until the rename.
    let stem = format!(".{}", file_name(&args.output));
    fsutil::sweep_orphans(&out_dir, |n| n.starts_with(&format!("{stem}.")) && n.ends_with(".partial"));
    let (tmp, tmp_file) = fsutil::create_locked_as(&out_dir, &format!("{stem}."), ".partial", Some(0o600))
        .with_context(|| format!("creating a temp file in {}", out_dir.display()))?;
    let _remove = fsutil::RemoveOnDrop(tmp.clone());
    let mut cmd = Command::new(x.program());
    cmd.env("LC_ALL", "C").args(["-report_about", "SORRY", "-as", "mkisofs", "-o"]).arg(&tmp);
    cmd.args(["-V", "cidata", "-J", "-R", "-input-charset", "utf-8", "-graft-points"]);
    let epoch = edgeiso_overlay::source_date_epoch().map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    if let Some(e) = epoch {
        // Every date from SOURCE_DATE_EPOCH: byte-identical rebuilds.
        cmd.env("SOURCE_DATE_EPOCH", e.to_string());
        let t = fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(e));
        for f in ["user-data", "meta-data"] {
            fs::File::options().write(true).open(stage.join(f))?.set_times(t)?;
        }
    } else {
        cmd.env_remove("SOURCE_DATE_EPOCH");
    }
    cmd.arg(format!("user-data={}", stage.join("user-data").display()));
    cmd.arg(format!("meta-data={}", stage.join("meta-data").display()));
    let out = cmd.output().map_err(|e| {
        iso_error(if e.kind() == std::io::ErrorKind::NotFound {
            IsoError::ToolMissing { tool: x.program().display().to_string(), hint: "Debian package xorriso" }
        } else {
            IsoError::Io { path: x.program().to_path_buf(), source: e }
        })
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "xorriso failed writing {}: {}",
            args.output.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    fs::rename(&tmp, &args.output)?;
    drop(tmp_file);
    let size = fs::metadata(&args.output)?.len();
    ui.line(format!("wrote {} (volume cidata, user-data + meta-data, {})", args.output.display(), human_bytes(size)));
    ui.print(args.output.display().to_string());
    ui.event("site-iso", serde_json::json!({ "output": args.output, "bytes": size, "volumeId": "cidata" }));
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "site.iso".into())
}
