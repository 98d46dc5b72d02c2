//! The blob cache: content-addressed files that survive between runs, so a
//! rebuild after one image changed downloads only the new blobs, and a run
//! cut short resumes without downloading finished blobs again.
//!
//! A blob enters the cache only by rename after its digest was verified, so
//! anything under its final name is whole (a power cut leaves only
//! `*.partial` files, which are ignored and overwritten).

use std::path::{Path, PathBuf};

use edgeiso_bundle::Digest;

pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub fn open(dir: Option<PathBuf>) -> anyhow::Result<BlobCache> {
        let dir = match dir {
            Some(d) => d,
            None => default_dir()?,
        };
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| anyhow::anyhow!("cache folder {}: {e}", blobs.display()))?;
        sweep_stale_temps(&blobs);
        Ok(BlobCache { dir })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// Whether `digest` is cached with the expected size. A wrong size (a
    /// file someone else put there) counts as absent and is fetched again.
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        std::fs::metadata(self.path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Where to download `digest` before it is verified.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(format!("{}.{}.partial", digest.hex(), std::process::id()))
    }

    /// Move a verified download to its final name.
    pub fn commit(&self, partial: &Path, digest: &Digest) -> std::io::Result<()> {
        std::fs::rename(partial, self.path(digest))
    }
}

fn default_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("edgeiso"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow::anyhow!("neither XDG_CACHE_HOME nor HOME is set: pass --cache"))?;
    Ok(PathBuf::from(home).join(".cache/edgeiso"))
}

/// Remove temp files (`*.partial`, `.*.tmp`) that a killed run left behind:
/// their names carry the writer's pid; a pid that no longer runs is stale.
pub fn sweep_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = if let Some(rest) = name.strip_suffix(".partial") {
            rest.rsplit('.').next()
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            name.trim_end_matches(".tmp").rsplit('.').next()
        } else {
            None
        };
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
