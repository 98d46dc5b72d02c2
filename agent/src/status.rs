//! `edgeiso-agent status`: what the journal says is loaded, pending and
//! failed, per registry. It reads only the state directory (no registry,
//! no bundle), so it works while a load runs and when the registry is down.

use std::path::Path;

use serde::Serialize;

use crate::journal::{read_records, JournalState};
use crate::AgentError;

#[derive(Debug, Default, Serialize)]
pub struct RegistryStatus {
    pub registry: String,
    pub journal: String,
    pub loaded: Vec<StatusImage>,
    pub pending: Vec<StatusImage>,
    pub failed: Vec<StatusImage>,
    pub uploads_in_progress: usize,
}

#[derive(Debug, Serialize)]
pub struct StatusImage {
    pub reference: String,
    pub target: String,
    pub digest: String,
    pub bundle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

pub fn collect(state_dir: &Path) -> Result<Vec<RegistryStatus>, AgentError> {
    let dir = state_dir.join("journal");
    let err = |source| AgentError::State { path: dir.clone(), source };
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "jsonl")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(err(e)),
    };
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let (records, _) = read_records(&path).map_err(err)?;
        let mut st = JournalState::default();
        for r in records {
            st.apply_public(r);
        }
        let registry = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut rs = RegistryStatus {
            registry: registry.rsplit_once('_').map(|(h, p)| format!("{h}:{p}")).unwrap_or(registry),
            journal: path.display().to_string(),
            uploads_in_progress: st.uploads.len(),
            ..Default::default()
        };
        for e in st.images.values() {
            rs.loaded.push(StatusImage {
                reference: e.reference.clone(),
                target: e.target.clone(),
                digest: e.digest.to_string(),
                bundle: e.bundle.clone(),
                error: None,
                at: Some(e.at.clone()),
            });
        }
        for (bundle, plan) in &st.plans {
            let images = &plan.images;
            for p in images {
                let loaded = st.images.get(&p.target).is_some_and(|e| e.digest == p.digest);
                if loaded {
                    continue;
                }
                let failed = st.failed.get(&p.target);
                let entry = StatusImage {
                    reference: p.reference.clone(),
                    target: p.target.clone(),
                    digest: p.digest.to_string(),
                    bundle: bundle.clone(),
                    error: failed.map(|f| f.error.clone()),
                    at: failed.map(|f| f.at.clone()),
                };
                if failed.is_some() {
                    rs.failed.push(entry);
                } else {
                    rs.pending.push(entry);
                }
            }
        }
        out.push(rs);
    }
    Ok(out)
}

pub fn print(statuses: &[RegistryStatus], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(statuses).expect("status serializes"));
        return;
    }
    if statuses.is_empty() {
        println!("nothing loaded yet (no journal)");
        return;
    }
    for s in statuses {
        println!(
            "registry {}: {} loaded, {} pending, {} failed{}",
            s.registry,
            s.loaded.len(),
            s.pending.len(),
            s.failed.len(),
            if s.uploads_in_progress > 0 {
                format!(", {} uploads to resume", s.uploads_in_progress)
            } else {
                String::new()
            }
        );
        for i in &s.loaded {
            println!("  loaded   {} -> {}", i.reference, i.target);
        }
        for i in &s.pending {
            println!("  pending  {} -> {}", i.reference, i.target);
        }
        for i in &s.failed {
            println!("  FAILED   {} -> {}: {}", i.reference, i.target, i.error.as_deref().unwrap_or(""));
        }
    }
}
