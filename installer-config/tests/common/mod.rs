//! Render's output lands in a folder the way the builder puts it there
//! (`edgeiso render`): render in memory, then write the files, each with the
//! mode render gave it, replacing the folder whole.

use std::path::Path;

// Not every test binary asks openssl.
#[allow(dead_code)]
pub mod openssl;

use edgeiso_contract::fs::StagedDir;
use edgeiso_installer_config::{render, RenderError, RenderOptions, RenderReport, Spec};

pub fn render_to(spec: &Spec, out: &Path, opts: &RenderOptions) -> Result<RenderReport, RenderError> {
    let report = render(spec, opts)?;
    let stage = StagedDir::new(out).expect("staging folder");
    report.files.write_into(stage.path()).expect("write the render output");
    stage.commit().expect("swap it in");
    Ok(report)
}
