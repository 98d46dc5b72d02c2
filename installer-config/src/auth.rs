//! Fallback registry credentials from Docker/Podman auth files, for hosts the
//! spec gives no credentials for.
//!
//! Files are consulted in this order, and the first one holding an entry for
//! the host wins: `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`,
//! `~/.docker/config.json`. An entry is `auths.<key>.auth` (base64 of
//! `user:password`) or `auths.<key>.username` + `password`. The key may be the
//! bare host, the host with a scheme and/or a path (`https://host/v1/`), and
//! Docker Hub is also found under `https://index.docker.io/v1/`.
//! Credential helpers (`credsStore`, `credHelpers`) are not run: an air-gap
//! build host should not depend on a desktop keychain.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::SpecError;
use crate::spec::canonical_host;

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Credentials for `host` (`user`, `password`) from the first auth file that has them.
pub fn docker_credentials(host: &str) -> Result<Option<(String, String)>, SpecError> {
    let files = auth_file_candidates(|k| std::env::var_os(k).map(PathBuf::from));
    credentials_from_files(&files, host)
}

/// The auth files to consult, in order, given an environment lookup.
pub fn auth_file_candidates(env: impl Fn(&str) -> Option<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = env("REGISTRY_AUTH_FILE").filter(|p| !p.as_os_str().is_empty()) {
        out.push(p);
    }
    if let Some(d) = env("DOCKER_CONFIG").filter(|p| !p.as_os_str().is_empty()) {
        out.push(d.join("config.json"));
    }
    if let Some(h) = env("HOME").filter(|p| !p.as_os_str().is_empty()) {
        out.push(h.join(".docker").join("config.json"));
    }
    out
}

/// Look `host` up in `files`, skipping files that do not exist.
pub fn credentials_from_files(files: &[PathBuf], host: &str) -> Result<Option<(String, String)>, SpecError> {
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(SpecError::Read { what: "registry auth file", path: f.clone(), source }),
        };
        if let Some(c) = lookup(f, &text, host)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn lookup(path: &Path, text: &str, host: &str) -> Result<Option<(String, String)>, SpecError> {
    let file: AuthFile = serde_json::from_str(text).map_err(|e| SpecError::AuthFile {
        path: path.to_owned(),
        // serde_json's message names a position, not the content.
        message: format!("not a valid auth file: {e}"),
    })?;
    let want = canonical_host(host);
    // An exact key beats a normalized one (a file can hold both `host` and `https://host`).
    let entry = file
        .auths
        .get(host)
        .map(|e| (host.to_owned(), e))
        .or_else(|| file.auths.iter().find(|(k, _)| key_host(k) == want).map(|(k, e)| (k.clone(), e)));
    let Some((key, entry)) = entry else { return Ok(None) };
    let bad = |what: &str| SpecError::AuthFile { path: path.to_owned(), message: format!("auths.\"{key}\": {what}") };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad("`auth` is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("`auth` does not decode to text"))?;
        let (user, pass) = decoded.split_once(':').ok_or_else(|| bad("`auth` does not decode to user:password"))?;
        return Ok(Some((user.to_owned(), pass.to_owned())));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some((u.clone(), p.clone()))),
        // An entry with neither (left by a credential helper) holds nothing for us.
        _ => Ok(None),
    }
}

/// The registry host an auths key names: `https://index.docker.io/v1/` -> `docker.io`.
fn key_host(key: &str) -> String {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest);
    let k = k.split('/').next().unwrap_or(k);
    canonical_host(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn finds_auth_and_username_forms_and_aliases() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            "a.json",
            &format!(
                r#"{{"auths": {{
                    "https://index.docker.io/v1/": {{"auth": "{}"}},
                    "https://reg.example:5000": {{"username": "u2", "password": "p:2"}},
                    "plain.example": {{"auth": "{}"}},
                    "helper.example": {{}}
                }}, "credsStore": "desktop"}}"#,
                b64("hub:secret"),
                b64("me:pa:ss")
            ),
        );
        let files = vec![f];
        assert_eq!(credentials_from_files(&files, "docker.io").unwrap(), Some(("hub".into(), "secret".into())));
        assert_eq!(credentials_from_files(&files, "index.docker.io").unwrap(), Some(("hub".into(), "secret".into())));
        assert_eq!(credentials_from_files(&files, "reg.example:5000").unwrap(), Some(("u2".into(), "p:2".into())));
        // Only the first `:` separates user from password.
        assert_eq!(credentials_from_files(&files, "plain.example").unwrap(), Some(("me".into(), "pa:ss".into())));
        assert_eq!(credentials_from_files(&files, "helper.example").unwrap(), None);
        assert_eq!(credentials_from_files(&files, "reg.example").unwrap(), None);
    }

    #[test]
    fn first_file_with_an_entry_wins_and_missing_files_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let first =
            write(d.path(), "first.json", r#"{"auths": {"other.example": {"username": "a", "password": "b"}}}"#);
        let second =
            write(d.path(), "second.json", r#"{"auths": {"reg.example": {"username": "c", "password": "d"}}}"#);
        let files = vec![d.path().join("missing.json"), first, second];
        assert_eq!(credentials_from_files(&files, "reg.example").unwrap(), Some(("c".into(), "d".into())));
    }

    #[test]
    fn order_of_candidates() {
        let env = |k: &str| match k {
            "REGISTRY_AUTH_FILE" => Some(PathBuf::from("/run/auth.json")),
            "DOCKER_CONFIG" => Some(PathBuf::from("/etc/dc")),
            "HOME" => Some(PathBuf::from("/home/u")),
            _ => None,
        };
        assert_eq!(
            auth_file_candidates(env),
            [
                PathBuf::from("/run/auth.json"),
                PathBuf::from("/etc/dc/config.json"),
                PathBuf::from("/home/u/.docker/config.json")
            ]
        );
        assert_eq!(auth_file_candidates(|_| None), Vec::<PathBuf>::new());
    }

    #[test]
    fn malformed_files_name_the_file_not_the_secret() {
        let d = tempfile::tempdir().unwrap();
        let f = write(d.path(), "bad.json", r#"{"auths": {"reg.example": {"auth": "!!!not-base64-TOPSECRET"}}}"#);
        let e = credentials_from_files(std::slice::from_ref(&f), "reg.example").unwrap_err().to_string();
        assert!(e.contains(&f.display().to_string()), "{e}");
        assert!(e.contains("not base64"), "{e}");
        assert!(!e.contains("TOPSECRET"), "{e}");
        let f = write(d.path(), "notjson.json", "{");
        let e = credentials_from_files(std::slice::from_ref(&f), "reg.example").unwrap_err().to_string();
        assert!(e.contains(&f.display().to_string()), "{e}");
    }
}
