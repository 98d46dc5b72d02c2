#!/usr/bin/env bash
# Benchmark `edgeiso bundle create` against skopeo (each image into one OCI
# layout, then tar), side by side on the same machine and registry, plus the
# bundle's size overhead and peak memory with a 2 GiB layer.
# Usage: scripts/bench-bundle.sh [RUNS]   (figures go to stdout; copy them
# into docs/benchmarks.md with the command line)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
runs=${1:-5}
cargo build --release --locked -p edgeiso >&2
edgeiso=$PWD/target/release/edgeiso
work=$(mktemp -d /var/tmp/edgeiso-bench.XXXXXX)
trap 'kill $REGISTRY_PID 2>/dev/null || true; rm -rf "$work"' EXIT

make_images "$work/images" --images 24 --mib-per-image 16 --multiarch 2
start_registry "$work"
push_layout "$work/images"
refs=$(python3 -c 'import json,sys; print(" ".join(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open(sys.argv[1]+"/index.json"))["manifests"]))' "$work/images")

{
  echo "name: bench"
  echo "images:"
  for r in $refs; do printf '  - ref: %s/%s\n    platforms: all\n' "$REGISTRY_HOST" "$r"; done
  echo "registries:"
  echo "  - host: $REGISTRY_HOST"
  echo "    insecure: true"
} > "$work/bench.yaml"

cat > "$work/skopeo.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
for r in $refs; do
  skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://$REGISTRY_HOST/\$r" "oci:$work/skopeo-layout:\$r"
done
tar -cf "$work/skopeo.tar" -C "$work/skopeo-layout" .
SH
chmod +x "$work/skopeo.sh"

echo "## bundle create: 24 images x 16 MiB, 2 multi-arch, cold cache, $runs runs each" >&2
hyperfine --runs "$runs" --export-json "$work/h.json" \
  --prepare "rm -rf $work/cache $work/out $work/skopeo-layout $work/skopeo.tar" \
  -n edgeiso "$edgeiso bundle create --spec $work/bench.yaml --output $work/out --cache $work/cache" \
  -n skopeo+tar "$work/skopeo.sh" >&2
python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
e, s = r["edgeiso"], r["skopeo+tar"]
print(f"edgeiso bundle create: mean {e['mean']:.2f} s (min {e['min']:.2f})")
print(f"skopeo copy + tar:     mean {s['mean']:.2f} s (min {s['min']:.2f})")
print(f"speed-up: {s['mean']/e['mean']:.2f}x (mean), {s['min']/e['min']:.2f}x (min)")
PY

"$edgeiso" bundle create --spec "$work/bench.yaml" --output "$work/out" --cache "$work/cache" 2>/dev/null
"$edgeiso" --json bundle inspect "$work/out/content-bench.tar" | python3 -c '
import json,sys
e = json.loads(sys.stdin.readline())
b, u = e["bundleBytes"], e["uniqueBlobBytes"]
print(f"bundle {b} bytes, unique blobs {u} bytes, overhead {100*(b-u)/u:.3f}%")'
du -sb "$work/skopeo.tar" 2>/dev/null | awk '{print "skopeo tar for comparison: " $1 " bytes"}' || true

echo "## peak memory bundling an image with a 2 GiB layer" >&2
bash scripts/push-big-image.sh "$REGISTRY_HOST" big/layer 1 $((2 << 30)) "$work" >/dev/null
printf 'name: big\nimages:\n  - %s/big/layer:1\nregistries:\n  - host: %s\n    insecure: true\n' "$REGISTRY_HOST" "$REGISTRY_HOST" > "$work/big.yaml"
/usr/bin/time -v "$edgeiso" bundle create --spec "$work/big.yaml" --output "$work/big-out" --cache "$work/big-cache" 2> "$work/time.txt" >/dev/null
awk -F': ' '/Maximum resident set size/{printf "peak RSS bundling a 2 GiB layer: %.1f MiB\n", $2/1024} /Elapsed \(wall clock\)/{print "wall: " $2}' "$work/time.txt"
