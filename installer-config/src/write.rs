//! Writing output files: always through a temporary name in the same folder
//! and a rename, so a crash never leaves half a file under the final name;
//! files holding secrets are created 0600 before a byte is written.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0644
    Public,
    /// 0600: holds a password or a private key.
    Secret,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Public => 0o644,
            Mode::Secret => 0o600,
        }
    }
}

/// Write `data` to `path` atomically with the given mode, creating parent folders.
pub fn write_atomic(path: &Path, data: &[u8], mode: Mode) -> std::io::Result<()> {
    write_atomic_with_mode(path, data, mode.bits())
}

/// `write_atomic` with explicit permission bits (e.g. those of an input file
/// whose corrected copy is written). The temp file is created new
/// (`O_CREAT|O_EXCL`, which never follows a symlink) under a name that is not
/// known in advance, with its final mode from the start.
pub fn write_atomic_with_mode(path: &Path, data: &[u8], bits: u32) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut attempt = 0;
    let (tmp, mut f): (PathBuf, std::fs::File) = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}-{nanos:08x}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(bits);
        }
        match opts.open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        // The umask may have taken bits away at creation: set them exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(bits))?;
        }
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_mode_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/secret.yaml");
        write_atomic(&p, b"x", Mode::Secret).unwrap();
        write_atomic(&p, b"yz", Mode::Secret).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"yz");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(d.path().join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["secret.yaml"]);
    }
    #[cfg(unix)]
    #[test]
    fn a_planted_temp_name_is_never_followed() {
        // Someone who can write the output folder plants a symlink at the
        // temp name an earlier version used (`.<name>.tmp-<pid>`): the secret
        // must not land in (nor truncate) the file it points to.
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let p = d.path().join("out/secret.yaml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let planted = p.parent().unwrap().join(format!(".secret.yaml.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&p, b"password", Mode::Secret).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read(&p).unwrap(), b"password");
        assert!(!std::fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn any_mode_can_be_asked_for() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_atomic_with_mode(&p, b"x", 0o640).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    }
}
