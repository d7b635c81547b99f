#!/usr/bin/env bash
# tests/e2e/operator-tun.sh — the operator's surface with real TUN devices on two simulated hosts
# (network namespaces): what the 127.0.0.1 process tests (--no-tun) cannot show.
#
#   weft-e2e-<tag>-h1                        weft-e2e-<tag>-h2
#   weft0 10.42.x.y/16                       weft0 10.42.x.y/16           (made by weft)
#   eth0 198.51.100.1/24                     eth0 198.51.100.2/24
#        |  veth                                  |  veth
#   p1 ------------------ br0 in weft-e2e-<tag>-sw ------------------ p2
#
# The hosts' namespaces get IPv6 on by default (net.ipv6.conf.default.disable_ipv6=0), so a new
# device would get a link-local address unless weft turns it off. Checks (each counted):
#   ipv6       weft turned IPv6 off on weft0 (disable_ipv6=1, no inet6 address)
#   ping       each host pings the other's overlay address (tunnels up)
#   drops      `weft status --json` has dataPlaneDrops, with not-ipv4 = 0 (no link-local noise)
#   peers      `weft peers --json` shows the peer's overlayAddress equal to the peer's own
#              `weft status` overlayAddress, and the table has an OVERLAY column
#   doctor     `weft doctor --json` exits 0 with every check ok; its mtu line says a full-size
#              tunnel datagram got through both ways, its tunnel line is established
#   mtu        with the switch port to h2 at MTU 1400 (the bridge drops larger frames, as a
#              path with a smaller MTU would), doctor on h1 fails mtu for h2 with the hint to
#              lower --mtu, and exits 1
#   page       the status page in headless Chromium (in h1's namespace) shows a tunnel row per
#              `weft peers --json` peer, with its overlay address, path and state; screenshot
#              kept in .build/test-artifacts/status-page-tun.png (skipped without chromium)
#   keys       a cluster key rotation (install on h2, use on h1, remove on h2) while h1 pings h2
#              every 100 ms loses no ping; both end with the new key alone; after h2 restarts,
#              the tunnel comes back under the new key
#   peers      after h2's `weft leave`, h1's `weft peers` says there is no other live member
#
# Usage: tests/e2e/operator-tun.sh [--clean] [-h]
# Environment: WEFT_BIN, KEEP=1, E2E_TIMEOUT (180 s), WEFT_NO_INSTALL=1. Needs root.
# Ends with the line "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"
PROG=operator-tun.sh

while (($#)); do
  case $1 in
    --clean) require_root "$PROG"; clean_stale weft-e2e-; exit 0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "$PROG: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

require_root "$PROG"
WORK=$(mktemp -d /tmp/weft-e2e.XXXXXX)
chmod 700 "$WORK"
LAB_PREFIX="weft-e2e-$$-"
trap lab_cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM
require_tools ip:iproute2 nsenter:util-linux ping:iputils-ping jq:jq timeout:coreutils

WEFT_BIN=$(find_weft_bin "$ROOT")
if [[ ! -x $WEFT_BIN ]]; then
  echo "$PROG: no weft binary at $WEFT_BIN: build it (swift build --product weft) or set WEFT_BIN" >&2
  exit 2
fi
start_watchdog "${E2E_TIMEOUT:-180}"

PORT=7946
SW=${LAB_PREFIX}sw
declare -a NS UNDER NODE_PID
for i in 1 2; do NS[i]=${LAB_PREFIX}h$i; UNDER[i]=198.51.100.$i; done
weft() { timeout -k 1 40 "$WEFT_BIN" "$@"; }

show_logs() {
  ((CHECKS_FAILED)) || return 0
  local i
  for i in 1 2; do [[ -f $WORK/n$i.log ]] && { warn "---- node h$i log"; tail -n 15 "$WORK/n$i.log" >&2; }; done
}
LAB_CLEANUP_HOOK=show_logs

switch_add "$SW" || { fail "cannot create the switch namespace"; summary_line; exit 1; }
for i in 1 2; do
  host_add "${NS[i]}" "$SW" "p$i" "${UNDER[i]}/24" || { fail "cannot create host h$i"; summary_line; exit 1; }
  # IPv6 on for new devices in this (lab) namespace: weft must turn it off on weft0 itself.
  ip netns exec "${NS[i]}" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
done

# A fake CNI install, so the doctor's CNI lines are ok too.
mkdir -p "$WORK/cni-bin" "$WORK/cni-conf"
printf '#!/bin/sh\n' >"$WORK/cni-bin/weft-cni"; chmod 0755 "$WORK/cni-bin/weft-cni"
echo '{"cniVersion": "1.0.0", "name": "weft", "plugins": [{"type": "weft-cni"}]}' >"$WORK/cni-conf/weft.conflist"
CNI=(--cni-bin-dir "$WORK/cni-bin" --cni-conf-dir "$WORK/cni-conf")

for i in 1 2; do
  args=(start --data-dir "$WORK/n$i" --listen "${UNDER[i]}:$PORT" --name "op-h$i" --profile fast)
  ((i == 1)) && args+=(--metrics-listen 127.0.0.1:9946)
  ((i > 1)) && args+=(--seed "${UNDER[1]}:$PORT" --cluster-key-file "$WORK/n1/cluster.key")
  bg_ns "${NS[i]}" "$WORK/n$i.log" "$WEFT_BIN" "${args[@]}"
  NODE_PID[i]=$LAST_PID
  ((i == 1)) && wait_until 100 0.2 test -e "$WORK/n1/cluster.key"
done
overlay_of() { weft status --data-dir "$WORK/n$1" --json 2>/dev/null | jq -r '.overlayAddress // empty'; }
both_up() { [[ -n $(overlay_of 1) && -n $(overlay_of 2) ]] && ip -n "${NS[1]}" -o addr show dev weft0 | grep -q 'inet ' && ip -n "${NS[2]}" -o addr show dev weft0 | grep -q 'inet '; }
if ! wait_until 150 0.2 both_up; then fail "the nodes did not get overlay addresses"; summary_line; exit 1; fi
O1=$(overlay_of 1); O2=$(overlay_of 2)
say "overlay addresses: h1 $O1, h2 $O2"

for i in 1 2; do
  v6=$(ip netns exec "${NS[i]}" cat /proc/sys/net/ipv6/conf/weft0/disable_ipv6 2>/dev/null)
  inet6=$(ip -n "${NS[i]}" -6 -o addr show dev weft0 2>/dev/null)
  if [[ $v6 == 1 && -z $inet6 ]]; then pass "ipv6: off on h$i's weft0"; else fail "ipv6: h$i weft0 disable_ipv6=$v6, addresses: $inet6"; fi
done

ping_ok() { run_ns "${NS[$1]}" 3 ping -c 1 -W 1 -q "$2" >/dev/null 2>&1; }
if wait_until 40 0.3 ping_ok 1 "$O2"; then pass "ping: h1 -> $O2"; else fail "ping: h1 -> $O2"; fi
if wait_until 40 0.3 ping_ok 2 "$O1"; then pass "ping: h2 -> $O1"; else fail "ping: h2 -> $O1"; fi
sleep 3   # long enough for router solicitations, had IPv6 been on

for i in 1 2; do
  s=$(weft status --data-dir "$WORK/n$i" --json)
  n6=$(jq -r '.dataPlaneDrops["not-ipv4"] // "missing"' <<<"$s")
  if [[ $n6 == 0 ]]; then pass "drops: h$i dataPlaneDrops present, not-ipv4 = 0"; else fail "drops: h$i not-ipv4 = $n6"; fi
done
if weft status --data-dir "$WORK/n1" | grep -q '^data drops'; then pass "drops: weft status shows a 'data drops' row"; else fail "drops: no 'data drops' row"; fi

got=$(weft peers --data-dir "$WORK/n1" --json | jq -r '.[0].overlayAddress // empty')
if [[ $got == "$O2" ]]; then pass "peers: h1 shows h2's overlay address $got"; else fail "peers: h1 shows '$got' for h2, h2 says $O2"; fi
if weft peers --data-dir "$WORK/n1" | head -1 | grep -q 'OVERLAY' && weft peers --data-dir "$WORK/n1" | grep -q "$O2"; then
  pass "peers: table has OVERLAY with $O2"; else fail "peers: table: $(weft peers --data-dir "$WORK/n1" | tr '\n' '|')"; fi

run_ns "${NS[1]}" 40 "$WEFT_BIN" doctor --json --data-dir "$WORK/n1" "${CNI[@]}" >"$WORK/doctor.json"
rc=$?
notok=$(jq -c '[.checks[] | select(.status != "ok")]' "$WORK/doctor.json" 2>/dev/null)
if [[ $rc == 0 && $notok == "[]" ]]; then pass "doctor: exit 0, every check ok"; else fail "doctor: exit $rc, not ok: $notok"; fi
mtu=$(jq -r '.checks[] | select(.check == "mtu") | .message' "$WORK/doctor.json")
if grep -q "got through both ways" <<<"$mtu"; then pass "doctor: mtu: $mtu"; else fail "doctor: mtu: $mtu"; fi
tun=$(jq -r '.checks[] | select(.check == "tunnel") | .message' "$WORK/doctor.json")
if grep -q "^established" <<<"$tun"; then pass "doctor: tunnel: $tun"; else fail "doctor: tunnel: $tun"; fi

# The status page with real tunnels, in headless Chromium inside h1's namespace (whose only
# networks are its loopback and the lab underlay): the tunnel rows are `weft peers --json`'s.
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -n $CHROMIUM ]]; then
  mkdir -p "$WORK/chromium"
  copts=(--headless --no-sandbox --disable-gpu "--user-data-dir=$WORK/chromium" --no-first-run --disable-background-networking
         --disable-component-update --disable-sync --disable-extensions "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
         --proxy-server=http://127.0.0.1:9 --proxy-bypass-list=127.0.0.1 --virtual-time-budget=5000 --window-size=1280,1000)
  run_ns "${NS[1]}" 60 "$CHROMIUM" "${copts[@]}" --dump-dom http://127.0.0.1:9946/ >"$WORK/page.html" 2>"$WORK/chromium.log"
  peers_json=$(weft peers --data-dir "$WORK/n1" --json)
  want=$(jq -r '.[].id' <<<"$peers_json" | sort | tr '\n' ' ')
  got=$(grep -o '<tr class="peer" data-id="[0-9a-f]*"' "$WORK/page.html" | sed 's/.*data-id="//; s/"//' | sort | tr '\n' ' ')
  row=$(grep -o '<tr class="peer"[^>]*>.*</tr>' "$WORK/page.html" | head -1)
  ep=$(jq -r '.[0].endpoint' <<<"$peers_json")
  if [[ -n $want && $got == "$want" ]] && grep -q "$O2" <<<"$row" && grep -q "$ep" <<<"$row" && grep -q 'established' <<<"$row"; then
    pass "page: tunnel rows = weft peers ($got), with overlay $O2, path $ep, established"
  else
    fail "page: tunnel rows '$got', want '$want'; row: ${row:0:300}"
  fi
  ART=${WEFT_TEST_ARTIFACTS:-$ROOT/.build/test-artifacts}
  mkdir -p "$ART"
  run_ns "${NS[1]}" 60 "$CHROMIUM" "${copts[@]}" "--screenshot=$ART/status-page-tun.png" http://127.0.0.1:9946/ >>"$WORK/chromium.log" 2>&1
  if [[ -s $ART/status-page-tun.png ]]; then pass "page: screenshot $ART/status-page-tun.png"; else fail "page: no screenshot ($(tail -n 3 "$WORK/chromium.log"))"; fi
else
  say "page: chromium not installed, the status page with tunnels is not checked (bootstrap/setup installs it)"
fi

# A path with a smaller MTU: the switch drops frames over 1400 bytes towards h2.
ip -n "$SW" link set p2 mtu 1400
run_ns "${NS[1]}" 40 "$WEFT_BIN" doctor --json --data-dir "$WORK/n1" "${CNI[@]}" >"$WORK/doctor2.json"
rc=$?
line=$(jq -c '.checks[] | select(.check == "mtu")' "$WORK/doctor2.json")
if [[ $rc == 1 ]] && jq -e '.status == "fail" and (.hint | test("lower --mtu"))' <<<"$line" >/dev/null; then
  pass "mtu: a 1400-byte hop fails the mtu check (exit 1): $(jq -r .message <<<"$line")"
else
  fail "mtu: exit $rc, line: $line"
fi
small=$(jq -r '.checks[] | select(.check == "udp-out") | .status' "$WORK/doctor2.json")
if [[ $small == ok ]]; then pass "mtu: small datagrams still pass (udp-out ok)"; else fail "mtu: udp-out $small"; fi
ip -n "$SW" link set p2 mtu 1500

# A cluster key rotation while h1 pings h2 through the tunnel every 100 ms: install on h2, use on
# h1, remove on h2. Not one ping may be lost (established sessions keep their keys), both nodes
# end with the new key alone, and after h2 restarts (its sessions are gone) the tunnel comes
# back under the new key only.
weft keygen >"$WORK/new.key"
chmod 600 "$WORK/new.key"
OLD_ID=$(weft keys list --json --data-dir "$WORK/n1" | jq -r '.keys[0].id')
ip netns exec "${NS[1]}" timeout 30 ping -i 0.1 -c 60 -q "$O2" >"$WORK/rotation-ping.txt" 2>&1 &
PING_PID=$!
sleep 1
weft keys install --key-file "$WORK/new.key" --data-dir "$WORK/n2" >"$WORK/rot-install.txt" 2>&1; r1=$?
NEW_ID=$(weft keys list --json --data-dir "$WORK/n1" | jq -r --arg old "$OLD_ID" '[.keys[].id | select(. != $old)][0] // empty')
sleep 1
weft keys use "$NEW_ID" --data-dir "$WORK/n1" >"$WORK/rot-use.txt" 2>&1; r2=$?
sleep 1
weft keys remove "$OLD_ID" --data-dir "$WORK/n2" >"$WORK/rot-remove.txt" 2>&1; r3=$?
wait "$PING_PID"
lost=$(grep -o '[0-9]* received' "$WORK/rotation-ping.txt" | grep -o '^[0-9]*')
if [[ $r1 == 0 && $r2 == 0 && $r3 == 0 && -n $NEW_ID ]]; then pass "keys: install, use, remove of $NEW_ID (old $OLD_ID) all exit 0"
else fail "keys: exit codes $r1 $r2 $r3 ($(cat "$WORK"/rot-*.txt | tail -n 5))"; fi
if [[ ${lost:-0} == 60 ]]; then pass "keys: 60 of 60 pings through the tunnel during the rotation"
else fail "keys: $(tail -n 2 "$WORK/rotation-ping.txt")"; fi
both_new() {
  [[ $(weft keys list --json --data-dir "$WORK/n1" | jq -c '[.keys[] | {id, p: (.primaryOn | length), i: (.installedOn | length)}]') == "[{\"id\":\"$NEW_ID\",\"p\":2,\"i\":2}]" ]]
}
if both_new; then pass "keys: both nodes hold only $NEW_ID, as primary"; else fail "keys: $(weft keys list --data-dir "$WORK/n1" 2>&1)"; fi
kill -TERM "${NODE_PID[2]}" 2>/dev/null
wait_until 100 0.1 bash -c "! kill -0 ${NODE_PID[2]} 2>/dev/null"
bg_ns "${NS[2]}" "$WORK/n2.log" "$WEFT_BIN" start --data-dir "$WORK/n2" --listen "${UNDER[2]}:$PORT" --name op-h2 --profile fast
NODE_PID[2]=$LAST_PID
if wait_until 150 0.2 ping_ok 1 "$O2"; then pass "keys: after h2's restart the tunnel is back under the new key alone"
else fail "keys: no ping to $O2 after h2's restart"; fi

# The peer leaves: `weft peers` on h1 says why there is no tunnel (not "no members yet, or --no-tun").
weft leave --data-dir "$WORK/n2" >/dev/null 2>&1
no_tunnel() { weft peers --data-dir "$WORK/n1" 2>/dev/null | grep -q "no other live member (1 left)"; }
if wait_until 50 0.2 no_tunnel; then pass "peers: after h2 left, h1 says: $(weft peers --data-dir "$WORK/n1")"
else fail "peers: after h2 left, h1 says: $(weft peers --data-dir "$WORK/n1" 2>&1)"; fi

say "total $(lab_elapsed)s"
summary_line
