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
        // Do not wander into the live system's own squashfs mounts or loops.
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(&p, depth + 1, out);
        } else if meta.is_file() && is_candidate(&p) {
            out.push(p);
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
