//! The `stylus` block of a user-data file against the keys and types Palette
//! documents: the rendered block, and the `stylus` block of the user's
//! `userData` file, are each checked before anything is written. Palette's
//! agent reads the block into typed Go structs: a misspelt key is dropped
//! without a word and a wrong type stops the agent, on the node. Here either
//! fails the render with file:line and, for a typo, the key meant.
//!
//! The table is written from Palette's installer reference
//! (spectrocloud/librarium `docs/docs-content/clusters/edge/edge-configuration/installer-reference.md`),
//! plus what CanvOS' `user-data.template` sets (`site.registrationURL`,
//! `site.twoNode`) and the historical `installationMode` (still rendered
//! with `site.legacyAgent`).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::suggest::did_you_mean;
use crate::yaml::Value;

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Str,
    /// A string, one of these.
    OneOf(&'static [&'static str]),
    StrList,
    /// A string or a list of strings.
    StrOrList,
    /// A mapping of names of the user's choosing to strings.
    StrMap,
    /// A mapping of names of the user's choosing to anything.
    AnyMap,
    /// A mapping with the documented keys below it.
    Object,
    /// A list of mappings with the documented keys below `<key>[]`.
    ObjectList,
    /// A mapping of names of the user's choosing (a NIC, a user name) to
    /// mappings with the documented keys below `<key>.*`.
    ObjectMap,
}

use Kind::*;

/// Every documented key below `stylus`, with its type.
pub const STYLUS_KEYS: &[(&str, Kind)] = &[
    ("debug", Bool),
    ("disablePasswordUpdate", Bool),
    ("disableTui", Bool),
    ("enableMultiNode", Bool),
    ("externalRegistries", Object),
    ("externalRegistries.registries", ObjectList),
    ("externalRegistries.registries[].domain", Str),
    ("externalRegistries.registries[].username", Str),
    ("externalRegistries.registries[].password", Str),
    ("externalRegistries.registries[].repositoryName", Str),
    ("externalRegistries.registries[].certificates", StrList),
    ("externalRegistries.registries[].insecure", Bool),
    ("externalRegistries.registries[].encodedPassword", Bool),
    ("externalRegistries.registryMappingRules", StrMap),
    ("featureGate", Str),
    ("imageRedirectWebhook", Object),
    ("imageRedirectWebhook.enable", Bool),
    ("imageRedirectWebhook.port", Int),
    ("includeTui", Bool),
    ("installationMode", OneOf(&["airgap", "connected"])),
    ("localUI", Object),
    ("localUI.port", Int),
    ("localUI.login", Object),
    ("localUI.login.attemptsBeforeExponentialDelayStarts", Int),
    ("localUI.login.disableRateLimiting", Bool),
    ("localUI.login.lockoutDurationInMinutes", Int),
    ("localUI.login.maxFailedAttemptsBeforeLockout", Int),
    ("managementMode", OneOf(&["local", "central"])),
    ("path", Str),
    ("registryCredentials", Object),
    ("registryCredentials.domain", Str),
    ("registryCredentials.username", Str),
    ("registryCredentials.password", Str),
    ("registryCredentials.encodedPassword", Bool),
    ("registryCredentials.insecure", Bool),
    ("site", Object),
    ("site.caCerts", StrList),
    ("site.clusterId", Str),
    ("site.clusterName", Str),
    ("site.deviceUIDPaths", ObjectList),
    ("site.deviceUIDPaths[].name", Str),
    ("site.deviceUIDPaths[].regex", Str),
    ("site.edgeHostToken", Str),
    ("site.hostName", Str),
    ("site.insecureSkipVerify", Bool),
    ("site.name", Str),
    ("site.network", Object),
    ("site.network.httpProxy", Str),
    ("site.network.httpsProxy", Str),
    ("site.network.noProxy", Str),
    ("site.network.nameserver", Str),
    ("site.network.interfaces", ObjectMap),
    ("site.network.interfaces.*.type", OneOf(&["dhcp", "static"])),
    ("site.network.interfaces.*.ipAddress", Str),
    ("site.network.interfaces.*.mask", Str),
    ("site.network.interfaces.*.gateway", Str),
    ("site.network.interfaces.*.nameserver", Str),
    // Documented as a string holding "a list of NTP servers".
    ("site.ntpServers", StrOrList),
    ("site.paletteEndpoint", Str),
    ("site.prefix", Str),
    ("site.projectName", Str),
    ("site.projectUid", Str),
    ("site.registrationURL", Str),
    ("site.remoteShell", Object),
    ("site.remoteShell.disable", Bool),
    ("site.tags", AnyMap),
    ("site.tagsFromFile", Object),
    ("site.tagsFromFile.fileName", Str),
    ("site.tagsFromFile.delimiter", Str),
    ("site.tagsFromFile.separator", Str),
    ("site.tagsFromScript", Object),
    ("site.tagsFromScript.scriptName", Str),
    ("site.tagsFromScript.timeout", Int),
    ("site.twoNode", Object),
    ("site.twoNode.enabled", Bool),
    ("site.twoNode.health-check-script", Str),
    ("site.users", ObjectMap),
    ("site.users.*.groups", StrList),
    ("site.users.*.passwd", Str),
    ("site.users.*.passwordExpiry", Str),
    ("site.users.*.lock_passwd", Bool),
    ("site.users.*.ssh_authorized_keys", StrList),
    ("trace", Bool),
    ("vip", Object),
    ("vip.skip", Bool),
];

fn kind_of(pattern: &str) -> Option<Kind> {
    STYLUS_KEYS.iter().find(|(k, _)| *k == pattern).map(|(_, t)| *t)
}

/// The documented keys directly below `parent` (`""` for `stylus` itself).
fn children(parent: &str) -> impl Iterator<Item = &'static str> + '_ {
    STYLUS_KEYS.iter().filter_map(move |(k, _)| {
        let rest = if parent.is_empty() { Some(*k) } else { k.strip_prefix(parent)?.strip_prefix('.') };
        rest.filter(|r| !r.contains('.'))
    })
}

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// One key that Palette would not read as meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `stylus.localUI.prot`, `stylus.externalRegistries.registries[0].insecure`.
    pub key: String,
    /// 1-based, when the file's text was at hand and the key was found in it.
    pub line: Option<u64>,
    pub message: String,
}

/// The problems of one file's `stylus` block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StylusErrors {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for StylusErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(l) => write!(f, "{}:{l}: {}: {}", self.file.display(), p.key, p.message)?,
                None => write!(f, "{}: {}: {}", self.file.display(), p.key, p.message)?,
            }
        }
        Ok(())
    }
}

/// Check the `stylus` block of a whole cloud-config `doc` read from `file`;
/// `text` (the file's text), when given, puts lines on the problems.
pub fn check_document(doc: &Value, file: &Path, text: Option<&str>) -> Result<(), StylusErrors> {
    let Some(stylus) = doc.as_map().and_then(|m| m.get("stylus")) else { return Ok(()) };
    let mut problems = Vec::new();
    let mut at = vec![Step::Key("stylus".into())];
    match stylus {
        Value::Map(_) => walk(stylus, "", &mut at, &mut problems),
        Value::Null => {}
        other => problems.push(Problem {
            key: "stylus".into(),
            line: None,
            message: format!("must be a mapping, found {}", other.kind()),
        }),
    }
    if problems.is_empty() {
        return Ok(());
    }
    if let Some(text) = text {
        for p in &mut problems {
            p.line = locate(text, &steps_of(&p.key));
        }
    }
    Err(StylusErrors { file: file.to_owned(), problems })
}

fn walk(v: &Value, pattern: &str, at: &mut Vec<Step>, out: &mut Vec<Problem>) {
    let Some(m) = v.as_map() else { return };
    for (k, child) in m.iter() {
        let here = if pattern.is_empty() { k.clone() } else { format!("{pattern}.{k}") };
        at.push(Step::Key(k.clone()));
        match kind_of(&here) {
            None => {
                let hint =
                    did_you_mean(k, children(pattern)).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                let parent = if pattern.is_empty() { "stylus".to_owned() } else { format!("stylus.{pattern}") };
                out.push(Problem {
                    key: display(at),
                    line: None,
                    message: format!("not a key Palette's agent reads in `{parent}`{hint}"),
                });
            }
            Some(kind) => check_value(child, kind, &here, at, out),
        }
        at.pop();
    }
}

fn check_value(v: &Value, kind: Kind, pattern: &str, at: &mut Vec<Step>, out: &mut Vec<Problem>) {
    let wrong = |want: &str, out: &mut Vec<Problem>, at: &[Step]| {
        out.push(Problem { key: display(at), line: None, message: format!("must be {want}, found {}", v.kind()) })
    };
    let is_str = |v: &Value| matches!(v, Value::String(_));
    match kind {
        Bool if !matches!(v, Value::Bool(_)) => wrong("a boolean (true or false)", out, at),
        Int if !matches!(v, Value::Int(_) | Value::UInt(_)) => wrong("an integer", out, at),
        Str if !is_str(v) => wrong("a string", out, at),
        OneOf(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => {}
            Some(s) => {
                let hint = did_you_mean(s, allowed.iter().copied()).map(|x| format!(" (did you mean `{x}`?)"));
                out.push(Problem {
                    key: display(at),
                    line: None,
                    message: format!("`{s}` is not one of {}{}", allowed.join(", "), hint.unwrap_or_default()),
                });
            }
            None => wrong(&format!("one of {}", allowed.join(", ")), out, at),
        },
        StrList if !v.as_seq().is_some_and(|s| s.iter().all(is_str)) => wrong("a list of strings", out, at),
        StrOrList if !(is_str(v) || v.as_seq().is_some_and(|s| s.iter().all(is_str))) => {
            wrong("a string or a list of strings", out, at)
        }
        StrMap if !v.as_map().is_some_and(|m| m.iter().all(|(_, x)| is_str(x))) => {
            wrong("a mapping of strings to strings", out, at)
        }
        AnyMap if v.as_map().is_none() => wrong("a mapping", out, at),
        Object => match v {
            Value::Map(_) => walk(v, pattern, at, out),
            _ => wrong("a mapping", out, at),
        },
        ObjectList => match v.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(Step::Index(i));
                    match item {
                        Value::Map(_) => walk(item, &format!("{pattern}[]"), at, out),
                        _ => wrong("a mapping", out, at),
                    }
                    at.pop();
                }
            }
            None => wrong("a list of mappings", out, at),
        },
        ObjectMap => match v.as_map() {
            Some(m) => {
                for (name, item) in m.iter() {
                    at.push(Step::Key(name.clone()));
                    match item {
                        Value::Map(_) => walk(item, &format!("{pattern}.*"), at, out),
                        _ => wrong("a mapping", out, at),
                    }
                    at.pop();
                }
            }
            None => wrong("a mapping", out, at),
        },
        _ => {}
    }
}

/// `stylus.externalRegistries.registries[0].insecure`.
fn display(at: &[Step]) -> String {
    let mut s = String::new();
    for step in at {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The steps back from a displayed key (keys holding `.` or `[` are read
/// as nested: the line found is then the nearest enclosing key's).
fn steps_of(key: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        out.push(Step::Key(name.to_owned()));
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// The line (1-based) of the key at `path` in block-style YAML `text`, or of
/// the deepest enclosing key found (flow-style `{a: 1}` is not looked into).
/// By indentation only: good enough to point a person at the right line.
pub fn locate(text: &str, path: &[Step]) -> Option<u64> {
    // (line number, indentation of the content after any `- `, dash column, content)
    let lines: Vec<(u64, usize, Option<usize>, &str)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let indent = l.len() - l.trim_start().len();
            let mut content = l.trim_start();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            let mut eff = indent;
            let mut dash = None;
            while let Some(rest) = content.strip_prefix("- ").or_else(|| (content == "-").then_some("")) {
                dash.get_or_insert(eff);
                let trimmed = rest.trim_start();
                eff += content.len() - trimmed.len();
                content = trimmed;
            }
            Some((i as u64 + 1, eff, dash, content))
        })
        .collect();
    let mut found = None;
    let mut start = 0;
    // The indentation the block we are in must exceed, and the column of the
    // list item we are in (its siblings end the search).
    let mut parent: Option<usize> = None;
    let mut item_dash: Option<usize> = None;
    for step in path {
        let (block_parent, block_dash, block_start) = (parent, item_dash, start);
        let lines_ref = &lines;
        let block = move |j: usize| {
            let (_, eff, dash, _) = lines_ref[j];
            let ends = block_parent.is_some_and(|p| eff <= p)
                || (j > block_start && block_dash.is_some() && dash == block_dash);
            !ends
        };
        let mut hit = None;
        match step {
            Step::Key(k) => {
                let heads = [format!("{k}:"), format!("\"{k}\":"), format!("'{k}':")];
                hit = lines
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take_while(|(j, _)| block(*j))
                    .find(|(_, (_, eff, _, c))| {
                        heads.iter().any(|h| c.starts_with(h.as_str())) && parent.is_none_or(|p| *eff > p)
                    })
                    .map(|(j, _)| j);
                let Some(j) = hit else { return found };
                parent = Some(lines[j].1);
                item_dash = None;
                start = j + 1;
            }
            Step::Index(n) => {
                let mut seen = 0;
                for (j, (_, _, dash, _)) in lines.iter().enumerate().skip(start).take_while(|(j, _)| block(*j)) {
                    let Some(d) = *dash else { continue };
                    if item_dash.is_none_or(|x| x == d) {
                        item_dash = Some(d);
                        if seen == *n {
                            hit = Some(j);
                            break;
                        }
                        seen += 1;
                    }
                }
                let Some(j) = hit else { return found };
                let d = item_dash.unwrap_or_default();
                parent = Some(d);
                item_dash = Some(d);
                start = j;
            }
        }
        found = hit.map(|j| lines[j].0);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_list_items() {
        let text = "#cloud-config\nstylus:\n  site:\n    name: a\n  externalRegistries:\n    registries:\n      - domain: x\n        insecure: true\n      - domain: y\n        insecur: true\n  localUI:\n    prot: 1\n";
        let at = |k: &str| locate(text, &steps_of(k));
        assert_eq!(at("stylus.site.name"), Some(4));
        assert_eq!(at("stylus.externalRegistries.registries[0].insecure"), Some(8));
        assert_eq!(at("stylus.externalRegistries.registries[1].insecur"), Some(10));
        assert_eq!(at("stylus.externalRegistries.registries[1].domain"), Some(9));
        assert_eq!(at("stylus.localUI.prot"), Some(12));
        assert_eq!(at("stylus.nothere"), Some(2), "the deepest enclosing key");
        assert_eq!(at("other"), None);
    }

    #[test]
    fn every_table_parent_is_a_container() {
        for (k, _) in STYLUS_KEYS {
            let parent = k.rsplit_once('.').map(|(p, _)| p.trim_end_matches("[]").trim_end_matches(".*"));
            if let Some(p) = parent {
                assert!(
                    matches!(kind_of(p), Some(Object | ObjectList | ObjectMap)),
                    "{k}: parent {p} is not a mapping kind"
                );
            }
        }
    }
}
