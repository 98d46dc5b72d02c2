#!/usr/bin/env bash
# ISO remaster benchmark: `edgeiso iso --bundle` (overlay tree + xorriso
# remaster + read-back verification) against `cp` of an ISO of the same size,
# with a bundle of one incompressible layer (default 2048 MiB), and the size
# of the initramfs overlay. Figures go to docs/benchmarks.md, "## ISO remaster".
#
#   scripts/bench-iso.sh [MIB] [RUNS]      # defaults 2048 and 3; median of RUNS
#
# Both timings include a final `sync` (the bytes are on disk, as a pipeline
# needs them) and start after a `sync` and a settle pause
# (EDGEISO_BENCH_SETTLE seconds, default 1); the bundle is in the page cache
# for both. The figure to judge by is the median of the per-run ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-2048}
runs=${2:-3}
work=${EDGEISO_BENCH_DIR:-$(mktemp -d /var/tmp/edgeiso-bench-iso.XXXXXX)}
mkdir -p "$work"
trap '[ -n "${EDGEISO_BENCH_DIR:-}" ] || rm -rf "$work"' EXIT

cargo build -q --release --locked -p edgeiso
cargo build -q --release --locked -p edgeiso-agent --example make-bench-bundle
edgeiso=$PWD/target/release/edgeiso
agent=$(bash scripts/build-agent-static.sh)
if [ ! -f "$work/bundle/content-bench.tar" ]; then
  target/release/examples/make-bench-bundle big-layer "$work/bundle" bench "$mib" >/dev/null
fi
bundle="$work/bundle/content-bench.tar"
kernel_dir=$(bash scripts/fetch-test-kernel.sh)
[ -f "$work/base.iso" ] || bash scripts/make-test-base-iso.sh "$work/base.iso" --layout auroraboot --kernel-dir "$kernel_dir" 2>/dev/null
printf 'name: bench\nharbor:\n  url: http://10.0.2.2:5000\nagent:\n  liveLoad: true\n' >"$work/site.yaml"

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }
now() { date +%s.%N; }
export SOURCE_DATE_EPOCH=1700000000
iso_times=(); cp_times=()
# After deleting the last run's 2 GiB and syncing, the VM's disk stays busy
# for a while (journal, freed blocks); whichever run came next paid for it.
settle() { sleep "${EDGEISO_BENCH_SETTLE:-1}"; }
run_iso() {
  rm -rf "$work/out.iso" "$work/w"
  sync
  settle
  local t0 t1
  t0=$(now)
  "$edgeiso" iso --spec "$work/site.yaml" --base "$work/base.iso" --output "$work/out.iso" \
    --bundle "$bundle" --agent "$agent" --work-dir "$work/w" 2>/dev/null >/dev/null
  sync
  t1=$(now)
  iso_times+=("$(echo "$t1 - $t0" | bc)")
}
run_cp() {
  rm -f "$work/copy.iso"
  sync
  settle
  local t0 t1
  t0=$(now)
  cp "$reference" "$work/copy.iso"
  sync
  t1=$(now)
  cp_times+=("$(echo "$t1 - $t0" | bc)")
}
# `cp` copies an ISO of the output's size, made once up front. The two are
# run in alternating order (iso first on odd runs, cp first on even ones):
# on these VMs whatever runs right after the previous run's deletes and
# writes is slower, which must not always fall on the same side.
reference="$work/reference.iso"
if [ ! -f "$reference" ]; then
  "$edgeiso" iso --spec "$work/site.yaml" --base "$work/base.iso" --output "$reference" \
    --bundle "$bundle" --agent "$agent" --work-dir "$work/w0" 2>/dev/null >/dev/null
  rm -rf "$work/w0"
fi
ratios=()
for i in $(seq "$runs"); do
  if ((i % 2)); then run_iso; run_cp; else run_cp; run_iso; fi
  ratios+=("$(echo "scale=4; ${iso_times[-1]} / ${cp_times[-1]}" | bc)")
  echo "run $i: edgeiso iso ${iso_times[-1]}s, cp ${cp_times[-1]}s, ratio ${ratios[-1]}" >&2
done
iso_s=$(printf '%s\n' "${iso_times[@]}" | median)
cp_s=$(printf '%s\n' "${cp_times[@]}" | median)
size=$(stat -c %s "$work/out.iso")
initrd=$(stat -c %s "$work/w/overlay/boot/edgeiso.img")
overhead=$(echo "scale=1; ($iso_s - $cp_s) * 100 / $cp_s" | bc)
echo "bundle ${mib} MiB; output ISO $size bytes"
echo "edgeiso iso (median of $runs): ${iso_s}s"
echo "cp of the output ISO (median of $runs): ${cp_s}s"
ratio=$(printf '%s\n' "${ratios[@]}" | median)
echo "remaster overhead over cp: ${overhead}% (medians of the columns)"
echo "median of the per-run ratios: $ratio (the figure to compare with the target of 1.20)"
echo "initramfs overlay: $initrd bytes (budget 8 MiB = 8388608)"
