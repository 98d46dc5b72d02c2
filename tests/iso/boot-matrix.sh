#!/usr/bin/env bash
# Boot the test base ISOs over BIOS/UEFI x CD/USB and report which reach the
# base's end marker, with times. Uses the same QEMU setup as
# edgeiso_overlay::qemu (machine pc, TCG, usb-storage on qemu-xhci, OVMF 4M).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cache=${EDGEISO_TEST_CACHE:-/var/cache/edgeiso-test}
layouts=("$@")
((${#layouts[@]})) || layouts=(grub-mkrescue auroraboot isolinux)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache/matrix"

for layout in "${layouts[@]}"; do
  iso="$cache/matrix/$layout.iso"
  [ -f "$iso" ] || "$here/scripts/make-test-base-iso.sh" "$iso" --layout "$layout"
  for fw in bios uefi; do
    for media in cd usb; do
      args=(-accel tcg -machine pc -m 1024 -display none -no-reboot
            -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=)
      if [ "$fw" = uefi ]; then
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
        args+=(-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
               -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd")
      fi
      if [ "$media" = cd ]; then
        args+=(-cdrom "$iso")
      else
        args+=(-device qemu-xhci,id=xhci -drive "if=none,id=usb0,readonly=on,format=raw,file=$iso"
               -device usb-storage,bus=xhci.0,drive=usb0,bootindex=0)
      fi
      log="$cache/matrix/$layout-$fw-$media.log"
      start=$(date +%s)
      timeout 120 qemu-system-x86_64 "${args[@]}" -serial "file:$log" >/dev/null 2>&1 || true
      took=$(( $(date +%s) - start ))
      if grep -aq "EDGEISO-BASE: hooks done" "$log"; then
        echo "$layout $fw $media: boots (${took}s)"
      else
        echo "$layout $fw $media: does not boot (${took}s, log $log)"
      fi
    done
  done
done
