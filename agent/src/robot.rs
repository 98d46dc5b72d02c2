//! The nodes' pull credential on Harbor: a robot account that may pull from
//! the project and do nothing else (decision 0012).
//!
//! `POST /api/v2.0/robots` (Harbor v2.2 and later, swagger `RobotCreate`)
//! with `level: project` and one permission, `kind: project`,
//! `namespace: <project>`, access `resource: repository`, `action: pull`;
//! `duration: -1` never expires. Harbor answers 201 with `RobotCreated`:
//! `id`, `name`, `secret`, `creation_time`, `expires_at`. The `name` it
//! answers is the one to log in with: `robot$<project>+<name>` with the
//! default prefix, which a Harbor setting (`robot_name_prefix`) may change,
//! so it is taken from the answer, never built here. The secret is shown
//! only in that answer: the agent keeps it (0600) and reuses it at later
//! boots while Harbor accepts it.

use std::path::{Path, PathBuf};

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::Credentials;
use crate::registry::{AuthMode, ClientOptions, RegistryClient, RegistryError};

/// Harbor's answer is a small JSON object; anything larger is not Harbor.
const MAX_ANSWER_BYTES: usize = 64 << 10;
/// A stored credential file larger than this was not written by the agent.
const MAX_STORED_BYTES: u64 = 64 << 10;

/// The credential as the agent keeps it (`credential.json`, 0600).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredCredential {
    /// The registry it was made for: a credential of another registry is
    /// never sent to this one.
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl StoredCredential {
    pub fn credentials(&self) -> Credentials {
        Credentials::new(self.username.clone(), self.password.clone())
    }

    /// The stored credential, if there is a readable one for `registry`.
    pub fn read(path: &Path, registry: &str) -> Option<StoredCredential> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        file.take(MAX_STORED_BYTES).read_to_string(&mut text).ok()?;
        let c: StoredCredential = serde_json::from_str(&text).ok()?;
        (c.registry == registry && !c.username.is_empty() && !c.password.is_empty()).then_some(c)
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("strings serialize");
        edgeiso_contract::fs::write_atomic(path, text.as_bytes(), edgeiso_contract::fs::FileMode::Secret)
    }
}

/// The body of `POST /api/v2.0/robots`: pull on the project's repositories, nothing else.
pub fn robot_request(name: &str, project: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "description": "edgeiso: the nodes pull images with this account (pull only)",
        "level": "project",
        "duration": -1,
        "disable": false,
        "permissions": [{
            "kind": "project",
            "namespace": project,
            "access": [{ "resource": "repository", "action": "pull" }],
        }],
    })
}

#[derive(Deserialize)]
struct RobotCreated {
    name: String,
    secret: String,
}

/// A robot name no earlier run used (Harbor answers 409 to a taken one).
fn fresh_name() -> String {
    format!("edgeiso-nodes-{:08x}", rand::random::<u32>())
}

/// Create a pull-only robot account on `project` with `admin` (a client
/// carrying Harbor's admin credentials).
pub async fn create(admin: &RegistryClient, project: &str) -> Result<Credentials, RegistryError> {
    let url = admin.url.join("api/v2.0/robots");
    let mut last = None;
    // A name taken by a robot whose secret this node lost: try another.
    for _ in 0..3 {
        let body = robot_request(&fresh_name(), project).to_string();
        let what = format!("POST /api/v2.0/robots (pull on project {project})");
        let mut resp = admin
            .send_as(AuthMode::Basic, &what, &[], body.len() as u64, &|c| {
                c.post(url.clone()).header(CONTENT_TYPE, "application/json").body(body.clone())
            })
            .await?;
        let status = resp.status();
        let mut bytes = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| RegistryError::Transport { what: what.clone(), message: e.to_string() })?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(RegistryError::Protocol { what, message: "answer larger than 64 KiB".into() });
            }
        }
        match status {
            StatusCode::CREATED => {
                // Never echo the body: it holds the secret.
                let r: RobotCreated = serde_json::from_slice(&bytes).map_err(|_| RegistryError::Protocol {
                    what: what.clone(),
                    message: "201 without a robot name and secret".into(),
                })?;
                if r.name.is_empty() || r.secret.is_empty() {
                    return Err(RegistryError::Protocol { what, message: "empty robot name or secret".into() });
                }
                return Ok(Credentials::new(r.name, r.secret));
            }
            StatusCode::CONFLICT => last = Some(what),
            s => {
                let detail: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
                return Err(RegistryError::Status { what, status: s.as_u16(), detail: format!(": {detail}") });
            }
        }
    }
    Err(RegistryError::Protocol { what: last.unwrap_or_default(), message: "409 for three fresh robot names".into() })
}

/// Does the registry still accept `creds` (`GET /v2/` with them)? A robot
/// deleted, disabled or expired in Harbor is refused (401).
pub async fn accepted(
    admin: &RegistryClient,
    ca: Option<&Path>,
    insecure: bool,
    creds: Credentials,
) -> Result<bool, RegistryError> {
    let client = RegistryClient::new(
        admin.url.clone(),
        ClientOptions { ca, insecure, credentials: Some(creds), timeouts: admin.timeouts, proxy_from_env: false },
    )
    .map_err(|e| RegistryError::Protocol { what: "robot check".into(), message: e.to_string() })?;
    match client.check_access().await {
        Ok(()) => Ok(true),
        Err(RegistryError::Auth { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `credential.json` in the agent's node-pull folder.
pub fn credential_file(keep_dir: &Path) -> PathBuf {
    keep_dir.join("credential.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_asks_for_pull_on_the_project_only() {
        let r = robot_request("edgeiso-nodes-1", "spectro-images");
        assert_eq!(r["level"], "project");
        assert_eq!(r["duration"], -1);
        let p = r["permissions"].as_array().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0]["kind"].as_str(), p[0]["namespace"].as_str()), (Some("project"), Some("spectro-images")));
        assert_eq!(p[0]["access"], serde_json::json!([{ "resource": "repository", "action": "pull" }]));
    }

    #[test]
    fn stored_credentials_are_for_one_registry_and_never_shown() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("credential.json");
        let c = StoredCredential {
            registry: "https://h:30003".into(),
            username: "robot$p+n".into(),
            password: "s3cret".into(),
        };
        c.write(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(StoredCredential::read(&p, "https://h:30003").unwrap().username, "robot$p+n");
        assert!(StoredCredential::read(&p, "https://other:30003").is_none(), "another registry's credential");
        std::fs::write(&p, "{not json").unwrap();
        assert!(StoredCredential::read(&p, "https://h:30003").is_none());
    }
}
