#!/usr/bin/env bash
# Build a small, bootable base ISO for the remastering and boot tests.
#
# Usage: scripts/make-test-base-iso.sh OUT.iso
#          --layout grub-mkrescue|auroraboot|isolinux|kairos-dracut
#          [--kernel-dir DIR] [--volid ID]
#
# The ISO carries the Debian kernel (scripts/fetch-test-kernel.sh) and, for all
# layouts but kairos-dracut, a busybox initramfs whose /init behaves like a tiny
# dracut live boot:
#   - loads only the modules a QEMU guest needs (CD: ata_piix/ahci + sr_mod +
#     isofs; USB stick: xhci + usb-storage + sd_mod; virtio-blk; virtio-net/e1000),
#     with plain `insmod` in an order resolved here from each module's
#     `depends=` field (no modules.dep, no modprobe);
#   - finds the boot medium by the label in `root=live:CDLABEL=<ID>` and mounts
#     it at /run/initramfs/live;
#   - brings up DHCP with busybox udhcpc;
#   - sources /lib/dracut/hooks/<stage>/*.sh (dracut's $hookdir) in dracut's
#     stage order, so an initramfs overlay appended by the boot loader can add
#     a hook. Each layout lays that folder out as one family of real dracut
#     initrds does, so the overlay must work through all three:
#       grub-mkrescue  usr-merged (lib -> usr/lib), hooks a real folder in
#                      /usr/lib/dracut/hooks (dracut up to 059: Debian, Ubuntu)
#       auroraboot     not usr-merged: /lib/dracut/hooks a real folder
#                      (openSUSE Leap)
#       isolinux       usr-merged, and /usr/lib/dracut/hooks a symlink to
#                      /var/lib/dracut/hooks (dracut-ng)
#   - has a pre-pivot hook of its own (`EDGEISO-BASE: own pre-pivot hook ran`);
#   - prints `EDGEISO-BASE: hooks done` on the serial console and powers off.
#
# Layouts (the boot setups edgeiso must remaster):
#   grub-mkrescue  BIOS + UEFI hybrid made by grub-mkrescue; /boot/grub/grub.cfg
#   auroraboot     like Kairos AuroraBoot: volume COS_LIVE, /boot/kernel,
#                  /boot/initrd, /boot/grub2/grub.cfg, GRUB El Torito with a
#                  hybrid MBR and the EFI image as an appended GPT partition
#   isolinux       isolinux BIOS El Torito with an isohybrid MBR
#   kairos-dracut  the auroraboot layout with what a Kairos live ISO boots
#                  instead of the busybox initramfs: a real dracut initramfs
#                  (Debian's dracut, systemd in the initrd, dmsquash-live,
#                  systemd-networkd) that mounts the medium at
#                  /run/initramfs/live, loop-mounts /rootfs.squashfs with an
#                  overlay and switches root into it; the root prints
#                  `EDGEISO-BASE: root reached` and powers off, or, when
#                  the overlay staged an agent for http://127.0.0.1:30003,
#                  plays the installed node (a registry on NodePort 30003
#                  and the agent's unit) and stays up. Kairos' own
#                  kernel command line plus rd.live.overlay.overlayfs=1 (see
#                  below); no network arguments: a live load must bring its
#                  own.
#
# Deterministic: every timestamp comes from SOURCE_DATE_EPOCH (default
# 1700000000), archives are sorted and owned by 0:0.
set -euo pipefail

usage() { echo "usage: $0 OUT.iso --layout grub-mkrescue|auroraboot|isolinux|kairos-dracut [--kernel-dir DIR] [--volid ID]" >&2; exit 2; }
log() { echo "make-test-base-iso: $*" >&2; }
die() { log "$*"; exit 1; }

out=""; layout=""; kernel_dir=""; volid=""
while (($#)); do
  case "$1" in
    --layout) layout=${2:-}; shift 2 ;;
    --layout=*) layout=${1#*=}; shift ;;
    --kernel-dir) kernel_dir=${2:-}; shift 2 ;;
    --volid) volid=${2:-}; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) [ -z "$out" ] || usage; out=$1; shift ;;
  esac
done
[ -n "$out" ] && [ -n "$layout" ] || usage
case "$layout" in
  grub-mkrescue) : "${volid:=EDGEISO_GRUB}" ;;
  auroraboot|kairos-dracut) : "${volid:=COS_LIVE}" ;;
  isolinux) : "${volid:=EDGEISO_ISOLINUX}" ;;
  *) usage ;;
esac

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export LC_ALL=C TZ=UTC
here=$(cd "$(dirname "$0")" && pwd)

for tool in xorriso busybox cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-test-deps.sh)"
done

if [ -z "$kernel_dir" ]; then
  kernel_dir=$("$here/fetch-test-kernel.sh")
fi
[ -f "$kernel_dir/vmlinuz" ] || die "no vmlinuz in $kernel_dir"
kver=$(basename "$(ls -d "$kernel_dir"/lib/modules/*/ | head -1)")
moddir="$kernel_dir/lib/modules/$kver"
[ -d "$moddir/kernel" ] || die "no modules in $moddir"

work=$(mktemp -d "${TMPDIR:-/tmp}/edgeiso-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------- initramfs
build_dracut_live() {
  # What a Kairos live ISO boots: a dracut initramfs built with systemd,
  # dmsquash-live and the network modules, and a squashfs root. Debian's
  # dracut builds it for the unpacked test kernel (modules.dep made here, on
  # a copy, so the shared kernel cache stays as fetched).
  local tool
  for tool in dracut depmod mksquashfs; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-test-deps.sh)"
  done
  mkdir -p "$work/kroot/lib/modules"
  cp -a "$moddir" "$work/kroot/lib/modules/"
  depmod -b "$work/kroot" "$kver"
  # --drivers limits the storage drivers to what QEMU's CD, USB and virtio
  # disks need; the network module still brings every NIC driver.
  dracut --no-hostonly --no-hostonly-cmdline --reproducible --force --zstd \
    --no-early-microcode --kver "$kver" --kmoddir "$work/kroot/lib/modules/$kver" \
    --modules "bash systemd systemd-initrd dracut-systemd systemd-udevd kernel-modules udev-rules base fs-lib dm dmsquash-live network systemd-networkd rootfs-block shutdown" \
    --drivers "sr_mod isofs cdrom ata_piix ahci xhci_pci usb_storage uas sd_mod virtio_pci virtio_blk virtio_scsi virtio_net e1000 squashfs overlay loop dm_mod dm_snapshot" \
    "$work/initrd.img" >"$work/dracut.log" 2>&1 ||
    { tail -n 30 "$work/dracut.log" >&2; die "dracut failed"; }
  log "dracut initramfs $(du -h "$work/initrd.img" | cut -f1)"

  # The root the initramfs switches into: busybox, an os-release (systemd
  # refuses to switch into a tree without one) and an init that says it got
  # there. It also stands in for an installed node (k3s with Harbor on
  # NodePort 30003, and the edgeiso-agent systemd unit): when the initramfs
  # overlay staged an agent whose config points at http://127.0.0.1:30003,
  # it starts a registry (Debian's docker-registry) on port 30003, brings up
  # DHCP, runs the staged agent as the unit would, prints its exit status and
  # stays up so a boot test can read that registry through a forwarded port.
  # Otherwise it powers off.
  local root="$work/squashroot" applet lib
  mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,usr/lib,usr/share/udhcpc,var/lib/registry}
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in sh echo mount poweroff sync sleep cat grep ip udhcpc wget mkdir; do
    ln -s busybox "$root/bin/$applet"
  done
  cp "$(command -v docker-registry)" "$root/bin/docker-registry"
  # docker-registry needs only glibc and its loader.
  for lib in $(ldd "$(command -v docker-registry)" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cat >"$root/etc/registry.yml" <<'EOY'
version: 0.1
storage: { filesystem: { rootdirectory: /var/lib/registry }, delete: { enabled: true } }
http: { addr: 0.0.0.0:30003 }
log: { level: error }
EOY
  cat >"$root/usr/share/udhcpc/default.script" <<'EOS'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done ;;
esac
exit 0
EOS
  chmod 0755 "$root/usr/share/udhcpc/default.script"
  printf 'NAME="edgeiso test root"\nID=edgeiso-test\n' >"$root/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$root/etc/os-release"
  cat >"$root/sbin/init" <<'EOS'
#!/bin/sh
export PATH=/bin
say() { echo "EDGEISO-BASE: $*" >/dev/console; }
say "root reached"
# What Kairos would read besides the medium's /config.yaml (a personalised
# site's cloud-configs, put there by the overlay's hook).
for f in /oem/*.yaml; do [ -e "$f" ] && say "oem: ${f#/oem/}"; done
agent=/run/edgeiso/bin/edgeiso-agent config=/run/edgeiso/agent-live.yaml
if [ -x "$agent" ] && grep -q '^registry: http://127.0.0.1:30003' "$config" 2>/dev/null; then
  mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t tmpfs tmpfs /tmp
  mount -t tmpfs tmpfs /var/lib/registry
  ip link set lo up
  for ifc in $(ls /sys/class/net); do
    [ "$ifc" = lo ] || udhcpc -i "$ifc" -n -q -t 10 -T 1 -s /usr/share/udhcpc/default.script >/dev/null 2>&1
  done
  docker-registry serve /etc/registry.yml >/dev/console 2>&1 &
  say "node registry starting on port 30003"
  "$agent" load --config "$config" --wait-timeout 1m >/tmp/agent.log 2>&1
  say "node agent exit $?"
  while true; do sleep 60; done
fi
sync
poweroff -f
EOS
  chmod 0755 "$root/sbin/init"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  # mksquashfs takes its timestamps from SOURCE_DATE_EPOCH.
  mksquashfs "$root" "$work/rootfs.squashfs" -noappend -all-root -comp xz -quiet -no-progress >/dev/null
}

build_busybox_initramfs() {
rootfs="$work/initramfs"
mkdir -p "$rootfs"/{bin,dev,proc,sys,run,tmp,etc,usr/share/udhcpc,usr/lib}
case "$layout" in
  auroraboot) mkdir -p "$rootfs/lib" ;;
  *) ln -s usr/lib "$rootfs/lib" ;;
esac
cp "$(command -v busybox)" "$rootfs/bin/busybox"
# One symlink per applet so the init script needs no `busybox --install`.
for applet in $("$rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
# Where /lib/dracut/hooks really is in this layout's initrd (the symlinks
# are absolute or relative to the initrd's root, so build through this).
case "$layout" in
  auroraboot) hookdir_real="$rootfs/lib/dracut/hooks" ;;
  grub-mkrescue) hookdir_real="$rootfs/usr/lib/dracut/hooks" ;;
  isolinux) hookdir_real="$rootfs/var/lib/dracut/hooks"
    mkdir -p "$rootfs/usr/lib/dracut"
    ln -s /var/lib/dracut/hooks "$rootfs/usr/lib/dracut/hooks" ;;
esac
for stage in cmdline pre-udev pre-trigger initqueue pre-mount mount pre-pivot cleanup; do
  mkdir -p "$hookdir_real/$stage"
done
# The base's own hook, as dracut's modules bring theirs: an overlay that
# replaced a folder of the hook path (or a symlink on it) would make it vanish.
echo 'echo "EDGEISO-BASE: own pre-pivot hook ran" >/dev/console' >"$hookdir_real/pre-pivot/50-edgeiso-base.sh"

# Resolve module load order: a module's dependencies first, each module once.
wanted_modules=(
  cdrom isofs sr_mod ata_piix ahci            # CD-ROM on i440fx (IDE) or q35 (AHCI)
  xhci_pci usb_storage uas sd_mod             # USB stick on qemu-xhci
  virtio_pci virtio_blk virtio_scsi           # virtio disks
  virtio_net e1000                            # networking (virtio-net or QEMU's default e1000)
)
declare -A seen=()
order=()
find_module() {
  # Module names use '_' but files may use '-' (usb-storage.ko).
  local name=$1 alt=${1//_/-} alt2=${1//-/_}
  find "$moddir/kernel" \( -name "$name.ko*" -o -name "$alt.ko*" -o -name "$alt2.ko*" \) -print -quit
}
module_depends() {
  local file=$1
  case "$file" in
    *.ko) tr '\0' '\n' <"$file" ;;
    *.ko.xz) xz -dc "$file" | tr '\0' '\n' ;;
    *.ko.zst) zstd -dc "$file" | tr '\0' '\n' ;;
    *.ko.gz) gzip -dc "$file" | tr '\0' '\n' ;;
  esac | sed -n 's/^depends=//p' | head -1 | tr ',' ' '
}
resolve() {
  local name=${1//-/_} file dep
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  if grep -qE "/(${name}|${name//_/-})\.ko" "$moddir/modules.builtin"; then
    return 0
  fi
  file=$(find_module "$name")
  [ -n "$file" ] || die "module $name not found under $moddir"
  for dep in $(module_depends "$file"); do
    resolve "$dep"
  done
  order+=("$file")
}
for m in "${wanted_modules[@]}"; do resolve "$m"; done

mkdir -p "$rootfs/lib/modules/$kver"
: >"$rootfs/etc/modules-load-order"
for file in "${order[@]}"; do
  base=$(basename "$file")
  case "$base" in
    # The kernel's insmod needs an uncompressed module unless it was built
    # with module decompression; store plain .ko to stay independent of that.
    *.ko.xz) xz -dc "$file" >"$rootfs/lib/modules/$kver/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$file" >"$rootfs/lib/modules/$kver/${base%.zst}"; base=${base%.zst} ;;
    *.ko.gz) gzip -dc "$file" >"$rootfs/lib/modules/$kver/${base%.gz}"; base=${base%.gz} ;;
    *) cp "$file" "$rootfs/lib/modules/$kver/$base" ;;
  esac
  echo "/lib/modules/$kver/$base" >>"$rootfs/etc/modules-load-order"
done
log "initramfs modules: $(sed 's#.*/##; s#\.ko$##' "$rootfs/etc/modules-load-order" | tr '\n' ' ')"

cat >"$rootfs/usr/share/udhcpc/default.script" <<'EOS'
#!/bin/sh
# Minimal udhcpc hook: configure the lease on the interface, route and DNS.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
EOS

cat >"$rootfs/init" <<'EOS'
#!/bin/sh
# edgeiso test base: a tiny dracut-like live boot (see make-test-base-iso.sh).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
say() { echo "EDGEISO-BASE: $*" >/dev/console; }
say "init started"

for m in $(cat /etc/modules-load-order); do
  insmod "$m" 2>/dev/null
done

label=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=live:CDLABEL=*) label=${arg#root=live:CDLABEL=} ;;
    root=live:LABEL=*) label=${arg#root=live:LABEL=} ;;
  esac
done

# An ISO 9660 volume id lives at byte 32808 (sector 16, offset 40), 32 bytes,
# padded with spaces; "CD001" at byte 32769 marks the volume descriptor.
iso_label() {
  [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 1
  dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | sed 's/ *$//'
}
mkdir -p /run/initramfs/live
found=""
tries=0
while [ -z "$found" ] && [ $tries -lt 300 ]; do
  for dev in /dev/sr* /dev/vd* /dev/sd*; do
    [ -b "$dev" ] || continue
    l=$(iso_label "$dev") || continue
    if [ -z "$label" ] || [ "$l" = "$label" ]; then
      if mount -t iso9660 -o ro "$dev" /run/initramfs/live 2>/dev/null; then
        found=$dev
        break
      fi
    fi
  done
  [ -n "$found" ] && break
  tries=$((tries + 1))
  sleep 0.1
done
if [ -n "$found" ]; then
  say "live medium $found (label ${label:-any}) mounted at /run/initramfs/live"
else
  say "live medium with label ${label:-any} not found"
fi

for ifc in eth0 ens3 enp0s3; do
  [ -e /sys/class/net/$ifc ] || continue
  ip link set lo up
  if udhcpc -i "$ifc" -n -q -t 10 -T 1 -s /usr/share/udhcpc/default.script >/dev/null 2>&1; then
    say "network $ifc $(ip -4 -o addr show dev $ifc | awk '{print $4}')"
  else
    say "network $ifc: no DHCP lease"
  fi
  break
done

# dracut sources its hooks (they need not be executable), in this stage order.
for stage in cmdline pre-udev pre-trigger initqueue pre-mount mount pre-pivot cleanup; do
  for hook in /lib/dracut/hooks/$stage/*.sh; do
    [ -f "$hook" ] || continue
    say "running hook $hook"
    . "$hook"
  done
done
say "hooks done"
sync
poweroff -f
EOS
chmod 0755 "$rootfs/init" "$rootfs/usr/share/udhcpc/default.script"

find "$rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$rootfs" && find . -mindepth 1 | sed 's#^\./##' | sort |
  cpio -o -H newc --reproducible -R 0:0 --quiet) | gzip -9n >"$work/initrd.img"
log "initramfs $(du -h "$work/initrd.img" | cut -f1)"
}

if [ "$layout" = kairos-dracut ]; then
  build_dracut_live
else
  build_busybox_initramfs
fi

# ---------------------------------------------------------------- ISO tree
iso="$work/iso"
mkdir -p "$iso"
cmdline="console=ttyS0 panic=1 root=live:CDLABEL=$volid"

write_stamp() {
  # Something on the medium besides the boot files, readable by hooks.
  printf '%s\n' "edgeiso test base ISO, layout $layout, kernel $kver" >"$iso/EDGEISO-BASE.txt"
}

tmp_out="$out.tmp.$$"
rm -f "$tmp_out"
case "$layout" in
grub-mkrescue)
  command -v grub-mkrescue >/dev/null || die "grub-mkrescue not found"
  mkdir -p "$iso/boot/grub"
  cp "$kernel_dir/vmlinuz" "$iso/boot/vmlinuz"
  cp "$work/initrd.img" "$iso/boot/initrd.img"
  write_stamp
  cat >"$iso/boot/grub/grub.cfg" <<EOC
# edgeiso test base (grub-mkrescue layout)
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=0
set default=0

menuentry "Edge live" {
	linux /boot/vmlinuz $cmdline
	initrd /boot/initrd.img
}

menuentry "Edge live (debug)" {
	linux /boot/vmlinuz $cmdline debug
	initrd /boot/initrd.img
}
EOC
  find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  # grub-mkrescue passes unknown options on to `xorriso -as mkisofs`.
  grub-mkrescue --fonts= --locales= --themes= -o "$tmp_out" "$iso" -- -volid "$volid" >/dev/null 2>"$work/mkrescue.log" ||
    { cat "$work/mkrescue.log" >&2; die "grub-mkrescue failed"; }
  ;;

auroraboot|kairos-dracut)
  for tool in grub-mkimage mkfs.vfat mcopy mmd; do
    command -v "$tool" >/dev/null || die "$tool not found"
  done
  # Debian's dmsquash-live waits forever for a device-mapper snapshot
  # (live-rw) in this small initrd; the overlayfs root, as Kairos uses, works.
  live_extra=""
  [ "$layout" = auroraboot ] || live_extra=" rd.live.overlay.overlayfs=1"
  mkdir -p "$iso/boot/grub2" "$iso/boot/x86_64/loader"
  cp "$kernel_dir/vmlinuz" "$iso/boot/kernel"
  cp "$work/initrd.img" "$iso/boot/initrd"
  [ "$layout" = auroraboot ] || cp "$work/rootfs.squashfs" "$iso/rootfs.squashfs"
  write_stamp
  # Kairos' live grub.cfg picks linuxefi/initrdefi on EFI through variables.
  cat >"$iso/boot/grub2/grub.cfg" <<EOC
search --no-floppy --file --set=root /boot/kernel
set default=0
set timeout=0
set timeout_style=menu
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set linux=linux
set initrd=initrd
if [ "\${grub_cpu}" = "x86_64" -o "\${grub_cpu}" = "i386" ]; then
    if [ "\${grub_platform}" = "efi" ]; then
        set linux=linuxefi
        set initrd=initrdefi
    fi
fi

menuentry "Kairos" --class os --unrestricted {
    echo Loading kernel...
    \$linux (\$root)/boot/kernel cdroot root=live:CDLABEL=$volid rd.live.dir=/ rd.live.squashimg=rootfs.squashfs$live_extra console=tty1 console=ttyS0 panic=1 install-mode
    echo Loading initrd...
    \$initrd (\$root)/boot/initrd
}

menuentry "Kairos (manual)" --class os --unrestricted {
    echo Loading kernel...
    \$linux (\$root)/boot/kernel cdroot root=live:CDLABEL=$volid rd.live.dir=/ rd.live.squashimg=rootfs.squashfs$live_extra console=tty1 console=ttyS0 panic=1
    echo Loading initrd...
    \$initrd (\$root)/boot/initrd
}
EOC
  # The boot images only find the medium and hand over to its grub.cfg, as
  # Kairos' do: kernel command lines live in /boot/grub2/grub.cfg alone.
  cat >"$work/embedded.cfg" <<EOC
search --no-floppy --label $volid --set=root
set prefix=(\$root)/boot/grub2
configfile (\$root)/boot/grub2/grub.cfg
EOC
  grub_mods="search search_label search_fs_file configfile normal linux echo test serial terminal iso9660 part_msdos part_gpt fat all_video"
  # shellcheck disable=SC2086
  grub-mkimage -O i386-pc-eltorito -p /boot/grub2 -c "$work/embedded.cfg" \
    -o "$iso/boot/x86_64/loader/eltorito.img" biosdisk $grub_mods
  # shellcheck disable=SC2086
  grub-mkimage -O x86_64-efi -p /EFI/BOOT -c "$work/embedded.cfg" \
    -o "$work/bootx64.efi" $grub_mods linuxefi efi_gop efi_uga
  efi_kib=$(( ($(stat -c %s "$work/bootx64.efi") / 1024) + 512 ))
  mkfs.vfat --invariant -i 0xed6e150 -n EFI -C "$work/efi.img" "$efi_kib" >/dev/null
  cp "$work/embedded.cfg" "$work/grub.cfg"
  touch -d "@$SOURCE_DATE_EPOCH" "$work/bootx64.efi" "$work/grub.cfg"
  mmd -i "$work/efi.img" ::/EFI ::/EFI/BOOT
  mcopy -m -i "$work/efi.img" "$work/bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -m -i "$work/efi.img" "$work/grub.cfg" ::/EFI/BOOT/grub.cfg
  find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  # The xorriso command AuroraBoot runs, plus appended_part_as=gpt.
  xorriso -report_about SORRY -volid "$volid" -joliet on -padding 0 \
    -outdev "$tmp_out" -map "$iso" / -chmod 0755 -- \
    -boot_image grub bin_path=boot/x86_64/loader/eltorito.img \
    -boot_image grub grub2_mbr=/usr/lib/grub/i386-pc/boot_hybrid.img \
    -boot_image grub grub2_boot_info=on \
    -boot_image any partition_offset=16 \
    -boot_image any cat_path=boot/x86_64/boot.catalog \
    -boot_image any cat_hidden=on \
    -boot_image any boot_info_table=on \
    -boot_image any platform_id=0x00 \
    -boot_image any emul_type=no_emulation \
    -boot_image any load_size=2048 \
    -append_partition 2 0xef "$work/efi.img" \
    -boot_image any appended_part_as=gpt \
    -boot_image any next \
    -boot_image any efi_path=--interval:appended_partition_2:all:: \
    -boot_image any platform_id=0xef \
    -boot_image any emul_type=no_emulation >/dev/null 2>"$work/xorriso.log" ||
    { cat "$work/xorriso.log" >&2; die "xorriso failed"; }
  ;;

isolinux)
  [ -f /usr/lib/ISOLINUX/isolinux.bin ] || die "/usr/lib/ISOLINUX/isolinux.bin not found (package isolinux)"
  mkdir -p "$iso/isolinux" "$iso/boot"
  cp /usr/lib/ISOLINUX/isolinux.bin "$iso/isolinux/"
  cp /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
  cp "$kernel_dir/vmlinuz" "$iso/boot/vmlinuz"
  cp "$work/initrd.img" "$iso/boot/initrd.img"
  write_stamp
  cat >"$iso/isolinux/isolinux.cfg" <<EOC
SERIAL 0 115200
DEFAULT live
PROMPT 0
TIMEOUT 1

LABEL live
  KERNEL /boot/vmlinuz
  APPEND initrd=/boot/initrd.img $cmdline

LABEL live-directive
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND $cmdline debug
EOC
  find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  xorriso -report_about SORRY -as mkisofs -o "$tmp_out" -V "$volid" -J -R \
    -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
    -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table \
    "$iso" >/dev/null 2>"$work/xorriso.log" ||
    { cat "$work/xorriso.log" >&2; die "xorriso failed"; }
  ;;
esac

mv -f "$tmp_out" "$out"
log "$layout base ISO: $out ($(du -h "$out" | cut -f1), volume $volid)"
