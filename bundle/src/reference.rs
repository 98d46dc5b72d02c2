//! Image references, normalized the way docker does, and the one function that
//! maps a source reference to its place in the site's Harbor.
//!
//! The mapping lives here, in the crate both the agent (which pushes) and the
//! renderer (which writes mirror configuration) depend on, so the two can never
//! disagree about where an image went.

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference;

/// A fully normalized image reference: `nginx` becomes `docker.io/library/nginx:latest`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    normalized: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("`{reference}` is not a valid image reference: {reason}")]
pub struct BadReference {
    pub reference: String,
    pub reason: String,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, BadReference> {
        let bad = |reason: String| BadReference { reference: s.to_owned(), reason };
        if s.trim() != s || s.is_empty() {
            return Err(bad("empty, or surrounded by white space".into()));
        }
        let r: Reference = s.parse().map_err(|e| bad(format!("{e}")))?;
        if let Some(d) = r.digest() {
            d.parse::<crate::Digest>().map_err(|e| bad(e.to_string()))?;
        }
        let registry = r.resolve_registry().to_owned();
        let registry = if registry == "index.docker.io" { "docker.io".to_owned() } else { registry };
        let repository = r.repository().to_owned();
        // docker refuses upper case in repository paths; so do registries.
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository names must be lower case".into()));
        }
        let tag = r.tag().map(str::to_owned);
        let digest = r.digest().map(str::to_owned);
        // docker's rule: no tag and no digest means `latest`.
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        let mut normalized = format!("{registry}/{repository}");
        if let Some(t) = &tag {
            normalized.push(':');
            normalized.push_str(t);
        }
        if let Some(d) = &digest {
            normalized.push('@');
            normalized.push_str(d);
        }
        Ok(ImageRef { normalized, registry, repository, tag, digest })
    }

    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// Repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
    pub fn as_str(&self) -> &str {
        &self.normalized
    }
    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
    /// The same image pinned to `digest` (the tag is kept for readability).
    pub fn pinned(&self, digest: &crate::Digest) -> ImageRef {
        let mut r = self.clone();
        r.digest = Some(digest.to_string());
        r.normalized =
            format!("{}{}@{}", self.name(), self.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default(), digest);
        r
    }
}

impl FromStr for ImageRef {
    type Err = BadReference;
    fn from_str(s: &str) -> Result<Self, BadReference> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({})", self.normalized)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.normalized)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a source image lives in the site registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// `spectro-images/docker.io/library/nginx`
    pub repository: String,
    /// The tag to push last, if the source reference had one.
    pub tag: Option<String>,
}

/// The path prefix of every image mirrored from `registry` inside `project`:
/// `spectro-images/docker.io`, or `spectro-images/127.0.0.1_5000` (a `:` is not
/// allowed in a repository path component, so it becomes `_`).
pub fn harbor_prefix(project: &str, registry: &str) -> String {
    // Host names are case-insensitive; repository paths must be lower case.
    format!("{project}/{}", registry.to_ascii_lowercase().replace(':', "_"))
}

/// Map a source reference to its repository in the site Harbor, as Palette
/// documents it: `<project>/<source host>/<source path>`, keeping the tag.
pub fn harbor_target(project: &str, source: &ImageRef) -> TargetRef {
    TargetRef {
        repository: format!("{}/{}", harbor_prefix(project, source.registry()), source.repository()),
        tag: source.tag().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        for (input, want) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"),
            ("bitnami/redis", "docker.io/bitnami/redis:latest"),
            (
                "gcr.io/spectro-images-public/kube-vip/kube-vip:v0.6.3",
                "gcr.io/spectro-images-public/kube-vip/kube-vip:v0.6.3",
            ),
            ("localhost/app", "localhost/app:latest"),
            ("127.0.0.1:5000/team/app:2", "127.0.0.1:5000/team/app:2"),
        ] {
            assert_eq!(ImageRef::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn digest_only_reference_has_no_tag() {
        let r = ImageRef::parse(&format!("127.0.0.1:5000/team/app@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.as_str(), format!("127.0.0.1:5000/team/app@{D}"));
    }

    #[test]
    fn rejects_garbage_naming_it() {
        for bad in ["", " nginx", "UPPER/case", "nginx@sha256:short", "a//b"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn harbor_mapping_matches_palette() {
        let t = harbor_target("spectro-images", &"docker.io/library/nginx:1.25".parse().unwrap());
        assert_eq!(t.repository, "spectro-images/docker.io/library/nginx");
        assert_eq!(t.tag.as_deref(), Some("1.25"));
        let t = harbor_target("spectro-images", &format!("127.0.0.1:5000/team/app@{D}").parse().unwrap());
        assert_eq!(t.repository, "spectro-images/127.0.0.1_5000/team/app");
        assert_eq!(t.tag, None);
    }
}
