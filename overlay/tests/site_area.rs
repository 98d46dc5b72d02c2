//! The site area on real ISOs (xorriso remasters of the test bases): every
//! ISO edgeiso builds has one, empty; it is found without reading the
//! bundle, written and emptied in place (the rest of the image unchanged),
//! and refused on an ISO without one. Boots of ISOs with an empty area are
//! `tests/boot.rs` (every boot there carries one).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{base_iso, make_overlay};
use edgeiso_contract::site_area::{self, AreaManifest};
use edgeiso_overlay::iso::{Remaster, Xorriso};
use edgeiso_overlay::site_area::{area_file, locate, AreaContent, SiteAreaError, SiteFile};

fn built(tmp: &Path, layout: &str) -> std::path::PathBuf {
    let overlay = tmp.join("overlay");
    make_overlay(&overlay, layout);
    let out = tmp.join(format!("{layout}.iso"));
    Remaster::new(base_iso(layout), &overlay, &out).unwrap().run().unwrap();
    out
}

fn extract(iso: &Path, path: &str, dest: &Path) -> Vec<u8> {
    let o = std::process::Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", path])
        .arg(dest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(dest).unwrap()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn the_area_is_found_written_read_and_emptied_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let iso = built(tmp.path(), "grub-mkrescue");
    let x = Xorriso::find().unwrap();
    let area = locate(&x, &iso).unwrap();
    assert_eq!(area.bytes, site_area::DEFAULT_BYTES);
    assert_eq!(area.golden, "test");
    assert_eq!(area.read().unwrap(), AreaContent::Empty);
    // Every boot entry loads it, after the overlay.
    let grub = String::from_utf8(extract(&iso, "/boot/grub/grub.cfg", &tmp.path().join("grub.cfg"))).unwrap();
    assert!(grub.contains("/boot/edgeiso.img /boot/edgeiso-site.img"), "{grub}");
    // Private on the ISO: it will hold the site's secrets.
    let o = std::process::Command::new("xorriso")
        .args(["-indev"])
        .arg(&iso)
        .args(["-lsdl", "/boot/edgeiso-site.img"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("-rw-------"), "{}", String::from_utf8_lossy(&o.stdout));

    let len_before = std::fs::metadata(&iso).unwrap().len();
    let files = vec![
        SiteFile {
            path: "edgeiso-site/files/edgeiso/site/agent.yaml".into(),
            mode: 0o644,
            bytes: b"registry: https://10.9.9.9:30003\n".to_vec(),
        },
        SiteFile {
            path: "edgeiso-site/files/edgeiso/site/harbor/admin-password".into(),
            mode: 0o600,
            bytes: b"s3cret\n".to_vec(),
        },
    ];
    let manifest = AreaManifest {
        format: site_area::FORMAT,
        site: "store-7".into(),
        golden: area.golden.clone(),
        tool: "edgeiso test".into(),
        files: files.iter().map(area_file).collect(),
    };
    let used = area.write(Some((&manifest, &files))).unwrap();
    assert!(used > 0 && used < area.bytes);
    assert_eq!(std::fs::metadata(&iso).unwrap().len(), len_before, "written in place");
    match area.read().unwrap() {
        AreaContent::Written { manifest: m, files: got } => {
            assert_eq!(m, manifest);
            assert_eq!(got[0].1, files[0].bytes);
        }
        AreaContent::Empty => panic!("written area reads as empty"),
    }
    // What a boot loader and xorriso read is what was written; the image
    // still reads back as a whole (the area is a file of it).
    let via_iso = extract(&iso, "/boot/edgeiso-site.img", &tmp.path().join("area.img"));
    assert_eq!(via_iso.len() as u64, area.bytes);
    assert!(edgeiso_overlay::initramfs::check_initramfs(&via_iso).unwrap().get("edgeiso-site/area.json").is_some());
    // Located again, the same place.
    assert_eq!(locate(&x, &iso).unwrap().offset, area.offset);

    // Emptied: zeros again, byte for byte as built.
    let written = sha256(&iso);
    area.write(None).unwrap();
    assert_eq!(area.read().unwrap(), AreaContent::Empty);
    assert_ne!(sha256(&iso), written);
    assert!(extract(&iso, "/boot/edgeiso-site.img", &tmp.path().join("area2.img")).iter().all(|&b| b == 0));

    // Too large: the sizes are named, nothing is written.
    let big =
        vec![SiteFile { path: "edgeiso-site/files/edgeiso/site/big".into(), mode: 0o644, bytes: random(2 << 20) }];
    let m = AreaManifest { files: big.iter().map(area_file).collect(), ..manifest.clone() };
    let e = area.write(Some((&m, &big))).unwrap_err();
    assert!(matches!(e, SiteAreaError::TooLarge { area: 1048576, .. }), "{e}");
    assert!(e.to_string().contains("--site-area-size"), "{e}");
    assert_eq!(area.read().unwrap(), AreaContent::Empty);

    // A writer holding the ISO: a second waits, then gives up clearly.
    let held = std::fs::OpenOptions::new().read(true).write(true).open(&iso).unwrap();
    held.lock().unwrap();
    let mut impatient = area.clone();
    impatient.lock_wait = Duration::from_millis(300);
    let e = impatient.write(None).unwrap_err();
    assert!(matches!(e, SiteAreaError::Locked { .. }), "{e}");
    assert!(impatient.read().is_err(), "a reader does not see an area being written");
    drop(held);
    impatient.write(None).unwrap();
}

#[test]
fn an_iso_without_an_area_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let x = Xorriso::find().unwrap();
    // Not built by edgeiso at all.
    let e = locate(&x, &base_iso("isolinux")).unwrap_err();
    assert!(e.to_string().contains("not an ISO edgeiso built"), "{e}");
    // Built by an edgeiso before the area: an overlay.json without siteArea.
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "old");
    let json_path = overlay.join("edgeiso/overlay.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("siteArea");
    std::fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
    std::fs::remove_file(overlay.join("boot/edgeiso-site.img")).unwrap();
    let out = tmp.path().join("old.iso");
    let report = Remaster::new(base_iso("isolinux"), &overlay, &out).unwrap().run().unwrap();
    assert!(report.patched_configs.iter().all(|c| c.patched_lines > 0));
    let e = locate(&x, &out).unwrap_err();
    assert!(e.to_string().contains("older than personalize"), "{e}");
}

fn random(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
