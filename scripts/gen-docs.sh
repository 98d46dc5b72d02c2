#!/usr/bin/env bash
# Regenerate the docs that come from the code: the man pages of both
# binaries, docs/man/edgeiso/ and docs/man/edgeiso-agent/ (tests fail while
# they are stale).
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in edgeiso edgeiso-agent; do
  rm -rf "docs/man/$bin"
  cargo run -q --locked -p "$bin" -- man --output "docs/man/$bin" >/dev/null
done
find docs/man -name '*.1' | sort
