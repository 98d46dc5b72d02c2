//! What a run reports: one progress line per image and overall throughput
//! as log lines (stderr), and with `--json` the same as one JSON object per
//! line on stdout, for the installer and scripts. Nothing here ever carries a
//! credential: events are built from image names, digests and counts only.

use std::io::Write;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    pub json: bool,
}

impl Reporter {
    pub fn emit(&self, e: &Event) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut out, e);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
    }
}

/// `12.3 MiB`
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn events_are_tagged_kebab_case() {
        let e = Event::ImageSkipped { reference: "r".into(), reason: "bootstrap".into() };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"image-skipped","reference":"r","reason":"bootstrap"}"#
        );
    }
}
