#!/bin/bash
# cni-podman-skip-del.sh: podman 4.3 skips DEL when the container's netns is already gone; the
# node gives the address back on its own.
#
# One test-made host namespace with a --no-tun node (--gc-after 5s) and podman (CNI backend,
# network "weft" = weft-cni with the node's data dir). P1 and P2 run; P1's network namespace
# file (/run/netns/netns-…, podman's SandboxKey) is unmounted and removed under podman's feet,
# then `podman rm -f P1`: podman finds no namespace and sends no DEL (checked in the plugin's
# log). The container dies, the kernel removes its veth pair; the node sees the host veth and
# the namespace gone and, after the grace period, releases P1's address and logs it. P2 (alive)
# is kept throughout; `weft gc --dry-run` names why. A reboot that wipes podman's run state is the
# same condition for the node (veth and namespace gone, no DEL) and is not simulated separately.
# env: WEFT_BIN, WEFT_CNI_BIN; SHARED (/work/shared/cni); KEEP=1. Last line `N passed, M failed`.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/cni/lib.sh"
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-${WEFT:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-${WEFT_CNI:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}}
SHARED=${SHARED:-/work/shared/cni}
IMG=localhost/ci-busybox:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in podman runc conmon jq nsenter ip busybox timeout; do
  command -v $c >/dev/null || { echo "SKIP: missing $c (bootstrap/setup installs it)"; exit 0; }
done
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done
[ -x "$SHARED/build-image.sh" ] || { echo "SKIP: $SHARED/build-image.sh not found (set SHARED=)"; exit 0; }

W=$(mktemp -d /tmp/weft-skipdel.XXXXXX)
chmod 0755 "$W"
NS=weft-skipdel-$$
NODE_PID=""
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }
finish() { say "total"; echo "$PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; exit $?; }
pod() { CONTAINERS_CONF=$W/containers.conf timeout 90 nsenter --net=/run/netns/$NS podman --root "$W/root" --runroot "$W/run" --tmpdir "$W/tmp" "$@"; }
weft() { timeout 20 "$WEFT_BIN" "$@" --data-dir "$W/node"; }
held() { weft ipam --json 2>/dev/null | jq -r --arg k "$1" '[.allocations[] | select(.handle == $k) | .address][0] // empty'; }
cleanup() {
  local rc=$?
  trap - EXIT
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W, netns $NS, node $NODE_PID"; exit $rc; fi
  if [ -d "$W/root" ]; then pod rm -f -t 0 --all >/dev/null 2>&1; pod rmi -f --all >/dev/null 2>&1; fi
  if [ -n "$NODE_PID" ]; then
    kill "$NODE_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null
  fi
  ip netns del "$NS" 2>/dev/null
  awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS" || { echo "SKIP: cannot create netns $NS"; exit 0; }
ip -n "$NS" link set lo up
mkdir -p "$W"/{node,net.d,root,run,tmp}
nsenter --net=/run/netns/$NS "$WEFT_BIN" start --data-dir "$W/node" --listen 127.0.0.1:7946 --no-tun \
  --profile fast --gc-after 5s >"$W/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 150); do weft status --json 2>/dev/null | jq -e .overlayAddress >/dev/null 2>&1 && break; sleep 0.1; done
weft status >/dev/null 2>&1 && ok "node up (--no-tun, --gc-after 5s)" || { bad "node: $(tail -3 "$W/node.log")"; finish; }

if [ "$(basename "$WEFT_CNI_BIN")" = weft-cni ]; then PLUGIN_DIR=$(cd "$(dirname "$WEFT_CNI_BIN")" && pwd)
else mkdir -p "$W/bin"; cp "$WEFT_CNI_BIN" "$W/bin/weft-cni"; PLUGIN_DIR=$W/bin; fi
write_containers_conf "$W/containers.conf" "$W/net.d" "$PLUGIN_DIR"
jq --arg d "$W/node" --arg l "$W/cni.log" '.plugins[0].dataDir = $d | .plugins[0].logFile = $l' \
  "$top/deploy/cni/10-weft.conflist" >"$W/net.d/10-weft.conflist"
CONTAINERS_CONF=$W/containers.conf IMG=$IMG PODMAN="timeout 60 nsenter --net=/run/netns/$NS podman --root $W/root --runroot $W/run --tmpdir $W/tmp" \
  "$SHARED/build-image.sh" >"$W/build.log" 2>&1 || { bad "image: $(tail -3 "$W/build.log")"; finish; }

declare -A CID=() IP=()
for c in P1 P2; do
  pod run -d --name $c --network weft $IMG sleep 300 >"$W/run-$c.log" 2>&1 || { bad "podman run $c: $(tail -2 "$W/run-$c.log")"; finish; }
  CID[$c]=$(pod inspect -f '{{.Id}}' $c 2>/dev/null)
  IP[$c]=$(held "cni:weft:${CID[$c]}:eth0")
done
[ -n "${IP[P1]}" ] && [ -n "${IP[P2]}" ] && ok "P1 (${IP[P1]}) and P2 (${IP[P2]}) attached, held by the node" || { bad "addresses: P1 '${IP[P1]}' P2 '${IP[P2]}'"; finish; }
sbx=$(pod inspect -f '{{.NetworkSettings.SandboxKey}}' P1 2>/dev/null)
[[ $sbx == /run/netns/netns-* ]] && [ -e "$sbx" ] || { bad "P1's namespace file: '$sbx'"; finish; }
# the namespace file disappears under podman (a crash of its clean-up, a reboot of /run, an admin)
umount "$sbx" 2>/dev/null; rm -f "$sbx"
[ ! -e "$sbx" ] && ok "P1's namespace file $sbx removed under podman" || bad "cannot remove $sbx"
dels_before=$(grep -c "cmd=DEL cid=${CID[P1]}" "$W/cni.log")
t=$(date +%s%N)
pod rm -f -t 0 P1 >"$W/rm.log" 2>&1
dels_after=$(grep -c "cmd=DEL cid=${CID[P1]}" "$W/cni.log")
if [ "$dels_after" = "$dels_before" ]; then
  say "note - podman rm -f P1 sent no DEL (namespace gone): $(grep -io 'netns[^"]*' "$W/rm.log" | head -1)"
  [ -n "$(held "cni:weft:${CID[P1]}:eth0")" ] && ok "without DEL, P1's ${IP[P1]} is still held right after podman rm" \
    || bad "P1's address vanished without DEL or clean-up?"
else say "note - this podman sent DEL for P1 after all ($((dels_after - dels_before)))"; fi
gc=$(weft gc --dry-run --json 2>&1)
jq -e --arg p2 "cni:weft:${CID[P2]}:eth0" '[.kept[] | select(.handle == $p2) | .reason | startswith("live")] == [true]' <<<"$gc" >/dev/null 2>&1 \
  && ok "weft gc --dry-run keeps P2: $(jq -r --arg p2 "cni:weft:${CID[P2]}:eth0" '.kept[] | select(.handle == $p2) | .reason' <<<"$gc")" \
  || bad "gc --dry-run about P2: $gc"
for _ in $(seq 300); do [ -z "$(held "cni:weft:${CID[P1]}:eth0")" ] && break; sleep 0.1; done   # ≤ 30 s
if [ -z "$(held "cni:weft:${CID[P1]}:eth0")" ] && grep -q "event=attachment-released.*handle=cni:weft:${CID[P1]}:eth0" "$W/node.log"; then
  ok "the node released P1's ${IP[P1]} on its own $(( $(ms $t) / 1000 )) s after podman rm, logged: $(grep -o "reason=.*" <<<"$(grep "handle=cni:weft:${CID[P1]}:eth0" "$W/node.log" | grep attachment-released)" | cut -c1-100)"
else bad "P1 still held after $(( $(ms $t) / 1000 )) s: $(grep attachment "$W/node.log" | tail -2)"; fi
[ "$(held "cni:weft:${CID[P2]}:eth0")" = "${IP[P2]}" ] && pod exec P2 ip -4 -o addr show eth0 2>/dev/null | grep -q "${IP[P2]}/" \
  && ok "P2 still holds ${IP[P2]} and has it on eth0" || bad "P2 lost its address: '$(held "cni:weft:${CID[P2]}:eth0")'"
t=$(date +%s%N)
pod rm -f -t 0 P2 >/dev/null 2>&1
[ -z "$(held "cni:weft:${CID[P2]}:eth0")" ] && [ -z "$(ls "$W/node/attachments" 2>/dev/null)" ] \
  && ok "podman rm P2 (with DEL) released it at once and removed its record ($(ms $t) ms)" \
  || bad "after podman rm P2: held '$(held "cni:weft:${CID[P2]}:eth0")', records $(ls "$W/node/attachments" 2>/dev/null)"
kill -0 "$NODE_PID" 2>/dev/null && ok "node still running" || bad "node died: $(tail -3 "$W/node.log")"
finish
