//! `edgeiso boot-test`: boot an ISO in QEMU and check that the bundle's
//! images arrive in the registry.
//!
//! The VM (`edgeiso_overlay::qemu`) gets TCG (or `$EDGEISO_QEMU_ACCEL`), its
//! serial console in a log file, user networking (the host's loopback is
//! 10.0.2.2 in the guest, `--forward` adds host->guest ports) and an empty
//! virtual disk. While it runs, the registry is polled: the test passes as
//! soon as every workload image of `--expect-bundle` is there under its
//! Harbor target with the bundle's digest (every child manifest of an index
//! too) and the `--marker` line, if any, appeared. A console marker
//! `EDGEISO-AGENT: failed: ...` (`edgeiso_contract::console::Marker`) ends
//! the test early.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgeiso_bundle::Bundle;
use edgeiso_contract::console::Marker;
use edgeiso_contract::RegistryUrl;
use edgeiso_overlay::qemu::{BootSpec, Firmware, Media, QemuError, Vm};
use regex::Regex;

use crate::exit::{self, with_code};
use crate::registry_check::{expectations, Checker, Expected, Finding};
use crate::ui::events::Missing;
use crate::ui::{Event, Ui};

/// `edgeiso boot-test`.
#[derive(Debug)]
pub struct BootTestOptions {
    pub iso: PathBuf,
    pub firmware: Firmware,
    pub media: Media,
    pub timeout: Duration,
    /// The registry the images must arrive in, as seen from this host.
    pub registry: Option<RegistryUrl>,
    /// The bundle whose workload images must arrive.
    pub expect_bundle: Option<PathBuf>,
    pub project: String,
    /// A console line that must appear.
    pub marker: Option<Regex>,
    pub ca: Option<PathBuf>,
    pub insecure: bool,
    /// Host port -> guest port.
    pub forwards: Vec<(u16, u16)>,
    pub allow_reboot: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Where the serial console goes [default: beside the ISO].
    pub serial_log: Option<PathBuf>,
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `30003` or `HOSTPORT:GUESTPORT`.
pub fn parse_forward(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("--forward {s}: expected PORT or HOSTPORT:GUESTPORT");
    match s.split_once(':') {
        Some((h, g)) => Ok((h.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?)),
        None => {
            let p = s.parse().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

/// Boot the ISO and watch the console and the registry.
pub fn boot_test(ui: &Ui, args: &BootTestOptions) -> anyhow::Result<()> {
    if !args.iso.is_file() {
        return Err(with_code(exit::INVALID_INPUT, anyhow::anyhow!("{}: no such ISO", args.iso.display())));
    }
    let want = match &args.expect_bundle {
        Some(p) => {
            let b = Bundle::open(p).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
            expectations(&b, &args.project).map_err(|e| with_code(exit::INVALID_INPUT, e))?
        }
        None => Vec::new(),
    };
    // Without a registry to check, the hook's own outcome line is the verdict.
    let outcome_is_verdict = args.marker.is_none() && args.registry.is_none();
    let needs_marker = args.marker.is_some() || outcome_is_verdict;
    let marker = args.marker.clone();
    let checker = match &args.registry {
        Some(url) => Some(Checker::new(url, args.ca.as_deref(), args.insecure, None)?),
        None => None,
    };
    let (firmware, media) = (args.firmware.name(), args.media.name());
    let log_path = args.serial_log.clone().unwrap_or_else(|| {
        let mut p = args.iso.as_os_str().to_owned();
        p.push(format!(".boot-test-{firmware}-{media}.log"));
        PathBuf::from(p)
    });
    let mut spec =
        BootSpec::new(&args.iso).firmware(args.firmware).media(args.media).timeout(args.timeout).serial_log(&log_path);
    spec.memory_mib = args.memory_mib;
    spec.cpus = args.cpus;
    spec.allow_reboot = args.allow_reboot;
    spec.forwards.extend(args.forwards.iter().copied());
    let what = format!(
        "{} ({} from {}, {}, timeout {})",
        args.iso.display(),
        firmware.to_uppercase(),
        media.to_uppercase(),
        spec.accel,
        humantime::format_duration(args.timeout)
    );
    ui.line(format!("boot-test: booting {what}; serial console in {}", log_path.display()));
    if let Some(url) = &args.registry {
        let images: std::collections::BTreeSet<&str> = want.iter().map(|e| e.image.as_str()).collect();
        ui.line(format!("boot-test: waiting for {} images ({} manifests) in {url}", images.len(), want.len()));
    }
    ui.event(&Event::BootStarted {
        iso: args.iso.clone(),
        firmware: firmware.into(),
        media: media.into(),
        log: log_path.clone(),
    });

    let started = Instant::now();
    let mut vm = Vm::start(spec).map_err(|e| match e {
        QemuError::Missing { .. } => anyhow::Error::new(e),
        other => with_code(exit::INVALID_INPUT, other),
    })?;
    let mut shown_lines = 0usize;
    let mut last_missing: Vec<(Expected, Finding)> = Vec::new();
    let mut marker_line: Option<String> = None;
    let mut failure: Option<String> = None;
    let mut exited = false;
    let mut last_arrived = usize::MAX;
    loop {
        let log = vm.log().unwrap_or_default();
        let markers: Vec<(&str, Marker)> =
            log.lines().filter_map(|l| Marker::parse(l).map(|m| (l.trim_end_matches('\r'), m))).collect();
        // Show the agent's lines as they come.
        for (l, _) in markers.iter().skip(shown_lines) {
            ui.line(format!("  console: {l}"));
        }
        shown_lines = markers.len();
        if marker_line.is_none() {
            marker_line = match &marker {
                Some(m) => log.lines().find(|l| m.is_match(l)).map(|l| l.trim_end_matches('\r').to_string()),
                None if outcome_is_verdict => markers
                    .iter()
                    .find(|(_, m)| matches!(m, Marker::Loaded { .. } | Marker::Staged { .. }))
                    .map(|(l, _)| l.to_string()),
                None => None,
            };
        }
        if let Some((l, _)) = markers.iter().find(|(_, m)| matches!(m, Marker::Failed { .. })) {
            failure = Some(format!("the agent reported a failure: {l}"));
        }
        let marker_ok = !needs_marker || marker_line.is_some();
        let registry_ok = match &checker {
            Some(c) => {
                last_missing = c.problems(&want);
                let arrived = want.len() - last_missing.len();
                if arrived != last_arrived && arrived > 0 {
                    ui.line(format!(
                        "  registry: {arrived}/{} manifests present ({:.1}s)",
                        want.len(),
                        started.elapsed().as_secs_f64()
                    ));
                    ui.event(&Event::Arrived { present: arrived, of: want.len() });
                }
                last_arrived = arrived;
                last_missing.is_empty()
            }
            None => true,
        };
        if marker_ok && registry_ok {
            break;
        }
        if failure.is_some() || exited {
            break;
        }
        if started.elapsed() >= args.timeout {
            failure = Some(format!("timed out after {}", humantime::format_duration(args.timeout)));
            break;
        }
        if vm.wait_exit(Duration::from_secs(2)) {
            // One more round: the guest may have finished just before powering off.
            exited = true;
        }
    }
    let elapsed = started.elapsed();
    let log = vm.log().unwrap_or_default();
    drop(vm);
    let marker_ok = !needs_marker || marker_line.is_some();
    if failure.is_none() && marker_ok && last_missing.is_empty() {
        let mut images: Vec<&str> = want.iter().map(|e| e.image.as_str()).collect();
        images.dedup();
        for i in &images {
            ui.line(format!("  arrived: {i}"));
        }
        ui.line(format!(
            "boot-test: PASS in {:.1}s: {} images ({} manifests) in {} with the bundle's digests{}",
            elapsed.as_secs_f64(),
            images.len(),
            want.len(),
            args.registry.as_ref().map_or("(no registry checked)".to_string(), |r| r.to_string()),
            marker_line.as_deref().map(|l| format!("; console: {l}")).unwrap_or_default()
        ));
        ui.event(&Event::BootPassed {
            pass: true,
            seconds: elapsed.as_secs_f64(),
            images: images.iter().map(|i| i.to_string()).collect(),
            manifests: want.len(),
            marker: marker_line,
            log: log_path,
        });
        return Ok(());
    }
    let mut why = Vec::new();
    if let Some(f) = &failure {
        why.push(f.clone());
    } else if exited {
        why.push("the VM powered off".into());
    }
    if !marker_ok {
        let wanted = match &marker {
            Some(m) => format!("{:?}", m.as_str()),
            None => "an outcome marker (loaded or staged)".into(),
        };
        why.push(format!("no console line matching {wanted}"));
    }
    if !last_missing.is_empty() {
        let list: Vec<String> = last_missing
            .iter()
            .map(|(e, r)| format!("  {} ({}:{}): {r}", e.image, e.repository, e.reference))
            .collect();
        why.push(format!(
            "{} of {} manifests missing from the registry:\n{}",
            last_missing.len(),
            want.len(),
            list.join("\n")
        ));
    }
    ui.event(&Event::BootFailed {
        pass: false,
        seconds: elapsed.as_secs_f64(),
        reasons: why.clone(),
        missing: last_missing
            .iter()
            .map(|(e, r)| Missing {
                image: e.image.clone(),
                repository: e.repository.clone(),
                reference: e.reference.clone(),
                error: r.to_string(),
            })
            .collect(),
        log: log_path.clone(),
    });
    Err(with_code(
        exit::VERIFY_FAILED,
        anyhow::anyhow!(
            "boot-test of {what} failed after {:.1}s: {}\n--- serial console tail ({}) ---\n{}",
            elapsed.as_secs_f64(),
            why.join("; "),
            log_path.display(),
            tail(&log, 40)
        ),
    ))
}
