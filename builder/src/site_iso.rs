//! `edgeiso site-iso`: the small NoCloud-style `cidata` ISO (user-data,
//! meta-data) that carries site-specific user-data beside the installer ISO.

use std::path::PathBuf;

use edgeiso_installer_config::MAX_USER_DATA_BYTES;
use edgeiso_overlay::cidata::{write_cidata_iso, Cidata};
use edgeiso_overlay::iso::Xorriso;
use sha2::{Digest as _, Sha256};

use crate::exit::{self, with_code};
use crate::iso_build::iso_error;
use crate::ui::{human_bytes, Event, Ui};

/// `edgeiso site-iso`.
#[derive(Debug, Clone)]
pub struct SiteIsoOptions {
    /// The site's user-data (cloud-config; first line `#cloud-config`).
    pub user_data: PathBuf,
    /// meta-data [default: an `instance-id` from the user-data's digest].
    pub meta_data: Option<PathBuf>,
    /// The ISO to write.
    pub output: PathBuf,
}

pub fn site_iso(ui: &Ui, opts: &SiteIsoOptions) -> anyhow::Result<()> {
    let invalid = |e: String| with_code(exit::INVALID_INPUT, anyhow::anyhow!(e));
    let user_data =
        std::fs::read(&opts.user_data).map_err(|e| invalid(format!("{}: {e}", opts.user_data.display())))?;
    if !user_data.starts_with(b"#cloud-config") {
        return Err(invalid(format!("{}: user-data must start with the line #cloud-config", opts.user_data.display())));
    }
    if user_data.len() as u64 >= MAX_USER_DATA_BYTES {
        return Err(invalid(format!("{}: user-data is 1 MB or more; Kairos would skip it", opts.user_data.display())));
    }
    let meta_data = match &opts.meta_data {
        Some(p) => std::fs::read(p).map_err(|e| invalid(format!("{}: {e}", p.display())))?,
        None => {
            let id = &hex::encode(Sha256::digest(&user_data))[..16];
            format!("instance-id: edgeiso-{id}\n").into_bytes()
        }
    };
    let x = Xorriso::find().map_err(iso_error)?;
    write_cidata_iso(&x, &Cidata { user_data: &user_data, meta_data: &meta_data }, &opts.output).map_err(iso_error)?;
    let size = std::fs::metadata(&opts.output)?.len();
    ui.line(format!("wrote {} (volume cidata, user-data + meta-data, {})", opts.output.display(), human_bytes(size)));
    ui.print(opts.output.display().to_string());
    ui.event(&Event::SiteIso { output: opts.output.clone(), bytes: size, volume_id: "cidata".into() });
    Ok(())
}
