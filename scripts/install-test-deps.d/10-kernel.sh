#!/usr/bin/env bash
# The ISO boot tests need a real Debian kernel and its modules (unpacked, not
# installed). Fetch it into the test cache; idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/fetch-test-kernel.sh" >/dev/null
