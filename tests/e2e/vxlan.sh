#!/usr/bin/env bash
# tests/e2e/vxlan.sh — Weft with --data-plane vxlan (the kernel's VXLAN device, unencrypted) on
# three simulated hosts (network namespaces), plus a fourth that tries to join on the encrypted
# data plane.
#
#   weft-vx-<pid>-h1           weft-vx-<pid>-h2           weft-vx-<pid>-h3         (-h4: mixed mode)
#   weft0 vxlan vni 4242       weft0 vxlan vni 4242       weft0 vxlan vni 4242     (made by weft over
#   dstport 4799, 10.42.x.y    ...                        ...                       rtnetlink)
#   eth0 198.51.100.1/24       eth0 198.51.100.2/24       eth0 198.51.100.3/24
#        |  veth                    |  veth                    |  veth
#   p1 ----------------------- br0 in weft-vx-<pid>-sw -------------------- p3   (tcpdump here)
#
# Nothing is created in, or connected to, the machine's own namespace. Every process is stopped
# by PID and every namespace deleted on exit (also on failure), unless KEEP=1.
#
# Checks (each counted):
#   ack        `weft start --data-plane vxlan` without --accept-unencrypted fails with the message
#              and creates no device
#   device     weft0 is a VXLAN device with the chosen VNI and port, nolearning, MTU = eth0 - 50,
#              the node's overlay address, ip_forward=1; status/peers/metrics say vxlan (unencrypted)
#   kernel     on every node: one FDB entry per other live member (its MAC -> its underlay IP), every
#              range owned by another member routes to that member's MAC (tests/e2e/lib/vxlan_check.py)
#   donation   h3's join takes address space by donation: h1's routes change and point at h3
#   ping       every overlay address pings every other; 50 MB over TCP intact (sha256)
#   wire       tcpdump on the underlay: UDP to port 4799 decodes as VXLAN vni 4242 carrying the inner
#              overlay packets, and a marker sent over the overlay is visible (it is NOT encrypted)
#   mixed      a node on the encrypted data plane joining the vxlan cluster exits with the message;
#              the cluster keeps 3 members and programs nothing for it
#   crash      h3 killed -9 and restarted: its device is recreated, FDB/routes everywhere follow, pings
#   leave      h2 leaves: its FDB entry and routes are gone on h1 and h3, its ranges route elsewhere
#   stop       stopping h3 (SIGTERM) removes its device, FDB entries and routes
#
# Environment: WEFT_BIN, KEEP=1, TRANSFER_MB (50), WEFT_LOG_LEVEL (info), E2E_TIMEOUT (240 s).
# Needs root and the vxlan kernel module. Tools: ip bridge nsenter ping tcpdump python3 sha256sum.
# Ends with the line "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"
TOOL=$HERE/lib/e2etool.py
VXCHECK=$HERE/lib/vxlan_check.py
PROG=vxlan.sh

case ${1:-} in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  --clean) require_root "$PROG"; clean_stale weft-vx-; exit 0 ;;
esac
if [[ $(id -u) != 0 ]]; then echo "SKIP: needs root (network namespaces, VXLAN devices)"; exit 0; fi
if ! modprobe -n vxlan 2>/dev/null && ! [[ -d /sys/module/vxlan ]]; then echo "SKIP: the kernel has no vxlan module"; exit 0; fi
WORK=$(mktemp -d /tmp/weft-vx.XXXXXX)
chmod 700 "$WORK"
LAB_PREFIX="weft-vx-$$-"
trap lab_cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM
require_tools ip:iproute2 bridge:iproute2 nsenter:util-linux ping:iputils-ping tcpdump:tcpdump python3:python3 \
  sha256sum:coreutils timeout:coreutils od:coreutils
PY=$(command -v python3)
WEFT_BIN=$(find_weft_bin "$ROOT")
[[ -x $WEFT_BIN ]] || { echo "$PROG: no weft binary at $WEFT_BIN: build it (swift build --product weft) or set WEFT_BIN" >&2; exit 2; }
start_watchdog "${E2E_TIMEOUT:-240}"

TRANSFER_MB=${TRANSFER_MB:-50}
LOG_LEVEL=${WEFT_LOG_LEVEL:-info}
PORT=7946 VXPORT=4799 VNI=4242 DEV=weft0 METRICS=9946
SW=${LAB_PREFIX}sw
N=3
declare -a NS UNDER NAME NODE_PID OVL ID
for ((i = 1; i <= 4; i++)); do NS[i]=${LAB_PREFIX}h$i; UNDER[i]=198.51.100.$i; NAME[i]=vx-h$i; done

weft() { timeout -k 1 10 "$WEFT_BIN" "$@"; }
members_of() { weft members --data-dir "$WORK/n$1" --json 2>/dev/null | "$PY" "$TOOL" members ${2:+--name "$2"}; }
status_field() { weft status --data-dir "$WORK/n$1" --json 2>/dev/null | "$PY" "$TOOL" status "$2"; }
show_logs_on_failure() {
  ((CHECKS_FAILED)) || return 0
  [[ -z ${LOGS_SHOWN:-} ]] || return 0
  LOGS_SHOWN=1
  for ((i = 1; i <= 4; i++)); do
    [[ -f $WORK/n$i.log ]] || continue
    warn "---- last lines of node h$i's log ($WORK/n$i.log)"; tail -n 12 "$WORK/n$i.log" >&2
  done
}
LAB_CLEANUP_HOOK=show_logs_on_failure
finish() { show_logs_on_failure; say "total $(lab_elapsed)s"; summary_line; }

vx_args() { echo --data-plane vxlan --accept-unencrypted --vxlan-port $VXPORT --vxlan-vni $VNI; }
start_node() { # start_node I [extra args...]
  local i=$1; shift
  local args=(start --data-dir "$WORK/n$i" --listen "${UNDER[i]}:$PORT" --name "${NAME[i]}" --profile fast --log-level "$LOG_LEVEL")
  ((i > 1)) && args+=(--seed "${UNDER[1]}:$PORT" --cluster-key-file "$WORK/n1/cluster.key")
  ((i == 1)) && args+=(--metrics-listen "${UNDER[1]}:$METRICS")
  args+=("$@")
  echo "== $(date -u +%FT%TZ) weft ${args[*]}" >>"$WORK/n$i.log"
  bg_ns "${NS[i]}" "$WORK/n$i.log" "$WEFT_BIN" "${args[@]}"
  NODE_PID[i]=$LAST_PID
}
wait_node_ready() {
  local i=$1 tries=$2 k
  for ((k = 0; k < tries; k++)); do
    kill -0 "${NODE_PID[i]}" 2>/dev/null || { warn "node h$i exited: $(tail -n 2 "$WORK/n$i.log" | tr '\n' ' ')"; return 1; }
    [[ -n $(status_field "$i" id) ]] && return 0
    sleep 0.2
  done
  return 1
}
alive_count_is() { local i a; for i in "${@:2}"; do read -r a _ <<<"$(members_of "$i")"; [[ ${a:-0} -eq $1 ]] || return 1; done; }
overlay_of() { # overlay_of I : waits for the overlay address on the device, prints it
  local i=$1 k a
  for ((k = 0; k < 100; k++)); do
    a=$(status_field "$i" overlayAddress); a=${a%%/*}
    [[ $a == 10.42.* ]] && ip -n "${NS[i]}" -o -4 addr show dev $DEV 2>/dev/null | grep -q " $a/" && { echo "$a"; return 0; }
    sleep 0.2
  done
  return 1
}
kernel_ok() { # kernel_ok I : prints vxlan_check's line, true when it says ok
  weft ipam --data-dir "$WORK/n$1" --json >"$WORK/ipam$1.json" 2>/dev/null
  weft members --data-dir "$WORK/n$1" --json >"$WORK/members$1.json" 2>/dev/null
  "$PY" "$VXCHECK" --ns "${NS[$1]}" --dev $DEV --ipam "$WORK/ipam$1.json" --members "$WORK/members$1.json" >"$WORK/check$1.txt" 2>&1
}
check_kernel() { # check_kernel LABEL NODES... : each node's kernel state matches the cluster (polled ~10 s)
  local label=$1 i; shift
  for i in "$@"; do
    if wait_until 40 0.25 kernel_ok "$i"; then pass "$label: h$i $(cat "$WORK/check$i.txt")"
    else fail "$label: h$i $(cat "$WORK/check$i.txt")"; fi
  done
}
ping_pair() {
  local label=$1 from=$2 to=$3
  if wait_until 15 0.3 run_ns "${NS[from]}" 3 ping -c 1 -W 1 -q "$to" >/dev/null 2>&1; then
    pass "$label: $(run_ns "${NS[from]}" 5 ping -c 3 -i 0.2 -W 1 -q "$to" 2>&1 | grep -o 'rtt.*')"
  else fail "$label: no reply from $to"; fi
}
transfer_check() { # transfer_check LABEL FROM TO ADDR
  local label=$1 from=$2 to=$3 addr=$4 port=5201 out=$WORK/sink.$RANDOM spid want got t0 secs
  [[ -f $WORK/blob ]] || head -c "${TRANSFER_MB}M" /dev/urandom >"$WORK/blob"
  want="$(stat -c %s "$WORK/blob") $(sha256sum "$WORK/blob" | cut -d' ' -f1)"
  bg_ns "${NS[to]}" "$WORK/sink.log" "$PY" "$TOOL" sink --bind "$addr" --port $port --out "$out" --timeout 90
  spid=$LAST_PID
  wait_until 50 0.1 test -e "$out.ready" || { fail "$label: receiver did not start"; stop_pid "$spid"; return; }
  t0=$(date +%s.%N)
  run_ns "${NS[from]}" 95 "$PY" "$TOOL" send --to "$addr" --port $port --file "$WORK/blob" --timeout 90 >>"$WORK/send.log" 2>&1
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  wait_until 50 0.1 test -s "$out"
  stop_pid "$spid"
  got=$(cat "$out" 2>/dev/null)
  if [[ -n $got && $got == "$want" ]]; then pass "$label: ${TRANSFER_MB} MB h$from -> h$to intact (${secs}s)"
  else fail "$label: sent '$want', received '${got:-nothing}'"; fi
}
routes_of() { ip -n "${NS[$1]}" route show dev $DEV proto 241 2>/dev/null | sort; }
mac_of() { local h=${1,,}; echo "02:${h:0:2}:${h:2:2}:${h:4:2}:${h:6:2}:${h:8:2}"; }

say "weft: $WEFT_BIN; work dir $WORK"
switch_add "$SW" || { fail "create switch namespace"; finish; exit 1; }
for ((i = 1; i <= 4; i++)); do host_add "${NS[i]}" "$SW" "p$i" "${UNDER[i]}/24" || { fail "create host h$i"; finish; exit 1; }; done
wait_until 20 0.2 run_ns "${NS[1]}" 3 ping -c 1 -W 1 -q "${UNDER[3]}" >/dev/null 2>&1 || { fail "underlay"; finish; exit 1; }

# ---- the acknowledgement
out=$(run_ns "${NS[1]}" 20 "$WEFT_BIN" start --data-dir "$WORK/noack" --listen "${UNDER[1]}:$PORT" --data-plane vxlan 2>&1); rc=$?
if ((rc != 0)) && grep -q "UNENCRYPTED" <<<"$out" && grep -q -- "--accept-unencrypted" <<<"$out" && ! ip -n "${NS[1]}" link show $DEV >/dev/null 2>&1; then
  pass "ack: refused without --accept-unencrypted (exit $rc): $(grep -m1 -o 'data-plane vxlan sends.*unencrypted' <<<"$out" | head -c 160)"
else fail "ack: exit $rc, output: $(head -c 300 <<<"$out")"; fi

# ---- two nodes, then the third (a donation)
start_node 1 $(vx_args)
wait_node_ready 1 100 && wait_until 50 0.1 test -s "$WORK/n1/cluster.key" || { fail "h1 did not start"; finish; exit 1; }
start_node 2 $(vx_args)
wait_node_ready 2 100 || fail "h2 did not start"
wait_until 100 0.3 alive_count_is 2 1 2 && pass "membership: h1, h2 see 2 alive" || fail "membership: h1/h2"
check_kernel "kernel (2 nodes)" 1 2
routes_before=$(routes_of 1)
start_node 3 $(vx_args)
wait_node_ready 3 100 || fail "h3 did not start"
wait_until 100 0.3 alive_count_is 3 1 2 3 && pass "membership: all see 3 alive" || fail "membership: 3 nodes"
for ((i = 1; i <= N; i++)); do ID[i]=$(status_field "$i" id); done
check_kernel "kernel (3 nodes)" 1 2 3
routes_after=$(routes_of 1)
gw3=$(ip -n "${NS[1]}" -j neigh show dev $DEV nud permanent | "$PY" -c "import json,sys; print(' '.join(n['dst'] for n in json.load(sys.stdin) if n.get('lladdr')=='$(mac_of "${ID[3]}")'))")
if [[ $routes_before != "$routes_after" && -n $gw3 ]] && grep -q "via $gw3 " <<<"$routes_after"; then
  pass "donation: h3 joined by donation; h1's routes moved ($(wc -l <<<"$routes_before") -> $(wc -l <<<"$routes_after")), $(grep -c "via $gw3 " <<<"$routes_after") now via h3's gateway $gw3"
else fail "donation: h1 routes before: [$routes_before] after: [$routes_after], h3 gateway '$gw3'"; fi

# ---- the device
for ((i = 1; i <= N; i++)); do
  OVL[i]=$(overlay_of "$i")
  d=$(ip -n "${NS[i]}" -d -o link show $DEV 2>/dev/null)
  umtu=$(link_mtu "${NS[i]}" eth0); vmtu=$(link_mtu "${NS[i]}" $DEV)
  fwd=$(run_ns "${NS[i]}" 3 cat /proc/sys/net/ipv4/ip_forward)
  if grep -q "vxlan id $VNI " <<<"$d" && grep -q "dstport $VXPORT " <<<"$d" && grep -q "nolearning" <<<"$d" \
     && [[ $vmtu -eq $((umtu - 50)) && ${OVL[i]} == 10.42.* && $fwd == 1 ]] && grep -q "UP" <<<"$d"; then
    pass "device: h$i $DEV vxlan id $VNI dstport $VXPORT nolearning, mtu $vmtu = eth0 $umtu - 50, ${OVL[i]}, ip_forward=1"
  else fail "device: h$i: '$(head -c 300 <<<"$d")' mtu $vmtu/$umtu overlay '${OVL[i]}' fwd $fwd"; fi
done
dp=$(status_field 1 dataPlane); mtu=$(status_field 1 overlayMTU)
[[ $dp == "vxlan (unencrypted)" && $mtu == $(link_mtu "${NS[1]}" $DEV) ]] && pass "status: data plane '$dp', overlay MTU $mtu (containers use it)" \
  || fail "status: dataPlane '$dp' overlayMTU '$mtu'"
peers=$(weft peers --data-dir "$WORK/n1" --json 2>&1)
np=$("$PY" -c "import json,sys; p=json.loads(sys.argv[1]); print(sum(1 for x in p if x['state']=='vxlan (unencrypted)' and x['endpoint'] in ('${UNDER[2]}:$VXPORT','${UNDER[3]}:$VXPORT') and 'device $DEV' in x['detail']))" "$peers" 2>/dev/null)
[[ $np == 2 ]] && pass "peers: h1 lists 2 peers 'vxlan (unencrypted)' with VTEP ${UNDER[2]}:$VXPORT, ${UNDER[3]}:$VXPORT and the device counters" \
  || fail "peers: $(head -c 400 <<<"$peers")"
metrics=$(run_ns "${NS[1]}" 5 "$PY" -c "import urllib.request; print(urllib.request.urlopen('http://${UNDER[1]}:$METRICS/metrics', timeout=3).read().decode())" 2>&1)
grep -q 'weft_data_plane_info{mode="vxlan (unencrypted)"} 1' <<<"$metrics" && pass "metrics: weft_data_plane_info{mode=\"vxlan (unencrypted)\"} 1" \
  || fail "metrics: $(grep -m2 'data_plane' <<<"$metrics")"

# ---- traffic
for ((i = 1; i <= N; i++)); do for ((j = 1; j <= N; j++)); do
  ((i == j)) || ping_pair "ping h$i->h$j (${OVL[j]})" "$i" "${OVL[j]}"
done; done
transfer_check "transfer (vxlan)" 1 3 "${OVL[3]}"

# ---- the wire: VXLAN on the chosen port, inner packets in clear
: >"$WORK/cap.log"
bg_ns "$SW" "$WORK/cap.log" tcpdump -i any -n -s 0 -U --immediate-mode -Z root -w "$WORK/vx.pcap" udp port $VXPORT
CAP=$LAST_PID
wait_until 50 0.1 grep -q "listening on" "$WORK/cap.log"
MARK="WEFT-VXLAN-MARKER-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
bg_ns "${NS[2]}" "$WORK/udp.log" "$PY" "$TOOL" udp-recv --bind "${OVL[2]}" --port 5301 --out "$WORK/udp.out" --marker "$MARK" --want 5 --timeout 8
R=$LAST_PID
wait_until 50 0.1 test -e "$WORK/udp.out.ready"
run_ns "${NS[1]}" 10 "$PY" "$TOOL" udp-send --to "${OVL[2]}" --port 5301 --msg "$MARK" --count 10 --interval 0.05 2>>"$WORK/udp.log"
wait_until 60 0.1 test -s "$WORK/udp.out"; stop_pid "$R"
sleep 0.5; stop_pid "$CAP"
decoded=$(tcpdump -r "$WORK/vx.pcap" -n -T vxlan 2>/dev/null)
{ read -r _ _ _; read -r _ seen; } < <("$PY" "$TOOL" pcap "$WORK/vx.pcap" "$MARK")
if grep -q "VXLAN.*vni $VNI" <<<"$decoded" && grep -Eq "IP ${OVL[1]//./\\.}\.[0-9]+ > ${OVL[2]//./\\.}\.5301:" <<<"$decoded" && [[ $seen == 1 ]]; then
  pass "wire: underlay UDP port $VXPORT is VXLAN vni $VNI carrying ${OVL[1]} > ${OVL[2]}:5301 ($(grep -c "vni $VNI" <<<"$decoded") packets); the marker is readable on the wire (unencrypted, $(cat "$WORK/udp.out")/10 arrived)"
else fail "wire: decoded $(grep -c VXLAN <<<"$decoded") VXLAN packets, inner match $(grep -c "${OVL[2]}.5301" <<<"$decoded"), marker seen=${seen:-?}: $(head -3 <<<"$decoded")"; fi

# ---- mixed mode: h4 on the encrypted data plane
start_node 4
for ((k = 0; k < 150; k++)); do kill -0 "${NODE_PID[4]}" 2>/dev/null || break; sleep 0.2; done
if ! kill -0 "${NODE_PID[4]}" 2>/dev/null && grep -q "runs the 'vxlan' data plane but this node was started with --data-plane encrypted" "$WORK/n4.log"; then
  pass "mixed: the encrypted node was refused: $(grep -m1 -o "the cluster at.*--accept-unencrypted" "$WORK/n4.log" | head -c 220)"
else fail "mixed: h4 still running or no message: $(tail -n 3 "$WORK/n4.log" | tr '\n' ' ')"; stop_pid "${NODE_PID[4]}"; fi
unset "LAB_PIDS[${NODE_PID[4]}]"
sleep 1
if alive_count_is 3 1 2 3 && ! bridge -n "${NS[1]}" fdb show dev $DEV | grep -q "dst ${UNDER[4]} "; then
  pass "mixed: the cluster keeps 3 alive members and no FDB entry for ${UNDER[4]}"
else fail "mixed: $(members_of 1); fdb: $(bridge -n "${NS[1]}" fdb show dev $DEV | tr '\n' ' ')"; fi

# ---- crash and restart h3
crash_pid "${NODE_PID[3]}"
say "crash: h3 killed with SIGKILL; its device is left behind: $(ip -n "${NS[3]}" -o link show $DEV >/dev/null 2>&1 && echo yes || echo no)"
sleep 1
start_node 3 $(vx_args)
wait_node_ready 3 100 && pass "crash: h3 restarted (the leftover device was replaced)" || fail "crash: h3 did not restart: $(tail -n 3 "$WORK/n3.log" | tr '\n' ' ')"
OVL[3]=$(overlay_of 3)
wait_until 100 0.3 alive_count_is 3 1 2 3
check_kernel "crash: kernel after restart" 1 2 3
ping_pair "crash: ping h1->h3 after restart" 1 "${OVL[3]}"
ping_pair "crash: ping h3->h2 after restart" 3 "${OVL[2]}"

# ---- h2 leaves
mac2=$(mac_of "${ID[2]}")
weft leave --data-dir "$WORK/n2" >/dev/null 2>&1
for ((k = 0; k < 100; k++)); do kill -0 "${NODE_PID[2]}" 2>/dev/null || break; sleep 0.1; done
stop_pid "${NODE_PID[2]}"
gone() { local i; for i in 1 3; do
  bridge -n "${NS[i]}" fdb show dev $DEV | grep -q "^$mac2 " && return 1
  ip -n "${NS[i]}" neigh show dev $DEV nud permanent | grep -q "$mac2" && return 1
done; return 0; }
if wait_until 120 0.25 gone; then pass "leave: h2's FDB entry ($mac2) and neighbour (its routes) are gone on h1 and h3"
else fail "leave: h2 is $mac2; $(for i in 1 3; do echo "h$i fdb: $(bridge -n "${NS[i]}" fdb show dev $DEV | tr '\n' ' ') neigh: $(ip -n "${NS[i]}" neigh show dev $DEV | tr '\n' ' ')"; done)"; fi
check_kernel "leave: kernel" 1 3
ping_pair "leave: ping h1->h3" 1 "${OVL[3]}"

# ---- stop h3: everything goes
stop_pid "${NODE_PID[3]}"
if ! ip -n "${NS[3]}" link show $DEV >/dev/null 2>&1 && [[ -z $(ip -n "${NS[3]}" route show proto 241) ]] \
   && ! bridge -n "${NS[3]}" fdb show | grep -q "dst ${UNDER[1]}"; then
  pass "stop: h3's device, FDB entries and routes are removed"
else fail "stop: left behind: $(ip -n "${NS[3]}" -o link show $DEV 2>&1) $(ip -n "${NS[3]}" route show proto 241)"; fi
grep -q "VXLAN device removed" "$WORK/n3.log" || fail "stop: no 'VXLAN device removed' in h3's log"

stop_pid "${NODE_PID[1]}"
finish
