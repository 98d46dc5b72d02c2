//! Rules of the workspace that the compiler does not check (decision 0008):
//! one implementation of temp files, shared knowledge only in
//! `edgeiso-contract`, no source file over 1,000 lines.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every `.rs` file under the crates' `src/`, with the part before its
/// unit tests (`#[cfg(test)]`): what ships.
fn shipped_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for krate in ["agent", "builder", "bundle", "contract", "installer-config", "overlay"] {
        for e in walkdir::WalkDir::new(workspace().join(krate).join("src")) {
            let e = e.unwrap();
            if e.path().extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                let shipped = text.split("#[cfg(test)]").next().unwrap().to_owned();
                out.push((e.path().strip_prefix(workspace()).unwrap().to_path_buf(), shipped));
            }
        }
    }
    assert!(out.len() > 50, "found the sources");
    out
}

#[test]
fn temp_files_and_folders_come_from_one_implementation() {
    // `overlay` once made `.edgeiso-work.*` with plain tempfile, and `iso`'s
    // sweep of dead runs' folders deleted it mid-run.
    let offenders: Vec<String> = shipped_sources()
        .into_iter()
        .filter(|(p, text)| !p.starts_with("contract") && text.contains("tempfile::"))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "use edgeiso_contract::fs, not tempfile, in: {offenders:?}");
}

#[test]
fn shared_knowledge_lives_in_the_contract_crate() {
    for (p, text) in shipped_sources() {
        if p.starts_with("contract") {
            continue;
        }
        assert!(!text.contains("include_str!(\"../../"), "{}: reaches into another crate's files", p.display());
        assert!(!text.contains("\"EDGEISO-AGENT:"), "{}: console markers are edgeiso_contract::console", p.display());
        assert!(!text.contains("\"/run/initramfs/live"), "{}: paths are edgeiso_contract::paths", p.display());
        assert!(!text.contains("\"/usr/local/edgeiso"), "{}: paths are edgeiso_contract::paths", p.display());
        assert!(!text.contains("var(\"SOURCE_DATE_EPOCH\")"), "{}: use edgeiso_contract::epoch", p.display());
    }
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let long: Vec<String> = shipped_sources()
        .into_iter()
        .map(|(p, _)| (std::fs::read_to_string(workspace().join(&p)).unwrap().lines().count(), p))
        .filter(|(n, _)| *n > 1000)
        .map(|(n, p)| format!("{} ({n} lines)", p.display()))
        .collect();
    assert!(long.is_empty(), "split these along their concerns: {long:?}");
}
