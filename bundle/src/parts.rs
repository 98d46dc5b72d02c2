//! A bundle on disk is one tar file or a run of parts (`NAME.tar.part000`,
//! `.part001`, ...) that are the same byte stream cut at fixed sizes. These
//! helpers let every reader treat both forms as one seekable file.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::BundleError;

/// The files that make up the bundle at `path`: the tar itself, or all of its
/// parts when `path` names a part or the tar name whose parts exist.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let (base, given_part) = match part_base(path) {
        Some(base) => (base, true),
        None => (path.to_path_buf(), false),
    };
    if !given_part && path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut parts = Vec::new();
    while let Some(p) = Some(part_name(&base, parts.len())).filter(|p| p.is_file()) {
        parts.push(p);
    }
    if parts.is_empty() {
        // part001 without part000 is a bundle with its first part missing.
        if part_name(&base, 1).is_file() {
            return Err(BundleError::MissingPart(part_name(&base, 0)));
        }
        return Err(BundleError::NotFound(if given_part { part_name(&base, 0) } else { path.to_path_buf() }));
    }
    // A gap (part003 present, part002 missing) would otherwise read as a
    // truncated bundle; name the missing part instead.
    let dir = base.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = base.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix(&format!("{stem}.part")).and_then(|n| n.parse::<usize>().ok()) {
                if n > parts.len() {
                    return Err(BundleError::MissingPart(part_name(&base, parts.len())));
                }
            }
        }
    }
    Ok(parts)
}

/// The part that would follow the last of `paths` (`None` for a single tar).
pub fn next_part(paths: &[PathBuf]) -> Option<PathBuf> {
    let last = paths.last()?;
    let base = part_base(last)?;
    Some(part_name(&base, paths.len()))
}

/// Every part but the last is exactly as long as the first (they are cuts of
/// one stream at a fixed size): the first that is not was cut short.
pub fn check_part_sizes(paths: &[PathBuf]) -> Result<(), BundleError> {
    if paths.len() < 2 {
        return Ok(());
    }
    let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).map_err(|e| BundleError::io(p, e));
    let first = size(&paths[0])?;
    for p in &paths[1..paths.len() - 1] {
        let n = size(p)?;
        if n != first {
            return Err(BundleError::PartCutShort { path: p.clone(), size: n, expected: first });
        }
    }
    let last = size(&paths[paths.len() - 1])?;
    if last > first {
        return Err(BundleError::PartCutShort { path: paths[0].clone(), size: first, expected: last });
    }
    Ok(())
}

/// `NAME.tar.part007` -> `NAME.tar`; `None` when `path` does not name a part.
/// The one rule for part names: `.part` and at least three digits.
pub fn part_base(path: &Path) -> Option<PathBuf> {
    let s = path.to_str()?;
    let (base, num) = s.rsplit_once(".part")?;
    (num.len() >= 3 && num.bytes().all(|b| b.is_ascii_digit())).then(|| PathBuf::from(base))
}

/// `NAME.tar` -> `NAME.tar.part007`
pub fn part_name(base: &Path, index: usize) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".part{index:03}"));
    PathBuf::from(s)
}

/// The parts of a bundle read as one file.
pub struct PartsReader {
    files: Vec<(File, u64)>,
    starts: Vec<u64>,
    len: u64,
    pos: u64,
}

impl PartsReader {
    pub fn open(paths: &[PathBuf]) -> Result<PartsReader, BundleError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut starts = Vec::with_capacity(paths.len());
        let mut len = 0;
        for p in paths {
            let f = File::open(p).map_err(|e| BundleError::io(p, e))?;
            let n = f.metadata().map_err(|e| BundleError::io(p, e))?.len();
            starts.push(len);
            len += n;
            files.push((f, n));
        }
        Ok(PartsReader { files, starts, len, pos: 0 })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Which part holds byte `offset`, and where inside it.
    fn locate(&self, offset: u64) -> Option<(usize, u64)> {
        if offset >= self.len {
            return None;
        }
        let i = self.starts.partition_point(|&s| s <= offset) - 1;
        Some((i, offset - self.starts[i]))
    }

    /// The byte ranges `(part index, offset in part, length)` that hold
    /// `len` bytes from `offset`: how an async reader streams one member.
    pub fn segments(&self, mut offset: u64, mut len: u64) -> Vec<(usize, u64, u64)> {
        let mut out = Vec::new();
        while len > 0 {
            let Some((i, at)) = self.locate(offset) else { break };
            let n = len.min(self.files[i].1 - at);
            out.push((i, at, n));
            offset += n;
            len -= n;
        }
        out
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((i, at)) = self.locate(self.pos) else { return Ok(0) };
        let (f, n) = &mut self.files[i];
        let want = buf.len().min((*n - at) as usize);
        let got = read_at(f, &mut buf[..want], at)?;
        self.pos += got as u64;
        Ok(got)
    }
}

fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    f.read_at(buf, offset)
}

impl Seek for PartsReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// Writes one byte stream as parts of at most `part_size` bytes, each to a
/// temporary name beside its final one. Nothing has its final name until
/// [`SplitWriter::commit`]; dropping the writer uncommitted removes every
/// temporary file, so a failed write (disk full, Ctrl-C) leaves nothing that
/// looks like a bundle.
pub struct SplitWriter {
    base: PathBuf,
    part_size: u64,
    temps: Vec<PathBuf>,
    /// Every part stays open (and locked) until commit, so a concurrent
    /// sweep can tell it is alive.
    held: Vec<File>,
    current: Option<io::BufWriter<File>>,
    in_current: u64,
    committed: bool,
}

impl SplitWriter {
    pub fn new(base: &Path, part_size: u64) -> SplitWriter {
        assert!(part_size > 0);
        SplitWriter {
            base: base.to_path_buf(),
            part_size,
            temps: Vec::new(),
            held: Vec::new(),
            current: None,
            in_current: 0,
            committed: false,
        }
    }

    fn roll(&mut self) -> io::Result<()> {
        if let Some(w) = self.current.take() {
            self.finish_current(w)?;
        }
        let dir = self.base.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = self.base.file_name().unwrap_or_default().to_string_lossy();
        let (p, f) = edgeiso_contract::fs::create_locked(dir, &format!(".{name}.{:03}", self.temps.len()), "tmp")?;
        self.held.push(f.try_clone()?);
        self.temps.push(p);
        self.current = Some(io::BufWriter::with_capacity(1 << 20, f));
        self.in_current = 0;
        Ok(())
    }

    fn finish_current(&mut self, mut w: io::BufWriter<File>) -> io::Result<()> {
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }

    /// Finish: fsync, then rename to `BASE` (one part) or `BASE.partNNN`, and
    /// remove stale parts a previous, larger bundle of the same name left.
    pub fn commit(mut self) -> io::Result<Vec<PathBuf>> {
        if self.current.is_none() {
            self.roll()?;
        }
        if let Some(w) = self.current.take() {
            self.finish_current(w)?;
        }
        let finals: Vec<PathBuf> = if self.temps.len() == 1 {
            vec![self.base.clone()]
        } else {
            (0..self.temps.len()).map(|i| part_name(&self.base, i)).collect()
        };
        for (t, f) in self.temps.iter().zip(&finals) {
            fs::rename(t, f)?;
        }
        self.committed = true;
        // Stale outputs of an earlier run must not be mistaken for ours.
        if finals.len() == 1 {
            remove_parts_from(&self.base, 0)?;
        } else {
            match fs::remove_file(&self.base) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            remove_parts_from(&self.base, finals.len())?;
        }
        if let Some(dir) = self.base.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(finals)
    }
}

fn remove_parts_from(base: &Path, first: usize) -> io::Result<()> {
    let mut i = first;
    loop {
        match fs::remove_file(part_name(base, i)) {
            Ok(()) => i += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

impl Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.current.is_none() || self.in_current == self.part_size {
            self.roll()?;
        }
        let room = (self.part_size - self.in_current) as usize;
        let n = self.current.as_mut().expect("rolled").write(&buf[..buf.len().min(room)])?;
        self.in_current += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.current.as_mut().map_or(Ok(()), |w| w.flush())
    }
}

impl Drop for SplitWriter {
    fn drop(&mut self) {
        if !self.committed {
            self.current.take();
            self.held.clear();
            for t in &self.temps {
                let _ = fs::remove_file(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_read_back_across_part_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = SplitWriter::new(&base, 3000);
        w.write_all(&data).unwrap();
        let parts = w.commit().unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(discover(&parts[0]).unwrap(), parts);
        assert_eq!(discover(&base).unwrap(), parts);
        let mut r = PartsReader::open(&parts).unwrap();
        r.seek(SeekFrom::Start(2990)).unwrap();
        let mut buf = vec![0; 20];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, data[2990..3010]);
        assert_eq!(r.segments(2990, 20), vec![(0, 2990, 10), (1, 0, 10)]);
        let mut all = Vec::new();
        r.seek(SeekFrom::Start(0)).unwrap();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
    }

    #[test]
    fn one_part_gets_the_plain_name_and_stale_parts_go() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar");
        let mut w = SplitWriter::new(&base, 10);
        w.write_all(&[1; 25]).unwrap();
        w.commit().unwrap();
        let mut w = SplitWriter::new(&base, 100);
        w.write_all(&[2; 25]).unwrap();
        assert_eq!(w.commit().unwrap(), vec![base.clone()]);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("b.tar")]);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SplitWriter::new(&dir.path().join("b.tar"), 10);
        w.write_all(&[1; 25]).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_gap_in_the_parts_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar");
        let mut w = SplitWriter::new(&base, 10);
        w.write_all(&[1; 35]).unwrap();
        w.commit().unwrap();
        fs::remove_file(part_name(&base, 1)).unwrap();
        let e = discover(&base).unwrap_err().to_string();
        assert!(e.contains("b.tar.part001"), "{e}");
    }
}
