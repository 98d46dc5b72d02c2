#!/usr/bin/env bash
# kubernetes-validate (PyPI): the installer-config tests check every core-kind
# manifest edgeiso render writes with `kubernetes-validate --strict`.
# Idempotent: installs only when the command is missing.
set -euo pipefail
command -v kubernetes-validate >/dev/null 2>&1 && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "install-test-deps: installing python3-pip" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi
echo "install-test-deps: pip install kubernetes-validate" >&2
# Debian marks its Python as externally managed; this is a test machine tool.
$SUDO python3 -m pip install --quiet --break-system-packages kubernetes-validate 2>/dev/null \
  || $SUDO python3 -m pip install --quiet kubernetes-validate
command -v kubernetes-validate >/dev/null 2>&1
