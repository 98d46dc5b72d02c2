//! `edgeiso bundle verify`: every member against the checksum `bundle.json`
//! pins, every blob against its digest, every manifest's references present.
//! Problems are collected, not fatal one by one, so a user sees the whole
//! damage and exactly which image and blob each problem hits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::digest::digest_reader;
use crate::format::{self, ANNOTATION_REF_NAME};
use crate::manifest::Descriptor;
use crate::{Bundle, BundleError, Digest, Partial};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The member (`blobs/sha256/...`, `index.json`) at fault.
    pub member: String,
    /// Images that need this member.
    pub images: Vec<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.member, self.message)?;
        if !self.images.is_empty() {
            write!(f, " (image {})", self.images.join(", image "))?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub members_checked: usize,
    pub bytes_checked: u64,
    pub problems: Vec<Problem>,
    /// What a partial bundle's manifests reference and it leaves out, and
    /// where each is to come from. Empty for a whole bundle.
    pub expected: Vec<Expected>,
}

/// A config or layer blob a partial bundle leaves out, accounted for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Expected {
    pub digest: Digest,
    pub size: u64,
    /// Images that need it.
    pub images: Vec<String>,
    /// `source registry` (thin), `base NAME` (delta).
    pub from: String,
    /// Whether the base was given and holds it.
    pub checked: bool,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checked = if self.checked { ", held there" } else { "" };
        write!(
            f,
            "{} ({} bytes) from {}{checked} (image {})",
            self.digest,
            self.size,
            self.from,
            self.images.join(", image ")
        )
    }
}

/// Verify `bundle`. `progress` is called with bytes hashed.
pub fn verify(bundle: &Bundle, progress: &(dyn Fn(u64) + Sync)) -> Result<Report, BundleError> {
    verify_with_base(bundle, None, progress)
}

/// Verify `bundle`; a delta's left-out blobs also against `base`, which
/// must be the very bundle it was made on (its `bundle.json` sha256 the one
/// recorded, else [`BundleError::BaseMismatch`]) and must hold each one.
pub fn verify_with_base(
    bundle: &Bundle,
    base: Option<&Bundle>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report, BundleError> {
    let mut report = Report::default();
    let meta = &bundle.meta;
    let from = match (bundle.partial(), base) {
        (None, None) => String::new(),
        (Some(Partial::Thin), None) => "its image's source registry".into(),
        (Some(Partial::Delta { base: rec }), None) => format!("base bundle {} (not checked: give the base)", rec.name),
        (Some(Partial::Delta { base: rec }), Some(b)) => {
            let actual = b.bundle_json_sha256();
            if actual != rec.bundle_json_sha256 {
                return Err(BundleError::BaseMismatch {
                    delta: bundle.path().to_path_buf(),
                    base: b.path().to_path_buf(),
                    recorded: Box::new(rec.clone()),
                    actual,
                });
            }
            format!("base bundle {} ({})", rec.name, b.path().display())
        }
        (other, Some(_)) => {
            let what = if other.is_some() { "a thin bundle" } else { "a whole bundle" };
            return Err(BundleError::NotADelta { path: bundle.path().to_path_buf(), what: what.into() });
        }
    };

    // Which images need which member, to name them in every problem.
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut absent: BTreeMap<Digest, (u64, Vec<String>)> = BTreeMap::new();
    for img in &meta.images {
        let name = img.reference.to_string();
        match bundle.image_graph(img) {
            Ok(g) => {
                for d in &g.absent {
                    absent.entry(d.digest.clone()).or_insert((d.size, Vec::new())).1.push(name.clone());
                }
                // bundle.json's claims (media type, platforms, size) that
                // the stored bytes contradict, on the image's top manifest.
                for message in crate::claims::contradictions(bundle, img, &g) {
                    report.problems.push(Problem {
                        member: img.digest.blob_path(),
                        images: vec![name.clone()],
                        message,
                    });
                }
                for d in g.manifests.iter().chain(&g.blobs) {
                    users.entry(d.digest.blob_path()).or_default().push(name.clone());
                }
            }
            Err(e) => report.problems.push(Problem {
                member: graph_member(&e).unwrap_or_else(|| img.digest.blob_path()),
                images: vec![name.clone()],
                message: e.to_string(),
            }),
        }
    }
    let who = |m: &str| users.get(m).cloned().unwrap_or_default();

    // Members present vs. listed.
    let present: BTreeSet<&str> = bundle.members().map(|(n, _)| n).collect();
    for (name, _) in bundle.members() {
        if name != format::BUNDLE_JSON && !meta.members.contains_key(name) {
            report.problems.push(Problem {
                member: name.into(),
                images: vec![],
                message: "is not listed in bundle.json".into(),
            });
        }
    }
    for name in meta.members.keys() {
        if !present.contains(name.as_str()) {
            report.problems.push(Problem { member: name.clone(), images: who(name), message: "is missing".into() });
        }
    }

    // index.json must name every image of bundle.json.
    check_index(bundle, &mut report);

    // Every blob left out is accounted for: a thin bundle's come from the
    // source registries; a delta's from its base, which holds each one.
    for (digest, (size, images)) in absent {
        let held = base.map(|b| base_holds(b, &digest, size));
        if let Some(Err(why)) = &held {
            report.problems.push(Problem { member: digest.blob_path(), images: images.clone(), message: why.clone() });
        }
        let checked = matches!(held, Some(Ok(())));
        report.expected.push(Expected { digest, size, images, from: from.clone(), checked });
    }

    // Hash every listed member, in parallel: this is the slow part.
    let work: Vec<(&str, &Digest)> =
        meta.members.iter().filter(|(n, _)| present.contains(n.as_str())).map(|(n, d)| (n.as_str(), d)).collect();
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let checked = Mutex::new((0usize, 0u64));
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    // A read error on one member (a scratched disc, a flaky USB stick) is a
    // problem with that member, never a silent skip: verify must not say OK
    // about bytes it could not read.
    std::thread::scope(|s| -> Result<(), BundleError> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(), BundleError> {
                    let mut r = bundle.reader()?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(name, want)) = work.get(i) else { return Ok(()) };
                        let loc = bundle.member(name).expect("present");
                        let hashed = r
                            .seek(SeekFrom::Start(loc.offset))
                            .and_then(|_| digest_reader(Progress { inner: (&mut r).take(loc.size), progress }));
                        let mut problems = Vec::new();
                        match hashed {
                            Err(e) => problems.push(format!("cannot be read: {e}")),
                            Ok((_, n)) if n != loc.size => {
                                problems.push(format!("is cut short ({n} of {} bytes)", loc.size))
                            }
                            Ok((actual, _)) if &actual != want => {
                                problems.push(format!("has sha256 {actual}, bundle.json says {want}"))
                            }
                            Ok((actual, _)) => {
                                let mut c = checked.lock().unwrap();
                                c.0 += 1;
                                c.1 += loc.size;
                                if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                                    if actual.hex() != hex {
                                        problems
                                            .push(format!("is named for digest sha256:{hex} but hashes to {actual}"));
                                    }
                                }
                            }
                        }
                        found.lock().unwrap().extend(problems.into_iter().map(|m| (name.to_owned(), m)));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("verify worker panicked")?;
        }
        Ok(())
    })?;
    for (name, message) in found.into_inner().unwrap() {
        let images = who(&name);
        report.problems.push(Problem { member: name, images, message });
    }
    let (members, bytes) = checked.into_inner().unwrap();
    report.members_checked = members;
    report.bytes_checked = bytes;
    report.problems.sort_by(|a, b| (&a.member, &a.message).cmp(&(&b.member, &b.message)));
    report.problems.dedup();
    Ok(report)
}

/// `base` holds `digest` of `size` bytes: listed in its `bundle.json`
/// (whose sha256 the delta pinned) and stored at that size. Its bytes are
/// hashed by verifying the base itself.
fn base_holds(base: &Bundle, digest: &Digest, size: u64) -> Result<(), String> {
    let name = base.path().display();
    let path = digest.blob_path();
    match (base.meta.members.get(&path), base.member(&path)) {
        (Some(listed), Some(loc)) if listed == digest && loc.size == size => Ok(()),
        (Some(listed), Some(_)) if listed != digest => {
            Err(format!("is left out for the base {name}, whose bundle.json pins it as {listed}"))
        }
        (Some(_), Some(loc)) => Err(format!(
            "is left out for the base {name}, which holds {} bytes of it, the manifest says {size}",
            loc.size
        )),
        _ => Err(format!("is left out, but the base {name} does not hold it")),
    }
}

fn graph_member(e: &BundleError) -> Option<String> {
    match e {
        BundleError::Graph { digest, .. } | BundleError::DigestMismatch { digest, .. } => Some(digest.blob_path()),
        _ => None,
    }
}

fn check_index(bundle: &Bundle, report: &mut Report) {
    let problem = |message: String| Problem { member: format::INDEX_JSON.into(), images: vec![], message };
    let index: Vec<Descriptor> = match bundle
        .read_small(format::INDEX_JSON)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<IndexJson>(&b).map_err(|e| e.to_string()))
    {
        Ok(i) => i.manifests,
        Err(e) => {
            report.problems.push(problem(format!("unreadable: {e}")));
            return;
        }
    };
    for (n, d) in index.iter().enumerate() {
        if let Err(e) = crate::names::check_annotations(n, &d.annotations) {
            report.problems.push(problem(format!("refused: {e}")));
        }
    }
    for img in &bundle.meta.images {
        let name = img.reference.to_string();
        let entry = index.iter().find(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(&name));
        match entry {
            None => report.problems.push(problem(format!("has no entry for image {name}"))),
            Some(d) if &d.digest != img.index_digest.as_ref().unwrap_or(&img.digest) => {
                let want = img.index_digest.as_ref().unwrap_or(&img.digest);
                report.problems.push(problem(format!("names {} for image {name}, bundle.json says {want}", d.digest)))
            }
            Some(_) => {}
        }
    }
}

#[derive(serde::Deserialize)]
struct IndexJson {
    manifests: Vec<Descriptor>,
}

struct Progress<'a, R> {
    inner: R,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}
