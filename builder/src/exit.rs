//! Exit codes that mean something to a pipeline (documented in `--help`).

use std::fmt;

pub const FAILURE: i32 = 1;
pub const INVALID_INPUT: i32 = 3;
pub const VERIFY_FAILED: i32 = 4;
pub const REGISTRY_REFUSED: i32 = 5;
/// `bundle verify --key`: unsigned, signed by another key, or `bundle.json`
/// changed after signing (decision 0015). Its own code: a pipeline tells an
/// untrusted bundle from a damaged one.
pub const SIGNATURE_REFUSED: i32 = 6;

/// An error carrying the exit code it should end the process with.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub error: anyhow::Error,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Exit {}

pub fn with_code(code: i32, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Exit { code, error: error.into() })
}

pub fn code_of(e: &anyhow::Error) -> i32 {
    e.chain().find_map(|c| c.downcast_ref::<Exit>()).map_or(FAILURE, |x| x.code)
}
