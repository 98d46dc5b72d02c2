//! Loading a spec: read, parse into the raw forms, validate; and the
//! secret files and host names the model resolves.

use std::path::{Path, PathBuf};

use super::diagnostics::parse_yaml;
use super::raw::RawSpec;
use super::validate::Validator;
use super::{ImageSpec, RegistryKind, RegistrySpec, Spec};
use crate::error::SpecError;

impl Spec {
    /// Read and validate the spec at `path`.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            what: "site spec",
            path: path.to_owned(),
            source,
        })?;
        Spec::from_str(&text, path)
    }

    /// Parse `text` as if read from `path` (which names the file in errors and
    /// anchors relative paths).
    #[allow(clippy::should_implement_trait)] // needs the path; FromStr cannot carry it
    pub fn from_str(text: &str, path: &Path) -> Result<Spec, SpecError> {
        Spec::from_str_remapped(text, path, None)
    }

    /// Like [`Spec::from_str`], with the files the spec names found where
    /// `remap` says (path as written -> path now) instead of where written.
    pub fn from_str_remapped(
        text: &str,
        path: &Path,
        remap: Option<&std::collections::BTreeMap<String, PathBuf>>,
    ) -> Result<Spec, SpecError> {
        let raw: RawSpec = parse_yaml(text, path)?;
        Validator { file: path, base: base_dir(path), remap, inputs: Default::default(), fragment: false }.spec(raw)
    }

    /// A site file's fragment, checked as a spec of its own but for what
    /// depends on the golden's keys (see `site_file`).
    pub(crate) fn from_str_fragment(text: &str, path: &Path) -> Result<Spec, SpecError> {
        let raw: RawSpec = parse_yaml(text, path)?;
        Validator { file: path, base: base_dir(path), remap: None, inputs: Default::default(), fragment: true }
            .spec(raw)
    }

    /// The `registries[]` entry for `host` (`index.docker.io` finds `docker.io`).
    pub fn registry(&self, host: &str) -> Option<&RegistrySpec> {
        let want = canonical_host(host);
        self.registries.iter().find(|r| canonical_host(&r.host) == want)
    }

    /// Every image of the bundle: workload images first, then bootstrap ones.
    pub fn all_images(&self) -> impl Iterator<Item = &ImageSpec> {
        self.images.iter().chain(&self.bootstrap_images)
    }
}

impl RegistrySpec {
    /// The password from `passwordFile` (trailing newline dropped) or
    /// `passwordEnv`; `None` when the entry gives neither. Errors name the
    /// file or variable, never the content.
    pub fn read_password(&self) -> Result<Option<String>, SpecError> {
        if let Some(path) = &self.password_file {
            return read_secret_file(path, "password file").map(Some);
        }
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                _ => Err(SpecError::Invalid {
                    file: self.source_path.clone(),
                    pos: self.pos,
                    message: format!("environment variable {var} (passwordEnv of registry {}) is not set", self.host),
                }),
            };
        }
        Ok(None)
    }

    /// The `url` of this registry's Palette credential Secret: the bare host
    /// for an image registry, scheme + host for a Helm repository.
    pub fn secret_url(&self) -> String {
        match self.kind {
            RegistryKind::Image => self.host.clone(),
            RegistryKind::Helm => {
                let scheme = self.scheme.clone().unwrap_or_else(|| if self.insecure { "http" } else { "https" }.into());
                format!("{scheme}://{}", self.host)
            }
        }
    }
}

/// Read a secret file by the one rule for them
/// (`edgeiso_contract::fs::read_secret_file`: one line of a small regular
/// file). The content never appears in an error.
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<String, SpecError> {
    use edgeiso_contract::fs::SecretFileError;
    edgeiso_contract::fs::read_secret_file(path, what).map_err(|e| match e {
        SecretFileError::Open { source, .. } => SpecError::Read { what, path: path.to_owned(), source },
        SecretFileError::Refused { why, .. } => SpecError::invalid(path, None, format!("the {what} {why}")),
    })
}

pub(crate) use edgeiso_contract::registry_url::canonical_host;

pub(super) fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
