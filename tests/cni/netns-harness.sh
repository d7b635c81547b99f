#!/bin/bash
# Real-kernel test of weft-cni: a --no-tun weft node on 127.0.0.1, a test-made "host" network
# namespace (the plugin runs inside it, like podman's namespace) and test-made container
# namespaces. Nothing is configured in the machine's own namespace; everything is removed in
# the EXIT trap. Needs root, iproute2, util-linux (nsenter) and jq.
#
# usage: tests/cni/netns-harness.sh            (builds nothing; uses .build/debug by default)
# env:   WEFT=path/to/weft  WEFT_CNI=path/to/weft-cni
# Prints one line per check and a closing "N passed, M failed"; exit 1 when anything failed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
WEFT=${WEFT:-$top/.build/debug/weft}
WEFT_CNI=${WEFT_CNI:-$top/.build/debug/weft-cni}

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (network namespaces)"; exit 0; fi
for t in ip nsenter jq; do command -v $t >/dev/null || { echo "SKIP: needs $t"; exit 0; }; done
for b in "$WEFT" "$WEFT_CNI"; do [ -x "$b" ] || { echo "SKIP: $b not built (swift build --product weft; swift build --product weft-cni)"; exit 0; }; done

pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   - $*"; }
bad()  { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

id=$$
H=weftcni-$id-h
NS=()
D=$(mktemp -d /tmp/weftcni-harness.XXXXXX)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  for n in "${NS[@]}" "$H"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT

newns() { ip netns add "weftcni-$id-$1" && NS+=("weftcni-$id-$1"); }
. "$top/tests/cni/lib.sh"
port=$(free_port)

start_node() {
  "$WEFT" start --no-tun --data-dir "$D/node" --listen 127.0.0.1:$port --profile fast >>"$D/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 100); do  # bounded: 10 s
    "$WEFT" status --data-dir "$D/node" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node did not start:"; tail -20 "$D/node.log"; return 1
}
stop_node() { kill "$node_pid" 2>/dev/null; wait "$node_pid" 2>/dev/null; node_pid=""; }

mkdir -p "$D/node"
ip netns add "$H" || { echo "cannot create namespaces"; exit 1; }
start_node || exit 1

CONF=$(jq -cn --arg d "$D/node" --arg l "$D/cni.log" \
  '{cniVersion:"1.1.0", name:"weftnet", type:"weft-cni", dataDir:$d, defaultRoute:true, logFile:$l}')

# cni COMMAND CID [stdin] : runs the plugin in the host namespace with a podman-like near-empty
# environment; CNI_NETNS is the container's namespace unless NETNS is set.
cni() {
  local cmd=$1 cid=$2 input=${3:-$CONF}
  local netns=${NETNS-/run/netns/weftcni-$id-$cid}
  printf '%s' "$input" | nsenter --net=/run/netns/$H env -i PATH=/usr/bin:/bin HOME=/root \
    CNI_COMMAND=$cmd CNI_CONTAINERID=$cid CNI_NETNS=$netns CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=$cid" "$WEFT_CNI"
}
with_prev() { jq -c --argjson p "$1" '. + {prevResult: $p}' <<<"$CONF"; }
allocs() { "$WEFT" ipam --data-dir "$D/node" --json | jq -c '[.allocations[] | {(.handle): .address}] | add // {}'; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
hostif() { jq -r '.interfaces[0].name' <<<"$1"; }
export -f cni allocs
export CONF H id WEFT WEFT_CNI D
addr_of() { jq -r '.ips[0].address' <<<"$1"; }

# --- VERSION / STATUS
out=$(printf '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$WEFT_CNI")
check "VERSION lists 1.1.0 with an empty environment" jq -e '.supportedVersions | index("1.1.0")' <<<"$out"
check "STATUS succeeds with the node up" cni STATUS none

# --- ADD
newns c1
t0=$(date +%s%N); r1=$(cni ADD c1); rc=$?; add_ms=$(ms $t0)
if [ $rc = 0 ]; then ok "ADD c1 (${add_ms} ms)"; else bad "ADD c1: $r1"; fi
a1=$(addr_of "$r1"); ip1=${a1%/*}; h1=$(hostif "$r1")
check "ADD result: 10.42 address on interface 1" jq -e '(.ips[0].address | startswith("10.42.")) and .ips[0].interface == 1 and .interfaces[1].sandbox != null' <<<"$r1"
check "eth0 in c1 has $a1" bash -c "ip -n weftcni-$id-c1 -j addr show dev eth0 | jq -e '.[0].addr_info[] | select(.local == \"$ip1\" and .prefixlen == ${a1#*/})'"
check "eth0 in c1 is up with MTU 1420" bash -c "ip -n weftcni-$id-c1 -j link show eth0 | jq -e '.[0].mtu == 1420 and (.[0].flags | index(\"UP\"))'"
check "host end $h1 is up with MTU 1420" bash -c "ip -n $H -j link show $h1 | jq -e '.[0].mtu == 1420 and (.[0].flags | index(\"UP\"))'"
check "lo up in c1" bash -c "ip -n weftcni-$id-c1 -j link show lo | jq -e '.[0].flags | index(\"UP\")'"
check "c1 routes the cluster subnet via eth0" bash -c "ip -n weftcni-$id-c1 route show 10.42.0.0/16 | grep -q 'dev eth0'"
check "c1 has a default route via eth0 (defaultRoute)" bash -c "ip -n weftcni-$id-c1 route show default | grep -q 'dev eth0'"
check "host routes $ip1/32 to $h1" bash -c "ip -n $H route show $ip1 | grep -q 'dev $h1'"
check "proxy_arp=1 and proxy_delay=0 on $h1" bash -c "[ \$(ip netns exec $H cat /proc/sys/net/ipv4/conf/$h1/proxy_arp) = 1 ] && [ \$(ip netns exec $H cat /proc/sys/net/ipv4/neigh/$h1/proxy_delay) = 0 ]"
check "the node holds $ip1 for cni:weftnet:c1:eth0" bash -c "[ \"\$(allocs | jq -r '.\"cni:weftnet:c1:eth0\"')\" = $ip1 ]"

r1b=$(cni ADD c1)
check "repeated ADD returns the same address" test "$(addr_of "$r1b")" = "$a1"
check "repeated ADD keeps one veth in the host namespace" test "$(ip -n $H -o link show type veth | wc -l)" = 1

# --- CHECK
check "CHECK passes after ADD" cni CHECK c1 "$(with_prev "$r1")"

# --- two containers on one host namespace
newns c2
r2=$(cni ADD c2); ip2=$(addr_of "$r2"); ip2=${ip2%/*}
check "ADD c2 gets another address" test -n "$ip2" -a "$ip2" != "$ip1"
check "c1 pings c2 through the host routes" ip netns exec weftcni-$id-c1 ping -c 2 -W 2 -i 0.2 "$ip2"
check "c2 pings c1 through the host routes" ip netns exec weftcni-$id-c2 ping -c 2 -W 2 -i 0.2 "$ip1"

# --- CHECK after the container interface is gone
ip -n weftcni-$id-c2 link del eth0
out=$(cni CHECK c2 "$(with_prev "$r2")"); rc=$?
check "CHECK fails after eth0 was deleted (code 104, names eth0)" bash -c "[ $rc != 0 ] && jq -e '.code == 104 and (.msg | contains(\"eth0 was removed\"))' <<<'$out'"

# --- DEL
t0=$(date +%s%N); cni DEL c2 "$(with_prev "$r2")" >/dev/null; rc=$?; del_ms=$(ms $t0)
if [ $rc = 0 ]; then ok "DEL c2 (${del_ms} ms)"; else bad "DEL c2"; fi
check "DEL c2 again succeeds" cni DEL c2
check "c2's address is released" bash -c "[ \"\$(allocs | jq -r '.\"cni:weftnet:c2:eth0\" // \"none\"')\" = none ]"
check "DEL c1 with an empty CNI_NETNS (containerd) succeeds" env NETNS= bash -c "cni DEL c1"
check "c1's host veth is gone" bash -c "! ip -n $H link show $h1"
check "c1's host route is gone" bash -c "[ -z \"\$(ip -n $H route show $ip1)\" ]"
check "c1's address is released" bash -c "[ \"\$(allocs | jq -r '.\"cni:weftnet:c1:eth0\" // \"none\"')\" = none ]"

# --- DEL after the namespace is gone
newns c3
r3=$(cni ADD c3); h3=$(hostif "$r3")
ip netns del weftcni-$id-c3
check "DEL c3 with its netns gone succeeds" cni DEL c3 "$(with_prev "$r3")"
check "c3's address is released and its veth gone" bash -c "[ \"\$(allocs | jq -r '.\"cni:weftnet:c3:eth0\" // \"none\"')\" = none ] && ! ip -n $H link show $h3"

# --- GC
newns c4; newns c5
cni ADD c4 >/dev/null; r5=$(cni ADD c5); h5=$(hostif "$r5")
gcconf=$(jq -c '. + {"cni.dev/valid-attachments": [{containerID: "c4", ifname: "eth0"}]}' <<<"$CONF")
check "GC succeeds" cni GC none "$gcconf"
check "GC released the stale c5 allocation" bash -c "[ \"\$(allocs | jq -r '.\"cni:weftnet:c5:eth0\" // \"none\"')\" = none ]"
check "GC deleted c5's host veth" bash -c "! ip -n $H link show $h5"
check "GC kept the valid c4 allocation" bash -c "allocs | jq -e '.\"cni:weftnet:c4:eth0\"'"

# --- node down
stop_node
out=$(cni STATUS none); rc=$?
check "STATUS with the node down: code 50" bash -c "[ $rc != 0 ] && jq -e '.code == 50' <<<'$out'"
newns c6
out=$(cni ADD c6); rc=$?
check "ADD with the node down: code 11, nothing left behind" bash -c "[ $rc != 0 ] && jq -e '.code == 11' <<<'$out' && ! ip -n weftcni-$id-c6 link show eth0"
check "DEL with the node down cleans the link and succeeds" cni DEL c4
check "c4's host veth is gone" bash -c "[ \$(ip -n $H -o link show type veth | wc -l) = 0 ]"
start_node
check "the node still holds c4's address after a DEL without it" bash -c "allocs | jq -e '.\"cni:weftnet:c4:eth0\"'"
check "a second DEL with the node back releases it" bash -c "cni DEL c4 && [ \"\$(allocs | jq -r '.\"cni:weftnet:c4:eth0\" // \"none\"')\" = none ]"

echo "timings: ADD ${add_ms} ms, DEL ${del_ms} ms (binary $WEFT_CNI)"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
