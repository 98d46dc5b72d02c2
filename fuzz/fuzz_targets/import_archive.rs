//! `edgeiso bundle import` of one archive: an OCI layout (tar, .tar.gz,
//! .tar.zst) or a `docker save` tarball; what it writes must pass verify.
#![no_main]
use edgeiso::create::OutputOptions;
use edgeiso::import::{import, ImportOptions};
use edgeiso::ui::Ui;
use edgeiso_bundle::{verify::verify, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgeiso_fuzz::clear_scratch();
    let name = match data {
        [0x1f, 0x8b, ..] => "input.tar.gz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "input.tar.zst",
        _ => "input.tar",
    };
    let input = edgeiso_fuzz::scratch_file(name, data);
    let out = edgeiso_fuzz::scratch().join("out");
    let options = ImportOptions {
        sources: vec![input],
        output: OutputOptions { dir: out.clone(), part_size: 1 << 40, zstd: false },
        name: "fuzz".into(),
    };
    if import(&Ui::new(true), &options).is_ok() {
        let bundle = Bundle::open(&out.join("content-fuzz.tar")).expect("import wrote a bundle that opens");
        verify(&bundle, &|_| {}).expect("what import writes passes its own verify");
    }
});
