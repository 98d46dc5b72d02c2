//! The lines a live boot prints on the console about the agent
//! (`EDGEISO-AGENT: ...`). The dracut hook prints the fixed ones, the agent
//! writes the outcome of its load (`--outcome-file`, which the hook relays),
//! and `edgeiso boot-test` reads them all back: one type, so writer and
//! reader cannot drift apart.

use std::fmt;

/// Every marker line starts with this.
pub const PREFIX: &str = "EDGEISO-AGENT: ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// The hook starts a load from the live medium.
    Loading { registry: String },
    /// The load finished: every image is in the registry.
    Loaded { images: usize, registry: String },
    /// liveLoad is off: the agent is on the live system, the node loads later.
    Staged { agent: String, registry: String },
    /// The load (or the hook) failed.
    Failed { reason: String },
    /// Any other line with the prefix (details, a log tail).
    Note(String),
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        match self {
            Marker::Loading { registry } => write!(f, "loading the bundle from the live medium into {registry}"),
            Marker::Loaded { images, registry } => write!(f, "loaded {images} images into {registry}"),
            Marker::Staged { agent, registry } => {
                write!(f, "staged: {agent} (liveLoad off; the installed node loads into {registry})")
            }
            Marker::Failed { reason } => write!(f, "failed: {reason}"),
            Marker::Note(text) => f.write_str(text),
        }
    }
}

impl Marker {
    /// The marker in a console line (which may carry a prefix of its own,
    /// such as a kernel timestamp, and a `\r`), or `None` when it has none.
    pub fn parse(line: &str) -> Option<Marker> {
        let text = &line[line.find(PREFIX)? + PREFIX.len()..];
        let text = text.trim_end_matches(['\r', '\n']);
        Some(Self::parse_text(text).unwrap_or_else(|| Marker::Note(text.to_owned())))
    }

    fn parse_text(text: &str) -> Option<Marker> {
        if let Some(reason) = text.strip_prefix("failed: ") {
            return Some(Marker::Failed { reason: reason.to_owned() });
        }
        if let Some(registry) = text.strip_prefix("loading the bundle from the live medium into ") {
            return Some(Marker::Loading { registry: registry.to_owned() });
        }
        if let Some(rest) = text.strip_prefix("loaded ") {
            let (n, registry) = rest.split_once(" images into ")?;
            return Some(Marker::Loaded { images: n.parse().ok()?, registry: registry.to_owned() });
        }
        if let Some(rest) = text.strip_prefix("staged: ") {
            let (agent, rest) = rest.split_once(" (liveLoad off; the installed node loads into ")?;
            return Some(Marker::Staged { agent: agent.to_owned(), registry: rest.strip_suffix(')')?.to_owned() });
        }
        None
    }

    /// The line marks the end of a live boot's load, one way or the other.
    pub fn is_outcome(&self) -> bool {
        matches!(self, Marker::Loaded { .. } | Marker::Staged { .. } | Marker::Failed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_reads_back_as_itself() {
        let r = "http://10.0.2.2:5000".to_string();
        for m in [
            Marker::Loading { registry: r.clone() },
            Marker::Loaded { images: 4, registry: r.clone() },
            Marker::Staged { agent: "/run/edgeiso/bin/edgeiso-agent".into(), registry: r.clone() },
            Marker::Failed { reason: "edgeiso-agent exit 4 after 2 images: no answer".into() },
            Marker::Note("the end of its log:".into()),
        ] {
            let line = format!("[   12.5] {m}\r");
            assert_eq!(Marker::parse(&line), Some(m.clone()), "{line}");
        }
        assert_eq!(
            Marker::Loaded { images: 4, registry: r }.to_string(),
            "EDGEISO-AGENT: loaded 4 images into http://10.0.2.2:5000"
        );
        assert_eq!(Marker::parse("an ordinary line"), None);
        assert_eq!(
            Marker::parse("EDGEISO-AGENT: loaded many images into x"),
            Some(Marker::Note("loaded many images into x".into()))
        );
    }
}
