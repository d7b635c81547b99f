#!/bin/bash
# podman end to end on ONE test-made host namespace: a --no-tun weft node on 127.0.0.1, podman
# 4.x (CNI backend) run inside the namespace with weft-cni as the network's plugin, two busybox
# containers that ping each other, and teardown (podman rm, and a container that exits by itself,
# whose DEL conmon runs with an almost empty environment). Everything is removed in a trap.
#
# Needs root and: podman runc containernetworking-plugins busybox-static catatonit iptables jq
# (Debian 12; INSTALL=1 installs them). Recipe: /work/shared/cni/README.md.
# env: WEFT, WEFT_CNI (default: .build/debug/weft, .build/release/weft-cni — build the plugin with
#      `swift build -c release --product weft-cni --static-swift-stdlib`), KEEP=1 to keep $W.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
WEFT=${WEFT:-$top/.build/debug/weft}
WEFT_CNI=${WEFT_CNI:-$top/.build/release/weft-cni}
SHARED=${SHARED:-/work/shared/cni}
IMG=localhost/ci-busybox:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
if [ "${INSTALL:-0}" = 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman runc containernetworking-plugins busybox-static catatonit iptables jq >/dev/null
fi
for c in podman runc jq nsenter ip busybox; do command -v $c >/dev/null || { echo "SKIP: missing $c"; exit 0; }; done
for b in "$WEFT" "$WEFT_CNI"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done

W=$(mktemp -d /tmp/weftcni-podman.XXXXXX)
H=weftcni-$$-ph
node_pid=""
pass=0; fail=0
T0=$(date +%s%N)
el() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
ok()  { pass=$((pass + 1)); echo "[$(el $T0) ms] ok   - $*"; }
bad() { fail=$((fail + 1)); echo "[$(el $T0) ms] FAIL - $*"; }

pod() { CONTAINERS_CONF=$W/containers.conf nsenter --net=/run/netns/$H podman --root "$W/root" --runroot "$W/run" --tmpdir "$W/tmp" "$@"; }
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W and netns $H"; return; fi
  if [ -d "$W/root" ]; then pod rm -f -t 0 --all >/dev/null 2>&1; pod rmi -f --all >/dev/null 2>&1; fi
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  ip netns del "$H" 2>/dev/null
  grep -o " $W[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W"/{node,net.d,bin,root,run,tmp}
cp "$WEFT_CNI" "$W/bin/weft-cni"
ip netns add "$H" && ip -n "$H" link set lo up
. "$top/tests/cni/lib.sh"
port=$(free_port)
"$WEFT" start --no-tun --data-dir "$W/node" --listen 127.0.0.1:$port --profile fast >"$W/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do "$WEFT" status --data-dir "$W/node" >/dev/null 2>&1 && break; sleep 0.1; done
allocs() { "$WEFT" ipam --data-dir "$W/node" --json | jq -c '[.allocations[] | select(.handle | startswith("cni:")) | {(.handle): .address}] | add // {}'; }

write_containers_conf "$W/containers.conf" "$W/net.d" "$W/bin"
cat >"$W/net.d/weft.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "weft",
  "plugins": [ { "type": "weft-cni", "dataDir": "$W/node", "defaultRoute": true, "logFile": "$W/cni.log" } ]
}
EOF

CONTAINERS_CONF=$W/containers.conf IMG=$IMG PODMAN="nsenter --net=/run/netns/$H podman --root $W/root --runroot $W/run --tmpdir $W/tmp" \
  "$SHARED/build-image.sh" >"$W/build.log" 2>&1 || { cat "$W/build.log"; bad "image import"; exit 1; }
pod network ls --format '{{.Name}}' | grep -qx weft && ok "podman lists network weft" || bad "podman does not list network weft"

declare -A IP
for c in a b; do
  t=$(date +%s%N)
  if pod run -d --name weft-$c --network weft $IMG sleep 300 >"$W/run-$c.log" 2>&1; then ok "podman run weft-$c ($(el $t) ms)"; else bad "podman run weft-$c: $(cat "$W/run-$c.log")"; fi
  IP[$c]=$(pod exec weft-$c ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')
  cid=$(pod inspect -f '{{.Id}}' weft-$c 2>/dev/null)
  want=$(allocs | jq -r --arg h "cni:weft:$cid:eth0" '.[$h] // empty')
  [ -n "$want" ] && [ "${IP[$c]}" = "$want/16" ] && ok "weft-$c has ${IP[$c]}, held by the node for its handle" || bad "weft-$c has '${IP[$c]}', node holds '$want'"
done
grep -o 'cmd=ADD.* ms=[0-9]*' "$W/cni.log" | grep -o 'ms=[0-9]*' | tr '\n' ' ' | sed 's/^/plugin ADD durations: /'; echo
pod exec weft-a ping -c 3 -W 2 "${IP[b]%/*}" >"$W/ping.log" 2>&1 && ok "weft-a pings weft-b: $(grep -o 'round-trip.*' "$W/ping.log")" || bad "ping a -> b: $(cat "$W/ping.log")"
pod exec weft-b ping -c 3 -W 2 "${IP[a]%/*}" >/dev/null 2>&1 && ok "weft-b pings weft-a" || bad "ping b -> a"

for c in a b; do
  t=$(date +%s%N); pod rm -f -t 0 weft-$c >/dev/null 2>&1; echo "podman rm weft-$c took $(el $t) ms"
done
[ "$(allocs)" = "{}" ] && ok "podman rm released both addresses" || bad "allocations left: $(allocs)"
[ "$(ip -n $H -o link show type veth | wc -l)" = 0 ] && ok "no host veth left" || bad "host veths left: $(ip -n $H -o link show type veth)"

# A container that exits by itself: conmon runs the DEL with an almost empty environment.
pod run -d --name weft-short --network weft $IMG sleep 1 >/dev/null 2>&1 || bad "podman run weft-short"
dels() { grep -c 'cmd=DEL .* ok' "$W/cni.log"; }
for _ in $(seq 100); do [ "$(dels)" = 3 ] && break; sleep 0.1; done  # bounded: 10 s
[ "$(dels)" = 3 ] && [ "$(allocs)" = "{}" ] && ok "a container that exited by itself was released by conmon's DEL" || bad "after exit, allocations: $(allocs)"
pod rm -f -t 0 weft-short >/dev/null 2>&1
echo "plugin calls: $(grep -o 'cmd=[A-Z]*' "$W/cni.log" | sort | uniq -c | tr -s ' \n' ' ')"
errors=$(grep -c ' error ' "$W/cni.log")
[ "$errors" = 0 ] && ok "no plugin call failed" || bad "$errors plugin calls failed: $(grep ' error ' "$W/cni.log" | head -3)"
echo "total $(el $T0) ms"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
