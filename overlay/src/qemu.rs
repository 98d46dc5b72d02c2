//! Boot an ISO in QEMU (TCG) and watch its serial console.
//!
//! The VM gets the ISO as a CD-ROM (IDE on the default i440fx machine) or as
//! a USB stick (`usb-storage` on a `qemu-xhci` controller: SeaBIOS and OVMF
//! both boot from it), an empty virtio disk to install onto, user-mode
//! networking (the host's loopback is `10.0.2.2` in the guest) and its serial
//! console in a log file.
//!
//! The accelerator is KVM when it works, else TCG ([`default_accel`]): on the
//! project's machines `/dev/kvm` exists and SeaBIOS even runs under KVM, but
//! the Linux kernel then hangs, so short probe guests must show SeaBIOS output
//! and then a kernel's first console line before KVM is used.
//! `$EDGEISO_QEMU_ACCEL=tcg|kvm` overrides the detection.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;

/// Errors from booting a VM.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// A required program or firmware file is missing.
    #[error("{what} not found ({hint})")]
    Missing {
        /// The program or file.
        what: String,
        /// Which package provides it.
        hint: &'static str,
    },
    /// Local file trouble (log, disk, firmware copy).
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The marker did not appear in time.
    #[error(
        "{iso} ({firmware:?}, {media:?}): no line matching {marker:?} within {timeout:?}; serial log tail:\n{log_tail}\nQEMU stderr: {stderr}"
    )]
    Timeout {
        /// The ISO booted.
        iso: PathBuf,
        /// Firmware.
        firmware: Firmware,
        /// Boot medium.
        media: Media,
        /// The awaited pattern.
        marker: String,
        /// The limit.
        timeout: Duration,
        /// The end of the serial log.
        log_tail: String,
        /// The end of QEMU's own error output.
        stderr: String,
    },
    /// QEMU stopped before the marker appeared.
    #[error("{iso} ({firmware:?}, {media:?}): QEMU exited ({status}) before a line matching {marker:?}; serial log tail:\n{log_tail}\nQEMU stderr: {stderr}")]
    ExitedEarly {
        /// The ISO booted.
        iso: PathBuf,
        /// Firmware.
        firmware: Firmware,
        /// Boot medium.
        media: Media,
        /// The awaited pattern.
        marker: String,
        /// How QEMU exited.
        status: String,
        /// The end of the serial log.
        log_tail: String,
        /// QEMU's own complaints.
        stderr: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QemuError + '_ {
    move |source| QemuError::Io { path: path.to_path_buf(), source }
}

/// Firmware to boot with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    #[default]
    Bios,
    /// OVMF (Debian package `ovmf`), with a private copy of its variable store.
    Uefi,
}

/// How the ISO is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Media {
    /// An IDE CD-ROM drive.
    #[default]
    Cd,
    /// A USB stick: `usb-storage` on `qemu-xhci`, the raw ISO as its disk.
    Usb,
}

impl Firmware {
    /// `bios` or `uefi`, as the command line takes it.
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

impl Media {
    /// `cd` or `usb`, as the command line takes it.
    pub fn name(self) -> &'static str {
        match self {
            Media::Cd => "cd",
            Media::Usb => "usb",
        }
    }
}

impl std::str::FromStr for Firmware {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bios" => Ok(Firmware::Bios),
            "uefi" => Ok(Firmware::Uefi),
            other => Err(format!("unknown firmware {other:?} (expected bios or uefi)")),
        }
    }
}

impl std::str::FromStr for Media {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cd" => Ok(Media::Cd),
            "usb" => Ok(Media::Usb),
            other => Err(format!("unknown media {other:?} (expected cd or usb)")),
        }
    }
}

/// How to boot.
#[derive(Debug, Clone)]
pub struct BootSpec {
    /// The ISO.
    pub iso: PathBuf,
    /// Firmware.
    pub firmware: Firmware,
    /// Boot medium.
    pub media: Media,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest CPUs (TCG runs one host thread per vCPU).
    pub cpus: u32,
    /// Size of the empty install disk; 0 attaches none.
    pub disk_bytes: u64,
    /// Where the serial console goes; `None` uses a file in the VM's temp dir.
    pub serial_log: Option<PathBuf>,
    /// Give up after this long.
    pub timeout: Duration,
    /// `qemu-system-x86_64` to run.
    pub qemu: PathBuf,
    /// Directory holding `OVMF_CODE*.fd` and `OVMF_VARS*.fd`.
    pub ovmf_dir: PathBuf,
    /// Host TCP ports forwarded to the guest (host, guest), on 127.0.0.1.
    pub forwards: Vec<(u16, u16)>,
    /// Let the guest reboot (an installer rebooting into the installed
    /// system); by default a reboot ends QEMU (`-no-reboot`).
    pub allow_reboot: bool,
    /// QEMU's `-accel` value: `$EDGEISO_QEMU_ACCEL` if set, else
    /// [`default_accel`] (`kvm` only if a probe guest ran under KVM).
    pub accel: String,
}

impl BootSpec {
    /// BIOS from CD, 1 GiB RAM, 1 CPU, an 8 GiB sparse disk, 10 minutes.
    pub fn new(iso: impl Into<PathBuf>) -> Self {
        BootSpec {
            iso: iso.into(),
            firmware: Firmware::Bios,
            media: Media::Cd,
            memory_mib: 1024,
            cpus: 1,
            disk_bytes: 8 << 30,
            serial_log: None,
            timeout: Duration::from_secs(600),
            qemu: std::env::var_os("EDGEISO_QEMU").map(PathBuf::from).unwrap_or_else(|| "qemu-system-x86_64".into()),
            ovmf_dir: PathBuf::from("/usr/share/OVMF"),
            forwards: Vec::new(),
            allow_reboot: false,
            accel: String::new(),
        }
        .with_default_accel()
    }

    fn with_default_accel(mut self) -> Self {
        let env = std::env::var("EDGEISO_QEMU_ACCEL").ok();
        self.accel = match env.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(explicit) => explicit.to_string(),
            None => default_accel(&self.qemu).accel.clone(),
        };
        self
    }

    /// Set the firmware.
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    /// Set the boot medium.
    pub fn media(mut self, media: Media) -> Self {
        self.media = media;
        self
    }

    /// Set the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keep the serial log at `path`.
    pub fn serial_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.serial_log = Some(path.into());
        self
    }
}

/// The accelerator chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelChoice {
    /// QEMU's `-accel` value: `kvm` or `tcg`.
    pub accel: String,
    /// Why (for logs and reports).
    pub reason: String,
}

/// How long the KVM probe guest gets to show that its vCPU runs.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The accelerator to use when `$EDGEISO_QEMU_ACCEL` is not set: KVM when it
/// works (SeaBIOS and then a Linux kernel run under it), else TCG. Decided once per process (the first caller's `qemu` runs
/// the probe) and logged.
pub fn default_accel(qemu: &Path) -> &'static AccelChoice {
    static CHOICE: OnceLock<AccelChoice> = OnceLock::new();
    CHOICE.get_or_init(|| {
        let choice = decide_accel(None, Path::new("/dev/kvm"), || kvm_works(qemu));
        tracing::info!(accel = %choice.accel, reason = %choice.reason, "QEMU accelerator");
        choice
    })
}

/// The decision: an explicit `env` value wins; else KVM only if `kvm_dev`
/// opens read-write and `probe` then proves a KVM vCPU runs (Ok carries what
/// it saw), else TCG.
pub fn decide_accel(env: Option<&str>, kvm_dev: &Path, probe: impl FnOnce() -> Result<String, String>) -> AccelChoice {
    let choose = |accel: &str, reason: String| AccelChoice { accel: accel.to_string(), reason };
    if let Some(explicit) = env.map(str::trim).filter(|a| !a.is_empty()) {
        return choose(explicit, "$EDGEISO_QEMU_ACCEL".to_string());
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(kvm_dev) {
        return choose("tcg", format!("{} cannot be opened read-write ({e})", kvm_dev.display()));
    }
    match probe() {
        Ok(seen) => choose("kvm", format!("a KVM probe guest ran: {seen}")),
        Err(why) => choose("tcg", format!("{} opens but KVM does not work: {why}", kvm_dev.display())),
    }
}

/// Boot an empty machine under KVM: SeaBIOS writes its debug log to I/O port
/// 0x402, which proves a vCPU executed guest code. The guest is killed after
/// the first output or after `timeout`, whichever comes first.
///
/// Necessary, not sufficient: on the project's machines SeaBIOS and GRUB run
/// under KVM and the Linux kernel then hangs; see [`kvm_probe_kernel`].
pub fn kvm_probe(qemu: &Path, timeout: Duration) -> Result<String, String> {
    probe_guest(qemu, &[], "SeaBIOS", timeout)
}

/// Boot `kernel` under KVM with its console on the serial port: its first
/// line (`Linux version ...`) within `timeout` proves that a kernel runs.
pub fn kvm_probe_kernel(qemu: &Path, kernel: &Path, timeout: Duration) -> Result<String, String> {
    let args = [
        "-kernel".to_string(),
        kernel.display().to_string(),
        "-append".to_string(),
        "console=ttyS0 earlyprintk=ttyS0 panic=-1".to_string(),
    ];
    probe_guest(qemu, &args, "Linux version", timeout)
}

/// A kernel to probe KVM with: `$EDGEISO_KVM_PROBE_KERNEL`, else the host's
/// `/boot/vmlinuz` if readable.
fn probe_kernel() -> Option<PathBuf> {
    let from_env = std::env::var_os("EDGEISO_KVM_PROBE_KERNEL").filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env.or_else(|| Some(PathBuf::from("/boot/vmlinuz"))).filter(|k| File::open(k).is_ok())
}

/// The probe [`default_accel`] runs: SeaBIOS must run, then a kernel.
fn kvm_works(qemu: &Path) -> Result<String, String> {
    let bios = kvm_probe(qemu, KVM_PROBE_TIMEOUT)?;
    let kernel = probe_kernel().ok_or_else(|| {
        format!(
            "{bios}, but no kernel to check beyond it ($EDGEISO_KVM_PROBE_KERNEL unset, no /boot/vmlinuz), \
             and on the project's machines KVM hangs in the kernel after SeaBIOS and GRUB ran"
        )
    })?;
    let linux = kvm_probe_kernel(qemu, &kernel, KVM_PROBE_TIMEOUT)
        .map_err(|e| format!("{bios}, but the kernel {} does not run: {e}", kernel.display()))?;
    Ok(format!("{bios}; {linux}"))
}

/// Run a probe guest (`-accel kvm`, no devices but a serial port and the
/// 0x402 debug console, both into files) until either file has a line
/// containing `needle`, QEMU exits, or `timeout` passes; then kill it.
fn probe_guest(qemu: &Path, extra: &[String], needle: &str, timeout: Duration) -> Result<String, String> {
    let dir = edgeiso_contract::fs::scratch_dir("edgeiso-kvm-probe.").map_err(|e| format!("temp dir: {e}"))?;
    let (debugcon, serial) = (dir.path().join("debugcon.log"), dir.path().join("serial.log"));
    let stderr_path = dir.path().join("stderr");
    let stderr = File::create(&stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;
    let mut child = Command::new(qemu)
        .args(["-accel", "kvm", "-machine", "pc", "-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-m", "128", "-no-reboot", "-chardev"])
        .arg(format!("file,id=dbg,path={}", debugcon.display().to_string().replace(',', ",,")))
        .args(["-device", "isa-debugcon,iobase=0x402,chardev=dbg", "-serial"])
        .arg(format!("file:{}", serial.display()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{}: {e}", qemu.display()))?;
    let started = Instant::now();
    let outcome = loop {
        let seen = [&debugcon, &serial].iter().find_map(|f| {
            let text = std::fs::read(f).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            text.lines().find(|l| l.contains(needle)).map(|l| l.trim().chars().take(100).collect::<String>())
        });
        if let Some(line) = seen {
            break Ok(format!("{line:?} after {:.1?}", started.elapsed()));
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                let err = err.trim().lines().last().unwrap_or("no message").to_string();
                break Err(format!("the probe guest exited ({status}): {err}"));
            }
            Ok(None) => {}
            Err(e) => break Err(format!("waiting for the probe guest: {e}")),
        }
        if started.elapsed() >= timeout {
            break Err(format!("no {needle:?} output within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // A QEMU stuck in the kernel may not die at once: do not wait for it forever.
    let _ = child.kill();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && !matches!(child.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(20));
    }
    outcome
}

/// OVMF code and variable-store templates, 4 MiB builds preferred.
fn find_ovmf(dir: &Path) -> Result<(PathBuf, PathBuf), QemuError> {
    for (code, vars) in [("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.fd", "OVMF_VARS.fd")] {
        let (c, v) = (dir.join(code), dir.join(vars));
        if c.is_file() && v.is_file() {
            return Ok((c, v));
        }
    }
    Err(QemuError::Missing { what: format!("OVMF firmware in {}", dir.display()), hint: "Debian package ovmf" })
}

/// A path as a QEMU option value (`file=`, `path=`): a `,` in it is written
/// `,,`, else QEMU takes the rest as further options.
pub fn qemu_opt_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// A running VM; killed when dropped.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    spec: BootSpec,
    log: PathBuf,
    /// QEMU's stderr goes to a file: a pipe nobody reads would block QEMU
    /// once 64 KiB of warnings filled it, which looked like a boot timeout.
    stderr: PathBuf,
    started: Instant,
    // Holds the disk, the OVMF variables and (by default) the log.
    _dir: edgeiso_contract::fs::LockedDir,
}

/// The outcome of a boot that reached its marker.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    /// The whole serial log up to the marker (and whatever followed it).
    pub log: String,
    /// The line that matched.
    pub marker_line: String,
    /// Time from QEMU's start to the marker.
    pub elapsed: Duration,
    /// Where the serial log is (gone after the [`Vm`] drops unless set in the spec).
    pub log_path: PathBuf,
}

impl Vm {
    /// Start QEMU for `spec`.
    pub fn start(spec: BootSpec) -> Result<Vm, QemuError> {
        let dir = edgeiso_contract::fs::scratch_dir("edgeiso-vm.").map_err(io_err(&std::env::temp_dir()))?;
        if !spec.iso.is_file() {
            return Err(QemuError::Io {
                path: spec.iso.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "ISO not found"),
            });
        }
        let log = spec.serial_log.clone().unwrap_or_else(|| dir.path().join("serial.log"));
        // Start from an empty log so an old run's marker cannot match.
        File::create(&log).map_err(io_err(&log))?;
        let mut cmd = Command::new(&spec.qemu);
        let netdev: String = std::iter::once("user,id=net0".to_string())
            .chain(spec.forwards.iter().map(|(h, g)| format!("hostfwd=tcp:127.0.0.1:{h}-:{g}")))
            .collect::<Vec<_>>()
            .join(",");
        let stderr_path = dir.path().join("qemu.stderr");
        let stderr = File::create(&stderr_path).map_err(io_err(&stderr_path))?;
        cmd.args(["-accel", &spec.accel, "-machine", "pc", "-nodefaults", "-no-user-config"])
            .args(["-m", &spec.memory_mib.to_string(), "-smp", &spec.cpus.to_string()])
            .args(["-display", "none", "-vga", "std"])
            .args(if spec.allow_reboot { &[][..] } else { &["-no-reboot"][..] })
            // The legacy `-serial file:PATH` takes PATH literally, commas
            // included (checked with QEMU 7.2): no escaping here.
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .args(["-netdev", &netdev, "-device", "virtio-net-pci,netdev=net0,romfile="]);
        if spec.firmware == Firmware::Uefi {
            let (code, vars_template) = find_ovmf(&spec.ovmf_dir)?;
            // OVMF writes its variable store: each VM gets its own copy.
            let vars = dir.path().join("OVMF_VARS.fd");
            std::fs::copy(&vars_template, &vars).map_err(io_err(&vars))?;
            cmd.arg("-drive")
                .arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", qemu_opt_path(&code)))
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,unit=1,file={}", qemu_opt_path(&vars)));
        }
        let iso = qemu_opt_path(&spec.iso);
        match spec.media {
            Media::Cd => {
                cmd.arg("-drive").arg(format!("if=none,id=cd0,media=cdrom,readonly=on,format=raw,file={iso}"));
                cmd.args(["-device", "ide-cd,drive=cd0,bus=ide.1,bootindex=0"]);
            }
            Media::Usb => {
                cmd.arg("-drive").arg(format!("if=none,id=usb0,readonly=on,format=raw,file={iso}"));
                cmd.args(["-device", "qemu-xhci,id=xhci", "-device", "usb-storage,bus=xhci.0,drive=usb0,bootindex=0"]);
            }
        }
        if spec.disk_bytes > 0 {
            let disk = dir.path().join("disk.raw");
            File::create(&disk).and_then(|f| f.set_len(spec.disk_bytes)).map_err(io_err(&disk))?;
            cmd.arg("-drive").arg(format!("if=none,id=disk0,format=raw,file={}", qemu_opt_path(&disk)));
            cmd.args(["-device", "virtio-blk-pci,drive=disk0,bootindex=9"]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        tracing::debug!(?cmd, "starting QEMU");
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                QemuError::Missing { what: spec.qemu.display().to_string(), hint: "Debian package qemu-system-x86" }
            } else {
                QemuError::Io { path: spec.qemu.clone(), source: e }
            }
        })?;
        Ok(Vm { child, spec, log, stderr: stderr_path, started: Instant::now(), _dir: dir })
    }

    /// Where the serial log is.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Wait until a serial line matches `marker`, QEMU exits, or the spec's
    /// timeout passes. The VM keeps running after a match.
    pub fn wait_for(&mut self, marker: &Regex) -> Result<BootOutcome, QemuError> {
        let mut f = File::open(&self.log).map_err(io_err(&self.log))?;
        let mut log = Vec::new();
        let mut scanned = 0; // complete lines already matched against
        loop {
            f.seek(SeekFrom::Start(log.len() as u64)).map_err(io_err(&self.log))?;
            f.read_to_end(&mut log).map_err(io_err(&self.log))?;
            let text = String::from_utf8_lossy(&log);
            // Only complete lines: a marker split across two reads still matches once whole.
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            if let Some(line) = text[scanned.min(complete)..complete].lines().find(|l| marker.is_match(l)) {
                let marker_line = line.trim_end_matches('\r').to_string();
                return Ok(BootOutcome {
                    log: text.into_owned(),
                    marker_line,
                    elapsed: self.started.elapsed(),
                    log_path: self.log.clone(),
                });
            }
            scanned = complete;
            if let Some(status) = self.child.try_wait().map_err(io_err(&self.spec.qemu))? {
                // The guest may have written its last lines just before exiting.
                f.seek(SeekFrom::Start(log.len() as u64)).map_err(io_err(&self.log))?;
                f.read_to_end(&mut log).map_err(io_err(&self.log))?;
                let text = String::from_utf8_lossy(&log).into_owned();
                if let Some(line) = text.lines().find(|l| marker.is_match(l)) {
                    return Ok(BootOutcome {
                        marker_line: line.trim_end_matches('\r').to_string(),
                        log: text.clone(),
                        elapsed: self.started.elapsed(),
                        log_path: self.log.clone(),
                    });
                }
                return Err(QemuError::ExitedEarly {
                    iso: self.spec.iso.clone(),
                    firmware: self.spec.firmware,
                    media: self.spec.media,
                    marker: marker.to_string(),
                    status: status.to_string(),
                    log_tail: log_tail(&text, 30),
                    stderr: self.stderr_tail(),
                });
            }
            if self.started.elapsed() >= self.spec.timeout {
                return Err(QemuError::Timeout {
                    iso: self.spec.iso.clone(),
                    firmware: self.spec.firmware,
                    media: self.spec.media,
                    marker: marker.to_string(),
                    timeout: self.spec.timeout,
                    log_tail: log_tail(&String::from_utf8_lossy(&log), 30),
                    stderr: self.stderr_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait up to `grace` for the guest to power off by itself (the test base
    /// ISO does after its hooks); true if it did.
    pub fn wait_exit(&mut self, grace: Duration) -> bool {
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The last 20 lines of QEMU's stderr (empty if it said nothing).
    fn stderr_tail(&self) -> String {
        let text = std::fs::read(&self.stderr).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        log_tail(text.trim(), 20)
    }

    /// The serial log so far.
    pub fn log(&self) -> Result<String, QemuError> {
        std::fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(io_err(&self.log))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn log_tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Boot `spec` and wait for a serial line matching `marker`; the VM is
/// stopped before returning. After a match, waits up to 5 s for the guest
/// to power off by itself so the log holds its last words.
pub fn boot_until(spec: BootSpec, marker: &Regex) -> Result<BootOutcome, QemuError> {
    let mut vm = Vm::start(spec)?;
    let mut outcome = vm.wait_for(marker)?;
    vm.wait_exit(Duration::from_secs(5));
    if let Ok(log) = vm.log() {
        outcome.log = log;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for qemu-system-x86_64: writes `lines` to the `-serial file:` path, then runs `then`.
    fn fake_qemu(dir: &Path, lines: &str, then: &str) -> PathBuf {
        let script = dir.join("fake-qemu");
        let body = format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in file:*) log=${{a#file:}};; esac; done\nprintf '{lines}' >>\"$log\"\n{then}\n"
        );
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn spec(dir: &Path, qemu: PathBuf) -> BootSpec {
        let iso = dir.join("x.iso");
        std::fs::write(&iso, b"iso").unwrap();
        let mut s = BootSpec::new(iso).timeout(Duration::from_secs(2));
        s.qemu = qemu;
        s.disk_bytes = 1 << 20;
        s
    }

    #[test]
    fn marker_found_in_serial_log() {
        let dir = tempfile::tempdir().unwrap();
        let q = fake_qemu(dir.path(), "booting\\nEDGEISO-HOOK-RAN\\n", "exec sleep 30");
        let marker = Regex::new("HOOK-RAN").unwrap();
        let started = Instant::now();
        let out = boot_until(spec(dir.path(), q), &marker).unwrap();
        assert_eq!(out.marker_line, "EDGEISO-HOOK-RAN");
        assert!(out.log.starts_with("booting\n"));
        // The VM was killed, not waited out.
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn early_exit_and_timeout_report_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let marker = Regex::new("never").unwrap();
        let q = fake_qemu(dir.path(), "kernel panic\\n", "echo bad device >&2; exit 1");
        match boot_until(spec(dir.path(), q), &marker) {
            Err(QemuError::ExitedEarly { log_tail, stderr, .. }) => {
                assert!(log_tail.contains("kernel panic"));
                assert!(stderr.contains("bad device"));
            }
            other => panic!("{other:?}"),
        }
        let q = fake_qemu(dir.path(), "stuck\\n", "exec sleep 30");
        match boot_until(spec(dir.path(), q), &marker) {
            Err(e @ QemuError::Timeout { .. }) => assert!(e.to_string().contains("stuck")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accel_decision_explicit_env_wins_and_no_kvm_device_means_tcg() {
        let dir = tempfile::tempdir().unwrap();
        let no_dev = dir.path().join("no-kvm");
        let never = || -> Result<String, String> { panic!("the probe must not run") };
        assert_eq!(decide_accel(Some("kvm"), &no_dev, never).accel, "kvm");
        let c = decide_accel(Some("tcg"), &no_dev, never);
        assert_eq!((c.accel.as_str(), c.reason.as_str()), ("tcg", "$EDGEISO_QEMU_ACCEL"));
        let c = decide_accel(None, &no_dev, never);
        assert_eq!(c.accel, "tcg");
        assert!(c.reason.contains("no-kvm") && c.reason.contains("cannot be opened read-write"), "{}", c.reason);
        // An empty value counts as unset.
        assert_eq!(decide_accel(Some(" "), &no_dev, never).accel, "tcg");
    }

    #[test]
    fn accel_decision_follows_the_probe_when_the_device_opens() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("kvm");
        std::fs::write(&dev, b"").unwrap();
        let c = decide_accel(None, &dev, || Err("no SeaBIOS output within 5s".into()));
        assert_eq!(c.accel, "tcg");
        assert!(c.reason.contains("KVM does not work: no SeaBIOS output"), "{}", c.reason);
        let c = decide_accel(None, &dev, || Ok("SeaBIOS output after 80ms".into()));
        assert_eq!(c.accel, "kvm");
        assert!(c.reason.contains("SeaBIOS output after 80ms"), "{}", c.reason);
    }

    /// A stand-in QEMU for the KVM probe: runs `body` with $dbg set to the debugcon file.
    fn fake_probe_qemu(dir: &Path, name: &str, body: &str) -> PathBuf {
        let script = dir.join(name);
        let text = format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in file,id=dbg,path=*) dbg=${{a#file,id=dbg,path=}};; esac; done\n{body}\n"
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn kvm_probe_needs_seabios_output_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let ok = fake_probe_qemu(
            dir.path(),
            "ok",
            "echo 'SeaBIOS (version 1.16.2-debian-1.16.2-1)' >\"$dbg\"; exec sleep 30",
        );
        let started = Instant::now();
        let seen = kvm_probe(&ok, Duration::from_secs(5)).unwrap();
        assert!(seen.contains("SeaBIOS (version 1.16.2"), "{seen}");
        assert!(started.elapsed() < Duration::from_secs(4), "the guest was not killed at once");

        let hangs = fake_probe_qemu(dir.path(), "hangs", ": >\"$dbg\"; exec sleep 30");
        let started = Instant::now();
        let err = kvm_probe(&hangs, Duration::from_millis(700)).unwrap_err();
        assert!(err.contains("no \"SeaBIOS\" output within 700ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4), "the hung guest was not killed");

        let asserts = fake_probe_qemu(dir.path(), "asserts", "echo 'kvm_init_vcpu: assertion failed' >&2; exit 1");
        let err = kvm_probe(&asserts, Duration::from_secs(5)).unwrap_err();
        assert!(err.contains("exited") && err.contains("assertion failed"), "{err}");

        // The kernel probe watches the serial port for the kernel's first line.
        let linux = fake_probe_qemu(
            dir.path(),
            "linux",
            "for a in \"$@\"; do case \"$a\" in file:*) ser=${a#file:};; esac; done\n\
             echo 'SeaBIOS' >\"$dbg\"; echo '[    0.000000] Linux version 6.1.0-56-amd64' >\"$ser\"; exec sleep 30",
        );
        let seen = kvm_probe_kernel(&linux, Path::new("/vmlinuz"), Duration::from_secs(5)).unwrap();
        assert!(seen.contains("Linux version 6.1.0"), "{seen}");
        let err = kvm_probe_kernel(&hangs, Path::new("/vmlinuz"), Duration::from_millis(500)).unwrap_err();
        assert!(err.contains("no \"Linux version\" output"), "{err}");

        let err = kvm_probe(Path::new("/nonexistent/qemu-system-x86_64"), Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("/nonexistent/qemu-system-x86_64"), "{err}");
    }

    #[test]
    fn a_chatty_qemu_does_not_block_and_its_stderr_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        // 200 KiB on stderr before the marker: a pipe nobody reads fills at 64 KiB.
        let q = dir.path().join("chatty-qemu");
        let body = "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in file:*) log=${a#file:};; esac; done\n\
                    head -c 204800 /dev/zero | tr '\\0' w >&2\necho >&2; echo 'last warning' >&2\n\
                    printf 'EDGEISO-HOOK-RAN\\n' >>\"$log\"\nexec sleep 30\n";
        std::fs::write(&q, body).unwrap();
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = boot_until(spec(dir.path(), q.clone()), &Regex::new("HOOK-RAN").unwrap()).unwrap();
        assert_eq!(out.marker_line, "EDGEISO-HOOK-RAN");
        // A timeout shows the end of QEMU's stderr.
        match boot_until(spec(dir.path(), q), &Regex::new("never").unwrap()) {
            Err(e @ QemuError::Timeout { .. }) => {
                assert!(e.to_string().contains("QEMU stderr: ") && e.to_string().contains("last warning"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_with_commas_are_escaped_in_option_values() {
        assert_eq!(qemu_opt_path(Path::new("/a,b/c,,d.iso")), "/a,,b/c,,,,d.iso");
        assert_eq!(qemu_opt_path(Path::new("/plain/x.iso")), "/plain/x.iso");
        // Every file= value QEMU gets is escaped: the ISO, the disk, both pflash files.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a,b");
        std::fs::create_dir_all(&odd).unwrap();
        for f in ["OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"] {
            std::fs::write(odd.join(f), b"fw").unwrap();
        }
        let args = dir.path().join("args");
        let q = fake_qemu(&odd, "", &format!("printf '%s\\n' \"$@\" >{}; exit 1", args.display()));
        let mut s = spec(&odd, q).firmware(Firmware::Uefi);
        s.ovmf_dir = odd.clone();
        let _ = boot_until(s, &Regex::new("never").unwrap());
        let args = std::fs::read_to_string(&args).unwrap();
        let drives: Vec<&str> = args.lines().filter(|l| l.starts_with("if=")).collect();
        assert_eq!(drives.len(), 4, "{args}");
        for d in drives {
            let file = d.split("file=").nth(1).unwrap();
            assert!(!file.replace(",,", "").contains(','), "unescaped comma in {d}");
        }
        assert!(args.contains(&format!("file={}", qemu_opt_path(&odd.join("x.iso")))), "{args}");
        assert!(args.contains(&format!("file={}", qemu_opt_path(&odd.join("OVMF_CODE_4M.fd")))), "{args}");
    }

    #[test]
    fn missing_qemu_and_ovmf_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), PathBuf::from("/nonexistent/qemu-system-x86_64"));
        let err = Vm::start(s).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/qemu-system-x86_64"), "{err}");
        let mut s = spec(dir.path(), PathBuf::from("true")).firmware(Firmware::Uefi);
        s.ovmf_dir = dir.path().to_path_buf();
        assert!(Vm::start(s).unwrap_err().to_string().contains("OVMF"));
    }
}
