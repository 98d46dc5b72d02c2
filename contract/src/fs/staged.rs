//! A folder built beside its destination under a temp name, then swapped in
//! whole: readers see the old folder or the new one, never a mix, and a run
//! that dies leaves only a temp folder that the next run sweeps.

use std::io;
use std::path::{Path, PathBuf};

use super::temp::{self, LockedDir};

/// A folder being built for `dest`.
#[derive(Debug)]
pub struct StagedDir {
    dir: LockedDir,
    dest: PathBuf,
}

impl StagedDir {
    /// A new, empty, locked folder `.NAME.staging.<unique>` beside `dest`;
    /// the staging and old folders of dead runs for the same `dest` are
    /// removed first.
    pub fn new(dest: &Path) -> io::Result<StagedDir> {
        let parent = parent_of(dest);
        std::fs::create_dir_all(&parent)?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        temp::sweep_orphan_dirs(&parent, &format!(".{name}.staging."));
        temp::sweep_orphan_dirs(&parent, &format!(".{name}.old."));
        let dir = temp::create_locked_dir(&parent, &format!(".{name}.staging."))?;
        Ok(StagedDir { dir, dest: dest.to_owned() })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replace the destination with the staged folder: the old one is
    /// renamed aside, the new one in, then the old one deleted. Once the new
    /// folder is in place, failing to delete the old one is not a failure:
    /// it comes back as a warning naming the folder left behind.
    pub fn commit(self) -> io::Result<Option<String>> {
        self.commit_with(|p| std::fs::remove_dir_all(p))
    }

    fn commit_with(self, remove: impl Fn(&Path) -> io::Result<()>) -> io::Result<Option<String>> {
        let parent = parent_of(&self.dest);
        let name = self.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let old = if self.dest.symlink_metadata().is_ok() {
            // A locked name like any temp folder: a sweep removes it only
            // once this run is gone.
            let aside = temp::create_locked_dir(&parent, &format!(".{name}.old."))?;
            let inner = aside.path().join("previous");
            std::fs::rename(&self.dest, &inner)?;
            Some((aside, inner))
        } else {
            None
        };
        let (staged, lock) = self.dir.into_parts();
        if let Err(e) = std::fs::rename(&staged, &self.dest) {
            // Put the old one back; the staged folder goes with its lock.
            if let Some((_, inner)) = &old {
                let _ = std::fs::rename(inner, &self.dest);
            }
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e);
        }
        // Its name no longer matches a sweep: the lock file can go.
        let _ = std::fs::remove_file(self.dest.join(temp::DIR_LOCK));
        drop(lock);
        if let Some((aside, inner)) = old {
            if let Err(e) = remove(&inner) {
                let kept = aside.path().to_path_buf();
                // Keep it for the user to see; the warning says where.
                let (_, lock) = aside.into_parts();
                drop(lock);
                return Ok(Some(format!(
                    "{} is in place, but the previous one moved aside to {} could not be deleted ({e}): delete it by hand",
                    self.dest.display(),
                    kept.display()
                )));
            }
        }
        Ok(None)
    }
}

/// Whether `dest` may be replaced by a folder of its owner's: it does not
/// exist, is an empty folder, or holds `marker` (a file its owner writes
/// into every folder it makes). Anything else is somebody else's.
pub fn may_replace(dest: &Path, marker: &str) -> io::Result<bool> {
    match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
        Ok(m) if !m.is_dir() => Ok(false),
        Ok(_) => Ok(dest.join(marker).is_file() || std::fs::read_dir(dest)?.next().is_none()),
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::test_names as names;

    #[test]
    fn a_staged_folder_replaces_the_old_one_whole() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        for text in ["first", "second"] {
            let s = StagedDir::new(&out).unwrap();
            std::fs::write(s.path().join("f"), text).unwrap();
            assert_eq!(s.commit().unwrap(), None);
            assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), text);
            assert_eq!(names(&out), ["f"], "no lock file left in the output");
        }
        assert_eq!(names(d.path()), ["out"], "nothing left beside it");
    }

    #[test]
    fn a_leftover_old_folder_is_a_warning_not_a_failure() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("f"), "old").unwrap();
        let s = StagedDir::new(&out).unwrap();
        std::fs::write(s.path().join("f"), "new").unwrap();
        let w = s.commit_with(|_| Err(io::Error::new(io::ErrorKind::PermissionDenied, "busy"))).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "new");
        assert!(w.contains("could not be deleted") && w.contains(".out.old."), "{w}");
        // The next run sweeps it (its run is gone).
        let s = StagedDir::new(&out).unwrap();
        assert_eq!(names(d.path()).len(), 2, "{:?}", names(d.path()));
        drop(s);
        assert_eq!(names(d.path()), ["out"]);
    }

    #[test]
    fn only_an_empty_or_marked_folder_may_be_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        assert!(may_replace(&p, "m").unwrap(), "absent");
        std::fs::create_dir(&p).unwrap();
        assert!(may_replace(&p, "m").unwrap(), "empty");
        std::fs::write(p.join("data"), "").unwrap();
        assert!(!may_replace(&p, "m").unwrap(), "somebody else's");
        std::fs::create_dir_all(p.join("a")).unwrap();
        std::fs::write(p.join("a/m"), "").unwrap();
        assert!(may_replace(&p, "a/m").unwrap(), "marked");
        let f = d.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert!(!may_replace(&f, "m").unwrap(), "a file");
    }

    #[test]
    fn a_dropped_stage_leaves_the_destination_alone() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("f"), "old").unwrap();
        let s = StagedDir::new(&out).unwrap();
        std::fs::write(s.path().join("f"), "half").unwrap();
        drop(s);
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "old");
        assert_eq!(names(d.path()), ["out"]);
    }
}
