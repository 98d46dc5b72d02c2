//! The Earthfile is a thin wrapper: every script and target it names must
//! exist, the targets the docs promise must exist, every `edgeiso` command it
//! runs must be a real subcommand, and it takes CanvOS' arguments.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn earthfile() -> String {
    std::fs::read_to_string(root().join("Earthfile")).expect("Earthfile at the repository root")
}

fn targets(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)^([a-z][a-z0-9-]*):\s*$").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

#[test]
fn promised_targets_and_arguments_exist() {
    let text = earthfile();
    let have = targets(&text);
    for t in ["build", "bundle", "iso", "boot-test"] {
        assert!(have.contains(t), "target +{t} missing; have {have:?}");
    }
    for arg in ["ISO_NAME", "ARCH", "SPEC", "BASE_ISO"] {
        assert!(text.contains(&format!("ARG --global {arg}=")), "ARG {arg} missing");
    }
}

#[test]
fn every_script_named_exists() {
    let text = earthfile();
    let re = regex::Regex::new(r"scripts/[A-Za-z0-9._/-]*[A-Za-z0-9_]").unwrap();
    let named: BTreeSet<&str> = re.find_iter(&text).map(|m| m.as_str()).collect();
    assert!(named.contains("scripts/build-agent-static.sh"), "{named:?}");
    for s in named {
        assert!(root().join(s).exists(), "the Earthfile names {s}, which does not exist");
    }
}

#[test]
fn every_target_referenced_exists() {
    let text = earthfile();
    let have = targets(&text);
    let re = regex::Regex::new(r"\+([a-z][a-z0-9-]*)").unwrap();
    for c in re.captures_iter(&text) {
        assert!(have.contains(&c[1]), "the Earthfile refers to +{}, which it does not define", &c[1]);
    }
    // Targets named in the docs (`earthly +x` or `+x` in backticks).
    let docs_re = regex::Regex::new(r"(?:earthly\s+|`)\+([a-z][a-z0-9-]*)").unwrap();
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            files.push(e.path());
        }
    }
    for f in files {
        let Ok(doc) = std::fs::read_to_string(&f) else { continue };
        for c in docs_re.captures_iter(&doc) {
            assert!(have.contains(&c[1]), "{} names +{}, which the Earthfile does not define", f.display(), &c[1]);
        }
    }
}

#[test]
fn every_edgeiso_command_run_is_real() {
    let text = earthfile();
    // A command: `edgeiso WORD [WORD]` followed by an option or a quoted path.
    let re = regex::Regex::new(r#"\bedgeiso ([a-z][a-z-]*)(?: ([a-z][a-z-]*))? +(?:--|")"#).unwrap();
    let mut checked = 0;
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    for c in re.captures_iter(&code) {
        let mut args: Vec<&str> = vec![&c[1]];
        if let Some(sub) = c.get(2) {
            args.push(sub.as_str());
        }
        args.push("--help");
        let run = common::edgeiso(&args, &[]);
        assert!(run.out.status.success(), "`edgeiso {}` is not a command:\n{}", args.join(" "), run.stderr());
        checked += 1;
    }
    assert!(checked >= 3, "found only {checked} edgeiso commands in the Earthfile");
}
