#!/bin/bash
# containerd-cni.sh: `ctr run --cni` with the conflist Weft ships, end to end on two simulated hosts.
#
#   netns weft-ctrd-<pid>-a                              netns weft-ctrd-<pid>-b
#   containerd 1.6 (own root/state/socket/config)        podman 4.3 (CNI backend)
#   [C1] ctr run --rm --cni  ...                         [B1]
#   weft0 (TUN of node A)                                weft0 (TUN of node B)
#   wcu-a 198.51.100.1/24 ========= underlay veth ========= wcu-b 198.51.100.2/24 (UDP 7946)
#
# containerd runs in a private mount namespace (`unshare -m`) entered in host a's netns: a tmpfs
# on /run (its shim sockets, fifos, runc state), an overlay on /opt whose upper layer holds
# /opt/cni/bin/weft-cni, an overlay on /var/lib (so libcni's cache /var/lib/cni stays in the
# test dir) with the node's data dir bound on /var/lib/weft, and the test's folder bound on
# /etc/cni. `ctr` runs in that same mount namespace (nsenter -t PID -m -n). So the conflist is
# byte for byte the shipped one (deploy/cni/10-weft.conflist, `dataDir: /var/lib/weft`) and
# ctr finds it where it always looks (/etc/cni/net.d, /opt/cni/bin). Nothing is mounted or
# written outside the test's folder in the machine's own mount namespace.
#
# The image is an OCI archive built by hand (tests/e2e/lib/oci-busybox.sh) and `ctr image
# import`ed: nothing is pulled.
#
# Checks: nodes up with overlay addresses; containerd starts, its CRI plugin loads the conflist;
# the conflist used is the shipped file (cmp); C1 (foreground `ctr run --rm --cni`) gets an
# address in 10.42.0.0/16 held by node A for cni:weft:default-C1:eth0, the overlay MTU and the
# default route; C1 pings B1 across hosts and B1 pings C1; 1 MiB over TCP B1 -> C1 intact;
# `ctr task kill` -> ctr's DEL (empty CNI_NETNS, prevResult) releases the address and the host
# veth; a conflist with cniVersion 1.1.0 fails in ctr 1.6 ("unsupported CNI result version")
# and leaves no address held (why the shipped one says 1.0.0); `ctr run -d` + `task delete`
# sends no DEL (the address stays held: a leak path, reported, see docs/cni.md).
#
# env: WEFT_BIN, WEFT_CNI_BIN (as podman-two-hosts.sh); CONFLIST (default deploy/cni/10-weft.conflist;
#      tests/e2e/kubernetes-image.sh passes the one its image's init step installed);
#      SHARED (podman image builder, /work/shared/cni); KEEP=1; LOGS_TO=DIR.
# Output: one line per check, then exactly one line `N passed, M failed`.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/cni/lib.sh"
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-${WEFT:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-${WEFT_CNI:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}}
CONFLIST=${CONFLIST:-$top/deploy/cni/10-weft.conflist}
SHARED=${SHARED:-/work/shared/cni}
PIMG=localhost/ci-busybox:latest
CIMG=localhost/weft-busybox:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in containerd ctr containerd-shim-runc-v2 runc podman conmon jq nsenter unshare ip busybox timeout md5sum sha256sum; do
  command -v $c >/dev/null || { echo "SKIP: missing $c (Debian: containerd podman runc busybox-static jq; bootstrap/setup installs them)"; exit 0; }
done
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done
[ -f "$CONFLIST" ] || { echo "SKIP: conflist $CONFLIST not found"; exit 0; }
[ -x "$SHARED/build-image.sh" ] || { echo "SKIP: $SHARED/build-image.sh not found (set SHARED=)"; exit 0; }
[ -c /dev/net/tun ] || { echo "SKIP: /dev/net/tun missing"; exit 0; }
grep -qw overlay /proc/filesystems || { echo "SKIP: no overlayfs in this kernel"; exit 0; }

W=$(mktemp -d /tmp/weft-ctrd.XXXXXX)
chmod 0755 "$W"
NS_PREFIX=weft-ctrd-$$
declare -A NS=([a]=$NS_PREFIX-a [b]=$NS_PREFIX-b)
declare -A UNDER=([a]=198.51.100.1 [b]=198.51.100.2)
declare -A IFU=([a]=wcu-a [b]=wcu-b)
declare -A NODE_PID=()
CTRD_PID=""
SOCK=$W/a/ctrd/containerd.sock
PORT=7946
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }
finish() { say "total"; echo "$PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; exit $?; }

pod() {
  local h=$1; shift
  CONTAINERS_CONF=$W/$h/containers.conf timeout 90 nsenter --net=/run/netns/${NS[$h]} \
    podman --root "$W/$h/root" --runroot "$W/$h/run" --tmpdir "$W/$h/tmp" "$@"
}
weft() { local h=$1; shift; timeout 20 "$WEFT_BIN" "$@" --data-dir "$W/$h/node"; }
# ctr in containerd's own mount namespace and host a's netns (so the plugin's host side is in a)
ctra() { timeout "${CTR_TIMEOUT:-60}" nsenter -t "$CTRD_PID" -m -n ctr -a "$SOCK" "$@"; }

stop_pid() { # stop_pid PID: TERM, ≤ 5 s, KILL, reap
  local p=$1
  kill "$p" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ -n "${LOGS_TO:-}" ]; then mkdir -p "$LOGS_TO" && for h in a b; do cp "$W/$h/node.log" "$LOGS_TO/node-$h.log"; done 2>/dev/null; cp "$W/a/containerd.log" "$LOGS_TO/" 2>/dev/null; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W, netns ${NS[a]} ${NS[b]}, containerd $CTRD_PID, nodes ${NODE_PID[*]:-}"; exit $rc; fi
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    for c in $(CTR_TIMEOUT=10 ctra containers ls -q 2>/dev/null); do
      CTR_TIMEOUT=10 ctra task kill -s KILL "$c" >/dev/null 2>&1
      CTR_TIMEOUT=10 ctra task delete -f "$c" >/dev/null 2>&1
      CTR_TIMEOUT=10 ctra containers rm "$c" >/dev/null 2>&1
    done
    stop_pid "$CTRD_PID"
  fi
  # shims started by our containerd (their command line names our socket): by PID
  for d in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF -- "-address $SOCK " && kill -9 "${d#/proc/}" 2>/dev/null
  done
  for p in ${BG_PIDS:-}; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for h in b; do
    [ -d "$W/$h/root" ] || continue
    pod $h rm -f -t 0 --all >/dev/null 2>&1
    pod $h rmi -f --all >/dev/null 2>&1
  done
  for h in "${!NODE_PID[@]}"; do stop_pid "${NODE_PID[$h]}"; done
  for h in a b; do ip netns del "${NS[$h]}" 2>/dev/null; done
  awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- hosts + underlay + nodes --------------------------------------------------------------
for h in a b; do ip netns add "${NS[$h]}" || { echo "SKIP: cannot create netns ${NS[$h]}"; exit 0; }; done
ip link add ${IFU[a]} netns ${NS[a]} type veth peer name ${IFU[b]} netns ${NS[b]}
for h in a b; do
  ip -n ${NS[$h]} link set lo up
  ip -n ${NS[$h]} addr add ${UNDER[$h]}/24 dev ${IFU[$h]}
  ip -n ${NS[$h]} link set ${IFU[$h]} up
  mkdir -p "$W/$h"/{node,net.d,root,run,tmp}
done
nsenter --net=/run/netns/${NS[a]} "$WEFT_BIN" start --data-dir "$W/a/node" --listen ${UNDER[a]}:$PORT \
  --name host-a --profile fast --gc-after ${GC_AFTER:-10s} >"$W/a/node.log" 2>&1 &
NODE_PID[a]=$!
for _ in $(seq 150); do [ -s "$W/a/node/cluster.key" ] && weft a status >/dev/null 2>&1 && break; sleep 0.1; done
[ -s "$W/a/node/cluster.key" ] || { bad "node A did not start: $(tail -5 "$W/a/node.log")"; finish; }
cp "$W/a/node/cluster.key" "$W/cluster.key"
nsenter --net=/run/netns/${NS[b]} "$WEFT_BIN" start --data-dir "$W/b/node" --listen ${UNDER[b]}:$PORT \
  --seed ${UNDER[a]}:$PORT --cluster-key-file "$W/cluster.key" --name host-b --profile fast >"$W/b/node.log" 2>&1 &
NODE_PID[b]=$!
members_ok() {
  local h s
  for h in a b; do
    s=$(weft $h status --json 2>/dev/null) || return 1
    [ "$(jq -r '.members.alive // 0' <<<"$s")" = 2 ] || return 1
    [ -n "$(jq -r '.overlayAddress // empty' <<<"$s")" ] || return 1
  done
}
for _ in $(seq 200); do members_ok && break; sleep 0.1; done
members_ok && ok "nodes A and B see 2 alive members and have overlay addresses" \
  || { bad "membership: $(weft a status --json 2>&1 | jq -c '{members,overlayAddress}' 2>&1)"; finish; }
TUN_MTU=$(ip -n ${NS[a]} -j link show weft0 2>/dev/null | jq -r '.[0].mtu')

# ---- containerd on host a --------------------------------------------------------------------
# The plugin must be found as /opt/cni/bin/weft-cni and the conflist in /etc/cni/net.d: both are
# placed in the layers bound there before containerd's mount namespace is made.
mkdir -p "$W/a/ctrd"/{root,state} "$W/a/opt-up/cni/bin" "$W/a/opt-work" "$W/a/varlib-up/weft" \
  "$W/a/varlib-work" "$W/a/etc-cni/net.d"
cp "$WEFT_CNI_BIN" "$W/a/opt-up/cni/bin/weft-cni"
cp "$CONFLIST" "$W/a/etc-cni/net.d/10-weft.conflist"
cat >"$W/a/ctrd/config.toml" <<EOF
# containerd for one test host: everything under the test's folder.
version = 2
root = "$W/a/ctrd/root"
state = "$W/a/ctrd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$W/a/ctrd/debug.sock"
[metrics]
  address = ""
# The CRI plugin (what kubelet talks to) takes the CNI folders from here; ctr run --cni always
# uses /etc/cni/net.d and /opt/cni/bin (bound into this mount namespace above).
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
EOF
cat >"$W/a/ctrd/init.sh" <<EOF
set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t overlay overlay -o lowerdir=/opt,upperdir=$W/a/opt-up,workdir=$W/a/opt-work /opt
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=$W/a/varlib-up,workdir=$W/a/varlib-work /var/lib
mount --bind $W/a/node /var/lib/weft
mount --bind $W/a/etc-cni /etc/cni
exec containerd --config $W/a/ctrd/config.toml
EOF
nsenter --net=/run/netns/${NS[a]} unshare -m --propagation private sh "$W/a/ctrd/init.sh" >"$W/a/containerd.log" 2>&1 &
CTRD_PID=$!
t=$(date +%s%N)
for _ in $(seq 100); do [ -S "$SOCK" ] && CTR_TIMEOUT=5 ctra version >/dev/null 2>&1 && break; sleep 0.1; done
if CTR_TIMEOUT=5 ctra version >/dev/null 2>&1; then
  ok "containerd $(containerd --version | awk '{print $3}') serving on its own socket in host a after $(ms $t) ms (pid $CTRD_PID)"
else bad "containerd did not start: $(tail -3 "$W/a/containerd.log")"; finish; fi
sleep 0.5
grep -q 'failed to load cni' "$W/a/containerd.log" \
  && bad "containerd's CRI plugin could not load the conflist: $(grep 'failed to load cni' "$W/a/containerd.log" | head -1)" \
  || ok "containerd's CRI plugin loaded the conflist from its cni.conf_dir (no 'failed to load cni')"
cmp -s "$CONFLIST" "$W/a/etc-cni/net.d/10-weft.conflist" && [ "$(nsenter -t "$CTRD_PID" -m cat /etc/cni/net.d/10-weft.conflist | sha256sum)" = "$(sha256sum <"$CONFLIST")" ] \
  && ok "ctr sees exactly $(basename "$CONFLIST") ($(jq -r .cniVersion "$CONFLIST"), dataDir $(jq -r '.plugins[0].dataDir' "$CONFLIST")) in /etc/cni/net.d" \
  || bad "the conflist in containerd's /etc/cni/net.d differs from $CONFLIST"

t=$(date +%s%N)
"$top/tests/e2e/lib/oci-busybox.sh" "$W/busybox-oci.tar" "$CIMG" >"$W/oci.log" 2>&1 \
  && ctra image import "$W/busybox-oci.tar" >>"$W/oci.log" 2>&1 \
  && grep -qx "$CIMG" <<<"$(ctra images ls -q)" \
  && ok "OCI image built by hand and imported with ctr image import ($(ms $t) ms)" \
  || { bad "image: $(tail -3 "$W/oci.log")"; finish; }

# ---- podman on host b: B1 --------------------------------------------------------------------
if [ "$(basename "$WEFT_CNI_BIN")" = weft-cni ]; then PLUGIN_DIR=$(cd "$(dirname "$WEFT_CNI_BIN")" && pwd)
else mkdir -p "$W/bin"; cp "$WEFT_CNI_BIN" "$W/bin/weft-cni"; PLUGIN_DIR=$W/bin; fi
write_containers_conf "$W/b/containers.conf" "$W/b/net.d" "$PLUGIN_DIR"
jq --arg d "$W/b/node" '.plugins[0].dataDir = $d' "$CONFLIST" >"$W/b/net.d/weft.conflist"
CONTAINERS_CONF=$W/b/containers.conf IMG=$PIMG \
  PODMAN="timeout 60 nsenter --net=/run/netns/${NS[b]} podman --root $W/b/root --runroot $W/b/run --tmpdir $W/b/tmp" \
  "$SHARED/build-image.sh" >"$W/b/build.log" 2>&1 || bad "podman image on host b: $(tail -3 "$W/b/build.log")"
pod b run -d --name B1 --network weft $PIMG sleep 300 >"$W/run-B1.log" 2>&1 || { bad "podman run B1: $(tail -3 "$W/run-B1.log")"; finish; }
B1=$(pod b exec B1 ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}'); B1=${B1%/*}
[[ $B1 == 10.42.* ]] && ok "B1 (podman, host b) has $B1" || { bad "B1 has no overlay address: '$B1'"; finish; }

# ---- C1: ctr run --rm --cni in the foreground (the path that sends DEL) ----------------------------
held() { weft a ipam --json 2>/dev/null | jq -r --arg k "$1" '[.allocations[] | select(.handle == $k) | .address][0] // empty'; }
hostveth() { ip -n ${NS[a]} -o route show "$1/32" 2>/dev/null | awk '{print $3}'; }
task_running() { ctra task ls 2>/dev/null | awk -v c="$1" '$1 == c && $3 == "RUNNING"' | grep -q .; }
t=$(date +%s%N)
ctra run --rm --cni "$CIMG" C1 sleep 300 >"$W/run-C1.log" 2>&1 </dev/null &
C1_RUN=$!; BG_PIDS="$C1_RUN"
for _ in $(seq 200); do task_running C1 && break; kill -0 $C1_RUN 2>/dev/null || break; sleep 0.1; done
C1=""
for _ in $(seq 50); do
  C1=$(ctra task exec --exec-id ip1 C1 ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')
  [ -n "$C1" ] && break; sleep 0.1
done
C1CIDR=$C1; C1=${C1%/*}
if [[ $C1CIDR =~ ^10\.42\.[0-9]+\.[0-9]+/16$ ]] && [ "$(held cni:weft:default-C1:eth0)" = "$C1" ]; then
  ok "ctr run --cni C1: eth0 $C1CIDR, held by node A for cni:weft:default-C1:eth0 ($(ms $t) ms to running)"
else bad "C1: eth0 '$C1CIDR', node A holds '$(held cni:weft:default-C1:eth0)' ($(tail -2 "$W/run-C1.log"))"; finish; fi
cmtu=$(ctra task exec --exec-id mtu1 C1 cat /sys/class/net/eth0/mtu 2>/dev/null)
[ "$cmtu" = "$TUN_MTU" ] && ok "C1's eth0 MTU $cmtu = weft0's" || bad "C1's eth0 MTU '$cmtu', weft0 '$TUN_MTU'"
grep -q '^default dev eth0' <<<"$(ctra task exec --exec-id rt1 C1 ip route 2>/dev/null)" \
  && ok "C1 has 'default dev eth0' (defaultRoute: true)" || bad "C1 routes: $(ctra task exec --exec-id rt2 C1 ip route 2>&1 | tr '\n' ';')"
C1VETH=$(hostveth "$C1")
[[ $C1VETH == wft* ]] && ok "host a routes $C1/32 to C1's host veth $C1VETH" || bad "no /32 route for $C1 on host a: '$C1VETH'"

if ctra task exec --exec-id ping1 C1 ping -c 3 -W 3 "$B1" >"$W/ping1.log" 2>&1; then
  ok "C1 (containerd, host a) pings B1 (podman, host b) $B1: $(grep -o 'round-trip.*' "$W/ping1.log")"
else bad "C1 pings B1: $(tail -2 "$W/ping1.log" | tr '\n' ' ')"; fi
if pod b exec B1 ping -c 3 -W 3 "$C1" >"$W/ping2.log" 2>&1; then
  ok "B1 pings C1 $C1: $(grep -o 'round-trip.*' "$W/ping2.log")"
else bad "B1 pings C1: $(tail -2 "$W/ping2.log" | tr '\n' ' ')"; fi
pod b exec B1 sh -c 'mkdir -p /www && dd if=/dev/urandom of=/www/blob bs=1048576 count=1 2>/dev/null' >/dev/null 2>&1
pod b exec -d B1 httpd -f -p 8080 -h /www >/dev/null 2>&1
src=$(pod b exec B1 md5sum /www/blob 2>/dev/null | awk '{print $1}')
sleep 0.3
ctra task exec --exec-id get1 C1 timeout 30 wget -q -O /tmp/blob "http://$B1:8080/blob" >"$W/wget.log" 2>&1
got=$(ctra task exec --exec-id md1 C1 md5sum /tmp/blob 2>/dev/null | awk '{print $1}')
[ -n "$src" ] && [ "$got" = "$src" ] && ok "1 MiB over TCP B1 -> C1 intact (md5 $got)" || bad "TCP B1 -> C1: md5 '$got', want '$src' ($(tail -1 "$W/wget.log"))"

# the foreground ctr deletes the task when it exits, then calls DEL (empty CNI_NETNS + prevResult)
t=$(date +%s%N)
ctra task kill -s KILL C1 >/dev/null 2>&1
for _ in $(seq 200); do kill -0 $C1_RUN 2>/dev/null || break; sleep 0.1; done
wait $C1_RUN 2>/dev/null; BG_PIDS=""
if [ -z "$(held cni:weft:default-C1:eth0)" ] && ! ip -n ${NS[a]} link show "$C1VETH" >/dev/null 2>&1 && [ -z "$(hostveth "$C1")" ]; then
  ok "task killed -> ctr's DEL released $C1 and removed $C1VETH and the /32 route ($(ms $t) ms)"
  [ -z "$(jq -r 'select(.handle == "cni:weft:default-C1:eth0") | .handle' "$W/a/node/attachments/"*.json 2>/dev/null)" ] \
    && ok "... and the DEL removed C1's attachment record" || bad "C1's attachment record is still there after DEL"
else bad "after C1 exited: node holds '$(held cni:weft:default-C1:eth0)', veth $C1VETH $(ip -n ${NS[a]} -o link show "$C1VETH" 2>/dev/null | wc -l), route '$(hostveth "$C1")'"; fi
ctra containers ls -q | grep -qx C1 && bad "container C1 still listed after ctr run --rm" || ok "ctr run --rm removed container C1"

# ---- cniVersion 1.1.0: what ctr 1.6 does with it --------------------------------------------
jq '.cniVersion = "1.1.0"' "$CONFLIST" >"$W/a/etc-cni/net.d/10-weft.conflist"
ctra run --rm --cni "$CIMG" V11 true >"$W/run-V11.log" 2>&1 </dev/null; rc=$?
if [ $rc != 0 ] && grep -q 'unsupported CNI result version "1.1.0"' "$W/run-V11.log"; then
  ok "cniVersion 1.1.0: ctr $(ctr --version | awk '{print $3}') rejects the plugin's result ('unsupported CNI result version'), as docs/cni.md says"
else bad "cniVersion 1.1.0: ctr exited $rc: $(tail -2 "$W/run-V11.log")"; fi
v11=$(held cni:weft:default-V11:eth0)
[ -z "$v11" ] && ok "... and no address stays held for cni:weft:default-V11:eth0 (ctr sent DEL)" \
  || bad "cniVersion 1.1.0 left $v11 held for cni:weft:default-V11:eth0"
cp "$CONFLIST" "$W/a/etc-cni/net.d/10-weft.conflist"
CTR_TIMEOUT=10 ctra task delete -f V11 >/dev/null 2>&1; CTR_TIMEOUT=10 ctra containers rm V11 >/dev/null 2>&1

# ---- ctr run -d + task delete: no DEL at all; the node's reconciliation and `weft gc` -------
record_of() { jq -r --arg h "$1" 'select(.handle == $h) | .hostInterface' "$W/a/node/attachments/"*.json 2>/dev/null; }
for c in L1 D1; do ctra run -d --cni "$CIMG" $c sleep 300 >"$W/run-$c.log" 2>&1 </dev/null; done
for _ in $(seq 50); do task_running D1 && task_running L1 && break; sleep 0.1; done
D1=$(held cni:weft:default-D1:eth0); L1=$(held cni:weft:default-L1:eth0)
[ -n "$D1" ] && [ -n "$L1" ] && ok "ctr run -d --cni: D1 got $D1, L1 got $L1" || bad "ctr run -d --cni D1/L1: $(tail -2 "$W/run-D1.log") $(tail -2 "$W/run-L1.log")"
[ "$(record_of cni:weft:default-D1:eth0)" = "$(hostveth "$D1")" ] && [ -n "$(hostveth "$D1")" ] \
  && ok "weft-cni left an attachment record for D1 (host interface $(hostveth "$D1"), netns, inodes) in the data dir" \
  || bad "no attachment record for D1: $(ls "$W/a/node/attachments" 2>&1 | head -3)"
ctra task kill -s KILL D1 >/dev/null 2>&1
for _ in $(seq 50); do task_running D1 || break; sleep 0.1; done
ctra task delete D1 >/dev/null 2>&1; ctra containers rm D1 >/dev/null 2>&1
ctra containers ls -q | grep -qx D1 && bad "container D1 still listed" || ok "D1's task and container deleted"
if [ -n "$(held cni:weft:default-D1:eth0)" ]; then
  say "note - ctr task delete sent no DEL: $D1 stays held for cni:weft:default-D1:eth0, host veth gone with the namespace"
else say "note - after ctr task delete the address of D1 was released already (this ctr sent DEL)"; fi
gc=$(weft a gc --dry-run --json 2>&1)
if jq -e '.dryRun and ([.released[].handle] == ["cni:weft:default-D1:eth0"]) and ([.kept[] | select(.handle == "cni:weft:default-L1:eth0") | .reason | startswith("live")] == [true])' <<<"$gc" >/dev/null 2>&1 \
   && [ "$(held cni:weft:default-D1:eth0)" = "$D1" ]; then
  ok "weft gc --dry-run: would release only D1 ($(jq -r '.released[0].reason' <<<"$gc")), keeps live L1, releases nothing"
else bad "weft gc --dry-run: $gc"; fi
gc=$(weft a gc --json 2>&1)
if jq -e '([.released[].handle] == ["cni:weft:default-D1:eth0"]) and (.dryRun | not)' <<<"$gc" >/dev/null 2>&1 && [ -z "$(held cni:weft:default-D1:eth0)" ] \
   && [ "$(held cni:weft:default-L1:eth0)" = "$L1" ] && [ -z "$(record_of cni:weft:default-D1:eth0)" ]; then
  ok "weft gc released D1's $D1 and its record; L1 ($L1) still held"
else bad "weft gc: $gc; D1 held '$(held cni:weft:default-D1:eth0)', L1 held '$(held cni:weft:default-L1:eth0)'"; fi
grep -q 'event=attachment-released.*handle=cni:weft:default-D1:eth0' "$W/a/node.log" && ok "node A logged attachment-released for D1" \
  || bad "no attachment-released log line for D1: $(grep attachment "$W/a/node.log" | tail -2)"
# L1 leaks the same way; the node releases it by itself after --gc-after (10 s here)
t=$(date +%s%N)
ctra task kill -s KILL L1 >/dev/null 2>&1
for _ in $(seq 50); do task_running L1 || break; sleep 0.1; done
ctra task delete L1 >/dev/null 2>&1; ctra containers rm L1 >/dev/null 2>&1
for _ in $(seq 400); do [ -z "$(held cni:weft:default-L1:eth0)" ] && break; sleep 0.1; done   # ≤ 40 s
if [ -z "$(held cni:weft:default-L1:eth0)" ] && grep -q 'event=attachment-released.*handle=cni:weft:default-L1:eth0' "$W/a/node.log" \
   && grep 'handle=cni:weft:default-L1:eth0' "$W/a/node.log" | grep -q 'by=node'; then
  ok "the node released L1's $L1 on its own $(( $(ms $t) / 1000 )) s after the task was deleted without DEL (--gc-after ${GC_AFTER:-10s}), logged"
else bad "L1 still held after $(( $(ms $t) / 1000 )) s: '$(held cni:weft:default-L1:eth0)'; $(grep attachment "$W/a/node.log" | tail -2)"; fi
[ -z "$(ls "$W/a/node/attachments" 2>/dev/null)" ] && ok "no attachment record is left in the data dir" || bad "records left: $(ls "$W/a/node/attachments")"

errs=$(grep -c 'level=error' "$W/a/containerd.log")
say "containerd logged $errs error line(s)"
for h in a b; do kill -0 ${NODE_PID[$h]} 2>/dev/null && ok "node $h still running" || bad "node $h died: $(tail -3 "$W/$h/node.log")"; done
finish
