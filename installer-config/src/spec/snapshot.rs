//! A spec and every file it names, in one tar: what a golden ISO keeps
//! (`/edgeiso/golden/inputs.tar`, root-only) so that `edgeiso personalize`
//! renders a site from the golden's own inputs, with nothing but the ISO
//! and the site file at hand.
//!
//! ```text
//! spec.yaml      the spec as written
//! inputs.json    [{"written": "certs/ca.pem", "stored": "inputs/0", "dir": false}, ...]
//! inputs/N       each file the spec names (a folder: its tree)
//! ```
//!
//! Everything is stored 0600 (folders 0700): password files are inputs too.
//! Unpacking takes regular files and folders only, under those names only,
//! within [`MAX_BYTES`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::Spec;

/// The most a golden keeps: a Harbor chart and a folder of manifests are a
/// few MiB; more is not a spec's inputs.
pub const MAX_BYTES: u64 = 64 << 20;

const SPEC: &str = "spec.yaml";
const INDEX: &str = "inputs.json";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the spec's inputs are over {} MiB, more than a golden ISO keeps", MAX_BYTES >> 20)]
    TooLarge,
    #[error("the golden's inputs are damaged: {0}")]
    Damaged(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    written: String,
    stored: String,
    dir: bool,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_owned(), source }
}

/// The tar of `spec`'s text and inputs.
pub fn pack(spec: &Spec) -> Result<Vec<u8>, SnapshotError> {
    let text = read_within(&spec.source_path, 0)?;
    let mut total = text.len() as u64;
    let mut tar = tar::Builder::new(Vec::new());
    let mut index: Vec<Stored> = Vec::new();
    append(&mut tar, SPEC, &text, 0o600)?;
    for input in &spec.inputs {
        if index.iter().any(|s| s.written == input.written) {
            continue;
        }
        let stored = format!("inputs/{}", index.len());
        if input.dir {
            for entry in walkdir::WalkDir::new(&input.path).sort_by_file_name() {
                let entry = entry.map_err(|e| SnapshotError::Io { path: input.path.clone(), source: e.into() })?;
                let rel = entry.path().strip_prefix(&input.path).expect("under the walked folder");
                let name =
                    if rel.as_os_str().is_empty() { stored.clone() } else { format!("{stored}/{}", rel.display()) };
                if entry.file_type().is_dir() {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o700);
                    h.set_size(0);
                    h.set_cksum();
                    tar.append_data(&mut h, &name, std::io::empty()).map_err(io_at(entry.path()))?;
                } else if entry.file_type().is_file() {
                    let bytes = read_within(entry.path(), total)?;
                    total += bytes.len() as u64;
                    append(&mut tar, &name, &bytes, 0o600)?;
                }
            }
        } else {
            let bytes = read_within(&input.path, total)?;
            total += bytes.len() as u64;
            append(&mut tar, &stored, &bytes, 0o600)?;
        }
        index.push(Stored { written: input.written.clone(), stored, dir: input.dir });
    }
    let json = serde_json::to_vec_pretty(&index).expect("plain data serializes");
    append(&mut tar, INDEX, &json, 0o600)?;
    tar.into_inner().map_err(io_at(&spec.source_path))
}

/// A file of the spec's inputs, read only as far as what is left of
/// [`MAX_BYTES`] after the `used` bytes already taken.
fn read_within(path: &Path, used: u64) -> Result<Vec<u8>, SnapshotError> {
    edgeiso_contract::fs::read_bounded(path, MAX_BYTES.saturating_sub(used)).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => SnapshotError::TooLarge,
        _ => SnapshotError::Io { path: path.to_owned(), source: e },
    })
}

fn append(tar: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8], mode: u32) -> Result<(), SnapshotError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(mode);
    h.set_cksum();
    tar.append_data(&mut h, name, bytes).map_err(io_at(Path::new(name)))
}

/// Unpack a snapshot into the empty folder `dir` and load its spec, the
/// files it names found in the snapshot. The spec keeps its original name
/// for messages (`origin`, e.g. `golden.iso:/edgeiso/golden/inputs.tar`).
pub fn unpack(bytes: &[u8], dir: &Path) -> Result<(PathBuf, BTreeMap<String, PathBuf>), SnapshotError> {
    let damaged = |why: String| SnapshotError::Damaged(why);
    let mut total = 0u64;
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().map_err(|e| damaged(e.to_string()))? {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let name = entry.path().map_err(|e| damaged(e.to_string()))?.into_owned();
        let plain = name.components().all(|c| matches!(c, Component::Normal(_)));
        let top = name.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned());
        let allowed =
            plain && matches!(top.as_deref(), Some("inputs")) || name == Path::new(SPEC) || name == Path::new(INDEX);
        if !allowed {
            return Err(damaged(format!("unexpected member {name:?}")));
        }
        let dest = dir.join(&name);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(io_at(&dest))?;
            }
            tar::EntryType::Regular => {
                total += entry.size();
                if total > MAX_BYTES {
                    return Err(SnapshotError::TooLarge);
                }
                let mut data = Vec::new();
                (&mut entry).take(MAX_BYTES).read_to_end(&mut data).map_err(io_at(&dest))?;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                edgeiso_contract::fs::write_atomic(&dest, &data, edgeiso_contract::fs::FileMode::Secret)
                    .map_err(io_at(&dest))?;
            }
            other => return Err(damaged(format!("member {name:?} is a {other:?}, not a file or folder"))),
        }
    }
    let index_path = dir.join(INDEX);
    let index: Vec<Stored> = serde_json::from_slice(&std::fs::read(&index_path).map_err(io_at(&index_path))?)
        .map_err(|e| damaged(format!("{INDEX}: {e}")))?;
    let mut remap = BTreeMap::new();
    for s in index {
        let stored = dir.join(&s.stored);
        let ok = if s.dir { stored.is_dir() } else { stored.is_file() };
        if !ok || !s.stored.starts_with("inputs/") || s.stored.contains("..") {
            return Err(damaged(format!("{INDEX} names {:?}, which the archive lacks", s.stored)));
        }
        remap.insert(s.written, stored);
    }
    let spec = dir.join(SPEC);
    if !spec.is_file() {
        return Err(damaged(format!("no {SPEC}")));
    }
    Ok((spec, remap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_and_its_inputs_load_again_from_the_snapshot_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("pw"), "Harbor12345\n").unwrap();
        std::fs::create_dir_all(p.join("m/sub")).unwrap();
        std::fs::write(p.join("m/sub/core.yaml"), "kind: ConfigMap\n").unwrap();
        let text = "name: golden\nharbor:\n  adminPasswordFile: pw\n  manifests: m\n";
        std::fs::write(p.join("site.yaml"), text).unwrap();
        let spec = Spec::load(&p.join("site.yaml")).unwrap();
        assert_eq!(
            spec.inputs.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
            ["harbor.adminPasswordFile", "harbor.manifests"]
        );
        let tar = pack(&spec).unwrap();

        // The originals are gone: the snapshot is all there is.
        std::fs::remove_dir_all(p.join("m")).unwrap();
        std::fs::remove_file(p.join("pw")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (spec_path, remap) = unpack(&tar, out.path()).unwrap();
        let text = std::fs::read_to_string(&spec_path).unwrap();
        let again = Spec::from_str_remapped(&text, &spec_path, Some(&remap)).unwrap();
        assert_eq!(
            again.harbor.admin_password_file.as_ref().map(|f| std::fs::read_to_string(f).unwrap()),
            Some("Harbor12345\n".into())
        );
        match &again.harbor.deployment {
            crate::spec::HarborDeployment::Manifests(m) => assert!(m.join("sub/core.yaml").is_file()),
            other => panic!("{other:?}"),
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(remap.get("pw").unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "inputs may be secrets");
    }

    #[test]
    fn hostile_snapshots_are_refused() {
        let out = tempfile::tempdir().unwrap();
        // A member named `../escape` (the tar crate will not write one: by hand).
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o600);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        bytes.extend_from_slice(&[0; 1024]);
        let e = unpack(&bytes, out.path()).unwrap_err().to_string();
        assert!(e.contains("unexpected member") && e.contains("escape"), "{e}");
        assert!(!out.path().parent().unwrap().join("escape").exists());
        let mut tar = tar::Builder::new(Vec::new());
        append(&mut tar, "spec.yaml", b"name: x\n", 0o600).unwrap();
        append(&mut tar, "inputs.json", br#"[{"written": "a", "stored": "inputs/9", "dir": false}]"#, 0o600).unwrap();
        let e = unpack(&tar.into_inner().unwrap(), out.path()).unwrap_err().to_string();
        assert!(e.contains("inputs/9"), "{e}");
    }
}
