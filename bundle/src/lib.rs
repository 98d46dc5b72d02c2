//! The edgeiso content bundle, shared by the builder (which writes it) and the
//! agent (which pushes it into the site registry).
//!
//! A bundle is one uncompressed tar that is also a valid OCI image-layout
//! archive, with `bundle.json` as its first member. See `docs/bundle-format.md`.

pub mod claims;
pub mod digest;
pub mod format;
pub mod manifest;
pub mod names;
pub mod parts;
pub mod reader;
pub mod reference;
pub mod signature;
pub mod verify;
pub mod writer;

mod error;

pub use digest::Digest;
pub use error::BundleError;
pub use format::{BaseBundle, BundleJson, ImageRecord, Partial, Role};
pub use reader::{Bundle, ImageGraph, MemberLoc};
pub use reference::{harbor_prefix, harbor_target, ImageRef, TargetRef};
