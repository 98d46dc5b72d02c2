#!/usr/bin/env bash
# What a reboot costs a node for the bootstrap archive edgeiso puts in
# k3s/RKE2's agent/images/ (issue 12): `ctr images import` of an archive of
# Harbor's size into an empty containerd (the first boot), the same import
# with everything already there (every later start of a k3s/RKE2 that
# imports each archive at start), and the skip of an unchanged archive that
# k3s >= 1.30.13/1.31.9/1.32.5/1.33.1 make when agent/images/.cache.json
# exists (the boot stage creates it).
#
#   scripts/bench-reboot-import.sh [IMAGES] [MIB_PER_IMAGE] [RUNS]
#
# Defaults: 9 images of 64 MiB (about Harbor's own images, ~600 MB
# compressed), 3 re-imports. Needs root, containerd and ctr.
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-9}
mib=${2:-64}
runs=${3:-3}
cargo build --release -p edgeiso-testkit --example bench-reboot-import >&2
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(containerd --version)"
target/release/examples/bench-reboot-import "$images" "$mib" "$runs"
