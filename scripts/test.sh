#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs
# every test of the workspace. Tests start their own registries, containerd
# and QEMU on loopback; nothing here needs the internet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
# 2 cores: more test threads than that only makes registry tests time out.
# Everything was just installed: a test that would skip for a missing tool fails.
export EDGEISO_REQUIRE_TOOLS=1
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
cargo test --workspace --locked "$@"
