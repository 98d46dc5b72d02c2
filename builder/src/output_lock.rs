//! One run at a time writes a given bundle into a given output folder.
//!
//! A bundle is written under temp names and renamed into place whole, so
//! two `bundle create` (or `import`, `build`) runs writing `content-NAME.tar`
//! into the same folder never mix their bytes - but the one that finishes
//! last silently replaces the other's bundle, and the first run reports a
//! bundle that is no longer there. So every run holds an exclusive `flock`
//! on `<output>/.content-NAME.tar.lock` from its start to its end, and a
//! second run **fails at once**, naming the folder and the run that holds
//! it, instead of waiting: waiting would only let it replace the first
//! run's bundle later (the silent replacement this prevents), and a create
//! can run for hours. Another bundle name in the same folder is not held
//! up. The lock is on the open file, so it ends with the run however the
//! run ends (killed, power cut). A run that ends normally removes the file
//! while it still holds the lock; a run that took the lock checks that the
//! path still names the file it locked, and starts over if not, so a run
//! that opened the file just before it was removed cannot hold a lock on a
//! file nobody else can see.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use edgeiso_bundle::writer::bundle_file_name;

use crate::exit::{self, with_code};

/// Held for as long as the run writes the bundle; dropped, it removes the
/// lock file and releases the lock.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    pub path: PathBuf,
    locked: bool,
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        if self.locked {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` still names the file `file` has open.
fn still_named(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The lock file of bundle `name` in `dir`.
pub fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{}.lock", bundle_file_name(name)))
}

/// Take the lock of bundle `name` in `dir` (which exists), or fail naming
/// the run that holds it. Where the file system cannot lock (some NFS
/// mounts) the run goes on unlocked, as the temp files do.
pub fn lock_output(dir: &Path, name: &str) -> anyhow::Result<OutputLock> {
    let path = lock_path(dir, name);
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) if !still_named(&file, &path) => continue,
            Ok(()) => {
                // Who holds it, for the message of a run that finds it held.
                let me = format!(
                    "edgeiso pid {} since {}\n",
                    std::process::id(),
                    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                );
                let _ = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| file.write_all(me.as_bytes()));
                return Ok(OutputLock { _file: file, path, locked: true });
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = Read::by_ref(&mut file).take(256).read_to_string(&mut holder);
                let holder = edgeiso_contract::printable::escape(holder.trim()).into_owned();
                let holder = if holder.is_empty() { "another edgeiso run".to_owned() } else { holder };
                return Err(with_code(
                    exit::FAILURE,
                    anyhow!(
                        "{}: another run is writing bundle {} into this folder ({holder}, holding {}); \
                         wait for it to finish or use another --output",
                        dir.display(),
                        bundle_file_name(name),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot lock the output; going on unlocked");
                return Ok(OutputLock { _file: file, path, locked: false });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_of_the_same_bundle_fails_naming_the_first_another_bundle_does_not() {
        let d = tempfile::tempdir().unwrap();
        let first = lock_output(d.path(), "site").unwrap();
        let e = format!("{:#}", lock_output(d.path(), "site").unwrap_err());
        assert!(e.contains(&d.path().display().to_string()) && e.contains("content-site.tar"), "{e}");
        assert!(e.contains(&format!("edgeiso pid {}", std::process::id())), "names the holder: {e}");
        let other = lock_output(d.path(), "other-site");
        assert!(other.is_ok(), "another bundle name is not held up");
        drop(first);
        assert!(!lock_path(d.path(), "site").exists(), "removed by its holder");
        assert!(lock_output(d.path(), "site").is_ok(), "released with its holder");
    }
}
