//! `edgeiso lint`: checks run before an ISO is burned.
//!
//! - A cluster profile (or a k3s/RKE2 config) must not enable the
//!   `AlwaysPullImages` admission plugin: with it every pod start pulls, and an
//!   air-gapped node cannot. Found in `kube-apiserver-arg` (the Palette k3s/RKE2
//!   seed form `cluster.config.kube-apiserver-arg`, or a plain config), in a
//!   kubeadm `enable-admission-plugins:` key, and inside string values that
//!   hold YAML (`cluster.config: |`, a profile's pack `values`). `fix` writes a
//!   copy without it, editing only the offending lines (comments and layout kept).
//! - Harbor's registry volume must hold the bundle plus 20%.
//! - Hosts should meet Palette's stated minimums; the profile should have a
//!   storage (CSI) layer for Harbor's volumes.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::SpecError;
use crate::render::harbor::CHART_DEFAULT_REGISTRY_SIZE;
use crate::spec::{HarborDeployment, Size, Spec};
use crate::yaml::{self, Value};

const PLUGIN: &str = "AlwaysPullImages";
const KEY: &str = "enable-admission-plugins";
/// Headroom over the bundle's unique bytes that Harbor's registry volume needs.
pub const STORAGE_HEADROOM_PERCENT: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: Option<PathBuf>,
    /// 1-based.
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: ")?;
        match (&self.file, self.line) {
            (Some(p), Some(l)) => write!(f, "{}:{l}: ", p.display())?,
            (Some(p), None) => write!(f, "{}: ", p.display())?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintReport {
    pub findings: Vec<Finding>,
}

impl LintReport {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Warning)
    }
    pub fn merge(&mut self, other: LintReport) {
        self.findings.extend(other.findings);
    }
    fn push(&mut self, severity: Severity, file: Option<&Path>, line: Option<u64>, message: String) {
        self.findings.push(Finding { severity, file: file.map(Path::to_owned), line, message });
    }
}

impl fmt::Display for LintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for x in &self.findings {
            writeln!(f, "{x}")?;
        }
        Ok(())
    }
}

/// Lint a cluster profile or k3s/RKE2 config file.
pub fn lint_profile(path: &Path) -> Result<LintReport, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        what: "profile",
        path: path.to_owned(),
        source,
    })?;
    lint_profile_text(&text, path)
}

/// Lint profile text as if read from `path`.
pub fn lint_profile_text(text: &str, path: &Path) -> Result<LintReport, SpecError> {
    let docs = yaml::parse_all(text).map_err(|e| crate::spec::yaml_error_quiet(path, &e))?;
    let mut report = LintReport::default();

    let mut found = 0usize;
    let mut shape = Shape::default();
    for d in &docs {
        found += walk(d, &mut shape, 0);
        shape.note_top(d);
    }
    if found > 0 {
        let lines = offending_lines(text);
        if lines.is_empty() {
            report.push(Severity::Error, Some(path), None, always_pull_message());
        }
        for l in lines {
            report.push(Severity::Error, Some(path), Some(l), always_pull_message());
        }
    }

    match shape.storage() {
        Storage::Present | Storage::Builtin => {}
        Storage::NoCsiPack => report.push(
            Severity::Warning,
            Some(path),
            None,
            "the profile has no storage (CSI) layer: Harbor's volumes need a StorageClass".into(),
        ),
        Storage::LocalStorageDisabled => report.push(
            Severity::Warning,
            Some(path),
            None,
            "local-storage is disabled and no storage (CSI) layer is visible: Harbor's volumes need a StorageClass"
                .into(),
        ),
        Storage::Unknown => report.push(
            Severity::Warning,
            Some(path),
            None,
            "no storage (CSI) layer in this file: make sure the cluster profile has one, Harbor's volumes need a StorageClass".into(),
        ),
    }
    Ok(report)
}

fn always_pull_message() -> String {
    format!(
        "{PLUGIN} is in {KEY}: every pod start would pull from the network, which an air-gapped site cannot; remove it (edgeiso lint --fix writes a corrected copy)"
    )
}

/// What the file looks like, for the storage-layer warning.
#[derive(Default)]
struct Shape {
    packs_seen: bool,
    csi_pack: bool,
    seed_form: bool,
    plain_config: bool,
    local_storage_disabled: bool,
}

enum Storage {
    Present,
    Builtin,
    NoCsiPack,
    LocalStorageDisabled,
    Unknown,
}

impl Shape {
    fn note_top(&mut self, d: &Value) {
        let Some(m) = d.as_map() else { return };
        if d.path(&["cluster", "config"]).is_some() {
            self.seed_form = true;
        }
        if m.get("kube-apiserver-arg").is_some()
            || m.get("write-kubeconfig-mode").is_some()
            || m.get("disable").is_some()
        {
            self.plain_config = true;
        }
        if let Some(dis) = m.get("disable") {
            let has = match dis {
                Value::String(s) => s.split(',').any(|x| x.trim() == "local-storage"),
                Value::Seq(s) => s.iter().any(|x| x.as_str() == Some("local-storage")),
                _ => false,
            };
            self.local_storage_disabled |= has;
        }
    }
    fn storage(&self) -> Storage {
        if self.csi_pack {
            Storage::Present
        } else if self.packs_seen {
            Storage::NoCsiPack
        } else if self.plain_config && !self.seed_form {
            if self.local_storage_disabled {
                Storage::LocalStorageDisabled
            } else {
                // k3s ships the local-path provisioner.
                Storage::Builtin
            }
        } else {
            Storage::Unknown
        }
    }
}

fn is_storage_pack(m: &crate::yaml::Map) -> bool {
    let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    if field("layer") == "csi" || field("type") == "csi" {
        return true;
    }
    let name = field("name");
    ["csi", "longhorn", "rook", "ceph", "portworx", "openebs", "local-path", "nfs", "piraeus", "topolvm"]
        .iter()
        .any(|k| name.contains(k))
}

/// Count `AlwaysPullImages` in admission-plugin settings under `v`.
fn walk(v: &Value, shape: &mut Shape, depth: usize) -> usize {
    if depth > 64 {
        return 0;
    }
    match v {
        Value::Map(m) => {
            let mut n = 0;
            for (k, child) in m.iter() {
                match k.as_str() {
                    "kube-apiserver-arg" | "kube-apiserver-args" => n += count_in_args(child),
                    KEY => n += child.as_str().map_or(0, |s| usize::from(plugin_listed(s))),
                    "packs" => {
                        if let Some(list) = child.as_seq() {
                            for p in list.iter().filter_map(Value::as_map) {
                                shape.packs_seen = true;
                                shape.csi_pack |= is_storage_pack(p);
                            }
                        }
                    }
                    _ => {}
                }
                n += walk(child, shape, depth + 1);
            }
            n
        }
        Value::Seq(s) => s.iter().map(|x| walk(x, shape, depth + 1)).sum(),
        // `cluster.config: |` and pack `values:` hold YAML inside a string.
        Value::String(s) if s.contains('\n') && (s.contains("kube-apiserver-arg") || s.contains(KEY)) => {
            yaml::parse_all(s).map(|docs| docs.iter().map(|d| walk(d, shape, depth + 1)).sum()).unwrap_or(0)
        }
        _ => 0,
    }
}

fn count_in_args(v: &Value) -> usize {
    // One argument, or one string holding several flags.
    let one = |s: &str| {
        s.split_whitespace().any(|t| {
            let t = t.trim_start_matches('-');
            t.strip_prefix(KEY).and_then(|r| r.strip_prefix('=')).is_some_and(plugin_listed)
        })
    };
    match v {
        Value::String(s) => usize::from(one(s)),
        Value::Seq(items) => items.iter().filter_map(Value::as_str).filter(|s| one(s)).count(),
        _ => 0,
    }
}

fn plugin_listed(list: &str) -> bool {
    list.split(',').any(|p| p.trim().trim_matches(|c| c == '"' || c == '\'') == PLUGIN)
}

/// Lines (1-based) where an admission-plugin list names the plugin, comments skipped.
fn offending_lines(text: &str) -> Vec<u64> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && line_value(l).is_some_and(|(_, v, _)| plugin_listed(v)))
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

/// For a line holding `enable-admission-plugins[=:] LIST`, the byte range of LIST
/// as (start, list, end).
fn line_value(line: &str) -> Option<(usize, &str, usize)> {
    let k = line.find(KEY)?;
    let after = k + KEY.len();
    let rest = &line[after..];
    let sep = rest.find(['=', ':'])?;
    if !rest[..sep].trim().trim_matches(|c| c == '"' || c == '\'').is_empty() {
        return None;
    }
    let mut start = after + sep + 1;
    while line[start..].starts_with([' ', '"', '\'']) {
        start += 1;
    }
    let tail = &line[start..];
    let len = tail.find(['"', '\'', ' ', '#']).unwrap_or(tail.len());
    Some((start, &line[start..start + len], start + len))
}

/// The result of `fix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixReport {
    /// Where the copy is meant to go.
    pub output: PathBuf,
    /// 1-based lines of the input that were changed or removed.
    pub changed_lines: Vec<u64>,
    /// The corrected copy.
    pub text: String,
    /// The input's permission bits, which the copy should keep.
    pub mode: u32,
}

/// Remove `AlwaysPullImages` from every admission-plugin list in `text`.
/// Only the plugin goes (`NodeRestriction,AlwaysPullImages` -> `NodeRestriction`);
/// a list left empty takes its flag with it (the flow-list item, or the flag
/// in a string of several flags) and the line goes only when nothing else is
/// left on it. Returns the new text and the lines changed.
pub fn fix_text(text: &str) -> (String, Vec<u64>) {
    let mut out = String::with_capacity(text.len());
    let mut changed = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let eol = &line[body.len()..];
        match fix_line(body) {
            Some(None) => changed.push(i as u64 + 1), // nothing left: drop the line
            Some(Some(new)) => {
                changed.push(i as u64 + 1);
                out.push_str(&new);
                out.push_str(eol);
            }
            None => out.push_str(line),
        }
    }
    (out, changed)
}

/// Where a `#` comment starts on a line (outside quotes), else the line's length.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && (i == 0 || line[..i].ends_with([' ', '\t'])) => return i,
            None => {}
        }
    }
    line.len()
}

/// For the line's admission-plugin setting naming the plugin: `None` when
/// there is nothing to change, `Some(None)` when nothing is left of the line,
/// else the new line.
fn fix_line(body: &str) -> Option<Option<String>> {
    let code_end = comment_start(body);
    let code = &body[..code_end];
    let (list_start, list, list_end) = line_value(code)?;
    if !plugin_listed(list) {
        return None;
    }
    let k = code.find(KEY)?;
    // Inside a flow collection (`[a, b]`), and inside a quoted string?
    let (mut depth, mut quote) = (0usize, None::<(char, usize)>);
    for (i, c) in code[..k].char_indices() {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some((c, i)),
            None if c == '[' || c == '{' => depth += 1,
            None if c == ']' || c == '}' => depth = depth.saturating_sub(1),
            None => {}
        }
    }
    // Unquoted in a flow collection, a `,` ends the item.
    let list_end = if depth > 0 && quote.is_none() {
        list_start + list.find([',', ']', '}']).unwrap_or(list.len())
    } else {
        list_end
    };
    let list = &code[list_start..list_end];
    let kept: Vec<&str> = list.split(',').filter(|p| p.trim() != PLUGIN && !p.trim().is_empty()).collect();
    if !kept.is_empty() {
        return Some(Some(format!("{}{}{}", &code[..list_start], kept.join(","), &body[list_end..])));
    }

    // Nothing left of the list: remove the flag, `--` included.
    let mut a = code[..k].trim_end_matches('-').len();
    let mut b = list_end;
    let is_quote = |c: Option<char>| matches!(c, Some('"' | '\''));
    let closes = |open: Option<char>, at: &str| open.is_some_and(|q| (q == '"' || q == '\'') && at.starts_with(q));
    let before = code[..a].chars().next_back();
    let mut whole_item = quote.is_none();
    if closes(before, &code[b..]) {
        // `"--enable-admission-plugins=X"`: the whole quoted string goes.
        a -= 1;
        b += 1;
        whole_item = true;
    } else if closes(code[..list_start].chars().next_back(), &code[b..]) {
        // `enable-admission-plugins: "X"`
        b += 1;
    } else if quote.is_some() || depth == 0 {
        // One flag among others in a string: take one side's spaces with it.
        let after = code[b..].len() - code[b..].trim_start().len();
        if after > 0 && !code[b..].trim().is_empty() && !is_quote(code[b..].trim_start().chars().next()) {
            b += after;
        } else {
            let lead = code[..a].len() - code[..a].trim_end().len();
            let rest = code[..a].trim_end();
            if lead > 0
                && !rest.ends_with(':')
                && !rest.ends_with('-')
                && !rest.is_empty()
                && !is_quote(rest.chars().next_back())
            {
                a -= lead;
            }
        }
    }
    if depth > 0 && whole_item {
        // A flow-collection item: take one `,` separator with it.
        let tail = code[b..].trim_start();
        if let Some(t) = tail.strip_prefix(',') {
            b = code.len() - t.trim_start().len();
        } else if code[..a].trim_end().ends_with(',') {
            a = code[..a].trim_end().len() - 1;
        }
    }
    let new_code = format!("{}{}", &code[..a], &code[b..]);
    // Nothing left but indentation, a list dash, or the key whose value it was.
    let left = new_code.trim().trim_start_matches('-').trim_start();
    let bare_key = left.strip_suffix(':').is_some_and(|key| !key.contains([':', ' ', '[', '{']));
    if left.is_empty() || bare_key {
        return Some(None);
    }
    Some(Some(format!("{new_code}{}", &body[code_end..])))
}

/// A corrected copy of the profile at `path`, meant for `output` (which may
/// not be the input itself), checked to lint clean of the plugin. Nothing is
/// written: the caller writes `text` to `output` with `mode`.
pub fn fix_profile(path: &Path, output: &Path) -> Result<FixReport, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        what: "profile",
        path: path.to_owned(),
        source,
    })?;
    let same = output == path
        || std::fs::canonicalize(output).ok().zip(std::fs::canonicalize(path).ok()).is_some_and(|(a, b)| a == b);
    if same {
        return Err(SpecError::invalid(output, None, "--fix must write a new file, not the profile itself"));
    }
    let (fixed, changed_lines) = fix_text(&text);
    let after = lint_profile_text(&fixed, output)?;
    if after.errors().next().is_some() {
        return Err(SpecError::invalid(
            path,
            None,
            format!("could not remove {PLUGIN} automatically (it is not on a `{KEY}` line); edit the file by hand"),
        ));
    }
    // Profiles may hold secrets (pack values with passwords): the copy gets
    // the input's permissions, not a world-readable default.
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o600)
    };
    Ok(FixReport { output: output.to_owned(), changed_lines, text: fixed, mode })
}

/// Checks of the site spec itself: Harbor storage against the bundle, and
/// host prerequisites.
pub fn check_site(spec: &Spec, bundle_bytes: Option<u64>) -> LintReport {
    let mut r = LintReport::default();
    let file = Some(spec.source_path.as_path());
    if let Some(bundle) = bundle_bytes {
        let need = bundle + bundle * STORAGE_HEADROOM_PERCENT / 100;
        // Harbor from the profile's pack gets the pack's size, when it sets one.
        let from_pack = match (&spec.harbor.deployment, &spec.profile) {
            (HarborDeployment::External, Some(profile)) => crate::profile_harbor::registry_size(profile),
            _ => None,
        };
        if let Some(crate::profile_harbor::PackRegistrySize::Unreadable(text)) = &from_pack {
            r.push(
                Severity::Error,
                spec.profile.as_deref(),
                None,
                format!("the Harbor pack's harbor-config.storage.registry `{text}` is not a size (GB, or a quantity like 300Gi)"),
            );
        }
        let (size, defaulted) = match (&from_pack, &spec.harbor.storage.registry, &spec.harbor.deployment) {
            (Some(crate::profile_harbor::PackRegistrySize::Size(s)), _, _) => (Some(s.clone()), false),
            (_, Some(s), _) => (Some(s.clone()), false),
            (_, None, HarborDeployment::Chart(_)) => (Size::parse(CHART_DEFAULT_REGISTRY_SIZE).ok(), true),
            (_, None, _) => (None, false),
        };
        let file = if matches!(from_pack, Some(crate::profile_harbor::PackRegistrySize::Size(_))) {
            spec.profile.as_deref()
        } else {
            file
        };
        match size {
            Some(s) if s.bytes < need => r.push(
                Severity::Error,
                file,
                None,
                format!(
                    "{} {}{} ({}) cannot hold the bundle: {} of unique image bytes + {STORAGE_HEADROOM_PERCENT}% headroom = {}",
                    if file == spec.profile.as_deref() { "the Harbor pack's harbor-config.storage.registry" } else { "harbor.storage.registry" },
                    s.text,
                    if defaulted { " (the chart's default)" } else { "" },
                    human(s.bytes),
                    human(bundle),
                    human(need)
                ),
            ),
            Some(_) => {}
            None => r.push(
                Severity::Warning,
                file,
                None,
                format!(
                    "harbor.storage.registry is not set: cannot check that Harbor's volume holds the bundle ({} + {STORAGE_HEADROOM_PERCENT}%)",
                    human(bundle)
                ),
            ),
        }
    }
    let file = Some(spec.source_path.as_path());
    // Kairos >= 3.3 wants an admin user (see render::kairos_users); a
    // userData file may bring one, which render sees and lint does not.
    if spec.user_data.is_none() && !crate::render::kairos_users::spec_has_admin_user(spec) {
        match spec.install.no_users {
            None => r.push(Severity::Warning, file, None, crate::render::kairos_users::NOUSERS_WARNING.to_owned()),
            Some(false) => r.push(
                Severity::Error,
                file,
                spec.install.no_users_pos.map(|p| p.line),
                "install.noUsers is false but no user is in group `admin`: Kairos (>= 3.3) would refuse to install; add an admin user or remove install.noUsers".to_owned(),
            ),
            Some(true) => {}
        }
    }
    if let Some(hw) = &spec.hardware {
        let single = hw.nodes == 1;
        let (cpu, mem) = if single { (6, 12) } else { (4, 8) };
        let what = if single { "a single-node cluster" } else { "each node" };
        if let Some(c) = hw.cpus.filter(|c| *c < cpu) {
            r.push(Severity::Warning, file, None, format!("hardware.cpus {c}: Palette asks for {cpu} CPU for {what}"));
        }
        if let Some(m) = hw.memory_gib.filter(|m| *m < mem) {
            r.push(
                Severity::Warning,
                file,
                None,
                format!("hardware.memoryGiB {m}: Palette asks for {mem} GB for {what}"),
            );
        }
        if let Some(d) = hw.disk_gib.filter(|d| *d < 300) {
            r.push(
                Severity::Warning,
                file,
                None,
                format!("hardware.diskGiB {d}: Palette asks for about 300 GB of disk"),
            );
        }
    }
    r
}

fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes as f64 >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_list_value_on_a_line() {
        assert_eq!(
            line_value("  - enable-admission-plugins=AlwaysPullImages,NodeRestriction").map(|x| x.1),
            Some("AlwaysPullImages,NodeRestriction")
        );
        assert_eq!(
            line_value("      enable-admission-plugins: AlwaysPullImages,X # c").map(|x| x.1),
            Some("AlwaysPullImages,X")
        );
        assert_eq!(
            line_value(r#"  - "--enable-admission-plugins=A,AlwaysPullImages""#).map(|x| x.1),
            Some("A,AlwaysPullImages")
        );
        assert!(line_value("  - disable-admission-plugins=AlwaysAdmit").is_none());
    }

    #[test]
    fn fix_removes_only_the_plugin() {
        let (t, c) = fix_text("a:\n  - enable-admission-plugins=AlwaysPullImages,NodeRestriction\n  - x=1\n");
        assert_eq!(t, "a:\n  - enable-admission-plugins=NodeRestriction\n  - x=1\n");
        assert_eq!(c, [2]);
        let (t, _) = fix_text("  - \"enable-admission-plugins=A,AlwaysPullImages\"\n");
        assert_eq!(t, "  - \"enable-admission-plugins=A\"\n");
        let (t, c) = fix_text("k:\n  - enable-admission-plugins=AlwaysPullImages\n");
        assert_eq!(t, "k:\n");
        assert_eq!(c, [2]);
        let (t, c) = fix_text("# enable-admission-plugins=AlwaysPullImages\n");
        assert_eq!(t, "# enable-admission-plugins=AlwaysPullImages\n");
        assert!(c.is_empty());
    }
}
