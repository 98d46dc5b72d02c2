//! Kairos >= 3.3 installs, upgrades and resets only when some user is in
//! group `admin`, `install.nousers: true` is set, or `/etc/kairos/.nousers`
//! exists (kairos-agent `pkg/config/config.go`, `CheckConfigForUsers`: it
//! looks at the `users` of every stage for `groups` holding `admin` or
//! `primary_group: admin`). CanvOS provider images ship the file; a plain
//! Kairos base does not, and its installer would stop. So, with no admin
//! user in the finished user-data, render sets `install.nousers: true`
//! (and says so) unless the spec's `install.noUsers: false` forbids it,
//! which is then an error naming that line.

use crate::error::SpecError;
use crate::spec::Spec;
use crate::yaml::{Map, Value};

use super::RenderError;

pub const ADMIN_GROUP: &str = "admin";

/// The warning when render sets `install.nousers: true` on its own.
pub const NOUSERS_WARNING: &str = "no user in group `admin` (users[].groups, or the userData file's stages): install.nousers: true is set so a plain Kairos (>= 3.3) installs; the node then has no login user (set install.noUsers: true to say this is meant, or add an admin user)";

/// Whether the spec's own `users` put someone in group `admin`.
pub fn spec_has_admin_user(spec: &Spec) -> bool {
    spec.users.iter().any(|u| u.groups.iter().any(|g| g == ADMIN_GROUP))
}

/// Whether a cloud-config creates a user in group `admin` in any stage.
pub fn config_has_admin_user(config: &Value) -> bool {
    let Some(stages) = config.path(&["stages"]).and_then(Value::as_map) else { return false };
    stages.iter().flat_map(|(_, steps)| steps.as_seq().unwrap_or_default()).any(|step| {
        step.path(&["users"]).and_then(Value::as_map).is_some_and(|users| {
            users.iter().any(|(_, u)| {
                u.path(&["groups"])
                    .and_then(Value::as_seq)
                    .is_some_and(|g| g.iter().any(|x| x.as_str() == Some(ADMIN_GROUP)))
                    || u.path(&["primary_group"]).and_then(Value::as_str) == Some(ADMIN_GROUP)
            })
        })
    })
}

/// Set `install.nousers` in the finished cloud-config when it needs it;
/// returns the warning to give, if any.
pub fn apply(spec: &Spec, config: &mut Value) -> Result<Option<&'static str>, RenderError> {
    let Value::Map(root) = config else { return Ok(None) };
    let set_by_user_data = root.get("install").and_then(|i| i.path(&["nousers"])).is_some();
    let admin = config_has_admin_user(&Value::Map(root.clone()));
    let install = match root.get_mut("install") {
        Some(Value::Map(m)) => m,
        _ => {
            root.insert("install", Map::new());
            match root.get_mut("install") {
                Some(Value::Map(m)) => m,
                _ => unreachable!("just inserted a mapping"),
            }
        }
    };
    match spec.install.no_users {
        Some(true) => {
            install.insert("nousers", true);
            Ok(None)
        }
        Some(false) if !admin => Err(RenderError::Spec(SpecError::invalid(
            &spec.source_path,
            spec.install.no_users_pos,
            "install.noUsers is false but no user is in group `admin` (users[].groups, or the userData file's stages): Kairos (>= 3.3) would refuse to install; add an admin user or remove install.noUsers",
        ))),
        Some(false) => Ok(None),
        None if admin || set_by_user_data => Ok(None),
        None => {
            install.insert("nousers", true);
            Ok(Some(NOUSERS_WARNING))
        }
    }
}
