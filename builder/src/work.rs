//! The work folder of `overlay`, `iso` and `build` (a bundle built on the
//! way, the overlay tree), beside the output. Every run makes it the one way
//! (`edgeiso_contract::fs::create_locked_dir`): locked while the run lives,
//! so the sweep that removes the folders of dead runs never takes a live one.

use std::path::Path;

use anyhow::Context;
use edgeiso_contract::fs::{create_locked_dir, sweep_orphan_dirs, LockedDir};

/// Work folders are `.edgeiso-work.<unique>`.
pub const WORK_PREFIX: &str = ".edgeiso-work.";

/// A new work folder in `parent`; the work folders of runs that died
/// (killed, power cut) are removed first, a live run's stay. Where the file
/// system cannot lock (some NFS mounts), the folder is used unlocked and
/// nothing is swept.
pub fn work_dir(parent: &Path) -> anyhow::Result<LockedDir> {
    temp_dir(parent, WORK_PREFIX)
}

/// The same for any prefix (`site-iso`'s staging folder).
pub fn temp_dir(parent: &Path, prefix: &str) -> anyhow::Result<LockedDir> {
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    sweep_orphan_dirs(parent, prefix);
    create_locked_dir(parent, prefix).with_context(|| format!("creating a temporary folder in {}", parent.display()))
}

/// The folder a path's file goes in (`.` for a bare name).
pub fn parent_of(p: &Path) -> &Path {
    p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `overlay` once made its work folder with plain `tempfile` under the
    /// prefix `iso` sweeps, so a concurrent `iso` deleted it mid-run. Every
    /// step now makes it here, and another run's sweep leaves a live one
    /// alone while removing a dead run's.
    #[test]
    fn a_live_work_folder_survives_another_runs_sweep() {
        let d = tempfile::tempdir().unwrap();
        let live = work_dir(d.path()).unwrap();
        std::fs::write(live.path().join("bundle"), "in progress").unwrap();
        // What a run killed mid-way leaves: the folder without a held lock.
        let dead = d.path().join(format!("{WORK_PREFIX}dead"));
        std::fs::create_dir_all(dead.join("overlay")).unwrap();
        std::fs::write(dead.join(edgeiso_contract::fs::temp::DIR_LOCK), "").unwrap();
        // A second run starting beside them sweeps first.
        let other = work_dir(d.path()).unwrap();
        assert!(live.path().join("bundle").exists(), "a live run's work folder was swept");
        assert!(!dead.exists(), "a dead run's work folder was kept");
        drop(other);
        let kept = live.path().to_path_buf();
        drop(live);
        assert!(!kept.exists(), "a work folder outlived its run");
    }
}
