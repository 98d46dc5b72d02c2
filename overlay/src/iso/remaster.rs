//! The remaster: [`Remaster`] lays an overlay tree onto a copy of the base
//! ISO with xorriso, patching its boot configs (see [`crate::bootcfg`]) and
//! normalising modes, writes a separate output with early writeback, and
//! reads it back.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use edgeiso_contract::fs::{self as tempfs, scratch_dir};
use edgeiso_contract::kernel_args::check_kernel_arg;
use edgeiso_contract::paths::iso::{INITRD, SITE_AREA};

use super::boot::{inspect_with_files, patch_config};
use super::error::{io_err, unpatchable};
use super::verify::{check_files, stat_sources, verification};
use super::xorriso::{os, stdio, tail};
use super::{check_supported, inspect_base, BaseInspection, BootSetup, IsoError, Verification, Xorriso};

/// A boot config the remaster changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedConfig {
    /// Path in the ISO.
    pub path: String,
    /// Initrd lines changed to also load the overlay.
    pub patched_lines: usize,
    /// Lines loading an initrd.
    pub initrd_lines: usize,
    /// Kernel entries (GRUB kernel commands, isolinux labels booting Linux
    /// and other kernel lines) in the config.
    pub kernel_lines: usize,
    /// Kernel entries given at least one of [`Remaster::kernel_args`].
    pub kernel_args_lines: usize,
    /// Which of [`Remaster::kernel_args`] were added to at least one entry
    /// (an entry that already has an argument does not get it again).
    pub kernel_args_added: Vec<String>,
}

/// What [`Remaster::run`] did.
#[derive(Debug, Clone)]
pub struct RemasterReport {
    /// The output ISO.
    pub output: PathBuf,
    /// The base's boot setup.
    pub base: BootSetup,
    /// The output's boot setup (read back).
    pub result: BootSetup,
    /// Boot configs patched to load the initramfs overlay.
    pub patched_configs: Vec<PatchedConfig>,
    /// The kernel arguments asked for ([`Remaster::kernel_args`]); what each
    /// config got is in [`PatchedConfig::kernel_args_added`].
    pub kernel_args: Vec<String>,
    /// Read-back verification.
    pub verification: Verification,
    /// Things worth telling the user (for example HFS+ dropped).
    pub notes: Vec<String>,
}

/// A remaster job: `base` + `overlay_dir` -> `output`.
#[derive(Debug, Clone)]
pub struct Remaster {
    /// The base installer ISO (never modified).
    pub base: PathBuf,
    /// Directory whose tree is laid onto the ISO root.
    pub overlay_dir: PathBuf,
    /// The new ISO; must not be the base.
    pub output: PathBuf,
    /// ISO path of the initramfs overlay inside `overlay_dir` to add to every
    /// boot entry (normally [`edgeiso_contract::paths::iso::INITRD`]); `None` lays the
    /// files without touching boot configs.
    pub initrd_overlay: Option<String>,
    /// ISO path of the site area inside `overlay_dir`
    /// ([`edgeiso_contract::site_area`]), loaded by every boot entry after
    /// the overlay; only with `initrd_overlay`.
    pub site_area: Option<String>,
    /// Fixed time for every date in the ISO (reproducible output); `None`
    /// leaves xorriso's defaults (current time).
    pub source_date_epoch: Option<u64>,
    /// Kernel arguments appended to every kernel entry of the patched boot
    /// configs that lacks them (see [`crate::bootcfg::patch_grub_cfg`] and
    /// [`crate::bootcfg::patch_isolinux_cfg`]); only with `initrd_overlay`.
    /// `edgeiso iso` passes the spec's `agent.liveKernelArgs` when
    /// `liveLoad` is on (`rd.neednet=1 ip=dhcp` by default), empty otherwise.
    pub kernel_args: Vec<String>,
    /// The xorriso to run.
    pub xorriso: Xorriso,
    /// The base as already inspected ([`inspect_base`]); `None`, or an
    /// inspection of another file, inspects it again.
    pub inspected: Option<std::sync::Arc<BaseInspection>>,
}

impl Remaster {
    /// A job with the initramfs overlay at `/boot/edgeiso.img`, the site
    /// area at `/boot/edgeiso-site.img` when the tree has one, and the time
    /// from `SOURCE_DATE_EPOCH`.
    pub fn new(
        base: impl Into<PathBuf>,
        overlay_dir: impl Into<PathBuf>,
        output: impl Into<PathBuf>,
    ) -> Result<Self, IsoError> {
        let epoch = crate::source_date_epoch()
            .map_err(|e| IsoError::BadOverlay { path: PathBuf::from("SOURCE_DATE_EPOCH"), reason: e.to_string() })?;
        let overlay_dir = overlay_dir.into();
        let has_area = overlay_dir.join(SITE_AREA.trim_start_matches('/')).is_file();
        Ok(Remaster {
            base: base.into(),
            site_area: has_area.then(|| SITE_AREA.to_string()),
            overlay_dir,
            output: output.into(),
            initrd_overlay: Some(INITRD.to_string()),
            source_date_epoch: epoch,
            kernel_args: Vec::new(),
            xorriso: Xorriso::find()?,
            inspected: None,
        })
    }

    /// Refuse to write the output over the base, by path or by inode.
    fn check_output_is_not_base(&self) -> Result<(), IsoError> {
        use std::os::unix::fs::MetadataExt;
        let base_meta = std::fs::metadata(&self.base).map_err(io_err(&self.base))?;
        let refuse = || IsoError::OutputIsBase { base: self.base.clone(), output: self.output.clone() };
        if let Ok(out_meta) = std::fs::metadata(&self.output) {
            if out_meta.dev() == base_meta.dev() && out_meta.ino() == base_meta.ino() {
                return Err(refuse());
            }
        }
        let canon_base = std::fs::canonicalize(&self.base).map_err(io_err(&self.base))?;
        let out_parent = self.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let (Ok(parent), Some(name)) = (std::fs::canonicalize(out_parent), self.output.file_name()) {
            if parent.join(name) == canon_base {
                return Err(refuse());
            }
        }
        Ok(())
    }

    /// Inspect, patch boot configs, write the output via a temporary file and
    /// a rename, then read it back and verify it.
    pub fn run(&self) -> Result<RemasterReport, IsoError> {
        self.check_output_is_not_base()?;
        for arg in &self.kernel_args {
            check_kernel_arg(arg).map_err(|reason| IsoError::BadKernelArg { arg: arg.clone(), reason })?;
        }
        if !self.overlay_dir.is_dir() {
            return Err(IsoError::BadOverlay { path: self.overlay_dir.clone(), reason: "not a directory".into() });
        }
        let x = &self.xorriso;
        let scratch = scratch_dir("edgeiso-remaster.").map_err(io_err(&std::env::temp_dir()))?;
        let inspected = match &self.inspected {
            Some(done) if done.iso == self.base => done.clone(),
            _ => std::sync::Arc::new(inspect_base(x, &self.base)?),
        };
        let (base_setup, base_entries) = (&inspected.setup, &inspected.files);
        let base_modes: BTreeMap<&str, (u32, bool)> =
            base_entries.iter().map(|f| (f.path.as_str(), (f.mode, f.is_dir))).collect();

        // Boot configs to replace: ISO path -> patched file on disk.
        let mut patched: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut patched_configs = Vec::new();
        if let Some(overlay_iso_path) = &self.initrd_overlay {
            check_supported(&self.base, base_setup)?;
            let local = self.overlay_dir.join(overlay_iso_path.trim_start_matches('/'));
            let bytes = std::fs::read(&local).map_err(|e| IsoError::BadOverlay {
                path: local.clone(),
                reason: format!("initramfs overlay {overlay_iso_path} missing from the overlay tree: {e}"),
            })?;
            crate::initramfs::check_initramfs(&bytes)
                .map_err(|source| IsoError::BadInitramfs { path: local.clone(), source })?;
            let patched_dir = scratch.path().join("patched");
            for cfg in base_setup.patchable_configs() {
                // A config the overlay itself supplies is the one to patch.
                let rel = cfg.path.trim_start_matches('/');
                let from_overlay = self.overlay_dir.join(rel);
                let source =
                    if from_overlay.is_file() { from_overlay } else { inspected.scratch.path().join("iso").join(rel) };
                let text = std::fs::read(&source).map_err(io_err(&source))?;
                let p = patch_config(cfg.kind, &String::from_utf8_lossy(&text), overlay_iso_path, &self.kernel_args);
                if let Some(problem) = p.problems.first() {
                    return Err(unpatchable(&self.base, &cfg.path, problem));
                }
                // The site area after the overlay: the same patch again (it
                // appends after the last initrd, now the overlay).
                let text = match &self.site_area {
                    Some(area) => {
                        let a = patch_config(cfg.kind, &p.text, area, &[]);
                        if let Some(problem) = a.problems.first() {
                            return Err(unpatchable(&self.base, &cfg.path, problem));
                        }
                        a.text
                    }
                    None => p.text.clone(),
                };
                let dest = patched_dir.join(rel);
                std::fs::create_dir_all(dest.parent().expect("joined path has a parent")).map_err(io_err(&dest))?;
                std::fs::write(&dest, text.as_bytes()).map_err(io_err(&dest))?;
                patched_configs.push(PatchedConfig {
                    path: cfg.path.clone(),
                    patched_lines: p.patched_lines,
                    initrd_lines: p.initrd_lines,
                    kernel_lines: p.kernel_lines,
                    kernel_args_lines: p.kernel_args_lines,
                    kernel_args_added: p.kernel_args_added,
                });
                patched.insert(cfg.path.clone(), dest);
            }
        }

        let out_dir = self.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let out_name = self.output.file_name().ok_or_else(|| IsoError::BadOverlay {
            path: self.output.clone(),
            reason: "output has no file name".into(),
        })?;
        // Temp files of runs that died (killed, power cut) go first; a live
        // run's are locked and stay.
        let tmp_prefix = format!(".{}.partial-", out_name.to_string_lossy());
        tempfs::sweep_orphans(out_dir, |name| name.starts_with(&tmp_prefix));
        // xorriso must get an empty file: a non-empty one would be treated as a
        // medium to append to. Created 0600 (the ISO carries the site's
        // secrets) and flock-held while this run lives, so no other run sweeps
        // it (it gets its swept name only once locked).
        let (tmp, tmp_file) = tempfs::create_locked_as(out_dir, &tmp_prefix, "", Some(0o600))
            .map_err(|source| IsoError::Io { path: out_dir.to_path_buf(), source })?;
        let _cleanup = tempfs::RemoveOnDrop(tmp.clone());
        let modes = self.overlay_modes(&patched, &base_modes)?;

        let mut expected = overlay_files(&self.overlay_dir)?;
        for (iso_path, local) in &patched {
            expected.insert(iso_path.clone(), local.clone());
        }
        let sources = stat_sources(&expected)?;
        let started = std::time::Instant::now();

        let mut notes = Vec::new();
        let attempt = |drop_hfsplus: bool| -> Result<(), IsoError> {
            tmp_file.set_len(0).map_err(io_err(&tmp))?;
            let args = self.xorriso_args(base_setup, &patched, &modes, &tmp, drop_hfsplus);
            let mut cmd = x.command();
            if let Some(epoch) = self.source_date_epoch {
                // Also fixes -iso_nowtime and the GPT disk GUID (derived from the volume uuid).
                cmd.env("SOURCE_DATE_EPOCH", epoch.to_string());
            }
            tracing::debug!(program = %x.program().display(), ?args, "remastering");
            let out = with_writeback(&tmp_file, || cmd.args(&args).output()).map_err(|e| x.spawn_error(e))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(IsoError::ToolFailed {
                    tool: x.program().display().to_string(),
                    subject: format!("{} -> {}", self.base.display(), self.output.display()),
                    detail: tail(&String::from_utf8_lossy(&out.stderr), 8),
                })
            }
        };
        match attempt(false) {
            Ok(()) => {}
            // xorriso 1.5.4 cannot replay grub-mkrescue's HFS+/APM hybrid: its GPT
            // gap partitions come out overlapping. HFS+ only serves Intel Macs
            // booting the ISO; BIOS, UEFI, CD and USB boot do not need it.
            Err(IsoError::ToolFailed { detail, .. }) if base_setup.hfsplus && detail.contains("overlap") => {
                attempt(true)?;
                notes.push(format!(
                    "{}: HFS+/APM hybrid (Intel Mac boot) dropped: xorriso cannot replay it ({})",
                    self.base.display(),
                    detail.lines().find(|l| l.contains("overlap")).unwrap_or("").trim()
                ));
            }
            Err(e) => return Err(e),
        }

        let written = started.elapsed();
        // The output goes to disk while it is read back (from the page cache).
        let flushing = {
            let tmp = tmp.clone();
            std::thread::spawn(move || File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err(&tmp)))
        };
        // Inspecting the output (xorriso and mtools runs) overlaps the comparison.
        let (result_setup, bytes) = std::thread::scope(|s| {
            let inspecting = s.spawn(|| {
                let s2 = scratch_dir("edgeiso-readback.").map_err(io_err(&std::env::temp_dir()))?;
                inspect_with_files(x, &tmp, s2.path()).map(|(setup, _)| setup)
            });
            let bytes = check_files(x, &tmp, &sources);
            (inspecting.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), bytes)
        });
        let as_output = |e| match e {
            IsoError::VerifyFailed { reason, .. } => IsoError::VerifyFailed { iso: self.output.clone(), reason },
            other => other,
        };
        let bytes = bytes.map_err(as_output)?;
        let result_setup = result_setup?;
        let verification = verification(&tmp, base_setup, &result_setup, sources.len(), bytes).map_err(as_output)?;
        let verified = started.elapsed();
        join(flushing)?;
        tracing::debug!(?written, ?verified, synced = ?started.elapsed(), "remaster timings (from xorriso's start)");
        std::fs::rename(&tmp, &self.output).map_err(io_err(&self.output))?;
        Ok(RemasterReport {
            output: self.output.clone(),
            base: base_setup.clone(),
            result: result_setup,
            patched_configs,
            kernel_args: self.kernel_args.clone(),
            verification,
            notes,
        })
    }

    fn xorriso_args(
        &self,
        setup: &BootSetup,
        patched: &BTreeMap<String, PathBuf>,
        modes: &BTreeMap<u32, Vec<String>>,
        tmp: &Path,
        drop_hfsplus: bool,
    ) -> Vec<OsString> {
        let mut a: Vec<OsString> = ["-abort_on", "FAILURE", "-return_with", "SORRY", "32", "-report_about", "WARNING"]
            .into_iter()
            .map(os)
            .collect();
        a.extend([os("-indev"), stdio(&self.base), os("-outdev"), stdio(tmp)]);
        // xorriso's default fsyncs the output every 16 MiB while writing,
        // which made it slower than `cp` of the same bytes; `run` syncs once
        // at the end, while it reads the result back.
        a.extend([os("-stdio_sync"), os("off")]);
        // xorriso notices the end of its write on its pacifier's tick, 1 s
        // by default: 0.1 s measured ~7% faster (docs/benchmarks.md).
        a.extend([os("-pacifier"), os("interval=0.1")]);
        if setup.joliet {
            // Loading an ISO drops its Joliet tree unless asked to write one.
            a.extend([os("-joliet"), os("on")]);
        }
        a.extend([os("-map"), self.overlay_dir.as_os_str().to_owned(), os("/")]);
        for (iso_path, local) in patched {
            a.extend([os("-map"), local.as_os_str().to_owned(), os(iso_path)]);
        }
        // Owners from the build machine mean nothing on the target.
        a.extend(["-chown_r", "0", "/", "--", "-chgrp_r", "0", "/", "--"].map(os));
        // Nor do its modes (umask, a 0700 temp dir mapped onto /): see
        // `overlay_modes`. Paths are literal, not patterns.
        a.extend([os("-iso_rr_pattern"), os("off")]);
        for (mode, paths) in modes {
            a.extend([os("-chmod"), os(format!("{mode:04o}"))]);
            a.extend(paths.iter().map(os));
            a.push(os("--"));
        }
        // Replays the base's El Torito, MBR/GPT, appended partitions and
        // volume uuid (grub-mkrescue's core image searches the ISO by that uuid).
        a.extend([os("-boot_image"), os("any"), os("replay")]);
        if drop_hfsplus {
            a.extend([os("-hfsplus"), os("off")]);
        }
        if let Some(e) = self.source_date_epoch {
            let at = format!("={e}");
            for which in ["c", "m"] {
                a.extend([os("-volume_date"), os(which), os(&at)]);
            }
            for which in ["x", "f"] {
                a.extend([os("-volume_date"), os(which), os("default")]);
            }
            a.extend([os("-volume_date"), os("all_file_dates"), os(&at)]);
        }
        a.push(os("-commit"));
        a
    }
}

impl Remaster {
    /// The Rock Ridge mode of every path the remaster adds or replaces,
    /// grouped by mode, so the output does not depend on the host's umask:
    /// `/` keeps the base's mode (0755 if unknown), directories new to the ISO
    /// get 0755, overlay files 0755 when their owner may execute them (the
    /// agent), 0600 when others may not read them (render's secrets: Harbor's
    /// password and TLS key, credential-bearing config.yaml and hosts.toml,
    /// which must not become readable by every user of the live system),
    /// else 0644; patched configs the base file's mode. Directories the base
    /// already has keep their mode (`-map` leaves them alone), as do all
    /// other files of the base.
    fn overlay_modes(
        &self,
        patched: &BTreeMap<String, PathBuf>,
        base: &BTreeMap<&str, (u32, bool)>,
    ) -> Result<BTreeMap<u32, Vec<String>>, IsoError> {
        use std::os::unix::fs::PermissionsExt;
        let mut modes: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let root = base.get("/").filter(|(_, dir)| *dir).map_or(0o755, |(m, _)| *m);
        modes.entry(root).or_default().push("/".into());
        for entry in walkdir::WalkDir::new(&self.overlay_dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| IsoError::Io {
                path: self.overlay_dir.clone(),
                source: e.into_io_error().unwrap_or_else(|| io::Error::other("walk failed")),
            })?;
            let rel = entry.path().strip_prefix(&self.overlay_dir).expect("walkdir yields paths under its root");
            let iso_path = format!("/{}", rel.to_string_lossy());
            if patched.contains_key(&iso_path) {
                continue;
            }
            let mode = if entry.file_type().is_dir() {
                if base.get(iso_path.as_str()).is_some_and(|(_, dir)| *dir) {
                    continue;
                }
                0o755
            } else if entry.file_type().is_file() {
                let meta = entry.metadata().map_err(|e| IsoError::Io {
                    path: entry.path().to_path_buf(),
                    source: e.into_io_error().unwrap_or_else(|| io::Error::other("stat failed")),
                })?;
                let mode = meta.permissions().mode();
                if mode & 0o100 != 0 {
                    0o755
                } else if mode & 0o004 == 0 {
                    0o600
                } else {
                    0o644
                }
            } else {
                continue;
            };
            modes.entry(mode).or_default().push(iso_path);
        }
        for iso_path in patched.keys() {
            let mode = base.get(iso_path.as_str()).map_or(0o644, |(m, _)| *m);
            modes.entry(mode).or_default().push(iso_path.clone());
        }
        Ok(modes)
    }
}

/// Run `work` (xorriso writing the output) while starting the disk writeback
/// of what it has written so far every 200 ms (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`: asynchronous, it waits for nothing). The disk then
/// flushes while xorriso is still copying, instead of all of it at the final
/// fsync: `cp` gets that overlap from the kernel's in-kernel copy, xorriso's
/// own `-stdio_sync` fsyncs synchronously every 16 MiB and is slower still.
/// Measured: xorriso's 2 GiB write then fsync 4.8-5.3 s; overlapped, see
/// docs/benchmarks.md.
fn with_writeback<T>(file: &File, work: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let fd = file.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                // SAFETY: `fd` stays open for the whole scope (`file` outlives
                // it); the call only reads its arguments. A failure (a file
                // system without it) just means no early writeback.
                unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// Regular files under `dir`, keyed by ISO path.
fn overlay_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, IsoError> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| IsoError::Io {
            path: dir.to_path_buf(),
            source: e.into_io_error().unwrap_or_else(|| io::Error::other("walk failed")),
        })?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
            files.insert(format!("/{}", rel.to_string_lossy()), entry.path().to_path_buf());
        }
    }
    Ok(files)
}

fn join<T>(handle: std::thread::JoinHandle<T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
