#!/usr/bin/env bash
# Benchmark `edgeiso-agent webhook` (issue 12): admission latency over TLS on
# loopback at a fixed rate, and the server's peak memory with many known
# images. The peer, run side by side on the same connections and schedule,
# is GET /healthz: the same TLS and HTTP with no admission work.
#
#   scripts/bench-webhook.sh [IMAGES] [RATE] [SECONDS] [RUNS]
#
# Defaults: 5000 known images, 500 AdmissionReviews/s (plus 500 healthz/s),
# 20 s, 3 runs. The webhook is the static binary nodes run
# (scripts/build-agent-static.sh); the client is
# agent/examples/bench-webhook.rs (release).
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
for i in $(seq "$runs"); do
    target/release/examples/bench-webhook "$agent" "$images" "$rate" "$seconds"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
