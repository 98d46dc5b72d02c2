#!/usr/bin/env bash
# Install everything the tests and the demo need, idempotently, from Debian's
# packages and PyPI only (no other network is reachable on CI machines).
# Safe to run again and again: it installs only what is missing.
set -euo pipefail

packages=(
  docker-registry   # the real OCI registry tests push to and pull from
  skopeo            # the peer tool; also proves bundles are readable
  containerd        # proves `ctr images import` reads bundles; mirror config tests
  xorriso           # ISO remastering
  qemu-system-x86   # boot tests (TCG on these machines)
  ovmf              # UEFI firmware for boot tests
  grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools isolinux syslinux-common
  busybox-static cpio zstd xz-utils
  # the kairos-dracut test base: a real dracut initramfs (systemd, dmsquash-live,
  # systemd-networkd) for the unpacked test kernel, and its squashfs root
  dracut-core dracut-live dracut-network udev squashfs-tools kmod
  openssl curl time hyperfine
  e2fsprogs         # mkfs.ext4 -d and debugfs: the courier-stick test images
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-test-deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's docker-registry package starts a system registry on :5000 where
# systemd runs; tests start their own on free ports and never use it.

here=$(cd "$(dirname "$0")" && pwd)
for extra in "$here"/install-test-deps.d/*.sh; do
  [ -e "$extra" ] && bash "$extra"
done
exit 0
