//! Boot an ISO in QEMU (TCG) and watch its serial console.
//!
//! The VM gets the ISO as a CD-ROM (IDE on the default i440fx machine) or as
//! a USB stick (`usb-storage` on a `qemu-xhci` controller: SeaBIOS and OVMF
//! both boot from it), an empty virtio disk to install onto, user-mode
//! networking (the host's loopback is `10.0.2.2` in the guest) and its serial
//! console in a log file. KVM does not work on the project's machines, so the
//! accelerator is always TCG.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
        "{iso} ({firmware:?}, {media:?}): no line matching {marker:?} within {timeout:?}; serial log tail:\n{log_tail}"
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
    /// QEMU's `-accel` value: `tcg` unless `$EDGEISO_QEMU_ACCEL` says
    /// otherwise (KVM hangs on the project's machines).
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
            accel: std::env::var("EDGEISO_QEMU_ACCEL").ok().filter(|a| !a.is_empty()).unwrap_or_else(|| "tcg".into()),
        }
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

/// A running VM; killed when dropped.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    spec: BootSpec,
    log: PathBuf,
    started: Instant,
    // Holds the disk, the OVMF variables and (by default) the log.
    _dir: tempfile::TempDir,
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
        let dir = tempfile::Builder::new().prefix("edgeiso-vm.").tempdir().map_err(io_err(Path::new("/tmp")))?;
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
        cmd.args(["-accel", &spec.accel, "-machine", "pc", "-nodefaults", "-no-user-config"])
            .args(["-m", &spec.memory_mib.to_string(), "-smp", &spec.cpus.to_string()])
            .args(["-display", "none", "-vga", "std"])
            .args(if spec.allow_reboot { &[][..] } else { &["-no-reboot"][..] })
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .args(["-netdev", &netdev, "-device", "virtio-net-pci,netdev=net0,romfile="]);
        if spec.firmware == Firmware::Uefi {
            let (code, vars_template) = find_ovmf(&spec.ovmf_dir)?;
            // OVMF writes its variable store: each VM gets its own copy.
            let vars = dir.path().join("OVMF_VARS.fd");
            std::fs::copy(&vars_template, &vars).map_err(io_err(&vars))?;
            cmd.arg("-drive")
                .arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", code.display()))
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
        }
        let iso = spec.iso.display().to_string().replace(',', ",,");
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
            cmd.arg("-drive").arg(format!("if=none,id=disk0,format=raw,file={}", disk.display()));
            cmd.args(["-device", "virtio-blk-pci,drive=disk0,bootindex=9"]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        tracing::debug!(?cmd, "starting QEMU");
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                QemuError::Missing { what: spec.qemu.display().to_string(), hint: "Debian package qemu-system-x86" }
            } else {
                QemuError::Io { path: spec.qemu.clone(), source: e }
            }
        })?;
        Ok(Vm { child, spec, log, started: Instant::now(), _dir: dir })
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
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                return Err(QemuError::ExitedEarly {
                    iso: self.spec.iso.clone(),
                    firmware: self.spec.firmware,
                    media: self.spec.media,
                    marker: marker.to_string(),
                    status: status.to_string(),
                    log_tail: log_tail(&text, 30),
                    stderr: stderr.trim().to_string(),
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
