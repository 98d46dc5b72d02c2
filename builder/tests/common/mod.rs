//! Shared helpers for the CLI tests: run the real `edgeiso` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn ok(self) -> Run {
        assert!(self.out.status.success(), "edgeiso failed ({}):\n{}\n{}", self.code(), self.stdout(), self.stderr());
        self
    }
    /// `--json` events of one kind.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == kind)
            .collect()
    }
}

pub fn edgeiso(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeiso"));
    cmd.args(args).env("EDGEISO_RETRY_BASE_MS", "50").env_remove("REGISTRY_AUTH_FILE").env_remove("DOCKER_CONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Run { out: cmd.output().expect("run edgeiso") }
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A site spec file in `dir`.
pub fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("site.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Files (recursively) under `dir`, relative.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A spec named `s` with `repos` (paths under `host`) from one plain-HTTP registry.
pub fn simple_spec(dir: &Path, host: &str, repos: &[&str]) -> PathBuf {
    let images: String = repos.iter().map(|r| format!("  - {host}/{r}\n")).collect();
    write_spec(dir, &format!("name: s\nimages:\n{images}registries:\n  - host: {host}\n    insecure: true\n"))
}
