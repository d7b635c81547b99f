#!/bin/sh
# weft-node: the Weft DaemonSet's node container (deploy/kubernetes/daemonset.yaml). Starts
# `weft start` with this host's address and the cluster key, and decides once, from the data dir
# on the host (hostPath), whether this node creates the cluster, joins it or restarts:
#   data dir has weft.db                 -> restart (stored members; the seeds are passed too)
#   empty, node name = WEFT_BOOTSTRAP_NODE -> create the cluster with the Secret's key
#   empty, otherwise                     -> join through the seeds (exit 1 if there are none
#                                           yet: the kubelet restarts the pod with back-off)
# Environment (the DaemonSet sets the first three from the downward API and the Secret):
#   WEFT_NODE_IP           this host's address (status.hostIP); the node listens on IP:WEFT_PORT
#   WEFT_NODE_NAME         the Kubernetes node name (spec.nodeName): the Weft member name
#   WEFT_CLUSTER_KEY_FILE  the cluster key (default /etc/weft/key/cluster.key, a Secret volume)
#   WEFT_SEEDS             comma list of HOST:PORT (host names are resolved by weft, once)
#   WEFT_SEED_SERVICE      a headless Service's DNS name: every address it resolves to (this
#                          host's excepted) becomes a seed IP:WEFT_PORT
#   WEFT_BOOTSTRAP_NODE    the node that creates the cluster when its data dir is empty
#   WEFT_PORT (7946), WEFT_DATA_DIR (/var/lib/weft), WEFT_EXTRA_ARGS (more `weft start` flags)
set -eu
data=${WEFT_DATA_DIR:-/var/lib/weft}
port=${WEFT_PORT:-7946}
ip=${WEFT_NODE_IP:-}
[ -n "$ip" ] || { echo "weft-node: WEFT_NODE_IP is not set (the DaemonSet sets it from status.hostIP)" >&2; exit 2; }
name=${WEFT_NODE_NAME:-$(hostname)}
keyfile=${WEFT_CLUSTER_KEY_FILE:-/etc/weft/key/cluster.key}
[ -s "$keyfile" ] || { echo "weft-node: cluster key $keyfile is missing or empty: create the Secret (deploy/kubernetes/README.md)" >&2; exit 2; }

seeds=""
add_seed() {
  case "$1" in "" | "$ip" | "$ip:$port") return ;; esac
  case ",$seeds," in *",$1,"*) return ;; esac
  seeds="${seeds:+$seeds,}$1"
}
old_ifs=$IFS; IFS=,
for s in ${WEFT_SEEDS:-}; do add_seed "$s"; done
IFS=$old_ifs
if [ -n "${WEFT_SEED_SERVICE:-}" ]; then
  for a in $(nslookup "$WEFT_SEED_SERVICE" 2>/dev/null | awk '/^Name:/ {n = 1} n && /^Address/ {print $NF}'); do
    case "$a" in *:*) continue ;; esac   # IPv4 only
    add_seed "$a:$port"
  done
fi

set -- start --data-dir "$data" --listen "$ip:$port" --name "$name" --cluster-key-file "$keyfile"
if [ -e "$data/weft.db" ]; then
  echo "weft-node: $data/weft.db exists: restarting (seeds: ${seeds:-none})" >&2
elif [ -n "${WEFT_BOOTSTRAP_NODE:-}" ] && [ "$WEFT_BOOTSTRAP_NODE" = "$name" ]; then
  echo "weft-node: empty $data on the bootstrap node $name: creating the cluster" >&2
  seeds=""
elif [ -z "$seeds" ]; then
  echo "weft-node: empty $data and no seed yet (WEFT_SEEDS, WEFT_SEED_SERVICE=${WEFT_SEED_SERVICE:-unset}): nothing to join; exiting so the pod is retried" >&2
  exit 1
else
  echo "weft-node: empty $data: joining through $seeds" >&2
fi
[ -n "$seeds" ] && set -- "$@" --seed "$seeds"
# shellcheck disable=SC2086  # WEFT_EXTRA_ARGS is a list of flags on purpose
exec /usr/bin/weft "$@" ${WEFT_EXTRA_ARGS:-}
