#!/bin/bash
# dns-podman.sh: cluster DNS end to end with real podman containers on two simulated hosts.
#
#   netns weft-dns-<pid>-a                              netns weft-dns-<pid>-b
#   [alpha] [svc]                                       [beta] [svc]
#     | veth (weft-cni; resolv.conf from the CNI result)  | veth
#   weft0 (node A; resolver on A's overlay addr :53)    weft0 (node B; resolver on B's :53)
#   wpu-a 198.51.100.1/24 ======= underlay veth ======= wpu-b 198.51.100.2/24
#   dnsmasq (test-made upstream, 198.51.100.1:5353: outside.example → 192.0.2.77, nothing else)
#
# Both nodes start with `--dns-upstream 198.51.100.1:5353`, so no query ever reaches the
# machine's own resolver (and the namespaces have no route out of 198.51.100.0/24 and 10.42/16).
# Checks (each counted): resolv.conf of a container written from the CNI result (nameserver =
# its node's overlay address, search weft.internal); a container on A resolves a container on B
# by bare name and connects to it by name (wget over HTTP, ping), and the other way round; two
# containers named `svc` on different hosts are both answered, from either node; `podman rm` on
# B makes the name disappear on A (bounded wait, time printed); a node killed with -9 has its
# names go on the other once declared dead; the restarted node serves its names again at once
# and the other node shows them again; an outside name resolves through the upstream, from a
# container; an unknown name in the domain is an authoritative NXDOMAIN at once (dig query time)
# and a container's failed lookup returns quickly (no fall-through delay).
#
# Everything lives in namespaces named weft-dns-<pid>-*; nothing is changed in the namespace the
# script runs in. An EXIT trap removes containers, images, storage, dnsmasq and the nodes (by
# PID) and the namespaces.
#
# Needs root and (Debian 12): podman runc containernetworking-plugins busybox-static catatonit
#   iptables jq iproute2 util-linux dnsutils (dig) dnsmasq-base.
# env: WEFT_BIN, WEFT_CNI_BIN (default .build/release/…, else .build/debug/…), SHARED (folder of
#      build-image.sh, default /work/shared/cni), KEEP=1, LOGS_TO=DIR.
# Output: one line per check with the elapsed time, then exactly one line `N passed, M failed`.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/cni/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-${WEFT:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-${WEFT_CNI:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}}
SHARED=${SHARED:-/work/shared/cni}
IMG=localhost/ci-busybox:latest
DOMAIN=weft.internal

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in podman runc conmon jq nsenter ip busybox timeout dig; do
  command -v $c >/dev/null || { echo "SKIP: missing $c (apt-get install the packages named in the header)"; exit 0; }
done
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || { echo "SKIP: missing dnsmasq (apt-get install dnsmasq-base)"; exit 0; }
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done
[ -x "$SHARED/build-image.sh" ] || { echo "SKIP: $SHARED/build-image.sh not found (set SHARED=)"; exit 0; }
[ -c /dev/net/tun ] || { echo "SKIP: /dev/net/tun missing"; exit 0; }

W=$(mktemp -d /tmp/weft-dns.XXXXXX)
chmod 0755 "$W"
NS_PREFIX=weft-dns-$$
declare -A NS=([a]=$NS_PREFIX-a [b]=$NS_PREFIX-b)
declare -A UNDER=([a]=198.51.100.1 [b]=198.51.100.2)
declare -A IFU=([a]=wpu-a [b]=wpu-b)
declare -A NODE_PID=()
UPSTREAM=${UNDER[a]}:5353
OUTSIDE_IP=192.0.2.77
PORT=7946
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }

pod() {
  local h=$1; shift
  CONTAINERS_CONF=$W/$h/containers.conf timeout 90 nsenter --net=/run/netns/${NS[$h]} \
    podman --root "$W/$h/root" --runroot "$W/$h/run" --tmpdir "$W/$h/tmp" "$@"
}
weft() { local h=$1; shift; timeout 20 "$WEFT_BIN" "$@" --data-dir "$W/$h/node"; }
# q HOST NAME [dig args…]: ask node HOST's resolver (from inside HOST's namespace), short output.
q() { local h=$1 n=$2; shift 2; timeout 10 nsenter --net=/run/netns/${NS[$h]} dig @"${OVL[$h]:-127.0.0.1}" +tries=1 +time=2 "$@" "$n"; }
qa() { q "$1" "$2" +short A | grep -E '^[0-9.]+$' | sort | tr '\n' ' ' | sed 's/ $//'; }

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
  [ -s "$W/dnsmasq.pid" ] && kill "$(cat "$W/dnsmasq.pid")" 2>/dev/null
  for h in a b; do ip netns del "${NS[$h]}" 2>/dev/null; done
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

# ---- the test-made upstream resolver (never the machine's) ------------------------------------
nsenter --net=/run/netns/${NS[a]} "$DNSMASQ" --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --bind-interfaces --listen-address=${UNDER[a]} --port=5353 --address=/outside.example/$OUTSIDE_IP \
  --pid-file="$W/dnsmasq.pid" --user=root --group=root --log-facility="$W/dnsmasq.log" 2>"$W/dnsmasq.err"
for _ in $(seq 30); do [ -s "$W/dnsmasq.pid" ] && break; sleep 0.1; done
got=$(timeout 5 nsenter --net=/run/netns/${NS[a]} dig @${UNDER[a]} -p 5353 +short +tries=1 +time=1 outside.example 2>&1)
[ "$got" = $OUTSIDE_IP ] && ok "test-made upstream dnsmasq on $UPSTREAM answers outside.example = $OUTSIDE_IP" \
  || bad "upstream dnsmasq: '$got' $(cat "$W/dnsmasq.err")"

# ---- weft nodes --------------------------------------------------------------------------------
start_node() { # start_node HOST [extra args]
  local h=$1; shift
  nsenter --net=/run/netns/${NS[$h]} "$WEFT_BIN" start --data-dir "$W/$h/node" --listen ${UNDER[$h]}:$PORT \
    --name host-$h --profile fast --dns-upstream $UPSTREAM "$@" >>"$W/$h/node.log" 2>&1 &
  NODE_PID[$h]=$!
}
start_node a
for _ in $(seq 150); do [ -s "$W/a/node/cluster.key" ] && weft a status >/dev/null 2>&1 && break; sleep 0.1; done  # ≤ 15 s
[ -s "$W/a/node/cluster.key" ] || { bad "node A did not start: $(tail -5 "$W/a/node.log")"; echo "$PASS passed, $FAIL failed"; exit 1; }
cp "$W/a/node/cluster.key" "$W/cluster.key"
B_ARGS=(--seed ${UNDER[a]}:$PORT --cluster-key-file "$W/cluster.key")
start_node b "${B_ARGS[@]}"

declare -A OVL
members_ok() { # both see 2 alive, have an overlay address, and their resolver listens
  local h s
  for h in a b; do
    s=$(weft $h status --json 2>/dev/null) || return 1
    [ "$(jq -r '.members.alive // 0' <<<"$s")" = 2 ] || return 1
    [ -n "$(jq -r '.overlayAddress // empty' <<<"$s")" ] || return 1
    [ "$(jq -r '.dnsAddress // empty' <<<"$s")" = "$(jq -r '.overlayAddress' <<<"$s"):53" ] || return 1
  done
}
t=$(date +%s%N)
for _ in $(seq 200); do members_ok && break; sleep 0.1; done  # ≤ 20 s
for h in a b; do OVL[$h]=$(weft $h status --json 2>/dev/null | jq -r '.overlayAddress // empty'); done
if members_ok; then ok "2 alive members; resolvers on A ${OVL[a]}:53 and B ${OVL[b]}:53 after $(ms $t) ms"
else bad "membership/dns: A=$(weft a status --json 2>&1 | jq -c '{members,overlayAddress,dnsAddress,warnings}' 2>&1) B=$(weft b status --json 2>&1 | jq -c '{members,overlayAddress,dnsAddress,warnings}' 2>&1)"; fi

# ---- podman per host -----------------------------------------------------------------------------
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
  CONTAINERS_CONF=$W/$h/containers.conf IMG=$IMG \
    PODMAN="timeout 60 nsenter --net=/run/netns/${NS[$h]} podman --root $W/$h/root --runroot $W/$h/run --tmpdir $W/$h/tmp" \
    "$SHARED/build-image.sh" >"$W/$h/build.log" 2>&1 || bad "image import on host $h: $(tail -3 "$W/$h/build.log")"
done

declare -A CIP=()
run_ctr() { # run_ctr HOST NAME: a container serving HTTP on 8080 (/www/who = its name)
  local h=$1 n=$2
  if pod $h run -d --name $n --network weft $IMG sh -c "mkdir -p /www && echo $n-on-$h > /www/who && httpd -f -p 8080 -h /www" >"$W/run-$h-$n.log" 2>&1; then
    CIP[$h-$n]=$(pod $h exec $n ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
    say "podman run $n on host $h: ${CIP[$h-$n]}"
  else bad "podman run $n on host $h: $(tail -3 "$W/run-$h-$n.log")"; fi
}
run_ctr a alpha; run_ctr b beta; run_ctr a svc; run_ctr b svc

rc=$(pod a exec alpha cat /etc/resolv.conf 2>&1)
if grep -qx "nameserver ${OVL[a]}" <<<"$rc" && grep -q "^search.* $DOMAIN\b\|^search $DOMAIN" <<<"$rc" \
   && [ "$(grep -m1 '^nameserver' <<<"$rc")" = "nameserver ${OVL[a]}" ]; then
  ok "alpha's resolv.conf (from the CNI result): first nameserver ${OVL[a]}, search $DOMAIN"
else bad "alpha's resolv.conf: $(tr '\n' '|' <<<"$rc")"; fi

# ---- names reach the other node ---------------------------------------------------------------------
wait_answer() { # wait_answer HOST NAME WANT SECONDS: until HOST answers NAME with exactly WANT (sorted, spaces)
  local h=$1 n=$2 want=$3 end=$(( $(date +%s) + $4 ))
  while [ "$(date +%s)" -le $end ]; do [ "$(qa $h $n.$DOMAIN)" = "$want" ] && return 0; sleep 0.1; done
  return 1
}
t=$(date +%s%N)
if wait_answer a beta "${CIP[b-beta]:-none}" 10; then ok "node A answers beta.$DOMAIN = ${CIP[b-beta]} ($(ms $t) ms after the run returned)"
else bad "node A for beta.$DOMAIN: '$(qa a beta.$DOMAIN)' (want ${CIP[b-beta]:-?})"; fi
wait_answer b alpha "${CIP[a-alpha]:-none}" 10 && ok "node B answers alpha.$DOMAIN = ${CIP[a-alpha]}" \
  || bad "node B for alpha.$DOMAIN: '$(qa b alpha.$DOMAIN)' (want ${CIP[a-alpha]:-?})"

# Inside containers: bare names through the search domain, then connect by name.
lookup_in() { # lookup_in HOST CTR NAME → addresses busybox nslookup printed (sorted)
  pod $1 exec $2 timeout 10 nslookup -type=a $3 2>/dev/null | awk '/^Name:/ {n=1} n && /^Address/ {print $NF}' | sort | tr '\n' ' ' | sed 's/ $//'
}
cross() { # cross FROMHOST FROM TOHOST TO
  local fh=$1 f=$2 th=$3 to=$4 got want=${CIP[$3-$4]:-none}
  got=$(lookup_in $fh $f $to)
  [ "$got" = "$want" ] && ok "$f (host $fh) resolves bare name '$to' = $want (nslookup, search domain)" \
    || bad "$f (host $fh) nslookup $to: '$got' (want $want): $(pod $fh exec $f nslookup -type=a $to 2>&1 | tr '\n' '|')"
  got=$(pod $fh exec $f timeout 10 wget -q -O - http://$to:8080/who 2>&1)
  [ "$got" = "$to-on-$th" ] && ok "$f (host $fh) fetched http://$to:8080/who by name across hosts: '$got'" \
    || bad "$f wget http://$to:8080/who: '$got'"
  got=$(pod $fh exec $f ping -c 2 -W 3 $to 2>&1)
  grep -q "PING $to ($want)" <<<"$got" && grep -q ' 0% packet loss' <<<"$got" \
    && ok "$f (host $fh) pings '$to' by name ($want): $(grep -o 'round-trip.*' <<<"$got")" \
    || bad "$f ping $to: $(tr '\n' '|' <<<"$got")"
}
cross a alpha b beta
cross b beta a alpha

# ---- two containers of one name on two hosts: both answered ------------------------------------------
want_svc=$(printf '%s\n' "${CIP[a-svc]:-x}" "${CIP[b-svc]:-y}" | sort | tr '\n' ' ' | sed 's/ $//')
for h in a b; do
  wait_answer $h svc "$want_svc" 10 && ok "node $h answers svc.$DOMAIN with both containers named svc: $want_svc" \
    || bad "node $h svc.$DOMAIN: '$(qa $h svc.$DOMAIN)' (want '$want_svc')"
done
got=$(lookup_in a alpha svc)
[ "$got" = "$want_svc" ] && ok "alpha's nslookup svc lists both: $got" || bad "alpha's nslookup svc: '$got' (want '$want_svc')"
firsts=$(for _ in 1 2 3 4; do q a svc.$DOMAIN +short A | head -1; done | sort -u | wc -l)
[ "$firsts" = 2 ] && ok "svc's answers rotate (both addresses come first over 4 queries)" || bad "svc's first answer over 4 queries: $firsts distinct"

# ---- unknown names: authoritative NXDOMAIN at once --------------------------------------------------
out=$(q a nosuch.$DOMAIN A)
qt=$(grep -o 'Query time: [0-9]* msec' <<<"$out" | grep -o '[0-9]*')
if grep -q 'status: NXDOMAIN' <<<"$out" && grep -q 'flags:.* aa' <<<"$out" && [ "${qt:-999}" -lt 50 ]; then
  ok "nosuch.$DOMAIN: authoritative NXDOMAIN in ${qt} ms"
else bad "nosuch.$DOMAIN: $(grep -E 'status|flags|Query time' <<<"$out" | tr '\n' '|')"; fi
t=$(date +%s%N)
pod a exec alpha ping -c 1 -W 1 nosuch >"$W/nosuch.log" 2>&1; prc=$?
d=$(ms $t)
if [ $prc -ne 0 ] && grep -qi 'bad address' "$W/nosuch.log" && [ "$d" -lt 1500 ]; then
  ok "alpha's lookup of bare 'nosuch' fails at once ($d ms including podman exec; no fall-through delay)"
else bad "alpha ping nosuch: rc $prc after $d ms: $(tr '\n' '|' <"$W/nosuch.log")"; fi

# ---- outside names through the test-made upstream ---------------------------------------------------
got=$(lookup_in a alpha outside.example)
[ "$got" = $OUTSIDE_IP ] && ok "alpha resolves outside.example = $OUTSIDE_IP through node A and the upstream" \
  || bad "alpha nslookup outside.example: '$got'"
got=$(qa b outside.example)
[ "$got" = $OUTSIDE_IP ] && ok "node B forwards outside.example to the upstream: $got" || bad "node B outside.example: '$got'"

# ---- podman rm on B: the name goes on A ---------------------------------------------------------------
t=$(date +%s%N); pod b rm -f -t 0 beta >/dev/null 2>&1; rmms=$(ms $t)
t=$(date +%s%N)
gone=0; for _ in $(seq 100); do q a beta.$DOMAIN A | grep -q 'status: NXDOMAIN' && { gone=1; break; }; sleep 0.1; done  # ≤ 10 s+
[ $gone = 1 ] && ok "podman rm beta on B ($rmms ms): beta.$DOMAIN is NXDOMAIN on A $(ms $t) ms later" \
  || bad "after podman rm beta on B, node A still answers: '$(qa a beta.$DOMAIN)'"

# ---- a node killed with -9: its names go once it is declared dead ----------------------------------
kill -9 ${NODE_PID[b]}; wait ${NODE_PID[b]} 2>/dev/null; unset 'NODE_PID[b]'
t=$(date +%s%N)
if wait_answer a svc "${CIP[a-svc]:-x}" 60; then
  ok "node B killed (-9): node A answers svc.$DOMAIN with its own container only, $(ms $t) ms later (dead: $(weft a status --json 2>/dev/null | jq -c '.members'))"
else bad "node B killed: A still answers svc = '$(qa a svc.$DOMAIN)' after $(ms $t) ms; members $(weft a status --json 2>/dev/null | jq -c '.members')"; fi
out=$(q a svc.$DOMAIN A); grep -q 'status: NOERROR' <<<"$out" && [ "$(qa a alpha.$DOMAIN)" = "${CIP[a-alpha]:-x}" ] \
  && ok "A's own names still answered while B is dead" || bad "A's own names while B is dead: $(grep status <<<"$out")"

# ---- restart: B keeps its names -----------------------------------------------------------------------
start_node b "${B_ARGS[@]}"
t=$(date +%s%N)
for _ in $(seq 150); do [ "$(weft b status --json 2>/dev/null | jq -r '.dnsAddress // empty')" = "${OVL[b]}:53" ] && break; sleep 0.1; done
if wait_answer b svc "$want_svc" 15; then ok "restarted node B serves svc.$DOMAIN = $want_svc again ($(ms $t) ms after start)"
else bad "restarted node B: svc = '$(qa b svc.$DOMAIN)' (want '$want_svc'), status $(weft b status --json 2>&1 | jq -c '{members,dnsAddress,dnsRecords,warnings}' 2>&1)"; fi
if wait_answer a svc "$want_svc" 30; then ok "node A answers B's svc again after B came back ($(ms $t) ms after start)"
else bad "node A after B's restart: svc = '$(qa a svc.$DOMAIN)' (want '$want_svc')"; fi
got=$(pod b exec svc timeout 10 wget -q -O - http://alpha:8080/who 2>&1)
[ "$got" = alpha-on-a ] && ok "B's svc fetches http://alpha:8080/who by name after the restart" || bad "B's svc wget alpha after restart: '$got'"

for h in a b; do kill -0 ${NODE_PID[$h]} 2>/dev/null && ok "node $h still running" || bad "node $h died: $(tail -3 "$W/$h/node.log")"; done
errs=$(cat "$W"/{a,b}/cni.log 2>/dev/null | grep -c ' error ')
[ "$errs" = 0 ] && ok "no weft-cni call failed" || bad "$errs weft-cni calls failed: $(grep -h ' error ' "$W"/{a,b}/cni.log | head -3)"

say "total"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
