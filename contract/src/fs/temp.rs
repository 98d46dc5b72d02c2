//! Temp files and folders that say whether their writer is alive.
//!
//! Every temp file edgeiso writes (a download into the cache, a bundle part,
//! the `.zst` copy, the remastered ISO, `site-iso`'s output) and every temp
//! folder (`edgeiso iso`'s work folder, `site-iso`'s staging folder) is held
//! under an exclusive `flock` for as long as its writer runs: on the file
//! itself, or on a `.lock` file inside the folder. A later run sweeps a temp
//! only if it can take that lock, i.e. its writer is gone (killed, powered
//! off). Unlike a pid check this holds across PID namespaces: two CI
//! containers sharing a cache volume never delete or truncate each other's
//! work.
//!
//! A temp gets the name the sweepers match only once it is locked: it is
//! created as `.edgeiso-creating.<unique>`, locked, then renamed. A sweep
//! that runs in between therefore cannot take the lock of a fresh temp and
//! delete it. A `.edgeiso-creating.*` entry is swept only when it is older
//! than [`CREATING_MAX_AGE`] and its lock can be taken (its run died inside
//! that window).
//!
//! Where the file system cannot lock at all (an error other than "held by
//! someone else", e.g. some NFS or FUSE mounts), the temp is used without a
//! lock, and sweeps leave alone whatever they cannot lock: nothing is swept
//! there, but nothing that lives is deleted either.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name prefix of a temp that is not yet locked; no sweep pattern matches it.
const CREATING: &str = ".edgeiso-creating.";
/// The lock file inside a temp folder.
pub const DIR_LOCK: &str = ".lock";
/// How old a `.edgeiso-creating.*` leftover must be before it is swept. A run
/// holds that name for microseconds (create, lock, rename).
pub const CREATING_MAX_AGE: Duration = Duration::from_secs(60);

fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{:x}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
thread_local! {
    /// Tests: make every lock attempt of this thread fail as on a file system
    /// without locks.
    static LOCKS_UNSUPPORTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn try_lock(f: &File) -> Result<(), TryLockError> {
    #[cfg(test)]
    if LOCKS_UNSUPPORTED.with(|c| c.get()) {
        return Err(TryLockError::Error(io::Error::from(io::ErrorKind::Unsupported)));
    }
    f.try_lock()
}

/// Lock a freshly created `f`: `Ok(true)` locked, `Ok(false)` the file
/// system cannot lock (carry on unlocked), `Err` someone else holds it.
fn lock_new(f: &File, path: &Path) -> io::Result<bool> {
    match try_lock(f) {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{}: cannot lock: held by another process", path.display()),
        )),
        Err(TryLockError::Error(e)) => {
            tracing::debug!(path = %path.display(), error = %e, "cannot lock; using the temp without a lock (it will not be swept)");
            Ok(false)
        }
    }
}

/// Rename `from` to a fresh `dir/<prefix><unique><suffix>`.
fn rename_to_unique(from: &Path, dir: &Path, prefix: &str, suffix: &str) -> io::Result<PathBuf> {
    loop {
        let to = dir.join(format!("{prefix}{}{suffix}", unique()));
        if to.symlink_metadata().is_ok() {
            continue;
        }
        std::fs::rename(from, &to)?;
        return Ok(to);
    }
}

/// Create `dir/<stem>.<unique>.<suffix>` exclusively and lock it (mode 0666
/// less the umask).
pub fn create_locked(dir: &Path, stem: &str, suffix: &str) -> io::Result<(PathBuf, File)> {
    create_locked_as(dir, &format!("{stem}."), &format!(".{suffix}"), None)
}

/// Create `dir/<prefix><unique><suffix>` and lock it, with `mode` exactly
/// (whatever the umask or a default ACL) or, if `None`, 0666 less the umask.
/// The file gets that name only once it is locked (see the module docs); if
/// the file system cannot lock, it is returned unlocked.
pub fn create_locked_as(dir: &Path, prefix: &str, suffix: &str, mode: Option<u32>) -> io::Result<(PathBuf, File)> {
    let (creating, f) = loop {
        let path = dir.join(format!("{CREATING}{}", unique()));
        match OpenOptions::new().read(true).write(true).create_new(true).mode(mode.unwrap_or(0o666)).open(&path) {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let done = (|| {
        if let Some(mode) = mode {
            // The umask cannot widen `mode`, but a default ACL could.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        lock_new(&f, &creating)?;
        rename_to_unique(&creating, dir, prefix, suffix)
    })();
    match done {
        Ok(path) => Ok((path, f)),
        Err(e) => {
            let _ = std::fs::remove_file(&creating);
            Err(e)
        }
    }
}

/// Whether `meta` was modified less than [`CREATING_MAX_AGE`] ago (or in the future).
fn young(meta: &std::fs::Metadata) -> bool {
    let Ok(modified) = meta.modified() else { return true };
    SystemTime::now().duration_since(modified).map_or(true, |age| age < CREATING_MAX_AGE)
}

/// Remove files in `dir` that `is_temp` accepts and whose writer is gone
/// (their lock can be taken), and `.edgeiso-creating.*` files of runs that
/// died while creating one.
pub fn sweep_orphans(dir: &Path, is_temp: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let creating = name.starts_with(CREATING);
        if !(creating || is_temp(&name)) || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        // Read-write: NFS emulates flock with POSIX locks, which need it.
        let Ok(f) = OpenOptions::new().read(true).write(true).open(e.path()) else { continue };
        if creating && f.metadata().map_or(true, |m| young(&m)) {
            continue;
        }
        if try_lock(&f).is_ok() {
            tracing::debug!(path = %e.path().display(), "removing the temp file of a run that is gone");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Removes a file when dropped (a temp that was not renamed into place).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A temp folder held under the lock of its `.lock` file; removed on drop.
#[derive(Debug)]
pub struct LockedDir {
    path: PathBuf,
    lock: Option<File>,
}

impl LockedDir {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the lock is held (false where the file system cannot lock).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }
}

impl LockedDir {
    /// The folder and its lock, with the remove-on-drop disarmed.
    pub(super) fn into_parts(self) -> (PathBuf, Option<File>) {
        let mut me = std::mem::ManuallyDrop::new(self);
        (std::mem::take(&mut me.path), me.lock.take())
    }
}

impl Drop for LockedDir {
    fn drop(&mut self) {
        // The folder goes before its lock is released.
        let _ = std::fs::remove_dir_all(&self.path);
        self.lock.take();
    }
}

/// Create the folder `parent/<prefix><unique>` (mode 0700) with a locked
/// `.lock` file inside; it gets that name only once the lock is held. Where
/// the file system cannot lock, the folder is returned unlocked.
pub fn create_locked_dir(parent: &Path, prefix: &str) -> io::Result<LockedDir> {
    let creating = loop {
        let path = parent.join(format!("{CREATING}{}", unique()));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => break path,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let done = (|| {
        let lock_path = creating.join(DIR_LOCK);
        let lock = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&lock_path)?;
        let locked = lock_new(&lock, &lock_path)?;
        let path = rename_to_unique(&creating, parent, prefix, "")?;
        Ok(LockedDir { path, lock: locked.then_some(lock) })
    })();
    if done.is_err() {
        let _ = std::fs::remove_dir_all(&creating);
    }
    done
}

/// A scratch folder `<prefix><unique>` in the system's temp folder (`$TMPDIR`,
/// else `/tmp`), locked while it lives and removed on drop; the scratch
/// folders with the same prefix of runs that died (a killed boot test leaves
/// a disk image behind) are removed first.
pub fn scratch_dir(prefix: &str) -> io::Result<LockedDir> {
    let parent = std::env::temp_dir();
    sweep_orphan_dirs(&parent, prefix);
    create_locked_dir(&parent, prefix)
}

/// Remove the folders `parent/<prefix>*` whose run is gone (their `.lock`
/// can be taken), and `.edgeiso-creating.*` folders of runs that died while
/// creating one. A folder without a `.lock` (made by an older edgeiso, which
/// locked the folder itself) is judged by the folder's own lock.
pub fn sweep_orphan_dirs(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let creating = name.starts_with(CREATING);
        if !(creating || name.starts_with(prefix)) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if creating && e.metadata().map_or(true, |m| young(&m)) {
            continue;
        }
        let lock = match OpenOptions::new().read(true).write(true).open(e.path().join(DIR_LOCK)) {
            Ok(f) => f,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // A creating folder its run left before making `.lock` (old enough, see above).
                if creating {
                    let _ = std::fs::remove_dir_all(e.path());
                    continue;
                }
                let Ok(f) = File::open(e.path()) else { continue };
                f
            }
            Err(_) => continue,
        };
        if try_lock(&lock).is_ok() {
            tracing::debug!(path = %e.path().display(), "removing the temp folder of a run that is gone");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::test_names as names;

    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        File::open(path).unwrap().set_times(std::fs::FileTimes::new().set_modified(t)).unwrap();
    }

    #[test]
    fn a_held_temp_survives_the_sweep_and_an_orphan_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (held, _file) = create_locked(dir.path(), "a", "partial").unwrap();
        let (orphan, file) = create_locked(dir.path(), "b", "partial").unwrap();
        drop(file);
        sweep_orphans(dir.path(), |n| n.ends_with(".partial"));
        assert!(held.exists(), "a live writer's file was swept");
        assert!(!orphan.exists(), "an orphan was kept");
        assert_eq!(names(dir.path()), [held.file_name().unwrap().to_string_lossy()]);
    }

    #[test]
    fn a_temp_is_named_for_the_sweep_only_once_locked_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _f) = create_locked_as(dir.path(), ".out.iso.partial-", "", Some(0o600)).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".out.iso.partial-") && name.len() > ".out.iso.partial-".len(), "{name}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Locked by the time it has its name: a concurrent sweep keeps it.
        sweep_orphans(dir.path(), |n| n.starts_with(".out.iso.partial-"));
        assert_eq!(names(dir.path()), [name]);
    }

    #[test]
    fn a_file_in_its_creation_window_is_never_swept() {
        let dir = tempfile::tempdir().unwrap();
        // A run between creating its temp and locking it: unlocked, fresh.
        let fresh = dir.path().join(format!("{CREATING}4242-fresh-0"));
        std::fs::write(&fresh, "").unwrap();
        // Even a sweep that accepts every name leaves it.
        sweep_orphans(dir.path(), |_| true);
        sweep_orphan_dirs(dir.path(), "");
        assert!(fresh.exists(), "a temp in its creation window was swept");
        // One whose run died there long ago goes; one still locked stays.
        let dead = dir.path().join(format!("{CREATING}4242-dead-0"));
        std::fs::write(&dead, "").unwrap();
        age(&dead, 3600);
        let held = dir.path().join(format!("{CREATING}4242-held-0"));
        std::fs::write(&held, "").unwrap();
        let holder = OpenOptions::new().read(true).write(true).open(&held).unwrap();
        holder.lock().unwrap();
        age(&held, 3600);
        sweep_orphans(dir.path(), |_| false);
        assert!(!dead.exists(), "a dead run's creating leftover was kept");
        assert!(fresh.exists() && held.exists());
    }

    #[test]
    fn a_folder_in_its_creation_window_is_never_swept() {
        let dir = tempfile::tempdir().unwrap();
        // Created, `.lock` not yet made or locked.
        let fresh = dir.path().join(format!("{CREATING}4242-fresh-0"));
        std::fs::create_dir(&fresh).unwrap();
        std::fs::write(fresh.join(DIR_LOCK), "").unwrap();
        let bare = dir.path().join(format!("{CREATING}4242-bare-0"));
        std::fs::create_dir(&bare).unwrap();
        sweep_orphan_dirs(dir.path(), ".edgeiso-work.");
        sweep_orphans(dir.path(), |_| true);
        assert!(fresh.exists() && bare.exists(), "a folder in its creation window was swept");
        // Old ones whose run died go.
        age(&fresh, 3600);
        age(&bare, 3600);
        sweep_orphan_dirs(dir.path(), ".edgeiso-work.");
        assert!(!fresh.exists() && !bare.exists(), "a dead run's creating folder was kept");
    }

    #[test]
    fn a_held_folder_survives_the_sweep_and_an_orphan_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let live = create_locked_dir(dir.path(), ".edgeiso-work.").unwrap();
        assert!(live.is_locked());
        assert!(live.path().file_name().unwrap().to_string_lossy().starts_with(".edgeiso-work."));
        std::fs::write(live.path().join("x"), "").unwrap();
        let dead = create_locked_dir(dir.path(), ".edgeiso-work.").unwrap();
        let dead_path = dead.path().to_path_buf();
        // A killed run: the lock goes, the folder stays.
        let mut dead = std::mem::ManuallyDrop::new(dead);
        dead.lock.take();
        // An older edgeiso's folders: locked (or not) on the folder itself.
        let old_live = dir.path().join(".edgeiso-work.old-live");
        std::fs::create_dir(&old_live).unwrap();
        let holder = File::open(&old_live).unwrap();
        holder.lock().unwrap();
        std::fs::create_dir_all(dir.path().join(".edgeiso-work.old-dead/overlay")).unwrap();
        std::fs::create_dir(dir.path().join(".other")).unwrap();
        sweep_orphan_dirs(dir.path(), ".edgeiso-work.");
        assert!(!dead_path.exists(), "an orphan folder was kept");
        let mut want = vec![
            ".edgeiso-work.old-live".to_string(),
            ".other".into(),
            live.path().file_name().unwrap().to_string_lossy().into_owned(),
        ];
        want.sort();
        assert_eq!(names(dir.path()), want);
        let live_path = live.path().to_path_buf();
        drop(live);
        assert!(!live_path.exists(), "a temp folder outlived its owner");
    }

    #[test]
    fn without_locks_temps_are_used_unlocked_and_nothing_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (orphan, f) = create_locked(dir.path(), "b", "partial").unwrap();
        drop(f);
        std::fs::create_dir(dir.path().join(".edgeiso-work.old")).unwrap();
        LOCKS_UNSUPPORTED.with(|c| c.set(true));
        let (path, _f) = create_locked_as(dir.path(), ".out.iso.partial-", "", Some(0o600)).unwrap();
        let work = create_locked_dir(dir.path(), ".edgeiso-work.").unwrap();
        assert!(!work.is_locked());
        sweep_orphans(dir.path(), |n| n.ends_with(".partial") || n.starts_with(".out.iso.partial-"));
        sweep_orphan_dirs(dir.path(), ".edgeiso-work.");
        LOCKS_UNSUPPORTED.with(|c| c.set(false));
        // What cannot be locked is not judged dead.
        assert!(path.exists() && work.path().exists() && orphan.exists());
        assert!(dir.path().join(".edgeiso-work.old").exists());
    }
}
