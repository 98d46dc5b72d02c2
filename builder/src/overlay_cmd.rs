//! `edgeiso overlay`: the tree laid onto the root of the installer ISO
//! (docs/iso-layout.md), also used by `edgeiso iso` and `edgeiso build`.
//!
//! ```text
//! config.yaml                                        rendered user-data
//! opt/spectrocloud/content/content-NAME.tar.partNNN  the bundle, parts < 4 GiB
//! edgeiso/site/...                                   the rest of the render output
//! edgeiso/bin/edgeiso-agent                          the static agent
//! edgeiso/overlay.json                               what this tree holds (also marks it)
//! boot/edgeiso.img                                   initramfs overlay: agent, live config, dracut hook
//! ```

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use edgeiso_bundle::writer::WriteOptions;
use edgeiso_installer_config::layout;
use edgeiso_installer_config::spec::Spec;
use edgeiso_installer_config::{render, AgentConfig, RenderError, RenderOptions};
use edgeiso_overlay::initramfs::{check_initramfs, Compression, InitramfsBuilder};

use crate::cli::{AgentArgs, BundleBuildArgs, CreateArgs, InitrdCompression, OutputArgs, OverlayArgs};
use crate::exit::{self, with_code};
use crate::ui::{human_bytes, Ui};

/// Marks (and describes) an overlay tree edgeiso wrote.
pub const OVERLAY_JSON: &str = "edgeiso/overlay.json";
/// In the initramfs overlay: the agent and its live-load config.
pub const INITRD_AGENT: &str = "edgeiso/bin/edgeiso-agent";
pub const INITRD_AGENT_CONFIG: &str = "edgeiso/agent-live.yaml";
/// Where the live agent keeps its journal (tmpfs, carried into the live root).
pub const LIVE_STATE_DIR: &str = "/run/edgeiso/state";
/// Marker lines the hook prints on the console (boot-test watches them).
pub const MARKER_LOADED: &str = "EDGEISO-AGENT: loaded";
pub const MARKER_FAILED: &str = "EDGEISO-AGENT: failed";
pub const MARKER_STAGED: &str = "EDGEISO-AGENT: staged";
/// The initramfs overlay should stay under this size (issue budget).
pub const INITRD_BUDGET: u64 = 8 << 20;
/// Largest file ISO 9660 (without level 3) holds: 4 GiB - 1.
const BOOTSTRAP_ARCHIVE_LIMIT: u64 = (4 << 30) - 1;

pub fn run(ui: &Ui, args: OverlayArgs) -> anyhow::Result<()> {
    let spec = Spec::load(&args.spec).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let agent = resolve_agent(&args.agent)?;
    let parent = parent_of(&args.output);
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let work = tempfile::Builder::new().prefix(".edgeiso-work.").tempdir_in(&parent)?;
    let bundle = obtain_bundle(ui, &spec, &args.spec, &args.bundle, work.path())?;
    let report = write_overlay(ui, &spec, &bundle, &agent, &args.agent, args.bundle.part_size, &args.output)?;
    report.show(ui);
    Ok(())
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The agent binary: `--agent`/`$EDGEISO_AGENT`, else `edgeiso-agent` beside
/// this executable. It must be a static x86-64 ELF: it runs in an initramfs.
pub fn resolve_agent(args: &AgentArgs) -> anyhow::Result<PathBuf> {
    let path = match &args.agent {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("edgeiso-agent")))
            .unwrap_or_else(|| PathBuf::from("edgeiso-agent")),
    };
    let hint = "build it with scripts/build-agent-static.sh and pass --agent PATH (or set EDGEISO_AGENT)";
    let bytes = fs::read(&path)
        .map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("agent {}: {e}; {hint}", path.display())))?;
    match elf_is_static(&bytes) {
        Some(true) => Ok(path),
        Some(false) => Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!(
                "agent {} is dynamically linked (it needs a libc the initramfs does not have); {hint}",
                path.display()
            ),
        )),
        None => Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("agent {} is not an x86-64 ELF executable; {hint}", path.display()),
        )),
    }
}

/// `Some(true)` for a 64-bit little-endian x86-64 ELF without a `PT_INTERP`
/// program header (static or static-pie), `Some(false)` with one, `None`
/// when not such an ELF.
pub fn elf_is_static(b: &[u8]) -> Option<bool> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    if u16_at(18) != 62 {
        return None; // e_machine: EM_X86_64
    }
    let phoff = u64::from_le_bytes(b[32..40].try_into().ok()?) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    for i in 0..phnum {
        let o = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let p_type = u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?);
        if p_type == 3 {
            return Some(false); // PT_INTERP
        }
    }
    Some(true)
}

/// The bundle's files: `--bundle`, or one built from the spec into `work`.
pub fn obtain_bundle(
    ui: &Ui,
    spec: &Spec,
    spec_path: &Path,
    args: &BundleBuildArgs,
    work: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    if let Some(p) = &args.bundle {
        let b = edgeiso_bundle::Bundle::open(p).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
        return Ok(b.paths);
    }
    let dir = work.join("bundle");
    fs::create_dir_all(&dir)?;
    let create = CreateArgs {
        spec: spec_path.to_path_buf(),
        out: OutputArgs { output: dir, part_size: args.part_size, zstd: false },
        locked: args.locked,
        cache: args.cache.clone(),
        concurrency: 6,
    };
    Ok(crate::create::create_bundle(ui, spec, &create)?.paths)
}

/// What `write_overlay` produced.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayReport {
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
    /// Every file of the tree (ISO path, bytes).
    pub files: Vec<(String, u64)>,
}

impl OverlayReport {
    pub fn show(&self, ui: &Ui) {
        ui.line(format!(
            "overlay {}: {} files; bundle {} in {} part(s); initramfs overlay {} ({}, agent {}); live load: {}",
            self.output.display(),
            self.files.len(),
            human_bytes(self.bundle_bytes),
            self.bundle_parts.len(),
            human_bytes(self.initrd_bytes),
            self.initrd_compression,
            human_bytes(self.agent_bytes),
            if self.live_load { format!("yes, into {}", self.registry) } else { "no (agent staged only)".into() },
        ));
        ui.event("overlay", serde_json::to_value(self).unwrap_or_default());
    }
}

/// Write the overlay tree of `spec` with the bundle `parts` and `agent` to
/// `out` (built in a sibling temp folder, then swapped in; an existing `out`
/// must be empty or an overlay edgeiso wrote).
pub fn write_overlay(
    ui: &Ui,
    spec: &Spec,
    parts: &[PathBuf],
    agent: &Path,
    agent_args: &AgentArgs,
    part_size: u64,
    out: &Path,
) -> anyhow::Result<OverlayReport> {
    if out.exists() {
        let empty = out.is_dir() && fs::read_dir(out)?.next().is_none();
        if !empty && !out.join(OVERLAY_JSON).is_file() {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!(
                    "{} exists and is not an overlay edgeiso wrote (no {OVERLAY_JSON}); refusing to replace it",
                    out.display()
                ),
            ));
        }
    }
    let parent = parent_of(out);
    fs::create_dir_all(&parent)?;
    let tmp = tempfile::Builder::new().prefix(".edgeiso-overlay.").tempdir_in(&parent)?;
    let root = tmp.path();

    // 1. Render: config.yaml to the root, the rest under /edgeiso/site.
    let site_rel = layout::ISO_SITE_DIR.trim_start_matches('/');
    let site = root.join(site_rel);
    let bundle_bytes = crate::render_cmd::unique_blob_bytes(&parts[0])?;
    let rendered = match render(spec, &site, &RenderOptions { bundle_bytes: Some(bundle_bytes) }) {
        Ok(r) => r,
        Err(RenderError::Lint(lint)) => {
            for f in &lint.findings {
                ui.line(f.to_string());
            }
            return Err(with_code(
                exit::VERIFY_FAILED,
                anyhow::anyhow!("{}: the site does not pass its checks", spec.source_path.display()),
            ));
        }
        Err(e) => return Err(with_code(exit::INVALID_INPUT, e)),
    };
    for w in &rendered.warnings {
        ui.line(format!("warning: {w}"));
    }
    fs::rename(site.join(layout::CONFIG_YAML), root.join(layout::CONFIG_YAML))?;
    let _ = fs::remove_file(site.join(layout::OUT_MARKER));

    // 2. The bundle, as parts under 4 GiB.
    let content = root.join(layout::ISO_CONTENT_DIR.trim_start_matches('/'));
    fs::create_dir_all(&content)?;
    let stem = bundle_stem(&parts[0]);
    let iso_parts = lay_parts(parts, &content, &stem, part_size)?;

    // 2b. The bootstrap images (Harbor's own, and what the spec lists under
    // bootstrapImages) as a bundle of their own that k3s/RKE2 import from
    // agent/images/ at start: the registry cannot serve its own images.
    let bundle = edgeiso_bundle::Bundle::open(&parts[0]).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    if let Some(plan) = bundle.subset(edgeiso_bundle::Role::Bootstrap, &format!("{}-bootstrap", spec.name))? {
        let dir = root.join(layout::ISO_IMAGES_DIR.trim_start_matches('/'));
        fs::create_dir_all(&dir)?;
        // One file: k3s imports whole archives, not parts; ISO 9660 caps a file at 4 GiB.
        let written =
            plan.write(&dir, &WriteOptions { part_size: Some(BOOTSTRAP_ARCHIVE_LIMIT), ..Default::default() })?;
        if written.paths.len() > 1 {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!(
                    "the bootstrap images of {} exceed 4 GiB, more than one ISO 9660 file can hold",
                    spec.name
                ),
            ));
        }
    }

    // 3. The agent.
    let bin = root.join(layout::ISO_AGENT_BIN.trim_start_matches('/'));
    fs::create_dir_all(bin.parent().expect("has parent"))?;
    fs::copy(agent, &bin).with_context(|| format!("copying {}", agent.display()))?;
    set_mode(&bin, 0o755)?;
    let agent_bytes = fs::metadata(&bin)?.len();

    // 4. The initramfs overlay.
    let live_config = live_agent_config(spec, &site);
    let compression = match agent_args.initrd_compression {
        InitrdCompression::Zstd => Compression::Zstd,
        InitrdCompression::Gzip => Compression::Gzip,
    };
    let mut img = InitramfsBuilder::from_env().map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    img.add_file(edgeiso_overlay::EDGEISO_DRACUT_HOOK_PATH, hook_script(spec).into_bytes(), 0o755)?;
    img.add_file_from(INITRD_AGENT, agent, 0o755)?;
    img.add_file(INITRD_AGENT_CONFIG, live_config.to_yaml().into_bytes(), 0o644)?;
    let initrd = root.join(edgeiso_overlay::EDGEISO_INITRD_ISO_PATH.trim_start_matches('/'));
    fs::create_dir_all(initrd.parent().expect("has parent"))?;
    img.write_to_path(&initrd, compression)?;
    // The kernel drops what breaks its rules silently: check now.
    check_initramfs(&fs::read(&initrd)?)
        .map_err(|e| anyhow::anyhow!("initramfs overlay {} fails the kernel's rules: {e}", initrd.display()))?;
    let initrd_bytes = fs::metadata(&initrd)?.len();
    if initrd_bytes >= INITRD_BUDGET {
        ui.line(format!(
            "warning: the initramfs overlay is {} (budget {}): is the agent stripped?",
            human_bytes(initrd_bytes),
            human_bytes(INITRD_BUDGET)
        ));
    }

    let mut report = OverlayReport {
        output: out.to_path_buf(),
        site: spec.name.clone(),
        live_load: spec.agent.live_load,
        registry: spec.harbor.url.to_string(),
        bundle_parts: iso_parts,
        bundle_bytes: parts.iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum(),
        agent_bytes,
        initrd_bytes,
        initrd_compression: format!("{compression:?}").to_lowercase(),
        files: Vec::new(),
    };
    // The remaster keeps files others may not read private on the ISO (render
    // writes its secrets 0600 on purpose); this command's own files get
    // explicit modes so the umask cannot make them look private, or the ISO
    // differ between hosts.
    normalise_own_modes(root)?;

    // 5. overlay.json: lists the tree (it marks the folder as ours, and
    // travels on the ISO as a table of contents).
    report.files = list_files(root)?;
    report.files.push((format!("/{OVERLAY_JSON}"), 0));
    let mut json = serde_json::to_vec_pretty(&serde_json::json!({
        "site": report.site, "liveLoad": report.live_load, "registry": report.registry,
        "bundleParts": report.bundle_parts, "initrd": edgeiso_overlay::EDGEISO_INITRD_ISO_PATH,
        "files": report.files.iter().filter(|(p, _)| p != &format!("/{OVERLAY_JSON}")).collect::<Vec<_>>(),
    }))?;
    json.push(b'\n');
    fs::write(root.join(OVERLAY_JSON), &json)?;
    set_mode(&root.join(OVERLAY_JSON), 0o644)?;
    if let Some(last) = report.files.last_mut() {
        last.1 = json.len() as u64;
    }

    // 6. Swap in.
    let tmp = tmp.keep();
    if out.exists() {
        let old = parent.join(format!(".edgeiso-overlay-old.{}", std::process::id()));
        fs::rename(out, &old)?;
        fs::rename(&tmp, out)?;
        fs::remove_dir_all(&old)?;
    } else {
        fs::rename(&tmp, out)?;
    }
    Ok(report)
}

/// `content-s.tar.part002` -> `content-s.tar`.
fn bundle_stem(p: &Path) -> String {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "content.tar".into());
    match name.rfind(".part") {
        Some(i) if name[i + 5..].chars().all(|c| c.is_ascii_digit()) && name.len() > i + 5 => name[..i].to_owned(),
        _ => name,
    }
}

/// Put the bundle's bytes into `dir` as `STEM.partNNN` files of at most
/// `part_size` bytes: hard links when the parts already fit (no copy), else
/// a byte split of the concatenated stream.
fn lay_parts(parts: &[PathBuf], dir: &Path, stem: &str, part_size: u64) -> anyhow::Result<Vec<String>> {
    let name = |i: usize| format!("{stem}.part{i:03}");
    let iso_dir = layout::ISO_CONTENT_DIR;
    let sizes: Vec<u64> = parts.iter().map(|p| fs::metadata(p).map(|m| m.len())).collect::<Result<_, _>>()?;
    if sizes.iter().all(|&s| s <= part_size) {
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let dest = dir.join(name(i));
            if fs::hard_link(p, &dest).is_err() {
                fs::copy(p, &dest).with_context(|| format!("copying {}", p.display()))?;
            }
            out.push(format!("{iso_dir}/{}", name(i)));
        }
        return Ok(out);
    }
    let mut reader = edgeiso_bundle::parts::PartsReader::open(parts)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut i = 0;
    loop {
        let dest = dir.join(name(i));
        let mut f = std::io::BufWriter::new(fs::File::create(&dest)?);
        let mut written = 0u64;
        while written < part_size {
            let want = buf.len().min((part_size - written) as usize);
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n])?;
            written += n as u64;
        }
        f.flush()?;
        if written == 0 && i > 0 {
            drop(f);
            fs::remove_file(&dest)?;
            break;
        }
        out.push(format!("{iso_dir}/{}", name(i)));
        i += 1;
        if written < part_size {
            break;
        }
    }
    Ok(out)
}

/// Give every file this command wrote itself 0644 (0755 when its owner may
/// run it). Render's output (`/config.yaml`, `/edgeiso/site/`) keeps the modes
/// render gave it: 0600 for what carries secrets.
fn normalise_own_modes(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let site = root.join(layout::ISO_SITE_DIR.trim_start_matches('/'));
    for p in walkdir(root)? {
        if p == root.join("config.yaml") || p.starts_with(&site) {
            continue;
        }
        let meta = fs::symlink_metadata(&p)?;
        if meta.is_file() {
            set_mode(&p, if meta.permissions().mode() & 0o100 != 0 { 0o755 } else { 0o644 })?;
        }
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

fn list_files(root: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for e in walkdir(root)? {
        let rel = e.strip_prefix(root).expect("under root");
        out.push((format!("/{}", rel.display()), fs::metadata(&e)?.len()));
    }
    out.sort();
    Ok(out)
}

fn walkdir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walkdir(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// The agent's config for a load from the live medium: the bundle where the
/// medium is mounted, credentials and CA read from the medium's site folder.
pub fn live_agent_config(spec: &Spec, rendered_site: &Path) -> AgentConfig {
    let live_site = format!("{}{}", layout::LIVE_MEDIUM, layout::ISO_SITE_DIR);
    let has = |rel: &str| rendered_site.join(rel).is_file();
    let password = has(layout::OUT_HARBOR_PASSWORD);
    AgentConfig {
        registry: Some(spec.harbor.url.to_string()),
        project: Some(spec.harbor.project.clone()),
        ca: (spec.harbor.url.is_https() && has(layout::OUT_HARBOR_CA))
            .then(|| PathBuf::from(format!("{live_site}/{}", layout::OUT_HARBOR_CA))),
        insecure: false,
        username: password.then(|| "admin".to_string()),
        password_file: password.then(|| PathBuf::from(format!("{live_site}/{}", layout::OUT_HARBOR_PASSWORD))),
        bundles: vec![PathBuf::from(format!("{}{}", layout::LIVE_MEDIUM, layout::ISO_CONTENT_DIR))],
        state_dir: Some(PathBuf::from(LIVE_STATE_DIR)),
    }
}

/// How long the live load may take in all before the hook gives up and lets
/// the boot go on: a stalled registry must never hold a live boot in the
/// initramfs (dracut's pre-pivot service has no start timeout).
pub const LIVE_LOAD_DEADLINE: &str = "10m";

/// The dracut hook (`pre-pivot/90-edgeiso.sh`). dracut *sources* it, so it
/// must never `exit` or leave `set -e`, variables or functions behind;
/// everything runs in a function with `local` variables. It needs nothing
/// but the shell, `mkdir` and `cp` (dracut's base module installs both): the
/// counting and the log tail are done by the shell itself (a last line without
/// a newline, such as a panic's, is read too).
pub fn hook_script(spec: &Spec) -> String {
    let registry = spec.harbor.url.to_string();
    let content = format!("{}{}", layout::LIVE_MEDIUM, layout::ISO_CONTENT_DIR);
    let load = if spec.agent.live_load {
        format!(
            r#"    if [ ! -d "{content}" ]; then
        edgeiso_say "failed: no bundle at {content} (live medium not mounted?)"
        return 0
    fi
    edgeiso_say "loading the bundle from the live medium into {registry}"
    /{agent} load --config /{config} --wait-timeout 3m --deadline {deadline} --json \
        >/run/edgeiso/load.json 2>/run/edgeiso/load.log </dev/null
    rc=$?
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in *'"event":"image-loaded"'*) n=$((n + 1)) ;; esac
    done </run/edgeiso/load.json
    if [ "$rc" = 0 ]; then
        edgeiso_say "loaded $n images into {registry}"
        return 0
    fi
    edgeiso_say "failed: edgeiso-agent exit $rc after $n images; the end of its log:"
    total=0
    while IFS= read -r line || [ -n "$line" ]; do total=$((total + 1)); done </run/edgeiso/load.log
    i=0
    while IFS= read -r line || [ -n "$line" ]; do
        i=$((i + 1))
        [ "$i" -gt $((total - 15)) ] && edgeiso_say "  $line"
    done </run/edgeiso/load.log
"#,
            agent = INITRD_AGENT,
            config = INITRD_AGENT_CONFIG,
            deadline = LIVE_LOAD_DEADLINE,
        )
    } else {
        format!(
            "    edgeiso_say \"staged: /run/edgeiso/bin/edgeiso-agent (liveLoad off; the installed node loads into {registry})\"\n"
        )
    };
    format!(
        r#"# edgeiso initramfs overlay hook for site {name}, written by `edgeiso overlay`.
# Sourced by dracut at pre-pivot (the live medium is mounted at {live}):
# never exit, never leave options, variables or functions set.
edgeiso_say() {{ echo "EDGEISO-AGENT: $*" >/dev/console 2>/dev/null || echo "EDGEISO-AGENT: $*"; }}
edgeiso_hook() {{
    local rc n line total i
    mkdir -p /run/edgeiso/bin {state}
    cp /{agent} /run/edgeiso/bin/edgeiso-agent
    cp /{config} /run/edgeiso/agent-live.yaml
{load}}}
edgeiso_hook
unset -f edgeiso_hook edgeiso_say
"#,
        name = spec.name,
        live = layout::LIVE_MEDIUM,
        state = LIVE_STATE_DIR,
        agent = INITRD_AGENT,
        config = INITRD_AGENT_CONFIG,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(bundle_stem(Path::new("/x/content-s.tar")), "content-s.tar");
        assert_eq!(bundle_stem(Path::new("/x/content-s.tar.part002")), "content-s.tar");
        assert_eq!(bundle_stem(Path::new("content-s.tar.partial")), "content-s.tar.partial");
    }

    #[test]
    fn elf_static_detection() {
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None);
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are dynamically linked against glibc.
        assert_eq!(elf_is_static(&me), Some(false));
    }
}
