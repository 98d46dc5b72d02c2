//! End to end: a site ISO built from a small base ISO with `agent.liveLoad`
//! and `harbor.url` pointing at a registry on this host (10.0.2.2 in the
//! guest), booted in QEMU (TCG) by `edgeiso boot-test`; every image must
//! arrive byte-identical. BIOS from CD on a grub-mkrescue base (`edgeiso iso
//! --bundle`), UEFI (OVMF) from a USB disk on an AuroraBoot-like base (`edgeiso
//! build`, which makes its own bundle). And the closest to a Kairos ISO this
//! machine can make: the AuroraBoot layout booting a real dracut initramfs
//! (Debian's dracut 059: systemd in the initrd, dmsquash-live mounting the
//! medium and a squashfs root, systemd-networkd), where dracut itself must
//! find the overlay's hook through its own `/lib/dracut/hooks`, bring up the
//! network from the kernel arguments `edgeiso iso` adds for a live load, and
//! go on to the root afterwards. Each boot must take under 2 minutes; times
//! go to stderr and $EDGEISO_TEST_CACHE/boot-logs/times.txt.
//!
//! Needs scripts/install-test-deps.sh (xorriso, QEMU, OVMF, grub, busybox,
//! docker-registry) and a static agent: $EDGEISO_TEST_AGENT, or built once
//! with scripts/build-agent-static.sh.

mod common;
mod iso_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{edgeiso, p};
use edgeiso_testkit::{images, Registry};
use iso_common::{base_iso, boot_lock, record_time, static_agent, E2E_EPOCH};

/// A liveLoad site with the four corpus images (the multi-platform one kept whole).
fn write_site(dir: &Path, source: &Registry, target: &Registry) -> std::path::PathBuf {
    write_site_for(dir, source, &format!("http://10.0.2.2:{}", target.port()), true)
}

/// The corpus site with `harbor.url` and `agent.liveLoad` as given.
fn write_site_for(dir: &Path, source: &Registry, harbor_url: &str, live_load: bool) -> std::path::PathBuf {
    let host = source.host();
    common::write_spec(
        dir,
        &format!(
            "name: e2e\n\
             images:\n  - {host}/team/app:1.0\n  - {host}/team/web:2.1\n  - ref: {host}/team/multi:1.0\n    platforms: all\n  - {host}/team/raw:1.0\n\
             registries:\n  - host: {host}\n    insecure: true\n\
             harbor:\n  url: {harbor_url}\n\
             agent:\n  liveLoad: {live_load}\n",
        ),
    )
}

/// Every corpus image is in `target` under its Harbor path, byte-identical:
/// every manifest (index children too) and every blob.
fn assert_arrived_identical(source: &Registry, target: &Registry, corpus: &[images::TestImage]) {
    let prefix = format!("spectro-images/{}", source.host().replace(':', "_"));
    for img in corpus {
        let repo = format!("{prefix}/{}", img.repository);
        let (_, top) = target
            .get_manifest(&repo, &img.tag)
            .unwrap_or_else(|| panic!("{repo}:{} missing from the target registry", img.tag));
        assert_eq!(top, img.top_bytes(), "{repo}:{}: manifest bytes differ", img.tag);
        for (_, m) in &img.manifests {
            let d = edgeiso_bundle::Digest::of(m);
            let (_, got) = target.get_manifest(&repo, d.as_str()).unwrap_or_else(|| panic!("{repo}@{d} missing"));
            assert_eq!(&got, m, "{repo}@{d} differs");
        }
        for (d, bytes) in &img.blobs {
            let got = target.get_blob(&repo, d.as_str()).unwrap_or_else(|| panic!("{repo}: blob {d} missing"));
            assert!(got == *bytes, "{repo}: blob {d} differs");
        }
    }
}

/// What the hook prints once the four corpus images are in.
const LOADED_MARKER: &str = "EDGEISO-AGENT: loaded 4 images";

/// `edgeiso build` of `spec` on `base` into `iso`, with a work folder (kept,
/// returned) and a cache in `dir`.
fn build_site_iso(dir: &Path, spec: &Path, base: &Path, agent: &Path, iso: &Path) -> (common::Run, PathBuf) {
    let work = dir.join("work");
    let cache = dir.join("cache");
    let epoch = E2E_EPOCH.to_string();
    let args = ["build", "--spec", p(spec), "--base", p(base), "--output", p(iso), "--agent", p(agent)];
    let run = edgeiso(
        &[&args[..], &["--work-dir", p(&work), "--cache", p(&cache)]].concat(),
        &[("SOURCE_DATE_EPOCH", &epoch)],
    )
    .ok();
    (run, work)
}

fn boot_test(
    iso: &Path,
    firmware: &str,
    media: &str,
    target: &Registry,
    bundle: &Path,
    marker: &str,
    label: &str,
) -> f64 {
    let _guard = boot_lock();
    let log = iso.with_extension(format!("{firmware}-{media}.log"));
    let started = Instant::now();
    let run = edgeiso(
        &[
            "boot-test",
            p(iso),
            "--firmware",
            firmware,
            "--media",
            media,
            "--timeout",
            "2m",
            "--registry",
            &target.url(),
            "--expect-bundle",
            p(bundle),
            "--marker",
            marker,
            "--serial-log",
            p(&log),
        ],
        &[],
    );
    let secs = started.elapsed().as_secs_f64();
    assert!(
        run.out.status.success(),
        "boot-test {label} failed ({}):\n{}\nregistry log:\n{}",
        run.code(),
        run.stderr(),
        target.log_tail()
    );
    assert!(run.stderr().contains("boot-test: PASS"), "{}", run.stderr());
    let line = format!("e2e {label} {firmware} {media}: boot-test {secs:.1}s");
    eprintln!("{line}");
    record_time(&line);
    assert!(started.elapsed() < Duration::from_secs(120), "{line}: over 2 minutes");
    secs
}

#[test]
fn grub_mkrescue_site_iso_loads_bundle_bios_cd() {
    let agent = static_agent();
    let base = base_iso("grub-mkrescue");
    let dir = tempfile::tempdir().unwrap();
    let source = Registry::start();
    let corpus = images::corpus();
    images::push_all(&source, &corpus);
    let target = Registry::start();
    let spec = write_site(dir.path(), &source, &target);
    let cache = dir.path().join("cache");

    let out = dir.path().join("bundle");
    edgeiso(&["bundle", "create", "--spec", p(&spec), "--output", p(&out), "--cache", p(&cache)], &[]).ok();
    let bundle = out.join("content-e2e.tar");
    let iso = dir.path().join("site.iso");
    let epoch = E2E_EPOCH.to_string();
    edgeiso(
        &[
            "iso",
            "--spec",
            p(&spec),
            "--base",
            p(&base),
            "--output",
            p(&iso),
            "--bundle",
            p(&bundle),
            "--agent",
            p(&agent),
        ],
        &[("SOURCE_DATE_EPOCH", &epoch)],
    )
    .ok();

    // Nothing there before the boot: the images must come from the guest.
    assert!(target.catalog().is_empty());
    boot_test(&iso, "bios", "cd", &target, &bundle, LOADED_MARKER, "grub-mkrescue");
    assert_arrived_identical(&source, &target, &corpus);
}

#[test]
fn auroraboot_site_iso_from_build_loads_bundle_uefi_usb() {
    let agent = static_agent();
    let base = base_iso("auroraboot");
    let dir = tempfile::tempdir().unwrap();
    let source = Registry::start();
    let corpus = images::corpus();
    images::push_all(&source, &corpus);
    let target = Registry::start();
    let spec = write_site(dir.path(), &source, &target);
    let iso = dir.path().join("build/palette-edge-installer.iso");
    let (run, work) = build_site_iso(dir.path(), &spec, &base, &agent, &iso);
    assert!(run.stderr().contains("[5/5] checksum"), "{}", run.stderr());
    let sum = std::fs::read_to_string(dir.path().join("build/palette-edge-installer.iso.sha256")).unwrap();
    assert!(sum.ends_with("  palette-edge-installer.iso\n"), "{sum}");
    assert_eq!(sum.split_whitespace().next().unwrap(), iso_common::sha256_file(&iso));

    let bundle = work.join("bundle/content-e2e.tar");
    assert!(bundle.is_file(), "build's bundle is kept in --work-dir");
    assert!(target.catalog().is_empty());
    boot_test(&iso, "uefi", "usb", &target, &bundle, LOADED_MARKER, "auroraboot");
    assert_arrived_identical(&source, &target, &corpus);
}

#[test]
fn kairos_like_dracut_site_iso_loads_bundle_and_boots_on_uefi_usb() {
    let agent = static_agent();
    let base = base_iso("kairos-dracut");
    let dir = tempfile::tempdir().unwrap();
    let source = Registry::start();
    let corpus = images::corpus();
    images::push_all(&source, &corpus);
    let target = Registry::start();
    let spec = write_site(dir.path(), &source, &target);
    let iso = dir.path().join("site.iso");
    let (_, work) = build_site_iso(dir.path(), &spec, &base, &agent, &iso);
    let bundle = work.join("bundle/content-e2e.tar");
    assert!(target.catalog().is_empty());
    // The squashfs root prints this after switch_root: dracut ran the hook
    // at pre-pivot, the images arrived (boot-test checks the registry), and
    // the boot went on into the root.
    let secs = boot_test(&iso, "uefi", "usb", &target, &bundle, "EDGEISO-BASE: root reached", "kairos-dracut");
    let log = std::fs::read_to_string(iso.with_extension("uefi-usb.log")).unwrap();
    let loaded = log.find(LOADED_MARKER).unwrap_or_else(|| panic!("no {LOADED_MARKER:?} in the console log"));
    let root = log.find("EDGEISO-BASE: root reached").unwrap();
    assert!(loaded < root, "the hook must finish before the switch to the root");
    assert!(log.contains("dracut-pre-pivot"), "dracut's own pre-pivot service ran the hook");
    assert!(secs < 120.0);
    assert_arrived_identical(&source, &target, &corpus);
}

#[test]
fn kairos_like_node_loads_its_own_registry_read_through_a_forwarded_port() {
    // What a real Kairos site does after installing: the node's Harbor
    // listens on NodePort 30003 and the agent's unit loads the bundle into
    // it; the boot test reads that registry through a forwarded port. The
    // kairos-dracut base's root plays the node (a registry on 30003, then the
    // staged agent, as the unit would); liveLoad is off, so the initramfs
    // only stages the agent.
    let agent = static_agent();
    let base = base_iso("kairos-dracut");
    let dir = tempfile::tempdir().unwrap();
    let source = Registry::start();
    let corpus = images::corpus();
    images::push_all(&source, &corpus);
    let spec = write_site_for(dir.path(), &source, "http://127.0.0.1:30003", false);
    let iso = dir.path().join("node.iso");
    let (_, work) = build_site_iso(dir.path(), &spec, &base, &agent, &iso);
    let bundle = work.join("bundle/content-e2e.tar");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _guard = boot_lock();
    let log = iso.with_extension("bios-cd.log");
    let started = Instant::now();
    let run = edgeiso(
        &[
            "boot-test",
            p(&iso),
            "--firmware",
            "bios",
            "--media",
            "cd",
            "--timeout",
            "2m",
            "--forward",
            &format!("{port}:30003"),
            "--registry",
            &format!("http://127.0.0.1:{port}"),
            "--expect-bundle",
            p(&bundle),
            "--marker",
            "EDGEISO-BASE: node agent exit 0",
            "--serial-log",
            p(&log),
        ],
        &[],
    );
    let secs = started.elapsed().as_secs_f64();
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(run.out.status.success(), "boot-test failed ({}):\n{}\nconsole:\n{console}", run.code(), run.stderr());
    assert!(run.stderr().contains("boot-test: PASS"), "{}", run.stderr());
    assert!(console.contains("EDGEISO-AGENT: staged: /run/edgeiso/bin/edgeiso-agent"), "{console}");
    assert!(!console.contains("EDGEISO-AGENT: loading"), "liveLoad is off: {console}");
    let line = format!("e2e kairos-dracut node bios cd, forwarded 30003: boot-test {secs:.1}s");
    eprintln!("{line}");
    record_time(&line);
    assert!(secs < 120.0, "{line}: over 2 minutes");
}
