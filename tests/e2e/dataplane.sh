#!/usr/bin/env bash
# tests/e2e/dataplane.sh — end-to-end test of Weft's encrypted data plane on three simulated
# hosts (network namespaces) on one machine.
#
#   weft-e2e-<tag>-h1          weft-e2e-<tag>-h2          weft-e2e-<tag>-h3
#   weft0 10.42.x.y/16         weft0 10.42.x.y/16         weft0 10.42.x.y/16      (made by weft)
#   eth0 198.51.100.1/24       eth0 198.51.100.2/24       eth0 198.51.100.3/24
#        |  veth                    |  veth                    |  veth
#   p1 ----------------------- br0 in weft-e2e-<tag>-sw ------------------- p3   (tcpdump here)
#
# Nothing is created in, or connected to, the machine's own namespace; no lab namespace has a
# default route. Every process is stopped by PID and every namespace deleted on exit (also on
# failure and Ctrl-C), unless KEEP=1.
#
# Checks (each counted):
#   membership   every node sees 3 alive members
#   overlay      weft0 is up with the node's overlay address (/16) and ip_forward is on
#   ping         every node pings every other node's overlay address
#   transfer     50 MB over TCP across the overlay, sha256 identical on both ends
#   mtu          a full-size DF packet (weft0 MTU - 28 bytes of ICMP payload) crosses; one byte
#                more fails locally with "message too long" (EMSGSIZE), not silently
#   wire         tcpdump on the underlay switch: node names (gossip) and a marker string sent
#                through the overlay never appear in the capture, while the capture is not empty
#                and a control marker sent in plaintext over the underlay *is* found (so the
#                capture is proven able to see payloads)
#   peers        `weft peers --json` lists 2 established peers with rx and tx bytes > 0
#   crash        a node killed with SIGKILL and restarted on the same data dir is alive again
#                everywhere and gets its tunnels back without help (pings both ways)
#
# Usage: tests/e2e/dataplane.sh [--control-only] [--clean] [-h]
#   --control-only / CONTROL_ONLY=1   nodes run with --no-tun: membership, wire (gossip) and crash
#                  checks, plus harness self-tests of the transfer, MTU and marker checks over
#                  the plain underlay. Proves the scaffolding without a data plane.
#   --clean        remove namespaces (weft-e2e-*) and work dirs left by an earlier KEEP=1 run
# Environment: WEFT_BIN (default: .build/release/weft if present, else .build/debug/weft),
#   KEEP=1, TRANSFER_MB (50), WEFT_LOG_LEVEL (info), WEFT_START_ARGS (extra `weft start` flags),
#   E2E_TIMEOUT (watchdog, 300 s), WEFT_NO_INSTALL=1 (never apt-get missing tools).
# Needs root. Tools: ip nsenter ping tcpdump python3 sha256sum timeout (iproute2 util-linux
# iputils-ping tcpdump python3 coreutils). Ends with the line "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"
TOOL=$HERE/lib/e2etool.py
PROG=dataplane.sh

CONTROL_ONLY=${CONTROL_ONLY:-0}
while (($#)); do
  case $1 in
    --control-only) CONTROL_ONLY=1; shift ;;
    --clean) require_root "$PROG"; clean_stale weft-e2e-
             rm -rf /tmp/weft-e2e.* 2>/dev/null; exit 0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "$PROG: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $CONTROL_ONLY == 1 ]] || CONTROL_ONLY=0

require_root "$PROG"
WORK=$(mktemp -d /tmp/weft-e2e.XXXXXX)
chmod 700 "$WORK"
LAB_PREFIX="weft-e2e-$$-"
trap lab_cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM
require_tools ip:iproute2 nsenter:util-linux ping:iputils-ping tcpdump:tcpdump python3:python3 \
  sha256sum:coreutils timeout:coreutils od:coreutils
PY=$(command -v python3)

WEFT_BIN=$(find_weft_bin "$ROOT")
if [[ ! -x $WEFT_BIN ]]; then
  echo "$PROG: no weft binary at $WEFT_BIN: build it (swift build --product weft) or set WEFT_BIN" >&2
  exit 2
fi
start_watchdog "${E2E_TIMEOUT:-300}"

TRANSFER_MB=${TRANSFER_MB:-50}
LOG_LEVEL=${WEFT_LOG_LEVEL:-info}
PORT=7946
TUN=weft0
SW=${LAB_PREFIX}sw
N=3
declare -a NS UNDER NAME NODE_PID OVL
TOKEN=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')   # in every node name: must never be on the wire
for ((i = 1; i <= N; i++)); do
  NS[i]=${LAB_PREFIX}h$i
  UNDER[i]=198.51.100.$i
  NAME[i]=e2e-h$i-$TOKEN
done

weft() { timeout -k 1 10 "$WEFT_BIN" "$@"; }
members_of() { # members_of I [NAME]
  weft members --data-dir "$WORK/n$1" --json 2>/dev/null | "$PY" "$TOOL" members ${2:+--name "$2"}
}
status_field() { weft status --data-dir "$WORK/n$1" --json 2>/dev/null | "$PY" "$TOOL" status "$2"; }

show_logs_on_failure() {
  ((CHECKS_FAILED)) || return 0
  [[ -z ${LOGS_SHOWN:-} ]] || return 0
  LOGS_SHOWN=1
  local i
  for ((i = 1; i <= N; i++)); do
    [[ -f $WORK/n$i.log ]] || continue
    warn "---- last lines of node h$i's log ($WORK/n$i.log)"
    tail -n 15 "$WORK/n$i.log" >&2
  done
}
LAB_CLEANUP_HOOK=show_logs_on_failure   # if the script stops early
finish() { # the node logs on failure, the elapsed time, then the summary as the very last line
  show_logs_on_failure
  say "total $(lab_elapsed)s"
  summary_line
}

# ------------------------------------------------------------------------------------ nodes
start_node() { # start_node I : weft start in host I (the first node creates the cluster)
  local i=$1 args
  args=(start --data-dir "$WORK/n$i" --listen "${UNDER[i]}:$PORT" --name "${NAME[i]}"
        --profile fast --log-level "$LOG_LEVEL")
  ((i > 1)) && args+=(--seed "${UNDER[1]}:$PORT" --cluster-key-file "$WORK/n1/cluster.key")
  ((CONTROL_ONLY)) && args+=(--no-tun)
  # shellcheck disable=SC2206
  args+=(${WEFT_START_ARGS:-})
  echo "== $(date -u +%FT%TZ) weft ${args[*]}" >>"$WORK/n$i.log"
  bg_ns "${NS[i]}" "$WORK/n$i.log" "$WEFT_BIN" "${args[@]}"
  NODE_PID[i]=$LAST_PID
}

wait_node_ready() { # wait_node_ready I TRIES : the node's control socket answers (0.2 s steps)
  local i=$1 tries=$2 k
  for ((k = 0; k < tries; k++)); do
    kill -0 "${NODE_PID[i]}" 2>/dev/null || { warn "node h$i (pid ${NODE_PID[i]}) exited: $(tail -n 2 "$WORK/n$i.log" | tr '\n' ' ')"; return 1; }
    [[ -n $(status_field "$i" id) ]] && return 0
    sleep 0.2
  done
  return 1
}

all_see_alive() { # all_see_alive COUNT
  local i
  for ((i = 1; i <= N; i++)); do
    read -r a _ _ <<<"$(members_of "$i")"
    [[ ${a:-0} -eq $1 ]] || return 1
  done
}

check_members() { # check_members LABEL
  local i a t d
  wait_until 100 0.3 all_see_alive "$N"
  for ((i = 1; i <= N; i++)); do
    read -r a t d <<<"$(members_of "$i")"
    if [[ ${a:-0} -eq $N && ${t:-0} -eq $N ]]; then pass "$1: h$i sees $N alive members"
    else fail "$1: h$i sees ${a:-0} alive of ${t:-0}: ${d:-no answer}"; fi
  done
}

# ------------------------------------------------------------------------------------ capture
CAP_PID=""
start_capture() { # start_capture FILE : tcpdump on every port of the underlay switch
  local f=$1
  : >"$f.log"
  # --immediate-mode: hand every packet to tcpdump at once (the default buffering can hold the
  # last second of traffic in the kernel, where a stopped tcpdump never reads it)
  bg_ns "$SW" "$f.log" tcpdump -i any -n -s 0 -U --immediate-mode -Z root -w "$f"
  CAP_PID=$LAST_PID
  wait_until 50 0.1 grep -q "listening on" "$f.log" || { warn "tcpdump did not start: $(cat "$f.log")"; return 1; }
}
stop_capture() { sleep 0.5; stop_pid "$CAP_PID"; CAP_PID=""; }

# ------------------------------------------------------------------------------------ traffic checks
# (used across the overlay, and in --control-only mode as self-tests across the plain underlay)

ping_pair() { # ping_pair LABEL FROM_I TO_ADDR TRIES : first reply within TRIES attempts, then 3 pings
  local label=$1 from=$2 to=$3 tries=$4 t0 out
  t0=$(date +%s.%N)
  if wait_until "$tries" 0.3 run_ns "${NS[from]}" 3 ping -c 1 -W 1 -q "$to" >/dev/null 2>&1; then
    out=$(run_ns "${NS[from]}" 5 ping -c 3 -i 0.2 -W 1 -q "$to" 2>&1)
    pass "$label: first reply after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s; $(grep -o 'rtt.*' <<<"$out")"
  else
    fail "$label: no reply from $to in $tries attempts"
  fi
}

transfer_check() { # transfer_check LABEL FROM_I TO_I TO_ADDR : TRANSFER_MB over TCP, sha256 both ends
  local label=$1 from=$2 to=$3 addr=$4 port=5201 out=$WORK/sink.$RANDOM spid want got t0 secs
  [[ -f $WORK/blob ]] || head -c "${TRANSFER_MB}M" /dev/urandom >"$WORK/blob"
  want="$(stat -c %s "$WORK/blob") $(sha256sum "$WORK/blob" | cut -d' ' -f1)"
  bg_ns "${NS[to]}" "$WORK/sink.log" "$PY" "$TOOL" sink --bind "$addr" --port $port --out "$out" --timeout 90
  spid=$LAST_PID
  if ! wait_until 50 0.1 test -e "$out.ready"; then
    fail "$label: receiver did not start: $(tail -n 2 "$WORK/sink.log" | tr '\n' ' ')"; stop_pid "$spid"; return
  fi
  t0=$(date +%s.%N)
  run_ns "${NS[from]}" 95 "$PY" "$TOOL" send --to "$addr" --port $port --file "$WORK/blob" --timeout 90 \
    >>"$WORK/send.log" 2>&1
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  wait_until 50 0.1 test -s "$out"
  stop_pid "$spid"
  got=$(cat "$out" 2>/dev/null)
  if [[ -n $got && $got == "$want" ]]; then
    pass "$label: ${TRANSFER_MB} MB h$from -> h$to intact (sha256 ${want#* }; ${secs}s, $(awk -v m="$TRANSFER_MB" -v s="$secs" 'BEGIN{printf "%.0f", m*8.388608/s}') Mbit/s)"
  else
    fail "$label: sent '$want', received '${got:-nothing}' ($(tail -n 1 "$WORK/send.log" 2>/dev/null))"
  fi
}

mtu_checks() { # mtu_checks LABEL FROM_I DEV TO_ADDR : full-size DF packet crosses; +1 byte fails locally
  local label=$1 from=$2 dev=$3 to=$4 mtu out rc
  mtu=$(link_mtu "${NS[from]}" "$dev")
  if [[ -z $mtu ]]; then fail "$label: no $dev in h$from"; fail "$label: oversize (not run)"; return; fi
  if out=$(run_ns "${NS[from]}" 10 ping -M do -s $((mtu - 28)) -c 3 -i 0.2 -W 2 -q "$to" 2>&1); then
    pass "$label: $dev mtu $mtu: $((mtu - 28))-byte DF ping (a $mtu-byte packet) crosses ($(grep -o '[0-9]* received' <<<"$out"))"
  else
    fail "$label: $dev mtu $mtu: $((mtu - 28))-byte DF ping failed: $(tr '\n' ' ' <<<"$out")"
  fi
  out=$(run_ns "${NS[from]}" 10 ping -M do -s $((mtu - 27)) -c 1 -W 2 "$to" 2>&1); rc=$?
  if ((rc != 0)) && grep -qi "message too long" <<<"$out"; then
    pass "$label: $((mtu - 27))-byte DF ping fails locally: '$(grep -i -m1 'message too long' <<<"$out")'"
  else
    fail "$label: $((mtu - 27))-byte DF ping (rc=$rc) did not fail with EMSGSIZE: $(tr '\n' ' ' <<<"$out")"
  fi
}

# marker_run FROM_I TO_I TO_ADDR PORT MARKER : send 10 datagrams carrying MARKER, print how many
# the receiver got
marker_run() {
  local from=$1 to=$2 addr=$3 port=$4 marker=$5 out=$WORK/udp.$RANDOM rpid
  bg_ns "${NS[to]}" "$WORK/udp-recv.log" "$PY" "$TOOL" udp-recv --bind "$addr" --port "$port" \
    --out "$out" --marker "$marker" --want 5 --timeout 8
  rpid=$LAST_PID
  wait_until 50 0.1 test -e "$out.ready" || { stop_pid "$rpid"; echo 0; return; }
  run_ns "${NS[from]}" 10 "$PY" "$TOOL" udp-send --to "$addr" --port "$port" --msg "$marker" \
    --count 10 --interval 0.05 2>>"$WORK/udp-send.log"
  wait_until 90 0.1 test -s "$out"
  stop_pid "$rpid"
  cat "$out" 2>/dev/null || echo 0
}

peers_check() { # peers_check LABEL I EXPECT : weft peers on node I, polled for up to ~10 s
  local label=$1 i=$2 want=$3 k out raw rc
  for ((k = 0; k < 20; k++)); do
    raw=$(weft peers --data-dir "$WORK/n$i" --json 2>&1); rc=$?
    out=$("$PY" "$TOOL" peers --expect "$want" <<<"$raw") && { pass "$label: $out"; return; }
    ((rc == 64)) && { fail "$label: this weft has no 'peers --json' ($(head -n 1 <<<"$raw"))"; return; }
    sleep 0.5
  done
  fail "$label: $out"
}

# ------------------------------------------------------------------------------------ run
say "weft: $WEFT_BIN ($("$WEFT_BIN" --version 2>/dev/null | head -1))"
say "mode: $( ((CONTROL_ONLY)) && echo 'control plane only (--no-tun) + harness self-tests over the underlay' || echo 'data plane (TUN)'); work dir $WORK"

# topology
switch_add "$SW" || { fail "create switch namespace $SW"; finish; exit 1; }
for ((i = 1; i <= N; i++)); do
  host_add "${NS[i]}" "$SW" "p$i" "${UNDER[i]}/24" || { fail "create host namespace ${NS[i]}"; finish; exit 1; }
done
if wait_until 20 0.2 run_ns "${NS[1]}" 3 ping -c 1 -W 1 -q "${UNDER[3]}" >/dev/null 2>&1; then
  say "underlay up: $SW (br0) + ${NS[1]}..${NS[N]} on 198.51.100.0/24"
else
  fail "underlay: h1 cannot reach h3 at ${UNDER[3]}"; finish; exit 1
fi

# nodes, with the gossip on the wire captured from the first packet on
start_capture "$WORK/gossip.pcap"
start_node 1
if ! wait_node_ready 1 100 || ! wait_until 50 0.1 test -s "$WORK/n1/cluster.key"; then
  fail "node h1 did not start (log: $(tail -n 3 "$WORK/n1.log" | tr '\n' ' '))"; finish; exit 1
fi
for ((i = 2; i <= N; i++)); do start_node "$i"; done
for ((i = 2; i <= N; i++)); do
  wait_node_ready "$i" 100 || fail "node h$i did not start (log: $(tail -n 3 "$WORK/n$i.log" | tr '\n' ' '))"
done
say "nodes started (pids ${NODE_PID[*]})"
check_members "membership"
sleep 1   # a few more gossip rounds on the wire
stop_capture
{ read -r pk udp bytes; read -r _ seen; } < <("$PY" "$TOOL" pcap "$WORK/gossip.pcap" "$TOKEN")
if ((${pk:-0} > 0 && ${udp:-0} > 0)) && [[ ${seen:-1} == 0 ]]; then
  pass "wire: gossip is sealed: $pk packets ($udp UDP, $bytes bytes) captured while joining, no node name in them"
else
  fail "wire: gossip capture: ${pk:-0} packets, ${udp:-0} UDP, node-name token found=${seen:-?}"
fi

if ((CONTROL_ONLY)); then
  # ---------------------------------------------------------------- harness self-tests (underlay)
  transfer_check "self-test transfer (underlay)" 1 3 "${UNDER[3]}"
  mtu_checks "self-test mtu (underlay)" 1 eth0 "${UNDER[2]}"
  start_capture "$WORK/marker.pcap"
  CONTROL_MARK="WEFT-CONTROL-MARKER-$TOKEN"
  got=$(marker_run 1 2 "${UNDER[2]}" 5302 "$CONTROL_MARK")
  stop_capture
  { read -r pk udp bytes; read -r _ seen; } < <("$PY" "$TOOL" pcap "$WORK/marker.pcap" "$CONTROL_MARK")
  if ((got >= 5 && ${pk:-0} > 0)) && [[ ${seen:-0} == 1 ]]; then
    pass "self-test wire: a plaintext marker over the underlay arrives ($got/10) and the capture finds it ($pk packets)"
  else
    fail "self-test wire: control marker received $got/10, capture $pk packets, found=${seen:-?}"
  fi
else
  # ---------------------------------------------------------------- the data plane
  OVERLAY_OK=1
  if grep -q "data plane is not available" "$WORK/n1.log"; then
    say "note: this weft build says: $(grep -m1 'data plane is not available' "$WORK/n1.log")"
  fi
  for ((i = 1; i <= N; i++)); do
    OVL[i]=""
    tries=100; grep -q "data plane is not available" "$WORK/n$i.log" && tries=1
    for ((k = 0; k < tries; k++)); do
      OVL[i]=$(status_field "$i" overlayAddress); OVL[i]=${OVL[i]%%/*}
      [[ ${OVL[i]} == 10.42.* ]] && ip -n "${NS[i]}" -o -4 addr show dev $TUN 2>/dev/null | grep -q " ${OVL[i]}/" && break
      sleep 0.2
    done
    addr=$(ip -n "${NS[i]}" -o -4 addr show dev $TUN 2>/dev/null | awk '{print $4}' | head -1)
    flags=$(ip -n "${NS[i]}" -o link show $TUN 2>/dev/null | sed -n 's/^[0-9]*: [^:]*: <\([^>]*\)>.*/\1/p')
    fwd=$(run_ns "${NS[i]}" 3 cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)
    if [[ ${OVL[i]} == 10.42.* && $addr == "${OVL[i]}/16" && ,$flags, == *,UP,* && $fwd == 1 ]]; then
      pass "overlay: h$i has $TUN up with ${OVL[i]}/16 (mtu $(link_mtu "${NS[i]}" $TUN)), ip_forward=1"
    else
      fail "overlay: h$i: status overlayAddress='${OVL[i]}', $TUN addr='${addr:-none}' flags='${flags:-no device}', ip_forward=${fwd:-?}"
      OVERLAY_OK=0
    fi
    # TUN segmentation offload: this kernel takes it, so the node says "on" (docs/dataplane.md),
    # unless WEFT_START_ARGS turned it off.
    offl=$(status_field "$i" tunOffload); want_offl=on
    [[ " ${WEFT_START_ARGS:-} " == *" --no-tun-offload "* ]] && want_offl="off (--no-tun-offload)"
    if [[ $offl == "$want_offl" ]]; then pass "overlay: h$i tun offload $offl"
    else fail "overlay: h$i: status tunOffload='${offl:-none}', expected $want_offl"; fi
    # The TUN MTU is the underlay's minus exactly the encapsulation overhead
    # (20 IPv4 + 8 UDP + 32 Weft data header and tag), read in the node's own namespace.
    umtu=$(link_mtu "${NS[i]}" eth0); tmtu=$(link_mtu "${NS[i]}" $TUN)
    if [[ -n $umtu && -n $tmtu && $tmtu -eq $((umtu - 60)) ]]; then
      pass "overlay: h$i $TUN mtu $tmtu = underlay eth0 mtu $umtu - 60"
    else
      fail "overlay: h$i $TUN mtu '${tmtu:-none}', underlay eth0 mtu '${umtu:-none}': expected underlay - 60"
    fi
  done

  if ((!OVERLAY_OK)); then
    for c in "ping h1->h2" "ping h1->h3" "ping h2->h1" "ping h2->h3" "ping h3->h1" "ping h3->h2" "transfer" \
             "mtu full-size" "mtu oversize" "wire marker" "peers h1" "peers h2" "peers h3"; do
      fail "$c: not run (no overlay on every node)"
    done
  else
    for ((i = 1; i <= N; i++)); do
      for ((j = 1; j <= N; j++)); do
        ((i == j)) || ping_pair "ping h$i->h$j (${OVL[j]})" "$i" "${OVL[j]}" 15
      done
    done
    transfer_check "transfer (overlay)" 1 3 "${OVL[3]}"
    mtu_checks "mtu (overlay)" 1 $TUN "${OVL[2]}"

    start_capture "$WORK/marker.pcap"
    SECRET_MARK="WEFT-SECRET-MARKER-$TOKEN"
    CONTROL_MARK="WEFT-CONTROL-MARKER-$TOKEN"
    got_secret=$(marker_run 1 2 "${OVL[2]}" 5301 "$SECRET_MARK")
    got_control=$(marker_run 1 2 "${UNDER[2]}" 5302 "$CONTROL_MARK")
    stop_capture
    { read -r pk udp bytes; read -r _ seen_secret; read -r _ seen_control; } \
      < <("$PY" "$TOOL" pcap "$WORK/marker.pcap" "$SECRET_MARK" "$CONTROL_MARK")
    if ((got_secret >= 5 && got_control >= 5 && ${udp:-0} > 20)) && [[ $seen_secret == 0 && $seen_control == 1 ]]; then
      pass "wire: marker crossed the overlay ($got_secret/10) and is absent from the underlay capture ($pk packets, $udp UDP); plaintext control marker found"
    else
      why=()
      [[ $seen_secret == 1 ]] && why+=("the marker sent through the overlay IS in the underlay capture (plaintext)")
      [[ $seen_control == 1 ]] || why+=("the plaintext control marker is not in the capture, so the capture proves nothing")
      ((got_secret >= 5)) || why+=("only $got_secret/10 marker datagrams crossed the overlay")
      ((got_control >= 5)) || why+=("only $got_control/10 control datagrams crossed the underlay")
      ((${udp:-0} > 20)) || why+=("only ${udp:-0} UDP packets captured")
      fail "wire: $(IFS=';'; echo "${why[*]}") [capture: $pk packets, $udp UDP]"
    fi

    for ((i = 1; i <= N; i++)); do peers_check "peers: h$i" "$i" $((N - 1)); done
  fi
fi

# -------------------------------------------------------------------- crash and restart (node 3)
inc_before=$(status_field 3 incarnation)
ovl_before=${OVL[3]:-}
had_tun=0; ip -n "${NS[3]}" link show $TUN >/dev/null 2>&1 && had_tun=1
crash_pid "${NODE_PID[3]}"
say "crash: h3 (pid ${NODE_PID[3]}) killed with SIGKILL (incarnation was ${inc_before:-?})"
if ((had_tun)); then
  sleep 0.2
  ip -n "${NS[3]}" link show $TUN >/dev/null 2>&1 && say "note: $TUN still exists in h3 after the crash" \
    || say "note: $TUN went away with the process"
fi
sleep 1
t_restart=$(date +%s.%N)
start_node 3
if wait_node_ready 3 100; then
  pass "crash: h3 restarted on the same data dir after SIGKILL ($(awk -v a="$t_restart" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s to answer)"
else
  fail "crash: h3 did not come back after SIGKILL (log: $(tail -n 3 "$WORK/n3.log" | tr '\n' ' '))"
fi
inc_after=$(status_field 3 incarnation)
if [[ $inc_before =~ ^[0-9]+$ && $inc_after =~ ^[0-9]+$ ]] && ((inc_after > inc_before)); then
  pass "crash: h3 came back with a higher incarnation ($inc_before -> $inc_after)"
else
  fail "crash: h3's incarnation ${inc_before:-?} -> ${inc_after:-?}"
fi
all_see_h3_back() { # every node sees 3 alive and h3 at its new incarnation
  local i a t st inc
  for ((i = 1; i <= N; i++)); do
    read -r a t _ st inc <<<"$(members_of "$i" "${NAME[3]}")"
    [[ ${a:-0} -eq $N && $st == alive && $inc == "$inc_after" ]] || return 1
  done
}
wait_until 100 0.3 all_see_h3_back
for ((i = 1; i <= N; i++)); do
  read -r a t d st inc <<<"$(members_of "$i" "${NAME[3]}")"
  if [[ ${a:-0} -eq $N && $st == alive && $inc == "$inc_after" ]]; then
    pass "crash: h$i sees $N alive members, h3 at incarnation $inc"
  else
    fail "crash: h$i sees ${a:-0} alive of ${t:-0}: ${d:-no answer}"
  fi
done
if ((!CONTROL_ONLY)); then
  if ((OVERLAY_OK)); then
    for ((k = 0; k < 100; k++)); do
      OVL[3]=$(status_field 3 overlayAddress); OVL[3]=${OVL[3]%%/*}
      [[ ${OVL[3]} == 10.42.* ]] && ip -n "${NS[3]}" -o -4 addr show dev $TUN 2>/dev/null | grep -q " ${OVL[3]}/" && break
      sleep 0.2
    done
    say "crash: h3 overlay address ${ovl_before:-?} before, ${OVL[3]:-none} after"
    # h1 still holds a session from before the crash: its packets must lead to a new handshake
    ping_pair "crash: tunnels back: h1->h3 (${OVL[3]}) after restart" 1 "${OVL[3]}" 60
    ping_pair "crash: tunnels back: h3->h2 (${OVL[2]}) after restart" 3 "${OVL[2]}" 60
    peers_check "crash: peers: h3" 3 $((N - 1))
  else
    for c in "crash: tunnels back h1->h3" "crash: tunnels back h3->h2" "crash: peers h3"; do
      fail "$c: not run (no overlay on every node)"
    done
  fi
fi

finish
((CHECKS_FAILED == 0))
