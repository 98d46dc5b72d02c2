//! Temp files that say whether their writer is alive.
//!
//! Every temp file edgeiso writes (a download into the cache, a bundle part,
//! the `.zst` copy) is created exclusively under a unique name and held under
//! an exclusive `flock` for as long as its writer runs. A later run sweeps a
//! temp file only if it can take that lock, i.e. its writer is gone (killed,
//! powered off). Unlike a pid check this holds across PID namespaces: two CI
//! containers sharing a cache volume never delete or truncate each other's
//! work.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Create `dir/<stem>.<unique>.<suffix>` exclusively and lock it.
pub fn create_locked(dir: &Path, stem: &str, suffix: &str) -> io::Result<(PathBuf, File)> {
    loop {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let unique = format!("{}-{:x}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(format!("{stem}.{unique}.{suffix}"));
        match OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
            Ok(f) => {
                f.try_lock().map_err(|e| io::Error::other(format!("{}: cannot lock: {e}", path.display())))?;
                return Ok((path, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Remove files in `dir` that `is_temp` accepts and whose writer is gone.
pub fn sweep_orphans(dir: &Path, is_temp: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_temp(&name) {
            continue;
        }
        let Ok(f) = OpenOptions::new().read(true).open(e.path()) else { continue };
        if f.try_lock().is_ok() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_temp_survives_the_sweep_and_an_orphan_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (held, _file) = create_locked(dir.path(), "a", "partial").unwrap();
        let (orphan, file) = create_locked(dir.path(), "b", "partial").unwrap();
        drop(file);
        sweep_orphans(dir.path(), |n| n.ends_with(".partial"));
        assert!(held.exists(), "a live writer's file was swept");
        assert!(!orphan.exists(), "an orphan was kept");
    }
}
