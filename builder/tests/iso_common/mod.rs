//! ISO test fixtures: the static agent, cached base ISOs (the same cache and
//! keys as overlay/tests, so the suite builds each base once), boot lock.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// SOURCE_DATE_EPOCH of the ISO tests.
pub const E2E_EPOCH: u64 = 1_700_000_000;

#[allow(unused_imports)] // each test binary uses a different subset
pub use edgeiso_testkit::iso::{base_iso, cache_dir, static_agent};

/// Boots run one at a time: two TCG guests on two cores slow each other down.
static BOOT_LOCK: Mutex<()> = Mutex::new(());

pub fn boot_lock() -> std::sync::MutexGuard<'static, ()> {
    BOOT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn record_time(line: &str) {
    use std::io::Write;
    let dir = cache_dir().join("boot-logs");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("times.txt")) {
        let _ = writeln!(f, "{line}");
    }
}

pub fn sha256_file(path: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    hex::encode(h.finalize())
}
