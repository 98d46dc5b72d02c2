//! `edgeiso-agent webhook`: the mutating admission webhook that makes the
//! site's Harbor the image source of new pods (Palette's
//! `stylus.imageRedirectWebhook`). The API server skips namespaces labelled
//! `stylus.io/imageswap=disable` (the MutatingWebhookConfiguration render
//! writes says so); this server rewrites what Harbor holds and leaves the
//! rest. See `docs/render.md`, "Two layers of redirection".

pub mod index;
pub mod review;
pub mod server;
pub mod settings;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use edgeiso_bundle::{harbor_target, ImageRef, Role};
use edgeiso_contract::paths::DEFAULT_BUNDLE_SEARCH;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use index::{KnownImages, LoadedImage};
pub use settings::WebhookSettings;

use crate::journal::loaded_images;
use crate::AgentError;

/// How often the journal is looked at for a load that added images.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// What Harbor holds by the journal, minus the bundles' bootstrap images.
/// Neither a missing journal nor an unreadable bundle stops the webhook: a
/// missing journal means nothing is rewritten; an unreadable bundle loses
/// only the exclusion of images that are bootstrap there and workload in
/// another bundle (bootstrap images are never pushed, so never in the journal).
pub fn build_index(s: &WebhookSettings) -> KnownImages {
    let mut bootstrap = HashSet::new();
    match crate::discover::find_bundles(&s.bundles, DEFAULT_BUNDLE_SEARCH) {
        Ok(bundles) => {
            for b in &bundles {
                for img in b.meta.images.iter().filter(|i| i.role == Role::Bootstrap) {
                    bootstrap.insert(img.reference.name());
                }
            }
        }
        Err(e) => warn!("bundles: {e}; only the journal says what is held"),
    }
    let loaded = match loaded_images(&s.journal) {
        Ok(images) => images,
        Err(e) => {
            warn!(journal = %s.journal.display(), %e, "cannot read the load journal; no image is redirected");
            Default::default()
        }
    };
    let loaded = loaded.into_iter().filter_map(|(target, (reference, digest))| {
        let reference = ImageRef::parse(&reference).ok()?;
        // Only what went to this project: the journal names the target.
        let repo = harbor_target(&s.project, &reference).repository;
        let here = target.strip_prefix(&repo).is_some_and(|rest| rest.starts_with([':', '@']));
        here.then(|| LoadedImage { reference, digest: digest.to_string() })
    });
    KnownImages::new(&s.registry.host_port, &s.project, loaded, &bootstrap)
}

/// The journal's length and modification time: changes when a load adds to it.
fn journal_stamp(s: &WebhookSettings) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(&s.journal).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Serve until SIGTERM or SIGINT.
pub async fn run(settings: WebhookSettings) -> Result<(), AgentError> {
    let acceptor = server::tls_acceptor(&settings.tls_cert, &settings.tls_key)?;
    let settings = Arc::new(settings);
    // Before serving: nothing else runs yet.
    let first = (journal_stamp(&settings), build_index(&settings));
    info!(images = first.1.len(), registry = %settings.registry, "serving what Harbor holds");
    let index: server::Shared = Arc::new(RwLock::new(Arc::new(first.1)));
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| AgentError::Usage(format!("--listen {}: {e}", settings.listen)))?;
    info!(listen = %settings.listen, "webhook listening");

    let refresh = {
        let (settings, index) = (settings.clone(), index.clone());
        let mut stamp = first.0;
        async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            loop {
                tick.tick().await;
                let now = journal_stamp(&settings);
                if now == stamp {
                    continue;
                }
                stamp = now;
                let s = settings.clone();
                if let Ok(fresh) = tokio::task::spawn_blocking(move || build_index(&s)).await {
                    info!(images = fresh.len(), "the journal changed; index refreshed");
                    *index.write().expect("the index lock is never poisoned") = Arc::new(fresh);
                }
            }
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| AgentError::Usage(format!("cannot watch SIGTERM: {e}")))?;
    tokio::select! {
        r = server::serve(listener, acceptor, index) => r.map_err(|e| AgentError::Usage(format!("webhook server: {e}"))),
        _ = refresh => Ok(()),
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
