use std::path::{Path, PathBuf};

use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no bundle at {0}")]
    NotFound(PathBuf),
    #[error("bundle part {0} is missing (the parts after it are present)")]
    MissingPart(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle part {path} is {size} bytes, the other parts {expected}: it was cut short or does not belong")]
    PartCutShort { path: PathBuf, size: u64, expected: u64 },
    #[error("bundle ends early: part {0} is missing (or the last part was cut short)")]
    NextPartMissing(PathBuf),
    /// A name in the bundle has a control character ([`crate::names`]).
    #[error("{path}: refused: {name}")]
    UnprintableName { path: PathBuf, name: crate::names::UnprintableName },
    #[error("{path} is not an edgeiso bundle: {reason}")]
    NotABundle { path: PathBuf, reason: String },
    #[error("{path} is truncated: member {member} needs {needed} bytes, only {available} remain (a part may be missing or cut short)")]
    Truncated { path: PathBuf, member: String, needed: u64, available: u64 },
    #[error("{path}: member {member} listed in bundle.json is missing (a part may be missing or cut short)")]
    MissingMember { path: PathBuf, member: String },
    #[error("image {image}: {what} {digest}")]
    Graph { image: String, digest: Digest, what: String },
    #[error("blob {digest} read from {origin} does not match its digest (got {actual}, {bytes} bytes)")]
    SourceMismatch { origin: String, digest: Digest, actual: Digest, bytes: u64 },
    /// A thin or delta bundle where only a whole one will do.
    #[error("{path} is a partial bundle, {partial}: only a whole bundle can be used here")]
    Partial { path: PathBuf, partial: crate::format::Partial },
    /// A delta checked against a base that is not the one it was made on.
    #[error(
        "{delta} was made on base bundle {} whose bundle.json has sha256 {}; {base}'s bundle.json has \
         sha256 {actual}: not that base", .recorded.name, .recorded.bundle_json_sha256
    )]
    BaseMismatch { delta: PathBuf, base: PathBuf, recorded: Box<crate::BaseBundle>, actual: Digest },
    /// A base given for a bundle that is not a delta.
    #[error("{path} is not a delta bundle ({what}): it has no base to check")]
    NotADelta { path: PathBuf, what: String },
    #[error("blob {digest} of image {image} does not match its digest (got {actual})")]
    DigestMismatch { image: String, digest: Digest, actual: Digest },
}

impl BundleError {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> BundleError {
        BundleError::Io { path: path.as_ref().to_path_buf(), source }
    }
}
