#!/usr/bin/env bash
# Benchmark `edgeiso-agent webhook` (issue 12): admission latency over TLS on
# loopback at a fixed rate, and the server's peak memory with many known
# images. The peer, run side by side on the same connections and schedule
# (every 11th request), is GET /healthz: the same TLS and HTTP with no
# admission work.
#
#   scripts/bench-webhook.sh [IMAGES] [RATE] [SECONDS] [RUNS]
#
# Defaults: 5000 known images, 500 AdmissionReviews/s (plus 50 healthz/s),
# 20 s, 3 runs. The webhook is the static binary nodes run
# (scripts/build-agent-static.sh); the client is
# agent/examples/bench-webhook.rs (release).
#
# EDGEISO_BENCH_RT=1 runs client and webhook at real-time priority
# (SCHED_FIFO 50, inherited by the webhook): on a machine shared with other
# work (compilers, other benchmarks) that work then cannot set the tail; a
# node runs nothing of the kind beside its API server.
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-5000}
rate=${2:-500}
seconds=${3:-20}
runs=${4:-3}
cargo build --release -p edgeiso-agent --example bench-webhook >&2
# The binary nodes run: static (musl when installed), with its allocator.
bash scripts/build-agent-static.sh >/dev/null
agent=$(ls -t target/x86_64-unknown-linux-{musl,gnu}/release/edgeiso-agent 2>/dev/null | head -1 || true)
[[ -n $agent ]] || { echo "no static agent was built" >&2; exit 1; }
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), webhook: $agent"
rt=()
[[ ${EDGEISO_BENCH_RT:-0} == 1 ]] && rt=(chrt -f 50)
echo "# priority: ${rt[*]:-normal}"
for i in $(seq "$runs"); do
    "${rt[@]}" target/release/examples/bench-webhook "$agent" "$images" "$rate" "$seconds"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
