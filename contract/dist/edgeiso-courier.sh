#!/bin/sh
# edgeiso-courier DEVICE: load every bundle of a courier stick into the
# site's Harbor (edgeiso-courier@.service runs it; paths follow the node
# layout of edgeiso-contract, paths.rs). The stick is mounted read-only;
# bundles are looked for in /opt/spectrocloud/content on it, else at its
# root. The agent uses the node's agent.yaml: the site's registry, project,
# credentials and, when the site trusts a key, signature checks. A receipt
# (JSON: device, host, times, exit code, result, and what the journal says is
# loaded, with digests) goes back onto the stick when it can be written.
# Exit: the agent's.
#
# The EDGEISO_* variables exist for tests; the unit sets none of them.
set -u
dev=$1
name=$(basename "$dev")
agent=${EDGEISO_AGENT:-/usr/local/edgeiso/bin/edgeiso-agent}
config=${EDGEISO_AGENT_CONFIG:-/usr/local/edgeiso/site/agent.yaml}
state=${EDGEISO_STATE_DIR:-/usr/local/edgeiso/state}
run=${EDGEISO_RUN_DIR:-/run/edgeiso}/courier
mnt=$run/$name
mkdir -p "$mnt"
if ! mount -o ro "$dev" "$mnt"; then
  echo "edgeiso-courier: cannot mount $dev read-only" >&2
  rmdir "$mnt" 2>/dev/null
  exit 1
fi
trap 'umount "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null' EXIT
bundles=$mnt
[ -d "$mnt/opt/spectrocloud/content" ] && bundles=$mnt/opt/spectrocloud/content
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "edgeiso-courier: loading the bundles of $dev from $bundles"
"$agent" load --config "$config" --bundle "$bundles" --deadline 2h --json >"$run/$name.events" 2>"$run/$name.log"
rc=$?
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)
case $rc in 0) result=loaded ;; *) result=failed ;; esac
status=$("$agent" status --state-dir "$state" --json 2>/dev/null) || status=null
host=$(cat /proc/sys/kernel/hostname 2>/dev/null || echo unknown)
receipt="edgeiso-receipt-$host-$(date -u +%Y%m%dT%H%M%SZ).json"
if mount -o remount,rw "$mnt" 2>/dev/null; then
  printf '{"tool": "edgeiso-courier", "device": "%s", "host": "%s", "started": "%s", "finished": "%s", "exitCode": %s, "result": "%s", "journal": %s}\n' \
    "$dev" "$host" "$started" "$finished" "$rc" "$result" "$status" >"$mnt/$receipt.partial" &&
    mv "$mnt/$receipt.partial" "$mnt/$receipt" && sync
  mount -o remount,ro "$mnt" 2>/dev/null
  echo "edgeiso-courier: receipt $receipt written to $dev"
else
  echo "edgeiso-courier: $dev is read-only: no receipt"
fi
echo "edgeiso-courier: $result (agent exit $rc); its log: $run/$name.log"
exit $rc
