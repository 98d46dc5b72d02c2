#!/usr/bin/env bash
# Push a one-layer image whose layer is SIZE bytes of random data into a
# plain-HTTP registry, streaming with curl (nothing held in memory).
# Usage: push-big-image.sh HOST REPO TAG SIZE [WORKDIR]
set -euo pipefail
host=$1 repo=$2 tag=$3 size=$4 work=${5:-/var/tmp}
layer=$(mktemp "$work/big-layer.XXXXXX")
trap 'rm -f "$layer"' EXIT
head -c "$size" /dev/urandom > "$layer"

# upload FILE DIGEST: monolithic POST + PUT
upload() {
  local loc sep
  loc=$(curl -fsS -X POST -D - -o /dev/null "http://$host/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case $loc in http*) ;; *) loc="http://$host$loc" ;; esac
  sep='?'; case $loc in *\?*) sep='&' ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --upload-file "$1" "$loc${sep}digest=$2" >/dev/null
}
digest=sha256:$(sha256sum "$layer" | cut -d' ' -f1)
upload "$layer" "$digest"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$digest" > "$layer.cfg"
cfg_digest=sha256:$(sha256sum "$layer.cfg" | cut -d' ' -f1)
upload "$layer.cfg" "$cfg_digest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
  "$cfg_digest" "$(stat -c %s "$layer.cfg")" "$digest" "$size" > "$layer.man"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --upload-file "$layer.man" "http://$host/v2/$repo/manifests/$tag" >/dev/null
rm -f "$layer.cfg" "$layer.man"
echo "$host/$repo:$tag"
