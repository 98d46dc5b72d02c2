#!/usr/bin/env bash
# Fuzz every parser of outside input (issue 15) with libFuzzer through
# cargo-fuzz, on this machine's stable toolchain (RUSTC_BOOTSTRAP lets it
# take the sanitizer flags cargo-fuzz passes).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Defaults: 60 s per target, every target of fuzz/Cargo.toml, one after the
# other. Seeds are the committed fuzz/corpus/<target>/ (read only; what the
# fuzzer finds goes to target/fuzz-corpus/<target>/); a crash is written to
# fuzz/artifacts/<target>/ and the script exits 1 after the last target:
# turn each into a regression test. Prints one line per target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^edgeiso-fuzz$')
fi
(cd fuzz && cargo fuzz build -O >&2)
# Largest input per target: bundles and archives need room, text does not.
max_len() {
    case $1 in
    bundle_open | bundle_parts | import_archive) echo 262144 ;;
    initramfs_check) echo 65536 ;;
    *) echo 16384 ;;
    esac
}
failed=0
for t in "${targets[@]}"; do
    work=target/fuzz-corpus/$t
    mkdir -p "$work" "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log=target/fuzz-corpus/$t.log
    set +e
    (cd fuzz && cargo fuzz run -O "$t" "../$work" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=20 \
        -print_final_stats=1) >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        failed=1
        echo "$t: FAILED after ${runs:-?} runs ($cov); see $log and fuzz/artifacts/$t/"
    else
        echo "$t: ${seconds} s, ${runs:-?} runs, $cov, corpus $(ls "$work" | wc -l) + $(ls "fuzz/corpus/$t" | wc -l) seeds"
    fi
done
# Scratch folders of fuzzers that are gone (edgeiso-fuzz-PID-*; a run
# beside this one keeps its own).
for d in /dev/shm/edgeiso-fuzz-*; do
  [ -d "$d" ] || continue
  pid=${d#/dev/shm/edgeiso-fuzz-}
  pid=${pid%%-*}
  case $pid in '' | *[!0-9]*) rm -rf "$d" ;; *) kill -0 "$pid" 2>/dev/null || rm -rf "$d" ;; esac
done
exit $failed
