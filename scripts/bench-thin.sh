#!/usr/bin/env bash
# Benchmarks of partial bundles (issue 13), side by side on one machine:
#
# 1. Thin-bundle load: `edgeiso-agent load` of a thin bundle, every config and
#    layer fetched from a source docker-registry on loopback into an empty
#    one, against a skopeo `docker://` -> `docker://` loop over the same
#    images (every platform: `--all`), interleaved round after round.
# 2. Delta size: next month's bundle made with `--base` this month's, against
#    the bytes of the blobs that are new.
#
#   scripts/bench-thin.sh [--write-docs] [--runs N]
#
# Corpus: make-images.py --images 24 --mib-per-image 16 --multiarch 2 (this
# month, seed 1); next month keeps 20 of them and adds 4 rebuilt (seed 2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
BENCH_DIR=${BENCH_DIR:-/tmp/edgeiso-bench-thin}
WRITE_DOCS=0; RUNS=5
while (($#)); do
    case $1 in
    --write-docs) WRITE_DOCS=1 ;;
    --runs) RUNS=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
for tool in docker-registry skopeo curl python3 bc /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-test-deps.sh)" >&2; exit 1; }
done
mkdir -p "$BENCH_DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== building" >&2
AGENT=$("$ROOT/scripts/build-agent-static.sh")
(cd "$ROOT" && cargo build -q --release -p edgeiso)
EDGEISO=$ROOT/target/release/edgeiso

echo "== corpus and source registry" >&2
[[ -f $BENCH_DIR/month1/index.json ]] || make_images "$BENCH_DIR/month1" --images 24 --mib-per-image 16 --multiarch 2 --seed 1
[[ -f $BENCH_DIR/month2/index.json ]] || make_images "$BENCH_DIR/month2" --images 4 --mib-per-image 16 --multiarch 1 --seed 2
rm -rf "$BENCH_DIR/src"
start_registry "$BENCH_DIR/src"
PIDS+=("$REGISTRY_PID")
SRC=$REGISTRY_HOST
SRC_PID=$REGISTRY_PID
refs() { python3 -c 'import json,sys; print("\n".join(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open(sys.argv[1]+"/index.json"))["manifests"]))' "$1"; }
for ref in $(refs "$BENCH_DIR/month1"); do
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$BENCH_DIR/month1:$ref" "docker://$SRC/$ref"
done
# Next month's rebuilds go under the same names, tag 2.0.
NEW=()
for ref in $(refs "$BENCH_DIR/month2"); do
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$BENCH_DIR/month2:$ref" "docker://$SRC/${ref%:*}:2.0"
    NEW+=("${ref%:*}")
done
mapfile -t OLD < <(refs "$BENCH_DIR/month1")

spec() { # file name refs...
    local f=$1 name=$2; shift 2
    {
        echo "name: $name"
        echo "images:"
        for r in "$@"; do printf '  - {ref: %s/%s, platforms: all}\n' "$SRC" "$r"; done
        printf 'registries:\n  - host: %s\n    insecure: true\nharbor:\n  url: https://10.0.0.5:30003\n' "$SRC"
    } >"$f"
}
spec "$BENCH_DIR/month1.yaml" bench "${OLD[@]}"
MONTH2=()
for r in "${OLD[@]}"; do
    keep=1
    for n in "${NEW[@]}"; do [[ ${r%:*} == "$n" ]] && keep=0; done
    ((keep)) && MONTH2+=("$r")
done
for n in "${NEW[@]}"; do MONTH2+=("$n:2.0"); done
spec "$BENCH_DIR/month2.yaml" bench "${MONTH2[@]}"

echo "== bundles" >&2
rm -rf "$BENCH_DIR/out"
SOURCE_DATE_EPOCH=1700000000 "$EDGEISO" bundle create --spec "$BENCH_DIR/month1.yaml" --output "$BENCH_DIR/out/whole1" --cache "$BENCH_DIR/cache" >/dev/null
SOURCE_DATE_EPOCH=1700000000 "$EDGEISO" bundle create --spec "$BENCH_DIR/month1.yaml" --output "$BENCH_DIR/out/thin1" --cache "$BENCH_DIR/cache" --thin >/dev/null
SOURCE_DATE_EPOCH=1702600000 "$EDGEISO" bundle create --spec "$BENCH_DIR/month2.yaml" --output "$BENCH_DIR/out/whole2" --cache "$BENCH_DIR/cache" >/dev/null
SOURCE_DATE_EPOCH=1702600000 "$EDGEISO" bundle create --spec "$BENCH_DIR/month2.yaml" --output "$BENCH_DIR/out/delta2" --cache "$BENCH_DIR/cache" \
    --base "$BENCH_DIR/out/whole1/content-bench.tar" >/dev/null
THIN=$BENCH_DIR/out/thin1/content-bench.tar
bytes_of() { du -cb "$@" | tail -1 | cut -f1; }
# Blobs of month 2 that month 1 lacks: what an update must carry.
NEW_BYTES=$(python3 - "$BENCH_DIR/out/whole1/content-bench.tar" "$BENCH_DIR/out/whole2/content-bench.tar" <<'PY'
import sys, tarfile
def blobs(p):
    with tarfile.open(p) as t:
        return {m.name: m.size for m in t.getmembers() if m.name.startswith("blobs/")}
old, new = blobs(sys.argv[1]), blobs(sys.argv[2])
print(sum(s for n, s in new.items() if n not in old))
PY
)
DELTA_BYTES=$(bytes_of "$BENCH_DIR"/out/delta2/content-bench.tar*)
WHOLE2_BYTES=$(bytes_of "$BENCH_DIR"/out/whole2/content-bench.tar*)
THIN_BYTES=$(bytes_of "$THIN"*)
echo "thin $THIN_BYTES, delta $DELTA_BYTES, new blobs $NEW_BYTES, whole month 2 $WHOLE2_BYTES" >&2

echo "== thin load vs skopeo docker->docker, interleaved ($RUNS rounds)" >&2
J=$BENCH_DIR/json; mkdir -p "$J"; : >"$J/times.csv"
uptime >"$J/load-before.txt"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
timed() { # name command (a fresh empty destination each time)
    local name=$1 cmd=$2 t0 t1 s0 s1 d0 d1
    rm -rf "$BENCH_DIR/dst" "$BENCH_DIR/state"
    start_registry "$BENCH_DIR/dst"
    local pid=$REGISTRY_PID
    DST=$REGISTRY_HOST
    s0=$(ticks "$SRC_PID"); d0=$(ticks "$pid")
    t0=$(date +%s.%N)
    DST=$DST /usr/bin/time -f "%U %S" -o "$J/client.cpu" bash -c "$cmd" >/dev/null 2>"$J/last.err" ||
        { echo "FAILED: $name" >&2; cat "$J/last.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    s1=$(ticks "$SRC_PID"); d1=$(ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # wall, then CPU seconds of the client, the source and the destination
    echo "$name,$(echo "$t1 - $t0" | bc),$(awk '{print $1 + $2}' "$J/client.cpu"),$(echo "($s1 - $s0) / $HZ" | bc -l),$(echo "($d1 - $d0) / $HZ" | bc -l)" >>"$J/times.csv"
}
AGENT_CMD="$AGENT load --bundle $THIN --registry http://\$DST --sources $BENCH_DIR/month1.yaml --state-dir $BENCH_DIR/state --wait-timeout 30s"
SKOPEO_CMD="for r in ${OLD[*]}; do skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false docker://$SRC/\$r docker://\$DST/spectro-images/${SRC/:/_}/\$r; done"
for r in $(seq "$RUNS"); do
    echo "round $r" >&2
    timed "edgeiso-agent load, thin bundle (concurrency 4)" "$AGENT_CMD"
    timed "skopeo copy --all docker:// -> docker:// (image after image)" "$SKOPEO_CMD"
done
uptime >"$J/load-after.txt"

echo "== peak memory: a thin bundle of one ${BIG_MIB:=1024} MiB layer (chunked: ranged GETs from the source)" >&2
BIG=$BENCH_DIR/big/content-big.tar
(cd "$ROOT" && cargo build -q -p edgeiso-agent --example make-bench-bundle)
[[ -f $BIG ]] || "$ROOT/target/debug/examples/make-bench-bundle" big-layer "$BENCH_DIR/big" big "$BIG_MIB" >/dev/null
# Into the source with the agent itself, then the thin bundle of it.
"$AGENT" load --bundle "$BIG" --registry "http://$SRC" --project mirror --state-dir "$BENCH_DIR/state-src" >/dev/null 2>&1
spec "$BENCH_DIR/big.yaml" big "mirror/docker.io/bench/big:1.0"
"$EDGEISO" bundle create --spec "$BENCH_DIR/big.yaml" --output "$BENCH_DIR/out/bigthin" --cache "$BENCH_DIR/cache" --thin >/dev/null
rm -rf "$BENCH_DIR/dst" "$BENCH_DIR/state"
start_registry "$BENCH_DIR/dst"
/usr/bin/time -v "$AGENT" load --bundle "$BENCH_DIR/out/bigthin/content-big.tar" --registry "http://$REGISTRY_HOST" \
    --sources "$BENCH_DIR/big.yaml" --state-dir "$BENCH_DIR/state" >/dev/null 2>"$J/big.time"
kill "$REGISTRY_PID"; wait "$REGISTRY_PID" 2>/dev/null || true
rm -rf "$BENCH_DIR/dst"
BIG_RSS=$(awk -F': ' '/Maximum resident set size/{print $2}' "$J/big.time")
BIG_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$J/big.time")

PYTHONPATH="$ROOT/scripts" python3 - "$J" "$THIN_BYTES" "$DELTA_BYTES" "$NEW_BYTES" "$WHOLE2_BYTES" "$WRITE_DOCS" "$ROOT/docs/benchmarks.md" "$BIG_MIB|$BIG_RSS|$BIG_WALL" <<'PY'
import os, statistics, subprocess, sys
j, thin, delta, new, whole2, write_docs, docs, big = sys.argv[1:9]
thin, delta, new, whole2 = int(thin), int(delta), int(new), int(whole2)
runs, cpu_of = {}, {}
for line in open(os.path.join(j, "times.csv")):
    name, t, client, src, dst = line.rstrip("\n").rsplit(",", 4)
    runs.setdefault(name, []).append(float(t))
    cpu_of.setdefault(name, []).append((float(client), float(src), float(dst)))
med = {k: statistics.median(v) for k, v in runs.items()}
def cpu_med(k, i): return statistics.median(c[i] for c in cpu_of[k])
agent = next(v for k, v in med.items() if k.startswith("edgeiso-agent"))
skopeo = next(v for k, v in med.items() if k.startswith("skopeo"))
loadavg = [open(os.path.join(j, f)).read().split("load average:")[1].strip() for f in ("load-before.txt", "load-after.txt")]
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
MiB = 2**20
limit = new * 1.05 + MiB
L = ["## Partial bundles\n"]
L.append(f"Measured by `scripts/bench-thin.sh` on {os.cpu_count()} cores ({cpu}), Debian, docker-registry 2.8 on 127.0.0.1 as "
         "both the source and the destination (a fresh empty destination for every run), static musl `edgeiso-agent`. "
         "Corpus: `make-images.py --images 24 --mib-per-image 16 --multiarch 2 --seed 1`, every platform. "
         f"Load average {loadavg[0]} before, {loadavg[1]} after.\n")
L.append("Thin-bundle load (every config and layer fetched from the source while it is pushed) against skopeo copying the "
         "same images from the same source, image after image, interleaved round after round:\n")
L.append("| what | median s | runs (s) | CPU s: client | source registry | destination registry |")
L.append("| --- | ---: | --- | ---: | ---: | ---: |")
for k, v in runs.items():
    L.append(f"| {k} | {med[k]:.2f} | {', '.join(f'{t:.2f}' for t in v)} | {cpu_med(k, 0):.2f} | {cpu_med(k, 1):.2f} | {cpu_med(k, 2):.2f} |")
L.append("")
ak = next(k for k in runs if k.startswith("edgeiso-agent"))
busy = cpu_med(ak, 0) + cpu_med(ak, 1) + cpu_med(ak, 2)
ncpu = os.cpu_count()
L.append(f"- thin load vs skopeo `docker://` -> `docker://`: **{skopeo/agent:.1f}x faster** (target: at least 3x).")
L.append(f"- where the thin load's time goes: the agent, the source and the destination registry together use {busy:.2f} CPU-seconds "
         f"per load, so on {ncpu} cores no client can finish in less than {busy/ncpu:.2f} s; the agent's {agent:.2f} s is "
         f"{agent/(busy/ncpu):.2f}x that floor. The destination registry alone needs {cpu_med(ak, 2):.2f} CPU-seconds for what skopeo "
         f"makes it do in {cpu_med(next(k for k in runs if k.startswith('skopeo')), 2):.2f}: the two registries, not the agent "
         f"({cpu_med(ak, 0):.2f} CPU-seconds), bound this benchmark on this machine: a client that cost nothing would be "
         f"{skopeo/(busy/ncpu):.1f}x skopeo here.")
L.append(f"- the thin bundle itself: {thin/1024:.0f} KiB (manifests and indexes only).")
big_mib, big_rss, big_wall = big.split("|")
L.append(f"- memory: a thin bundle of one {big_mib} MiB incompressible layer, fetched from the source in ranged 128 MiB chunks "
         f"while it is pushed in chunks, `/usr/bin/time -v`: peak RSS **{int(big_rss)/1024:.1f} MiB**, {big_wall} wall "
         "(nothing of the layer is written to the node's disk).\n")
L.append("Delta size: next month keeps 20 of the 24 images and rebuilds 4 (`--seed 2`, tag 2.0); "
         "`bundle create --base` this month's whole bundle:\n")
L.append("| what | bytes | MiB |")
L.append("| --- | ---: | ---: |")
L.append(f"| blobs new in month 2 (what an update must carry) | {new} | {new/MiB:.2f} |")
L.append(f"| the delta bundle (every part) | {delta} | {delta/MiB:.2f} |")
L.append(f"| limit: new x 1.05 + 1 MiB | {limit:.0f} | {limit/MiB:.2f} |")
L.append(f"| month 2's whole bundle, for scale | {whole2} | {whole2/MiB:.2f} |")
L.append("")
L.append(f"- delta / new blobs: **{delta/new:.3f}x**, {(delta-new)/1024:.0f} KiB over (the manifests of all 24 images, "
         f"index.json, bundle.json, tar headers); {'within' if delta <= limit else 'OVER'} the limit.\n")
L.append("Reproduce: `scripts/bench-thin.sh --write-docs` (needs docker-registry, skopeo, bc; ~6 minutes, ~6 GB of /tmp).\n")
text = "\n".join(L) + "\n"
print(text)
if write_docs == "1":
    from bench_docs import replace_section
    replace_section(docs, text)
PY
