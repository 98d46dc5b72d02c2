//! The journal: what is known to be in one registry, so that a run after a
//! crash, a `kill -9` or a power cut continues where the last one stopped and
//! re-uploads nothing that was finished.
//!
//! Format: JSON lines appended to `<state-dir>/journal/<host>_<port>.jsonl`,
//! each line written whole and `fdatasync`ed before the agent relies on it.
//! A power cut can tear only the last line; reading skips a line that does
//! not parse and truncates a torn tail before appending. When the file has
//! grown well past what it describes it is rewritten compactly to a temporary
//! name, synced and renamed over the old one (atomic on POSIX filesystems).
//!
//! The journal is a cache, never the truth: a loaded image is confirmed with
//! a manifest HEAD on every run, and a blob the registry turns out not to
//! have is uploaded again (see `load.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use edgeiso_bundle::Digest;
use serde::{Deserialize, Serialize};
use tracing::warn;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum Record {
    /// A run is about to load these images from this bundle.
    Plan {
        bundle: String,
        path: String,
        images: Vec<PlannedImage>,
        at: String,
        /// sha256 of the bundle's `bundle.json`: what a delta names its base
        /// by (absent in journals written before deltas existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<Digest>,
    },
    /// `repo` holds blob `digest` (uploaded, mounted, or found there).
    Blob { repo: String, digest: Digest },
    /// A chunked upload in progress: where to resume it.
    Upload { repo: String, digest: Digest, location: String, offset: u64 },
    /// The chunked upload recorded by `Upload` was given up (corrupt blob,
    /// refused by the registry): nothing to resume.
    UploadCancelled { repo: String, digest: Digest },
    /// Every manifest of the image is in, its tag last.
    Image { bundle: String, reference: String, target: String, digest: Digest, at: String },
    /// The image could not be loaded.
    Failed { bundle: String, reference: String, target: String, error: String, at: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedImage {
    pub reference: String,
    pub target: String,
    pub digest: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageEntry {
    pub bundle: String,
    pub reference: String,
    pub target: String,
    pub digest: Digest,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedEntry {
    pub bundle: String,
    pub reference: String,
    pub target: String,
    pub error: String,
    pub at: String,
}

/// A bundle's last plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    pub path: String,
    pub images: Vec<PlannedImage>,
    pub at: String,
    pub sha256: Option<Digest>,
}

impl JournalState {
    /// Whether the bundle whose `bundle.json` hashes to `sha256` was loaded
    /// whole here: planned, and every image of its plan loaded with the
    /// plan's digest since.
    pub fn loaded_whole(&self, name: &str, sha256: &Digest) -> bool {
        self.plans.get(name).is_some_and(|p| {
            p.sha256.as_ref() == Some(sha256)
                && p.images.iter().all(|i| self.images.get(&i.target).is_some_and(|e| e.digest == i.digest))
        })
    }
}

/// What the records add up to.
#[derive(Debug, Default, Clone)]
pub struct JournalState {
    /// Repositories known to hold each blob.
    pub blobs: HashMap<Digest, BTreeSet<String>>,
    /// Chunked uploads in progress, by (repository, digest).
    pub uploads: HashMap<(String, Digest), (String, u64)>,
    /// Loaded images, by target (`repo:tag` or `repo@digest`).
    pub images: BTreeMap<String, ImageEntry>,
    pub failed: BTreeMap<String, FailedEntry>,
    /// The last plan of each bundle, by bundle name.
    pub plans: BTreeMap<String, PlanEntry>,
}

impl JournalState {
    /// Fold one record into the state (later records win).
    pub fn apply_public(&mut self, r: Record) {
        self.apply(r)
    }

    fn apply(&mut self, r: Record) {
        match r {
            Record::Plan { bundle, path, images, at, sha256 } => {
                self.plans.insert(bundle, PlanEntry { path, images, at, sha256 });
            }
            Record::Blob { repo, digest } => {
                self.uploads.remove(&(repo.clone(), digest.clone()));
                self.blobs.entry(digest).or_default().insert(repo);
            }
            Record::Upload { repo, digest, location, offset } => {
                self.uploads.insert((repo, digest), (location, offset));
            }
            Record::UploadCancelled { repo, digest } => {
                self.uploads.remove(&(repo, digest));
            }
            Record::Image { bundle, reference, target, digest, at } => {
                self.failed.remove(&target);
                self.images.insert(target.clone(), ImageEntry { bundle, reference, target, digest, at });
            }
            Record::Failed { bundle, reference, target, error, at } => {
                self.images.remove(&target);
                self.failed.insert(target.clone(), FailedEntry { bundle, reference, target, error, at });
            }
        }
    }

    /// The records that rebuild this state (for compaction).
    fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for (bundle, p) in &self.plans {
            out.push(Record::Plan {
                bundle: bundle.clone(),
                path: p.path.clone(),
                images: p.images.clone(),
                at: p.at.clone(),
                sha256: p.sha256.clone(),
            });
        }
        let mut blobs: Vec<_> = self.blobs.iter().collect();
        blobs.sort();
        for (digest, repos) in blobs {
            for repo in repos {
                out.push(Record::Blob { repo: repo.clone(), digest: digest.clone() });
            }
        }
        let mut uploads: Vec<_> = self.uploads.iter().collect();
        uploads.sort();
        for ((repo, digest), (location, offset)) in uploads {
            out.push(Record::Upload {
                repo: repo.clone(),
                digest: digest.clone(),
                location: location.clone(),
                offset: *offset,
            });
        }
        for e in self.images.values() {
            out.push(Record::Image {
                bundle: e.bundle.clone(),
                reference: e.reference.clone(),
                target: e.target.clone(),
                digest: e.digest.clone(),
                at: e.at.clone(),
            });
        }
        for e in self.failed.values() {
            out.push(Record::Failed {
                bundle: e.bundle.clone(),
                reference: e.reference.clone(),
                target: e.target.clone(),
                error: e.error.clone(),
                at: e.at.clone(),
            });
        }
        out
    }
}

pub struct Journal {
    path: Option<PathBuf>,
    /// `<journal>.lock`, held (flock) while this process uses the journal,
    /// so a second agent cannot append to or compact it at the same time.
    _lock: Option<File>,
    file: Mutex<Option<File>>,
    state: Mutex<JournalState>,
}

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// `10.0.0.5:30003` -> `10.0.0.5_30003.jsonl`
pub fn journal_path(state_dir: &Path, host_port: &str) -> PathBuf {
    let name: String =
        host_port.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    state_dir.join("journal").join(format!("{name}.jsonl"))
}

/// Read a journal file: the records of its whole lines, and the length of
/// the prefix made of whole lines (a torn last line is dropped).
pub fn read_records(path: &Path) -> io::Result<(Vec<Record>, u64)> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let good_len = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut records = Vec::new();
    for (n, line) in data[..good_len].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) => warn!(path = %path.display(), line = n + 1, %e, "skipping an unreadable journal line"),
        }
    }
    Ok((records, good_len as u64))
}

/// The images a journal file records as loaded, by target (later records
/// win; a `Failed` after an `Image` removes it): `(reference, digest)`.
/// Read line by line, keeping nothing else, for the webhook, which must
/// stay small on a node with thousands of images and many blob records.
pub fn loaded_images(path: &Path) -> io::Result<HashMap<String, (String, Digest)>> {
    use std::io::BufRead as _;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let mut out = HashMap::new();
    let mut reader = io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            break; // a torn last line: not yet written whole
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(Record::Image { reference, target, digest, .. }) => {
                out.insert(target, (reference, digest));
            }
            Ok(Record::Failed { target, .. }) => {
                out.remove(&target);
            }
            Ok(_) => {}
            Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
            Err(e) => warn!(path = %path.display(), %e, "skipping an unreadable journal line"),
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Journal {
    /// A journal that remembers nothing across runs (`--no-journal`).
    pub fn in_memory() -> Journal {
        Journal { path: None, _lock: None, file: Mutex::new(None), state: Mutex::default() }
    }

    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let err = |source| JournalError { path: path.to_path_buf(), source };
        let dir = path.parent().expect("journal paths have a parent");
        let created_dir = !dir.exists();
        fs::create_dir_all(dir).map_err(err)?;
        if created_dir {
            if let Some(parent) = dir.parent() {
                sync_dir(parent).map_err(err)?;
            }
        }
        let lock_path = path.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| JournalError { path: lock_path.clone(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("another edgeiso-agent is loading into this registry (it holds {})", lock_path.display()),
                )))
            }
            Err(fs::TryLockError::Error(e)) => return Err(JournalError { path: lock_path, source: e }),
        }
        let (records, good_len) = read_records(path).map_err(err)?;
        let mut state = JournalState::default();
        let count = records.len();
        for r in records {
            state.apply(r);
        }
        let live = state.records();
        if count > 2 * live.len() + 1000 {
            Self::rewrite(path, &live).map_err(err)?;
        } else {
            // Cut a torn tail so the next append starts on a line of its own.
            let f = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
            if f.metadata().map_err(err)?.len() != good_len {
                f.set_len(good_len).map_err(err)?;
                f.sync_all().map_err(err)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        sync_dir(dir).map_err(err)?;
        Ok(Journal {
            path: Some(path.to_path_buf()),
            _lock: Some(lock),
            file: Mutex::new(Some(file)),
            state: Mutex::new(state),
        })
    }

    fn rewrite(path: &Path, records: &[Record]) -> io::Result<()> {
        let tmp = path.with_extension(format!("jsonl.{}.tmp", std::process::id()));
        {
            let mut f = io::BufWriter::new(File::create(&tmp)?);
            for r in records {
                serde_json::to_writer(&mut f, r)?;
                f.write_all(b"\n")?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().expect("journal paths have a parent"))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Record `r` durably, then apply it. Returns once the line is on disk.
    ///
    /// Called from async code: on the multi-threaded runtime the write and
    /// `fdatasync` run under `block_in_place`, so the worker's other tasks
    /// (uploads in flight) move to another thread instead of waiting for the
    /// disk. The call itself has no await point: dropping a load at
    /// `--deadline` never leaves half a line.
    pub fn append(&self, r: Record) -> Result<(), JournalError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.append_blocking(r))
            }
            _ => self.append_blocking(r),
        }
    }

    fn append_blocking(&self, r: Record) -> Result<(), JournalError> {
        let mut guard = self.file.lock().unwrap();
        if let Some(f) = guard.as_mut() {
            let mut line = serde_json::to_vec(&r).expect("records serialize");
            line.push(b'\n');
            let path = self.path.clone().unwrap_or_default();
            // One write per line: O_APPEND keeps it whole among our own writes.
            f.write_all(&line).map_err(|source| JournalError { path: path.clone(), source })?;
            f.sync_data().map_err(|source| JournalError { path, source })?;
        }
        drop(guard);
        self.state.lock().unwrap().apply(r);
        Ok(())
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, JournalState> {
        self.state.lock().unwrap()
    }

    pub fn snapshot(&self) -> JournalState {
        self.state.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap()
    }

    #[test]
    fn survives_a_torn_last_line_and_keeps_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), "127.0.0.1:5000");
        assert!(path.ends_with("journal/127.0.0.1_5000.jsonl"));
        {
            let j = Journal::open(&path).unwrap();
            j.append(Record::Blob { repo: "p/a".into(), digest: d('a') }).unwrap();
            j.append(Record::Blob { repo: "p/b".into(), digest: d('b') }).unwrap();
        }
        // A power cut in the middle of the third line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"t":"blob","repo":"p/c","dig"#).unwrap();
        drop(f);
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.state().blobs.len(), 2);
        j.append(Record::Blob { repo: "p/c".into(), digest: d('c') }).unwrap();
        drop(j);
        let (records, _) = read_records(&path).unwrap();
        assert_eq!(records.len(), 3, "the torn line is gone and the new one is whole");
        let j = Journal::open(&path).unwrap();
        assert!(j.state().blobs[&d('c')].contains("p/c"));
    }

    #[test]
    fn a_second_process_cannot_open_a_held_journal_and_cancelled_uploads_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), "h:1");
        let j = Journal::open(&path).unwrap();
        // flock locks belong to the open file description: a second open (as
        // another process would do) is refused while the first is alive.
        let e = Journal::open(&path).err().expect("the journal is held");
        assert!(e.to_string().contains("another edgeiso-agent"), "{e}");
        j.append(Record::Upload { repo: "p/a".into(), digest: d('a'), location: "http://x/u".into(), offset: 7 })
            .unwrap();
        assert_eq!(j.state().uploads.len(), 1);
        j.append(Record::UploadCancelled { repo: "p/a".into(), digest: d('a') }).unwrap();
        assert!(j.state().uploads.is_empty());
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(j.state().uploads.is_empty(), "read back too");
    }

    #[test]
    fn later_records_win_and_compaction_keeps_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), "h:1");
        let j = Journal::open(&path).unwrap();
        let img = |at: &str| Record::Image {
            bundle: "b".into(),
            reference: "docker.io/library/x:1".into(),
            target: "p/docker.io/library/x:1".into(),
            digest: d('e'),
            at: at.into(),
        };
        j.append(Record::Failed {
            bundle: "b".into(),
            reference: "docker.io/library/x:1".into(),
            target: "p/docker.io/library/x:1".into(),
            error: "boom".into(),
            at: "t0".into(),
        })
        .unwrap();
        for i in 0..1500 {
            j.append(img(&format!("t{i}"))).unwrap();
        }
        let before = j.snapshot();
        assert!(before.failed.is_empty());
        drop(j);
        let j = Journal::open(&path).unwrap();
        let (records, _) = read_records(&path).unwrap();
        assert_eq!(records.len(), 1, "compacted");
        assert_eq!(j.state().images, before.images);
    }

    #[test]
    fn loaded_images_keeps_only_what_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let d = Digest::of(b"m");
        let image = |target: &str| Record::Image {
            bundle: "b".into(),
            reference: format!("docker.io/{target}"),
            target: target.into(),
            digest: d.clone(),
            at: "t".into(),
        };
        let mut text = String::new();
        for r in [
            image("a:1"),
            Record::Blob { repo: "a".into(), digest: d.clone() },
            image("b:1"),
            Record::Failed {
                bundle: "b".into(),
                reference: "x".into(),
                target: "b:1".into(),
                error: "e".into(),
                at: "t".into(),
            },
            image("c:1"),
        ] {
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        text.push_str("not json\n");
        text.push_str(&serde_json::to_string(&image("torn:1")).unwrap()); // no newline: torn
        std::fs::write(&path, text).unwrap();
        let got = loaded_images(&path).unwrap();
        let mut targets: Vec<_> = got.keys().cloned().collect();
        targets.sort();
        assert_eq!(targets, ["a:1", "c:1"]);
        assert_eq!(got["a:1"], ("docker.io/a:1".to_owned(), d));
        assert!(loaded_images(&dir.path().join("none")).unwrap().is_empty());
    }
}
