//! With `SOURCE_DATE_EPOCH` set, a render that generates Harbor's CA says
//! that the output is not byte-identical (the keys are random). Its own test
//! binary: it sets the variable for the whole process.

mod common;
use common::render_to;

use edgeiso_installer_config::{RenderOptions, Spec};

#[test]
fn generated_tls_under_source_date_epoch_warns() {
    std::env::set_var("SOURCE_DATE_EPOCH", "1700000000");
    let d = tempfile::tempdir().unwrap();
    let spec = Spec::from_str("name: s\n", &d.path().join("site.yaml")).unwrap();
    let report = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap();
    assert!(report.generated_tls);
    assert!(
        report.warnings.iter().any(|w| w.contains("SOURCE_DATE_EPOCH") && w.contains("harbor.tls")),
        "{:?}",
        report.warnings
    );
    std::env::set_var("SOURCE_DATE_EPOCH", "yesterday");
    let e = render_to(&spec, &d.path().join("out"), &RenderOptions::default()).unwrap_err().to_string();
    assert!(e.contains("SOURCE_DATE_EPOCH"), "{e}");
}
