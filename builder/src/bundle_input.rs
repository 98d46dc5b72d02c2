//! Where the bundle of `overlay`, `iso` and `build` comes from: a bundle
//! given on the command line, or one built from the spec on the way (with
//! the same defaults as `edgeiso bundle create`).

use std::path::{Path, PathBuf};

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
                let b = edgeiso_bundle::Bundle::open(p).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
                // The ISO's agent pushes every blob off the disc and cannot
                // fetch a left-out one (yet): a partial bundle is refused.
                b.require_whole().map_err(|e| {
                    with_code(
                        exit::INVALID_INPUT,
                        anyhow::anyhow!(
                            "--bundle {e}; the ISO's agent cannot fetch the blobs it leaves out yet: give a whole \
                             bundle (bundle create without --thin or --base)"
                        ),
                    )
                })?;
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
