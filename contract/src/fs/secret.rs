//! Reading a secret (a password) from a file: the one rule for the agent's
//! `--password-file`, the builder's `--password-file` and the spec's
//! `passwordFile`s.
//!
//! A secret file is a small regular file holding one line. Anything else is
//! refused with a message that names the file and never its content:
//! `/dev/zero` would fill memory, a FIFO would block forever, a directory is
//! not "no such file", and a multi-line file (`/etc/shadow`) is not a
//! password, whatever its first line looks like.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Larger than any password or token a registry takes; small enough that a
/// wrong path never costs memory.
pub const SECRET_FILE_MAX: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{what} {}: {source}", path.display())]
    Open {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {}: {why}", path.display())]
    Refused { what: String, path: PathBuf, why: String },
}

/// The one line of the secret file at `path` (a trailing `\n` or `\r\n`
/// dropped). `what` names the file in errors ("password file").
pub fn read_secret_file(path: &Path, what: &str) -> Result<String, SecretFileError> {
    let refused = |why: String| SecretFileError::Refused { what: what.to_owned(), path: path.to_owned(), why };
    // Refuse what is not a regular file before opening it: opening a FIFO
    // blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(|source| SecretFileError::Open {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let is = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(refused(format!("is {is}; a secret must be a regular file")));
    }
    // O_NONBLOCK: should the path have been swapped for a FIFO since the
    // check, opening it still does not block (and fstat below refuses it).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(path)
        .map_err(|source| SecretFileError::Open { what: what.to_owned(), path: path.to_owned(), source })?;
    let meta = file.metadata().map_err(|source| SecretFileError::Open {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(refused("is not a regular file; a secret must be one".into()));
    }
    let mut bytes = Vec::new();
    file.take(SECRET_FILE_MAX + 1).read_to_end(&mut bytes).map_err(|source| SecretFileError::Open {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    if bytes.len() as u64 > SECRET_FILE_MAX {
        return Err(refused(format!("is larger than {SECRET_FILE_MAX} bytes; a secret file holds one line")));
    }
    let text = String::from_utf8(bytes).map_err(|_| refused("is not UTF-8 text".into()))?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains(['\n', '\r']) {
        return Err(refused("holds more than one line; a secret file holds one line (the password)".into()));
    }
    if line.is_empty() {
        return Err(refused("is empty".into()));
    }
    Ok(line.to_owned())
}

/// `O_NONBLOCK` on Linux (every architecture edgeiso builds for).
const fn libc_o_nonblock() -> i32 {
    0o4000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &Path) -> String {
        read_secret_file(path, "password file").unwrap_err().to_string()
    }

    #[test]
    fn one_line_with_or_without_a_newline() {
        let d = tempfile::tempdir().unwrap();
        for (text, want) in [("s3cret\n", "s3cret"), ("s3cret", "s3cret"), ("a b:c\r\n", "a b:c")] {
            let p = d.path().join("pw");
            std::fs::write(&p, text).unwrap();
            assert_eq!(read_secret_file(&p, "password file").unwrap(), want);
        }
    }

    #[test]
    fn what_is_not_a_one_line_regular_file_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let shadow = d.path().join("shadow");
        std::fs::write(&shadow, "root:$6$x:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n").unwrap();
        let e = err(&shadow);
        assert!(e.contains("holds more than one line") && e.contains(&shadow.display().to_string()), "{e}");
        assert!(!e.contains("root:"), "the content stays out: {e}");

        let e = err(Path::new("/dev/zero"));
        assert!(e.contains("/dev/zero") && e.contains("a device"), "{e}");

        let e = err(d.path());
        assert!(e.contains("a directory"), "{e}");

        let fifo = d.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = err(&fifo);
        assert!(e.contains("a FIFO") && e.contains("fifo"), "{e}");

        let big = d.path().join("big");
        std::fs::write(&big, "x".repeat(SECRET_FILE_MAX as usize + 1)).unwrap();
        assert!(err(&big).contains("larger than 4096 bytes"));

        let empty = d.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(err(&empty).contains("is empty"));

        let e = err(&d.path().join("absent"));
        assert!(e.contains("password file") && e.contains("absent") && e.contains("No such file"), "{e}");
    }
}
