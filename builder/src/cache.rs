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

    /// A new, locked file to download `digest` into before it is verified.
    pub fn partial(&self, digest: &Digest) -> std::io::Result<(PathBuf, std::fs::File)> {
        edgeiso_contract::fs::create_locked(&self.dir.join("blobs/sha256"), digest.hex(), "partial")
    }

    /// Move a verified download to its final name.
    pub fn commit(&self, partial: &Path, digest: &Digest) -> std::io::Result<()> {
        std::fs::rename(partial, self.path(digest))
    }

    /// Drop a cached blob found damaged, so the next run fetches it again.
    pub fn evict(&self, digest: &Digest) {
        let _ = std::fs::remove_file(self.path(digest));
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

/// Remove temp files (`*.partial`, `.*.tmp`) that a killed run left behind;
/// a temp file whose writer still holds its lock is left alone.
pub fn sweep_stale_temps(dir: &Path) {
    edgeiso_contract::fs::sweep_orphans(dir, |n| {
        n.ends_with(".partial") || (n.starts_with('.') && n.ends_with(".tmp"))
    });
}
