//! `edgeiso iso` / `overlay` / `site-iso` at the command line: refusals with
//! clear messages and exit codes, the overlay tree and its initramfs, the
//! cidata ISO's content, and byte-identical rebuilds with SOURCE_DATE_EPOCH.
//! No VM boots here (see iso_e2e.rs); a stand-in static ELF plays the agent.

mod common;
mod iso_common;

use edgeiso_testkit::files::{hidden_entries, mode_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{edgeiso, p, write_spec};
use edgeiso_testkit::{images, Registry};
use iso_common::{base_iso, sha256_file, E2E_EPOCH};

/// A 64-byte x86-64 ELF header with no program headers: "static" to the
/// builder's check, and small (the real agent is tested in iso_e2e.rs).
use edgeiso_testkit::files::fake_static_agent;

fn site(dir: &Path, source: &Registry, live_load: bool) -> PathBuf {
    site_with_agent(dir, source, &format!("liveLoad: {live_load}"))
}

/// A site whose `agent:` section is `agent` (one flow mapping body).
fn site_with_agent(dir: &Path, source: &Registry, agent: &str) -> PathBuf {
    let host = source.host();
    write_spec(
        dir,
        &format!(
            "name: cli\nimages:\n  - {host}/team/app:1.0\nbootstrapImages:\n  - {host}/team/raw:1.0\nregistries:\n  - host: {host}\n    insecure: true\n\
             harbor:\n  url: http://10.0.2.2:5000\nagent: {{{agent}}}\n"
        ),
    )
}

fn source_registry() -> Registry {
    let r = Registry::start();
    let corpus = images::corpus();
    images::push_all(&r, &corpus);
    r
}

fn xorriso(args: &[&str]) -> String {
    let out = Command::new("xorriso").args(args).output().expect("xorriso");
    assert!(out.status.success(), "xorriso {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn iso_files(iso: &Path) -> String {
    xorriso(&["-indev", p(iso), "-find", "/", "-exec", "lsdl"])
}

fn extract(iso: &Path, path: &str, dest: &Path) -> Vec<u8> {
    xorriso(&["-osirrox", "on", "-indev", p(iso), "-extract", path, p(dest)]);
    std::fs::read(dest).unwrap()
}

#[test]
fn overlay_takes_a_thin_bundle_and_gives_the_agent_the_source_registry_with_its_password_0600() {
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_static_agent(dir.path());
    let image = images::image_with_layer("team/app", "1.0", 4096, 5);
    let entries = [edgeiso_testkit::bundles::Entry::workload(&image, "127.0.0.1:9/team/app:1.0")];
    let thin = edgeiso_testkit::bundles::write_thin_bundle(dir.path(), "cli", &entries);
    std::fs::write(dir.path().join("source.pw"), "source-secret\n").unwrap();
    let spec = write_spec(
        dir.path(),
        "name: cli\nimages:\n  - 127.0.0.1:9/team/app:1.0\nregistries:\n  - host: 127.0.0.1:9\n    insecure: true\n\
         \x20   username: puller\n    passwordFile: source.pw\nharbor:\n  url: http://10.0.2.2:5000\n",
    );
    let out = dir.path().join("overlay");
    let run =
        edgeiso(&["overlay", "--spec", p(&spec), "--output", p(&out), "--agent", p(&agent), "--bundle", p(&thin)], &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let content: Vec<String> = std::fs::read_dir(out.join("opt/spectrocloud/content"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(content.iter().any(|f| f.starts_with("content-cli.tar")), "the thin bundle is on the ISO: {content:?}");
    let node = std::fs::read_to_string(out.join("edgeiso/site/agent.yaml")).unwrap();
    let node = edgeiso_contract::AgentConfig::from_yaml(&node).unwrap();
    let password = "/usr/local/edgeiso/site/sources/0.password";
    assert_eq!(
        node.sources,
        [edgeiso_contract::agent_config::SourceRegistry {
            host: "127.0.0.1:9".into(),
            insecure: true,
            ca_file: None,
            username: Some("puller".into()),
            password_file: Some(password.into()),
        }]
    );
    let written = out.join("edgeiso/site/sources/0.password");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "source-secret\n");
    assert_eq!(mode_of(&written), 0o600);
    assert!(!run.stderr().contains("source-secret") && !run.stdout().contains("source-secret"));
}

/// A delta of a whole one-image bundle, written by hand (`bundle create
/// --base`'s shape): the image's manifests, none of its config or layers.
fn write_delta_bundle(dir: &Path, image: &edgeiso_testkit::TestImage, source: &str) -> PathBuf {
    use edgeiso_bundle::{BaseBundle, Bundle, Partial, Role};
    let whole_dir = dir.join("whole");
    std::fs::create_dir_all(&whole_dir).unwrap();
    let entries = [edgeiso_testkit::bundles::Entry::workload(image, source)];
    let whole = Bundle::open(&edgeiso_testkit::bundles::write_bundle(&whole_dir, "cli", &entries, None)[0]).unwrap();
    let mut plan = whole.subset(Role::Workload, "cli-next").unwrap().unwrap();
    let base = BaseBundle { name: whole.meta.name.clone(), bundle_json_sha256: whole.bundle_json_sha256() };
    plan.leave_out(Partial::Delta { base }, |d, _| image.blobs.contains_key(d));
    plan.write(dir, &Default::default()).unwrap().paths.remove(0)
}

#[test]
fn overlay_and_iso_refuse_a_delta_bundle_saying_why_and_what_works_instead() {
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_static_agent(dir.path());
    let image = images::image_with_layer("team/app", "1.0", 4096, 5);
    let delta = write_delta_bundle(dir.path(), &image, "127.0.0.1:9/team/app:1.0");
    let spec = write_spec(
        dir.path(),
        "name: cli\nimages:\n  - 127.0.0.1:9/team/app:1.0\nregistries:\n  - host: 127.0.0.1:9\n    insecure: true\n\
         harbor:\n  url: http://10.0.2.2:5000\n",
    );
    let out = dir.path().join("overlay");
    let run = edgeiso(
        &["overlay", "--spec", p(&spec), "--output", p(&out), "--agent", p(&agent), "--bundle", p(&delta)],
        &[],
    );
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let e = run.stderr();
    for want in ["content-cli-next.tar", "delta", "no base loaded", "whole bundle", "--thin"] {
        assert!(e.contains(want), "{want} in {e}");
    }
    assert!(!out.exists(), "no overlay tree");
    let base = base_iso("isolinux");
    let iso = dir.path().join("site.iso");
    let run = edgeiso(
        &[
            "iso",
            "--spec",
            p(&spec),
            "--base",
            p(&base),
            "--output",
            p(&iso),
            "--agent",
            p(&agent),
            "--bundle",
            p(&delta),
        ],
        &[],
    );
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("content-cli-next.tar") && run.stderr().contains("delta"), "{}", run.stderr());
    assert!(!iso.exists(), "no ISO");
}

#[test]
fn overlay_refuses_a_thin_bundle_without_the_bootstrap_images_nodes_import_at_boot() {
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_static_agent(dir.path());
    let app = images::image_with_layer("team/app", "1.0", 4096, 5);
    let raw = images::image_with_layer("team/raw", "1.0", 4096, 6);
    let entries = [
        edgeiso_testkit::bundles::Entry::workload(&app, "127.0.0.1:9/team/app:1.0"),
        edgeiso_testkit::bundles::Entry {
            image: &raw,
            source: "127.0.0.1:9/team/raw:1.0".into(),
            role: edgeiso_bundle::Role::Bootstrap,
        },
    ];
    let thin = edgeiso_testkit::bundles::write_thin_bundle(dir.path(), "cli", &entries);
    let spec = write_spec(
        dir.path(),
        "name: cli\nimages:\n  - 127.0.0.1:9/team/app:1.0\nbootstrapImages:\n  - 127.0.0.1:9/team/raw:1.0\n\
         registries:\n  - host: 127.0.0.1:9\n    insecure: true\nharbor:\n  url: http://10.0.2.2:5000\n",
    );
    let out = dir.path().join("overlay");
    let run =
        edgeiso(&["overlay", "--spec", p(&spec), "--output", p(&out), "--agent", p(&agent), "--bundle", p(&thin)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let e = run.stderr();
    assert!(e.contains("content-cli.tar") && e.contains("127.0.0.1:9/team/raw:1.0") && e.contains("bootstrap"), "{e}");
    assert!(!e.contains("team/app"), "only the image nothing could fetch: {e}");
    assert!(!out.exists(), "no overlay tree");
}

#[test]
fn output_on_the_base_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "name: s\nimages:\n  - 127.0.0.1:1/a:1\n");
    let base = dir.path().join("base.iso");
    std::fs::copy(base_iso("isolinux"), &base).unwrap();
    let before = sha256_file(&base);
    let link = dir.path().join("link.iso");
    std::os::unix::fs::symlink(&base, &link).unwrap();
    for out in [base.clone(), dir.path().join("./base.iso"), link] {
        let run = edgeiso(&["iso", "--spec", p(&spec), "--base", p(&base), "--output", p(&out)], &[]);
        assert_eq!(run.code(), 3, "{}", run.stderr());
        assert!(run.stderr().contains("must write a separate file"), "{}", run.stderr());
    }
    assert_eq!(sha256_file(&base), before, "the base was not touched");
}

#[test]
fn a_base_that_is_not_a_bootable_iso_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "name: s\nimages:\n  - 127.0.0.1:1/a:1\n");
    let junk = dir.path().join("junk.iso");
    std::fs::write(&junk, vec![7u8; 100_000]).unwrap();
    let out = dir.path().join("out.iso");
    let run = edgeiso(&["iso", "--spec", p(&spec), "--base", p(&junk), "--output", p(&out)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("is not an ISO 9660 image"), "{}", run.stderr());

    // An ISO without El Torito: not bootable.
    let plain = dir.path().join("plain.iso");
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    xorriso(&["-as", "mkisofs", "-o", p(&plain), "-V", "PLAIN", p(&dir.path().join("f.txt"))]);
    let run = edgeiso(&["iso", "--spec", p(&spec), "--base", p(&plain), "--output", p(&out)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("is not bootable"), "{}", run.stderr());

    let missing = dir.path().join("nope.iso");
    let run = edgeiso(&["iso", "--spec", p(&spec), "--base", p(&missing), "--output", p(&out)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("no such file"), "{}", run.stderr());
    assert!(!out.exists());
}

#[test]
fn missing_xorriso_and_dynamic_agent_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "name: s\nimages:\n  - 127.0.0.1:1/a:1\n");
    let base = base_iso("isolinux");
    let out = dir.path().join("out.iso");
    let run = edgeiso(
        &["iso", "--spec", p(&spec), "--base", p(&base), "--output", p(&out)],
        &[("EDGEISO_XORRISO", "/nonexistent/xorriso")],
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("/nonexistent/xorriso not found"), "{}", run.stderr());
    assert!(run.stderr().contains("xorriso"), "{}", run.stderr());

    let run = edgeiso(&["iso", "--spec", p(&spec), "--base", p(&base), "--output", p(&out), "--agent", "/bin/ls"], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("dynamically linked"), "{}", run.stderr());
    assert!(run.stderr().contains("build-agent-static.sh"), "{}", run.stderr());
    assert!(!out.exists());
}

#[test]
fn overlay_tree_and_initramfs_follow_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_registry();
    let agent = fake_static_agent(dir.path());
    for live in [true, false] {
        let spec = site(dir.path(), &source, live);
        let out = dir.path().join(format!("overlay-{live}"));
        let cache = dir.path().join("cache");
        edgeiso(
            &[
                "overlay",
                "--spec",
                p(&spec),
                "--output",
                p(&out),
                "--agent",
                p(&agent),
                "--cache",
                p(&cache),
                "--part-size",
                "100000",
            ],
            &[],
        )
        .ok();
        let files = common::tree(&out);
        for f in [
            "config.yaml",
            "opt/spectrocloud/content/content-cli.tar.part000",
            "opt/spectrocloud/content/content-cli.tar.part001",
            "edgeiso/bin/edgeiso-agent",
            "edgeiso/site/agent.yaml",
            "edgeiso/site/systemd/edgeiso-agent.service",
            "edgeiso/overlay.json",
            "boot/edgeiso.img",
        ] {
            assert!(files.contains(&f.to_string()), "{f} missing from {files:?}");
        }
        assert!(!files.iter().any(|f| f.ends_with(".edgeiso-render")));
        let img = std::fs::read(out.join("boot/edgeiso.img")).unwrap();
        assert_eq!(&img[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd by default");
        let report = edgeiso_overlay::initramfs::check_initramfs(&img).unwrap();
        let names: Vec<&str> = report.entries.iter().map(|e| e.name.as_str()).collect();
        for n in [
            "edgeiso",
            "edgeiso/bin",
            "lib/dracut/hooks/pre-pivot/90-edgeiso.sh",
            "edgeiso/bin/edgeiso-agent",
            "edgeiso/agent-live.yaml",
        ] {
            assert!(names.contains(&n), "{n} not in {names:?}");
        }
        // No folder entries in the base initrd's tree: they would replace its
        // symlinks (lib -> usr/lib, dracut-ng's hooks) and erase its hooks.
        for n in ["lib", "lib/dracut", "lib/dracut/hooks", "lib/dracut/hooks/pre-pivot", "usr", "usr/lib"] {
            assert!(!names.contains(&n), "{n} in {names:?}");
        }
        assert!(report.entries.iter().all(|e| e.uid == 0 && e.gid == 0 && e.mode & 0o170000 != 0));
        // The hook: live load only when asked, against harbor.url.
        let hook = decompressed_member(&img, "lib/dracut/hooks/pre-pivot/90-edgeiso.sh");
        let runs =
            "/run/edgeiso/bin/edgeiso-agent load --config /run/edgeiso/agent-live.yaml --deadline 10m --outcome-file";
        assert_eq!(hook.contains(runs), live, "{hook}");
        assert!(!hook.contains("\nexit"), "a sourced hook must not exit: {hook}");
        let config = decompressed_member(&img, "edgeiso/agent-live.yaml");
        // A live load is bounded, by its command line (above) and its configuration.
        assert!(config.contains("deadline: 10m") && config.contains("waitTimeout: 3m"), "{config}");
        assert!(config.contains("registry: http://10.0.2.2:5000"), "{config}");
        assert!(config.contains("/run/initramfs/live/opt/spectrocloud/content"), "{config}");
        assert!(std::fs::read_to_string(out.join("config.yaml")).unwrap().starts_with("#cloud-config"));
        // Bootstrap images travel as one archive of their own for k3s/RKE2.
        let boot = out.join("edgeiso/images/content-cli-bootstrap.tar");
        let b = edgeiso_bundle::Bundle::open(&boot).unwrap();
        let refs: Vec<String> = b.meta.images.iter().map(|i| i.reference.to_string()).collect();
        assert_eq!(refs, vec![format!("{}/team/raw:1.0", source.host())]);
        assert!(b.meta.images.iter().all(|i| i.role == edgeiso_bundle::Role::Bootstrap));
        edgeiso(&["bundle", "verify", p(&boot)], &[]).ok();
        // Parts rejoin into a valid bundle.
        edgeiso(&["bundle", "verify", p(&out.join("opt/spectrocloud/content/content-cli.tar.part000"))], &[]).ok();
    }
    // A folder that is not an overlay is never replaced.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep"), "x").unwrap();
    let spec = site(dir.path(), &source, true);
    let run = edgeiso(&["overlay", "--spec", p(&spec), "--output", p(&other), "--agent", p(&agent)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(other.join("keep").is_file());
}

#[test]
fn a_trusted_site_carries_its_key_and_the_bundles_signature_and_refuses_an_unsigned_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_registry();
    let agent = fake_static_agent(dir.path());
    let (key, _) = edgeiso_testkit::signing::keypair(dir.path(), "site");
    let host = source.host();
    let spec = write_spec(
        dir.path(),
        &format!(
            "name: cli\nimages:\n  - {host}/team/app:1.0\nregistries:\n  - host: {host}\n    insecure: true\n\
             harbor:\n  url: http://10.0.2.2:5000\nagent: {{liveLoad: true}}\ntrust:\n  publicKey: site.pub\n"
        ),
    );
    let cache = dir.path().join("cache");
    let overlay = |out: &Path, extra: &[&str]| {
        let mut args = vec!["overlay", "--spec", p(&spec), "--output", p(out), "--agent", p(&agent)];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--cache", p(&cache), "--part-size", "20000"]);
        edgeiso(&args, &[])
    };

    // Built on the way, unsigned: the site's agent would refuse it, so no ISO tree.
    let refused = dir.path().join("refused");
    let run = overlay(&refused, &[]);
    assert_eq!(run.code(), 6, "{}", run.stderr());
    assert!(run.stderr().contains("unsigned") && run.stderr().contains("trust.publicKey"), "{}", run.stderr());
    assert!(!refused.join("edgeiso/overlay.json").exists());

    // Built on the way and signed with --sign-key: laid with its signature.
    let built = dir.path().join("built");
    overlay(&built, &["--sign-key", p(&key)]).ok();
    assert!(built.join("opt/spectrocloud/content/content-cli.tar.sig").is_file());
    // --sign-key does not sign a given bundle.
    let run = overlay(&dir.path().join("both"), &["--sign-key", p(&key), "--bundle", p(&built)]);
    assert_eq!(run.code(), 3, "{}", run.stderr());

    // A signed bundle (one tar, re-split onto the ISO): its signature and
    // the key travel, and the live load's configuration names the key.
    let bundles = dir.path().join("bundles");
    edgeiso(
        &[
            "bundle",
            "create",
            "--spec",
            p(&spec),
            "--output",
            p(&bundles),
            "--cache",
            p(&dir.path().join("cache")),
            "--sign-key",
            p(&key),
        ],
        &[],
    )
    .ok();
    let out = dir.path().join("overlay");
    overlay(&out, &["--bundle", p(&bundles.join("content-cli.tar"))]).ok();
    let files = common::tree(&out);
    for f in ["opt/spectrocloud/content/content-cli.tar.sig", "edgeiso/site/trust/bundle-signing.pub"] {
        assert!(files.contains(&f.to_string()), "{f} missing from {files:?}");
    }
    assert!(files.contains(&"opt/spectrocloud/content/content-cli.tar.part001".to_string()), "re-split: {files:?}");
    let img = std::fs::read(out.join("boot/edgeiso.img")).unwrap();
    let config = decompressed_member(&img, "edgeiso/agent-live.yaml");
    // The live load reads the site files the hook laid out (a personalised site's over the medium's).
    assert!(config.contains("trust: /run/edgeiso/site/trust/bundle-signing.pub"), "{config}");
    let node = std::fs::read_to_string(out.join("edgeiso/site/agent.yaml")).unwrap();
    assert!(node.contains("trust: /usr/local/edgeiso/site/trust/bundle-signing.pub"), "{node}");
    // What the node will check, checked here: the parts on the ISO and the
    // signature beside them, against the key on the ISO.
    let on_iso = out.join("opt/spectrocloud/content/content-cli.tar.part000");
    edgeiso(&["bundle", "verify", p(&on_iso), "--key", p(&out.join("edgeiso/site/trust/bundle-signing.pub"))], &[])
        .ok();
}

/// One member's bytes, from the decompressed cpio (newc, by hand).
fn decompressed_member(img: &[u8], name: &str) -> String {
    let cpio = zstd::decode_all(img).unwrap();
    let mut off = 0;
    while off + 110 <= cpio.len() {
        let field = |i: usize| {
            usize::from_str_radix(std::str::from_utf8(&cpio[off + 6 + i * 8..off + 14 + i * 8]).unwrap(), 16).unwrap()
        };
        let (size, namesize) = (field(6), field(11));
        let n = std::str::from_utf8(&cpio[off + 110..off + 110 + namesize - 1]).unwrap().to_string();
        let data = (off + 110 + namesize + 3) & !3;
        if n == name {
            return String::from_utf8(cpio[data..data + size].to_vec()).unwrap();
        }
        off = (data + size + 3) & !3;
    }
    panic!("{name} not in the initramfs");
}

#[test]
fn site_iso_is_a_cidata_volume_with_joliet_and_rock_ridge() {
    let dir = tempfile::tempdir().unwrap();
    let ud = dir.path().join("ud.yaml");
    std::fs::write(&ud, "#cloud-config\nstylus:\n  site:\n    name: store-042\n").unwrap();
    let out = dir.path().join("out/site.iso");
    let epoch = E2E_EPOCH.to_string();
    // Leftovers of a killed run (nobody holds their locks) go; a live run's stay.
    std::fs::create_dir_all(dir.path().join("out/.edgeiso-cidata.dead")).unwrap();
    std::fs::write(dir.path().join("out/.site.iso.4242-dead-0.partial"), "half").unwrap();
    let live = dir.path().join("out/.site.iso.4343-live-0.partial");
    std::fs::write(&live, "being written").unwrap();
    let holder = std::fs::File::open(&live).unwrap();
    holder.lock().unwrap();
    edgeiso(&["site-iso", "--user-data", p(&ud), "--output", p(&out)], &[("SOURCE_DATE_EPOCH", &epoch)]).ok();
    assert_eq!(hidden_entries(&dir.path().join("out")), [".site.iso.4343-live-0.partial"]);
    drop(holder);
    // It carries the site's user-data: private to its owner.
    assert_eq!(mode_of(&out), 0o600);
    let listing = iso_files(&out);
    assert!(listing.contains("'/user-data'") && listing.contains("'/meta-data'"), "{listing}");
    assert_eq!(extract(&out, "/user-data", &dir.path().join("ud.out")), std::fs::read(&ud).unwrap());
    let meta = String::from_utf8(extract(&out, "/meta-data", &dir.path().join("md.out"))).unwrap();
    assert!(meta.starts_with("instance-id: "), "{meta}");
    let pvd = xorriso(&["-indev", p(&out), "-pvd_info"]);
    assert!(pvd.contains("Volume Id    : cidata"), "{pvd}");
    let toc = xorriso(&["-indev", p(&out), "-toc"]);
    assert!(toc.contains("cidata"), "{toc}");
    // Rock Ridge: the RRIP extension reference (ER) record; Joliet: a
    // supplementary volume descriptor (type 2, UCS-2 escape %/E) after the primary one.
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.windows(10).any(|w| w == b"RRIP_1991A"), "no Rock Ridge ER record");
    let joliet = (16..32).any(|s| {
        let vd = &bytes[s * 2048..s * 2048 + 2048];
        vd[0] == 2 && &vd[1..6] == b"CD001" && (&vd[88..91] == b"%/E" || &vd[88..91] == b"%/@" || &vd[88..91] == b"%/C")
    });
    assert!(joliet, "no Joliet supplementary volume descriptor");
    // Reproducible.
    let again = dir.path().join("again.iso");
    edgeiso(&["site-iso", "--user-data", p(&ud), "--output", p(&again)], &[("SOURCE_DATE_EPOCH", &epoch)]).ok();
    assert_eq!(sha256_file(&out), sha256_file(&again));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "stylus: {}\n").unwrap();
    let run = edgeiso(&["site-iso", "--user-data", p(&bad), "--output", p(&dir.path().join("bad.iso"))], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("#cloud-config"));
}

#[test]
fn iso_is_byte_identical_with_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_registry();
    let agent = fake_static_agent(dir.path());
    let spec = site(dir.path(), &source, true);
    let base = base_iso("grub-mkrescue");
    let epoch = E2E_EPOCH.to_string();
    let mut sums = Vec::new();
    // `build`'s checksum file replaces what was there (here a hard link to a
    // file that must not change) instead of writing into it.
    let keep = dir.path().join("keep.txt");
    std::fs::write(&keep, "not a checksum\n").unwrap();
    std::fs::hard_link(&keep, dir.path().join("site-1.iso.sha256")).unwrap();
    // A work folder of a killed run is swept; a live run's is kept.
    std::fs::create_dir_all(dir.path().join(".edgeiso-work.dead/overlay")).unwrap();
    std::fs::create_dir_all(dir.path().join(".edgeiso-work.live")).unwrap();
    let holder = std::fs::File::open(dir.path().join(".edgeiso-work.live")).unwrap();
    holder.lock().unwrap();
    // Today's runs lock a `.lock` file inside (read-write, which NFS needs),
    // and create the folder under a name no sweep takes until it is locked.
    std::fs::create_dir_all(dir.path().join(".edgeiso-work.live2")).unwrap();
    let holder2 = std::fs::File::create(dir.path().join(".edgeiso-work.live2/.lock")).unwrap();
    holder2.lock().unwrap();
    std::fs::create_dir_all(dir.path().join(".edgeiso-work.dead2")).unwrap();
    std::fs::write(dir.path().join(".edgeiso-work.dead2/.lock"), "").unwrap();
    std::fs::create_dir_all(dir.path().join(".edgeiso-creating.4444-fresh-0")).unwrap();
    for (i, cache) in ["cache-a", "cache-b"].iter().enumerate() {
        let out = dir.path().join(format!("site-{i}.iso"));
        let run = edgeiso(
            &[
                ["iso", "build"][i],
                "--spec",
                p(&spec),
                "--base",
                p(&base),
                "--output",
                p(&out),
                "--agent",
                p(&agent),
                "--cache",
                p(&dir.path().join(cache)),
            ],
            &[("SOURCE_DATE_EPOCH", &epoch)],
        )
        .ok();
        assert!(run.stderr().contains("/boot/grub/grub.cfg"), "{}", run.stderr());
        sums.push(sha256_file(&out));
        assert_eq!(mode_of(&out), 0o600, "the ISO carries the site's secrets");
        // Different file times on disk must not matter.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(sums[0], sums[1], "two runs with SOURCE_DATE_EPOCH differ");
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "not a checksum\n", "the checksum was written in place");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("site-1.iso.sha256")).unwrap(),
        format!("{}  site-1.iso\n", sums[1])
    );
    assert_eq!(
        hidden_entries(dir.path()),
        [".edgeiso-creating.4444-fresh-0", ".edgeiso-work.live", ".edgeiso-work.live2"]
    );
    drop(holder);
    drop(holder2);
    // The result carries the overlay and every boot entry loads it.
    let iso = dir.path().join("site-0.iso");
    let files = iso_files(&iso);
    for f in [
        "/config.yaml",
        "/boot/edgeiso.img",
        "/edgeiso/bin/edgeiso-agent",
        "/opt/spectrocloud/content/content-cli.tar.part000",
    ] {
        assert!(files.contains(&format!("'{f}'")), "{f} missing:\n{files}");
    }
    let grub = String::from_utf8(extract(&iso, "/boot/grub/grub.cfg", &dir.path().join("grub.cfg"))).unwrap();
    assert_eq!(grub.matches("initrd /boot/initrd.img /boot/edgeiso.img").count(), 2, "{grub}");
    assert!(grub.contains("debug"), "kernel arguments kept: {grub}");
    // liveLoad: the default liveKernelArgs end every kernel command.
    assert_eq!(grub.matches(" rd.neednet=1 ip=dhcp\n").count(), 2, "{grub}");
    assert!(grub.contains(" debug rd.neednet=1 ip=dhcp\n"), "{grub}");
}

/// The boot entries get `agent.liveKernelArgs` (default `rd.neednet=1
/// ip=dhcp`) only with the live load: without it the live initramfs has no
/// network. Shown in the summary and the `--json` event.
#[test]
fn live_load_adds_its_kernel_arguments_to_every_boot_entry() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_registry();
    let agent = fake_static_agent(dir.path());
    let cache = dir.path().join("cache");
    let iso = |spec: &Path, base: &str, out: &Path, json: bool| {
        let base = base_iso(base);
        let mut args = vec!["iso", "--spec", p(spec), "--base", p(&base), "--output", p(out)];
        args.extend(["--agent", p(&agent), "--cache", p(&cache)]);
        if json {
            args.insert(0, "--json");
        }
        edgeiso(&args, &[]).ok()
    };

    // No live load: nothing added, nothing said.
    let spec = site(dir.path(), &source, false);
    let out = dir.path().join("plain.iso");
    let run = iso(&spec, "grub-mkrescue", &out, false);
    assert!(!run.stderr().contains("kernel arguments"), "{}", run.stderr());
    let grub = String::from_utf8(extract(&out, "/boot/grub/grub.cfg", &dir.path().join("plain.cfg"))).unwrap();
    assert_eq!(grub.matches("/boot/edgeiso.img").count(), 2, "{grub}");
    assert!(!grub.contains("rd.neednet") && !grub.contains("ip="), "{grub}");

    // Live load, isolinux, arguments from the spec: on every APPEND line.
    let spec =
        site_with_agent(dir.path(), &source, "liveLoad: true, liveKernelArgs: [rd.neednet=1, rd.net.timeout.dhcp=30]");
    let out = dir.path().join("live.iso");
    let run = iso(&spec, "isolinux", &out, true);
    let event = &run.events("iso")[0];
    assert_eq!(event["kernelArgs"], serde_json::json!(["rd.neednet=1", "rd.net.timeout.dhcp=30"]), "{event}");
    assert_eq!(
        event["kernelArgsAdded"],
        serde_json::json!([{ "path": "/isolinux/isolinux.cfg", "args": ["rd.neednet=1", "rd.net.timeout.dhcp=30"],
                             "entries": 2, "kernelEntries": 2 }]),
        "{event}"
    );
    let cfg = String::from_utf8(extract(&out, "/isolinux/isolinux.cfg", &dir.path().join("isolinux.cfg"))).unwrap();
    let appends: Vec<&str> =
        cfg.lines().filter(|l| l.trim_start().to_ascii_uppercase().starts_with("APPEND")).collect();
    assert_eq!(appends.len(), 2, "{cfg}");
    for a in appends {
        assert!(a.ends_with(" rd.neednet=1 rd.net.timeout.dhcp=30"), "{cfg}");
    }
    assert_eq!(cfg.matches("/boot/initrd.img,/boot/edgeiso.img").count(), 2, "{cfg}");

    // Refused before any work when liveLoad is off.
    let spec = site_with_agent(dir.path(), &source, "liveLoad: false, liveKernelArgs: [ip=dhcp]");
    let out = dir.path().join("refused.iso");
    let run = edgeiso(&["iso", "--spec", p(&spec), "--base", p(&base_iso("isolinux")), "--output", p(&out)], &[]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("site.yaml:11:"), "{}", run.stderr());
    assert!(run.stderr().contains("agent.liveKernelArgs is set but agent.liveLoad is not true"), "{}", run.stderr());
    assert!(!out.exists());
}
