//! How the CLI talks to people and pipelines: progress bars on a terminal,
//! plain lines otherwise, one JSON event per line on stdout with `--json`
//! (the events are typed in [`events`]).

pub mod events;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use events::Event;

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
            eprintln!("{}", msg.as_ref());
        }
    }

    /// Output that is the point of the command (tables): stdout.
    pub fn print(&self, msg: impl AsRef<str>) {
        if self.mode != Mode::Json {
            println!("{}", msg.as_ref());
        }
    }

    pub fn error(&self, e: &anyhow::Error) {
        if self.mode == Mode::Json {
            self.event(&Event::Error { message: format!("{e:#}"), code: crate::exit::code_of(e) });
        }
        eprintln!("error: {e:#}");
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
