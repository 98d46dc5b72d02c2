//! `manifests/registry-credentials.yaml`: Palette's registry credential
//! Secrets, one per `registries[]` entry with a `secret:`, exactly in the
//! documented shape (kind Secret, type Opaque, base64 `data.url`,
//! `data.username`, `data.password`, the two `spectrocloud.com/*` labels).

use super::{b64, RenderError};
use crate::spec::Spec;
use crate::yaml::{Map, Value};

pub fn secrets(spec: &Spec) -> Result<Vec<Value>, RenderError> {
    let mut docs = Vec::new();
    for r in &spec.registries {
        let Some(secret) = &r.secret else { continue };
        // Validation guarantees a username and a password source; the
        // password itself is read only now, from its file or variable.
        let username = r.username.as_deref().unwrap_or_default();
        let password = r.read_password()?.ok_or_else(|| RenderError::Input {
            file: spec.source_path.clone(),
            message: format!(
                "registry {}: secret {} needs a password (passwordFile or passwordEnv)",
                r.host, secret.name
            ),
        })?;
        docs.push(Value::Map(
            Map::new()
                .with("apiVersion", "v1")
                .with("kind", "Secret")
                .with("type", "Opaque")
                .with(
                    "metadata",
                    Map::new().with("name", secret.name.as_str()).with(
                        "labels",
                        Map::new()
                            .with("spectrocloud.com/registry", "true")
                            .with("spectrocloud.com/copyToTarget", "true"),
                    ),
                )
                .with(
                    "data",
                    Map::new()
                        .with("url", b64(&r.secret_url()))
                        .with("username", b64(username))
                        .with("password", b64(&password)),
                ),
        ));
    }
    Ok(docs)
}
