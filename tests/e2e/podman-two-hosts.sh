#!/bin/bash
# podman-two-hosts.sh: Weft end to end with real containers on two simulated hosts.
#
#   netns weft-pod-<pid>-a                              netns weft-pod-<pid>-b
#   [A1] [A2] (later A3, A-short)                       [B1]
#     | veth (weft-cni: /32 route + proxy ARP)            | veth
#   weft0 (TUN of node A, 10.42.0.0/16)                 weft0 (TUN of node B)
#   node A: weft start (creates the cluster)            node B: weft start --seed A --cluster-key-file
#   wpu-a 198.51.100.1/24 ======= underlay veth ======= wpu-b 198.51.100.2/24  (UDP 7946, encrypted)
#
# podman 4.3 (CNI backend) runs per host as `nsenter --net=/run/netns/HOST podman --root …`
# with its own containers.conf and a CNI network "weft" = {"type": "weft-cni", "dataDir": <node's>}.
# Checks: membership + overlay addresses, `podman network ls`, container addresses held by the
# node (`weft ipam --json`), pings across hosts and on one host, a 20 MiB HTTP transfer across
# hosts (md5 + size) whose bytes show up on both weft0 TUN counters, no plaintext on the underlay
# (raw-socket sniffer, python3 if present), `weft peers` established,
# address release on `podman rm` and reuse, release when a container exits by itself (conmon's DEL).
#
# Everything lives in namespaces named weft-pod-<pid>-*, underlay 198.51.100.0/24; nothing is
# changed in the namespace the script runs in. An EXIT trap removes containers, images, storage
# (unmounted first), the nodes (by PID), the namespaces and with them every link.
#
# Needs root and (Debian 12): podman runc containernetworking-plugins busybox-static catatonit
#   iptables jq iproute2 util-linux (nsenter) coreutils (timeout). INSTALL=1 apt-get installs them.
# env: WEFT_BIN      weft binary      (default .build/release/weft, else .build/debug/weft)
#      WEFT_CNI_BIN  weft-cni binary  (default .build/release/weft-cni; build it with
#                    `swift build -c release --product weft-cni --static-swift-stdlib`)
#      SHARED        folder with build-image.sh (default /work/shared/cni, else this repo's copy)
#      SIZE_MB       transfer size (default 20); KEEP=1 leaves everything for debugging;
#      LOGS_TO=DIR   copy the nodes' and the plugin's logs there before cleaning up.
# Output: one line per check with the elapsed time, then exactly one line `N passed, M failed`.
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
[ -c /dev/net/tun ] || { echo "SKIP: /dev/net/tun missing"; exit 0; }

W=$(mktemp -d /tmp/weft-pod.XXXXXX)
chmod 0755 "$W"
NS_PREFIX=weft-pod-$$
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

# ---- weft nodes with real TUNs (started inside the host namespaces) -------------------------
nsenter --net=/run/netns/${NS[a]} "$WEFT_BIN" start --data-dir "$W/a/node" --listen ${UNDER[a]}:$PORT \
  --name host-a --profile fast >"$W/a/node.log" 2>&1 &
NODE_PID[a]=$!
for _ in $(seq 150); do [ -s "$W/a/node/cluster.key" ] && weft a status >/dev/null 2>&1 && break; sleep 0.1; done  # ≤ 15 s
[ -s "$W/a/node/cluster.key" ] || { bad "node A did not start: $(tail -5 "$W/a/node.log")"; echo "$PASS passed, $FAIL failed"; exit 1; }
cp "$W/a/node/cluster.key" "$W/cluster.key"
nsenter --net=/run/netns/${NS[b]} "$WEFT_BIN" start --data-dir "$W/b/node" --listen ${UNDER[b]}:$PORT \
  --seed ${UNDER[a]}:$PORT --cluster-key-file "$W/cluster.key" --name host-b --profile fast >"$W/b/node.log" 2>&1 &
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
tun_bytes() { ip -n ${NS[$1]} -s -j link show weft0 2>/dev/null | jq -r ".[0].stats64.$2.bytes // 0"; }
SIZE=$((SIZE_MB * 1048576))
pod b exec B1 sh -c "mkdir -p /www && dd if=/dev/urandom of=/www/blob bs=1048576 count=$SIZE_MB 2>/dev/null" \
  || bad "creating /www/blob in B1"
pod b exec -d B1 httpd -f -p 8080 -h /www >/dev/null 2>&1 || bad "starting httpd in B1"
src_md5=$(pod b exec B1 md5sum /www/blob 2>/dev/null | awk '{print $1}')
for _ in $(seq 30); do pod b exec B1 sh -c 'netstat -ltn 2>/dev/null | grep -q ":8080 "' && break; sleep 0.1; done  # ≤ 3 s+
rxA0=$(tun_bytes a rx); txB0=$(tun_bytes b tx)
t=$(date +%s%N)
pod a exec A1 timeout 60 wget -q -O /tmp/blob "http://${CIP[B1]:-0.0.0.0}:8080/blob" >"$W/wget.log" 2>&1
dt=$(ms $t)
read -r got_size got_md5 < <(pod a exec A1 sh -c 'echo $(wc -c </tmp/blob) $(md5sum /tmp/blob)' 2>/dev/null | awk '{print $1, $2}')
rxA1=$(tun_bytes a rx); txB1=$(tun_bytes b tx)
if [ "${got_size:-0}" = "$SIZE" ] && [ -n "$src_md5" ] && [ "${got_md5:-}" = "$src_md5" ]; then
  ok "$SIZE_MB MiB over TCP B1 -> A1 (httpd/wget) intact: $got_size bytes, md5 $got_md5, $dt ms ($(awk -v b=$SIZE -v t=$dt 'BEGIN{printf "%.0f", b*8/1e6/(t/1000)}') Mbit/s)"
else bad "transfer B1 -> A1: size ${got_size:-?} (want $SIZE), md5 ${got_md5:-?} (want ${src_md5:-?}); $(tail -2 "$W/wget.log")"; fi
drx=$((rxA1 - rxA0)); dtx=$((txB1 - txB0))
[ "$drx" -ge "$SIZE" ] && ok "weft0 on host a received $drx bytes during the transfer (>= $SIZE)" \
  || bad "weft0 on host a rx rose by $drx bytes only (want >= $SIZE)"
[ "$dtx" -ge "$SIZE" ] && ok "weft0 on host b sent $dtx bytes during the transfer (>= $SIZE)" \
  || bad "weft0 on host b tx rose by $dtx bytes only (want >= $SIZE)"

# ---- the underlay carries only ciphertext ---------------------------------------------------
# A raw-socket sniffer in host a watches the underlay veth and, as a positive control, A1's host
# veth, while A1 fetches a file full of a marker from B1: the marker must show up on the
# container's veth and never on the underlay (where the UDP tunnel packets must be seen).
if command -v python3 >/dev/null; then
  cat >"$W/sniff.py" <<'PY'
import select, socket, sys, os, time
marker, stop, ready = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
socks = {}
for ifname in sys.argv[4:]:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((ifname, 0)); socks[s] = ifname
seen = {n: [0, 0, 0] for n in socks.values()}          # frames, udp/7946 frames, frames with marker
open(ready, "w").close()
end = time.time() + 20
while time.time() < end and not os.path.exists(stop):
    for s in select.select(list(socks), [], [], 0.2)[0]:
        d = s.recv(65535); c = seen[socks[s]]; c[0] += 1
        if len(d) > 37 and d[12:14] == b"\x08\x00" and d[23] == 17 and 7946 in (int.from_bytes(d[34:36], "big"), int.from_bytes(d[36:38], "big")): c[1] += 1
        if marker in d: c[2] += 1
u, v = seen[sys.argv[4]], seen[sys.argv[5]]   # underlay, container veth
print(u[1], u[2], v[2], " ".join("%s=frames:%d,udp7946:%d,marker:%d" % (n, *c) for n, c in seen.items()))
PY
  MARK=WEFT-PLAINTEXT-MARKER-$$
  pod b exec B1 sh -c "i=0; while [ \$i -lt 2000 ]; do echo $MARK; i=\$((i+1)); done > /www/marker" || bad "creating /www/marker in B1"
  a1veth=$(ip -n ${NS[a]} -o route show "${CIP[A1]:-0.0.0.0}" 2>/dev/null | awk '{print $3}')
  rm -f "$W/sniff.stop" "$W/sniff.ready"
  timeout 30 nsenter --net=/run/netns/${NS[a]} python3 "$W/sniff.py" "$MARK" "$W/sniff.stop" "$W/sniff.ready" ${IFU[a]} "${a1veth:-lo}" >"$W/sniff.out" 2>&1 &
  sp=$!
  for _ in $(seq 50); do [ -e "$W/sniff.ready" ] && break; sleep 0.1; done
  pod a exec A1 timeout 20 wget -q -O /tmp/marker "http://${CIP[B1]:-0.0.0.0}:8080/marker" >/dev/null 2>&1
  sleep 0.3; touch "$W/sniff.stop"; wait $sp
  read -r udp hit_u hit_v _ <"$W/sniff.out"
  if [ "${udp:-0}" -ge 10 ] && [ "${hit_u:-1}" = 0 ] && [ "${hit_v:-0}" -ge 1 ]; then
    ok "underlay ${IFU[a]} carried $udp tunnel datagrams and no plaintext marker; A1's veth ${a1veth} saw it in $hit_v frames"
  else bad "sniffer (underlay udp/marker frames, veth marker frames): $(cat "$W/sniff.out")"; fi
else say "skip - python3 missing: the plaintext-on-underlay check is not run"; fi

# ---- tunnels established ----------------------------------------------------------------------
for h in a b; do
  o=$([ $h = a ] && echo b || echo a)
  p=$(weft $h peers --json 2>/dev/null | jq -c --arg n host-$o '[.[] | select(.name == $n)][0] // {} | {state, endpoint, rxBytes, txBytes}')
  [ "$(jq -r .state <<<"$p")" = established ] && ok "node $h: peer host-$o established $p" || bad "node $h peer host-$o: $p"
done

# ---- release on podman rm, and reuse ----------------------------------------------------------
a2ip=${CIP[A2]:-none}; a2h="cni:weft:${CID[A2]:-none}:eth0"
t=$(date +%s%N); pod a rm -f -t 0 A2 >/dev/null 2>&1; say "podman rm A2 took $(ms $t) ms"
al=$(allocs a)
if [ "$(jq -r --arg k "$a2h" 'has($k)' <<<"$al")" = false ] && ! jq -e --arg ip "$a2ip" 'to_entries | any(.value == $ip)' <<<"$al" >/dev/null; then
  ok "podman rm A2 released $a2ip (handle and address gone from node a's allocations)"
else bad "after podman rm A2, node a still holds: $al"; fi
[ "$(ip -n ${NS[a]} -o link show type veth | grep -c ': wft')" = 1 ] && ok "A2's host veth removed (only A1's is left)" \
  || bad "host veths on a: $(ip -n ${NS[a]} -o link show type veth | awk -F': ' '{print $2}' | tr '\n' ' ')"
start_ctr A3
al=$(allocs a)
others=$(jq -r --arg ip "$a2ip" --arg k "cni:weft:${CID[A3]:-none}:eth0" '[to_entries[] | select(.value == $ip and .key != $k)] | length' <<<"$al")
[ "$others" = 0 ] && ok "A3 got ${CIP[A3]:-?} ($([ "${CIP[A3]:-}" = "$a2ip" ] && echo "the released address again" || echo "a free address")); $a2ip is not held by anyone else" \
  || bad "released address $a2ip is still held by another handle: $al"
ping_ctr A3 B1

# ---- a container that exits by itself: conmon's DEL releases it -------------------------------
t=$(date +%s%N)
if pod a run -d --name A-short --network weft $IMG sleep 2 >"$W/run-short.log" 2>&1; then
  sid=$(pod a inspect -f '{{.Id}}' A-short 2>/dev/null)
  for _ in $(seq 150); do grep -q "cmd=DEL cid=$sid .* ok" "$W/a/cni.log" 2>/dev/null && break; sleep 0.1; done  # ≤ 15 s
  if grep -q "cmd=ADD cid=$sid .* ok" "$W/a/cni.log" && grep -q "cmd=DEL cid=$sid .* ok" "$W/a/cni.log" \
     && [ "$(allocs a | jq -r --arg k "cni:weft:$sid:eth0" 'has($k)')" = false ]; then
    ok "A-short exited by itself; conmon's DEL released its address ($(ms $t) ms after run)"
  else bad "A-short: DEL seen: $(grep -c "cmd=DEL cid=$sid" "$W/a/cni.log"), allocations $(allocs a)"; fi
  pod a rm -f -t 0 A-short >/dev/null 2>&1
else bad "podman run A-short: $(tail -3 "$W/run-short.log")"; fi

errs=$(cat "$W"/{a,b}/cni.log 2>/dev/null | grep -c ' error ')
[ "$errs" = 0 ] && ok "no weft-cni call failed ($(cat "$W"/{a,b}/cni.log | grep -o 'cmd=[A-Z]*' | sort | uniq -c | tr -s ' \n' ' '))" \
  || bad "$errs weft-cni calls failed: $(grep -h ' error ' "$W"/{a,b}/cni.log | head -3)"
for h in a b; do kill -0 ${NODE_PID[$h]} 2>/dev/null && ok "node $h still running" || bad "node $h died: $(tail -3 "$W/$h/node.log")"; done

say "total"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
