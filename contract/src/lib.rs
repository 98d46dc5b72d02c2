//! What the edgeiso build side (`edgeiso`) and the node side
//! (`edgeiso-agent`, the dracut hook, the systemd unit) both know, in one
//! place, so that one setting is added in one place:
//!
//! - [`paths`]: every path the render output, the ISO, the initramfs
//!   overlay, the live system and the installed node share;
//! - [`agent_config`]: the agent's settings, one struct for its flags and
//!   its `agent.yaml`;
//! - [`registry_url`]: the one parser of a registry's URL;
//! - [`events`] and [`console`]: what the agent reports (`--json` events) and
//!   the console lines of a live boot, as types both sides read;
//! - [`kernel_args`]: which kernel arguments a live load adds, and the rule
//!   for what may be added;
//! - [`unit`]: the agent's systemd unit; [`load_command`]: the command
//!   line it and the live hook run the agent with, deadline included;
//! - [`printable`]: the one rule for control characters in names and in
//!   text printed from a bundle or a registry (refuse, or escape);
//! - [`site_area`]: the per-site region of a golden ISO and its layout;
//! - [`fs`]: temp files, temp folders and atomic writes (the one
//!   implementation the workspace uses);
//! - [`cli_docs`]: man pages and completions of both binaries.
//!
//! A leaf crate: it depends on no other crate of the workspace.

pub mod agent_config;
pub mod cli_docs;
pub mod console;
pub mod epoch;
pub mod events;
pub mod fs;
pub mod kernel_args;
pub mod load_command;
pub mod paths;
pub mod printable;
pub mod registry_url;
pub mod site_area;
pub mod unit;

pub use agent_config::AgentConfig;
pub use registry_url::{RegistryUrl, RegistryUrlError};
