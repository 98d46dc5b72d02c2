//! `--trust` (`trust:` in agent.yaml): every bundle must carry a signature
//! by the site's key over its `bundle.json` (decision 0015), checked for
//! all bundles before the registry is even asked, so a refused bundle
//! pushes nothing. `bundle.json` pins the sha256 of every other member and
//! the load checks every byte it reads against those digests: the
//! signature over it covers what is pushed.

use std::path::Path;

use edgeiso_bundle::signature::VerifyingKey;
use edgeiso_bundle::Bundle;
use tracing::info;

use crate::AgentError;

/// Read the trusted public key; one that cannot be used is a bad setting (exit 2).
pub fn read_key(path: &Path) -> Result<VerifyingKey, AgentError> {
    VerifyingKey::read(path).map_err(|e| AgentError::Usage(format!("--trust: {e}")))
}

/// Check every bundle's signature against `key`: the first one refused
/// ends the run (exit 9), named with why.
pub fn check_all(key: &VerifyingKey, bundles: &[Bundle]) -> Result<(), AgentError> {
    for bundle in bundles {
        // The bytes the load parsed its image list from: what is verified is
        // what is used.
        key.verify_bundle(bundle.path(), &bundle.meta_bytes)
            .map_err(|e| AgentError::Untrusted { bundle: bundle.path().to_owned(), reason: e.to_string() })?;
        info!(bundle = %bundle.path().display(), key = %key.path().display(), "bundle signature verified");
    }
    Ok(())
}
