//! Just enough of the OCI and Docker schema-2 manifest formats to walk an image
//! graph: which blobs and child manifests a manifest references, and on which
//! platform. Manifests are never re-serialised: digests are over the original
//! bytes, so these types are read-only views.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Every manifest media type edgeiso can carry, for `Accept` headers.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST];

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST || is_index(media_type)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn id(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The platform an image config declares (`os`, `architecture`,
    /// `variant`), or `None` when it is not a config that says.
    pub fn of_config(config: &[u8]) -> Option<Platform> {
        #[derive(Deserialize)]
        struct Config {
            os: Option<String>,
            architecture: Option<String>,
            variant: Option<String>,
        }
        let c: Config = serde_json::from_slice(config).ok()?;
        Some(Platform { os: c.os?, architecture: c.architecture?, variant: c.variant })
    }

    /// Whether this platform is what a user means by `wanted` (`linux/arm64`
    /// matches `linux/arm64/v8`; a variant in `wanted` must match exactly).
    pub fn matches(&self, wanted: &str) -> bool {
        let mut it = wanted.split('/');
        let (os, arch, variant) = (it.next(), it.next(), it.next());
        Some(self.os.as_str()) == os
            && Some(self.architecture.as_str()) == arch
            && (variant.is_none() || variant == self.variant.as_deref())
    }
}

/// The fields of a manifest or index that name other content.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported manifest: {0}")]
    Unsupported(String),
}

impl ManifestView {
    pub fn parse(bytes: &[u8]) -> Result<ManifestView, ManifestError> {
        let v: ManifestView = serde_json::from_slice(bytes)?;
        if v.schema_version != Some(2) {
            return Err(ManifestError::Unsupported(format!(
                "schemaVersion {:?} (only schema 2 manifests and indexes are supported)",
                v.schema_version
            )));
        }
        Ok(v)
    }

    /// The media type a registry would serve this with: the declared one, or
    /// inferred for OCI documents that leave it out.
    pub fn effective_media_type(&self, served_as: Option<&str>) -> String {
        if let Some(m) = served_as.filter(|m| is_manifest(m)) {
            return m.to_owned();
        }
        match &self.media_type {
            Some(m) => m.clone(),
            None if !self.manifests.is_empty() => OCI_INDEX.to_owned(),
            None => OCI_MANIFEST.to_owned(),
        }
    }

    pub fn is_index(&self) -> bool {
        self.media_type.as_deref().is_some_and(is_index) || (self.config.is_none() && !self.manifests.is_empty())
    }

    /// Blobs (config, layers) an image manifest needs. Empty for an index.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_matching() {
        let p = Platform { architecture: "arm64".into(), os: "linux".into(), variant: Some("v8".into()) };
        assert!(p.matches("linux/arm64"));
        assert!(p.matches("linux/arm64/v8"));
        assert!(!p.matches("linux/arm64/v7"));
        assert!(!p.matches("linux/amd64"));
        assert_eq!(p.id(), "linux/arm64/v8");
    }

    #[test]
    fn platform_of_a_config() {
        let p = Platform::of_config(br#"{"os":"linux","architecture":"arm64","variant":"v8","rootfs":{}}"#).unwrap();
        assert_eq!(p.id(), "linux/arm64/v8");
        assert!(p.matches("linux/arm64"));
        assert!(Platform::of_config(br#"{"architecture":"amd64"}"#).is_none(), "no os: not a platform");
        assert!(Platform::of_config(b"not json").is_none());
    }

    #[test]
    fn reads_docker_and_oci_manifests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{d}","size":1}},"layers":[{{"mediaType":"y","digest":"{d}","size":2}}]}}"#
        );
        let v = ManifestView::parse(m.as_bytes()).unwrap();
        assert!(!v.is_index());
        assert_eq!(v.blobs().count(), 2);
        let idx =
            format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":3}}]}}"#);
        let v = ManifestView::parse(idx.as_bytes()).unwrap();
        assert!(v.is_index());
        assert_eq!(v.effective_media_type(None), OCI_INDEX);
        assert!(ManifestView::parse(b"{\"schemaVersion\":1}").is_err());
    }
}
