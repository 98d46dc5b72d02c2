//! `edgeiso bundle sign` (and `bundle create --sign-key`): the signature of
//! a bundle's `bundle.json` beside it, in the format of
//! `edgeiso_bundle::signature` (decision 0015).

use std::path::{Path, PathBuf};

use edgeiso_bundle::signature::{signature_path, SignatureError, SigningKey};
use edgeiso_contract::fs::{write_atomic, FileMode};

use crate::exit::{self, with_code};
use crate::ui::{Event, Ui};

/// The password of an encrypted signing key, when no password file is given.
pub const KEY_PASSWORD_ENV: &str = "EDGEISO_SIGNING_KEY_PASSWORD";

/// Read the signing key at `path`. An encrypted key's password comes from
/// `password_file` (its first line), else from [`KEY_PASSWORD_ENV`]: never
/// from the command line. A key that cannot be used is invalid input
/// (exit 3), named by its path; the password is never in a message.
pub fn read_key(path: &Path, password_file: Option<&Path>) -> anyhow::Result<SigningKey> {
    let password = match password_file {
        Some(p) => Some(
            edgeiso_contract::fs::read_secret_file(p, "--key-password-file")
                .map_err(|e| with_code(exit::INVALID_INPUT, e))?,
        ),
        None => std::env::var(KEY_PASSWORD_ENV).ok().filter(|p| !p.is_empty()),
    };
    SigningKey::read(path, password.as_deref().map(str::as_bytes)).map_err(|e| match e {
        SignatureError::PasswordNeeded { .. } => with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("{e}: give it with --key-password-file FILE or {KEY_PASSWORD_ENV}"),
        ),
        e => with_code(exit::INVALID_INPUT, e),
    })
}

/// Sign the bundle at `bundle` (a tar, its first part, or the tar name whose
/// parts exist): the exact bytes of its `bundle.json` as stored. Returns
/// the signature file written.
pub fn sign(ui: &Ui, bundle: &Path, key: &SigningKey) -> anyhow::Result<PathBuf> {
    let opened = crate::bundle_check::open(bundle)?;
    let text = key.sign(&opened.meta_bytes)?;
    let path = signature_path(opened.path());
    // Public: it proves nothing to whoever reads it but the key's holder.
    write_atomic(&path, text.as_bytes(), FileMode::Public)
        .map_err(|e| anyhow::anyhow!("cannot write the signature {}: {e}", path.display()))?;
    ui.print(path.display().to_string());
    ui.event(&Event::Signed { bundle: opened.path().to_path_buf(), signature: path.clone() });
    Ok(path)
}

/// After `bundle create` wrote the bundle whose first file is `first`: sign
/// it with `key`, or, unsigned, remove the signature an earlier run left
/// under its name (it would not match this bundle's `bundle.json`).
pub fn sign_or_clear(ui: &Ui, first: &Path, key: Option<&SigningKey>) -> anyhow::Result<()> {
    if let Some(key) = key {
        return sign(ui, first, key).map(drop);
    }
    let stale = signature_path(first);
    match std::fs::remove_file(&stale) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::anyhow!("cannot remove the stale signature {}: {e}", stale.display()))
        }
        _ => Ok(()),
    }
}
