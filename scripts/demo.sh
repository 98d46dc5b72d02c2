#!/usr/bin/env bash
# The built-in demo (the README's main job), on a fresh machine with no
# internet (a Debian mirror is enough):
#   1. install missing Debian packages, build edgeiso and the static agent;
#   2. make sample images and serve them from a throwaway local registry;
#   3. start a second throwaway registry: the site's "Harbor";
#   4. fetch a Debian kernel (apt-get download, never installed) and make a
#      small base installer ISO (AuroraBoot-like: COS_LIVE, GRUB, BIOS+UEFI);
#   5. `edgeiso build`: bundle + render + overlay + remaster + read-back, with
#      a built-in spec whose agent loads the bundle live into the site
#      registry, seen from the VM as 10.0.2.2;
#   6. `edgeiso boot-test`: boot the ISO in QEMU and watch the images arrive;
#   7. one golden, two sites: `edgeiso personalize` makes two sites of that
#      ISO (each its own name and registry), in a time that does not depend
#      on the bundle, and the second site boots into its own registry.
# Everything lives under a temp folder (or $EDGEISO_DEMO_DIR); both
# registries are stopped on exit. DEMO_FIRMWARE=uefi DEMO_MEDIA=usb boots the
# other way.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "dependencies (Debian packages, only what is missing)"
bash scripts/install-test-deps.sh
step "build: edgeiso (release) and the static edgeiso-agent"
cargo build --release --locked -p edgeiso
edgeiso=$PWD/target/release/edgeiso
agent=$(bash scripts/build-agent-static.sh)

work=${EDGEISO_DEMO_DIR:-$(mktemp -d /tmp/edgeiso-demo.XXXXXX)}
mkdir -p "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
start_registry() { # NAME PORT
  cat > "$work/$1.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $work/$1 }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$2 }
log: { level: error }
YML
  docker-registry serve "$work/$1.yml" > "$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$2/v2/" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "registry $1 did not start; see $work/$1.log" >&2
  return 1
}
port=$(free_port)
start_registry source "$port"
site_port=$(free_port)
while [ "$site_port" = "$port" ]; do site_port=$(free_port); done
start_registry site-harbor "$site_port"
store2_port=$(free_port)
while [ "$store2_port" = "$port" ] || [ "$store2_port" = "$site_port" ]; do store2_port=$(free_port); done
start_registry store-2-harbor "$store2_port"

step "sample images -> throwaway source registry 127.0.0.1:$port"
python3 scripts/demo-images.py "$work/images"
for ref in demo/web:1.0 demo/api:2.3 demo/worker:0.9; do
  skopeo copy -q --dest-tls-verify=false "oci:$work/images:$ref" "docker://127.0.0.1:$port/$ref"
  echo "  127.0.0.1:$port/$ref"
done
echo "site registry (stands in for Harbor): http://127.0.0.1:$site_port (http://10.0.2.2:$site_port from the VM)"

step "base installer ISO (Debian kernel + busybox live initramfs, AuroraBoot layout)"
kernel_dir=$(bash scripts/fetch-test-kernel.sh)
bash scripts/make-test-base-iso.sh "$work/base.iso" --layout auroraboot --kernel-dir "$kernel_dir"

cat > "$work/site.yaml" <<YML
# The demo site: two workload images for the site registry, one bootstrap image.
name: demo-site
images:
  - 127.0.0.1:$port/demo/web:1.0
  - 127.0.0.1:$port/demo/api:2.3
bootstrapImages:
  - 127.0.0.1:$port/demo/worker:0.9
registries:
  - host: 127.0.0.1:$port
    insecure: true
harbor:
  url: http://10.0.2.2:$site_port
agent:
  liveLoad: true
YML
step "edgeiso build: bundle, render, overlay, remaster, verify"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
"$edgeiso" build --spec "$work/site.yaml" --base "$work/base.iso" --output "$work/out/demo-site.iso" \
  --agent "$agent" --work-dir "$work/build" --cache "$work/cache"
bundle="$work/build/bundle/content-demo-site.tar"
"$edgeiso" bundle inspect "$bundle"
"$edgeiso" site-iso --user-data "$work/build/overlay/config.yaml" --output "$work/out/demo-site-cidata.iso"

step "edgeiso boot-test: boot in QEMU, the agent pushes from the ISO into the site registry"
echo "site registry before the boot: $(curl -fsS "http://127.0.0.1:$site_port/v2/_catalog")"
"$edgeiso" boot-test "$work/out/demo-site.iso" --firmware "${DEMO_FIRMWARE:-bios}" --media "${DEMO_MEDIA:-cd}" \
  --timeout 5m --registry "http://127.0.0.1:$site_port" --expect-bundle "$bundle" \
  --serial-log "$work/out/boot.log"
echo "site registry after the boot:  $(curl -fsS "http://127.0.0.1:$site_port/v2/_catalog")"
grep -a 'EDGEISO-' "$work/out/boot.log" | tr -d '\r' | sed 's/^/  console: /'

step "one golden, two sites: edgeiso personalize (the ISO above is the golden)"
mkdir -p "$work/sites"
for n in 1 2; do
  p=$site_port; [ "$n" = 2 ] && p=$store2_port
  printf 'site:\n  name: store-%s\n  hostName: edge-%s\n  tags: {store: "%s"}\nharbor:\n  url: http://10.0.2.2:%s\n' \
    "$n" "$n" "$n" "$p" >"$work/sites/store-$n.yaml"
  "$edgeiso" personalize "$work/out/demo-site.iso" --site "$work/sites/store-$n.yaml" --output "$work/out/store-$n.iso"
  "$edgeiso" personalize "$work/out/store-$n.iso" --show 2>&1 | sed -n '1,3p'
done
echo "store-2's registry before its boot: $(curl -fsS "http://127.0.0.1:$store2_port/v2/_catalog")"
"$edgeiso" boot-test "$work/out/store-2.iso" --firmware "${DEMO_FIRMWARE:-bios}" --media "${DEMO_MEDIA:-cd}" \
  --timeout 5m --registry "http://127.0.0.1:$store2_port" --expect-bundle "$bundle" \
  --serial-log "$work/out/store-2-boot.log"
echo "store-2's registry after its boot:  $(curl -fsS "http://127.0.0.1:$store2_port/v2/_catalog")"
grep -a 'EDGEISO-' "$work/out/store-2-boot.log" | tr -d '\r' | sed 's/^/  console: /'
echo
echo "demo files are in $work (ISO: $work/out/demo-site.iso; sites: $work/out/store-1.iso, store-2.iso)"
