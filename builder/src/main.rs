//! `edgeiso`: a thin main that parses the command line and dispatches to one
//! module per command.

mod boot_test;
mod bundle_cmd;
mod cache;
mod cli;
mod create;
mod exit;
mod import;
mod iso_cmd;
mod lockfile;
mod overlay_cmd;
mod render_cmd;
mod source;
mod ui;

use clap::Parser;

use crate::cli::{BundleCommand, Cli, Command};

fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let ui = ui::Ui::new(cli.json);
    let result = match cli.command {
        Command::Bundle(BundleCommand::Create(a)) => create::run(&ui, a),
        Command::Bundle(BundleCommand::Verify(a)) => bundle_cmd::verify(&ui, a),
        Command::Bundle(BundleCommand::Inspect(a)) => bundle_cmd::inspect(&ui, a),
        Command::Bundle(BundleCommand::Import(a)) => import::run(&ui, a),
        Command::Render(a) => render_cmd::render_site(&ui, a),
        Command::Lint(a) => render_cmd::lint(&ui, a),
        Command::Overlay(a) => overlay_cmd::run(&ui, a),
        Command::Iso(a) => iso_cmd::run_iso(&ui, a),
        Command::Build(a) => iso_cmd::run_build(&ui, a),
        Command::SiteIso(a) => iso_cmd::site_iso(&ui, a),
        Command::BootTest(a) => boot_test::run(&ui, a),
    };
    if let Err(e) = result {
        let code = exit::code_of(&e);
        ui.error(&e);
        std::process::exit(code);
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,edgeiso=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
