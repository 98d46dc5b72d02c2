//! Errors from reading a site spec. Every message names the file it is about,
//! and the line and column when the problem sits at a place in a YAML file.
//! None of them ever carries the content of a password file.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a YAML file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub(crate) fn of(loc: &serde_saphyr::Location) -> Option<Pos> {
        // serde-saphyr reports line 0 for "unknown" (e.g. values built without a parser).
        (loc.line() > 0).then(|| Pos { line: loc.line(), column: loc.column() })
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// `file:line:column` when the place is known, else `file`.
pub(crate) struct Where<'a>(pub &'a Path, pub Option<Pos>);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(p) => write!(f, "{}:{}", self.0.display(), p),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A file could not be read (the spec itself, a password file, a CA file...).
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The YAML parser or the schema refused the file.
    #[error("{}: {message}{}{}", Where(file, *pos), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default(), snippet.as_deref().map(|s| format!("\n{s}")).unwrap_or_default())]
    Yaml {
        file: PathBuf,
        pos: Option<Pos>,
        message: String,
        /// "did you mean `insecure`?" for a misspelt key.
        hint: Option<String>,
        /// The offending lines with a caret, as the parser rendered them.
        snippet: Option<String>,
    },

    /// The file parsed, but a value is not acceptable.
    #[error("{}: {message}", Where(file, *pos))]
    Invalid { file: PathBuf, pos: Option<Pos>, message: String },

    /// A Docker/Podman auth file is malformed.
    #[error("{}: {message}", path.display())]
    AuthFile { path: PathBuf, message: String },
}

impl SpecError {
    pub(crate) fn invalid(file: &Path, pos: Option<Pos>, message: impl Into<String>) -> SpecError {
        SpecError::Invalid { file: file.to_owned(), pos, message: message.into() }
    }

    /// The line and column the error points at, when it points at one.
    pub fn pos(&self) -> Option<Pos> {
        match self {
            SpecError::Yaml { pos, .. } | SpecError::Invalid { pos, .. } => *pos,
            _ => None,
        }
    }
}
