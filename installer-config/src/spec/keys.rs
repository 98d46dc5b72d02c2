//! Every key the spec accepts, asked of the parser itself.

use super::diagnostics::unknown_field;
use super::raw::RawSpec;

/// Every key path the spec accepts (`harbor.tls.certFile`,
/// `images[].platforms`, `site.network.interfaces.*.ipAddress`), read from
/// the parser itself: each level is given an unknown key and answers with
/// the keys it expects, so the list cannot drift from what `Spec::load`
/// accepts (a test holds `docs/spec.md` to it).
pub fn known_keys() -> Vec<String> {
    const PROBE: &str = "edgeisoProbe";
    #[derive(Clone)]
    enum Seg {
        Key(String),
        /// An element of a list.
        Item,
        /// The value of a mapping with keys of the user's choosing.
        Entry,
    }
    fn yaml(path: &[Seg]) -> String {
        let mut text = String::new();
        for (depth, seg) in path.iter().enumerate() {
            let indent = "  ".repeat(depth);
            match seg {
                Seg::Key(k) => text.push_str(&format!("{indent}{k}:\n")),
                Seg::Item => text.push_str(&format!("{indent}-\n")),
                Seg::Entry => text.push_str(&format!("{indent}anyName:\n")),
            }
        }
        text.push_str(&format!("{}{PROBE}: 0\n", "  ".repeat(path.len())));
        text
    }
    fn expected(path: &[Seg]) -> Option<Vec<String>> {
        let e = serde_saphyr::from_str::<RawSpec>(&yaml(path)).err()?;
        let (field, keys) = unknown_field(&e)?;
        (field == PROBE).then_some(keys)
    }
    fn name(path: &[Seg]) -> String {
        let mut out = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => out.push_str(&format!(".{k}")),
                Seg::Item => out.push_str("[]"),
                Seg::Entry => out.push_str(".*"),
            }
        }
        out
    }
    fn walk(path: Vec<Seg>, keys: Vec<String>, out: &mut Vec<String>) {
        for k in keys {
            let mut here = path.clone();
            here.push(Seg::Key(k));
            out.push(name(&here));
            // A mapping, a list of mappings, or a mapping of mappings: go in.
            for inner in [vec![], vec![Seg::Item], vec![Seg::Entry]] {
                let mut deeper = here.clone();
                deeper.extend(inner);
                if let Some(keys) = expected(&deeper) {
                    walk(deeper, keys, out);
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(Vec::new(), expected(&[]).unwrap_or_default(), &mut out);
    out
}
