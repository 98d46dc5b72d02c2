//! What render learns from the site's bundle (`render --bundle`, and the
//! bundle of `overlay`/`iso`/`build`): the bytes Harbor's storage must hold,
//! and, for a thin bundle, the upstream hosts the agent fetches the left-out
//! blobs from (they become `agent.yaml`'s `sources:`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use edgeiso_bundle::{Bundle, Partial, Role};
use edgeiso_installer_config::RenderOptions;

use crate::exit::{self, with_code};

/// Render's options for the bundle at `path`. A thin bundle that leaves out
/// a bootstrap image's blobs is refused: nodes import bootstrap images from
/// the bundle at boot, before any registry runs, so nothing could fetch them.
pub fn render_options(path: &Path) -> anyhow::Result<RenderOptions> {
    let invalid = |e: edgeiso_bundle::BundleError| with_code(exit::INVALID_INPUT, e);
    let bundle = Bundle::open(path).map_err(invalid)?;
    let mut left_out = BTreeMap::new();
    let mut fetch_from = BTreeSet::new();
    let mut unfetchable = Vec::new();
    // One walk per image (a partial bundle's absent blobs are only known by
    // walking): the bytes left out and, per image, whether it is fetched.
    if bundle.partial().is_some() {
        for img in &bundle.meta.images {
            let absent = bundle.image_graph(img).map_err(invalid)?.absent;
            if absent.is_empty() {
                continue;
            }
            left_out.extend(absent.iter().map(|d| (d.digest.clone(), d.size)));
            if matches!(bundle.partial(), Some(Partial::Thin)) {
                match img.role {
                    Role::Workload => {
                        fetch_from.insert(img.reference.registry().to_owned());
                    }
                    Role::Bootstrap => unfetchable.push(img.reference.to_string()),
                }
            }
        }
    }
    if !unfetchable.is_empty() {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!(
                "{}: a thin bundle leaves out the blobs of bootstrap image(s) {}, which nodes import from the bundle \
                 at boot, before any registry runs (never fetched): give a whole bundle (bundle create without --thin)",
                bundle.path().display(),
                unfetchable.join(", ")
            ),
        ));
    }
    Ok(RenderOptions { bundle_bytes: Some(bundle.unique_blob_bytes() + left_out.values().sum::<u64>()), fetch_from })
}
