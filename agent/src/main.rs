//! `edgeiso-agent`: parse the command line, set up logging, dispatch, and map
//! the outcome to a documented exit status (see `edgeiso_agent::ExitStatus`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use edgeiso_agent::cli::{Cli, Command, LoadArgs, WebhookArgs};
use edgeiso_agent::config::LoadSettings;
use edgeiso_agent::{load, outcome, status, webhook, AgentError, ExitStatus};
use edgeiso_contract::agent_config::PASSWORD_ENV;
use tracing_subscriber::EnvFilter;

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Our own modules at the chosen level; libraries only when asked for.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,edgeiso_agent={default},edgeiso_bundle={default}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// `load`, and its outcome written where `--outcome-file` says.
fn run_load(args: &LoadArgs) -> Result<(), AgentError> {
    let mut registry = String::new();
    let mut loaded = 0;
    let password_env = std::env::var(PASSWORD_ENV).ok();
    let result = LoadSettings::resolve(args, password_env).and_then(|settings| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| AgentError::Usage(format!("cannot start the async runtime: {e}")))?;
        registry = settings.registry.to_string();
        if let Some(deadline) = settings.deadline {
            deadline_watchdog(deadline, registry.clone(), args.outcome_file.clone());
        }
        let report = runtime.block_on(load::run(settings));
        // Work the deadline (or a failure) abandoned in blocking threads (a
        // read from a slow medium, a bundle walk) must not hold the process:
        // dropping the runtime would wait for it.
        runtime.shutdown_background();
        let report = report?;
        loaded = report.loaded;
        report.outcome(&registry)
    });
    if let Some(path) = &args.outcome_file {
        if let Err(e) = outcome::write(path, &outcome::marker(&registry, loaded, &result)) {
            tracing::warn!("cannot write the outcome to {}: {e}", path.display());
        }
    }
    result
}

/// The last resort of `--deadline`: the load stops itself at the deadline
/// (exit 8, journal consistent); should anything keep it from returning,
/// this ends the process `DEADLINE_GRACE` later, with the same exit status
/// and outcome.
fn deadline_watchdog(deadline: std::time::Duration, registry: String, outcome_file: Option<std::path::PathBuf>) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline + load::DEADLINE_GRACE);
        let e = AgentError::DeadlineOverrun {
            deadline: humantime::format_duration(deadline).to_string(),
            grace: humantime::format_duration(load::DEADLINE_GRACE).to_string(),
        };
        tracing::error!("{e}");
        if let Some(path) = &outcome_file {
            let _ = outcome::write(path, &outcome::marker(&registry, 0, &Err(e)));
        }
        std::process::exit(ExitStatus::Deadline.code().into());
    });
}

/// `webhook`: serve until stopped. One thread: a review takes microseconds,
/// and one thread (one allocator arena, no cross-thread wake-ups) is what
/// kept its memory and tail latency low (docs/benchmarks.md).
fn run_webhook(args: &WebhookArgs) -> Result<(), AgentError> {
    let settings = webhook::WebhookSettings::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(webhook::run(settings))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Load(args) => run_load(&args),
        Command::Webhook(args) => run_webhook(&args),
        Command::Status(args) => status::collect(&args.state_dir).map(|s| status::print(&s, args.json)),
        Command::Docs(docs) => docs.run(Cli::command()).map_err(|e| AgentError::Usage(e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_status();
            let e = anyhow::Error::new(e);
            // Escaped: a path or a name in it may come from outside.
            tracing::error!("{}", edgeiso_contract::printable::escape(&format!("{e:#}")));
            if code == ExitStatus::Internal {
                eprintln!("edgeiso-agent: internal error: {e:?}");
            }
            ExitCode::from(code.code())
        }
    }
}
