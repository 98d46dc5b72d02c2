//! A set of files built in memory (render's output, say) before any is
//! written: each with its path relative to an output folder and its mode.
//! Writing them is a separate step, so a producer that fails half way has
//! written nothing.

use std::io;
use std::path::{Component, Path};

use super::atomic::{write_atomic, FileMode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// Relative, `/`-separated, no `..`.
    pub path: String,
    pub bytes: Vec<u8>,
    pub mode: FileMode,
}

/// Files by relative path, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    files: Vec<OutFile>,
}

/// A path given twice, or one that would leave the output folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileSetError {
    #[error("{0}: written twice in one output")]
    Duplicate(String),
    #[error("{0}: not a plain relative path")]
    NotRelative(String),
}

impl FileSet {
    pub fn new() -> FileSet {
        FileSet::default()
    }

    pub fn put(&mut self, path: &str, bytes: impl Into<Vec<u8>>, mode: FileMode) -> Result<(), FileSetError> {
        let plain = !path.is_empty()
            && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
            && !path.ends_with('/');
        if !plain {
            return Err(FileSetError::NotRelative(path.to_owned()));
        }
        if self.get(path).is_some() {
            return Err(FileSetError::Duplicate(path.to_owned()));
        }
        self.files.push(OutFile { path: path.to_owned(), bytes: bytes.into(), mode });
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&OutFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Take a file out of the set (to place it elsewhere).
    pub fn remove(&mut self, path: &str) -> Option<OutFile> {
        let i = self.files.iter().position(|f| f.path == path)?;
        Some(self.files.remove(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &OutFile> {
        self.files.iter()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Write every file under `dir` (atomically each, with its mode).
    pub fn write_into(&self, dir: &Path) -> io::Result<()> {
        for f in &self.files {
            let path = dir.join(&f.path);
            write_atomic(&path, &f.bytes, f.mode)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_and_are_given_once() {
        let mut s = FileSet::new();
        s.put("a/b.yaml", "x", FileMode::Public).unwrap();
        assert_eq!(s.put("a/b.yaml", "y", FileMode::Public), Err(FileSetError::Duplicate("a/b.yaml".into())));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/", "./a"] {
            assert_eq!(s.put(bad, "y", FileMode::Public), Err(FileSetError::NotRelative(bad.into())), "{bad}");
        }
        let d = tempfile::tempdir().unwrap();
        s.put("c", "secret", FileMode::Secret).unwrap();
        s.write_into(d.path()).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("a/b.yaml")).unwrap(), "x");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.path().join("c")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(s.remove("c").unwrap().bytes, b"secret");
        assert_eq!(s.len(), 1);
    }
}
