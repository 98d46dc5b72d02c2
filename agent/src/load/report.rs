//! How a load's failures are told apart and what the run ends with: each
//! image's failure has a kind, and the kinds decide the exit status.

use std::time::Duration;

use crate::registry::RegistryError;
use crate::upload::UploadError;
use crate::{AgentError, ExitStatus};

/// How one image's failure is classified for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The bundle's content is bad (corrupt blob, unparsable manifest) or the
    /// registry rejected it: exit 3.
    Content,
    /// The registry stopped answering: exit 4.
    Unavailable,
    /// Credentials refused: exit 5.
    Auth,
    /// The bundle could not be read (I/O error from the medium, cut short):
    /// exit 6.
    Bundle,
    /// TLS verification failed: exit 7.
    Tls,
    /// The journal could not be written (state directory): exit 1.
    State,
    /// `--deadline` expired before the image was loaded: exit 8.
    Deadline,
    /// The source registry of a thin bundle's blob stopped answering: exit 4.
    SourceUnavailable,
    /// The source registry refused the credentials: exit 5.
    SourceAuth,
    /// TLS verification of the source registry failed: exit 7.
    SourceTls,
}

#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: usize,
    pub failed: Vec<(String, FailKind, String)>,
    pub skipped: usize,
    pub bytes_sent: u64,
    pub seconds: f64,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub requests: u64,
    pub retries: u64,
    /// `--deadline` as given, when there was one.
    pub deadline: Option<Duration>,
}

impl LoadReport {
    /// The error the run ends with, if any image failed. A broken state
    /// directory (1) comes first, then an unreadable bundle (6), then an
    /// expired deadline (8), then a registry that stopped answering (4, even
    /// when other images failed otherwise: a retry, which the systemd unit
    /// makes for 4 only, loads those, and the next run ends with the other
    /// failures' code); failures all of one kind give that kind's code (5,
    /// 7); any other mix is 3.
    pub fn outcome(&self, registry: &str) -> Result<(), AgentError> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let total = self.loaded + self.failed.len();
        let kinds: Vec<FailKind> = self.failed.iter().map(|f| f.1).collect();
        let first = |kind: FailKind| self.failed.iter().find(|f| f.1 == kind).map(|f| f.2.clone());
        if let Some(message) = first(FailKind::State) {
            return Err(AgentError::State { path: "journal".into(), source: std::io::Error::other(message) });
        }
        if let Some(message) = first(FailKind::Bundle) {
            return Err(AgentError::BundleRead(message));
        }
        if kinds.contains(&FailKind::Deadline) {
            return Err(AgentError::Deadline {
                deadline: self.deadline.map(|d| humantime::format_duration(d).to_string()).unwrap_or_default(),
                not_loaded: kinds.iter().filter(|k| **k == FailKind::Deadline).count(),
                failed: kinds.iter().filter(|k| **k != FailKind::Deadline).count(),
                total,
            });
        }
        let unavailable =
            kinds.iter().filter(|k| matches!(k, FailKind::Unavailable | FailKind::SourceUnavailable)).count();
        let from_sources = |kind: FailKind, status: ExitStatus, what: &str| {
            let n = kinds.iter().filter(|k| **k == kind).count();
            let others = match self.failed.len() - n {
                0 => String::new(),
                n => format!("; {n} failed otherwise (see above)"),
            };
            AgentError::Source {
                status,
                message: format!(
                    "{n} of {total} images not loaded: {what}{others}: {}",
                    first(kind).unwrap_or_default()
                ),
            }
        };
        if unavailable > 0 && !kinds.contains(&FailKind::Unavailable) {
            return Err(from_sources(
                FailKind::SourceUnavailable,
                ExitStatus::RegistryUnavailable,
                "their source registry did not answer (run again to continue)",
            ));
        }
        if kinds.iter().all(|k| *k == FailKind::SourceAuth) {
            return Err(from_sources(
                FailKind::SourceAuth,
                ExitStatus::AuthFailed,
                "the source registry refused the credentials",
            ));
        }
        if kinds.iter().all(|k| *k == FailKind::SourceTls) {
            return Err(from_sources(
                FailKind::SourceTls,
                ExitStatus::Tls,
                "TLS verification of their source registry failed (give its CA as caFile of its sources entry)",
            ));
        }
        if unavailable > 0 {
            let others = match self.failed.len() - unavailable {
                0 => String::new(),
                n => format!(", and {n} failed otherwise (see above)"),
            };
            return Err(AgentError::Registry {
                url: registry.to_owned(),
                message: format!(
                    "stopped answering; {unavailable} of {total} images not loaded (run again to continue){others}"
                ),
            });
        }
        if let Some(message) = first(FailKind::Tls).filter(|_| kinds.iter().all(|k| *k == FailKind::Tls)) {
            return Err(AgentError::Tls { url: registry.to_owned(), message });
        }
        if kinds.iter().all(|k| *k == FailKind::Auth) {
            return Err(AgentError::Auth {
                url: registry.to_owned(),
                user: String::new(),
                message: format!("{} of {total} images could not be pushed: {}", self.failed.len(), self.failed[0].2),
            });
        }
        Err(AgentError::ImagesFailed { failed: self.failed.len(), total })
    }
}

#[derive(Debug, Clone)]
pub(super) struct ImageFailure {
    pub(super) kind: FailKind,
    pub(super) message: String,
}

impl From<RegistryError> for ImageFailure {
    fn from(e: RegistryError) -> Self {
        let kind = match &e {
            RegistryError::Auth { .. } => FailKind::Auth,
            RegistryError::Tls { .. } => FailKind::Tls,
            e if e.is_transient() => FailKind::Unavailable,
            _ => FailKind::Content,
        };
        ImageFailure { kind, message: e.to_string() }
    }
}

impl From<UploadError> for ImageFailure {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Registry(r) => r.into(),
            e @ UploadError::Read { .. } => ImageFailure { kind: FailKind::Bundle, message: e.to_string() },
            e @ UploadError::Corrupt { .. } => ImageFailure { kind: FailKind::Content, message: e.to_string() },
            UploadError::Source { ref error, .. } => {
                let kind = match error {
                    RegistryError::Auth { .. } => FailKind::SourceAuth,
                    RegistryError::Tls { .. } => FailKind::SourceTls,
                    r if r.is_transient() => FailKind::SourceUnavailable,
                    _ => FailKind::Content,
                };
                ImageFailure { kind, message: e.to_string() }
            }
        }
    }
}

impl From<edgeiso_bundle::BundleError> for ImageFailure {
    fn from(e: edgeiso_bundle::BundleError) -> Self {
        let kind = match &e {
            edgeiso_bundle::BundleError::Io { .. } => FailKind::Bundle,
            _ => FailKind::Content,
        };
        ImageFailure { kind, message: e.to_string() }
    }
}

impl ImageFailure {
    pub(super) fn internal(message: String) -> Self {
        ImageFailure { kind: FailKind::Content, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExitStatus;

    fn report(kinds: &[FailKind]) -> LoadReport {
        LoadReport {
            loaded: 2,
            failed: kinds.iter().enumerate().map(|(i, k)| (format!("p/img:{i}"), *k, format!("why {i}"))).collect(),
            deadline: Some(Duration::from_secs(600)),
            ..Default::default()
        }
    }

    fn code(kinds: &[FailKind]) -> u8 {
        report(kinds).outcome("http://r").err().map_or(0, |e| e.exit_status().code())
    }

    #[test]
    fn failure_kinds_map_to_the_documented_exit_statuses() {
        use FailKind::*;
        assert_eq!(code(&[]), 0);
        assert_eq!(code(&[Content]), ExitStatus::ImagesFailed.code());
        assert_eq!(code(&[Unavailable, Unavailable]), ExitStatus::RegistryUnavailable.code());
        assert_eq!(code(&[Auth]), ExitStatus::AuthFailed.code());
        assert_eq!(code(&[Tls]), ExitStatus::Tls.code());
        assert_eq!(code(&[Bundle]), ExitStatus::BadBundle.code());
        assert_eq!(code(&[State]), ExitStatus::Internal.code());
        assert_eq!(code(&[Deadline]), ExitStatus::Deadline.code());
        // Precedence: state dir, unreadable bundle, deadline, then one kind.
        assert_eq!(code(&[Content, State, Bundle, Deadline]), 1);
        assert_eq!(code(&[Content, Bundle, Deadline]), 6);
        assert_eq!(code(&[Content, Deadline, Unavailable]), 8);
        // A registry that stopped answering wins over other failures: the
        // unit retries 4 (not 3), and the retry loads those images.
        assert_eq!(code(&[Content, Unavailable]), 4);
        assert_eq!(code(&[Auth, Unavailable]), 4);
        let e = report(&[Unavailable, Content]).outcome("r").unwrap_err();
        assert!(
            e.to_string().contains("1 of 4 images not loaded") && e.to_string().contains("1 failed otherwise"),
            "{e}"
        );
        assert_eq!(code(&[Tls, Auth]), 3);
        assert_eq!(code(&[Content, Auth]), 3);
        let e = report(&[Deadline, Content]).outcome("r").unwrap_err();
        assert!(e.to_string().contains("1 of 4 images not loaded by the deadline, 1 failed otherwise"), "{e}");
        let e = report(&[Deadline]).outcome("r").unwrap_err();
        assert!(e.to_string().contains("1 of 3 images not loaded by the deadline (run again"), "{e}");
    }
}
