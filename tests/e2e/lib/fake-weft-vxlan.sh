#!/usr/bin/env bash
# tests/e2e/lib/fake-weft-vxlan.sh — a stand-in for `weft` that proves the data-plane checks of
# tests/e2e/dataplane.sh before the real data plane exists. NOT a test by itself, never used by
# run-all.sh.
#
#   WEFT_BIN=tests/e2e/lib/fake-weft-vxlan.sh REAL_WEFT_BIN=.build/debug/weft tests/e2e/dataplane.sh
#
# `start ...` runs the real weft with --no-tun (control plane, overlay address allocation) and
# adds a *plaintext* kernel VXLAN device named weft0 carrying the node's overlayAddress/16, with
# every other member's underlay address in its flood list. Every other command goes to the real
# weft. Expected result: every check passes except the ones this fake must fail —
#   wire (marker): the VXLAN payload is plaintext, so the marker IS on the wire;
#   peers: the real weft has no `weft peers` yet.
# That shows those checks catch a tunnel that does not encrypt, and that the other checks work.
#
# Safety: refuses to run `start` in the machine's own network namespace; creates weft0 only in
# the namespace it runs in (a lab namespace); the real weft is its child with PDEATHSIG=KILL, so
# a SIGKILL of this script (the crash check) takes the node down with it.
set -uo pipefail
REAL=${REAL_WEFT_BIN:?set REAL_WEFT_BIN to the real weft binary}

[[ ${1:-} == start ]] || exec "$REAL" "$@"

if [[ $(readlink /proc/self/ns/net) == "$(readlink /proc/1/ns/net)" ]]; then
  echo "fake-weft-vxlan: refusing to run in the machine's own network namespace" >&2
  exit 2
fi
args=("$@") data="" listen=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --data-dir) data=${args[i + 1]} ;;
    --listen) listen=${args[i + 1]%:*} ;;
  esac
done
[[ -n $data && -n $listen ]] || { echo "fake-weft-vxlan: need --data-dir and --listen" >&2; exit 2; }

setpriv --pdeathsig KILL -- "$REAL" "$@" --no-tun &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; ip link del weft0 2>/dev/null; exit 0' TERM INT

ip link del weft0 2>/dev/null   # left over from a crash of the previous incarnation
addr=""
for ((k = 0; k < 200; k++)); do
  [[ -n $addr ]] && break
  kill -0 "$child" 2>/dev/null || { wait "$child"; exit $?; }
  addr=$("$REAL" status --data-dir "$data" --json 2>/dev/null |
    python3 -c 'import json,sys; print((json.load(sys.stdin).get("overlayAddress") or "").split("/")[0])' 2>/dev/null)
  [[ $addr == 10.42.* ]] || { addr=""; sleep 0.1; }
done
if [[ -n $addr ]]; then
  # a MAC derived from the address, so the re-created device after a crash keeps it (peers' ARP
  # caches stay valid, as they would for a TUN device, which has no MAC)
  # shellcheck disable=SC2086  # split the dotted address on purpose
  mac=$(IFS=.; set -- $addr; printf '02:42:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4")
  ip link add weft0 address "$mac" type vxlan id 42 local "$listen" dstport 4789 dev eth0 nolearning &&
    ip addr add "$addr/16" dev weft0 && ip link set weft0 up &&
    sysctl -qw net.ipv4.ip_forward=1 &&
    echo "fake-weft-vxlan: weft0 (plaintext VXLAN) up with $addr/16" >&2
fi
declare -A known=()
for ((k = 0; k < 100000; k++)); do   # keep the flood list in step with membership while the node runs
  kill -0 "$child" 2>/dev/null || break
  for peer in $("$REAL" members --data-dir "$data" --json 2>/dev/null |
      python3 -c 'import json,sys; print(" ".join(m["address"].rsplit(":", 1)[0] for m in json.load(sys.stdin) if not m.get("isSelf")))' 2>/dev/null); do
    [[ -n ${known[$peer]:-} ]] && continue
    bridge fdb append 00:00:00:00:00:00 dev weft0 dst "$peer" 2>/dev/null && known[$peer]=1
  done
  sleep 0.5 & wait $!
done
wait "$child"
