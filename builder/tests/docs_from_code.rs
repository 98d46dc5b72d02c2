//! Docs generated from the code stay in step with it: the man pages under
//! docs/man/ are what the flags say today (`bash scripts/gen-docs.sh`
//! regenerates them), and every completion script names every command.

use std::path::Path;

#[test]
fn man_pages_are_not_stale() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man/edgeiso");
    let stale = edgeiso::cli::docs::stale_man_pages(&dir);
    assert!(stale.is_empty(), "stale man pages in docs/man: {stale:?}; run `bash scripts/gen-docs.sh`");
}

#[test]
fn completions_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_edgeiso")).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        for cmd in ["bundle", "render", "lint", "overlay", "iso", "build", "site-iso", "boot-test", "completions"] {
            assert!(text.contains(cmd), "{shell} completion lacks {cmd}");
        }
    }
}
