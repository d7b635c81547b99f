#!/bin/bash
# docker-two-hosts.sh: Docker 20.10 containers on the Weft network through `weft docker-plugin`.
#
#   netns weft-dk-<pid>-a                               netns weft-dk-<pid>-b
#   dockerd A (own mount/PID ns): dA1 dA2 (dA3)         dockerd B: dB1        podman: pB1 (weft-cni)
#   weft docker-plugin A  (socket $W/a/plugin.sock)     weft docker-plugin B
#   weft0 (TUN of node A)                               weft0 (TUN of node B)
#   wdu-a 198.51.100.1/24 ======= underlay veth ======= wdu-b 198.51.100.2/24  (UDP 7946, encrypted)
#
# Each dockerd (tests/e2e/lib/dockerd.sh) has its own data root, exec root, API socket and
# pidfile, no bridge and no iptables, and finds its plugin through a spec file in its private
# /etc/docker/plugins. The image is `docker import`ed from a busybox-static root filesystem.
# Checks: network create with --driver weft --ipam-driver weft; addresses in `docker inspect`
# held by the node under docker: handles; the overlay MTU; pings and 20 MiB TCP across hosts,
# Docker <-> Docker and Docker <-> podman; Docker names resolve through Weft DNS on the other
# host (explicit server, --dns, and podman's resolv.conf); `docker rm` releases the address and
# the veth; garbage, huge and unknown calls on the plugin socket get JSON errors and nothing
# dies; a stopped node gives `docker run` a clear error; a node restart keeps containers
# reachable; at the end nothing docker: is left allocated and no wfd veth remains.
#
# Needs root, docker.io (20.10), podman, busybox-static, jq, python3. Output: one line per check,
# then exactly one line `N passed, M failed`. An EXIT trap stops every process by PID (plugins,
# dockerds with their PID namespaces, nodes), removes podman state, namespaces and files.
# env: WEFT_BIN, WEFT_CNI_BIN (as podman-two-hosts.sh), SIZE_MB (20), KEEP=1, LOGS_TO=DIR.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/cni/lib.sh"
. "$top/tests/e2e/lib/dockerd.sh"
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}
SHARED=${SHARED:-/work/shared/cni}
SIZE_MB=${SIZE_MB:-20}
IMG=weft/busybox
PIMG=localhost/ci-busybox:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in dockerd "$DOCKER_CLI" podman runc jq nsenter unshare ip busybox timeout md5sum python3 pgrep; do
  command -v $c >/dev/null || { echo "SKIP: missing $c (Debian: docker.io podman busybox-static jq python3)"; exit 0; }
done
"$DOCKER_CLI" --version 2>/dev/null | grep -q ' 20\.10\.' || { echo "SKIP: $DOCKER_CLI is not Docker 20.10 (Debian's docker.io)"; exit 0; }
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done
"$WEFT_BIN" docker-plugin --help >/dev/null 2>&1 || { echo "SKIP: $WEFT_BIN has no docker-plugin command"; exit 0; }
[ -x "$SHARED/build-image.sh" ] || { echo "SKIP: $SHARED/build-image.sh not found (set SHARED=)"; exit 0; }
[ -c /dev/net/tun ] || { echo "SKIP: /dev/net/tun missing"; exit 0; }

W=$(mktemp -d /tmp/weft-dk.XXXXXX)
chmod 0755 "$W"
NS_PREFIX=weft-dk-$$
declare -A NS=([a]=$NS_PREFIX-a [b]=$NS_PREFIX-b)
declare -A UNDER=([a]=198.51.100.1 [b]=198.51.100.2)
declare -A IFU=([a]=wdu-a [b]=wdu-b)
declare -A NODE_PID=() PLUGIN_PID=() DOCKERD=()
PORT=7946
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }

d() { local h=$1; shift; dk "$W/$h/dockerd" "$@"; }
pod() {
  local h=$1; shift
  CONTAINERS_CONF=$W/$h/containers.conf timeout 90 nsenter --net=/run/netns/${NS[$h]} \
    podman --root "$W/$h/root" --runroot "$W/$h/run" --tmpdir "$W/$h/tmp" "$@"
}
weft() { local h=$1; shift; timeout 20 "$WEFT_BIN" "$@" --data-dir "$W/$h/node"; }
stop_pid() { # stop_pid PID: TERM, bounded wait (5 s), KILL
  local p=$1
  kill "$p" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}

cleanup() {
  local rc=$?
  if [ -n "${LOGS_TO:-}" ]; then
    mkdir -p "$LOGS_TO" && for h in a b; do for f in node.log plugin.log cni.log dockerd/dockerd.log; do
      cp "$W/$h/$f" "$LOGS_TO/$h-$(basename $f)" 2>/dev/null; done; done
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W, netns ${NS[a]} ${NS[b]}"; return; fi
  for h in a b; do [ -n "${DOCKERD[$h]:-}" ] && d $h rm -f $(d $h ps -aq 2>/dev/null) >/dev/null 2>&1; done
  for h in a b; do [ -d "$W/$h/root" ] && { pod $h rm -f -t 0 --all >/dev/null 2>&1; pod $h rmi -f --all >/dev/null 2>&1; }; done
  for h in "${!DOCKERD[@]}"; do dockerd_stop "${DOCKERD[$h]}"; done
  for h in "${!PLUGIN_PID[@]}"; do stop_pid "${PLUGIN_PID[$h]}"; done
  for h in "${!NODE_PID[@]}"; do stop_pid "${NODE_PID[$h]}"; done
  for h in a b; do ip netns del "${NS[$h]}" 2>/dev/null; done
  awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- hosts, underlay, nodes --------------------------------------------------------------------
for h in a b; do ip netns add "${NS[$h]}" || { echo "SKIP: cannot create netns ${NS[$h]}"; exit 0; }; done
ip link add ${IFU[a]} netns ${NS[a]} type veth peer name ${IFU[b]} netns ${NS[b]}
for h in a b; do
  ip -n ${NS[$h]} link set lo up
  ip -n ${NS[$h]} addr add ${UNDER[$h]}/24 dev ${IFU[$h]}
  ip -n ${NS[$h]} link set ${IFU[$h]} up
  mkdir -p "$W/$h"/{node,net.d,root,run,tmp}
done
start_node() { # start_node HOST [extra args]
  local h=$1; shift
  nsenter --net=/run/netns/${NS[$h]} "$WEFT_BIN" start --data-dir "$W/$h/node" --listen ${UNDER[$h]}:$PORT \
    --name host-$h --profile fast "$@" >>"$W/$h/node.log" 2>&1 &
  NODE_PID[$h]=$!
}
start_node a
for _ in $(seq 150); do [ -s "$W/a/node/cluster.key" ] && weft a status >/dev/null 2>&1 && break; sleep 0.1; done
[ -s "$W/a/node/cluster.key" ] || { bad "node A did not start: $(tail -5 "$W/a/node.log")"; echo "$PASS passed, $FAIL failed"; exit 1; }
cp "$W/a/node/cluster.key" "$W/cluster.key"
start_node b --seed ${UNDER[a]}:$PORT --cluster-key-file "$W/cluster.key"
members_ok() {
  local h s
  for h in a b; do
    s=$(weft $h status --json 2>/dev/null) || return 1
    [ "$(jq -r '.members.alive // 0' <<<"$s")" = 2 ] || return 1
    [ -n "$(jq -r '.overlayAddress // empty' <<<"$s")" ] || return 1
  done
}
for _ in $(seq 200); do members_ok && break; sleep 0.1; done
declare -A OVL
for h in a b; do OVL[$h]=$(weft $h status --json 2>/dev/null | jq -r '.overlayAddress // empty'); done
members_ok && ok "both nodes see 2 alive members (overlay A ${OVL[a]}, B ${OVL[b]})" || bad "membership: $(weft a status --json 2>&1 | jq -c .members)"

# ---- plugins and dockerds --------------------------------------------------------------------------
start_plugin() {
  local h=$1
  nsenter --net=/run/netns/${NS[$h]} "$WEFT_BIN" docker-plugin --data-dir "$W/$h/node" --socket "$W/$h/plugin.sock" \
    --docker-host "$W/$h/dockerd/docker.sock" --log-file "$W/$h/plugin.log" >>"$W/$h/plugin.out" 2>&1 &
  PLUGIN_PID[$h]=$!
  for _ in $(seq 50); do [ -S "$W/$h/plugin.sock" ] && return 0; sleep 0.1; done
  return 1
}
make_busybox_tar "$W/rootfs.tar"
for h in a b; do
  start_plugin $h && ok "docker-plugin on host $h listens on $W/$h/plugin.sock" || bad "plugin $h: $(cat "$W/$h/plugin.out")"
  t=$(date +%s%N)
  if dockerd_start ${NS[$h]} "$W/$h/dockerd" "$W/$h/plugin.sock"; then
    DOCKERD[$h]=$DOCKERD_PID; ok "dockerd on host $h answers ($(ms $t) ms)"
  else DOCKERD[$h]=$DOCKERD_PID; bad "dockerd on host $h: $(tail -5 "$W/$h/dockerd/dockerd.log")"; fi
  d $h import --change 'CMD ["/bin/sh"]' "$W/rootfs.tar" $IMG >/dev/null 2>&1 || bad "docker import on host $h"
  d $h run --rm --network none $IMG true >/dev/null 2>&1 || bad "docker run --network none on host $h (the harness)"
  t=$(date +%s%N)
  if out=$(d $h network create --driver weft --ipam-driver weft weft 2>&1); then ok "docker network create --driver weft --ipam-driver weft weft on host $h ($(ms $t) ms)"
  else bad "network create on host $h: $out"; fi
done

# ---- containers ------------------------------------------------------------------------------------
dallocs() { weft $1 ipam --json 2>/dev/null | jq -c '[.allocations[] | select(.handle | startswith("docker:")) | {(.handle): .address}] | add // {}'; }
declare -A HOSTOF=([dA1]=a [dA2]=a [dA3]=a [dB1]=b [pB1]=b) CIP=()
drun() { # drun NAME [docker run flags]: start it, check inspect's address is held by its node and the MTU
  local n=$1 h=${HOSTOF[$1]} t; shift; t=$(date +%s%N)
  if ! d $h run -d --name $n --network weft "$@" $IMG sleep 600 >"$W/run-$n.log" 2>&1; then
    bad "docker run $n on host $h: $(tail -3 "$W/run-$n.log")"; return; fi
  local ms_run; ms_run=$(ms $t)
  CIP[$n]=$(d $h inspect -f '{{.NetworkSettings.Networks.weft.IPAddress}}' $n 2>/dev/null)
  local plen cidr; plen=$(d $h inspect -f '{{.NetworkSettings.Networks.weft.IPPrefixLen}}' $n 2>/dev/null)
  cidr=$(d $h exec $n ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')
  local held; held=$(dallocs $h | jq -r --arg ip "${CIP[$n]:-none}" 'to_entries[] | select(.value == $ip) | .key')
  if [[ "${CIP[$n]}" =~ ^10\.42\.[0-9]+\.[0-9]+$ ]] && [ "$plen" = 16 ] && [ "$cidr" = "${CIP[$n]}/16" ] && [[ "$held" == docker:* ]]; then
    ok "docker run $n on host $h ($ms_run ms): docker inspect shows ${CIP[$n]}/$plen = eth0's, held by node $h as $held"
  else bad "$n: inspect '${CIP[$n]}/$plen', eth0 '$cidr', node holds '$held'"; fi
  local cmtu tmtu; cmtu=$(d $h exec $n cat /sys/class/net/eth0/mtu 2>/dev/null)
  tmtu=$(ip -n ${NS[$h]} -j link show weft0 2>/dev/null | jq -r '.[0].mtu')
  [ -n "$cmtu" ] && [ "$cmtu" = "$tmtu" ] && ok "$n's eth0 MTU $cmtu = weft0's" || bad "$n MTU '$cmtu', weft0 '$tmtu'"
}
drun dA1; drun dA2; drun dB1

# podman with weft-cni on host b
if [ "$(basename "$WEFT_CNI_BIN")" = weft-cni ]; then PLUGIN_DIR=$(cd "$(dirname "$WEFT_CNI_BIN")" && pwd)
else mkdir -p "$W/bin"; cp "$WEFT_CNI_BIN" "$W/bin/weft-cni"; PLUGIN_DIR=$W/bin; fi
write_containers_conf "$W/b/containers.conf" "$W/b/net.d" "$PLUGIN_DIR"
cat >"$W/b/net.d/weft.conflist" <<EOF
{ "cniVersion": "1.0.0", "name": "weft",
  "plugins": [ { "type": "weft-cni", "dataDir": "$W/b/node", "logFile": "$W/b/cni.log" } ] }
EOF
CONTAINERS_CONF=$W/b/containers.conf IMG=$PIMG \
  PODMAN="timeout 60 nsenter --net=/run/netns/${NS[b]} podman --root $W/b/root --runroot $W/b/run --tmpdir $W/b/tmp" \
  "$SHARED/build-image.sh" >"$W/b/build.log" 2>&1 || bad "podman image import on host b: $(tail -3 "$W/b/build.log")"
if pod b run -d --name pB1 --network weft $PIMG sleep 600 >"$W/run-pB1.log" 2>&1; then
  CIP[pB1]=$(pod b exec pB1 ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
  [[ "${CIP[pB1]}" =~ ^10\.42\. ]] && ok "podman container pB1 on host b has ${CIP[pB1]} (weft-cni)" || bad "pB1 address '${CIP[pB1]}'"
else bad "podman run pB1: $(tail -3 "$W/run-pB1.log")"; fi

# ---- reachability --------------------------------------------------------------------------------
xping() { # xping FROM TO
  local f=$1 to=$2 h=${HOSTOF[$1]} out
  if [[ $f == p* ]]; then out=$(pod $h exec $f ping -c 3 -W 3 ${CIP[$to]:-0.0.0.0} 2>&1)
  else out=$(d $h exec $f ping -c 3 -W 3 ${CIP[$to]:-0.0.0.0} 2>&1); fi
  if [ $? = 0 ]; then ok "$f (${CIP[$f]:-?}) pings $to (${CIP[$to]:-?}) [$([ $h = ${HOSTOF[$to]} ] && echo same host || echo cross-host)]: $(grep -o 'round-trip.*' <<<"$out")"
  else bad "$f pings $to: $(tail -2 <<<"$out" | tr '\n' ' ')"; fi
}
xping dA1 dB1; xping dB1 dA1; xping dA1 dA2; xping dA1 pB1; xping pB1 dA1

SIZE=$((SIZE_MB * 1048576))
transfer() { # transfer SERVER CLIENT: SIZE_MB from SERVER's httpd to CLIENT's wget, md5 compared
  local s=$1 c=$2 sx cx
  if [[ $s == p* ]]; then sx="pod ${HOSTOF[$s]} exec"; else sx="d ${HOSTOF[$s]} exec"; fi
  cx="d ${HOSTOF[$c]} exec"
  $sx $s sh -c "mkdir -p /www && [ -s /www/blob ] || dd if=/dev/urandom of=/www/blob bs=1048576 count=$SIZE_MB 2>/dev/null" || bad "blob in $s"
  $sx -d $s httpd -f -p 8080 -h /www >/dev/null 2>&1
  local src; src=$($sx $s md5sum /www/blob 2>/dev/null | awk '{print $1}')
  sleep 0.5
  local t; t=$(date +%s%N)
  $cx $c timeout 60 wget -q -O /tmp/blob "http://${CIP[$s]:-0.0.0.0}:8080/blob" >"$W/wget-$s-$c.log" 2>&1
  local dt; dt=$(ms $t)
  local sz m5; read -r sz m5 < <($cx $c sh -c 'echo $(wc -c </tmp/blob) $(md5sum /tmp/blob)' 2>/dev/null | awk '{print $1, $2}')
  $cx $c rm -f /tmp/blob
  if [ "${sz:-0}" = "$SIZE" ] && [ -n "$src" ] && [ "${m5:-}" = "$src" ]; then
    ok "$SIZE_MB MiB over TCP $s -> $c intact (md5 $m5, $dt ms, $(awk -v b=$SIZE -v t=$dt 'BEGIN{printf "%.0f", b*8/1e6/(t/1000)}') Mbit/s)"
  else bad "transfer $s -> $c: size ${sz:-?} md5 ${m5:-?} (want $SIZE, ${src:-?}): $(tail -2 "$W/wget-$s-$c.log")"; fi
}
transfer dB1 dA1
transfer pB1 dA1

# ---- DNS: Docker names through Weft's resolver on the other host ----------------------------------
has_name() { weft $1 dns --json 2>/dev/null | jq -e --arg n "$2" --arg a "$3" 'any(.[]; .name == $n and .address == $a)' >/dev/null; }
for _ in $(seq 150); do has_name a db1 "${CIP[dB1]:-x}" && has_name b da1 "${CIP[dA1]:-x}" && break; sleep 0.1; done
has_name a db1 "${CIP[dB1]:-x}" && ok "node a knows db1 = ${CIP[dB1]} (dB1's name, learned from dockerd by plugin b, gossiped)" \
  || bad "node a dns: $(weft a dns --json 2>&1 | jq -c '[.[] | {name, address}]'); plugin b log: $(grep -i nam "$W/b/plugin.log" | tail -3)"
out=$(d a exec dA1 nslookup db1.weft.internal ${OVL[a]} 2>&1)
grep -q "Address.*${CIP[dB1]:-none}" <<<"$out" && ok "dA1 resolves db1.weft.internal -> ${CIP[dB1]} at node a's resolver" || bad "nslookup db1 in dA1: $(tr '\n' ' ' <<<"$out")"
out=$(d a run --rm --network weft --dns ${OVL[a]} --dns-search weft.internal $IMG ping -c 1 -W 3 db1 2>&1)
grep -q "${CIP[dB1]:-none}" <<<"$out" && grep -q '1 packets received' <<<"$out" \
  && ok "a container run with --dns ${OVL[a]} --dns-search weft.internal pings db1 by name (through Docker's embedded DNS)" \
  || bad "ping db1 by name with --dns: $(tr '\n' ' ' <<<"$out")"
out=$(pod b exec pB1 ping -c 1 -W 3 da1 2>&1)
grep -q "${CIP[dA1]:-none}" <<<"$out" && ok "podman pB1 (host b) pings Docker's da1 by name: $(head -1 <<<"$out")" || bad "pB1 ping da1: $(tr '\n' ' ' <<<"$out")"

# ---- docker rm releases --------------------------------------------------------------------------
drun dA3
a3ip=${CIP[dA3]:-none}
a3veths=$(ip -n ${NS[a]} -o link show 2>/dev/null | grep -c ': wfd')
t=$(date +%s%N); d a rm -f dA3 >/dev/null 2>&1
al=$(dallocs a)
jq -e --arg ip "$a3ip" 'to_entries | any(.value == $ip)' <<<"$al" >/dev/null \
  && bad "after docker rm dA3 node a still holds $a3ip: $al" || ok "docker rm dA3 released $a3ip ($(ms $t) ms; gone from weft ipam --json)"
[ "$(ip -n ${NS[a]} -o link show 2>/dev/null | grep -c ': wfd')" = $((a3veths - 1)) ] && ok "dA3's host veth is gone" \
  || bad "wfd veths on a: $(ip -n ${NS[a]} -o link show | grep -o 'wfd[0-9a-f]*' | tr '\n' ' ')"

# ---- the plugin socket under bad input --------------------------------------------------------
cat >"$W/raw.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(15); s.connect(sys.argv[1])
data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
if sys.argv[3:] == ["huge"]: data = b"POST /IpamDriver.RequestAddress HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n" + b"x" * 65536
try: s.sendall(data)
except OSError: pass
out = b""
try:
    while True:
        c = s.recv(65536)
        if not c: break
        out += c
        if b"\r\n\r\n" in out and len(out.split(b"\r\n\r\n", 1)[1]) >= int((out.lower().split(b"content-length: ")[1:] or [b"0\r"])[0].split(b"\r")[0]): break
except OSError: pass
print(out.decode("latin-1"))
PY
probe() { timeout 20 python3 "$W/raw.py" "$W/a/plugin.sock" "$@" 2>&1 | tr -d '\r' | tr '\n' ' '; }
r=$(probe '\x00\x01garbage\xff\r\n\r\n'); [[ "$r" == *"HTTP/1.1 400"*'"Err":'* ]] && ok "garbage -> ${r:0:110}" || bad "garbage -> '$r'"
r=$(probe 'POST /NetworkDriver.Frobnicate HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}'); [[ "$r" == *"HTTP/1.1 404"*'"Err":'* ]] && ok "unknown method -> ${r:0:120}" || bad "unknown method -> '$r'"
r=$(probe 'POST /NetworkDriver.Join HTTP/1.1\r\nContent-Length: 5\r\n\r\n{nope'); [[ "$r" == *"HTTP/1.1 400"*'not JSON'* ]] && ok "malformed JSON -> 400 JSON error" || bad "bad JSON -> '$r'"
r=$(probe x huge); [[ "$r" == *"HTTP/1.1 413"*'"Err":'* ]] && ok "huge body -> 413 JSON error" || bad "huge body -> '$r'"
r=$(probe 'GET /Plugin.Activate HTTP/1.1\r\n\r\n'); [[ "$r" == *"HTTP/1.1 405"* ]] && ok "GET -> 405 JSON error" || bad "GET -> '$r'"
r=$(probe 'POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\n\r\n'); [[ "$r" == *'"Implements":["NetworkDriver","IpamDriver"]'* ]] && ok "and then Plugin.Activate still answers" || bad "Activate after garbage: '$r'"
for h in a b; do kill -0 ${NODE_PID[$h]} 2>/dev/null && kill -0 ${PLUGIN_PID[$h]} 2>/dev/null && ok "node and plugin on host $h still running" || bad "node/plugin on $h died"; done

# ---- node down: a clear error; node restart: containers stay reachable ----------------------------
stop_pid ${NODE_PID[a]}; unset 'NODE_PID[a]'
out=$(d a run --rm --network weft $IMG true 2>&1); rc=$?
[ $rc != 0 ] && grep -q 'no weft node is running' <<<"$out" && ok "node a stopped: docker run fails clearly: $(grep -m1 'no weft node is running' <<<"$out" | cut -c1-220)" \
  || bad "docker run with node a stopped: rc=$rc $(tr '\n' ' ' <<<"$out")"
kill -0 ${PLUGIN_PID[a]} 2>/dev/null && ok "plugin a survives its node stopping" || bad "plugin a died with its node"
a2ip=${CIP[dA2]:-none}
d a rm -f dA2 >"$W/rm-dA2.log" 2>&1 && ok "docker rm dA2 with node a stopped succeeds" || bad "docker rm dA2 with the node down: $(cat "$W/rm-dA2.log")"
start_node a
for _ in $(seq 200); do members_ok && break; sleep 0.1; done
members_ok && ok "node a restarted and rejoined" || bad "node a did not come back: $(tail -3 "$W/a/node.log")"
for _ in $(seq 50); do dallocs a | jq -e --arg ip "$a2ip" 'to_entries | any(.value == $ip)' >/dev/null || break; sleep 0.2; done
dallocs a | jq -e --arg ip "$a2ip" 'to_entries | any(.value == $ip)' >/dev/null \
  && bad "dA2's $a2ip is still held after node a came back: $(dallocs a)" || ok "the plugin released dA2's $a2ip itself once node a answered again"
for _ in $(seq 50); do d a exec dA1 ping -c 1 -W 1 ${CIP[dB1]:-0.0.0.0} >/dev/null 2>&1 && break; sleep 0.2; done
xping dA1 dB1; xping dB1 dA1
dallocs a | jq -e --arg ip "${CIP[dA1]:-x}" 'to_entries | any(.value == $ip)' >/dev/null && ok "dA1's ${CIP[dA1]} still held after the restart" || bad "dA1 address lost: $(dallocs a)"
drun dA3

# ---- Docker restarts: clean stop, then SIGKILL; no leaked address, no stale veth -------------------
docker_side_clean() { # docker_side_clean HOST: no docker: allocation and no wfd/wfp veth on HOST
  [ "$(dallocs $1 | jq 'length')" = 0 ] && [ "$(ip -n ${NS[$1]} -o link show 2>/dev/null | grep -c ': wf[dp]')" = 0 ]
}
restart_dockerd_b() { # restart_dockerd_b TERM|KILL
  local c pidns=""; c=$(pgrep -P "${DOCKERD[b]}" 2>/dev/null | head -1)
  [ -n "$c" ] && pidns=$(readlink "/proc/$c/ns/pid" 2>/dev/null)
  if [ "$1" = KILL ]; then kill -KILL "$c" 2>/dev/null; fi
  dockerd_stop "${DOCKERD[b]}"; unset 'DOCKERD[b]'
  # After a SIGKILL dockerd_stop cannot see the PID namespace any more (its PID 1 is gone), so
  # wait here until the kernel has killed the rest of it (containerd, shims): a containerd still
  # dying holds its database lock, and the new dockerd's containerd then times out starting.
  [ -n "$pidns" ] && dockerd_wait_pidns_empty "$pidns"
  local t; t=$(date +%s%N)
  if dockerd_start ${NS[b]} "$W/b/dockerd" "$W/b/plugin.sock"; then DOCKERD[b]=$DOCKERD_PID; say "dockerd b restarted ($(ms $t) ms)"
  else DOCKERD[b]=$DOCKERD_PID; bad "dockerd b restart: $(tail -3 "$W/b/dockerd/dockerd.log")"; fi
}
b1ip=${CIP[dB1]:-none}
restart_dockerd_b TERM
for _ in $(seq 50); do docker_side_clean b && break; sleep 0.2; done
docker_side_clean b && ok "dockerd b stopped cleanly and restarted: dB1's $b1ip released, no wfd/wfp veth left" \
  || bad "after a clean dockerd restart on b: allocations $(dallocs b), veths $(ip -n ${NS[b]} -o link show | grep -c ': wf[dp]')"
if d b start dB1 >/dev/null 2>&1; then
  CIP[dB1]=$(d b inspect -f '{{.NetworkSettings.Networks.weft.IPAddress}}' dB1 2>/dev/null)
  xping dA1 dB1
else bad "docker start dB1 after the dockerd restart"; fi
b1ip=${CIP[dB1]:-none}
restart_dockerd_b KILL
# dockerd cleans up the sandboxes of containers that died with it when it starts again.
for _ in $(seq 75); do docker_side_clean b && break; sleep 0.2; done
docker_side_clean b && ok "dockerd b SIGKILLed (containers died with it) and restarted: $b1ip released, no wfd/wfp veth left" \
  || bad "after dockerd SIGKILL + restart on b: allocations $(dallocs b), veths $(ip -n ${NS[b]} -o link show | grep -o 'wf[dp][0-9a-f]*' | tr '\n' ' ')"
for _ in $(seq 50); do has_name a db1 "$b1ip" || break; sleep 0.1; done
has_name a db1 "$b1ip" && bad "db1 ($b1ip) is still in node a's DNS" || ok "dB1's name went with its address"
if d b start dB1 >/dev/null 2>&1; then
  CIP[dB1]=$(d b inspect -f '{{.NetworkSettings.Networks.weft.IPAddress}}' dB1 2>/dev/null)
  xping dA1 dB1
else bad "docker start dB1 after the SIGKILL restart"; fi

# ---- nothing leaks ---------------------------------------------------------------------------------
for h in a b; do d $h rm -f $(d $h ps -aq) >/dev/null 2>&1; done
sleep 0.5
for h in a b; do
  n=$(dallocs $h | jq 'length'); v=$(ip -n ${NS[$h]} -o link show 2>/dev/null | grep -c ': wf[dp]')
  [ "$n" = 0 ] && [ "$v" = 0 ] && ok "host $h: all Docker containers removed, no docker: allocation and no wfd/wfp veth left" \
    || bad "host $h leaks: allocations $(dallocs $h), veths $v"
done
for h in a b; do d $h network rm weft >/dev/null 2>&1 && ok "docker network rm weft on host $h" || bad "network rm on $h"; done
errs=$(grep -h ' error: ' "$W"/{a,b}/plugin.log 2>/dev/null | grep -vc 'no weft node is running')
[ "$errs" = 0 ] && ok "no unexpected plugin errors ($(grep -ho 'POST /[A-Za-z.]*' "$W"/{a,b}/plugin.log | sort | uniq -c | awk '{printf "%s %s, ", $3, $1}'))" \
  || bad "$errs plugin errors: $(grep -h ' error: ' "$W"/{a,b}/plugin.log | head -3)"

say "total"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
