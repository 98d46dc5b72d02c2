//! The Harbor Edge Native Config pack in a cluster profile: the size of its
//! registry volume (`harbor-config.storage.registry`), which is what Harbor
//! gets when Harbor comes from the pack, whatever the spec says.
//!
//! Palette documents the `harbor-config.storage` sizes as "in GB"
//! (spectrocloud/librarium `docs/docs-content/integrations/harbor-edge.md`):
//! a bare number is read as GB (10^9 bytes), a Kubernetes quantity (`300Gi`)
//! as itself.

use std::path::Path;

use crate::spec::Size;
use crate::yaml::{self, Value};

/// What the profile's Harbor pack sets for its registry volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackRegistrySize {
    Size(Size),
    /// Set, but not a size: the text as written.
    Unreadable(String),
}

/// The registry size of the first Harbor pack of the profile at `path`
/// (`packs[]` entries whose `name` holds `harbor`, `values` a mapping or a
/// string of YAML), if the profile has one that sets it.
pub fn registry_size(path: &Path) -> Option<PackRegistrySize> {
    let text = std::fs::read_to_string(path).ok()?;
    let docs = yaml::parse_all(&text).ok()?;
    docs.iter().find_map(|d| find(d, 0))
}

fn find(v: &Value, depth: usize) -> Option<PackRegistrySize> {
    if depth > 64 {
        return None;
    }
    match v {
        Value::Map(m) => {
            if let Some(packs) = m.get("packs").and_then(Value::as_seq) {
                for p in packs {
                    let is_harbor = p
                        .path(&["name"])
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.to_ascii_lowercase().contains("harbor"));
                    if !is_harbor {
                        continue;
                    }
                    let values = match p.path(&["values"]) {
                        Some(Value::String(s)) => yaml::parse(s).ok(),
                        Some(other) => Some(other.clone()),
                        None => None,
                    };
                    if let Some(size) = values.as_ref().and_then(|v| v.path(&["harbor-config", "storage", "registry"]))
                    {
                        return Some(read_size(size));
                    }
                }
            }
            m.iter().find_map(|(_, c)| find(c, depth + 1))
        }
        Value::Seq(s) => s.iter().find_map(|c| find(c, depth + 1)),
        _ => None,
    }
}

fn read_size(v: &Value) -> PackRegistrySize {
    let text = match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::String(s) => s.trim().to_owned(),
        other => return PackRegistrySize::Unreadable(other.kind().to_owned()),
    };
    // "in GB": a bare number counts in GB.
    let quantity = if text.bytes().all(|b| b.is_ascii_digit()) { format!("{text}G") } else { text.clone() };
    match Size::parse(&quantity) {
        Ok(s) => PackRegistrySize::Size(Size { text, bytes: s.bytes }),
        Err(_) => PackRegistrySize::Unreadable(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pack_values_string() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("profile.yaml");
        std::fs::write(
            &p,
            "spec:\n  packs:\n    - name: csi-local\n    - name: harbor-edge-native-config\n      values: |\n        harbor-config:\n          storage:\n            registry: 100\n",
        )
        .unwrap();
        assert_eq!(
            registry_size(&p),
            Some(PackRegistrySize::Size(Size { text: "100".into(), bytes: 100_000_000_000 }))
        );
        std::fs::write(&p, "packs:\n  - name: harbor\n    values: {harbor-config: {storage: {registry: 2Ti}}}\n")
            .unwrap();
        assert_eq!(registry_size(&p), Some(PackRegistrySize::Size(Size { text: "2Ti".into(), bytes: 2 << 40 })));
        std::fs::write(&p, "packs:\n  - name: harbor\n    values: {harbor-config: {storage: {registry: lots}}}\n")
            .unwrap();
        assert_eq!(registry_size(&p), Some(PackRegistrySize::Unreadable("lots".into())));
        std::fs::write(&p, "packs:\n  - name: harbor\n").unwrap();
        assert_eq!(registry_size(&p), None);
    }
}
