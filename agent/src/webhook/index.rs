//! What the site's Harbor holds, as the webhook needs it: for each image
//! name (`docker.io/library/nginx`), the tags and digests the load journal
//! says the agent pushed, and the rule that turns a pod's image reference
//! into its Harbor reference (`harbor_target`, the mapping the agent pushes
//! with). Bootstrap images (Harbor's own, the CNI) are never rewritten:
//! Harbor cannot serve its own start.

use std::collections::HashSet;

use edgeiso_bundle::{harbor_target, ImageRef};

/// One image the journal says is in Harbor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The source reference, normalized (`docker.io/library/nginx:1.25`).
    pub reference: ImageRef,
    /// Digest of the manifest or index pushed for it.
    pub digest: String,
}

#[derive(Debug, Default)]
pub struct KnownImages {
    /// Harbor's `host:port`, lower case, as pods will name it.
    harbor: String,
    project: String,
    /// `name:tag` and `name@digest` of every held image: one flat set keeps
    /// thousands of images in a few hundred KiB.
    held: HashSet<Box<str>>,
    images: usize,
}

fn by_tag(name: &str, tag: &str) -> String {
    format!("{name}:{tag}")
}

fn by_digest(name: &str, digest: &str) -> String {
    format!("{name}@{digest}")
}

impl KnownImages {
    /// `loaded` minus every image whose name a bundle marks bootstrap.
    pub fn new(
        harbor_authority: &str,
        project: &str,
        loaded: impl IntoIterator<Item = LoadedImage>,
        bootstrap_names: &HashSet<String>,
    ) -> KnownImages {
        let mut held = HashSet::new();
        let mut images = 0;
        for img in loaded {
            let name = img.reference.name();
            if bootstrap_names.contains(&name) {
                continue;
            }
            images += 1;
            if let Some(t) = img.reference.tag() {
                held.insert(by_tag(&name, t).into_boxed_str());
            }
            if let Some(d) = img.reference.digest() {
                held.insert(by_digest(&name, d).into_boxed_str());
            }
            held.insert(by_digest(&name, &img.digest).into_boxed_str());
        }
        held.shrink_to_fit();
        KnownImages { harbor: harbor_authority.to_ascii_lowercase(), project: project.to_owned(), held, images }
    }

    /// How many loaded images are known.
    pub fn len(&self) -> usize {
        self.images
    }

    pub fn is_empty(&self) -> bool {
        self.images == 0
    }

    /// The Harbor reference for a pod's `image`, or `None` to leave it:
    /// not a reference, already Harbor's, or not held (a digest must be one
    /// Harbor has; without one, the tag must be). Tag and digest are kept
    /// as the pod wrote them (normalized: no tag and no digest is `latest`).
    pub fn rewrite(&self, image: &str) -> Option<String> {
        let r = ImageRef::parse(image).ok()?;
        if r.registry().eq_ignore_ascii_case(&self.harbor) {
            return None;
        }
        let key = match (r.digest(), r.tag()) {
            (Some(d), _) => by_digest(&r.name(), d),
            (None, Some(t)) => by_tag(&r.name(), t),
            (None, None) => return None,
        };
        if !self.held.contains(key.as_str()) {
            return None;
        }
        let mut out = format!("{}/{}", self.harbor, harbor_target(&self.project, &r).repository);
        if let Some(t) = r.tag() {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = r.digest() {
            out.push('@');
            out.push_str(d);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn loaded(r: &str, d: &str) -> LoadedImage {
        LoadedImage { reference: r.parse().unwrap(), digest: d.into() }
    }

    fn known() -> KnownImages {
        let bootstrap: HashSet<String> = ["docker.io/calico/node".to_owned()].into();
        KnownImages::new(
            "10.0.0.5:30003",
            "spectro-images",
            [
                loaded("docker.io/library/nginx:1.25", D1),
                loaded("gcr.io/team/app", D2),
                loaded("docker.io/calico/node:v3.27.0", D1),
            ],
            &bootstrap,
        )
    }

    #[test]
    fn held_images_go_to_their_harbor_path_keeping_tag_and_digest() {
        let k = known();
        assert_eq!(k.rewrite("nginx:1.25").unwrap(), "10.0.0.5:30003/spectro-images/docker.io/library/nginx:1.25");
        assert_eq!(
            k.rewrite(&format!("nginx:1.25@{D1}")).unwrap(),
            format!("10.0.0.5:30003/spectro-images/docker.io/library/nginx:1.25@{D1}")
        );
        assert_eq!(
            k.rewrite(&format!("docker.io/library/nginx@{D1}")).unwrap(),
            format!("10.0.0.5:30003/spectro-images/docker.io/library/nginx@{D1}")
        );
        // gcr.io/team/app was loaded as :latest with digest D2.
        assert_eq!(k.rewrite("gcr.io/team/app").unwrap(), "10.0.0.5:30003/spectro-images/gcr.io/team/app:latest");
    }

    #[test]
    fn what_harbor_does_not_hold_is_left_alone() {
        let k = known();
        for image in [
            "nginx:1.26".to_owned(),          // another tag
            format!("nginx@{D2}"),            // another digest
            "redis:7".to_owned(),             // another image
            "calico/node:v3.27.0".to_owned(), // bootstrap: never
            "NOT a reference".to_owned(),     // garbage
            "".to_owned(),
            "10.0.0.5:30003/spectro-images/docker.io/library/nginx:1.25".to_owned(), // already Harbor's
            "10.0.0.5:30003/x/y:1".to_owned(),
        ] {
            assert_eq!(k.rewrite(&image), None, "{image}");
        }
    }

    #[test]
    fn a_rewrite_is_not_rewritten_again() {
        let k = known();
        let once = k.rewrite("nginx:1.25").unwrap();
        assert_eq!(k.rewrite(&once), None);
    }
}
