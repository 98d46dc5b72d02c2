//! Writing files and folders so that nobody ever sees half of one: the one
//! implementation every crate of edgeiso uses (the builder for bundles, the
//! cache, render output, overlay trees and ISOs; the agent for its outcome
//! and, later, node configuration).
//!
//! - [`temp`]: temp files and folders held under a lock while their writer
//!   runs, and the sweeps that remove only those whose writer is gone;
//! - [`atomic`]: a file written through such a temp and renamed into place,
//!   with its mode set before a byte is written;
//! - [`staged`]: a folder built under such a temp name and swapped in whole;
//! - [`files`]: a set of files built in memory, to be written in one step;
//! - [`secret`]: reading a secret (password) file: one line of a small regular file;
//! - [`bounded`]: reading a small input file whole, with a ceiling.

pub mod atomic;
pub mod bounded;
pub mod files;
pub mod secret;
pub mod staged;
pub mod temp;

pub use atomic::{write_atomic, write_atomic_with_mode, FileMode};
pub use bounded::{read_bounded, read_small_file};
pub use files::{FileSet, FileSetError, OutFile};
pub use secret::{read_secret_file, SecretFileError, SECRET_FILE_MAX};
pub use staged::{may_replace, StagedDir};
pub use temp::{
    create_locked, create_locked_as, create_locked_dir, scratch_dir, sweep_orphan_dirs, sweep_orphans, LockedDir,
    RemoveOnDrop,
};

/// The entries of `dir`, sorted (the tests' view of what a run left).
#[cfg(test)]
pub(crate) fn test_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}
