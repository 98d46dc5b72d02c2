# Shared by the benchmark scripts: a throwaway docker-registry on loopback.
# shellcheck shell=bash

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_registry DIR -> sets REGISTRY_HOST, REGISTRY_PID; storage under DIR/registry
start_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir/registry"
  cat > "$dir/registry.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $dir/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
log: { level: error }
YML
  docker-registry serve "$dir/registry.yml" > "$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY_HOST=127.0.0.1:$port
  for _ in $(seq 100); do curl -fsS "http://$REGISTRY_HOST/v2/" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "registry did not start: $(tail -5 "$dir/registry.log")" >&2
  return 1
}

# Push every image of an OCI layout (named by ref.name) into the registry.
push_layout() {
  local layout=$1 ref
  for ref in $(python3 -c 'import json,sys; print("\n".join(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open(sys.argv[1]+"/index.json"))["manifests"]))' "$layout"); do
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$layout:$ref" "docker://$REGISTRY_HOST/$ref"
  done
}

make_images() {
  local out=$1; shift
  local script=${EDGEISO_MAKE_IMAGES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/bench/make-images.py}
  [ -f "$script" ] || { echo "make-images.py not found at $script (set EDGEISO_MAKE_IMAGES)" >&2; return 1; }
  python3 "$script" "$out" "$@"
}
