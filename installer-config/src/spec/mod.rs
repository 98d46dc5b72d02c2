//! The site spec: one YAML file that describes a site. See `docs/spec.md`.
//!
//! Parsing is two steps: serde-saphyr reads the text into private `Raw*`
//! structs (`raw`) that keep the line and column of the values worth pointing
//! at, then `validate` turns them into the public types (`model`), resolving
//! relative paths against the spec file's folder and refusing anything that
//! would only fail later (on the build host, or worse, on the node).
//! `diagnostics` words the errors; `keys` lists every key the parser takes.

mod checks;
mod diagnostics;
mod harbor_cert;
mod keys;
mod load;
mod model;
mod raw;
pub mod snapshot;
pub mod user_data;
mod validate;

pub use checks::{check_dns_label, check_dns_subdomain};
pub(crate) use diagnostics::yaml_error_quiet;
pub(crate) use harbor_cert::MAX_PEM_BYTES;
pub use keys::known_keys;
pub(crate) use load::canonical_host;
pub use load::read_secret_file;
pub use model::*;
