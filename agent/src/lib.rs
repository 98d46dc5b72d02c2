//! `edgeiso-agent`: pushes every workload image of a content bundle into the
//! site registry (Harbor or any OCI distribution registry), resumably, and
//! serves the admission webhook that points new pods at it.
//!
//! The binary is a thin dispatcher over these modules; tests drive both the
//! binary and the modules directly.

pub mod auth;
pub mod cli;
pub mod config;
pub mod discover;
pub mod dns;
pub mod error;
pub mod events;
pub mod fetch;
pub mod journal;
pub mod load;
pub mod location;
pub mod node_mirrors;
pub mod outcome;
pub mod registry;
pub mod retry;
pub mod robot;
pub mod sources;
pub mod status;
pub mod tls;
pub mod trust;
pub mod upload;
pub mod webhook;

pub use error::{AgentError, ExitStatus};
