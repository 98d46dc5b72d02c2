//! How the CLI talks to people and pipelines: progress bars on a terminal,
//! plain lines otherwise, one JSON event per line on stdout with `--json`
//! (the events are typed in [`events`]).

pub mod events;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use events::Event;

/// Human output as it reaches the terminal: each line escaped
/// (`edgeiso_contract::printable`), so that a name from a bundle or an
/// answer from a registry can carry no escape sequence, and a line break
/// only where ours put one. JSON events are not passed through it:
/// serde_json writes C0 as `\u00XX` but DEL and C1 as they are, which is
/// why names with any of them are refused when a bundle is opened, and
/// registry error bodies are escaped where they are quoted.
fn printable(msg: &str) -> String {
    msg.split('\n').map(edgeiso_contract::printable::escape).collect::<Vec<_>>().join("\n")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Json,
    Terminal,
    Plain,
}

pub struct Ui {
    mode: Mode,
}

impl Ui {
    pub fn new(json: bool) -> Ui {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        };
        Ui { mode }
    }

    pub fn is_json(&self) -> bool {
        self.mode == Mode::Json
    }

    /// A machine-readable event (only printed with `--json`).
    pub fn event(&self, event: &Event) {
        if self.mode != Mode::Json {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, event);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    /// A line for people, on stderr (not printed with `--json`).
    pub fn line(&self, msg: impl AsRef<str>) {
        if self.mode != Mode::Json {
            eprintln!("{}", printable(msg.as_ref()));
        }
    }

    /// Output that is the point of the command (tables): stdout.
    pub fn print(&self, msg: impl AsRef<str>) {
        if self.mode != Mode::Json {
            println!("{}", printable(msg.as_ref()));
        }
    }

    pub fn error(&self, e: &anyhow::Error) {
        if self.mode == Mode::Json {
            self.event(&Event::Error { message: format!("{e:#}"), code: crate::exit::code_of(e) });
        }
        eprintln!("error: {}", printable(&format!("{e:#}")));
    }

    /// A byte progress bar: drawn on a terminal, hidden otherwise.
    pub fn bytes_bar(&self, total: u64, label: &str) -> ProgressBar {
        if self.mode != Mode::Terminal {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
