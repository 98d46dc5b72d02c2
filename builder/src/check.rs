//! `edgeiso check`: the site operator's validation step as a command. Run
//! from a laptop against the site's Harbor (`https://NODE_IP:30003`): every
//! workload image of the bundle, the index and each child manifest, must be
//! in the project under its `harbor_target` path with the bundle's digest.
//! Exit 0 when all are; 4 naming each missing or different manifest; 5 when
//! the registry refuses the credentials; 1 when it does not answer.

use std::collections::BTreeSet;
use std::path::PathBuf;

use edgeiso_bundle::Bundle;
use edgeiso_contract::RegistryUrl;

use crate::exit::{self, with_code};
use crate::registry_check::{expectations, Checker, Finding, Login};
use crate::ui::events::CheckProblem;
use crate::ui::{Event, Ui};

#[derive(Debug)]
pub struct CheckOptions {
    pub bundle: PathBuf,
    pub registry: RegistryUrl,
    pub project: String,
    pub ca: Option<PathBuf>,
    pub insecure: bool,
    pub login: Option<Login>,
}

fn kind(f: &Finding) -> &'static str {
    match f {
        Finding::Missing(_) => "missing",
        Finding::Different { .. } => "different",
        Finding::Refused(_) => "refused",
        Finding::Unreachable(_) => "unreachable",
        Finding::Other(_) => "other",
    }
}

pub fn check(ui: &Ui, o: CheckOptions) -> anyhow::Result<()> {
    let bundle = Bundle::open(&o.bundle).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let want = expectations(&bundle, &o.project).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let images = want.iter().map(|e| e.image.as_str()).collect::<BTreeSet<_>>().len();
    let user = o.login.as_ref().map(|l| l.username.clone());
    let checker = Checker::new(&o.registry, o.ca.as_deref(), o.insecure, o.login)?;
    let where_ = format!("{}/{}", o.registry, o.project);
    ui.line(format!("check: {images} images ({} manifests) of {} in {where_}", want.len(), o.bundle.display()));

    // One manifest first: a registry that does not answer, or refuses us,
    // is told after one request, not after one timeout per manifest.
    let mut problems = checker.problems(&want[..want.len().min(1)]);
    let stop = problems.iter().any(|(_, f)| matches!(f, Finding::Refused(_) | Finding::Unreachable(_)));
    if !stop && want.len() > 1 {
        problems.extend(checker.problems(&want[1..]));
    }

    let present = want.len() - problems.len();
    ui.event(&Event::Check {
        registry: o.registry.to_string(),
        project: o.project.clone(),
        pass: problems.is_empty(),
        images,
        manifests: want.len(),
        present,
        problems: problems
            .iter()
            .map(|(e, f)| CheckProblem {
                image: e.image.clone(),
                repository: e.repository.clone(),
                reference: e.reference.clone(),
                kind: kind(f),
                detail: f.to_string(),
            })
            .collect(),
    });
    if problems.is_empty() {
        ui.line(format!("check: all {} manifests of {images} images are in {where_}", want.len()));
        return Ok(());
    }
    let listed: Vec<String> =
        problems.iter().map(|(e, f)| format!("  {} ({}:{}): {f}", e.image, e.repository, e.reference)).collect();
    // Refused anywhere: the credentials; no answer anywhere: the registry.
    // Either says nothing about the images, so it decides the exit code.
    if let Some(why) = problems.iter().find_map(|(_, f)| if let Finding::Refused(w) = f { Some(w) } else { None }) {
        let user = user.map(|u| format!(" of user {u}")).unwrap_or_else(|| " (anonymous)".into());
        return Err(with_code(
            exit::REGISTRY_REFUSED,
            anyhow::anyhow!("registry {} refused the credentials{user}: {why}", o.registry),
        ));
    }
    if let Some(why) = problems.iter().find_map(|(_, f)| if let Finding::Unreachable(w) = f { Some(w) } else { None }) {
        return Err(with_code(exit::FAILURE, anyhow::anyhow!("registry {} did not answer: {why}", o.registry)));
    }
    Err(with_code(
        exit::VERIFY_FAILED,
        anyhow::anyhow!(
            "{} of {} manifests are not in {where_} as the bundle has them ({present} are):\n{}",
            problems.len(),
            want.len(),
            listed.join("\n")
        ),
    ))
}
