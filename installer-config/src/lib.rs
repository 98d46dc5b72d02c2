//! The site spec (`site.yaml`) and everything rendered from it for an
//! air-gapped edge site: user-data, Harbor manifests, registry credential
//! Secrets, node mirrors, the agent's config, and the lint checks run before
//! an ISO is burned. See `docs/spec.md` and `docs/render.md`.

pub mod auth;
pub mod error;
pub mod lint;
pub mod profile_harbor;
pub mod render;
pub mod site_file;
pub mod spec;
pub mod stylus_schema;
pub mod suggest;
pub mod yaml;

pub use error::{Pos, SpecError};
pub use lint::{check_site, fix_profile, lint_profile, FixReport, LintReport};
pub use render::{
    agent::agent_config, harbor_images, render, RenderError, RenderOptions, RenderReport, MAX_USER_DATA_BYTES,
};
pub use spec::{
    AgentSpec, Distribution, HarborDeployment, HarborSpec, HarborStorage, ImageSpec, InstallSpec, Platforms,
    RegistryKind, RegistrySpec, SecretSpec, SiteSpec, Size, Spec, TlsSpec, UserSpec,
};
