//! The site spec (`site.yaml`) and everything rendered from it for an
//! air-gapped edge site. See `docs/spec.md`.

pub mod auth;
pub mod error;
pub mod spec;
pub mod suggest;

pub use error::{Pos, SpecError};
pub use spec::{
    Distribution, HarborDeployment, HarborSpec, HarborStorage, HarborUrl, ImageSpec, InstallSpec, Platforms,
    RegistryKind, RegistrySpec, SecretSpec, SiteSpec, Size, Spec, TlsSpec, UserSpec,
};
