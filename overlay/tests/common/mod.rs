//! Shared fixtures for the ISO tests: cached base ISOs, overlay trees, boots.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use edgeiso_overlay::initramfs::{Compression, InitramfsBuilder};
use edgeiso_overlay::qemu::{boot_until, BootOutcome, BootSpec, Firmware, Media};
use sha2::{Digest, Sha256};

pub const LAYOUTS: [&str; 3] = ["grub-mkrescue", "auroraboot", "isolinux"];

pub use edgeiso_testkit::iso::{base_iso, cache_dir};

pub const HOOK_MARKER: &str = "EDGEISO-HOOK-RAN";

/// The dracut hook the initramfs overlay carries: proves the overlay was
/// unpacked (the file exists), the hook ran, and the live medium is mounted.
pub fn hook_script() -> String {
    [
        "# edgeiso test hook: sourced by dracut (or the test base's /init) at pre-pivot",
        "echo \"EDGEISO-HOOK-RAN\" >/dev/console",
        "echo \"EDGEISO-HOOK-CONFIG: $(head -n 1 /run/initramfs/live/config.yaml)\" >/dev/console",
        "if [ -x /edgeiso/bin/edgeiso-agent ]; then echo \"EDGEISO-HOOK-AGENT: $(cat /edgeiso/bin/edgeiso-agent | head -n 1)\" >/dev/console; fi",
        "",
    ]
    .join("\n")
}

/// An overlay tree like the product's: config.yaml at the root, a content
/// bundle part, /edgeiso/ files and /boot/edgeiso.img with the hook.
pub fn make_overlay(dir: &Path, label: &str) {
    std::fs::create_dir_all(dir.join("opt/spectrocloud/content")).unwrap();
    std::fs::create_dir_all(dir.join("edgeiso")).unwrap();
    std::fs::create_dir_all(dir.join("boot")).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("#cloud-config\n# edgeiso test overlay {label}\nstylus:\n  site:\n    name: test\n"),
    )
    .unwrap();
    let part: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("opt/spectrocloud/content/content-test.tar.part001"), part).unwrap();
    std::fs::write(dir.join("edgeiso/edgeiso-agent.service"), "[Unit]\nDescription=edgeiso agent (test)\n").unwrap();
    std::fs::write(dir.join("edgeiso/agent.yaml"), "registry: https://10.0.2.2:30003\n").unwrap();

    let mut img = InitramfsBuilder::new(0);
    img.add_file(edgeiso_overlay::EDGEISO_DRACUT_HOOK_PATH, hook_script().into_bytes(), 0o755).unwrap();
    img.add_file("edgeiso/bin/edgeiso-agent", format!("#!/bin/sh\n# fake agent {label}\n").into_bytes(), 0o755)
        .unwrap();
    img.write_to_path(&dir.join("boot/edgeiso.img"), Compression::Zstd).unwrap();
}

/// Boots run one at a time: two TCG guests on two cores would slow each other
/// down and make the measured times meaningless.
static BOOT_LOCK: Mutex<()> = Mutex::new(());

pub fn boot_lock() -> std::sync::MutexGuard<'static, ()> {
    BOOT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Boot `iso`, wait for the base's end marker, and check the hook's lines.
pub fn boot_and_check(iso: &Path, firmware: Firmware, media: Media, label: &str) -> BootOutcome {
    let _guard = boot_lock();
    let logs = cache_dir().join("boot-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join(format!("{label}-{firmware:?}-{media:?}.log").to_lowercase());
    let spec = BootSpec::new(iso).firmware(firmware).media(media).timeout(Duration::from_secs(120)).serial_log(&log);
    let marker = regex::Regex::new("EDGEISO-BASE: hooks done").unwrap();
    let outcome = boot_until(spec, &marker).unwrap_or_else(|e| panic!("{e}"));
    let line = format!("boot {label} {firmware:?} {media:?}: {:.1}s", outcome.elapsed.as_secs_f64());
    eprintln!("{line}");
    record_time(&line);
    assert!(outcome.log.contains(HOOK_MARKER), "{label}: hook did not run; log {}", log.display());
    // The overlay must add to the base's hook folders, never replace them
    // (or the symlinks on their path: lib -> usr/lib, dracut-ng's hooks).
    assert!(
        outcome.log.contains("EDGEISO-BASE: own pre-pivot hook ran"),
        "{label}: the base initrd's own hook is gone; log {}",
        log.display()
    );
    assert!(
        outcome.log.contains("EDGEISO-HOOK-CONFIG: #cloud-config"),
        "{label}: config.yaml not read from the live medium; log {}",
        log.display()
    );
    assert!(
        outcome.log.contains("EDGEISO-HOOK-AGENT: #!/bin/sh"),
        "{label}: agent from the initramfs overlay missing; log {}",
        log.display()
    );
    assert!(outcome.elapsed < Duration::from_secs(120));
    outcome
}

fn record_time(line: &str) {
    use std::io::Write;
    if let Ok(mut f) =
        std::fs::OpenOptions::new().create(true).append(true).open(cache_dir().join("boot-logs/times.txt"))
    {
        let _ = writeln!(f, "{line}");
    }
}

pub fn sha256_file(path: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    hex::encode(h.finalize())
}
