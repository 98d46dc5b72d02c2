//! The agent's error type and the exit status each kind of failure maps to.
//! Scripts (the systemd unit, the installer) branch on these numbers, so they
//! are part of the command-line contract: see `docs/agent.md`.

use std::path::PathBuf;

use edgeiso_bundle::BundleError;

/// Process exit statuses. Stable: other tools script against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Every image is in the registry.
    Ok = 0,
    /// Unexpected internal error (a bug, or an I/O error on the state dir).
    Internal = 1,
    /// Bad command line or configuration file (clap also uses 2).
    Usage = 2,
    /// The load ran to the end but some images failed (bad blob, manifest
    /// rejected, not confirmed by the registry, Harbor's project quota
    /// exhausted or Harbor in read-only mode, ...); the others were loaded.
    ImagesFailed = 3,
    /// The registry did not answer within `--wait-timeout`, or stopped
    /// answering for longer than the retry budget.
    RegistryUnavailable = 4,
    /// The registry refused the credentials (401, or a 403 that is not
    /// Harbor's quota or read-only refusal): retrying cannot help.
    AuthFailed = 5,
    /// No bundle found, or a bundle is unreadable (missing or truncated part).
    BadBundle = 6,
    /// TLS verification failed (unknown CA, wrong host name, ...).
    Tls = 7,
    /// `--deadline` expired before every image was loaded. The journal is
    /// consistent and interrupted uploads are resumable: a later run
    /// continues.
    Deadline = 8,
    /// `--trust`: a bundle is unsigned, signed by another key, or its
    /// bundle.json changed after signing. Checked before anything is
    /// pushed: nothing was.
    Untrusted = 9,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("no bundle found in {0}")]
    NoBundle(String),
    #[error("registry {url} did not answer within {waited}: {last_error}")]
    RegistryTimeout { url: String, waited: String, last_error: String },
    #[error("registry {url}: {message}")]
    Registry { url: String, message: String },
    #[error("registry {url} refused the credentials{user}: {message}")]
    Auth { url: String, user: String, message: String },
    #[error("registry {url} refuses writes: {message}")]
    Refused { url: String, message: String },
    #[error("TLS verification of {url} failed: {message} (pass the registry's CA with --ca FILE, or --insecure to skip verification)")]
    Tls { url: String, message: String },
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{failed} of {total} images failed to load")]
    ImagesFailed { failed: usize, total: usize },
    #[error("bundle {} refused, nothing pushed: {reason}", bundle.display())]
    Untrusted { bundle: PathBuf, reason: String },
    /// Images of a thin bundle whose source registry failed them, all in
    /// one way: the exit status of that way (4, 5 or 7).
    #[error("{message}")]
    Source { status: ExitStatus, message: String },
    #[error("bundle unreadable: {0}")]
    BundleRead(String),
    #[error(
        "--deadline {deadline} expired: {not_loaded} of {total} images not loaded by the deadline{} (run again to continue)",
        if *failed > 0 { format!(", {failed} failed otherwise (see above)") } else { String::new() }
    )]
    Deadline { deadline: String, not_loaded: usize, failed: usize, total: usize },
    #[error("--deadline {deadline} expired and the load did not stop within {grace}: ended (run again to continue)")]
    DeadlineOverrun { deadline: String, grace: String },
}

impl AgentError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            AgentError::Usage(_) => ExitStatus::Usage,
            AgentError::Bundle(_) | AgentError::NoBundle(_) | AgentError::BundleRead(_) => ExitStatus::BadBundle,
            AgentError::Source { status, .. } => *status,
            AgentError::RegistryTimeout { .. } | AgentError::Registry { .. } => ExitStatus::RegistryUnavailable,
            AgentError::Auth { .. } => ExitStatus::AuthFailed,
            AgentError::Tls { .. } => ExitStatus::Tls,
            AgentError::State { .. } => ExitStatus::Internal,
            AgentError::ImagesFailed { .. } | AgentError::Refused { .. } => ExitStatus::ImagesFailed,
            AgentError::Deadline { .. } | AgentError::DeadlineOverrun { .. } => ExitStatus::Deadline,
            AgentError::Untrusted { .. } => ExitStatus::Untrusted,
        }
    }
}
