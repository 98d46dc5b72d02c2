//! `edgeiso personalize`: one golden ISO, many sites. The site file's keys
//! are merged into the golden's own spec (kept on the ISO), the result is
//! rendered as `edgeiso iso` would, and what differs from the golden's files
//! is written into the ISO's site area, in place: the time does not depend
//! on the bundle (decision 0014, `docs/iso-layout.md`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use edgeiso_contract::fs::FileMode;
use edgeiso_contract::paths::{initrd, iso, out};
use edgeiso_contract::site_area::{self, AreaManifest};
use edgeiso_installer_config::site_file::SiteFile;
use edgeiso_installer_config::spec::{snapshot, Spec};
use edgeiso_installer_config::yaml::{self, Value};
use edgeiso_overlay::iso::Xorriso;
use edgeiso_overlay::site_area::{area_file, locate, AreaContent, SiteArea, SiteAreaError, SiteFile as AreaMember};
use serde::Serialize;

use crate::exit::{self, with_code};
use crate::iso_build::iso_error;
use crate::render_site::render_checked;
use crate::ui::{human_bytes, Event, Ui};

/// What `personalize` does to the ISO.
#[derive(Debug, Clone)]
pub enum PersonalizeAction {
    /// Write the site file's settings into the area.
    Write { site: PathBuf, output: Option<PathBuf> },
    /// Print what the area holds, secrets redacted.
    Show,
    /// Empty the area: the golden again.
    Reset,
}

#[derive(Debug, Clone)]
pub struct PersonalizeOptions {
    pub iso: PathBuf,
    pub action: PersonalizeAction,
}

/// A file of the area as `--show` and `--json` tell it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ShownFile {
    pub path: String,
    pub mode: u32,
    pub bytes: u64,
    pub sha256: String,
    /// Readable by anyone (0644): its text is shown; a private file's never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The golden's spec and inputs, unpacked into a private scratch folder.
struct Golden {
    _scratch: edgeiso_contract::fs::LockedDir,
    spec_path: PathBuf,
    remap: std::collections::BTreeMap<String, PathBuf>,
}

fn no_area(e: SiteAreaError) -> anyhow::Error {
    let code = match e {
        SiteAreaError::NoArea { .. } | SiteAreaError::Corrupt { .. } | SiteAreaError::TooLarge { .. } => {
            exit::INVALID_INPUT
        }
        SiteAreaError::Iso(e) => return iso_error(e),
        _ => exit::FAILURE,
    };
    with_code(code, e)
}

pub fn personalize(ui: &Ui, opts: &PersonalizeOptions) -> anyhow::Result<()> {
    let x = Xorriso::find().map_err(iso_error)?;
    match &opts.action {
        PersonalizeAction::Show => show(ui, &locate(&x, &opts.iso).map_err(no_area)?),
        PersonalizeAction::Reset => {
            let area = locate(&x, &opts.iso).map_err(no_area)?;
            area.write(None).map_err(no_area)?;
            ui.line(format!(
                "{}: site area emptied ({}): the golden {} again",
                opts.iso.display(),
                human_bytes(area.bytes),
                area.golden
            ));
            ui.event(&Event::Personalized {
                iso: opts.iso.clone(),
                site: None,
                golden: area.golden,
                area_bytes: area.bytes,
                used_bytes: 0,
                files: Vec::new(),
            });
            Ok(())
        }
        PersonalizeAction::Write { site, output } => write(ui, &x, &opts.iso, site, output.as_deref()),
    }
}

fn write(ui: &Ui, x: &Xorriso, golden_iso: &Path, site_path: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let started = Instant::now();
    // Everything that can be refused is, before the ISO is touched.
    let site = SiteFile::load(site_path).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    if site.spec.site.name.is_none() {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!(
                "{}: give the site's name (site.name): a personalised ISO says which site it is",
                site_path.display()
            ),
        ));
    }
    let area = locate(x, golden_iso).map_err(no_area)?;
    let golden = unpack_golden(&area)?;
    let golden_text = std::fs::read_to_string(&golden.spec_path)?;
    let merged = site.merge_into(&golden_text, &golden.spec_path).map_err(|e| with_code(exit::INVALID_INPUT, e))?;
    let spec = Spec::from_str_remapped(&merged, &golden.spec_path, Some(&golden.remap)).map_err(|e| {
        with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!("{} does not fit the golden {}: {e}", site_path.display(), area.golden),
        )
    })?;
    let rendered = render_checked(ui, &spec, &golden_render_options(&area)?)?;
    for w in &rendered.warnings {
        ui.line(format!("warning: {w}"));
    }
    let members = area_members(&area, &site, &spec, &rendered)?;
    let site_name = spec.site.name.clone().expect("checked above");
    let manifest = AreaManifest {
        format: site_area::FORMAT,
        site: site_name.clone(),
        golden: area.golden.clone(),
        tool: format!("edgeiso {}", env!("CARGO_PKG_VERSION")),
        files: members.iter().map(area_file).collect(),
    };
    // Into a copy (`--output`: the copy is made whole, then written, then
    // renamed), or into the golden itself.
    let (target_area, copy) = match output {
        Some(out) if same_file(golden_iso, out) => {
            return Err(with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!("--output {} is the golden itself: use --in-place to write into it", out.display()),
            ));
        }
        Some(out) => {
            let copy = copy_for_output(golden_iso, out)?;
            (locate(x, &copy.tmp).map_err(no_area)?, Some(copy))
        }
        None => (area.clone(), None),
    };
    let used = match copy.as_ref() {
        Some(c) => {
            let mut f = c.file.try_clone()?;
            target_area.write_locked(&mut f, Some((&manifest, &members)))
        }
        None => target_area.write(Some((&manifest, &members))),
    }
    .map_err(no_area)?;
    let written_to = match copy {
        Some(copy) => {
            std::fs::rename(&copy.tmp, &copy.out).map_err(|e| anyhow::anyhow!("{}: {e}", copy.out.display()))?;
            std::mem::forget(copy.remove);
            copy.out
        }
        None => golden_iso.to_owned(),
    };
    ui.line(format!(
        "{}: site {site_name} written into the site area ({} of {}, {} files) in {:.2} s",
        written_to.display(),
        human_bytes(used),
        human_bytes(area.bytes),
        members.len(),
        started.elapsed().as_secs_f64()
    ));
    ui.event(&Event::Personalized {
        iso: written_to,
        site: Some(site_name),
        golden: area.golden.clone(),
        area_bytes: area.bytes,
        used_bytes: used,
        files: manifest.files.iter().map(|f| f.path.clone()).collect(),
    });
    Ok(())
}

/// The golden's spec and the files it names, from `/edgeiso/golden/inputs.tar`.
fn unpack_golden(area: &SiteArea) -> anyhow::Result<Golden> {
    let tar =
        area.iso_file(iso::GOLDEN_INPUTS, snapshot::MAX_BYTES + (1 << 20)).map_err(no_area)?.ok_or_else(|| {
            with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!(
                    "{}: no {} (not a golden edgeiso built with its inputs)",
                    area.iso.display(),
                    iso::GOLDEN_INPUTS
                ),
            )
        })?;
    let scratch = edgeiso_contract::fs::scratch_dir("edgeiso-personalize.")?;
    let (spec_path, remap) = snapshot::unpack(&tar, scratch.path())
        .map_err(|e| with_code(exit::INVALID_INPUT, anyhow::anyhow!("{}: {e}", area.iso.display())))?;
    Ok(Golden { _scratch: scratch, spec_path, remap })
}

/// Render's options as the golden's bundle set them: a thin bundle's source
/// hosts, read from the golden's own `agent.yaml` (`sources:`), so that a
/// site of a thin golden keeps them (with its own credentials). The bundle
/// itself is not read: personalize's time does not depend on it.
fn golden_render_options(area: &SiteArea) -> anyhow::Result<edgeiso_installer_config::RenderOptions> {
    let path = format!("{}/{}", iso::SITE_DIR, out::AGENT_CONFIG);
    let Some(bytes) = area.iso_file(&path, 4 << 20).map_err(no_area)? else { return Ok(Default::default()) };
    let golden = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| edgeiso_contract::AgentConfig::from_yaml(text).ok())
        .ok_or_else(|| {
            with_code(
                exit::INVALID_INPUT,
                anyhow::anyhow!("{}: {path} is not an agent configuration", area.iso.display()),
            )
        })?;
    Ok(edgeiso_installer_config::RenderOptions {
        fetch_from: golden.sources.into_iter().map(|s| s.host).collect(),
        ..Default::default()
    })
}

/// What goes into the area: the site file, the site's files that differ
/// from the golden's, its user-data for `/oem`, and the live configuration.
fn area_members(
    area: &SiteArea,
    site: &SiteFile,
    spec: &Spec,
    rendered: &edgeiso_installer_config::RenderReport,
) -> anyhow::Result<Vec<AreaMember>> {
    let mode_of = |m: FileMode| m.bits();
    let mut members = vec![AreaMember {
        path: site_area::SITE_FILE.into(),
        mode: 0o644,
        bytes: yaml::to_string(&site.value).into_bytes(),
    }];
    let mut golden_config = None;
    for f in rendered.files.iter() {
        if f.path == out::CONFIG_YAML {
            golden_config = area.iso_file(iso::CONFIG_YAML, 4 << 20).map_err(no_area)?;
            continue;
        }
        let iso_path = format!("{}/{}", iso::SITE_DIR, f.path);
        let golden = area.iso_file(&iso_path, 64 << 20).map_err(no_area)?;
        if golden.as_deref() != Some(&f.bytes[..]) {
            members.push(AreaMember {
                path: format!("{}{iso_path}", site_area::FILES),
                mode: mode_of(f.mode),
                bytes: f.bytes.clone(),
            });
        }
    }
    // A file of the golden the site does not have stays as it is on the
    // node: refuse rather than boot a mixture.
    let ours: std::collections::BTreeSet<String> =
        rendered.files.iter().map(|f| format!("{}/{}", iso::SITE_DIR, f.path)).collect();
    if let Some(extra) = area.iso_files_under(iso::SITE_DIR).into_iter().find(|p| !ours.contains(p)) {
        return Err(with_code(
            exit::INVALID_INPUT,
            anyhow::anyhow!(
                "{}: the golden has {extra}, which site {} would not: such a site needs its own golden",
                site.path.display(),
                spec.name
            ),
        ));
    }
    // The user-data: Kairos reads the live root's /oem after the medium's
    // /config.yaml, later files winning and lists of stages appended. The
    // first file resets every top-level key of the golden's (an explicit
    // null), the second is the site's whole user-data.
    let config = rendered.files.get(out::CONFIG_YAML).expect("render always writes config.yaml");
    if golden_config.as_deref() != Some(&config.bytes[..]) {
        let golden = golden_config.unwrap_or_default();
        let golden_keys = match yaml::parse(&String::from_utf8_lossy(&golden)) {
            Ok(Value::Map(m)) => m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let mut reset = String::from(
            "#cloud-config\n# edgeiso personalize: the golden's user-data is replaced by 99_edgeiso-site.yaml\n",
        );
        for k in golden_keys {
            reset.push_str(&format!("{}: null\n", yaml::to_string(&Value::String(k)).trim_end()));
        }
        members.push(AreaMember {
            path: format!("{}/98_edgeiso-reset.yaml", site_area::OEM),
            mode: 0o600,
            bytes: reset.into_bytes(),
        });
        members.push(AreaMember {
            path: format!("{}/99_edgeiso-site.yaml", site_area::OEM),
            mode: 0o600,
            bytes: config.bytes.clone(),
        });
    }
    members.push(AreaMember {
        path: initrd::AGENT_CONFIG.into(),
        mode: 0o644,
        bytes: rendered.live_agent_config.to_yaml().into_bytes(),
    });
    Ok(members)
}

/// Whether `a` and `b` are one file (by inode; `b` need not exist).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Copy `golden` to a locked temp beside `out` (reflinked or
/// copy_file_range'd where the file system allows: `std::fs::copy` uses
/// them), for the caller to write and rename.
fn copy_for_output(golden: &Path, out: &Path) -> anyhow::Result<OutputCopy> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = out.file_name().ok_or_else(|| anyhow::anyhow!("{}: no file name", out.display()))?;
    // A copy a killed run left (gigabytes, its lock gone) goes first.
    let prefix = format!(".{}.", name.to_string_lossy());
    edgeiso_contract::fs::sweep_orphans(dir, |n| n.starts_with(&prefix) && n.ends_with(".partial"));
    // 0600, as every ISO edgeiso writes: it holds the site's secrets.
    let (tmp, file) = edgeiso_contract::fs::create_locked_as(dir, &prefix, ".partial", Some(0o600))?;
    let remove = edgeiso_contract::fs::RemoveOnDrop(tmp.clone());
    std::fs::copy(golden, &tmp).map_err(|e| anyhow::anyhow!("copy {} to {}: {e}", golden.display(), tmp.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // `copy` gave it the golden's mode.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(OutputCopy { tmp, out: out.to_owned(), file, remove })
}

/// The copy `--output` writes into: removed unless renamed into place.
struct OutputCopy {
    tmp: PathBuf,
    out: PathBuf,
    /// The copy, open and locked while it is written.
    file: std::fs::File,
    remove: edgeiso_contract::fs::RemoveOnDrop,
}

fn show(ui: &Ui, area: &SiteArea) -> anyhow::Result<()> {
    match area.read().map_err(no_area)? {
        AreaContent::Empty => {
            ui.line(format!(
                "{}: golden {}; site area ({}) empty",
                area.iso.display(),
                area.golden,
                human_bytes(area.bytes)
            ));
            ui.event(&Event::SiteAreaShown {
                iso: area.iso.clone(),
                golden: area.golden.clone(),
                site: None,
                files: Vec::new(),
            });
        }
        AreaContent::Written { manifest, files } => {
            ui.line(format!(
                "{}: golden {}; site {} (written by {})",
                area.iso.display(),
                manifest.golden,
                manifest.site,
                manifest.tool
            ));
            let shown: Vec<ShownFile> = files
                .iter()
                .map(|(f, bytes)| ShownFile {
                    path: f.path.clone(),
                    mode: f.mode,
                    bytes: f.bytes,
                    sha256: f.sha256.clone(),
                    text: (f.mode & 0o044 != 0).then(|| String::from_utf8_lossy(bytes).into_owned()),
                })
                .collect();
            for f in &shown {
                let what = if f.text.is_some() { String::new() } else { " (secret: not shown)".into() };
                ui.line(format!("  {:o} {:>10} {}{what}", f.mode, human_bytes(f.bytes), f.path));
            }
            if let Some(site) = shown.iter().find(|f| f.path == site_area::SITE_FILE).and_then(|f| f.text.clone()) {
                ui.line("the site's settings:");
                for line in site.lines() {
                    ui.line(format!("  {line}"));
                }
            }
            ui.event(&Event::SiteAreaShown {
                iso: area.iso.clone(),
                golden: manifest.golden,
                site: Some(manifest.site),
                files: shown,
            });
        }
    }
    Ok(())
}
