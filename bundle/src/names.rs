//! The names a bundle carries are printable: `bundle.json`'s bundle name,
//! tool, creation time, media types, platforms and member paths, and the
//! image names of `index.json`'s annotations, are printed by `inspect`,
//! `verify`, the agent and its console markers. A control character in any
//! of them (an ESC that starts a terminal escape sequence, a CR that
//! rewrites a line) is never meant, so the bundle is refused. Image
//! references need no check here: `ImageRef::parse` refuses them (the rule
//! is `edgeiso_contract::printable`'s, for both).

use std::collections::BTreeMap;

use edgeiso_contract::printable::{escape, first_control};

use crate::format::BundleJson;

/// A name of a bundle with a control character in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {field} {} contains the control character {}", escape(.value), .found.escape_unicode())]
pub struct UnprintableName {
    /// Which entry (`bundle.json`, `image docker.io/x:1`, `index.json entry 3`).
    pub entry: String,
    /// Which of its fields.
    pub field: String,
    /// The value as found (shown escaped).
    pub value: String,
    pub found: char,
}

fn check(entry: impl Fn() -> String, field: &str, value: &str) -> Result<(), UnprintableName> {
    match first_control(value) {
        Some(found) => Err(UnprintableName { entry: entry(), field: field.to_owned(), value: value.to_owned(), found }),
        None => Ok(()),
    }
}

/// A tar member's name, as the archive has it.
pub fn check_member_name(name: &str) -> Result<(), UnprintableName> {
    check(|| "tar member".to_owned(), "name", name)
}

/// Every string of `bundle.json` but the references (parsed already).
pub fn check_bundle_json(meta: &BundleJson) -> Result<(), UnprintableName> {
    let top = || "bundle.json".to_owned();
    check(top, "name", &meta.name)?;
    check(top, "tool", &meta.tool)?;
    check(top, "created", &meta.created)?;
    if let Some(crate::Partial::Delta { base }) = &meta.partial {
        check(top, "partial base name", &base.name)?;
    }
    for member in meta.members.keys() {
        check(top, "member", member)?;
    }
    for img in &meta.images {
        let entry = || format!("bundle.json image {}", img.reference);
        check(entry, "mediaType", &img.media_type)?;
        for p in &img.platforms {
            check(entry, "platform", p)?;
        }
    }
    Ok(())
}

/// The annotations of `index.json`'s entry number `n` (keys and values).
pub fn check_annotations(n: usize, annotations: &BTreeMap<String, String>) -> Result<(), UnprintableName> {
    let entry = || format!("index.json entry {n}");
    for (key, value) in annotations {
        check(entry, "annotation key", key)?;
        check(entry, &format!("annotation {}", escape(key)), value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escape_sequence_in_an_annotation_is_refused_and_shown_escaped() {
        let mut a = BTreeMap::new();
        a.insert("org.opencontainers.image.ref.name".to_owned(), "docker.io/x:1\u{1b}[31m".to_owned());
        let e = check_annotations(2, &a).unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e:?}");
        assert!(e.contains("index.json entry 2") && e.contains("\\u{1b}[31m") && e.contains("\\u{1b}"), "{e}");
        a.clear();
        a.insert("ok".into(), "docker.io/library/nginx:1.25".into());
        assert!(check_annotations(0, &a).is_ok());
    }
}
