#!/usr/bin/env bash
# One golden, many sites (issue 14): `edgeiso personalize --in-place` on a
# golden with a small bundle and on one with a large bundle, side by side
# (the time must not depend on the bundle: at most 2x apart, under a second
# each); then SITES sites from the small golden (`personalize --output`: a
# copy, then the area) against SITES full `edgeiso iso` runs of the same
# sites. Figures go to docs/benchmarks.md, "## Personalising a golden".
#
#   scripts/bench-personalize.sh [SMALL_MIB] [LARGE_MIB] [RUNS] [SITES]
#
# Defaults 20, 1024, 5, 100. Medians of RUNS alternating runs.
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-20}
large=${2:-1024}
runs=${3:-5}
sites=${4:-100}
work=${EDGEISO_BENCH_DIR:-$(mktemp -d /var/tmp/edgeiso-bench-personalize.XXXXXX)}
mkdir -p "$work"
trap '[ -n "${EDGEISO_BENCH_DIR:-}" ] || rm -rf "$work"' EXIT

cargo build -q --release --locked -p edgeiso
cargo build -q --release --locked -p edgeiso-agent --example make-bench-bundle
edgeiso=$PWD/target/release/edgeiso
agent=$(bash scripts/build-agent-static.sh)
kernel_dir=$(bash scripts/fetch-test-kernel.sh)
[ -f "$work/base.iso" ] || bash scripts/make-test-base-iso.sh "$work/base.iso" --layout auroraboot --kernel-dir "$kernel_dir" 2>/dev/null
printf 'x-Harbor-1\n' >"$work/harbor.pw"
printf 'name: fleet\nharbor:\n  url: http://10.0.2.2:5000\n  adminPasswordFile: harbor.pw\nagent:\n  liveLoad: true\n' >"$work/golden.yaml"
export SOURCE_DATE_EPOCH=1700000000
golden() { # MIB -> $work/golden-MIB.iso
  local mib=$1
  [ -f "$work/bundle-$mib/content-bench.tar" ] ||
    target/release/examples/make-bench-bundle big-layer "$work/bundle-$mib" bench "$mib" >/dev/null
  [ -f "$work/golden-$mib.iso" ] ||
    "$edgeiso" iso --spec "$work/golden.yaml" --base "$work/base.iso" --output "$work/golden-$mib.iso" \
      --bundle "$work/bundle-$mib/content-bench.tar" --agent "$agent" >/dev/null 2>&1
}
golden "$small"
golden "$large"
site() { # N -> $work/sites/site-N.yaml
  mkdir -p "$work/sites"
  printf 'site-%s-Harbor\n' "$1" >"$work/sites/site-$1.pw"
  printf 'site:\n  name: store-%s\n  hostName: edge-%s\nharbor:\n  url: https://10.%s.0.5:30003\n  vip: 10.%s.0.10\n  adminPasswordFile: site-%s.pw\n' \
    "$1" "$1" "$(($1 % 250))" "$(($1 % 250))" "$1" >"$work/sites/site-$1.yaml"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }
now() { date +%s.%N; }
# A failed run is no figure: stop with its message.
timed() { local t0 t1; t0=$(now); "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }; t1=$(now); echo "$t1 - $t0" | bc; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
site 1
small_t=(); large_t=()
for i in $(seq "$runs"); do
  if ((i % 2)); then
    small_t+=("$(timed "$edgeiso" personalize "$work/golden-$small.iso" --site "$work/sites/site-1.yaml" --in-place)")
    large_t+=("$(timed "$edgeiso" personalize "$work/golden-$large.iso" --site "$work/sites/site-1.yaml" --in-place)")
  else
    large_t+=("$(timed "$edgeiso" personalize "$work/golden-$large.iso" --site "$work/sites/site-1.yaml" --in-place)")
    small_t+=("$(timed "$edgeiso" personalize "$work/golden-$small.iso" --site "$work/sites/site-1.yaml" --in-place)")
  fi
done
s=$(printf '%s\n' "${small_t[@]}" | median)
l=$(printf '%s\n' "${large_t[@]}" | median)
echo "personalize --in-place, golden with a ${small} MiB bundle ($(stat -c %s "$work/golden-$small.iso") bytes): median ${s}s of $runs"
echo "personalize --in-place, golden with a ${large} MiB bundle ($(stat -c %s "$work/golden-$large.iso") bytes): median ${l}s of $runs"
echo "large / small: $(echo "scale=2; $l / $s" | bc)"

# SITES sites: personalised copies of the small golden vs full builds.
for n in $(seq "$sites"); do site "$n"; done
rm -rf "$work/out"; mkdir -p "$work/out"; sync
t0=$(now)
for n in $(seq "$sites"); do
  "$edgeiso" personalize "$work/golden-$small.iso" --site "$work/sites/site-$n.yaml" --output "$work/out/p-$n.iso" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
  rm -f "$work/out/p-$n.iso"
done
sync
p=$(echo "$(now) - $t0" | bc)
rm -rf "$work/out"; mkdir -p "$work/out"; sync
t0=$(now)
for n in $(seq "$sites"); do
  # A full build per site: the golden's spec with the site's keys written in.
  { cat "$work/golden.yaml" | grep -v '^harbor:\|^  url:\|^  adminPasswordFile:'
    printf 'site:\n  name: store-%s\n  hostName: edge-%s\nharbor:\n  url: https://10.%s.0.5:30003\n  vip: 10.%s.0.10\n  adminPasswordFile: sites/site-%s.pw\n' \
      "$n" "$n" "$((n % 250))" "$((n % 250))" "$n"; } >"$work/full-$n.yaml"
  "$edgeiso" iso --spec "$work/full-$n.yaml" --base "$work/base.iso" --output "$work/out/f-$n.iso" \
    --bundle "$work/bundle-$small/content-bench.tar" --agent "$agent" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
  rm -f "$work/out/f-$n.iso" "$work/full-$n.yaml"
done
sync
f=$(echo "$(now) - $t0" | bc)
echo "$sites sites, bundle ${small} MiB: personalize --output ${p}s, edgeiso iso ${f}s, ratio $(echo "scale=1; $f / $p" | bc)x"
