//! The `userData` file, checked when the spec is read: it is merged into the
//! ISO's user-data (which Palette copies to `/oem/userdata` on the node), so
//! it must be what Kairos reads, a `#cloud-config` document holding a
//! mapping; anything else (`userData: /etc/shadow`) is refused before a byte
//! of it can reach the ISO. Messages never quote the file's content.

use std::path::Path;

use crate::yaml::{self, Value};

/// Kairos' collector skips cloud-config files of 2 MiB or more
/// (kairos-sdk `collector/collector.go`); reading stops there.
pub const MAX_USER_DATA_FILE_BYTES: u64 = 2 << 20;

/// The header Kairos requires on the first line (kairos-sdk `collector`).
pub const CLOUD_CONFIG_HEADER: &str = "#cloud-config";

/// Why the file at `path` cannot be a user-data file, if it cannot.
pub fn check(path: &Path) -> Result<(), String> {
    let bytes = edgeiso_contract::fs::read_bounded(path, MAX_USER_DATA_FILE_BYTES).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => {
            format!("{} is over 2 MiB: Kairos skips cloud-config files that large", path.display())
        }
        _ => e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    if text.lines().next().map(str::trim_end) != Some(CLOUD_CONFIG_HEADER) {
        return Err(format!(
            "{} is not a cloud-config file: its first line must be `{CLOUD_CONFIG_HEADER}`",
            path.display()
        ));
    }
    match yaml::parse(&text) {
        Ok(Value::Map(_) | Value::Null) => Ok(()),
        Ok(other) => Err(format!("{}: a cloud-config must be a mapping, found {}", path.display(), other.kind())),
        // The line only: a snippet would print the file's lines (secrets, maybe).
        Err(e) => Err(format!("not valid YAML: {}", super::diagnostics::yaml_error_quiet(path, &e))),
    }
}
