//! `edgeiso`: parse the command line and hand it to the library.

use clap::Parser;

fn main() {
    let cli = edgeiso::cli::Cli::parse();
    std::process::exit(edgeiso::cli::run(cli));
}
