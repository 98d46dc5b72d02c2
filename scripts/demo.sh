#!/usr/bin/env bash
# The built-in demo, on a fresh machine with no internet: make sample images,
# serve them from a throwaway local registry, bundle them with edgeiso, then
# verify and inspect the bundle. Everything lives under a temp folder
# (or $EDGEISO_DEMO_DIR) and the registry is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo build --release --locked -p edgeiso
edgeiso=$PWD/target/release/edgeiso

work=${EDGEISO_DEMO_DIR:-$(mktemp -d /tmp/edgeiso-demo.XXXXXX)}
mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $work/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
log: { level: error }
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== sample images -> throwaway registry 127.0.0.1:$port"
python3 scripts/demo-images.py "$work/images"
for ref in demo/web:1.0 demo/api:2.3 demo/worker:0.9; do
  skopeo copy -q --dest-tls-verify=false "oci:$work/images:$ref" "docker://127.0.0.1:$port/$ref"
done

cat > "$work/site.yaml" <<YML
name: demo-site
images:
  - 127.0.0.1:$port/demo/web:1.0
  - 127.0.0.1:$port/demo/api:2.3
bootstrapImages:
  - 127.0.0.1:$port/demo/worker:0.9
registries:
  - host: 127.0.0.1:$port
    insecure: true
YML
echo "== edgeiso bundle create"
"$edgeiso" bundle create --spec "$work/site.yaml" --output "$work/out" --cache "$work/cache"
echo "== edgeiso bundle verify"
"$edgeiso" bundle verify "$work/out/content-demo-site.tar"
echo "== edgeiso bundle inspect"
"$edgeiso" bundle inspect "$work/out/content-demo-site.tar"
echo "demo files are in $work"
