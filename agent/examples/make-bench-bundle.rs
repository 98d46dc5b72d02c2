//! Bundles for the agent benchmark (scripts/bench-agent.sh), built with the
//! bundle crate's own writer:
//!
//!   make-bench-bundle from-layout LAYOUT_DIR OUT_DIR NAME
//!       every image of an OCI layout (named by org.opencontainers.image.ref.name)
//!   make-bench-bundle big-layer OUT_DIR NAME MIB
//!       one image with one incompressible layer of MIB MiB (streamed to disk,
//!       never held in memory)

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use edgeiso_bundle::writer::{BlobSource, BundlePlan, WriteOptions};
use edgeiso_bundle::{Digest, ImageRecord, ImageRef, Role};
use rand::{RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let written = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["from-layout", layout, out, name] => from_layout(Path::new(layout), Path::new(out), name),
        ["big-layer", out, name, mib] => big_layer(Path::new(out), name, mib.parse().expect("MiB")),
        _ => {
            eprintln!("usage: make-bench-bundle from-layout LAYOUT OUT NAME | big-layer OUT NAME MIB");
            std::process::exit(2);
        }
    };
    for p in written {
        println!("{}", p.display());
    }
}

fn plan(name: &str, images: Vec<ImageRecord>, blobs: BTreeMap<Digest, (u64, BlobSource)>) -> BundlePlan {
    BundlePlan {
        name: name.into(),
        created: SystemTime::UNIX_EPOCH,
        tool: "make-bench-bundle".into(),
        images,
        blobs,
        partial: None,
    }
}

fn record(reference: &str, digest: Digest, media_type: &str, size: u64) -> ImageRecord {
    ImageRecord {
        reference: ImageRef::parse(reference).expect("reference"),
        digest,
        media_type: media_type.into(),
        platforms: vec!["linux/amd64".into()],
        role: Role::Workload,
        size,
        source_digest: None,
        index_digest: None,
    }
}

fn from_layout(layout: &Path, out: &Path, name: &str) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut blobs = BTreeMap::new();
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let d: Digest = format!("sha256:{}", e.file_name().to_string_lossy()).parse().unwrap();
        blobs.insert(d, (e.metadata().unwrap().len(), BlobSource::File(e.path())));
    }
    let total: u64 = blobs.values().map(|b| b.0).sum();
    let images = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let reference = m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap();
            record(reference, m["digest"].as_str().unwrap().parse().unwrap(), m["mediaType"].as_str().unwrap(), total)
        })
        .collect();
    plan(name, images, blobs).write(out, &WriteOptions::default()).unwrap().paths
}

fn big_layer(out: &Path, name: &str, mib: u64) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    let layer_path = out.join(format!("{name}.layer"));
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&layer_path).unwrap());
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill_bytes(&mut buf);
        h.update(&buf);
        w.write_all(&buf).unwrap();
    }
    w.into_inner().unwrap().sync_all().unwrap();
    let layer = Digest::from_hasher(h);
    let size = mib << 20;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": size}]
    }))
    .unwrap();
    let md = Digest::of(&manifest);
    let mut blobs = BTreeMap::new();
    blobs.insert(layer, (size, BlobSource::File(layer_path.clone())));
    blobs.insert(Digest::of(&config), (config.len() as u64, BlobSource::Bytes(config)));
    blobs.insert(md.clone(), (manifest.len() as u64, BlobSource::Bytes(manifest)));
    let images = vec![record("docker.io/bench/big:1.0", md, "application/vnd.oci.image.manifest.v1+json", size)];
    let paths = plan(name, images, blobs).write(out, &WriteOptions::default()).unwrap().paths;
    std::fs::remove_file(layer_path).unwrap();
    paths
}
