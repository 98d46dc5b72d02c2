#!/usr/bin/env bash
# Fetch (never install) the current Debian amd64 kernel for the ISO boot tests.
#
# Usage: scripts/fetch-test-kernel.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${EDGEISO_TEST_CACHE:-/var/cache/edgeiso-test}.
#
# Leaves CACHE_DIR/kernel/<version>/{vmlinuz,lib/modules/<version>} and a
# CACHE_DIR/kernel/current symlink, and prints the path of the version dir on
# stdout. Idempotent: a second run with the same Debian kernel does no work.
# The package is unpacked with `dpkg -x` into the cache, so the host's own
# kernel and /boot stay untouched.
set -euo pipefail

cache=${1:-${EDGEISO_TEST_CACHE:-/var/cache/edgeiso-test}}
kdir="$cache/kernel"
mkdir -p "$kdir"

log() { echo "fetch-test-kernel: $*" >&2; }

# The metapackage's Depends names the real, versioned image package.
resolve_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9].*-amd64$/ {print $2; exit}'
}
pkg=$(resolve_pkg || true)
if [ -z "$pkg" ]; then
  # An empty apt list (fresh container) resolves nothing: refresh once.
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  log "apt lists empty or stale; running apt-get update"
  $SUDO apt-get update -qq >&2
  pkg=$(resolve_pkg || true)
fi
if [ -z "$pkg" ]; then
  # Offline with an old cache: keep using whatever we fetched before.
  if [ -e "$kdir/current/vmlinuz" ]; then
    log "cannot resolve linux-image-amd64; reusing $(readlink -f "$kdir/current")"
    readlink -f "$kdir/current"
    exit 0
  fi
  log "cannot resolve the versioned package from linux-image-amd64's Depends"
  exit 1
fi
ver=${pkg#linux-image-}
out="$kdir/$ver"

if [ -f "$out/vmlinuz" ] && [ -d "$out/lib/modules/$ver/kernel" ]; then
  ln -sfn "$ver" "$kdir/current"
  echo "$out"
  exit 0
fi

work=$(mktemp -d "$kdir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "downloading $pkg"
# apt-get download writes into the current directory; the _apt sandbox user
# needs to be able to write there, or apt warns and downloads as root.
(cd "$work" && chmod 0777 . && apt-get download -qq "$pkg" >&2)
deb=$(ls "$work"/"$pkg"_*.deb)
dpkg -x "$deb" "$work/root"

stage="$work/out"
mkdir -p "$stage/lib/modules"
cp "$work/root/boot/vmlinuz-$ver" "$stage/vmlinuz"
# Debian 12 ships modules under /lib; newer releases under /usr/lib.
moddir=""
for d in "$work/root/lib/modules/$ver" "$work/root/usr/lib/modules/$ver"; do
  [ -d "$d" ] && moddir=$d && break
done
[ -n "$moddir" ] || { log "no modules directory for $ver in $deb"; exit 1; }
mv "$moddir" "$stage/lib/modules/$ver"
# The package ships no modules.dep (depmod runs at install time, and kmod may
# not even be installed here). make-test-base-iso.sh reads each module's own
# `depends=` field instead, so nothing more is needed.
echo "$pkg" >"$stage/PACKAGE"

rm -rf "$out"
mv "$stage" "$out"
ln -sfn "$ver" "$kdir/current"
log "kernel $ver ready in $out"
echo "$out"
