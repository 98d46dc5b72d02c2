//! A site file: what one site of a golden ISO sets (`edgeiso personalize
//! --site FILE`), a fragment of the site spec with the same keys.
//!
//! A site sets only what differs between the sites of one golden: its
//! `site:` (names, tags, network), where its Harbor is (`harbor.url`, `vip`,
//! `tls`, the admin password file), its `users`, and the credentials of
//! registries the golden names (`registries[]`: `host`, `username`,
//! `passwordFile`/`passwordEnv`). Every other spec key is the golden's: a
//! site file that sets one is refused naming the line, as is a key the spec
//! does not know (with the key meant) and a secret written inline.
//!
//! The fragment is checked by the spec's own validator (it is a spec
//! fragment: same types, same file:line:column), then merged into the
//! golden's spec ([`SiteFile::merge_into`]): `site` key by key, the given
//! `harbor` keys replace the golden's, `users` replace the golden's list,
//! and a `registries[]` entry replaces the credentials of the golden's entry
//! for the same host.

use std::path::{Path, PathBuf};

use crate::error::{Pos, SpecError};
use crate::spec::Spec;
use crate::stylus_schema::{locate, Step};
use crate::yaml::{self, Map, Value};

/// Site files are a few dozen lines.
pub const MAX_BYTES: u64 = 1 << 20;

/// The keys a site sets; `*` below a key: anything the spec takes there.
const PER_SITE: &[&str] = &[
    "site.name",
    "site.hostName",
    "site.tags.*",
    "site.network.*",
    "harbor.url",
    "harbor.vip",
    "harbor.tls.*",
    "harbor.adminPasswordFile",
    "harbor.adminPasswordEnv",
    "users[].*",
    "registries[].host",
    "registries[].username",
    "registries[].passwordFile",
    "registries[].passwordEnv",
];

/// Keys that would carry a secret in the file itself.
const INLINE_SECRETS: &[&str] = &["password", "adminPassword", "passwd", "token"];

/// A checked site file.
#[derive(Debug, Clone)]
pub struct SiteFile {
    pub path: PathBuf,
    /// The file as written (for lines in messages).
    pub text: String,
    /// The file's mapping, paths in it made absolute.
    pub value: Value,
    /// The fragment as a spec of its own (the validator's view).
    pub spec: Spec,
}

fn pattern_of(path: &[Step]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

/// Where a key path stands for a site file.
#[derive(PartialEq)]
enum Owner {
    /// The site sets it, and everything below it.
    Site,
    /// Some key below it is the site's.
    Above,
    /// Not the site's.
    No,
}

fn owner(pattern: &str) -> Owner {
    let below = |prefix: &str| pattern.starts_with(&format!("{prefix}.")) || pattern.starts_with(&format!("{prefix}["));
    let above = |key: &str| key.starts_with(&format!("{pattern}.")) || key.starts_with(&format!("{pattern}["));
    for p in PER_SITE {
        let key = p.strip_suffix(".*").unwrap_or(p);
        if pattern == key || (p.ends_with(".*") && below(key)) {
            return Owner::Site;
        }
    }
    if PER_SITE.iter().any(|p| above(p)) {
        Owner::Above
    } else {
        Owner::No
    }
}

impl SiteFile {
    pub fn load(path: &Path) -> Result<SiteFile, SpecError> {
        // Absolute: the paths the file names are made absolute from its
        // folder, and the merged spec is read from elsewhere.
        let absolute = std::path::absolute(path).map_err(|source| SpecError::Read {
            what: "site file",
            path: path.to_owned(),
            source,
        })?;
        let path = absolute.as_path();
        let bytes = edgeiso_contract::fs::read_bounded(path, MAX_BYTES).map_err(|source| SpecError::Read {
            what: "site file",
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| SpecError::invalid(path, None, "not UTF-8 text"))?;
        let at = |steps: &[Step]| locate(&text, steps).map(|line| Pos { line, column: 1 });
        let value = yaml::parse(&text).map_err(|e| SpecError::invalid(path, None, format!("not YAML: {e}")))?;
        let Value::Map(map) = &value else {
            return Err(SpecError::invalid(
                path,
                Some(Pos { line: 1, column: 1 }),
                "a site file is a YAML mapping (site:, harbor:, users:, registries:)",
            ));
        };
        // Which keys: the site's, the golden's, or none the spec knows.
        let known = crate::spec::known_keys();
        let mut problems = Vec::new();
        walk(&Value::Map(map.clone()), &mut Vec::new(), &mut |steps| {
            let pattern = pattern_of(steps);
            match owner(&pattern) {
                Owner::Site => return false,
                Owner::Above => return true,
                Owner::No => {}
            }
            let last = match steps.last() {
                Some(Step::Key(k)) => k.as_str(),
                _ => "",
            };
            let message = if INLINE_SECRETS.contains(&last) {
                format!("`{pattern}`: secrets are not written in a site file; give a file (`passwordFile`, `adminPasswordFile`) or a variable (`passwordEnv`)")
            } else if known.contains(&pattern) {
                format!(
                    "`{pattern}` is fixed by the golden ISO; a site file sets only {}",
                    PER_SITE.join(", ").replace(".*", "")
                )
            } else {
                // Unknown to the spec: its validator names it, with the key meant.
                return false;
            };
            problems.push(SpecError::invalid(path, at(steps), message));
            false
        });
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        // The fragment as a spec of its own: every type and value checked
        // where it is written. `name` is the golden's; a stand-in is added
        // after the last line, so that every line keeps its number.
        let mut checked = text.clone();
        if !checked.ends_with('\n') {
            checked.push('\n');
        }
        checked.push_str("name: site-file\n");
        let spec = Spec::from_str_fragment(&checked, path)?;
        let mut value = value;
        absolute_paths(&mut value, &spec);
        Ok(SiteFile { path: path.to_owned(), text, value, spec })
    }

    /// The golden's spec text with this site's keys merged in (YAML text for
    /// [`Spec::from_str_remapped`]). A registry the golden does not name is
    /// refused: a site cannot add one.
    pub fn merge_into(&self, golden: &str, golden_path: &Path) -> Result<String, SpecError> {
        let mut g = yaml::parse(golden).map_err(|e| SpecError::invalid(golden_path, None, format!("not YAML: {e}")))?;
        let Value::Map(gm) = &mut g else {
            return Err(SpecError::invalid(golden_path, None, "the golden's spec is not a mapping"));
        };
        let Value::Map(site) = &self.value else { unreachable!("checked at load") };
        for (key, v) in site.iter() {
            match (key.as_str(), v) {
                ("site", Value::Map(s)) => merge_map(entry_map(gm, "site"), s),
                ("harbor", Value::Map(h)) => {
                    let golden_harbor = entry_map(gm, "harbor");
                    for (k, hv) in h.iter() {
                        golden_harbor.insert(k.clone(), hv.clone());
                    }
                }
                ("users", users) => gm.insert("users", users.clone()),
                ("registries", Value::Seq(list)) => {
                    let Some(Value::Seq(golden_list)) = gm.get_mut("registries") else {
                        return Err(SpecError::invalid(
                            &self.path,
                            None,
                            "the golden names no registries; a site cannot add one",
                        ));
                    };
                    for entry in list {
                        let host =
                            entry.as_map().and_then(|m| m.get("host")).and_then(Value::as_str).unwrap_or_default();
                        let Some(Value::Map(target)) = golden_list.iter_mut().find(|g| {
                            g.as_map()
                                .and_then(|m| m.get("host"))
                                .and_then(Value::as_str)
                                .map(crate::spec::canonical_host)
                                == Some(crate::spec::canonical_host(host))
                        }) else {
                            return Err(SpecError::invalid(
                                &self.path,
                                self.registry_line(host),
                                format!("registries: the golden names no registry `{host}`; a site sets credentials of the golden's registries only"),
                            ));
                        };
                        // The site's credential replaces the golden's, whole.
                        target.0.retain(|(k, _)| !matches!(k.as_str(), "username" | "passwordFile" | "passwordEnv"));
                        for (k, ev) in entry.as_map().into_iter().flat_map(Map::iter) {
                            if k != "host" {
                                target.insert(k.clone(), ev.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(yaml::to_string(&g))
    }
}

impl SiteFile {
    /// The line of the `registries[]` entry for `host`.
    fn registry_line(&self, host: &str) -> Option<Pos> {
        let list = self.value.as_map()?.get("registries")?;
        let Value::Seq(items) = list else { return None };
        let i =
            items.iter().position(|e| e.as_map().and_then(|m| m.get("host")).and_then(Value::as_str) == Some(host))?;
        let steps = [Step::Key("registries".into()), Step::Index(i), Step::Key("host".into())];
        locate(&self.text, &steps).map(|line| Pos { line, column: 1 })
    }
}

fn entry_map<'a>(m: &'a mut Map, key: &str) -> &'a mut Map {
    if !matches!(m.get(key), Some(Value::Map(_))) {
        m.insert(key, Value::Map(Map::new()));
    }
    match m.get_mut(key) {
        Some(Value::Map(inner)) => inner,
        _ => unreachable!("just inserted"),
    }
}

/// `over` into `base`: mappings key by key, anything else replaced.
fn merge_map(base: &mut Map, over: &Map) {
    for (k, v) in over.iter() {
        match (base.get_mut(k), v) {
            (Some(Value::Map(b)), Value::Map(o)) => merge_map(b, o),
            _ => base.insert(k.clone(), v.clone()),
        }
    }
}

/// Visit every key of `v`; `f` says whether to go below it.
fn walk(v: &Value, at: &mut Vec<Step>, f: &mut impl FnMut(&[Step]) -> bool) {
    match v {
        Value::Map(m) => {
            for (k, inner) in m.iter() {
                at.push(Step::Key(k.clone()));
                if f(at) {
                    walk(inner, at, f);
                }
                at.pop();
            }
        }
        Value::Seq(items) => {
            for (i, inner) in items.iter().enumerate() {
                at.push(Step::Index(i));
                walk(inner, at, f);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Make every path the fragment names absolute (they are relative to the
/// site file; the merged spec is read from elsewhere).
fn absolute_paths(v: &mut Value, spec: &Spec) {
    match v {
        Value::Map(m) => {
            for (k, inner) in m.0.iter_mut() {
                if let Value::String(s) = inner {
                    if k.ends_with("File") {
                        if let Some(input) = spec.inputs.iter().find(|i| i.written == *s) {
                            *s = input.path.display().to_string();
                        }
                    }
                } else {
                    absolute_paths(inner, spec);
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| absolute_paths(i, spec)),
        _ => {}
    }
}
