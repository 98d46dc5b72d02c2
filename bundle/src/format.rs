//! `bundle.json`: the first member of every bundle. It names the bundle, lists
//! its images with their roles, and pins the sha256 of every other member so a
//! bundle can be verified without trusting anything else inside it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Digest, ImageRef};

/// The format version of a whole bundle (every blob inside).
pub const FORMAT_VERSION: u32 = 1;
/// The format version of a partial bundle (thin or delta, [`Partial`]): a
/// reader of version 1 refuses it by its version alone, so it can never be
/// mistaken for a whole one (decision 0016).
pub const FORMAT_VERSION_PARTIAL: u32 = 2;
pub const BUNDLE_JSON: &str = "bundle.json";
pub const OCI_LAYOUT: &str = "oci-layout";
pub const INDEX_JSON: &str = "index.json";
pub const OCI_LAYOUT_CONTENT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";
/// `index.json` annotation naming the image (read by skopeo's oci transports).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `index.json` annotation naming the image for `ctr images import`.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pushed into the site registry by the agent.
    #[default]
    Workload,
    /// Needed before the registry runs (the registry's own images): imported
    /// into containerd at boot, never pushed.
    Bootstrap,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Workload => "workload",
            Role::Bootstrap => "bootstrap",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The normalized reference as written in the spec.
    pub reference: ImageRef,
    /// Digest of the top-level manifest or index stored for this image.
    pub digest: Digest,
    pub media_type: String,
    /// Platforms stored (`linux/amd64`, ...).
    pub platforms: Vec<String>,
    pub role: Role,
    /// Bytes of every manifest and blob this image needs (shared ones counted).
    pub size: u64,
    /// When a platform filter selected one manifest out of a multi-platform
    /// index, the digest the registry served for the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<Digest>,
    /// When the image is a Docker schema-2 manifest or list, the digest of the
    /// small OCI index that `index.json` names instead (skopeo's OCI
    /// transports only select OCI-typed entries). The Docker bytes are still
    /// stored, unchanged, and are what the agent pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleJson {
    pub format_version: u32,
    pub name: String,
    /// RFC 3339, UTC, whole seconds; `SOURCE_DATE_EPOCH` when set.
    pub created: String,
    /// `edgeiso 0.1.0`
    pub tool: String,
    pub images: Vec<ImageRecord>,
    /// sha256 of every member other than `bundle.json`, by member path.
    pub members: BTreeMap<String, Digest>,
    /// Present (with format version 2) when config and layer blobs the
    /// manifests reference are left out: where they are to come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Partial>,
}

impl BundleJson {
    /// The format version a bundle with this `partial` is written with.
    pub fn version_for(partial: Option<&Partial>) -> u32 {
        if partial.is_some() {
            FORMAT_VERSION_PARTIAL
        } else {
            FORMAT_VERSION
        }
    }
}

/// What a partial bundle leaves out. Manifests and indexes are always
/// stored; only config and layer blobs are ever absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Partial {
    /// No config or layer blob: each comes from its image's source registry.
    Thin,
    /// No config or layer blob the base bundle holds: those come from it.
    Delta { base: BaseBundle },
}

/// The bundle a delta was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseBundle {
    /// The base's `bundle.json` name.
    pub name: String,
    /// sha256 of the base's `bundle.json` member, exactly as stored (it pins
    /// every other member of the base, as a signature does).
    pub bundle_json_sha256: Digest,
}

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partial::Thin => f.write_str("thin (its config and layer blobs come from the source registries)"),
            Partial::Delta { base } => write!(
                f,
                "delta on base bundle {} (bundle.json sha256 {}; the blobs it holds are left out)",
                base.name, base.bundle_json_sha256
            ),
        }
    }
}

/// The creation time of a new bundle: `SOURCE_DATE_EPOCH` when set, so that
/// the same inputs give a byte-identical bundle, else now.
pub fn creation_time() -> Result<SystemTime, edgeiso_contract::epoch::EpochError> {
    Ok(match edgeiso_contract::epoch::source_date_epoch()? {
        Some(s) => UNIX_EPOCH + Duration::from_secs(s),
        None => SystemTime::now(),
    })
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn epoch_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
