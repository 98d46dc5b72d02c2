//! What the fuzz targets share: a scratch folder on tmpfs for the targets
//! whose parser reads files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A folder that lives as long as the fuzzing process (one per process:
/// libFuzzer runs one input at a time).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        // The pid in the name: `scripts/fuzz.sh` sweeps only the folders of
        // processes that are gone, so runs side by side keep theirs.
        let prefix = format!("edgeiso-fuzz-{}-", std::process::id());
        tempfile::Builder::new().prefix(&prefix).tempdir_in(base).expect("a scratch folder")
    })
    .path()
}

/// Write `data` to `name` in the scratch folder (replacing it), its path.
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("write to the scratch folder");
    path
}

/// Empty the scratch folder between inputs.
pub fn clear_scratch() {
    for entry in std::fs::read_dir(scratch()).expect("the scratch folder").flatten() {
        let p = entry.path();
        let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
    }
}
