//! The man pages under `docs/man/edgeiso/` (`edgeiso man --output DIR`,
//! hidden; `scripts/gen-docs.sh`) and `edgeiso completions SHELL`, generated
//! from the clap definitions by `edgeiso_contract::cli_docs`.

use std::path::Path;

use clap::CommandFactory;
use edgeiso_contract::cli_docs;

use super::Cli;

/// The man pages in `dir` that are not what the flags say today.
pub fn stale_man_pages(dir: &Path) -> Vec<String> {
    cli_docs::stale_man_pages(Cli::command(), dir)
}
