//! The overlay tree: every file edgeiso lays onto the root of an installer
//! ISO (docs/iso-layout.md), built in a staging folder beside the output and
//! swapped in whole.
//!
//! ```text
//! config.yaml                                        rendered user-data
//! opt/spectrocloud/content/content-NAME.tar.partNNN  the bundle, parts < 4 GiB
//! opt/spectrocloud/content/content-NAME.tar.sig      its signature, when signed
//! edgeiso/site/...                                   the rest of the render output
//! edgeiso/images/content-NAME-bootstrap.tar          bootstrap images (k3s/RKE2 import them)
//! edgeiso/bin/edgeiso-agent                          the static agent
//! edgeiso/overlay.json                               what this tree holds (also marks it)
//! boot/edgeiso.img                                   initramfs overlay: agent, live config, dracut hook
//! edgeiso/golden/inputs.tar                          the spec and the files it names (personalize)
//! boot/edgeiso-site.img                              the site area, empty (zeros): contract::site_area
//! ```

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use edgeiso_bundle::parts::{part_base, part_name, PartsReader};
use edgeiso_bundle::signature::{signature_path, SIGNATURE_SUFFIX};
use edgeiso_bundle::writer::WriteOptions;
use edgeiso_bundle::{Bundle, BundleError, Role};
use edgeiso_contract::fs::{may_replace, FileSet, StagedDir};
use edgeiso_contract::paths::{initrd, iso, out};
use edgeiso_contract::site_area;
use edgeiso_contract::AgentConfig;
use serde::Serialize;

use crate::agent_binary::{check_static_agent, AgentBinaryError};
use crate::hook::{dracut_hook, HookSettings};
use crate::initramfs::{check_initramfs, Compression, InitramfsBuilder, InitramfsError};

/// The initramfs overlay should stay under this size.
pub const INITRD_BUDGET: u64 = 8 << 20;
/// Largest file ISO 9660 (without level 3) holds: 4 GiB - 1.
const ISO_FILE_LIMIT: u64 = (4 << 30) - 1;

/// What goes into the tree.
#[derive(Debug, Clone)]
pub struct TreeInputs<'a> {
    /// The site's name.
    pub site: &'a str,
    /// The site's registry (for the report and the hook's console lines).
    pub registry: &'a str,
    /// Render's output: `config.yaml` goes to the root, the rest under
    /// `/edgeiso/site`, each with the mode render gave it.
    pub rendered: &'a FileSet,
    /// The agent's configuration for a load from the live medium.
    pub live_config: &'a AgentConfig,
    /// Load the bundle in the live system (otherwise the hook only stages the agent).
    pub live_load: bool,
    /// The bundle: a tar or its parts, in order.
    pub parts: &'a [PathBuf],
    /// Bundle parts on the ISO are at most this many bytes.
    pub part_size: u64,
    /// The static agent binary.
    pub agent: &'a Path,
    pub compression: Compression,
    /// The site area's size ([`edgeiso_contract::site_area::check_size`]).
    pub site_area_bytes: u64,
    /// The spec and the files it names, as a tar
    /// (`installer-config`'s `spec::snapshot`), for `edgeiso personalize`.
    pub golden_inputs: &'a [u8],
}

/// What `write_tree` produced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeReport {
    pub output: PathBuf,
    pub site: String,
    pub live_load: bool,
    pub registry: String,
    /// ISO paths of the bundle parts.
    pub bundle_parts: Vec<String>,
    pub bundle_bytes: u64,
    pub agent_bytes: u64,
    pub initrd_bytes: u64,
    pub initrd_compression: String,
    pub site_area_bytes: u64,
    /// Every file of the tree (ISO path, bytes).
    pub files: Vec<(String, u64)>,
    /// Worth telling, not worth stopping for.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{} exists and is not an overlay edgeiso wrote (no {}); refusing to replace it", .0.display(), iso::OVERLAY_JSON)]
    NotOurs(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Agent(#[from] AgentBinaryError),
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    #[error("the bootstrap images of {site} exceed 4 GiB, more than one ISO 9660 file can hold")]
    BootstrapTooLarge { site: String },
    #[error("initramfs overlay {} fails the kernel's rules: {message}", path.display())]
    BadInitramfs { path: PathBuf, message: String },
    #[error("no bundle parts given")]
    NoBundle,
    #[error("site area: {0}")]
    SiteAreaSize(String),
    #[error(transparent)]
    Epoch(#[from] edgeiso_contract::epoch::EpochError),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |source| TreeError::Io { path: path.to_owned(), source }
}

/// Write the overlay tree of `inputs` to `dest`, replacing it whole; an
/// existing `dest` must be empty or an overlay edgeiso wrote.
pub fn write_tree(inputs: &TreeInputs<'_>, dest: &Path) -> Result<TreeReport, TreeError> {
    let first = inputs.parts.first().ok_or(TreeError::NoBundle)?;
    site_area::check_size(inputs.site_area_bytes).map_err(TreeError::SiteAreaSize)?;
    let marker = iso::OVERLAY_JSON.trim_start_matches('/');
    if !may_replace(dest, marker).map_err(io_at(dest))? {
        return Err(TreeError::NotOurs(dest.to_owned()));
    }
    check_static_agent(inputs.agent)?;
    let stage = StagedDir::new(dest).map_err(io_at(dest))?;
    let root = stage.path();
    let at = |iso_path: &str| root.join(iso_path.trim_start_matches('/'));
    let mut warnings = Vec::new();

    // 1. Render's output: config.yaml to the root, the rest under /edgeiso/site.
    for f in inputs.rendered.iter() {
        let path = if f.path == out::CONFIG_YAML { at(iso::CONFIG_YAML) } else { at(iso::SITE_DIR).join(&f.path) };
        edgeiso_contract::fs::write_atomic(&path, &f.bytes, f.mode).map_err(io_at(&path))?;
    }

    // 2. The bundle, as parts under 4 GiB.
    let content = at(iso::CONTENT_DIR);
    fs::create_dir_all(&content).map_err(io_at(&content))?;
    let base = part_base(first).unwrap_or_else(|| first.clone());
    let stem = base.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "content.tar".into());
    let bundle_parts = lay_parts(inputs.parts, &content, &stem, inputs.part_size)?;
    // Its signature (decision 0015), if it has one: under the bundle's name
    // beside the parts, where the agent looks for it.
    let sig = signature_path(first);
    if sig.is_file() {
        let dest = content.join(format!("{stem}{SIGNATURE_SUFFIX}"));
        fs::copy(&sig, &dest).map_err(io_at(&sig))?;
    }

    // 2b. The bootstrap images (Harbor's own, and the spec's
    // bootstrapImages) as a bundle of their own that k3s/RKE2 import from
    // agent/images/ at start: the registry cannot serve its own images.
    let bundle = Bundle::open(first)?;
    if let Some(plan) = bundle.subset(Role::Bootstrap, &format!("{}-bootstrap", inputs.site))? {
        let dir = at(iso::IMAGES_DIR);
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        // One file: k3s imports whole archives, not parts; ISO 9660 caps a file at 4 GiB.
        let written = plan.write(&dir, &WriteOptions { part_size: Some(ISO_FILE_LIMIT), ..Default::default() })?;
        if written.paths.len() > 1 {
            return Err(TreeError::BootstrapTooLarge { site: inputs.site.to_owned() });
        }
    }

    // 3. The agent.
    let bin = at(iso::AGENT_BIN);
    fs::create_dir_all(bin.parent().expect("has a parent")).map_err(io_at(&bin))?;
    fs::copy(inputs.agent, &bin).map_err(io_at(inputs.agent))?;
    let agent_bytes = fs::metadata(&bin).map_err(io_at(&bin))?.len();

    // 4. The initramfs overlay.
    let hook = dracut_hook(&HookSettings { site: inputs.site, registry: inputs.registry, live_load: inputs.live_load });
    let mut img = InitramfsBuilder::from_env()?;
    img.add_file(initrd::DRACUT_HOOK, hook.into_bytes(), 0o755)?;
    img.add_file_from(initrd::AGENT_BIN, inputs.agent, 0o755)?;
    img.add_file(initrd::AGENT_CONFIG, inputs.live_config.to_yaml().into_bytes(), 0o644)?;
    let initrd_path = at(iso::INITRD);
    fs::create_dir_all(initrd_path.parent().expect("has a parent")).map_err(io_at(&initrd_path))?;
    img.write_to_path(&initrd_path, inputs.compression)?;
    // The kernel drops what breaks its rules silently: check now.
    let bytes = fs::read(&initrd_path).map_err(io_at(&initrd_path))?;
    check_initramfs(&bytes)
        .map_err(|e| TreeError::BadInitramfs { path: initrd_path.clone(), message: e.to_string() })?;
    let initrd_bytes = bytes.len() as u64;
    if initrd_bytes >= INITRD_BUDGET {
        warnings.push(format!(
            "the initramfs overlay is {initrd_bytes} bytes (budget {INITRD_BUDGET}): is the agent stripped?"
        ));
    }

    // 4b. The site area, empty: zeros, which the kernel skips (a sparse
    // file here; xorriso writes the zeros).
    let area = at(iso::SITE_AREA);
    fs::File::create(&area).and_then(|f| f.set_len(inputs.site_area_bytes)).map_err(io_at(&area))?;
    let golden = at(iso::GOLDEN_INPUTS);
    fs::create_dir_all(golden.parent().expect("has a parent")).map_err(io_at(&golden))?;
    edgeiso_contract::fs::write_atomic(&golden, inputs.golden_inputs, edgeiso_contract::fs::FileMode::Secret)
        .map_err(io_at(&golden))?;

    // The remaster keeps files others may not read private on the ISO
    // (render writes its secrets 0600 on purpose); this tree's own files get
    // explicit modes so the umask cannot make them look private, or the ISO
    // differ between hosts.
    normalise_own_modes(root)?;
    // Once written, the area holds the site's secrets, and the golden's
    // inputs hold its own: root reads them, as the other private site files
    // (the boot loaders ignore modes).
    for private in [&area, &golden] {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(private, fs::Permissions::from_mode(0o600)).map_err(io_at(private))?;
    }

    // 5. overlay.json: lists the tree (it marks the folder as ours, and
    // travels on the ISO as a table of contents).
    let mut files = list_files(root)?;
    let overlay_json = serde_json::json!({
        "site": inputs.site, "liveLoad": inputs.live_load, "registry": inputs.registry,
        "bundleParts": bundle_parts, "initrd": iso::INITRD,
        "siteArea": {"path": iso::SITE_AREA, "bytes": inputs.site_area_bytes, "format": site_area::FORMAT},
        "files": files,
    });
    let mut json = serde_json::to_vec_pretty(&overlay_json).expect("plain data serializes");
    json.push(b'\n');
    let json_path = at(iso::OVERLAY_JSON);
    edgeiso_contract::fs::write_atomic(&json_path, &json, edgeiso_contract::fs::FileMode::Public)
        .map_err(io_at(&json_path))?;
    files.push((iso::OVERLAY_JSON.to_owned(), json.len() as u64));

    // 6. Swap in.
    if let Some(w) = stage.commit().map_err(io_at(dest))? {
        warnings.push(w);
    }
    Ok(TreeReport {
        output: dest.to_owned(),
        site: inputs.site.to_owned(),
        live_load: inputs.live_load,
        registry: inputs.registry.to_owned(),
        bundle_parts,
        bundle_bytes: inputs.parts.iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum(),
        agent_bytes,
        initrd_bytes,
        initrd_compression: format!("{:?}", inputs.compression).to_lowercase(),
        site_area_bytes: inputs.site_area_bytes,
        files,
        warnings,
    })
}

/// Put the bundle's bytes into `dir` as `STEM.partNNN` files (the bundle's
/// own part naming) of at most `part_size` bytes: hard links when the parts
/// already fit (no copy), else a byte split of the concatenated stream.
fn lay_parts(parts: &[PathBuf], dir: &Path, stem: &str, part_size: u64) -> Result<Vec<String>, TreeError> {
    let base = dir.join(stem);
    let iso_path = |p: &Path| format!("{}/{}", iso::CONTENT_DIR, p.file_name().unwrap_or_default().to_string_lossy());
    let sizes: Vec<u64> =
        parts.iter().map(|p| fs::metadata(p).map(|m| m.len()).map_err(io_at(p))).collect::<Result<_, _>>()?;
    if sizes.iter().all(|&s| s <= part_size) {
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let dest = part_name(&base, i);
            if fs::hard_link(p, &dest).is_err() {
                fs::copy(p, &dest).map_err(io_at(p))?;
            }
            out.push(iso_path(&dest));
        }
        return Ok(out);
    }
    let mut reader = PartsReader::open(parts)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for i in 0.. {
        let dest = part_name(&base, i);
        let file = fs::File::create(&dest).map_err(io_at(&dest))?;
        let mut f = std::io::BufWriter::new(file);
        let mut written = 0u64;
        while written < part_size {
            let want = buf.len().min((part_size - written) as usize);
            let n = reader.read(&mut buf[..want]).map_err(io_at(&parts[0]))?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(io_at(&dest))?;
            written += n as u64;
        }
        f.flush().map_err(io_at(&dest))?;
        if written == 0 && i > 0 {
            drop(f);
            fs::remove_file(&dest).map_err(io_at(&dest))?;
            break;
        }
        out.push(iso_path(&dest));
        if written < part_size {
            break;
        }
    }
    Ok(out)
}

/// Give every file this tree holds 0644 (0755 when its owner may run it),
/// except render's output (`/config.yaml`, `/edgeiso/site/`), which keeps the
/// modes render gave it: 0600 for what carries secrets.
fn normalise_own_modes(root: &Path) -> Result<(), TreeError> {
    use std::os::unix::fs::PermissionsExt;
    let site = root.join(iso::SITE_DIR.trim_start_matches('/'));
    let config = root.join(iso::CONFIG_YAML.trim_start_matches('/'));
    for p in walk(root)? {
        if p == config || p.starts_with(&site) {
            continue;
        }
        let meta = fs::symlink_metadata(&p).map_err(io_at(&p))?;
        if meta.is_file() {
            let mode = if meta.permissions().mode() & 0o100 != 0 { 0o755 } else { 0o644 };
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(io_at(&p))?;
        }
    }
    Ok(())
}

/// Every file under `root` (ISO path, bytes), sorted; the staging folder's
/// lock file is not part of the tree.
fn list_files(root: &Path) -> Result<Vec<(String, u64)>, TreeError> {
    let mut out = Vec::new();
    for p in walk(root)? {
        let rel = p.strip_prefix(root).expect("under root");
        out.push((format!("/{}", rel.display()), fs::metadata(&p).map_err(io_at(&p))?.len()));
    }
    out.sort();
    Ok(out)
}

fn walk(root: &Path) -> Result<Vec<PathBuf>, TreeError> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.map_err(|e| TreeError::Io { path: root.to_owned(), source: e.into() })?;
        if e.file_type().is_file() && !(e.depth() == 1 && e.file_name() == edgeiso_contract::fs::temp::DIR_LOCK) {
            out.push(e.into_path());
        }
    }
    Ok(out)
}
