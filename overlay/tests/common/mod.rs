//! Shared fixtures for the ISO tests: cached base ISOs, overlay trees, boots.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use edgeiso_contract::console::Marker;
use edgeiso_contract::fs::{FileMode, FileSet};
use edgeiso_contract::AgentConfig;
use edgeiso_overlay::initramfs::Compression;
use edgeiso_overlay::qemu::{boot_until, BootOutcome, BootSpec, Firmware, Media};
use edgeiso_overlay::tree::{write_tree, TreeInputs};
use edgeiso_testkit::bundles::{write_bundle, Entry};
use sha2::{Digest, Sha256};

pub const LAYOUTS: [&str; 3] = ["grub-mkrescue", "auroraboot", "isolinux"];

pub use edgeiso_testkit::iso::{base_iso, cache_dir};

/// Every line the product's dracut hook prints starts with this.
pub const HOOK_MARKER: &str = edgeiso_contract::console::PREFIX;
/// Where the live load of the test trees goes (nobody answers there).
pub const REGISTRY: &str = "https://10.0.2.2:30003";
/// Bundle parts of the test trees: a 400 KB layer makes two.
pub const PART_SIZE: u64 = 300_000;

/// An overlay tree written by the product's own writer
/// (`edgeiso_overlay::tree`): config.yaml at the root, the rest of a small
/// render output under /edgeiso/site, a real bundle in two parts, a stand-in
/// static agent, and /boot/edgeiso.img with the real dracut hook, set for a
/// live load (so a boot shows the hook ran, with the medium mounted).
pub fn make_overlay(dir: &Path, label: &str) {
    let inputs = dir.with_file_name(format!(
        "{}.inputs",
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    std::fs::create_dir_all(&inputs).unwrap();
    let image = edgeiso_testkit::image_with_layer("team/app", "1.0", 400_000, 7);
    let parts = write_bundle(&inputs, "test", &[Entry::workload(&image, "127.0.0.1:9/team/app:1.0")], Some(PART_SIZE));
    assert_eq!(parts.len(), 2, "two parts: {parts:?}");
    let agent = edgeiso_testkit::files::fake_static_agent(&inputs);
    let mut rendered = FileSet::new();
    let config = format!("#cloud-config\n# edgeiso test overlay {label}\nstylus:\n  site:\n    name: test\n");
    rendered.put("config.yaml", config, FileMode::Public).unwrap();
    rendered.put("agent.yaml", format!("registry: {REGISTRY}\n"), FileMode::Public).unwrap();
    rendered.put("systemd/edgeiso-agent.service", edgeiso_contract::unit::AGENT_UNIT, FileMode::Public).unwrap();
    let live_config = AgentConfig { registry: Some(REGISTRY.into()), ..Default::default() };
    let tree = TreeInputs {
        site: "test",
        registry: REGISTRY,
        rendered: &rendered,
        live_config: &live_config,
        live_load: true,
        parts: &parts,
        part_size: PART_SIZE,
        agent: &agent,
        compression: Compression::Zstd,
        site_area_bytes: edgeiso_contract::site_area::DEFAULT_BYTES,
        golden_inputs: b"",
    };
    write_tree(&tree, dir).unwrap();
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
    // The hook ran, found the agent and its config in the initramfs overlay
    // (it copies them first) and the bundle on the mounted live medium: only
    // then does it announce the load (which fails: the stand-in agent does
    // not run, and nobody answers at REGISTRY).
    let loading = Marker::Loading { registry: REGISTRY.into() };
    assert!(
        outcome.log.lines().any(|l| Marker::parse(l).as_ref() == Some(&loading)),
        "{label}: the hook did not start a live load; log {}",
        log.display()
    );
    // The overlay must add to the base's hook folders, never replace them
    // (or the symlinks on their path: lib -> usr/lib, dracut-ng's hooks).
    assert!(
        outcome.log.contains("EDGEISO-BASE: own pre-pivot hook ran"),
        "{label}: the base initrd's own hook is gone; log {}",
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
