//! The agent's `--json` events: one JSON object per line on stdout, tagged
//! by `event` in kebab-case. Pipelines and the build side read them, so they
//! are typed here, beside the agent's configuration, and deserialize as well
//! as they serialize. Nothing here ever carries a credential: events are
//! built from image names, digests and counts only.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Start {
        registry: String,
        flavor: String,
        project: String,
        bundles: usize,
        images: usize,
        bytes: u64,
    },
    ProjectCreated {
        project: String,
    },
    ImageLoaded {
        index: usize,
        total: usize,
        reference: String,
        target: String,
        digest: String,
        /// Bytes of blobs sent for this image (0 when everything was there).
        uploaded_bytes: u64,
        blobs_uploaded: usize,
        blobs_mounted: usize,
        blobs_present: usize,
        /// Nothing to do: the registry already had this exact image.
        already_present: bool,
    },
    /// One blob made present in one repository (`--json` only).
    Blob {
        repository: String,
        digest: String,
        size: u64,
        outcome: String,
    },
    ImageFailed {
        index: usize,
        total: usize,
        reference: String,
        target: String,
        error: String,
    },
    ImageSkipped {
        reference: String,
        reason: String,
    },
    Progress {
        images_done: usize,
        images_total: usize,
        bytes_sent: u64,
        bytes_per_second: u64,
    },
    Done {
        loaded: usize,
        failed: usize,
        skipped: usize,
        bytes_sent: u64,
        seconds: f64,
        bytes_per_second: u64,
        blobs_uploaded: usize,
        blobs_mounted: usize,
        blobs_present: usize,
        requests: u64,
        retries: u64,
    },
}

impl Event {
    /// Read one line of `--json` output; `None` for a line that is not an
    /// event (a pipeline may mix in other output).
    pub fn parse_line(line: &str) -> Option<Event> {
        serde_json::from_str(line.trim_end()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_kebab_case_and_read_back() {
        let e = Event::ImageSkipped { reference: "r".into(), reason: "bootstrap".into() };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(line, r#"{"event":"image-skipped","reference":"r","reason":"bootstrap"}"#);
        assert_eq!(Event::parse_line(&line), Some(e));
        assert_eq!(Event::parse_line("not json"), None);
        assert_eq!(Event::parse_line(r#"{"event":"no-such-event"}"#), None);
    }
}
