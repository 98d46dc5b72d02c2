#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs
# the tests of the workspace. Tests start their own registries, containerd
# and QEMU on loopback; nothing here needs the internet.
#
#   bash scripts/test.sh          everything (what .ci/run calls)
#   bash scripts/test.sh fast     everything but the QEMU boots and the
#                                 static-agent build they need (a few minutes)
#
# Further arguments go to `cargo test` (e.g. `bash scripts/test.sh fast -p edgeiso-agent`).
set -euo pipefail
cd "$(dirname "$0")/.."
tier=all
if [ "${1:-}" = fast ]; then
  tier=fast
  shift
fi
bash scripts/install-test-deps.sh
# 2 cores: more test threads than that only makes registry tests time out.
# Everything was just installed: a test that would skip for a missing tool fails.
export EDGEISO_REQUIRE_TOOLS=1
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
# The QEMU boot tests are the test targets that need the `qemu-tests`
# feature (builder/tests/iso_e2e.rs, overlay/tests/boot.rs).
features=(--all-features)
[ "$tier" = fast ] && features=()
cargo test --workspace --locked "${features[@]}" "$@"
