#!/usr/bin/env python3
"""Write a few small, reproducible sample images into an OCI image layout.

Used by scripts/demo.sh so the demo needs no internet. Each image gets a real
gzip'd tar layer (shared base + its own app layer) and a correct config.
"""
import gzip, hashlib, io, json, os, sys, tarfile


def blob(out, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}


def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, body in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(body), 0, 0o644
            t.addfile(ti, io.BytesIO(body))
    diff = raw.getvalue()
    return gzip.compress(diff, mtime=0), "sha256:" + hashlib.sha256(diff).hexdigest()


def main(out):
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    base = layer([("etc/os-release", b"NAME=edgeiso-demo\n"), ("bin/hello", b"#!/bin/sh\necho hello\n" * 2000)])
    entries = []
    for name in ("demo/web:1.0", "demo/api:2.3", "demo/worker:0.9"):
        app = layer([(f"app/{name.split('/')[1].split(':')[0]}.txt", (name + "\n").encode() * 50000)])
        layers = [dict(blob(out, gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip") for gz, _ in (base, app)]
        cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/hello"]},
               "rootfs": {"type": "layers", "diff_ids": [base[1], app[1]]}}
        c = dict(blob(out, json.dumps(cfg, sort_keys=True).encode()), mediaType="application/vnd.oci.image.config.v1+json")
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": layers}
        m = blob(out, json.dumps(man, sort_keys=True).encode())
        entries.append(dict(m, mediaType=man["mediaType"], annotations={"org.opencontainers.image.ref.name": name}))
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)


if __name__ == "__main__":
    main(sys.argv[1])
