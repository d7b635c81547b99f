#!/bin/bash
# systemd-unit.sh: the shipped systemd unit and `bootstrap/setup install`.
#
# No systemd runs as PID 1 on these machines, so the unit is checked three ways:
#   1. `bootstrap/setup install` into a scratch root (WEFT_INSTALL_ROOT), twice: the first run
#      installs every file (byte-identical to the repo's, right modes), the second changes nothing
#      and says so; an operator's /etc/default/weft is never overwritten;
#   2. `systemd-analyze verify` of the installed unit (its ExecStart pointed at the test's binary,
#      since verify checks the command exists) prints nothing and exits 0 — and a copy with an
#      unknown key makes it complain, so the check can fail; `systemd-analyze security
#      --offline=true` prints the exposure score;
#   3. the node runs with exactly the unit's CapabilityBoundingSet (setpriv: bounding, inheritable
#      and ambient sets, no_new_privs) and a read-only /proc/sys (ProtectKernelTunables), in a
#      test-made netns with a real TUN: it starts, weft0 carries its overlay address, `weft status`
#      answers and the DNS listens on port 53 of the overlay address. Without CAP_NET_ADMIN it
#      fails with the message that says so.
# env: WEFT_BIN, WEFT_CNI_BIN (default .build/release, else .build/debug); KEEP=1.
# Output: one line per check, then `N passed, M failed`.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-${WEFT:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-${WEFT_CNI:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}}
UNIT=$top/deploy/systemd/weft.service

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze missing (Debian: systemd)"; exit 0; }
for c in setpriv unshare nsenter ip jq ss; do command -v $c >/dev/null || { echo "SKIP: missing $c"; exit 0; }; done
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done

W=$(mktemp -d /tmp/weft-systemd.XXXXXX)
NS=weft-sysd-$$
NODE_PID=""
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }
stop_node() {
  [ -n "$NODE_PID" ] || return 0
  kill "$NODE_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null; NODE_PID=""
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W, netns $NS, node $NODE_PID"; exit $rc; fi
  stop_node
  ip netns del "$NS" 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. bootstrap/setup install, twice ------------------------------------------------------
R=$W/root
run_install() { (cd "$top" && WEFT_INSTALL_ROOT=$R WEFT_BIN=$WEFT_BIN WEFT_CNI_BIN=$WEFT_CNI_BIN \
  bash -c 'source <(sed -n "/^install_weft() {/,/^}/p" bootstrap/setup) && install_weft "$WEFT_BIN" "$WEFT_CNI_BIN"'); }
# The install step alone (the packages and the build before it are bootstrap/setup's usual
# ones); `bootstrap/setup install` calls exactly this function.
grep -q '^if \[ "${1:-}" = install \]; then' "$top/bootstrap/setup" && grep -q 'install_weft "${WEFT_BIN:-' "$top/bootstrap/setup" \
  && ok "bootstrap/setup has the install subcommand calling install_weft" || bad "bootstrap/setup has no install subcommand"
run_install >"$W/install1.log" 2>&1; rc=$?
declare -A SRC=(
  [/usr/local/bin/weft]=$WEFT_BIN [/usr/local/bin/weft-cni]=$WEFT_CNI_BIN [/opt/cni/bin/weft-cni]=$WEFT_CNI_BIN
  [/usr/lib/cni/weft-cni]=$WEFT_CNI_BIN [/etc/cni/net.d/10-weft.conflist]=$top/deploy/cni/10-weft.conflist
  [/etc/systemd/system/weft.service]=$UNIT [/etc/default/weft]=$top/deploy/systemd/weft.default)
declare -A MODE=([/usr/local/bin/weft]=755 [/usr/local/bin/weft-cni]=755 [/opt/cni/bin/weft-cni]=755
  [/usr/lib/cni/weft-cni]=755 [/etc/cni/net.d/10-weft.conflist]=644 [/etc/systemd/system/weft.service]=644 [/etc/default/weft]=644)
wrong=""
for f in "${!SRC[@]}"; do
  cmp -s "${SRC[$f]}" "$R$f" || wrong+=" $f(content)"
  [ "$(stat -c %a "$R$f" 2>/dev/null)" = "${MODE[$f]}" ] || wrong+=" $f(mode $(stat -c %a "$R$f" 2>/dev/null))"
done
[ $rc = 0 ] && [ -z "$wrong" ] && [ "$(grep -c ' installed$' "$W/install1.log")" = 7 ] \
  && ok "first install put 7 files in place, identical to the repo's, modes right" \
  || bad "first install (exit $rc):$wrong; $(tr '\n' ';' <"$W/install1.log")"
before=$(cd "$R" && find . -type f -printf '%p %T@ %s\n' | sort | sha256sum)
run_install >"$W/install2.log" 2>&1; rc=$?
after=$(cd "$R" && find . -type f -printf '%p %T@ %s\n' | sort | sha256sum)
[ $rc = 0 ] && [ "$before" = "$after" ] && grep -q 'nothing to do' "$W/install2.log" && ! grep -q ' installed$' "$W/install2.log" \
  && ok "second install changed nothing (same files, same mtimes) and said 'nothing to do'" \
  || bad "second install (exit $rc) changed files or said otherwise: $(tr '\n' ';' <"$W/install2.log")"
echo 'WEFT_ARGS="--listen 198.51.100.7:7946"   # the operator'"'"'s' >"$R/etc/default/weft"
cp "$top/deploy/systemd/weft.service" "$W/old.service"; echo '# older unit' >>"$R/etc/systemd/system/weft.service"
run_install >"$W/install3.log" 2>&1
grep -q 'the operator' "$R/etc/default/weft" && grep -q '/etc/default/weft kept' "$W/install3.log" \
  && cmp -s "$UNIT" "$R/etc/systemd/system/weft.service" && grep -q 'weft.service installed' "$W/install3.log" \
  && ok "an operator's /etc/default/weft is kept; a changed unit is replaced" \
  || bad "re-install: $(tr '\n' ';' <"$W/install3.log")"

# ---- 2. systemd-analyze verify -------------------------------------------------------------
mkdir -p "$W/units"
sed "s|^ExecStart=/usr/local/bin/weft |ExecStart=$WEFT_BIN |" "$R/etc/systemd/system/weft.service" >"$W/units/weft.service"
out=$(systemd-analyze verify "$W/units/weft.service" 2>&1); rc=$?
[ $rc = 0 ] && [ -z "$out" ] && ok "systemd-analyze verify: the unit is clean (exit 0, no message)" \
  || bad "systemd-analyze verify (exit $rc): $out"
mkdir -p "$W/broken"; sed 's/^ProtectSystem=strict$/ProtectSystem=sometimes/' "$W/units/weft.service" >"$W/broken/weft.service"
out=$(systemd-analyze verify "$W/broken/weft.service" 2>&1)
[ -n "$out" ] && ok "control: a copy with a bad value makes verify complain ($(head -1 <<<"$out" | cut -c1-90))" \
  || bad "control: verify said nothing about 'ProtectSystem=sometimes'"
score=$(systemd-analyze security --offline=true "$W/units/weft.service" 2>/dev/null | grep -o 'Overall exposure level.*' )
[ -n "$score" ] && say "note - systemd-analyze security --offline: $score"
for d in 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
  'StateDirectory=weft' 'RuntimeDirectory=weft' 'DeviceAllow=/dev/net/tun rw' 'Restart=on-failure' 'ProtectKernelTunables=yes'; do
  grep -qxF "$d" "$UNIT" || bad "the unit lacks '$d'"
done && ok "the unit has the bounding set, NoNewPrivileges, ProtectSystem=strict, State/RuntimeDirectory, DeviceAllow tun, Restart=on-failure"

# ---- 3. the node with exactly the unit's capabilities ----------------------------------------
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr 'A-Z' 'a-z' | sed 's/cap_//g')
capset=$(for c in $caps; do printf ',+%s' "$c"; done)
say "capabilities from the unit: $caps"
ip netns add "$NS" || { bad "cannot create netns $NS"; echo "$PASS passed, $FAIL failed"; exit 1; }
ip -n "$NS" link set lo up
ip -n "$NS" link add wsd0 type veth peer name wsd1; ip -n "$NS" link set wsd1 up; ip -n "$NS" addr add 198.51.100.1/24 dev wsd0; ip -n "$NS" link set wsd0 up
ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1   # the unit's ExecStartPre=+sysctl
# start_capped CAPSET DATA LOG: the node in $NS with only CAPSET, /proc/sys read-only (a private
# mount namespace, like ProtectKernelTunables=yes), no_new_privs (NoNewPrivileges=yes)
start_capped() {
  nsenter --net=/run/netns/$NS unshare -m --propagation private sh -c '
    mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys /proc/sys || exit 97
    exec setpriv --bounding-set -all'"$1"' --inh-caps -all'"$1"' --ambient-caps -all'"$1"' --no-new-privs -- "$@"' \
    sh "$WEFT_BIN" start --data-dir "$2" --listen 198.51.100.1:7946 --name sysd --profile fast >"$3" 2>&1 &
  NODE_PID=$!
}
start_capped "$capset" "$W/data" "$W/node.log"
s=""
for _ in $(seq 150); do
  s=$(timeout 5 "$WEFT_BIN" status --data-dir "$W/data" --json 2>/dev/null) && [ -n "$(jq -r '.overlayAddress // empty' <<<"$s")" ] && break
  kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1
done
ovl=$(jq -r '.overlayAddress // empty' <<<"$s" 2>/dev/null)
if [ -n "$ovl" ]; then ok "node with only {$caps}, no_new_privs, read-only /proc/sys: started, weft status answers ($ovl)"
else bad "capped node did not come up: $(tail -3 "$W/node.log")"; fi
eff=$(awk '/^CapEff/ {print $2}' "/proc/$NODE_PID/status" 2>/dev/null)
want=$(printf '%016x' $(( (1 << 12) | (1 << 10) )))   # CAP_NET_ADMIN=12, CAP_NET_BIND_SERVICE=10
[ "$eff" = "$want" ] && ok "the running node's effective capabilities are exactly $want (NET_ADMIN, NET_BIND_SERVICE)" \
  || bad "node CapEff '$eff', want $want"
ip -n "$NS" -o -4 addr show weft0 2>/dev/null | grep -q "inet ${ovl:-none}/" \
  && ok "weft0 (real TUN) carries $ovl" || bad "weft0: $(ip -n "$NS" -o addr show weft0 2>&1)"
ip netns exec "$NS" ss -Hlun "sport = :53" 2>/dev/null | grep -q "${ovl:-none}:53" \
  && ok "the cluster DNS listens on $ovl:53 (NET_BIND_SERVICE)" \
  || bad "no DNS on ${ovl:-?}:53: $(ip netns exec "$NS" ss -Hlun 2>&1 | tr '\n' ';'); warnings $(jq -c '.warnings' <<<"$s" 2>/dev/null)"
stop_node
ip -n "$NS" link del weft0 2>/dev/null
start_capped ",+net_bind_service" "$W/data2" "$W/node2.log"
for _ in $(seq 100); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$NODE_PID" 2>/dev/null && grep -q 'CAP_NET_ADMIN' "$W/node2.log"; then
  ok "control: without CAP_NET_ADMIN the node refuses to start and says so ($(grep -o '[^:]*CAP_NET_ADMIN[^.]*' "$W/node2.log" | head -1 | cut -c1-80))"
else bad "control: node without CAP_NET_ADMIN: $(tail -2 "$W/node2.log")"; fi
stop_node

say "total"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
