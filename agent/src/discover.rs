//! Finding the bundles to load: given files (a tar or its `.part000`), or
//! folders searched a few levels deep (the live ISO mount and the content
//! folder by default). A folder's stray tar that is not a bundle is skipped;
//! a bundle that is damaged (missing or truncated part) is an error, because
//! loading half of a site's images silently is worse than stopping.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use edgeiso_bundle::{Bundle, BundleError};
use tracing::{debug, info};

use crate::AgentError;

/// How deep a folder is searched: the ISO puts bundles at
/// `/run/initramfs/live/opt/spectrocloud/content/content-NAME.tar`.
const MAX_DEPTH: usize = 5;

fn is_candidate(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".tar") || name.ends_with(".tar.part000")
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&p, depth + 1, out);
            }
        } else if meta.is_file() {
            if is_candidate(&p) {
                out.push(p);
            }
        } else if meta.is_symlink() && is_candidate(&p) {
            // A symlinked bundle is followed (to where its parts are); a
            // symlinked folder is not entered, so the search does not wander
            // into the live system's own mounts or loop.
            if let Ok(real) = std::fs::canonicalize(&p) {
                if real.is_file() {
                    out.push(real);
                }
            }
        }
    }
}

/// Open every bundle at `paths` (or the default search places), once each.
pub fn find_bundles(paths: &[PathBuf], defaults: &[&str]) -> Result<Vec<Bundle>, AgentError> {
    let explicit = !paths.is_empty();
    let roots: Vec<PathBuf> = if explicit { paths.to_vec() } else { defaults.iter().map(PathBuf::from).collect() };
    let mut bundles = Vec::new();
    let mut seen = BTreeSet::new();
    for root in &roots {
        if root.is_dir() {
            let mut candidates = Vec::new();
            walk(root, 0, &mut candidates);
            let before = bundles.len();
            for c in candidates {
                match Bundle::open(&c) {
                    Ok(b) => {
                        if seen.insert(b.paths[0].clone()) {
                            bundles.push(b);
                        }
                    }
                    Err(BundleError::NotABundle { path, reason }) => {
                        debug!(path = %path.display(), reason, "not a bundle; skipped")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if explicit && bundles.len() == before {
                return Err(AgentError::NoBundle(root.display().to_string()));
            }
        } else if explicit {
            let b = Bundle::open(root)?;
            if seen.insert(b.paths[0].clone()) {
                bundles.push(b);
            }
        }
    }
    if bundles.is_empty() {
        let searched: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(AgentError::NoBundle(searched.join(", ")));
    }
    for b in &bundles {
        info!(bundle = %b.path().display(), name = %b.meta.name, parts = b.paths.len(), images = b.meta.images.len(), "found bundle");
    }
    Ok(bundles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_bundles_are_followed_symlinked_folders_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(root.join("sub/plain.tar"), b"x").unwrap();
        std::fs::write(elsewhere.join("real.tar.part000"), b"x").unwrap();
        std::fs::write(elsewhere.join("inner.tar"), b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("real.tar.part000"), root.join("linked.tar.part000")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("linked-dir")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere.tar"), root.join("dangling.tar")).unwrap();
        let mut found = Vec::new();
        walk(&root, 0, &mut found);
        let real = std::fs::canonicalize(elsewhere.join("real.tar.part000")).unwrap();
        assert_eq!(found, vec![real, root.join("sub/plain.tar")]);
    }
}
