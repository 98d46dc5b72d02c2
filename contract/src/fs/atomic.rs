//! A file written whole or not at all: through a locked temp file in the
//! same folder (see [`super::temp`]), fsynced, then renamed over the final
//! name. The temp has its final mode before a byte is written, so a secret
//! is never readable by others, not even for a moment.

use std::io::{self, Write};
use std::path::Path;

use super::temp;

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// 0644
    Public,
    /// 0600: holds a password or a private key.
    Secret,
    /// 0755: a program.
    Executable,
}

impl FileMode {
    pub fn bits(self) -> u32 {
        match self {
            FileMode::Public => 0o644,
            FileMode::Secret => 0o600,
            FileMode::Executable => 0o755,
        }
    }
}

/// Write `data` to `path` atomically with `mode`, creating parent folders.
pub fn write_atomic(path: &Path, data: &[u8], mode: FileMode) -> io::Result<()> {
    write_atomic_with_mode(path, data, mode.bits())
}

/// [`write_atomic`] with explicit permission bits (e.g. those of an input
/// file whose corrected copy is written). The temp file is created new
/// (`O_CREAT|O_EXCL`, which never follows a symlink) under a name that is
/// not known in advance; temps that dead writers left beside `path` are
/// swept first.
pub fn write_atomic_with_mode(path: &Path, data: &[u8], bits: u32) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    temp::sweep_orphans(dir, |n| n.starts_with(&prefix) && n.ends_with(".tmp"));
    let (tmp, mut f) = temp::create_locked_as(dir, &prefix, ".tmp", Some(bits))?;
    let done = f.write_all(data).and_then(|()| f.sync_all()).and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_with_mode_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/secret.yaml");
        write_atomic(&p, b"x", FileMode::Secret).unwrap();
        write_atomic(&p, b"yz", FileMode::Secret).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"yz");
        assert_eq!(mode(&p), 0o600);
        let names: Vec<_> = std::fs::read_dir(d.path().join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["secret.yaml"]);
    }

    #[test]
    fn a_planted_temp_name_is_never_followed() {
        // Someone who can write the output folder plants symlinks at the temp
        // names an earlier version used: the secret must not land in (nor
        // truncate) the file they point to.
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let p = d.path().join("out/secret.yaml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        for planted in [format!(".secret.yaml.tmp-{}", std::process::id()), ".edgeiso-creating.x".into()] {
            std::os::unix::fs::symlink(&victim, p.parent().unwrap().join(planted)).unwrap();
        }
        write_atomic(&p, b"password", FileMode::Secret).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read(&p).unwrap(), b"password");
        assert!(!std::fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }

    #[test]
    fn any_mode_can_be_asked_for_whatever_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_atomic_with_mode(&p, b"x", 0o640).unwrap();
        assert_eq!(mode(&p), 0o640);
        write_atomic(&p, b"x", FileMode::Executable).unwrap();
        assert_eq!(mode(&p), 0o755);
    }

    #[test]
    fn a_dead_writers_temp_is_swept_and_a_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let (dead, f) = temp::create_locked_as(d.path(), ".f.", ".tmp", None).unwrap();
        drop(f);
        let (live, _held) = temp::create_locked_as(d.path(), ".f.", ".tmp", None).unwrap();
        write_atomic(&d.path().join("f"), b"1", FileMode::Public).unwrap();
        assert!(!dead.exists() && live.exists());
    }
}
