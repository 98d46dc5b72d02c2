#!/bin/sh
# edgeiso on kubeadm nodes (Palette PXK-E): what k3s and RKE2 do by
# themselves and kubeadm does not. Run by edgeiso-kubeadm-bootstrap.service;
# paths follow the node layout of edgeiso-contract (paths.rs).
#
# 1. Import the bootstrap image archives (Harbor's own images: they must run
#    before Harbor can serve anything) into containerd's k8s.io namespace,
#    each once: an archive whose size and mtime match its stamp is skipped
#    (the same rule k3s applies to agent/images/ with .cache.json).
# 2. On a control-plane node (the only kind with an admin kubeconfig), apply
#    the site's manifests (Harbor from `harbor.manifests`, the registry
#    credential Secrets, the image-redirect webhook) with server-side apply;
#    the site's manifests win conflicts, as k3s' deploy folder does. Until the
#    API server answers, kubectl fails and systemd starts this again.
#
# The EDGEISO_* variables exist for tests; the unit sets none of them.
set -eu
images=${EDGEISO_IMAGES_DIR:-/usr/local/edgeiso/images}
manifests=${EDGEISO_MANIFESTS_DIR:-/usr/local/edgeiso/site/manifests}
stamps=${EDGEISO_IMPORTED_DIR:-/var/lib/edgeiso/imported}
kubeconfig=${EDGEISO_KUBECONFIG:-/etc/kubernetes/admin.conf}

mkdir -p "$stamps"
for f in "$images"/*.tar; do
  [ -e "$f" ] || continue
  stamp="$stamps/$(basename "$f").stamp"
  now=$(stat -c '%s %Y' "$f")
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$now" ]; then
    continue
  fi
  echo "edgeiso: importing $f into containerd (k8s.io)"
  ctr --namespace k8s.io images import "$f"
  printf '%s\n' "$now" > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
done

[ -f "$kubeconfig" ] || { echo "edgeiso: no $kubeconfig (not a control-plane node): nothing to apply"; exit 0; }
set -- "$manifests"/*.yaml
[ -e "$1" ] || { echo "edgeiso: no manifests in $manifests"; exit 0; }
for m in "$@"; do
  kubectl --kubeconfig "$kubeconfig" apply --server-side --force-conflicts --field-manager=edgeiso -f "$m"
done
echo "edgeiso: applied $# manifest file(s) from $manifests"
