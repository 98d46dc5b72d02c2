//! Fixtures for the ISO tests of every crate: the Debian test kernel, base
//! ISOs built by `scripts/make-test-base-iso.sh` (cached under a key of the
//! script's content and the kernel version, so an edited script or a new
//! kernel rebuilds them and every test binary shares one build), and the
//! static agent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// The workspace root (testkit lives one level below it).
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

/// Run `scripts/<script>` and return the last line it printed (the scripts
/// print the path they made there).
pub fn run_script(script: &str, args: &[&std::ffi::OsStr]) -> String {
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
    String::from_utf8(out.stdout).unwrap().trim().lines().last().unwrap_or("").to_string()
}

/// The unpacked Debian kernel (fetched once, then cached).
pub fn kernel_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| PathBuf::from(run_script("fetch-test-kernel.sh", &[cache_dir().as_os_str()]))).clone()
}

/// A base ISO of `layout` (`grub-mkrescue`, `auroraboot`, `isolinux`).
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

/// The static agent: `$EDGEISO_TEST_AGENT`, else built once by
/// scripts/build-agent-static.sh (a release build that reuses compiled deps).
pub fn static_agent() -> PathBuf {
    static AGENT: OnceLock<PathBuf> = OnceLock::new();
    AGENT
        .get_or_init(|| match std::env::var_os("EDGEISO_TEST_AGENT") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(run_script("build-agent-static.sh", &[])),
        })
        .clone()
}
