//! Man pages and shell completions, generated from the clap definitions of
//! both binaries (`edgeiso`, `edgeiso-agent`) by one implementation, so the
//! docs under `docs/man/` cannot drift from the flags: a test in each binary's
//! crate regenerates them and fails when the checked-in pages are stale
//! (`scripts/gen-docs.sh` rewrites them).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// The docs subcommands both binaries have: flatten into a `Subcommand` enum
/// with `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DocsCommand {
    /// Print a completion script for a shell.
    #[command(after_help = "Examples (bash, zsh, fish):
  ... completions bash > /etc/bash_completion.d/<program>
  ... completions zsh > \"${fpath[1]}/_<program>\"
  ... completions fish > ~/.config/fish/completions/<program>.fish")]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages (one for the program and one per command) into a folder.
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
    },
}

impl DocsCommand {
    /// Run it for the program whose command line is `cmd`.
    pub fn run(self, cmd: clap::Command) -> io::Result<()> {
        match self {
            DocsCommand::Completions { shell } => {
                write_completions(cmd, shell, &mut io::stdout());
                Ok(())
            }
            DocsCommand::Man { output } => {
                for p in write_man_pages(cmd, &output)? {
                    println!("{}", p.display());
                }
                Ok(())
            }
        }
    }
}

/// Every man page of `cmd`: `NAME.1`, and `NAME-SUB.1` for each visible
/// subcommand (and theirs, recursively), as (file name, text).
pub fn man_pages(cmd: clap::Command) -> Vec<(String, Vec<u8>)> {
    let mut cmd = cmd;
    cmd.build();
    let mut out = Vec::new();
    let name = cmd.get_name().to_owned();
    render(&cmd, &name, &mut out);
    out
}

fn render(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.to_owned()).bin_name(name.replace('-', " ")))
        .render(&mut page)
        .expect("rendering into memory does not fail");
    out.push((format!("{name}.1"), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        render(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}

/// Write `cmd`'s man pages into `dir` (created), replacing pages of the
/// same name; the paths written.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (file, text) in man_pages(cmd) {
        let path = dir.join(file);
        crate::fs::write_atomic(&path, &text, crate::fs::FileMode::Public)?;
        written.push(path);
    }
    Ok(written)
}

/// The completion script of `cmd` for `shell`.
pub fn write_completions(cmd: clap::Command, shell: Shell, out: &mut dyn Write) {
    let mut cmd = cmd;
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Pages in `dir` that differ from what `cmd` generates, or are missing, or
/// are left over from a command that is gone (for `NAME.1` and `NAME-*.1`).
pub fn stale_man_pages(cmd: clap::Command, dir: &Path) -> Vec<String> {
    let name = cmd.get_name().to_owned();
    let pages = man_pages(cmd);
    let mut stale: Vec<String> = pages
        .iter()
        .filter(|(file, text)| std::fs::read(dir.join(file)).ok().as_ref() != Some(text))
        .map(|(file, _)| file.clone())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let ours = file == format!("{name}.1") || file.starts_with(&format!("{name}-")) && file.ends_with(".1");
            if ours && !pages.iter().any(|(f, _)| *f == file) {
                stale.push(file);
            }
        }
    }
    stale.sort();
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("tool")
            .about("A tool")
            .subcommand(clap::Command::new("run").about("Run it").arg(clap::Arg::new("fast").long("fast")))
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn one_page_per_visible_command_and_staleness_is_seen() {
        let pages = man_pages(cmd());
        let names: Vec<&str> = pages.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["tool.1", "tool-run.1"]);
        let run = String::from_utf8(pages[1].1.clone()).unwrap();
        assert!(run.contains("fast"), "{run}");
        let d = tempfile::tempdir().unwrap();
        assert_eq!(stale_man_pages(cmd(), d.path()), ["tool-run.1", "tool.1"]);
        write_man_pages(cmd(), d.path()).unwrap();
        assert!(stale_man_pages(cmd(), d.path()).is_empty());
        std::fs::write(d.path().join("tool-gone.1"), "").unwrap();
        assert_eq!(stale_man_pages(cmd(), d.path()), ["tool-gone.1"]);
        let mut bash = Vec::new();
        write_completions(cmd(), Shell::Bash, &mut bash);
        assert!(String::from_utf8(bash).unwrap().contains("--fast"));
    }
}
