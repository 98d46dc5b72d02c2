//! Reading a whole input file with a ceiling: the one rule for the small
//! files a spec names (certificates, user-data): a wrong path (a disk image,
//! `/dev/zero`) costs at most the ceiling, never all memory.

use std::io::{self, Read};
use std::path::Path;

/// The bytes of `path`, or an `InvalidData` error naming the file and the
/// ceiling when it holds more than `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(with_path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(with_path)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes, more than such a file ever holds", path.display()),
        ));
    }
    Ok(bytes)
}

/// [`read_bounded`] of a regular file only, checked before opening (opening
/// a FIFO would block until a writer came): for input files a user names
/// (keys, signatures, the agent's `--sources`).
pub fn read_small_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    read_bounded(path, max)
}

#[cfg(test)]
mod tests {
    use super::{read_bounded, read_small_file};

    #[test]
    fn a_small_file_is_a_regular_one() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // Would block on open: refused before.
        let e = read_small_file(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("fifo is not a regular file"), "{e}");
        let e = read_small_file(dir.path(), 10).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        std::fs::write(dir.path().join("ok"), b"ok").unwrap();
        assert_eq!(read_small_file(&dir.path().join("ok"), 10).unwrap(), b"ok");
    }

    #[test]
    fn stops_at_the_ceiling_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.pem");
        std::fs::write(&p, vec![b'x'; 11]).unwrap();
        assert_eq!(read_bounded(&p, 11).unwrap().len(), 11);
        let e = read_bounded(&p, 10).unwrap_err();
        assert!(e.to_string().contains("big.pem") && e.to_string().contains("10 bytes"), "{e}");
        let e = read_bounded(std::path::Path::new("/dev/zero"), 4096).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let e = read_bounded(&dir.path().join("absent"), 10).unwrap_err();
        assert!(e.to_string().contains("absent"), "{e}");
    }
}
