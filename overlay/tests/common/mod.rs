//! Shared fixtures for the ISO tests: cached base ISOs, overlay trees, boots.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use edgeiso_overlay::initramfs::{Compression, InitramfsBuilder};
use edgeiso_overlay::qemu::{boot_until, BootOutcome, BootSpec, Firmware, Media};
use sha2::{Digest, Sha256};

pub const LAYOUTS: [&str; 3] = ["grub-mkrescue", "auroraboot", "isolinux"];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `$EDGEISO_TEST_CACHE`, else /var/cache/edgeiso-test, else a temp dir.
pub fn cache_dir() -> PathBuf {
    let preferred = std::env::var_os("EDGEISO_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/edgeiso-test"));
    if std::fs::create_dir_all(&preferred).is_ok() && tempfile::tempfile_in(&preferred).is_ok() {
        return preferred;
    }
    let fallback = std::env::temp_dir().join("edgeiso-test-cache");
    std::fs::create_dir_all(&fallback).unwrap();
    fallback
}

fn run_script(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .env("EDGEISO_TEST_CACHE", cache_dir())
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed (run scripts/install-test-deps.sh first?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The unpacked Debian kernel (fetched once, then cached).
pub fn kernel_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| PathBuf::from(run_script("fetch-test-kernel.sh", &[cache_dir().as_os_str()]))).clone()
}

/// A base ISO of `layout`, built by scripts/make-test-base-iso.sh and cached
/// under a name keyed by the script's content and the kernel version, so an
/// edited script or a new kernel rebuilds it.
pub fn base_iso(layout: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = kernel_dir();
    let script = std::fs::read(repo_root().join("scripts/make-test-base-iso.sh")).unwrap();
    let mut h = Sha256::new();
    h.update(&script);
    h.update(kernel.file_name().unwrap().as_encoded_bytes());
    let key = &hex::encode(h.finalize())[..12];
    let dir = cache_dir().join("base-isos");
    std::fs::create_dir_all(&dir).unwrap();
    let iso = dir.join(format!("{layout}-{key}.iso"));
    if !iso.is_file() {
        // Build under a temp name and rename, so concurrent test binaries
        // never see a half-written ISO.
        let tmp = dir.join(format!(".{layout}-{key}.{}.iso", std::process::id()));
        run_script(
            "make-test-base-iso.sh",
            &[tmp.as_os_str(), "--layout".as_ref(), layout.as_ref(), "--kernel-dir".as_ref(), kernel.as_os_str()],
        );
        std::fs::rename(&tmp, &iso).unwrap();
    }
    iso
}

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
