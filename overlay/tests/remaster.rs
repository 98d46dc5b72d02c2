//! Remastering real base ISOs (built by scripts/make-test-base-iso.sh):
//! inspection, overlay read-back, reproducibility and refusals. Booting the
//! results is in boot.rs.

mod common;

use edgeiso_testkit::files::{hidden_entries, mode_of};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{base_iso, make_overlay, sha256_file};
use edgeiso_overlay::iso::{
    file_extents, inspect, inspect_base, verify, BootConfigKind, EfiImage, IsoError, Remaster, Xorriso,
};
use std::sync::Arc;

fn remaster(
    base: &Path,
    overlay: &Path,
    out: &Path,
    epoch: Option<u64>,
) -> Result<edgeiso_overlay::iso::RemasterReport, IsoError> {
    let mut job = Remaster::new(base, overlay, out).unwrap();
    job.source_date_epoch = epoch;
    job.run()
}

#[test]
fn inspect_grub_mkrescue_layout() {
    let setup = inspect(&Xorriso::find().unwrap(), &base_iso("grub-mkrescue")).unwrap();
    assert_eq!(setup.volume_id, "EDGEISO_GRUB");
    assert_eq!(setup.bios_boot_image.as_deref(), Some("/boot/grub/i386-pc/eltorito.img"));
    assert_eq!(setup.bios_loader.as_deref(), Some("grub"));
    assert_eq!(setup.efi_boot_image, Some(EfiImage::File("/efi.img".into())));
    assert!(setup.gpt && setup.mbr && setup.hfsplus && !setup.appended_efi_partition);
    let cfgs: Vec<_> = setup.configs.iter().map(|c| (c.path.as_str(), c.kind, c.initrd_lines)).collect();
    assert_eq!(cfgs, [("/boot/grub/grub.cfg", BootConfigKind::Grub, 2)]);
    // grub-mkrescue's EFI image holds only GRUB itself: its embedded config
    // finds the ISO and reads /boot/grub/grub.cfg there.
    assert_eq!(setup.efi_image_files, ["efi.img:/efi/boot/bootx64.efi"]);
    assert!(setup.efi_image_configs.is_empty());
}

#[test]
fn inspect_auroraboot_layout() {
    let setup = inspect(&Xorriso::find().unwrap(), &base_iso("auroraboot")).unwrap();
    assert_eq!(setup.volume_id, "COS_LIVE");
    assert_eq!(setup.bios_boot_image.as_deref(), Some("/boot/x86_64/loader/eltorito.img"));
    assert!(matches!(setup.efi_boot_image, Some(EfiImage::Range { .. })));
    assert!(setup.appended_efi_partition && setup.gpt && !setup.hfsplus && setup.joliet);
    let cfgs: Vec<_> = setup.configs.iter().map(|c| (c.path.as_str(), c.initrd_lines, c.kernel_lines)).collect();
    assert_eq!(cfgs, [("/boot/grub2/grub.cfg", 2, 2)]);
    // Kairos-style stub in the EFI image: hands over, loads no kernel.
    assert_eq!(setup.efi_image_configs.len(), 1);
    assert_eq!(setup.efi_image_configs[0].path, "efi.img:/EFI/BOOT/grub.cfg");
    assert_eq!(setup.efi_image_configs[0].initrd_lines + setup.efi_image_configs[0].kernel_lines, 0);
}

#[test]
fn inspect_isolinux_layout() {
    let setup = inspect(&Xorriso::find().unwrap(), &base_iso("isolinux")).unwrap();
    assert_eq!(setup.bios_loader.as_deref(), Some("isolinux"));
    assert_eq!(setup.bios_boot_image.as_deref(), Some("/isolinux/isolinux.bin"));
    assert!(setup.efi_boot_image.is_none() && setup.mbr && !setup.gpt);
    let cfgs: Vec<_> = setup.configs.iter().map(|c| (c.path.as_str(), c.kind, c.initrd_lines)).collect();
    assert_eq!(cfgs, [("/isolinux/isolinux.cfg", BootConfigKind::Isolinux, 2)]);
}

#[test]
fn remaster_lays_overlay_patches_configs_and_verifies_every_layout() {
    for layout in common::LAYOUTS {
        let base = base_iso(layout);
        let base_hash = sha256_file(&base);
        let tmp = tempfile::tempdir().unwrap();
        let overlay = tmp.path().join("overlay");
        make_overlay(&overlay, layout);
        let out = tmp.path().join("out.iso");
        let report = remaster(&base, &overlay, &out, Some(1_700_000_000)).unwrap_or_else(|e| panic!("{layout}: {e}"));
        assert_eq!(sha256_file(&base), base_hash, "{layout}: base modified");
        // Every file of the overlay tree + the patched boot config, all
        // hashed back out of the ISO.
        assert_eq!(report.verification.files_checked, walk(&overlay).len() + 1, "{layout}");
        assert_eq!(report.patched_configs.len(), 1, "{layout}");
        assert_eq!(report.patched_configs[0].patched_lines, 2, "{layout}");
        assert_eq!(report.result.volume_id, report.base.volume_id);
        assert_eq!(report.result.bios_boot_image, report.base.bios_boot_image);
        assert_eq!(report.result.gpt, report.base.gpt);
        assert_eq!(report.result.appended_efi_partition, report.base.appended_efi_partition);
        // Remastering the output again must not add the overlay twice.
        let cfg = &report.patched_configs[0].path;
        let again = tmp.path().join("again.iso");
        let report2 = remaster(&out, &overlay, &again, Some(1_700_000_000)).unwrap();
        assert_eq!(report2.patched_configs[0].patched_lines, 0, "{layout}: {cfg} patched twice");
        eprintln!("{layout}: {}", report.result.summary());
        for n in &report.notes {
            eprintln!("{layout}: note: {n}");
        }
        // No temp file is left behind (any name), and the output is private.
        assert_eq!(hidden_entries(tmp.path()), Vec::<String>::new(), "{layout}");
        assert_eq!(mode_of(&out), 0o600, "{layout}: the output carries secrets");
    }
}

/// `xorriso -lsdl` of `paths` in `iso`: path -> permission string.
fn lsdl(iso: &Path, paths: &[&str]) -> BTreeMap<String, String> {
    let mut cmd = Command::new("xorriso");
    cmd.arg("-indev").arg(iso).arg("-lsdl").args(paths);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let q = l.find('\'')?;
            Some((l[q..].trim_matches('\'').to_string(), l.split_whitespace().next()?.to_string()))
        })
        .collect()
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An overlay as a build under `umask 077` leaves it (0700 folders, 0700
/// agent) or under `umask 022`; files carry the modes `edgeiso overlay` gives
/// them explicitly: 0644, and 0600 for one that holds secrets.
fn overlay_with_agent(dir: &Path, private: bool) {
    make_overlay(dir, "modes");
    std::fs::create_dir_all(dir.join("edgeiso/bin")).unwrap();
    std::fs::write(dir.join("edgeiso/bin/edgeiso-agent"), "#!/bin/sh\n").unwrap();
    let (d, x) = if private { (0o700, 0o700) } else { (0o755, 0o755) };
    for e in walk_all(dir) {
        chmod(&e, if e.is_dir() { d } else { 0o644 });
    }
    chmod(&dir.join("edgeiso/bin/edgeiso-agent"), x);
    chmod(&dir.join("config.yaml"), 0o600);
    chmod(dir, d);
}

fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            all.push(p);
        }
    }
    all
}

#[test]
fn modes_are_normalised_and_do_not_depend_on_the_umask() {
    for layout in ["grub-mkrescue", "isolinux"] {
        let base = base_iso(layout);
        let tmp = tempfile::tempdir().unwrap();
        let (private, open) = (tmp.path().join("private"), tmp.path().join("open"));
        overlay_with_agent(&private, true);
        overlay_with_agent(&open, false);
        let (a, b) = (tmp.path().join("a.iso"), tmp.path().join("b.iso"));
        let report = remaster(&base, &private, &a, Some(1_700_000_000)).unwrap();
        remaster(&base, &open, &b, Some(1_700_000_000)).unwrap();
        let cfg = report.patched_configs[0].path.clone();
        let paths = ["/", "/edgeiso", "/edgeiso/bin", "/edgeiso/bin/edgeiso-agent", "/config.yaml", "/boot"];
        let got = lsdl(&a, &[&paths[..], &["/boot/edgeiso.img", cfg.as_str()]].concat());
        let before = lsdl(&base, &["/", "/boot", cfg.as_str()]);
        // The root keeps the base's mode (grub-mkrescue: dr-xr-xr-x), not the
        // overlay folder's (a 0700 temp dir).
        assert_eq!(got["/"], before["/"], "{layout}: {got:?}");
        if layout == "isolinux" {
            assert_eq!(got["/"], "drwxr-xr-x");
        }
        assert_eq!(got["/edgeiso"], "drwxr-xr-x", "{layout}: {got:?}");
        assert_eq!(got["/edgeiso/bin"], "drwxr-xr-x", "{layout}: {got:?}");
        assert_eq!(got["/edgeiso/bin/edgeiso-agent"], "-rwxr-xr-x", "{layout}: {got:?}");
        // A file others may not read stays private: render writes secrets so.
        assert_eq!(got["/config.yaml"], "-rw-------", "{layout}: {got:?}");
        assert_eq!(got["/boot/edgeiso.img"], "-rw-r--r--", "{layout}: {got:?}");
        // The base's own folder and the patched config keep the base's modes.
        assert_eq!(got["/boot"], before["/boot"], "{layout}");
        assert_eq!(got[&cfg], before[&cfg], "{layout}");
        assert_eq!(sha256_file(&a), sha256_file(&b), "{layout}: the output depends on the overlay's modes");
    }
}

#[test]
fn orphaned_temp_files_are_swept_but_a_live_runs_are_kept() {
    let base = base_iso("isolinux");
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "sweep");
    let out = tmp.path().join("out.iso");
    // A run killed mid-write left its temp file; nobody holds its lock.
    let dead = tmp.path().join(".out.iso.partial-4242-dead-0");
    std::fs::write(&dead, b"half an ISO").unwrap();
    // A live run's temp file: its lock is held (here, by this test).
    let live = tmp.path().join(".out.iso.partial-4343-live-0");
    std::fs::write(&live, b"being written").unwrap();
    let holder = std::fs::File::open(&live).unwrap();
    holder.lock().unwrap();
    // Another output's temp file is not this run's business.
    let other = tmp.path().join(".other.iso.partial-4242-dead-0");
    std::fs::write(&other, b"x").unwrap();
    // A run that has just created its temp and not yet locked it: the temp
    // does not have its swept name yet, and a fresh one is never swept.
    let creating = tmp.path().join(".edgeiso-creating.4444-fresh-0");
    std::fs::write(&creating, b"").unwrap();
    remaster(&base, &overlay, &out, Some(1_700_000_000)).unwrap();
    assert!(!dead.exists(), "an orphan of a dead run was kept");
    assert!(live.exists(), "a live run's temp file was removed");
    assert!(other.exists());
    assert!(creating.exists(), "a temp in its creation window was removed");
    assert_eq!(
        hidden_entries(tmp.path()),
        [".edgeiso-creating.4444-fresh-0", ".other.iso.partial-4242-dead-0", ".out.iso.partial-4343-live-0"]
    );
    drop(holder);
}

/// A bootable ISO (isolinux El Torito, whose config loads an initrd) with
/// extra `files` (ISO path, content) and optionally an EFI El Torito FAT
/// image holding `efi_files`.
fn fixture_iso(dir: &Path, files: &[(&str, &str)], efi_files: &[(&str, &str)]) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("isolinux")).unwrap();
    std::fs::copy("/usr/lib/ISOLINUX/isolinux.bin", tree.join("isolinux/isolinux.bin")).unwrap();
    std::fs::write(
        tree.join("isolinux/isolinux.cfg"),
        "DEFAULT live\nLABEL live\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.img\n",
    )
    .unwrap();
    for (path, text) in files {
        let local = tree.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        std::fs::write(local, text).unwrap();
    }
    let mut cmd = Command::new("xorriso");
    cmd.args(["-as", "mkisofs", "-quiet", "-R", "-V", "FIXTURE", "-b", "isolinux/isolinux.bin", "-c"]).args([
        "isolinux/boot.cat",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
    ]);
    if !efi_files.is_empty() {
        let img = tree.join("efiboot.img");
        std::fs::File::create(&img).unwrap().set_len(2 << 20).unwrap();
        let mtool = |args: &[&str]| {
            let st = Command::new(args[0]).arg("-i").arg(&img).args(&args[1..]).env("MTOOLS_SKIP_CHECK", "1").status();
            assert!(st.unwrap().success(), "{args:?}");
        };
        mtool(&["mformat", "::"]);
        for (path, text) in efi_files {
            let local = dir.join("efi-src");
            std::fs::write(&local, text).unwrap();
            let mut dirs = String::new();
            for d in path.trim_start_matches('/').split('/').collect::<Vec<_>>().split_last().unwrap().1 {
                dirs.push('/');
                dirs.push_str(d);
                let _ = Command::new("mmd")
                    .arg("-i")
                    .arg(&img)
                    .arg(format!("::{dirs}"))
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .output();
            }
            mtool(&["mcopy", local.to_str().unwrap(), &format!("::{path}")]);
        }
        cmd.args(["-eltorito-alt-boot", "-e", "efiboot.img", "-no-emul-boot"]);
    }
    let iso = dir.join("fixture.iso");
    let st = cmd.arg("-o").arg(&iso).arg(&tree).status().unwrap();
    assert!(st.success());
    iso
}

const ARCH_ENTRY: &str = "title Arch Linux install medium\nlinux /arch/boot/x86_64/vmlinuz-linux\n\
                          initrd /arch/boot/x86_64/initramfs-linux.img\noptions archisobasedir=arch\n";

#[test]
fn systemd_boot_entries_are_refused_on_the_iso_and_in_the_efi_image() {
    let x = Xorriso::find().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "sdboot");

    // archiso style: isolinux for BIOS, systemd-boot entries on the ISO tree.
    let d1 = tmp.path().join("iso-tree");
    std::fs::create_dir_all(&d1).unwrap();
    let iso = fixture_iso(
        &d1,
        &[("/loader/entries/01-archiso.conf", ARCH_ENTRY), ("/loader/loader.conf", "timeout 3\n")],
        &[],
    );
    let setup = inspect(&x, &iso).unwrap();
    let kinds: Vec<_> = setup.configs.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    assert!(kinds.contains(&("/loader/entries/01-archiso.conf", BootConfigKind::SystemdBoot)), "{kinds:?}");
    let out = tmp.path().join("out.iso");
    let err = remaster(&iso, &overlay, &out, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, IsoError::UnpatchableBootConfig { line: 2, .. }), "{msg}");
    assert!(msg.contains("/loader/entries/01-archiso.conf") && msg.contains("would boot without"), "{msg}");
    assert!(!out.exists());

    // The entries only inside the EFI image (what systemd-boot really reads).
    let d2 = tmp.path().join("iso-efi");
    std::fs::create_dir_all(&d2).unwrap();
    let iso = fixture_iso(&d2, &[], &[("/loader/entries/01-archiso.conf", ARCH_ENTRY)]);
    let err = remaster(&iso, &overlay, &out, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, IsoError::EfiImageBootsKernel { .. }), "{msg}");
    assert!(msg.contains("efi.img:/loader/entries/01-archiso.conf"), "{msg}");
    assert!(hidden_entries(tmp.path()).is_empty());
}

#[test]
fn grub_initrd_commands_that_cannot_be_patched_are_refused_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "grubvar");
    let grub = "set ipath=(cd0)/boot/initrd.img\nmenuentry a {\n  linux /boot/vmlinuz\n  initrd $ipath\n}\n";
    let iso = fixture_iso(tmp.path(), &[("/boot/grub/grub.cfg", grub)], &[]);
    let err = remaster(&iso, &overlay, &tmp.path().join("out.iso"), None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, IsoError::UnpatchableBootConfig { line: 4, .. }), "{msg}");
    assert!(msg.contains("/boot/grub/grub.cfg, line 4") && msg.contains("\"$ipath\" is a variable"), "{msg}");

    // One-line entries and `then` branches are patched, on the quoted first initrd's device.
    let tmp = tempfile::tempdir().unwrap();
    make_overlay(&overlay_dir(tmp.path()), "grubline");
    let grub = "menuentry a { linux /boot/vmlinuz; initrd \"(cd0)/boot/initrd.img\"; }\n\
                if [ x = x ]; then initrd /boot/initrd.img; fi\n";
    let iso = fixture_iso(tmp.path(), &[("/boot/grub/grub.cfg", grub)], &[]);
    let out = tmp.path().join("out.iso");
    let report = remaster(&iso, &overlay_dir(tmp.path()), &out, None).unwrap();
    let grub_patch = report.patched_configs.iter().find(|c| c.path == "/boot/grub/grub.cfg").unwrap();
    assert_eq!((grub_patch.patched_lines, grub_patch.initrd_lines), (2, 2));
    let local = tmp.path().join("grub.cfg.out");
    let st = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&out)
        .args(["-extract", "/boot/grub/grub.cfg"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = std::fs::read_to_string(&local).unwrap();
    // The overlay, then the site area, on the first initrd's device.
    assert!(
        text.contains("initrd \"(cd0)/boot/initrd.img\" (cd0)/boot/edgeiso.img (cd0)/boot/edgeiso-site.img; }"),
        "{text}"
    );
    assert!(text.contains("then initrd /boot/initrd.img /boot/edgeiso.img /boot/edgeiso-site.img; fi"), "{text}");
}

fn overlay_dir(tmp: &Path) -> PathBuf {
    tmp.join("overlay")
}

#[test]
fn verify_names_the_file_whose_bytes_were_corrupted_in_the_output() {
    let x = Xorriso::find().unwrap();
    let base = base_iso("auroraboot");
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "corrupt");
    let out = tmp.path().join("out.iso");
    remaster(&base, &overlay, &out, Some(1_700_000_000)).unwrap();
    let expected: BTreeMap<String, PathBuf> = walk(&overlay);
    let base_setup = inspect(&x, &base).unwrap();
    let good = verify(&x, &out, &base_setup, &expected).unwrap();
    assert_eq!(good.files_checked, expected.len());
    let image = std::fs::read(&out).unwrap();

    // Find each file's data in the image by its content (independently of
    // xorriso's extent report), flip one byte there, and expect verify to
    // name exactly that file and offset.
    for (iso_path, byte) in [("/opt/spectrocloud/content/content-test.tar.part000", 250_001), ("/config.yaml", 3)] {
        let local = std::fs::read(&expected[iso_path]).unwrap();
        let needle = &local[..local.len().min(4096)];
        let start = image.windows(needle.len()).position(|w| w == needle).expect("file data in the image");
        assert_eq!(start % 2048, 0, "{iso_path}: file data starts on a block");
        assert_eq!(file_extents(&x, &out).unwrap()[iso_path], [(start as u64, local.len() as u64)], "{iso_path}");
        let mut bad = image.clone();
        bad[start + byte] ^= 0x40;
        let corrupt = tmp.path().join("corrupt.iso");
        std::fs::write(&corrupt, &bad).unwrap();
        let err = verify(&x, &corrupt, &base_setup, &expected).unwrap_err();
        assert!(matches!(err, IsoError::VerifyFailed { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("{iso_path}: differs from")), "{msg}");
        assert!(msg.contains(&format!("at byte {byte} ")), "{msg}");
    }

    // A file of the overlay that is not in the image is named too.
    let mut extra = expected.clone();
    extra.insert("/not-on-the-iso".into(), expected["/config.yaml"].clone());
    let err = verify(&x, &out, &base_setup, &extra).unwrap_err();
    assert!(err.to_string().contains("/not-on-the-iso is missing"), "{err}");
}

fn walk(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                files.insert(format!("/{}", p.strip_prefix(dir).unwrap().display()), p);
            }
        }
    }
    files
}

#[test]
fn remaster_is_byte_identical_with_source_date_epoch() {
    for layout in ["grub-mkrescue", "auroraboot", "isolinux"] {
        let base = base_iso(layout);
        let tmp = tempfile::tempdir().unwrap();
        let (o1, o2) = (tmp.path().join("o1"), tmp.path().join("o2"));
        make_overlay(&o1, layout);
        // Same content, different disk times and a second apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        make_overlay(&o2, layout);
        let (a, b) = (tmp.path().join("a.iso"), tmp.path().join("b.iso"));
        remaster(&base, &o1, &a, Some(1_700_000_000)).unwrap();
        remaster(&base, &o2, &b, Some(1_700_000_000)).unwrap();
        assert_eq!(sha256_file(&a), sha256_file(&b), "{layout}: remaster is not reproducible");
        let c = tmp.path().join("c.iso");
        remaster(&base, &o1, &c, Some(1_800_000_000)).unwrap();
        assert_ne!(sha256_file(&a), sha256_file(&c), "{layout}: epoch has no effect");
    }
}

#[test]
fn an_inspection_made_up_front_is_reused_and_outputs_under_dev_are_plain_files() {
    let x = Xorriso::find().unwrap();
    let base = base_iso("auroraboot");
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "auroraboot");
    let plain = tmp.path().join("plain.iso");
    remaster(&base, &overlay, &plain, Some(1_700_000_000)).unwrap();

    // xorriso takes a path under /dev for a drive unless told it is a file.
    let shm = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs) for this test");
    let out = shm.path().join("out.iso");
    let mut job = Remaster::new(&base, &overlay, &out).unwrap();
    job.source_date_epoch = Some(1_700_000_000);
    job.inspected = Some(Arc::new(inspect_base(&x, &base).unwrap()));
    let report = job.run().unwrap();
    assert_eq!(report.verification.files_checked, walk(&overlay).len() + 1);
    assert_eq!(sha256_file(&out), sha256_file(&plain), "reusing the inspection changed the output");

    // What the remaster acts on is that inspection, not a second one: one
    // that found no boot config makes it refuse the base.
    let mut blind = inspect_base(&x, &base).unwrap();
    blind.setup.configs.clear();
    let mut job = Remaster::new(&base, &overlay, tmp.path().join("blind.iso")).unwrap();
    job.inspected = Some(Arc::new(blind));
    assert!(matches!(job.run(), Err(IsoError::UnsupportedLayout { .. })));

    // An inspection of another ISO is not taken for the base's.
    let other = tmp.path().join("other.iso");
    let mut job = Remaster::new(&base, &overlay, &other).unwrap();
    job.inspected = Some(Arc::new(inspect_base(&x, &base_iso("isolinux")).unwrap()));
    let report = job.run().unwrap();
    let patched: Vec<&str> = report.patched_configs.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(patched, ["/boot/grub2/grub.cfg"]);
}

#[test]
fn refuses_to_write_over_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.iso");
    std::fs::copy(base_iso("isolinux"), &base).unwrap();
    let hash = sha256_file(&base);
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "refuse");

    let same = remaster(&base, &overlay, &base, None);
    assert!(matches!(same, Err(IsoError::OutputIsBase { .. })), "{same:?}");
    let dotted = tmp.path().join(".").join("base.iso");
    assert!(matches!(remaster(&base, &overlay, &dotted, None), Err(IsoError::OutputIsBase { .. })));
    let hard = tmp.path().join("hardlink.iso");
    std::fs::hard_link(&base, &hard).unwrap();
    assert!(matches!(remaster(&base, &overlay, &hard, None), Err(IsoError::OutputIsBase { .. })));
    let sym = tmp.path().join("symlink.iso");
    std::os::unix::fs::symlink(&base, &sym).unwrap();
    let err = remaster(&base, &overlay, &sym, None).unwrap_err();
    assert!(err.to_string().contains("is the base ISO"), "{err}");
    assert_eq!(sha256_file(&base), hash, "base modified");
}

#[test]
fn refuses_non_iso_and_non_bootable_bases() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "refuse");

    let junk = tmp.path().join("junk.iso");
    std::fs::write(&junk, vec![0x5au8; 200_000]).unwrap();
    let err = remaster(&junk, &overlay, &tmp.path().join("o1.iso"), None).unwrap_err();
    assert!(matches!(err, IsoError::NotAnIso { .. }), "{err}");
    assert!(err.to_string().contains("junk.iso"));

    let missing = remaster(&tmp.path().join("nope.iso"), &overlay, &tmp.path().join("o2.iso"), None).unwrap_err();
    assert!(missing.to_string().contains("nope.iso"), "{missing}");

    // A valid ISO 9660 image without El Torito.
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("hello.txt"), "hello\n").unwrap();
    let plain = tmp.path().join("plain.iso");
    let st = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "PLAIN", "-o"])
        .arg(&plain)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    let err = remaster(&plain, &overlay, &tmp.path().join("o3.iso"), None).unwrap_err();
    assert!(matches!(err, IsoError::NotBootable { .. }), "{err}");
    assert!(err.to_string().contains("no BIOS El Torito") && err.to_string().contains("no UEFI El Torito"), "{err}");
    assert!(!tmp.path().join("o3.iso").exists());
}

#[test]
fn unknown_layout_lists_what_was_found() {
    // Bootable (isolinux El Torito) but its config loads no initrd: nothing to
    // add the overlay to, so the error must say what the ISO has.
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("isolinux")).unwrap();
    std::fs::copy("/usr/lib/ISOLINUX/isolinux.bin", tree.join("isolinux/isolinux.bin")).unwrap();
    std::fs::write(tree.join("isolinux/isolinux.cfg"), "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n").unwrap();
    let iso = tmp.path().join("odd.iso");
    let st = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "ODD", "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat"])
        .args(["-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "odd");
    let err = remaster(&iso, &overlay, &tmp.path().join("out.iso"), None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, IsoError::UnsupportedLayout { .. }), "{msg}");
    assert!(msg.contains("BIOS El Torito /isolinux/isolinux.bin (isolinux)"), "{msg}");
    assert!(msg.contains("no UEFI El Torito") && msg.contains("no boot configs"), "{msg}");
}

#[test]
fn missing_xorriso_and_bad_overlay_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "x");
    let mut job = Remaster::new(base_iso("isolinux"), &overlay, tmp.path().join("o.iso")).unwrap();
    job.xorriso = Xorriso::at("/nonexistent/xorriso");
    let err = job.run().unwrap_err();
    assert!(matches!(err, IsoError::ToolMissing { .. }) && err.to_string().contains("/nonexistent/xorriso"), "{err}");

    // An initramfs overlay the kernel would drop is refused before xorriso runs.
    std::fs::write(overlay.join("boot/edgeiso.img"), b"not a cpio").unwrap();
    let err = Remaster::new(base_iso("isolinux"), &overlay, tmp.path().join("o.iso")).unwrap().run().unwrap_err();
    assert!(matches!(err, IsoError::BadInitramfs { .. }), "{err}");
    std::fs::remove_file(overlay.join("boot/edgeiso.img")).unwrap();
    let err = Remaster::new(base_iso("isolinux"), &overlay, tmp.path().join("o.iso")).unwrap().run().unwrap_err();
    assert!(err.to_string().contains("/boot/edgeiso.img"), "{err}");
}

/// `kernel_args` (the spec's liveKernelArgs with liveLoad) end every kernel
/// entry of every layout, once: a second remaster adds nothing. A bad
/// argument is refused before xorriso runs.
#[test]
fn kernel_args_end_every_boot_entry_of_every_layout() {
    let args = vec!["rd.neednet=1".to_string(), "ip=dhcp".to_string()];
    for layout in common::LAYOUTS {
        let tmp = tempfile::tempdir().unwrap();
        let overlay = tmp.path().join("overlay");
        make_overlay(&overlay, layout);
        let out = tmp.path().join("out.iso");
        let mut job = Remaster::new(base_iso(layout), &overlay, &out).unwrap();
        job.kernel_args = args.clone();
        let report = job.run().unwrap_or_else(|e| panic!("{layout}: {e}"));
        assert_eq!(report.kernel_args, args);
        let c = &report.patched_configs[0];
        assert_eq!((c.kernel_args_lines, c.kernel_lines, c.patched_lines), (2, 2, 2), "{layout}: {c:?}");
        assert_eq!(c.kernel_args_added, args, "{layout}");
        let local = tmp.path().join("cfg.out");
        let st = Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&out)
            .args(["-extract", &c.path])
            .arg(&local)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let text = std::fs::read_to_string(&local).unwrap();
        assert_eq!(text.matches(" rd.neednet=1 ip=dhcp\n").count(), 2, "{layout}:\n{text}");
        assert_eq!(text.matches("rd.neednet").count(), 2, "{layout}:\n{text}");

        let mut again = Remaster::new(&out, &overlay, tmp.path().join("again.iso")).unwrap();
        again.kernel_args = args.clone();
        let report = again.run().unwrap();
        let c = &report.patched_configs[0];
        assert_eq!((c.kernel_args_lines, c.patched_lines), (0, 0), "{layout}: patched twice");
        assert!(c.kernel_args_added.is_empty());
    }
    let tmp = tempfile::tempdir().unwrap();
    make_overlay(&overlay_dir(tmp.path()), "isolinux");
    let mut job = Remaster::new(base_iso("isolinux"), overlay_dir(tmp.path()), tmp.path().join("o.iso")).unwrap();
    job.kernel_args = vec!["ip=dhcp; reboot".into()];
    let err = job.run().unwrap_err();
    assert!(matches!(err, IsoError::BadKernelArg { .. }), "{err}");
    assert!(err.to_string().contains("\"ip=dhcp; reboot\" contains whitespace"), "{err}");
    assert!(!tmp.path().join("o.iso").exists());
}

/// A trusted-boot (UKI) base, laid out as Kairos/AuroraBoot `build-uki` ISOs
/// are: systemd-boot in the EFI image, entries that start signed `.efi`
/// unified kernel images (initrd inside). It cannot take the initrd overlay:
/// refused, saying why and what works instead, nothing written.
#[test]
fn uki_trusted_boot_bases_are_refused_with_what_works_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let overlay = tmp.path().join("overlay");
    make_overlay(&overlay, "uki");
    let entry = "title Kairos\nefi /EFI/kairos/kairos.efi\ncmdline install-mode\n";
    let pe = "MZ\u{0}PE\u{0}\u{0}.osrel .cmdline .linux .initrd (not a real UKI)";
    for (case, files, efi) in [
        (
            "efi-image",
            vec![],
            vec![
                ("/EFI/BOOT/BOOTX64.EFI", "MZ systemd-boot"),
                ("/EFI/kairos/kairos.efi", pe),
                ("/loader/loader.conf", "default kairos.conf\ntimeout 5\n"),
                ("/loader/entries/kairos.conf", entry),
            ],
        ),
        ("iso-tree", vec![("/loader/entries/kairos.conf", entry), ("/EFI/kairos/kairos.efi", pe)], vec![]),
    ] {
        let d = tmp.path().join(case);
        std::fs::create_dir_all(&d).unwrap();
        let iso = fixture_iso(&d, &files, &efi);
        let out = tmp.path().join(format!("out-{case}.iso"));
        let err = remaster(&iso, &overlay, &out, None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IsoError::UnpatchableBootConfig { line: 2, .. }), "{case}: {msg}");
        assert!(msg.contains("loader/entries/kairos.conf"), "{case}: {msg}");
        assert!(msg.contains("unified kernel image") && msg.contains("site-iso"), "{case}: {msg}");
        assert!(msg.contains("without UKI"), "{case}: {msg}");
        assert!(!out.exists(), "{case}");
    }
    assert!(hidden_entries(tmp.path()).is_empty());
}
