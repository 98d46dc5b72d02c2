//! Parse errors a site author can act on: the file, line and column, the
//! nearest known key for a typo, and never a secret (the values of
//! secret-looking keys are redacted in the quoted lines; lint uses the same
//! redaction).

use std::path::Path;

use crate::error::{Pos, SpecError};
use crate::suggest;

/// Parse YAML into `T`, turning serde-saphyr's error into a `SpecError` that
/// names the file, line and column, and suggests the nearest known key.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, SpecError> {
    serde_saphyr::from_str(text).map_err(|e| yaml_error(path, &e))
}

/// The unknown key of a parse error and the keys that were expected there.
pub(super) fn unknown_field(e: &serde_saphyr::Error) -> Option<(String, Vec<String>)> {
    match e.without_snippet() {
        serde_saphyr::Error::SerdeUnknownField { field, expected, .. } => {
            Some((field.clone(), expected.iter().map(|s| s.to_string()).collect()))
        }
        bare => suggest::parse_unknown_field(&bare.to_string()),
    }
}

/// Like `yaml_error`, without the snippet of source lines: for files that may
/// hold secrets (user-data, manifests, profiles), whose lines must not reach logs.
pub(crate) fn yaml_error_quiet(path: &Path, e: &serde_saphyr::Error) -> SpecError {
    match yaml_error(path, e) {
        SpecError::Yaml { file, pos, message, hint, .. } => SpecError::Yaml { file, pos, message, hint, snippet: None },
        other => other,
    }
}

pub(crate) fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> SpecError {
    let bare = e.without_snippet();
    let pos = e.location().as_ref().and_then(Pos::of);
    let mut message = bare.to_string();
    // The location-less Display appends " at line L, column C": we print our own.
    if let Some(i) = message.rfind(" at line ") {
        if message[i..].contains("column") {
            message.truncate(i);
        }
    }
    // A developer-facing hint we do not want to show a site author.
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    let unknown = unknown_field(e);
    let suggestion = unknown
        .as_ref()
        .and_then(|(field, expected)| suggest::did_you_mean(field, expected.iter().map(String::as_str)));
    let hint = suggestion.map(|k| format!("did you mean `{k}`?"));
    // A misspelt password key (`pasword:`) holds a password: its value is
    // redacted like that of any key that looks like it holds a secret.
    let also_secret = unknown.as_ref().map(|(f, _)| f.as_str()).filter(|f| {
        suggestion.is_some_and(is_secret_key)
            || suggest::did_you_mean(f, ["password", "passwd", "secret", "token", "apiKey"]).is_some()
    });
    let name = path.display().to_string();
    let rendered = e.render_with_options(serde_saphyr::render_options! { source_name: Some(name.as_str()) });
    // First line repeats the message; the rest is ` --> file:l:c` and the source lines.
    let snippet = rendered
        .split_once('\n')
        .map(|(_, s)| s.trim_end().replace(", set DuplicateKeyPolicy in Options if acceptable", ""))
        .map(|s| redact_snippet(&s, also_secret))
        .filter(|s| !s.is_empty());
    SpecError::Yaml { file: path.to_owned(), pos, message, hint, snippet }
}

/// Does a key's name suggest its value is a secret (password, token, key)?
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "credential", "auth"].iter().any(|w| k.contains(w))
}

/// The snippet's source lines (`N | text`) with the values of secret-looking
/// keys (and of `also`, a misspelt secret key) replaced by `<redacted>`.
fn redact_snippet(snippet: &str, also: Option<&str>) -> String {
    snippet
        .lines()
        .map(|line| match line.split_once(" | ") {
            Some((n, text)) if !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()) => {
                format!("{n} | {}", redact_line(text, also))
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Redact the values of secret-looking keys on one YAML line, block
/// (`password: x`) or flow (`{password: x, y: z}`) form.
pub(crate) fn redact_line(text: &str, also: Option<&str>) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0; // copied up to here
    let mut depth = 0usize; // open `{`/`[` seen so far
    let mut key_start = 0;
    let mut j = 0;
    while j < b.len() {
        match b[j] {
            b'{' | b'[' => {
                depth += 1;
                key_start = j + 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' | b' ' | b'-' => key_start = j + 1,
            b'#' if j == 0 || b[j - 1] == b' ' => break,
            b':' if b.get(j + 1).is_none_or(|c| *c == b' ') => {
                let key = text[key_start..j].trim().trim_matches(|c| c == '"' || c == '\'');
                if !key.is_empty() && (is_secret_key(key) || also == Some(key)) {
                    // The value: a quoted scalar to its closing quote, else to
                    // the next `,`/`}`/`]` inside a flow collection or the end.
                    let mut s = j + 1;
                    while s < b.len() && b[s] == b' ' {
                        s += 1;
                    }
                    let end = match b.get(s) {
                        Some(q @ (b'"' | b'\'')) => text[s + 1..].find(*q as char).map_or(b.len(), |e| s + 1 + e + 1),
                        Some(_) if depth > 0 => text[s..].find([',', '}', ']']).map_or(b.len(), |e| s + e),
                        Some(_) => b.len(),
                        None => s,
                    };
                    if end > s {
                        out.push_str(&text[i..s]);
                        out.push_str("<redacted>");
                        i = end;
                        j = end;
                        key_start = end;
                        continue;
                    }
                }
                key_start = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    out.push_str(&text[i..]);
    out
}
