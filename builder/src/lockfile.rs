//! `edgeiso.lock`: every reference of a spec pinned to the digest the registry
//! served when it was resolved, so `--locked` rebuilds the same bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgeiso_bundle::Digest;
use serde::{Deserialize, Serialize};

pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    /// Normalized reference -> digest of the manifest or index it resolved to.
    pub images: BTreeMap<String, Digest>,
}

/// `edgeiso.lock` beside the spec.
pub fn path_for(spec: &Path) -> PathBuf {
    spec.with_file_name("edgeiso.lock")
}

pub fn read(path: &Path) -> anyhow::Result<Option<LockFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    };
    let lock: LockFile = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    if lock.version != LOCK_VERSION {
        anyhow::bail!("{}: lock version {} (this edgeiso writes version {LOCK_VERSION})", path.display(), lock.version);
    }
    Ok(Some(lock))
}

/// Write through a temp name and rename; untouched when nothing changed.
pub fn write(path: &Path, lock: &LockFile) -> anyhow::Result<bool> {
    if read(path).ok().flatten().as_ref() == Some(lock) {
        return Ok(false);
    }
    let mut text = serde_json::to_string_pretty(lock)?;
    text.push('\n');
    edgeiso_contract::fs::write_atomic(path, text.as_bytes(), edgeiso_contract::fs::FileMode::Public)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(true)
}
