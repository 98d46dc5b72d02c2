//! Thin and delta bundles (`bundle create --thin`, `--base OLD`;
//! decision 0016) against a real registry: what they hold, what `inspect`
//! and `verify` say of them, bad bases, and signing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{edgeiso, p, simple_spec};
use edgeiso_bundle::{Bundle, Digest, Partial};
use edgeiso_testkit::images::{self, image_with_layer, TestImage};
use edgeiso_testkit::signing::keypair;
use edgeiso_testkit::Registry;

fn create(spec: &Path, out: &Path, cache: &Path, extra: &[&str], epoch: &str) -> common::Run {
    let mut args = vec!["bundle", "create", "--spec", p(spec), "--output", p(out), "--cache", p(cache)];
    args.extend_from_slice(extra);
    edgeiso(&args, &[("SOURCE_DATE_EPOCH", epoch)])
}

/// A registry with two small images and a spec (`s`) of both.
fn fixture() -> (Registry, tempfile::TempDir, PathBuf, Vec<TestImage>) {
    let reg = Registry::start();
    let imgs = vec![image_with_layer("team/app", "1.0", 30_000, 1), image_with_layer("team/web", "2.1", 30_000, 2)];
    images::push_all(&reg, &imgs);
    let dir = tempfile::tempdir().unwrap();
    let spec = simple_spec(dir.path(), &reg.host(), &["team/app:1.0", "team/web:2.1"]);
    (reg, dir, spec, imgs)
}

/// The whole bundle `old/content-s.tar` of `spec` (the base of the deltas),
/// and the blob cache it filled.
fn whole(dir: &tempfile::TempDir, spec: &Path) -> (PathBuf, PathBuf) {
    let cache = dir.path().join("cache");
    let old = dir.path().join("old");
    create(spec, &old, &cache, &[], "1700000000").ok();
    (cache, old.join("content-s.tar"))
}

/// The digests of the bundle's `blobs/` members.
fn stored_blobs(tar: &Path) -> BTreeSet<Digest> {
    let b = Bundle::open(tar).unwrap();
    b.members()
        .filter_map(|(n, _)| n.strip_prefix("blobs/sha256/"))
        .map(|h| format!("sha256:{h}").parse().unwrap())
        .collect()
}

fn manifest_digests(imgs: &[&TestImage]) -> BTreeSet<Digest> {
    imgs.iter().flat_map(|i| i.manifests.iter().map(|m| Digest::of(&m.1))).collect()
}

fn blob_digests(imgs: &[&TestImage]) -> BTreeSet<Digest> {
    imgs.iter().flat_map(|i| i.blobs.keys().cloned()).collect()
}

#[test]
fn a_delta_holds_only_what_changed_and_verifies_against_its_base() {
    let (reg, dir, spec, imgs) = fixture();
    let (cache, old_tar) = whole(&dir, &spec);
    let old_bundle = Bundle::open(&old_tar).unwrap();
    assert_eq!(old_bundle.meta.format_version, 1, "a whole bundle stays version 1");
    assert!(!String::from_utf8_lossy(&old_bundle.meta_bytes).contains("partial"));

    // Unchanged spec: metadata only (manifests), not one config or layer.
    let d1 = dir.path().join("d1");
    create(&spec, &d1, &cache, &["--base", p(&old_tar)], "1700000100").ok();
    let d1_tar = d1.join("content-s.tar");
    assert_eq!(stored_blobs(&d1_tar), manifest_digests(&[&imgs[0], &imgs[1]]));
    let delta = Bundle::open(&d1_tar).unwrap();
    assert_eq!(delta.meta.format_version, 2);
    let Some(Partial::Delta { base }) = delta.partial() else { panic!("{:?}", delta.partial()) };
    assert_eq!(base.name, "s");
    assert_eq!(base.bundle_json_sha256, old_bundle.bundle_json_sha256());
    // Image records keep the whole image's size.
    assert_eq!(delta.meta.images, old_bundle.meta.images);

    // Verify: alone it lists what comes from the base; with the base, each is checked there.
    let v = edgeiso(&["--json", "bundle", "verify", p(&d1_tar)], &[]).ok();
    let ev = &v.events("verified")[0];
    assert_eq!(ev["ok"], true, "{ev}");
    assert_eq!(ev["partial"]["kind"], "delta", "{ev}");
    let expected = ev["expected"].as_array().unwrap();
    assert_eq!(expected.len(), blob_digests(&[&imgs[0], &imgs[1]]).len(), "{ev}");
    assert!(expected.iter().all(|e| e["checked"] == false), "{ev}");
    let v = edgeiso(&["--json", "bundle", "verify", p(&d1_tar), "--base", p(&old_tar)], &[]).ok();
    let ev = &v.events("verified")[0];
    assert!(ev["expected"].as_array().unwrap().iter().all(|e| e["checked"] == true), "{ev}");
    let v = edgeiso(&["bundle", "verify", p(&d1_tar), "--base", p(&old_tar)], &[]).ok();
    assert!(v.stderr().contains("OK") && v.stderr().contains("expected from elsewhere"), "{}", v.stderr());

    // Inspect says delta and names the base, in the table and in --json.
    let table = edgeiso(&["bundle", "inspect", p(&d1_tar)], &[]).ok().stdout();
    assert!(
        table.contains("partial: delta on base bundle s") && table.contains(base.bundle_json_sha256.as_str()),
        "{table}"
    );
    let whole = edgeiso(&["bundle", "inspect", p(&old_tar)], &[]).ok().stdout();
    assert!(whole.contains("whole"), "{whole}");
    let i = edgeiso(&["--json", "bundle", "inspect", p(&d1_tar)], &[]).ok();
    let ev = &i.events("inspect")[0];
    assert_eq!(ev["formatVersion"], 2);
    assert_eq!(ev["partial"]["base"]["bundleJsonSha256"], base.bundle_json_sha256.to_string(), "{ev}");
    let i = edgeiso(&["--json", "bundle", "inspect", p(&old_tar)], &[]).ok();
    assert!(i.events("inspect")[0].get("partial").is_none());

    // One image changed: exactly its new blobs (and the manifests).
    let app2 = image_with_layer("team/app", "1.0", 30_000, 3);
    images::push(&reg, &app2);
    let d2 = dir.path().join("d2");
    create(&spec, &d2, &cache, &["--base", p(&old_tar)], "1700000200").ok();
    let d2_tar = d2.join("content-s.tar");
    let new_blobs: BTreeSet<Digest> =
        blob_digests(&[&app2]).difference(&blob_digests(&[&imgs[0], &imgs[1]])).cloned().collect();
    assert!(!new_blobs.is_empty());
    let want: BTreeSet<Digest> = manifest_digests(&[&app2, &imgs[1]]).union(&new_blobs).cloned().collect();
    assert_eq!(stored_blobs(&d2_tar), want);
    edgeiso(&["bundle", "verify", p(&d2_tar), "--base", p(&old_tar)], &[]).ok();
}

#[test]
fn a_thin_bundle_holds_every_manifest_and_no_config_or_layer() {
    let (_reg, dir, spec, imgs) = fixture();
    let out = dir.path().join("thin");
    let run = create(&spec, &out, &dir.path().join("cache"), &["--thin"], "1700000000").ok();
    assert!(run.stderr().contains("partial bundle: thin"), "{}", run.stderr());
    let tar = out.join("content-s.tar");
    assert_eq!(stored_blobs(&tar), manifest_digests(&[&imgs[0], &imgs[1]]));
    let b = Bundle::open(&tar).unwrap();
    assert_eq!((b.meta.format_version, b.partial()), (2, Some(&Partial::Thin)));
    // Platforms are still recorded (read from the config, not stored).
    assert!(b.meta.images.iter().all(|i| i.platforms == ["linux/amd64"]), "{:?}", b.meta.images);

    let v = edgeiso(&["--json", "bundle", "verify", p(&tar)], &[]).ok();
    let ev = &v.events("verified")[0];
    let expected = ev["expected"].as_array().unwrap();
    assert_eq!(expected.len(), blob_digests(&[&imgs[0], &imgs[1]]).len(), "{ev}");
    assert!(expected.iter().all(|e| e["from"].as_str().unwrap().contains("source registry")), "{ev}");
    let table = edgeiso(&["bundle", "inspect", p(&tar)], &[]).ok().stdout();
    let n = blob_digests(&[&imgs[0], &imgs[1]]).len();
    assert!(
        table.contains("partial: thin") && table.contains(&format!("left out: {n} config and layer blob(s)")),
        "{table}"
    );

    // A damaged thin bundle still fails: a manifest is never left out.
    let manifest = b.meta.images[0].digest.clone();
    drop(b);
    edgeiso_testkit::signing::sh(&format!(
        "cd '{}' && mkdir x && cd x && tar -xf ../content-s.tar && rm blobs/sha256/{} && tar --format=gnu -cf ../content-s.tar bundle.json oci-layout index.json blobs",
        out.display(),
        manifest.hex()
    ));
    let v = edgeiso(&["bundle", "verify", p(&tar)], &[]);
    assert_ne!(v.code(), 0, "{}", v.stderr());
    assert!(v.stderr().contains(manifest.hex()), "{}", v.stderr());
}

#[test]
fn a_thin_bundle_keeps_its_bootstrap_images_whole() {
    let (reg, dir, _, imgs) = fixture();
    // team/web is imported at boot, before any registry runs: nothing could
    // fetch it, so the thin bundle carries it; team/app is fetched.
    let spec = common::write_spec(
        dir.path(),
        &format!(
            "name: s\nimages:\n  - {h}/team/app:1.0\nbootstrapImages:\n  - {h}/team/web:2.1\nregistries:\n  - host: {h}\n    insecure: true\n",
            h = reg.host()
        ),
    );
    let out = dir.path().join("thin");
    create(&spec, &out, &dir.path().join("cache"), &["--thin"], "1700000000").ok();
    let tar = out.join("content-s.tar");
    let mut want = manifest_digests(&[&imgs[0], &imgs[1]]);
    want.extend(blob_digests(&[&imgs[1]]));
    assert_eq!(stored_blobs(&tar), want);
    let b = Bundle::open(&tar).unwrap();
    let left: BTreeSet<Digest> = b.left_out().unwrap().into_keys().collect();
    assert_eq!(left, blob_digests(&[&imgs[0]]));
    // And the ISO path takes it: render learns where team/app comes from.
    let site = dir.path().join("site");
    let r = edgeiso(&["render", "--spec", p(&spec), "--output", p(&site), "--bundle", p(&tar)], &[]).ok();
    let agent_yaml = std::fs::read_to_string(site.join("agent.yaml")).unwrap();
    assert!(agent_yaml.contains(&format!("- host: {}", reg.host())), "{agent_yaml}\n{}", r.stderr());
}

#[test]
fn bad_bases_wrong_bases_and_thin_with_base_are_refused() {
    let (_reg, dir, spec, _imgs) = fixture();
    let (cache, old_tar) = whole(&dir, &spec);

    // Not a bundle: exit 3 naming it.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar at all").unwrap();
    let r = create(&spec, &dir.path().join("o1"), &cache, &["--base", p(&junk)], "1");
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("--base") && r.stderr().contains(p(&junk)), "{}", r.stderr());

    // Damaged (one byte of a layer flipped): exit 3 naming it and the blob.
    let damaged_dir = dir.path().join("damaged");
    std::fs::create_dir(&damaged_dir).unwrap();
    let damaged = damaged_dir.join("content-s.tar");
    std::fs::copy(&old_tar, &damaged).unwrap();
    let b = Bundle::open(&damaged).unwrap();
    let (name, loc) = b.members().filter(|(n, _)| n.starts_with("blobs/")).max_by_key(|(_, l)| l.size).unwrap();
    let name = name.to_owned();
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[(loc.offset + loc.size / 2) as usize] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let r = create(&spec, &dir.path().join("o2"), &cache, &["--base", p(&damaged)], "1");
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(
        r.stderr().contains(p(&damaged)) && r.stderr().contains("damaged") && r.stderr().contains(&name),
        "{}",
        r.stderr()
    );

    // A partial base: refused.
    let thin = dir.path().join("thin");
    create(&spec, &thin, &cache, &["--thin"], "1").ok();
    let r = create(&spec, &dir.path().join("o3"), &cache, &["--base", p(&thin.join("content-s.tar"))], "1");
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("whole bundle"), "{}", r.stderr());

    // The delta would replace its base: refused, the base untouched.
    let before = std::fs::read(&old_tar).unwrap();
    let r = create(&spec, old_tar.parent().unwrap(), &cache, &["--base", p(&old_tar)], "1");
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("replace its own base"), "{}", r.stderr());
    assert_eq!(std::fs::read(&old_tar).unwrap(), before);

    // --thin with --base: a usage error.
    let r = create(&spec, &dir.path().join("o4"), &cache, &["--thin", "--base", p(&old_tar)], "1");
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(!dir.path().join("o4/content-s.tar").exists());

    // A delta against a base that is not its own: refused naming both sums.
    let delta = dir.path().join("delta");
    create(&spec, &delta, &cache, &["--base", p(&old_tar)], "1700000100").ok();
    let other = dir.path().join("other");
    create(&spec, &other, &cache, &[], "1700000999").ok();
    let (recorded, given) = (
        Bundle::open(&old_tar).unwrap().bundle_json_sha256(),
        Bundle::open(&other.join("content-s.tar")).unwrap().bundle_json_sha256(),
    );
    assert_ne!(recorded, given);
    let r =
        edgeiso(&["bundle", "verify", p(&delta.join("content-s.tar")), "--base", p(&other.join("content-s.tar"))], &[]);
    assert_eq!(r.code(), 4, "{}", r.stderr());
    assert!(r.stderr().contains(recorded.as_str()) && r.stderr().contains(given.as_str()), "{}", r.stderr());
    // --base for a whole bundle: invalid input.
    let r = edgeiso(&["bundle", "verify", p(&old_tar), "--base", p(&old_tar)], &[]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(r.stderr().contains("not a delta"), "{}", r.stderr());
}

#[test]
fn a_delta_is_signed_and_verified_the_same_way() {
    let (_reg, dir, spec, _imgs) = fixture();
    let (cache, old_tar) = whole(&dir, &spec);
    let (key, public) = keypair(dir.path(), "k");
    let delta = dir.path().join("delta");
    create(&spec, &delta, &cache, &["--base", p(&old_tar), "--sign-key", p(&key)], "1700000100").ok();
    let tar = delta.join("content-s.tar");
    assert!(delta.join("content-s.tar.sig").is_file());
    let r = edgeiso(&["bundle", "verify", p(&tar), "--key", p(&public), "--base", p(&old_tar)], &[]).ok();
    assert!(r.stderr().contains("signature OK"), "{}", r.stderr());
    // `bundle sign` signs it as any bundle; a changed bundle.json is refused.
    edgeiso(&["bundle", "sign", p(&tar), "--key", p(&key)], &[]).ok();
    edgeiso(&["bundle", "verify", p(&tar), "--key", p(&public)], &[]).ok();
    // The tool field, same length: every checksum holds, only the signature tells.
    let mut bytes = std::fs::read(&tar).unwrap();
    let from = b"\"tool\": \"edgeiso ";
    let at = bytes.windows(from.len()).position(|w| w == from).expect("bundle.json's tool");
    bytes[at + 9] = b'E';
    std::fs::write(&tar, bytes).unwrap();
    let r = edgeiso(&["bundle", "verify", p(&tar), "--key", p(&public)], &[]);
    assert_eq!(r.code(), 6, "{}", r.stderr());
}
