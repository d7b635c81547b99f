#!/bin/bash
# vxlan-podman.sh: podman containers on two simulated hosts whose weft nodes run
# --data-plane vxlan --accept-unencrypted (docs/vxlan.md): weft-cni and DNS unchanged on top.
#
#   netns weft-vxp-<pid>-a                              netns weft-vxp-<pid>-b
#   [A1] [A2]   veth (weft-cni: /32 route + proxy ARP)  [B1]
#   weft0 (kernel VXLAN of node A, vni 42, udp 4789)    weft0 (kernel VXLAN of node B)
#   wpu-a 198.51.100.1/24 ======= underlay veth ======= wpu-b 198.51.100.2/24
#
# podman is driven as in podman-two-hosts.sh (CNI backend, per-host containers.conf, the image
# imported by build-image.sh, never pulled). Checks: membership, weft0 is a VXLAN device,
# containers get 10.42/16 addresses held by their node, container MTU = weft0 MTU (underlay - 50),
# pings across hosts and on one host, a 20 MiB HTTP transfer intact, the cluster DNS name of B1
# resolves from A1, and the underlay carries VXLAN (udp 4789) with the plaintext marker visible.
# Needs root, podman, runc, containernetworking-plugins, busybox-static, jq, python3.
# Output: one line per check, then `N passed, M failed`.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/cni/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-${WEFT:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-${WEFT_CNI:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}}
SHARED=${SHARED:-/work/shared/cni}
SIZE_MB=${SIZE_MB:-20}
IMG=localhost/ci-busybox:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
if [ "${INSTALL:-0}" = 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman runc containernetworking-plugins busybox-static catatonit iptables jq iproute2 >/dev/null 2>&1 \
    || { echo "SKIP: podman cannot be installed (apt-get failed)"; exit 0; }
fi
for c in podman runc conmon jq nsenter ip busybox timeout md5sum; do
  command -v $c >/dev/null || { echo "SKIP: missing $c (INSTALL=1 installs the packages)"; exit 0; }
done
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done
[ -x "$SHARED/build-image.sh" ] || { echo "SKIP: $SHARED/build-image.sh not found (set SHARED=)"; exit 0; }

W=$(mktemp -d /tmp/weft-vxp.XXXXXX)
chmod 0755 "$W"
NS_PREFIX=weft-vxp-$$
declare -A NS=([a]=$NS_PREFIX-a [b]=$NS_PREFIX-b)
declare -A UNDER=([a]=198.51.100.1 [b]=198.51.100.2)
declare -A IFU=([a]=wpu-a [b]=wpu-b)
declare -A NODE_PID=()
PORT=7946
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }

# pod HOST args… : podman acting as HOST (its netns, config, storage), bounded by a timeout.
pod() {
  local h=$1; shift
  CONTAINERS_CONF=$W/$h/containers.conf timeout 90 nsenter --net=/run/netns/${NS[$h]} \
    podman --root "$W/$h/root" --runroot "$W/$h/run" --tmpdir "$W/$h/tmp" "$@"
}
weft() { local h=$1; shift; timeout 20 "$WEFT_BIN" "$@" --data-dir "$W/$h/node"; }

cleanup() {
  local rc=$?
  if [ -n "${LOGS_TO:-}" ]; then mkdir -p "$LOGS_TO" && for h in a b; do cp "$W/$h/node.log" "$LOGS_TO/node-$h.log"; cp "$W/$h/cni.log" "$LOGS_TO/cni-$h.log"; done 2>/dev/null; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W, netns ${NS[a]} ${NS[b]}, node pids ${NODE_PID[*]:-}"; return; fi
  for h in a b; do
    [ -d "$W/$h/root" ] || continue
    pod $h rm -f -t 0 --all >/dev/null 2>&1
    pod $h rmi -f --all >/dev/null 2>&1
  done
  for h in "${!NODE_PID[@]}"; do
    local p=${NODE_PID[$h]}
    kill "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done   # bounded: 5 s
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for h in a b; do ip netns del "${NS[$h]}" 2>/dev/null; done   # takes the veths and TUNs along
  awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- hosts + underlay ----------------------------------------------------------------------
for h in a b; do
  ip netns add "${NS[$h]}" || { echo "SKIP: cannot create netns ${NS[$h]}"; exit 0; }
done
ip link add ${IFU[a]} netns ${NS[a]} type veth peer name ${IFU[b]} netns ${NS[b]}
for h in a b; do
  ip -n ${NS[$h]} link set lo up
  ip -n ${NS[$h]} addr add ${UNDER[$h]}/24 dev ${IFU[$h]}
  ip -n ${NS[$h]} link set ${IFU[$h]} up
  mkdir -p "$W/$h"/{node,net.d,root,run,tmp}
done
say "namespaces ${NS[a]}, ${NS[b]} joined by ${IFU[a]}(${UNDER[a]}) <-> ${IFU[b]}(${UNDER[b]})"


# ---- weft nodes on the kernel VXLAN data plane ------------------------------------------------
VX="--data-plane vxlan --accept-unencrypted"
nsenter --net=/run/netns/${NS[a]} "$WEFT_BIN" start --data-dir "$W/a/node" --listen ${UNDER[a]}:$PORT \
  --name host-a --profile fast $VX >"$W/a/node.log" 2>&1 &
NODE_PID[a]=$!
for _ in $(seq 150); do [ -s "$W/a/node/cluster.key" ] && weft a status >/dev/null 2>&1 && break; sleep 0.1; done  # ≤ 15 s
[ -s "$W/a/node/cluster.key" ] || { bad "node A did not start: $(tail -5 "$W/a/node.log")"; echo "$PASS passed, $FAIL failed"; exit 1; }
cp "$W/a/node/cluster.key" "$W/cluster.key"
nsenter --net=/run/netns/${NS[b]} "$WEFT_BIN" start --data-dir "$W/b/node" --listen ${UNDER[b]}:$PORT \
  --seed ${UNDER[a]}:$PORT --cluster-key-file "$W/cluster.key" --name host-b --profile fast $VX >"$W/b/node.log" 2>&1 &
NODE_PID[b]=$!
say "nodes started (pids ${NODE_PID[a]} ${NODE_PID[b]})"

members_ok() { # both see 2 alive and have an overlay address
  local h s
  for h in a b; do
    s=$(weft $h status --json 2>/dev/null) || return 1
    [ "$(jq -r '.members.alive // 0' <<<"$s")" = 2 ] || return 1
    [ -n "$(jq -r '.overlayAddress // empty' <<<"$s")" ] || return 1
  done
}
t=$(date +%s%N)
for _ in $(seq 200); do members_ok && break; sleep 0.1; done  # ≤ 20 s
declare -A OVL
for h in a b; do OVL[$h]=$(weft $h status --json 2>/dev/null | jq -r '.overlayAddress // empty'); done
if members_ok; then ok "both nodes see 2 alive members and have overlay addresses (A ${OVL[a]}, B ${OVL[b]}) after $(ms $t) ms"
else
  bad "membership/overlay: A=$(weft a status --json 2>&1 | jq -c '{members,overlayAddress,warnings}' 2>&1) B=$(weft b status --json 2>&1 | jq -c '{members,overlayAddress,warnings}' 2>&1)"
fi
for h in a b; do
  ip -n ${NS[$h]} -o -4 addr show weft0 2>/dev/null | grep -q "inet ${OVL[$h]:-none}/" \
    && ok "weft0 on host $h is up with ${OVL[$h]}" || bad "weft0 on host $h: $(ip -n ${NS[$h]} -o addr show weft0 2>&1)"
done

# ---- podman per host ---------------------------------------------------------------------
# weft-cni must be found as "<plugin dir>/weft-cni": use its own folder when it has that name.
for h in a b; do
  d=$(ip -n ${NS[$h]} -d -o link show weft0 2>/dev/null)
  grep -q "vxlan id 42 " <<<"$d" && grep -q "dstport 4789 " <<<"$d" && [ "$(weft $h status --json | jq -r .dataPlane)" = "vxlan (unencrypted)" ] \
    && ok "weft0 on host $h is a kernel VXLAN device (vni 42, port 4789), status says vxlan (unencrypted)" || bad "weft0 on host $h: $d"
done
# weft-cni must be found as "<plugin dir>/weft-cni": use its own folder when it has that name.
if [ "$(basename "$WEFT_CNI_BIN")" = weft-cni ]; then PLUGIN_DIR=$(cd "$(dirname "$WEFT_CNI_BIN")" && pwd)
else mkdir -p "$W/bin"; cp "$WEFT_CNI_BIN" "$W/bin/weft-cni"; PLUGIN_DIR=$W/bin; fi
for h in a b; do
  write_containers_conf "$W/$h/containers.conf" "$W/$h/net.d" "$PLUGIN_DIR"
  cat >"$W/$h/net.d/weft.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "weft",
  "plugins": [ { "type": "weft-cni", "dataDir": "$W/$h/node", "logFile": "$W/$h/cni.log" } ]
}
EOF
  t=$(date +%s%N)
  CONTAINERS_CONF=$W/$h/containers.conf IMG=$IMG \
    PODMAN="timeout 60 nsenter --net=/run/netns/${NS[$h]} podman --root $W/$h/root --runroot $W/$h/run --tmpdir $W/$h/tmp" \
    "$SHARED/build-image.sh" >"$W/$h/build.log" 2>&1 || { bad "image import on host $h: $(tail -3 "$W/$h/build.log")"; }
  say "image imported on host $h in $(ms $t) ms"
  pod $h network ls --format '{{.Name}}' 2>/dev/null | grep -qx weft \
    && ok "podman network ls on host $h shows weft" || bad "podman network ls on host $h: $(pod $h network ls 2>&1 | tr '\n' ' ')"
done

# allocs HOST: {handle: address} of the node's cni: allocations
allocs() { weft $1 ipam --json 2>/dev/null | jq -c '[.allocations[] | select(.handle | startswith("cni:")) | {(.handle): .address}] | add // {}'; }
declare -A HOSTOF=([A1]=a [A2]=a [A3]=a [B1]=b) CIP=() CID=()
start_ctr() { # start_ctr NAME: run it, then check its address ∈ 10.42/16 and held by its node
  local n=$1 h=${HOSTOF[$1]} t; t=$(date +%s%N)
  if pod $h run -d --name $n --network weft $IMG sleep 300 >"$W/run-$n.log" 2>&1; then
    ok "podman run $n on host $h ($(ms $t) ms)"
  else bad "podman run $n on host $h: $(tail -3 "$W/run-$n.log")"; return; fi
  local cidr; cidr=$(pod $h exec $n ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')
  CID[$n]=$(pod $h inspect -f '{{.Id}}' $n 2>/dev/null)
  CIP[$n]=${cidr%/*}
  local held; held=$(allocs $h | jq -r --arg k "cni:weft:${CID[$n]}:eth0" '.[$k] // empty')
  if [[ "$cidr" =~ ^10\.42\.[0-9]+\.[0-9]+/16$ ]] && [ "$held" = "${CIP[$n]}" ]; then
    ok "$n has $cidr in 10.42.0.0/16, listed by node $h's weft ipam for its handle"
  else bad "$n has '$cidr', node $h holds '$held' for cni:weft:${CID[$n]:-?}:eth0"; fi
  local cmtu tmtu; cmtu=$(pod $h exec $n cat /sys/class/net/eth0/mtu 2>/dev/null)
  tmtu=$(ip -n ${NS[$h]} -j link show weft0 2>/dev/null | jq -r '.[0].mtu')
  [ -n "$cmtu" ] && [ "$cmtu" = "$tmtu" ] && ok "$n's eth0 MTU $cmtu = weft0's on host $h" || bad "$n's eth0 MTU '$cmtu', weft0 on host $h '$tmtu'"
}
start_ctr A1; start_ctr A2; start_ctr B1
say "plugin ADD durations (ms): $(cat "$W"/{a,b}/cni.log 2>/dev/null | grep 'cmd=ADD .* ok' | grep -o 'ms=[0-9]*' | cut -d= -f2 | tr '\n' ' ')"

# ---- pings ----------------------------------------------------------------------------------
ping_ctr() { # ping_ctr FROM TO
  local f=$1 to=$2
  if pod ${HOSTOF[$f]} exec $f ping -c 3 -W 3 ${CIP[$to]:-0.0.0.0} >"$W/ping-$f-$to.log" 2>&1; then
    ok "$f (${CIP[$f]}) pings $to (${CIP[$to]}) [$([ ${HOSTOF[$f]} = ${HOSTOF[$to]} ] && echo same host || echo cross-host)]: $(grep -o 'round-trip.*' "$W/ping-$f-$to.log")"
  else bad "$f pings $to: $(tail -2 "$W/ping-$f-$to.log" | tr '\n' ' ')"; fi
}
ping_ctr A1 B1; ping_ctr A1 A2; ping_ctr B1 A1

# ---- TCP transfer across hosts: busybox httpd on B1, wget on A1 -----------------------------
SIZE=$((SIZE_MB * 1048576))
pod b exec B1 sh -c "mkdir -p /www && dd if=/dev/urandom of=/www/blob bs=1048576 count=$SIZE_MB 2>/dev/null" || bad "creating /www/blob in B1"
pod b exec -d B1 httpd -f -p 8080 -h /www >/dev/null 2>&1 || bad "starting httpd in B1"
src_md5=$(pod b exec B1 md5sum /www/blob 2>/dev/null | awk '{print $1}')
for _ in $(seq 30); do pod b exec B1 sh -c 'netstat -ltn 2>/dev/null | grep -q ":8080 "' && break; sleep 0.1; done
t=$(date +%s%N)
pod a exec A1 timeout 60 wget -q -O /tmp/blob "http://${CIP[B1]:-0.0.0.0}:8080/blob" >"$W/wget.log" 2>&1
dt=$(ms $t)
read -r got_size got_md5 < <(pod a exec A1 sh -c 'echo $(wc -c </tmp/blob) $(md5sum /tmp/blob)' 2>/dev/null | awk '{print $1, $2}')
if [ "${got_size:-0}" = "$SIZE" ] && [ -n "$src_md5" ] && [ "${got_md5:-}" = "$src_md5" ]; then
  ok "$SIZE_MB MiB over TCP B1 -> A1 intact: md5 $got_md5, $dt ms"
else bad "transfer B1 -> A1: size ${got_size:-?} (want $SIZE), md5 ${got_md5:-?} (want ${src_md5:-?}); $(tail -2 "$W/wget.log")"; fi

# ---- DNS: B1's name from A1 through the node's resolver on its overlay address --------------
dns=$(weft a status --json | jq -r '.dnsAddress // empty'); dns=${dns%:*}
if [ -n "$dns" ]; then
  for _ in $(seq 50); do r=$(pod a exec A1 nslookup B1.weft.internal "$dns" 2>&1) && grep -q "${CIP[B1]:-none}" <<<"$r" && break; sleep 0.2; done
  grep -q "${CIP[B1]:-none}" <<<"$r" && ok "DNS: A1 resolves B1.weft.internal to ${CIP[B1]} via $dns" || bad "DNS: $(tr '\n' ' ' <<<"$r" | head -c 300)"
else bad "DNS: node a reports no DNS address"; fi

# ---- the underlay carries VXLAN with the inner packets in clear --------------------------------
cat >"$W/sniff.py" <<'PY'
import select, socket, sys, os, time
marker, stop, ready, ifname = sys.argv[1].encode(), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((ifname, 0))
vx = hit = 0
open(ready, "w").close()
end = time.time() + 20
while time.time() < end and not os.path.exists(stop):
    if select.select([s], [], [], 0.2)[0]:
        d = s.recv(65535)
        if len(d) > 50 and d[12:14] == b"\x08\x00" and d[23] == 17 and int.from_bytes(d[36:38], "big") == 4789 and d[42] == 0x08:
            vx += 1
            if marker in d: hit += 1
print(vx, hit)
PY
MARK=WEFT-VXLAN-MARKER-$$
pod b exec B1 sh -c "i=0; while [ \$i -lt 2000 ]; do echo $MARK; i=\$((i+1)); done > /www/marker" || bad "creating /www/marker in B1"
rm -f "$W/sniff.stop" "$W/sniff.ready"
timeout 30 nsenter --net=/run/netns/${NS[a]} python3 "$W/sniff.py" "$MARK" "$W/sniff.stop" "$W/sniff.ready" ${IFU[a]} >"$W/sniff.out" 2>&1 &
sp=$!
for _ in $(seq 50); do [ -e "$W/sniff.ready" ] && break; sleep 0.1; done
pod a exec A1 timeout 20 wget -q -O /tmp/marker "http://${CIP[B1]:-0.0.0.0}:8080/marker" >/dev/null 2>&1
sleep 0.3; touch "$W/sniff.stop"; wait $sp
read -r vx hit <"$W/sniff.out"
[ "${vx:-0}" -ge 5 ] && [ "${hit:-0}" -ge 1 ] && ok "underlay ${IFU[a]}: $vx VXLAN (udp 4789) frames, the container's marker readable in $hit (unencrypted, as documented)" \
  || bad "sniffer: $(cat "$W/sniff.out")"

echo "$PASS passed, $FAIL failed"
