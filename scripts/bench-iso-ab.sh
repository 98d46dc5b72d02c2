#!/usr/bin/env bash
# Two builds of edgeiso against each other and against `cp`, on the fixtures
# scripts/bench-iso.sh leaves in EDGEISO_BENCH_DIR (run it once first):
# ROUNDS rounds, the three commands in rotating order, each after `sync` and
# a settle pause, each ending with `sync`. Prints each round and the medians
# of the per-round ratios. Used for decision 0007.
#
#   EDGEISO_BENCH_DIR=/var/tmp/eiso-bench scripts/bench-iso-ab.sh OLD_EDGEISO NEW_EDGEISO [ROUNDS]
set -euo pipefail
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-12}
here=$(cd "$(dirname "$0")" && pwd)
cd "${EDGEISO_BENCH_DIR:?set EDGEISO_BENCH_DIR to scripts/bench-iso.sh\'s folder}"
for f in base.iso site.yaml bundle/content-bench.tar reference.iso; do
  [ -e "$f" ] || { echo "$PWD/$f missing: run scripts/bench-iso.sh with EDGEISO_BENCH_DIR=$PWD first" >&2; exit 2; }
done
agent=$(bash "$here/build-agent-static.sh")
export SOURCE_DATE_EPOCH=1700000000
timed() {
  rm -rf w t.iso copy.iso
  sync; sleep "${EDGEISO_BENCH_SETTLE:-1}"
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  sync
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
one() {
  case $1 in
    cp) timed cp reference.iso copy.iso ;;
    *) timed "$1" iso --spec site.yaml --base base.iso --output t.iso --bundle bundle/content-bench.tar \
         --agent "$agent" --work-dir w ;;
  esac
}
cmds=("$a" "$b" cp)
rows=()
for i in $(seq "$rounds"); do
  declare -A t=()
  for k in 0 1 2; do c=${cmds[$(((i + k) % 3))]}; t[$c]=$(one "$c"); done
  rows+=("${t[$a]} ${t[$b]} ${t[cp]}")
  echo "round $i: A ${t[$a]}s  B ${t[$b]}s  cp ${t[cp]}s" >&2
done
printf '%s\n' "${rows[@]}" | python3 -c '
import statistics, sys
r = [list(map(float, l.split())) for l in sys.stdin]
m = lambda xs: statistics.median(xs)
print(f"median ratios: A/cp {m([a/c for a,b,c in r]):.3f}  B/cp {m([b/c for a,b,c in r]):.3f}  B/A {m([b/a for a,b,c in r]):.3f}")'
