//! Where the bundle of `overlay`, `iso` and `build` comes from: a bundle
//! given on the command line, or one built from the spec on the way (with
//! the same defaults as `edgeiso bundle create`).

use std::path::{Path, PathBuf};

use edgeiso_bundle::{Bundle, Partial};
use edgeiso_installer_config::spec::Spec;

use crate::create::{create_bundle, CreateOptions, OutputOptions};
use crate::exit::{self, with_code};
use crate::ui::Ui;

#[derive(Debug, Clone)]
pub enum BundleInput {
    /// A tar, its first part, or the tar name whose parts exist.
    Given(PathBuf),
    /// Built from the spec into the step's work folder.
    /// With `sign_key`, the bundle is signed as `bundle create --sign-key`
    /// signs it (read before anything is pulled).
    Build {
        locked: bool,
        cache: Option<PathBuf>,
        concurrency: usize,
        sign_key: Option<std::sync::Arc<edgeiso_bundle::signature::SigningKey>>,
    },
}

impl BundleInput {
    pub fn is_given(&self) -> bool {
        matches!(self, BundleInput::Given(_))
    }

    /// The bundle's files: the given bundle's parts, or those of one built
    /// from `spec` into `work/bundle` in parts of `part_size`.
    pub fn obtain(&self, ui: &Ui, spec: &Spec, part_size: u64, work: &Path) -> anyhow::Result<Vec<PathBuf>> {
        match self {
            BundleInput::Given(p) => {
                let b = Bundle::open(p).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
                refuse_delta(&b)?;
                Ok(b.paths)
            }
            BundleInput::Build { locked, cache, concurrency, sign_key } => {
                let dir = work.join("bundle");
                std::fs::create_dir_all(&dir)?;
                let opts = CreateOptions {
                    output: OutputOptions { dir, part_size, zstd: false },
                    locked: *locked,
                    cache: cache.clone(),
                    concurrency: *concurrency,
                    partial: Default::default(),
                };
                let paths = create_bundle(ui, spec, &opts)?.paths;
                crate::bundle_sign::sign_or_clear(ui, &paths[0], sign_key.as_deref())?;
                Ok(paths)
            }
        }
    }
}

/// A fresh install takes a whole bundle or a thin one (its manifests go on
/// the ISO; the node's agent fetches the config and layer blobs from the
/// source registries, see `crate::render_inputs`). A delta is refused: its
/// left-out blobs are in a base bundle, and a freshly installed node has
/// none loaded.
fn refuse_delta(b: &Bundle) -> anyhow::Result<()> {
    match b.partial() {
        None | Some(Partial::Thin) => Ok(()),
        Some(Partial::Delta { base }) => Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!(
                "--bundle {}: a delta bundle (on base {}) leaves out the blobs its base holds, and a fresh install has \
                 no base loaded; a delta updates a running site (on a courier stick, or `edgeiso-agent load` on a \
                 node): for an ISO give the whole bundle, or a thin one (bundle create --thin)",
                b.path().display(),
                base.name
            ),
        )),
    }
}
