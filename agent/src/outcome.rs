//! `--outcome-file`: the end of a load as the console lines of a live boot
//! (`edgeiso_contract::console::Marker`). The dracut hook relays the file to
//! the console, where `edgeiso boot-test` reads it; the count comes from the
//! load itself, so nobody has to count events in a shell.

use std::path::Path;

use edgeiso_contract::console::Marker;
use edgeiso_contract::fs::{write_atomic, FileMode};

use crate::AgentError;

/// The marker for a load that loaded `loaded` images into `registry` and
/// ended with `result`.
pub fn marker(registry: &str, loaded: usize, result: &Result<(), AgentError>) -> Marker {
    match result {
        Ok(()) => Marker::Loaded { images: loaded, registry: registry.to_owned() },
        Err(e) => {
            // One line: the console shows it as one marker; and no control
            // character of a path or a name reaches the console.
            let message = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            let message = edgeiso_contract::printable::escape(&message);
            Marker::Failed {
                reason: format!("edgeiso-agent exit {} after {loaded} images: {message}", e.exit_status().code()),
            }
        }
    }
}

/// Write the marker to `path` (whole or not at all).
pub fn write(path: &Path, marker: &Marker) -> std::io::Result<()> {
    write_atomic(path, format!("{marker}\n").as_bytes(), FileMode::Public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_reads_back_as_a_marker() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("outcome");
        write(&p, &marker("http://r:5000", 4, &Ok(()))).unwrap();
        let line = std::fs::read_to_string(&p).unwrap();
        assert_eq!(line, "EDGEISO-AGENT: loaded 4 images into http://r:5000\n");
        assert_eq!(Marker::parse(&line), Some(Marker::Loaded { images: 4, registry: "http://r:5000".into() }));
        let e = AgentError::Registry { url: "http://r:5000".into(), message: "stopped\nanswering".into() };
        let m = marker("http://r:5000", 2, &Err(e));
        assert_eq!(
            m,
            Marker::Failed {
                reason: "edgeiso-agent exit 4 after 2 images: registry http://r:5000: stopped answering".into()
            }
        );
        let e = AgentError::Registry { url: "http://r:5000".into(), message: "\u{1b}[2J\u{9b}31m".into() };
        let line = marker("http://r:5000", 0, &Err(e)).to_string();
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
}
