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
//! go on to the root afterwards. Boot times go to stderr and
//! $EDGEISO_TEST_CACHE/boot-logs/times.txt: a figure, not a pass mark (these
//! shared TCG machines vary by 2x from day to day; speed is measured by
//! scripts, docs/benchmarks.md). Each boot must pass within 5 minutes.
//!
//! Needs scripts/install-test-deps.sh (xorriso, QEMU, OVMF, grub, busybox,
//! docker-registry) and a static agent: $EDGEISO_TEST_AGENT, or built once
//! with scripts/build-agent-static.sh.

mod common;
mod iso_common;

use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// One `edgeiso boot-test` run: `registry` is where the images must arrive
/// (as seen from this host), `forward` an optional `HOST:GUEST` port.
struct Boot<'a> {
    iso: &'a Path,
    firmware: &'a str,
    media: &'a str,
    registry: String,
    forward: Option<String>,
    bundle: &'a Path,
    marker: &'a str,
    label: &'a str,
}

/// Run the boot test; it must pass within its 5-minute timeout. Returns the seconds it
/// took and the console log. `registry_log` explains a failure.
fn boot_test(b: Boot, registry_log: &dyn Fn() -> String) -> (f64, String) {
    let _guard = boot_lock();
    let log = b.iso.with_extension(format!("{}-{}.log", b.firmware, b.media));
    let mut args = vec!["boot-test", p(b.iso), "--firmware", b.firmware, "--media", b.media, "--timeout", "5m"];
    args.extend(["--registry", &b.registry, "--expect-bundle", p(b.bundle), "--marker", b.marker]);
    args.extend(["--serial-log", p(&log)]);
    if let Some(f) = &b.forward {
        args.extend(["--forward", f]);
    }
    let started = Instant::now();
    let run = edgeiso(&args, &[]);
    let secs = started.elapsed().as_secs_f64();
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        run.out.status.success(),
        "boot-test {} failed ({}):\n{}\nregistry log:\n{}",
        b.label,
        run.code(),
        run.stderr(),
        registry_log()
    );
    assert!(run.stderr().contains("boot-test: PASS"), "{}", run.stderr());
    let line = format!("e2e {} {} {}: boot-test {secs:.1}s", b.label, b.firmware, b.media);
    eprintln!("{line}");
    record_time(&line);
    (secs, console)
}

/// What every test starts from: the static agent, a base ISO of `layout`, a
/// temp dir, and a source registry holding the image corpus.
struct Fixture {
    layout: String,
    agent: PathBuf,
    base: PathBuf,
    dir: tempfile::TempDir,
    source: Registry,
    corpus: Vec<images::TestImage>,
}

impl Fixture {
    fn new(layout: &str) -> Fixture {
        let (agent, base) = (static_agent(), base_iso(layout));
        let source = Registry::start();
        let corpus = images::corpus();
        images::push_all(&source, &corpus);
        Fixture { layout: layout.to_string(), agent, base, dir: tempfile::tempdir().unwrap(), source, corpus }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A live-load boot of `iso` into `target`, expecting `marker`.
    fn live_boot(
        &self,
        iso: &Path,
        firmware: &str,
        media: &str,
        target: &Registry,
        bundle: &Path,
        marker: &str,
    ) -> (f64, String) {
        let label = &self.layout;
        let boot = Boot { iso, firmware, media, registry: target.url(), forward: None, bundle, marker, label };
        boot_test(boot, &|| target.log_tail())
    }
}

#[test]
fn grub_mkrescue_site_iso_loads_bundle_bios_cd() {
    let fx = Fixture::new("grub-mkrescue");
    let (agent, base, dir) = (&fx.agent, &fx.base, &fx.dir);
    let target = Registry::start();
    let spec = write_site(dir.path(), &fx.source, &target);
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
            p(base),
            "--output",
            p(&iso),
            "--bundle",
            p(&bundle),
            "--agent",
            p(agent),
        ],
        &[("SOURCE_DATE_EPOCH", &epoch)],
    )
    .ok();

    // Nothing there before the boot: the images must come from the guest.
    assert!(target.catalog().is_empty());
    fx.live_boot(&iso, "bios", "cd", &target, &bundle, LOADED_MARKER);
    assert_arrived_identical(&fx.source, &target, &fx.corpus);
}

#[test]
fn auroraboot_site_iso_from_build_loads_bundle_uefi_usb() {
    let fx = Fixture::new("auroraboot");
    let dir = &fx.dir;
    let target = Registry::start();
    let spec = write_site(dir.path(), &fx.source, &target);
    let iso = dir.path().join("build/palette-edge-installer.iso");
    let (run, work) = build_site_iso(dir.path(), &spec, &fx.base, &fx.agent, &iso);
    assert!(run.stderr().contains("[5/5] checksum"), "{}", run.stderr());
    let sum = std::fs::read_to_string(dir.path().join("build/palette-edge-installer.iso.sha256")).unwrap();
    assert!(sum.ends_with("  palette-edge-installer.iso\n"), "{sum}");
    assert_eq!(sum.split_whitespace().next().unwrap(), iso_common::sha256_file(&iso));

    let bundle = work.join("bundle/content-e2e.tar");
    assert!(bundle.is_file(), "build's bundle is kept in --work-dir");
    assert!(target.catalog().is_empty());
    fx.live_boot(&iso, "uefi", "usb", &target, &bundle, LOADED_MARKER);
    assert_arrived_identical(&fx.source, &target, &fx.corpus);
}

#[test]
fn kairos_like_dracut_site_iso_loads_bundle_and_boots_on_uefi_usb() {
    let fx = Fixture::new("kairos-dracut");
    let target = Registry::start();
    let spec = write_site(fx.path(), &fx.source, &target);
    let iso = fx.path().join("site.iso");
    let (_, work) = build_site_iso(fx.path(), &spec, &fx.base, &fx.agent, &iso);
    let bundle = work.join("bundle/content-e2e.tar");
    assert!(target.catalog().is_empty());
    // The squashfs root prints this after switch_root: dracut ran the hook
    // at pre-pivot, the images arrived (boot-test checks the registry), and
    // the boot went on into the root.
    let (_, log) = fx.live_boot(&iso, "uefi", "usb", &target, &bundle, "EDGEISO-BASE: root reached");
    let loaded = log.find(LOADED_MARKER).unwrap_or_else(|| panic!("no {LOADED_MARKER:?} in the console log"));
    let root = log.find("EDGEISO-BASE: root reached").unwrap();
    assert!(loaded < root, "the hook must finish before the switch to the root");
    assert!(log.contains("dracut-pre-pivot"), "dracut's own pre-pivot service ran the hook");
    assert_arrived_identical(&fx.source, &target, &fx.corpus);
}

#[test]
fn kairos_like_node_loads_its_own_registry_read_through_a_forwarded_port() {
    // What a real Kairos site does after installing: the node's Harbor
    // listens on NodePort 30003 and the agent's unit loads the bundle into
    // it; the boot test reads that registry through a forwarded port. The
    // kairos-dracut base's root plays the node (a registry on 30003, then the
    // staged agent, as the unit would); liveLoad is off, so the initramfs
    // only stages the agent.
    let fx = Fixture::new("kairos-dracut");
    let spec = write_site_for(fx.path(), &fx.source, "http://127.0.0.1:30003", false);
    let iso = fx.path().join("node.iso");
    let (_, work) = build_site_iso(fx.path(), &spec, &fx.base, &fx.agent, &iso);
    let bundle = work.join("bundle/content-e2e.tar");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let boot = Boot {
        iso: &iso,
        firmware: "bios",
        media: "cd",
        registry: format!("http://127.0.0.1:{port}"),
        forward: Some(format!("{port}:30003")),
        bundle: &bundle,
        marker: "EDGEISO-BASE: node agent exit 0",
        label: "kairos-dracut node (forwarded 30003)",
    };
    let (_, console) = boot_test(boot, &|| "the registry runs in the guest; see the console log".into());
    assert!(console.contains("EDGEISO-AGENT: staged: /run/edgeiso/bin/edgeiso-agent"), "{console}");
    assert!(!console.contains("EDGEISO-AGENT: loading"), "liveLoad is off: {console}");
}

/// One golden, two sites (issue 14): a golden built for a Harbor that does
/// not exist, personalised by copy for two sites each with its own
/// registry; each site's live load goes into its own registry, never the
/// golden's: BIOS from CD on the grub-mkrescue base, UEFI from USB on the
/// Kairos-like dracut base (whose root then lists the site's cloud-configs
/// in /oem, where Kairos reads them).
#[test]
fn a_personalised_golden_loads_into_the_sites_registry_bios_cd_and_uefi_usb() {
    for (layout, firmware, media) in [("grub-mkrescue", "bios", "cd"), ("kairos-dracut", "uefi", "usb")] {
        let fx = Fixture::new(layout);
        // Port 9 (discard): nothing answers there.
        let spec = write_site_for(fx.path(), &fx.source, "http://10.0.2.2:9", true);
        let golden = fx.path().join("golden.iso");
        let (_, work) = build_site_iso(fx.path(), &spec, &fx.base, &fx.agent, &golden);
        let bundle = work.join("bundle/content-e2e.tar");
        let target = Registry::start();
        let site = fx.path().join("store-7.yaml");
        std::fs::write(&site, format!("site:\n  name: store-7\nharbor:\n  url: http://10.0.2.2:{}\n", target.port()))
            .unwrap();
        let iso = fx.path().join("store-7.iso");
        edgeiso(&["personalize", p(&golden), "--site", p(&site), "--output", p(&iso)], &[]).ok();
        assert!(target.catalog().is_empty());
        let marker = if layout == "kairos-dracut" { "EDGEISO-BASE: root reached" } else { LOADED_MARKER };
        let (_, log) = fx.live_boot(&iso, firmware, media, &target, &bundle, marker);
        assert!(log.contains("the site area holds a personalised site"), "{layout}: the hook saw the area");
        assert!(log.contains(&format!("into http://10.0.2.2:{}", target.port())), "{layout}: the site's registry");
        assert!(!log.contains("10.0.2.2:9"), "{layout}: never the golden's registry");
        if layout == "kairos-dracut" {
            for f in ["98_edgeiso-reset.yaml", "99_edgeiso-site.yaml"] {
                assert!(log.contains(&format!("EDGEISO-BASE: oem: {f}")), "{layout}: {f} in the live root's /oem");
            }
        }
        assert_arrived_identical(&fx.source, &target, &fx.corpus);
    }
}

#[test]
fn a_thin_site_iso_fetches_every_layer_from_the_source_at_first_boot_bios_cd() {
    let fx = Fixture::new("grub-mkrescue");
    let target = Registry::start();
    // The guest reaches this host's registries at 10.0.2.2: the images are
    // named so in the bundle and the spec, and the source serves them there.
    let source_host = format!("10.0.2.2:{}", fx.source.port());
    let refs: Vec<String> = fx.corpus.iter().map(|i| format!("{source_host}/{}:{}", i.repository, i.tag)).collect();
    let entries: Vec<edgeiso_testkit::bundles::Entry> =
        fx.corpus.iter().zip(&refs).map(|(i, r)| edgeiso_testkit::bundles::Entry::workload(i, r)).collect();
    let thin = edgeiso_testkit::bundles::write_thin_bundle(fx.path(), "e2e", &entries);
    let images: String = refs.iter().map(|r| format!("  - {r}\n")).collect();
    let spec = common::write_spec(
        fx.path(),
        &format!(
            "name: e2e\nimages:\n{images}registries:\n  - host: {source_host}\n    insecure: true\n\
             harbor:\n  url: http://10.0.2.2:{}\nagent:\n  liveLoad: true\n",
            target.port()
        ),
    );
    let iso = fx.path().join("site.iso");
    let epoch = E2E_EPOCH.to_string();
    let args = ["iso", "--spec", p(&spec), "--base", p(&fx.base), "--output", p(&iso), "--bundle", p(&thin)];
    edgeiso(&[&args[..], &["--agent", p(&fx.agent)]].concat(), &[("SOURCE_DATE_EPOCH", &epoch)]).ok();

    assert!(target.catalog().is_empty());
    fx.live_boot(&iso, "bios", "cd", &target, &thin, LOADED_MARKER);
    let prefix = format!("spectro-images/{}", source_host.replace(':', "_"));
    for img in &fx.corpus {
        let repo = format!("{prefix}/{}", img.repository);
        let (_, top) = target.get_manifest(&repo, &img.tag).unwrap_or_else(|| panic!("{repo}:{} missing", img.tag));
        assert_eq!(top, img.top_bytes(), "{repo}");
        for (d, bytes) in &img.blobs {
            let got = target.get_blob(&repo, d.as_str()).unwrap_or_else(|| panic!("{repo}: blob {d} missing"));
            assert!(got == *bytes, "{repo}: blob {d} differs");
        }
    }
}
