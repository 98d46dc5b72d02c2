//! Updates by courier stick (issue 13 item 3): the script the udev rule's
//! unit runs (`edgeiso-courier.sh`, as render ships it), against a real file
//! system on a loop device and a real registry: it mounts the stick
//! read-only, loads its bundles with the node's configuration, writes a
//! receipt back (JSON: result, exit code, what the journal holds, with
//! digests) and unmounts; a read-only stick gets no receipt. The stick is
//! ext4 labelled EDGEISO-UPDATE: these machines' kernel has no vfat (it
//! cannot mount FAT at all), and the script does not care which file system
//! `mount` finds. And the udev rule's match, by `udevadm test` on loop
//! devices holding FAT file systems (blkid reads their labels without a
//! mount): EDGEISO-UPD starts the unit, another label does not.
//!
//! Needs root, losetup, mkfs.ext4, mkfs.vfat and udevadm (CI has them);
//! fails, never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeiso_testkit::bundles::{write_bundle, Entry};
use edgeiso_testkit::Registry;

fn sh(cmd: &str, args: &[&str]) -> Output {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// A stick image (ext4, labelled EDGEISO-UPDATE) holding `bundle` where
/// CanvOS puts bundles, made without a mount (`mkfs.ext4 -d`).
fn stick(dir: &Path, bundle: &Path) -> PathBuf {
    let tree = dir.join("stick-tree");
    let content = tree.join("opt/spectrocloud/content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::copy(bundle, content.join(bundle.file_name().unwrap())).unwrap();
    let img = dir.join("stick.img");
    std::fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
    sh("mkfs.ext4", &["-q", "-L", "EDGEISO-UPDATE", "-d", tree.to_str().unwrap(), img.to_str().unwrap()]);
    img
}

/// The receipt the script left on the stick, read with debugfs (no mount).
fn receipt_on(img: &Path) -> serde_json::Value {
    let ls = String::from_utf8(sh("debugfs", &["-R", "ls -l /", img.to_str().unwrap()]).stdout).unwrap();
    let name = ls
        .split_whitespace()
        .find(|w| w.starts_with("edgeiso-receipt-") && w.ends_with(".json"))
        .unwrap_or_else(|| panic!("no receipt on the stick: {ls}"))
        .to_owned();
    let text =
        String::from_utf8(sh("debugfs", &["-R", &format!("cat /{name}"), img.to_str().unwrap()]).stdout).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A loop device over `img`, detached on drop.
struct Loop(String);
impl Loop {
    fn attach(img: &Path, read_only: bool) -> Loop {
        let mut args = vec!["-f", "--show"];
        if read_only {
            args.push("-r");
        }
        args.push(img.to_str().unwrap());
        Loop(String::from_utf8(sh("losetup", &args).stdout).unwrap().trim().to_owned())
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn run_script(dir: &Path, dev: &str, config: &Path) -> Output {
    let script = dir.join("courier.sh");
    std::fs::write(&script, edgeiso_contract::unit::COURIER_SCRIPT).unwrap();
    Command::new("sh")
        .arg(&script)
        .arg(dev)
        .env("EDGEISO_AGENT", env!("CARGO_BIN_EXE_edgeiso-agent"))
        .env("EDGEISO_AGENT_CONFIG", config)
        .env("EDGEISO_STATE_DIR", dir.join("state"))
        .env("EDGEISO_RUN_DIR", dir.join("run"))
        .output()
        .unwrap()
}

fn mounted(dev: &str) -> bool {
    std::fs::read_to_string("/proc/mounts").unwrap().lines().any(|l| l.starts_with(&format!("{dev} ")))
}

#[test]
fn a_courier_stick_is_loaded_and_gets_a_receipt() {
    for tool in ["losetup", "mkfs.ext4", "debugfs", "mount"] {
        assert!(edgeiso_testkit::have(tool), "{tool} missing: run scripts/install-test-deps.sh");
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let reg = Registry::start();
    let image = edgeiso_testkit::image_with_layer("team/app", "2.0", 300_000, 11);
    let bundles = dir.join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    let written =
        write_bundle(&bundles, "update", &[Entry::workload(&image, "registry.example.com/team/app:2.0")], None);
    let img = stick(dir, &written[0]);
    let config = dir.join("agent.yaml");
    std::fs::write(&config, format!("registry: {}\nstateDir: {}\n", reg.url(), dir.join("state").display())).unwrap();

    // Writable: loaded, receipt written, unmounted.
    let dev = Loop::attach(&img, false);
    let o = run_script(dir, &dev.0, &config);
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("edgeiso-courier: loaded") && out.contains("receipt"), "{out}");
    let repo = "spectro-images/registry.example.com/team/app";
    let (_, manifest) = reg.get_manifest(repo, "2.0").expect("the stick's image is in the registry");
    assert_eq!(manifest, image.top_bytes());
    assert!(!mounted(&dev.0), "the stick is unmounted afterwards");
    drop(dev);
    let r = receipt_on(&img);
    assert_eq!(r["result"], "loaded");
    assert_eq!(r["exitCode"], 0);
    let loaded = r["journal"][0]["loaded"].as_array().unwrap();
    assert!(
        loaded
            .iter()
            .any(|i| i["digest"] == image.digest.as_str() && i["target"].as_str().unwrap().contains("team/app")),
        "{r}"
    );

    // Read-only: loaded again (one HEAD), no receipt, nothing written.
    let before = std::fs::read(&img).unwrap();
    let dev = Loop::attach(&img, true);
    let o = run_script(dir, &dev.0, &config);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("read-only: no receipt"));
    assert!(!mounted(&dev.0));
    drop(dev);
    assert!(std::fs::read(&img).unwrap() == before, "a read-only stick is not written");

    // A stick that is not a file system: the script says so, exit 1.
    let junk = dir.join("junk.img");
    std::fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    let dev = Loop::attach(&junk, true);
    let o = run_script(dir, &dev.0, &config);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot mount"));
}

#[test]
fn the_udev_rule_starts_the_unit_for_a_courier_stick_and_no_other() {
    for tool in ["losetup", "mkfs.vfat", "udevadm"] {
        assert!(edgeiso_testkit::have(tool), "{tool} missing: run scripts/install-test-deps.sh");
    }
    let d = tempfile::tempdir().unwrap();
    // The rule, installed for this test only (udevadm test reads the rules folders).
    let rule = PathBuf::from(format!("/etc/udev/rules.d/90-edgeiso-courier-test-{}.rules", std::process::id()));
    std::fs::write(&rule, edgeiso_contract::unit::COURIER_RULE).unwrap();
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rule = Remove(rule);
    let wants = |label: &str| {
        let img = d.path().join(format!("{label}.img"));
        std::fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
        sh("mkfs.vfat", &["-n", label, img.to_str().unwrap()]);
        let dev = Loop::attach(&img, true);
        let name = dev.0.trim_start_matches("/dev/").to_owned();
        let o = Command::new("udevadm")
            .args(["test", "--action=add", &format!("/sys/class/block/{name}")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        let _ = std::fs::remove_file(format!("/dev/disk/by-label/{label}"));
        (name.clone(), text.lines().any(|l| l == format!("SYSTEMD_WANTS=edgeiso-courier@{name}.service")), text)
    };
    let (name, started, text) = wants(edgeiso_contract::unit::COURIER_LABEL);
    assert!(started, "{name}: {text}");
    let (name, started, text) = wants("OTHERSTICK");
    assert!(!started, "{name}: {text}");
}

/// A stick pulled out mid-load, emulated by cutting the bundle short under
/// the running agent (its reads past the cut fail, as a vanished device's
/// do; this kernel has no device-mapper to fail a real device): the run ends
/// with exit 6, every image it journaled as loaded is whole in the registry,
/// and the next run, with the stick back, loads the rest without sending
/// what was finished again.
#[test]
fn a_stick_pulled_out_mid_load_is_resumed_next_time_and_nothing_half_pushed_counts_as_done() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let reg = Registry::start();
    let imgs: Vec<_> = (0..12)
        .map(|i| edgeiso_testkit::image_with_layer(&format!("team/app{i}"), "2.0", 4 << 20, 40 + i as u64))
        .collect();
    let entries: Vec<Entry> = imgs.iter().map(|i| Entry::workload(i, &i.reference())).collect();
    let bundle = write_bundle(dir, "update", &entries, None).remove(0);
    let whole = std::fs::read(&bundle).unwrap();
    let state = dir.join("state");
    let journal = state.join("journal").join(format!("{}.jsonl", reg.host().replace(':', "_")));
    let load = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_edgeiso-agent"));
        c.args(["load", "--json", "--concurrency", "1", "--registry", &reg.url(), "--state-dir"])
            .arg(&state)
            .arg("--bundle")
            .arg(&bundle)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let images_journaled = || {
        std::fs::read_to_string(&journal).unwrap_or_default().lines().filter(|l| l.contains("\"t\":\"image\"")).count()
    };
    let child = load(&[]).spawn().unwrap();
    let t = std::time::Instant::now();
    while images_journaled() < 3 && t.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // Pulled: everything past the first third of the bundle is gone.
    std::fs::OpenOptions::new().write(true).open(&bundle).unwrap().set_len(whole.len() as u64 / 3).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    let done_first = images_journaled();
    assert!((3..12).contains(&done_first), "{done_first} images journaled before the pull");
    // Everything journaled as loaded is there, whole.
    for line in std::fs::read_to_string(&journal).unwrap().lines().filter(|l| l.contains("\"t\":\"image\"")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (repo, tag) = v["target"].as_str().unwrap().rsplit_once(':').unwrap();
        let img = imgs.iter().find(|i| repo.ends_with(&i.repository)).unwrap();
        let (_, m) = reg.get_manifest(repo, tag).expect("a journaled image is in the registry");
        assert_eq!(m, img.top_bytes());
        for (digest, bytes) in &img.blobs {
            assert!(reg.get_blob(repo, digest.as_str()).as_deref() == Some(&bytes[..]), "{repo}: {digest}");
        }
    }

    // The stick is back: the rest loads, the finished images are not sent again.
    std::fs::write(&bundle, &whole).unwrap();
    let out = load(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let fresh = events.iter().filter(|e| e["event"] == "image-loaded" && e["already_present"] == false).count();
    assert_eq!(fresh, 12 - done_first, "only the images the first run did not finish");
    for img in &imgs {
        let repo = format!("spectro-images/docker.io/{}", img.repository);
        assert_eq!(reg.get_manifest(&repo, "2.0").map(|m| m.1), Some(img.top_bytes().to_vec()), "{repo}");
    }
}
