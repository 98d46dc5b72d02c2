//! The NoCloud-style `cidata` ISO: a small second medium (volume id
//! `cidata`, Joliet + Rock Ridge) holding `user-data` and `meta-data`, which
//! cloud-init-style readers (and Palette's installer) pick up beside the
//! installer ISO. Written by xorriso's mkisofs emulation into a locked,
//! 0600 temp file (the user-data carries secrets), then renamed.

use std::path::Path;
use std::process::Command;

use edgeiso_contract::fs::{create_locked_as, sweep_orphans, RemoveOnDrop};

use crate::iso::{IsoError, Xorriso};

/// What goes on the ISO.
#[derive(Debug, Clone, Copy)]
pub struct Cidata<'a> {
    pub user_data: &'a [u8],
    pub meta_data: &'a [u8],
}

/// Write the `cidata` ISO of `data` to `output`; every date is
/// `SOURCE_DATE_EPOCH` when set (byte-identical rebuilds).
pub fn write_cidata_iso(x: &Xorriso, data: &Cidata<'_>, output: &Path) -> Result<(), IsoError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IsoError::Io { path, source }
    };
    let out_dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(out_dir).map_err(io_at(out_dir))?;
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "site.iso".into());
    let stage_prefix = ".edgeiso-cidata.";
    edgeiso_contract::fs::sweep_orphan_dirs(out_dir, stage_prefix);
    let stage = edgeiso_contract::fs::create_locked_dir(out_dir, stage_prefix).map_err(io_at(out_dir))?;
    let epoch = edgeiso_contract::epoch::source_date_epoch()?;
    for (file, bytes) in [("user-data", data.user_data), ("meta-data", data.meta_data)] {
        let p = stage.path().join(file);
        // Rock Ridge modes from the host's umask would make the ISO differ
        // between hosts: 0644 in the tree (the ISO file itself is 0600).
        edgeiso_contract::fs::write_atomic(&p, bytes, edgeiso_contract::fs::FileMode::Public).map_err(io_at(&p))?;
        if let Some(e) = epoch {
            let t = std::fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(e));
            std::fs::File::options().write(true).open(&p).and_then(|f| f.set_times(t)).map_err(io_at(&p))?;
        }
    }
    // xorriso writes into the empty temp file, which stays flock-held (so a
    // later run sweeps it only once this one is gone) until the rename.
    let tmp_prefix = format!(".{name}.");
    sweep_orphans(out_dir, |n| n.starts_with(&tmp_prefix) && n.ends_with(".partial"));
    let (tmp, tmp_file) = create_locked_as(out_dir, &tmp_prefix, ".partial", Some(0o600)).map_err(io_at(out_dir))?;
    let _remove = RemoveOnDrop(tmp.clone());
    let mut cmd = Command::new(x.program());
    cmd.env("LC_ALL", "C").args(["-report_about", "SORRY", "-as", "mkisofs", "-o"]).arg(&tmp);
    cmd.args(["-V", "cidata", "-J", "-R", "-input-charset", "utf-8", "-graft-points"]);
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e.to_string()),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    cmd.arg(format!("user-data={}", stage.path().join("user-data").display()));
    cmd.arg(format!("meta-data={}", stage.path().join("meta-data").display()));
    let out = cmd.output().map_err(|e| x.spawn_error(e))?;
    if !out.status.success() {
        return Err(IsoError::ToolFailed {
            tool: x.program().display().to_string(),
            subject: output.display().to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    std::fs::rename(&tmp, output).map_err(io_at(output))?;
    drop(tmp_file);
    Ok(())
}
