//! The `edgeiso` command line as a library: each step of the pipeline
//! (bundle create and import, render, overlay tree, ISO, boot test) is a
//! function over an options struct, and `cli` turns flags into those options.
//! The binary (`main.rs`) only parses and dispatches.
//!
//! | module | step |
//! |---|---|
//! | [`create`] (with [`source`], [`cache`], [`lockfile`]) | `bundle create`: resolve, lock, pull, write |
//! | [`import`] | `bundle import`: existing airgap artifacts into a bundle |
//! | [`bundle_check`] | `bundle verify`, `bundle inspect` |
//! | [`bundle_input`] | the bundle of a later step: given, or built on the way |
//! | [`render_site`] | `render` (to a folder), `lint` |
//! | [`render_inputs`] | what render learns from the site's bundle (size; a thin bundle's source hosts) |
//! | [`overlay_tree`] | `overlay`: render + `edgeiso_overlay::tree` |
//! | [`iso_build`] | `iso`, `build`: overlay + remaster + read-back |
//! | [`personalize`] | `personalize`: one golden ISO, a site's settings in its site area |
//! | [`site_iso`] | `site-iso`: the `cidata` ISO |
//! | [`boot_test`] | `boot-test`: QEMU + registry check |
//! | [`check`] | `check`: a site's Harbor holds the bundle's images |
//! | [`registry_check`] | what a registry must hold for a bundle, and the check (boot-test, check) |
//! | [`ui`], [`exit`], [`work`] | output for people and pipelines, exit codes, work folders |

pub mod boot_test;
pub mod bundle_check;
pub mod bundle_input;
pub mod bundle_sign;
pub mod cache;
pub mod check;
pub mod cli;
pub mod create;
pub mod exit;
pub mod import;
pub mod iso_build;
pub mod lockfile;
pub mod output_lock;
pub mod overlay_tree;
pub mod personalize;
pub mod registry_check;
pub mod render_inputs;
pub mod render_site;
pub mod site_iso;
pub mod source;
pub mod ui;
pub mod work;
