#!/usr/bin/env bash
# bench/lab.sh — the data-plane benchmark lab: two simulated hosts (network namespaces) joined by
# a bridge, and one tunnel at a time between them, all measured in the same run:
#
#   underlay       no tunnel (veth + bridge): the ceiling
#   weft           this project (WEFT_BIN; default .build/release/weft, else .build/debug/weft)
#   weft-no-offload  the same with --no-tun-offload (one TUN read per packet): what TSO buys
#   vxlan          hand-made kernel VXLAN (ip link add type vxlan, unencrypted): weft-vxlan's ceiling
#   weft-vxlan     weft --data-plane vxlan --accept-unencrypted (the kernel's VXLAN, programmed by weft)
#   wireguard-go   userspace WireGuard (Debian wireguard-go + wireguard-tools)
#   nebula         Slack Nebula, default cipher AES-256-GCM (Debian nebula)
#
#   weft-lab-<pid>-h1  eth0 203.0.113.1/24 ─┐                  overlay (peers): 10.99.0.1 / 10.99.0.2
#   weft-lab-<pid>-h2  eth0 203.0.113.2/24 ─┴─ br0 in weft-lab-<pid>-sw   (weft picks its own 10.42.x.y)
#
# Per implementation and run: ping RTT (--pings at 50 ms, unloaded), iperf3 TCP h1 -> h2 with
# 1 stream and with 4 streams (--seconds each), the tunnel daemons' CPU over each iperf3 run
# (utime+stime from /proc/PID/stat, both hosts summed, in % of one core), TCP retransmits, UDP
# receive-buffer drops (h1+h2, /proc/net/snmp) and the whole machine's busy %. Medians over
# --runs; the ratios weft / best peer for throughput and for daemon CPU per Gbit/s. An
# implementation that cannot run is reported as "not available (reason)".
#
# Usage: bench/lab.sh [--seconds S] [--runs N] [--only a,b] [--json FILE] [--pings N] [--install]
#        bench/lab.sh --clean      remove weft-lab-* namespaces left by KEEP=1
#   --install   apt-get install iperf3 wireguard-go wireguard-tools nebula first
#   KEEP=1      leave namespaces, daemons and the work dir (configs, logs, iperf3 JSON) for debugging
# Needs root. Everything stays inside the weft-lab-* namespaces: nothing is created in, or
# routed to, the machine's own network; every process is stopped by PID on exit.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=../tests/e2e/lib/netns.sh
source "$ROOT/tests/e2e/lib/netns.sh"
PROG=lab.sh
ALL_IMPLS="underlay weft weft-no-offload vxlan weft-vxlan wireguard-go nebula"
PEERS="wireguard-go nebula"

SECONDS_PER=10 RUNS=3 ONLY="" JSON_OUT="" PINGS=20 INSTALL=0
CMDLINE="bench/lab.sh $*"
while (($#)); do
  case $1 in
    --seconds) SECONDS_PER=${2:-}; shift 2 ;;
    --runs)    RUNS=${2:-}; shift 2 ;;
    --only)    ONLY=${2:-}; shift 2 ;;
    --json)    JSON_OUT=${2:-}; shift 2 ;;
    --pings)   PINGS=${2:-}; shift 2 ;;
    --install) INSTALL=1; shift ;;
    --clean)   require_root "$PROG"; clean_stale weft-lab-; rm -rf /tmp/weft-lab.* 2>/dev/null; exit 0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "$PROG: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $SECONDS_PER =~ ^[0-9]+$ ]] && ((SECONDS_PER >= 1 && SECONDS_PER <= 120)) || { echo "$PROG: --seconds must be 1..120" >&2; exit 2; }
[[ $RUNS =~ ^[0-9]+$ ]] && ((RUNS >= 1 && RUNS <= 20)) || { echo "$PROG: --runs must be 1..20" >&2; exit 2; }
[[ $PINGS =~ ^[0-9]+$ ]] && ((PINGS >= 1 && PINGS <= 200)) || { echo "$PROG: --pings must be 1..200" >&2; exit 2; }
IMPLS=${ONLY//,/ }; IMPLS=${IMPLS:-$ALL_IMPLS}
for impl in $IMPLS; do
  [[ " $ALL_IMPLS " == *" $impl "* ]] || { echo "$PROG: unknown implementation '$impl' (known: $ALL_IMPLS)" >&2; exit 2; }
done
if [[ -n $JSON_OUT ]]; then
  [[ $JSON_OUT == /* ]] || JSON_OUT=$PWD/$JSON_OUT
  touch "$JSON_OUT" 2>/dev/null || { echo "$PROG: cannot write $JSON_OUT" >&2; exit 2; }
fi

require_root "$PROG"
WORK=$(mktemp -d /tmp/weft-lab.XXXXXX)
chmod 700 "$WORK"
LAB_PREFIX="weft-lab-$$-"
trap lab_cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM
if ((INSTALL)); then
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q -o DPkg::Lock::Timeout=120 --no-install-recommends \
    iperf3 iputils-ping python3 wireguard-go wireguard-tools nebula >"$WORK/apt.log" 2>&1 \
    || warn "apt-get install failed (see $WORK/apt.log); continuing with what is there"
fi
require_tools ip:iproute2 nsenter:util-linux ping:iputils-ping iperf3:iperf3 python3:python3 timeout:coreutils
PY=$(command -v python3)
start_watchdog $(( RUNS * 4 * (2 * SECONDS_PER + 60) + 120 ))

SW=${LAB_PREFIX}sw H1=${LAB_PREFIX}h1 H2=${LAB_PREFIX}h2
U1=203.0.113.1 U2=203.0.113.2
O1=10.99.0.1 O2=10.99.0.2
CLK_TCK=$(getconf CLK_TCK)
IPERF_PORT=5201
TAG=$$   # makes device and socket names unique to this run
RESULTS=$WORK/results.tsv
: >"$RESULTS"
declare -A UNAVAILABLE=()   # impl -> reason (not retried in later runs)

# ------------------------------------------------------------------------------------ measuring
proc_ticks() { # utime+stime of a process and all its threads, in clock ticks
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $(( ${12} + ${13} ))
}
sum_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(proc_ticks "$p"))); done; echo $t; }
busy_ticks() { # "busy total" over all CPUs
  local _c u n s i w q sq st _r
  read -r _c u n s i w q sq st _r </proc/stat
  echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}

udp_rcvbuf_errors() { # UDP receive-buffer overflows (packets a daemon's socket dropped), h1 + h2
  local ns n t=0
  for ns in "$H1" "$H2"; do
    n=$(run_ns "$ns" 3 cat /proc/net/snmp 2>/dev/null |
      awk '/^Udp: / { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next } print $c["RcvbufErrors"] }')
    t=$((t + ${n:-0}))
  done
  echo $t
}

iperf_parse() { # iperf_parse FILE -> "mbps retransmits" or "fail reason"
  "$PY" - "$1" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("fail no-iperf3-json"); sys.exit()
if d.get("error"):
    print("fail " + d["error"].replace(" ", "_")[:100]); sys.exit()
e = d.get("end", {})
print("%.1f %d" % (e.get("sum_received", {}).get("bits_per_second", 0) / 1e6, e.get("sum_sent", {}).get("retransmits", -1)))
EOF
}

# run_iperf STREAMS -> sets R_MBPS R_RETR R_CPU R_BUSY R_DROPS R_ERR (CPU of the daemons in DAEMONS)
run_iperf() {
  local streams=$1 out=$WORK/$IMPL-r$RUN-p$1.json c0 c1 b0 b1 t0 t1 d0 d1 parsed
  d0=$(udp_rcvbuf_errors)
  c0=$(sum_ticks "${DAEMONS[@]}"); b0=$(busy_ticks); t0=$(date +%s%N)
  run_ns "$H1" $((SECONDS_PER + 30)) iperf3 -c "$TARGET" -p $IPERF_PORT -t "$SECONDS_PER" -P "$streams" \
    -J --connect-timeout 3000 >"$out" 2>>"$WORK/iperf3-client.log"
  t1=$(date +%s%N); c1=$(sum_ticks "${DAEMONS[@]}"); b1=$(busy_ticks)
  d1=$(udp_rcvbuf_errors); R_DROPS=$((d1 - d0))
  parsed=$(iperf_parse "$out")
  R_ERR="" R_MBPS="" R_RETR=""
  if [[ $parsed == fail* ]]; then R_ERR=${parsed#fail }; else read -r R_MBPS R_RETR <<<"$parsed"; fi
  R_CPU=""
  ((${#DAEMONS[@]})) && R_CPU=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", t / hz / (ns / 1e9) * 100 }')
  R_BUSY=$(awk -v b=$(( ${b1% *} - ${b0% *} )) -v t=$(( ${b1#* } - ${b0#* } )) 'BEGIN { if (t > 0) printf "%.0f", b / t * 100 }')
}

run_ping() { # run_ping ADDR -> P_AVG P_LOSS
  local out
  out=$(run_ns "$H1" $((PINGS / 10 + 10)) ping -c "$PINGS" -i 0.05 -W 1 -q "$1" 2>&1)
  P_AVG="" P_LOSS=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' <<<"$out")
  [[ $out =~ =\ [0-9.]+/([0-9.]+)/ ]] && P_AVG=${BASH_REMATCH[1]}
}

reachable() { run_ns "$H1" 3 ping -c 1 -W 1 -q "$1" >/dev/null 2>&1; }

record() { # record key value ... (one TSV line of key=value)
  local line="" v
  while (($#)); do v=${2//$'\t'/ }; v=${v//$'\n'/ }; line+="$1=$v"$'\t'; shift 2; done
  printf '%s\n' "$line" >>"$RESULTS"
}

# ------------------------------------------------------------------------------------ implementations
# impl_<name>_up: sets TARGET, DEV, NOTES and DAEMONS (PIDs, both hosts) and returns 0, or sets
# REASON and returns 1 (REASON starting with "not available" = skip this implementation in later
# runs too). impl_<name>_down removes what _up made besides the daemons (stopped by the caller).

impl_underlay_up() { TARGET=$U2 DEV=eth0 NOTES="veth + bridge, no tunnel, no encryption"; DAEMONS=(); }
impl_underlay_down() { :; }

weft_up_with() { # weft_up_with EXTRA_START_ARGS...
  local bin d=$WORK/$IMPL-r$RUN i a="" a1="" k
  bin=$(find_weft_bin "$ROOT")
  [[ -x $bin ]] || { REASON="not available (no weft binary at $bin: swift build -c release --product weft)"; return 1; }
  mkdir -p "$d"; chmod 700 "$d"
  bg_ns "$H1" "$d/h1.log" "$bin" start --data-dir "$d/n1" --listen $U1:7946 --name lab-h1 --log-level warning "$@"
  DAEMONS=("$LAST_PID")
  for ((k = 0; k < 100; k++)); do [[ -s $d/n1/cluster.key ]] && break; kill -0 "${DAEMONS[0]}" 2>/dev/null || break; sleep 0.1; done
  [[ -s $d/n1/cluster.key ]] || { REASON="not available (first node did not start: $(tail -n 2 "$d/h1.log" | tr '\n' ' '))"; return 1; }
  bg_ns "$H2" "$d/h2.log" "$bin" start --data-dir "$d/n2" --listen $U2:7946 --name lab-h2 --log-level warning "$@" \
    --seed $U1:7946 --cluster-key-file "$d/n1/cluster.key"
  DAEMONS+=("$LAST_PID")
  sleep 0.5
  if grep -q "data plane is not available" "$d/h1.log" "$d/h2.log"; then
    REASON="not available ($(grep -h -m1 -o 'the encrypted data plane is not available[^;]*' "$d/h1.log"))"; return 1
  fi
  for ((k = 0; k < 100; k++)); do
    a=$(timeout 5 "$bin" status --data-dir "$d/n2" --json 2>/dev/null | "$PY" -c 'import json,sys; print((json.load(sys.stdin).get("overlayAddress") or "").split("/")[0])' 2>/dev/null)
    a1=$(timeout 5 "$bin" status --data-dir "$d/n1" --json 2>/dev/null | "$PY" -c 'import json,sys; print((json.load(sys.stdin).get("overlayAddress") or "").split("/")[0])' 2>/dev/null)
    [[ $a == 10.42.* && $a1 == 10.42.* ]] && ip -n "$H1" link show weft0 >/dev/null 2>&1 && ip -n "$H2" link show weft0 >/dev/null 2>&1 && break
    sleep 0.2
  done
  [[ $a == 10.42.* ]] && ip -n "$H2" link show weft0 >/dev/null 2>&1 \
    || { REASON="not available (no weft0 with an overlay address within 20 s: $(tail -n 2 "$d/h2.log" | tr '\n' ' '))"; return 1; }
  TARGET=$a DEV=weft0 NOTES="${*:+$* }weft $("$bin" --version 2>/dev/null | head -1) ($(basename "$(dirname "$bin")") build)"
}
impl_weft_up() { weft_up_with; }
impl_weft_down() { :; }
impl_weft_no_offload_up() { weft_up_with --no-tun-offload; }
impl_weft_no_offload_down() { :; }
impl_weft_vxlan_up() { weft_up_with --data-plane vxlan --accept-unencrypted; }
impl_weft_vxlan_down() { :; }

impl_vxlan_up() { # the kernel's VXLAN by hand, as an operator would: one peer each, no learning
  local i ns local remote oa
  ip link help vxlan >/dev/null 2>&1 || true
  for i in 1 2; do
    if ((i == 1)); then ns=$H1 local=$U1 remote=$U2 oa=$O1; else ns=$H2 local=$U2 remote=$U1 oa=$O2; fi
    ip -n "$ns" link add "vxl$TAG" type vxlan id 4243 dstport 4789 local "$local" remote "$remote" nolearning 2>>"$WORK/vxlan.log" \
      || { REASON="not available (ip link add type vxlan failed: $(tail -n 1 "$WORK/vxlan.log"))"; return 1; }
    ip -n "$ns" link set "vxl$TAG" mtu 1450 up
    ip -n "$ns" addr add "$oa/24" dev "vxl$TAG"
  done
  TARGET=$O2 DEV=vxl$TAG NOTES="ip link add type vxlan id 4243 dstport 4789 local/remote, nolearning; no daemon, no encryption"; DAEMONS=()
}
impl_vxlan_down() { ip -n "$H1" link del "vxl$TAG" 2>/dev/null; ip -n "$H2" link del "vxl$TAG" 2>/dev/null; :; }

impl_wireguard_go_up() {
  local d=$WORK/wg-r$RUN i ns dev peer ep oa op
  command -v wireguard-go >/dev/null && command -v wg >/dev/null \
    || { REASON="not available (apt-get install wireguard-go wireguard-tools, or --install)"; return 1; }
  mkdir -p "$d"; chmod 700 "$d"
  for i in 1 2; do (umask 077; wg genkey >"$d/k$i"); wg pubkey <"$d/k$i" >"$d/p$i"; done
  DAEMONS=()
  for i in 1 2; do
    dev=wl${TAG}h$i; ns=$H1; ((i == 2)) && ns=$H2
    rm -f "/var/run/wireguard/$dev.sock"
    # -f: foreground, so the PID held is the daemon itself
    bg_ns "$ns" "$d/h$i.log" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 LOG_LEVEL=error wireguard-go -f "$dev"
    DAEMONS+=("$LAST_PID")
  done
  wait_until 50 0.1 test -S "/var/run/wireguard/wl${TAG}h1.sock" -a -S "/var/run/wireguard/wl${TAG}h2.sock" \
    || { REASON="wireguard-go made no UAPI socket: $(tail -n 2 "$d"/h*.log | tr '\n' ' ')"; return 1; }
  for i in 1 2; do
    if ((i == 1)); then ns=$H1 peer=$(cat "$d/p2") ep=$U2 oa=$O1 op=$O2; else ns=$H2 peer=$(cat "$d/p1") ep=$U1 oa=$O2 op=$O1; fi
    dev=wl${TAG}h$i
    run_ns "$ns" 10 wg set "$dev" private-key "$d/k$i" listen-port 51820 peer "$peer" endpoint "$ep:51820" \
      allowed-ips "$op/32" 2>>"$d/wg.log" || { REASON="wg set failed: $(tail -n 1 "$d/wg.log")"; return 1; }
    ip -n "$ns" addr add "$oa/24" dev "$dev" && ip -n "$ns" link set "$dev" mtu 1420 up || { REASON="wg link setup failed"; return 1; }
  done
  TARGET=$O2 DEV=wl${TAG}h1
  NOTES="wireguard-go $(wireguard-go --version 2>/dev/null | sed -n 's/^wireguard-go v\([^ ]*\).*/\1/p' | head -1), ChaCha20-Poly1305, MTU 1420"
}
impl_wireguard_go_down() { rm -f "/var/run/wireguard/wl${TAG}h1.sock" "/var/run/wireguard/wl${TAG}h2.sock"; }

impl_nebula_up() {
  local d=$WORK/nebula-r$RUN i ns la pa pu
  command -v nebula >/dev/null && command -v nebula-cert >/dev/null || { REASON="not available (apt-get install nebula, or --install)"; return 1; }
  mkdir -p "$d"; chmod 700 "$d"
  nebula-cert ca -name weft-lab -duration 2h -out-crt "$d/ca.crt" -out-key "$d/ca.key" >>"$d/cert.log" 2>&1 || { REASON="nebula-cert ca failed"; return 1; }
  for i in 1 2; do
    nebula-cert sign -ca-crt "$d/ca.crt" -ca-key "$d/ca.key" -name "h$i" -ip "10.99.0.$i/24" \
      -out-crt "$d/h$i.crt" -out-key "$d/h$i.key" >>"$d/cert.log" 2>&1 || { REASON="nebula-cert sign failed"; return 1; }
  done
  DAEMONS=()
  for i in 1 2; do
    if ((i == 1)); then ns=$H1 la=$U1 pa=$O2 pu=$U2; else ns=$H2 la=$U2 pa=$O1 pu=$U1; fi
    cat >"$d/h$i.yml" <<EOF
pki: { ca: $d/ca.crt, cert: $d/h$i.crt, key: $d/h$i.key }
static_host_map: { "$pa": ["$pu:4242"] }
lighthouse: { am_lighthouse: false, interval: 60, hosts: [] }
listen: { host: $la, port: 4242 }
punchy: { punch: false }
cipher: aes
tun: { disabled: false, dev: nl${TAG}h$i, drop_local_broadcast: false, drop_multicast: false, tx_queue: 500, mtu: 1300 }
logging: { level: warning, format: text }
firewall:
  outbound: [ { port: any, proto: any, host: any } ]
  inbound: [ { port: any, proto: any, host: any } ]
EOF
    bg_ns "$ns" "$d/h$i.log" nebula -config "$d/h$i.yml"
    DAEMONS+=("$LAST_PID")
  done
  wait_until 50 0.1 ip -n "$H1" link show "nl${TAG}h1" >/dev/null 2>&1 \
    || { REASON="nebula made no TUN: $(tail -n 2 "$d/h1.log" | tr '\n' ' ')"; return 1; }
  TARGET=$O2 DEV=nl${TAG}h1
  NOTES="nebula $(nebula -version 2>/dev/null | awk '{print $2}'), AES-256-GCM, MTU 1300, static host map"
}
impl_nebula_down() { :; }

# ------------------------------------------------------------------------------------ lab
export LAB_LOAD_START; LAB_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
switch_add "$SW" && host_add "$H1" "$SW" p1 $U1/24 && host_add "$H2" "$SW" p2 $U2/24 \
  || { echo "$PROG: could not build the lab" >&2; exit 1; }
wait_until 20 0.2 reachable $U2 || { echo "$PROG: underlay $U1 -> $U2 unreachable" >&2; exit 1; }
say "lab up: $H1 ($U1) <-> $H2 ($U2) through br0 in $SW; ${SECONDS_PER}s per iperf3 run, $RUNS run(s), impls: $IMPLS"
say "machine: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"

for ((RUN = 1; RUN <= RUNS; RUN++)); do
  for IMPL in $IMPLS; do
    fn=impl_${IMPL//-/_}
    if [[ -n ${UNAVAILABLE[$IMPL]:-} ]]; then continue; fi
    REASON="" TARGET="" DEV="" NOTES=""; DAEMONS=()
    if ! "${fn}_up" || ! wait_until 60 0.5 reachable "$TARGET"; then
      [[ -z $REASON ]] && REASON="no ping reply from $TARGET within 30 s"
      say "run $RUN: $IMPL: $REASON"
      [[ $REASON == "not available"* ]] && UNAVAILABLE[$IMPL]=$REASON
      record impl "$IMPL" run "$RUN" status failed reason "$REASON"
      for p in "${DAEMONS[@]}"; do stop_pid "$p"; done
      "${fn}_down"
      continue
    fi
    sleep 1   # handshakes settle
    load1=$(cut -d' ' -f1 /proc/loadavg)   # other work on the machine shows here
    mtu=$(link_mtu "$H1" "$DEV")
    bg_ns "$H2" "$WORK/iperf3-server.log" iperf3 -s -p $IPERF_PORT
    srv=$LAST_PID
    wait_until 50 0.1 sh -c "nsenter --net=/run/netns/$H2 ss -ltn | grep -q ':$IPERF_PORT '"
    run_ping "$TARGET"
    run_iperf 1; t1=$R_MBPS r1=$R_RETR c1=$R_CPU b1=$R_BUSY e1=$R_ERR u1=$R_DROPS
    run_iperf 4; t4=$R_MBPS r4=$R_RETR c4=$R_CPU b4=$R_BUSY e4=$R_ERR u4=$R_DROPS
    stop_pid "$srv"
    say "run $RUN: $IMPL: tcp1 ${t1:-ERR $e1} Mbit/s, tcp4 ${t4:-ERR $e4} Mbit/s, rtt ${P_AVG:-?} ms, daemon cpu ${c1:--}% / ${c4:--}%, busy $b1% / $b4%, retr $r1 / $r4, udp rcvbuf drops $u1 / $u4, mtu $mtu"
    record impl "$IMPL" run "$RUN" status ok mtu "$mtu" tcp1_mbps "$t1" tcp1_retr "$r1" tcp1_error "$e1" \
      tcp4_mbps "$t4" tcp4_retr "$r4" tcp4_error "$e4" rtt_ms "$P_AVG" ping_loss_pct "$P_LOSS" \
      cpu1_pct "$c1" cpu4_pct "$c4" busy1_pct "$b1" busy4_pct "$b4" udp_drops1 "$u1" udp_drops4 "$u4" loadavg1_before "$load1" notes "$NOTES"
    for p in "${DAEMONS[@]}"; do stop_pid "$p"; done
    "${fn}_down"
    sleep 0.5
  done
done

# ------------------------------------------------------------------------------------ report
"$PY" - "$RESULTS" "$JSON_OUT" "$SECONDS_PER" "$RUNS" "$PINGS" "$CMDLINE" "$IMPLS" "$PEERS" <<'EOF'
import json, platform, statistics, sys, time, os
res, json_out, secs, runs, pings, cmd, impls, peers = sys.argv[1:9]
impls, peers = impls.split(), peers.split()
rows = []
for line in open(res):
    r = {}
    for kv in line.rstrip("\n").split("\t"):
        if "=" in kv:
            k, v = kv.split("=", 1)
            try:
                v = float(v)
            except ValueError:
                v = v or None
            r[k] = v
    if r:
        rows.append(r)
KEYS = ["tcp1_mbps", "tcp4_mbps", "rtt_ms", "cpu1_pct", "cpu4_pct", "tcp1_retr", "tcp4_retr", "udp_drops1", "udp_drops4",
        "busy1_pct", "busy4_pct", "mtu"]
out = {}
for name in impls:
    mine = [r for r in rows if r.get("impl") == name]
    ok = [r for r in mine if r.get("status") == "ok"]
    e = {"status": "ok" if ok else "not available", "runs": mine}
    if not ok:
        e["reason"] = next((r.get("reason") for r in mine if r.get("reason")), "not run")
    else:
        e["notes"] = next((r.get("notes") for r in ok if r.get("notes")), "")
        med = {}
        for k in KEYS:
            v = [r[k] for r in ok if isinstance(r.get(k), float)]
            med[k] = statistics.median(v) if v else None
        # daemon CPU (cores) per Gbit/s of 1-stream throughput, median of per-run values
        v = [(r["cpu1_pct"] / 100) / (r["tcp1_mbps"] / 1000) for r in ok
             if isinstance(r.get("cpu1_pct"), float) and isinstance(r.get("tcp1_mbps"), float) and r["tcp1_mbps"] > 0]
        med["cpu_cores_per_gbit"] = statistics.median(v) if v else None
        e["median"] = med
        e["runs_ok"] = len(ok)
    out[name] = e

def best(key, fn):
    c = [(out[p]["median"][key], p) for p in peers if out.get(p, {}).get("status") == "ok" and out[p]["median"].get(key) is not None]
    return fn(c) if c else (None, None)
ratios = {}
w = out.get("weft", {})
for key, fn, label in (("tcp1_mbps", max, "tcp1_throughput"), ("tcp4_mbps", max, "tcp4_throughput"),
                       ("cpu_cores_per_gbit", min, "cpu_per_gbit")):
    b, who = best(key, fn)
    if w.get("status") == "ok" and b and w["median"].get(key) is not None:
        ratios[label] = {"weft": w["median"][key], "best_peer": who, "best_peer_value": b, "ratio": w["median"][key] / b}
    else:
        ratios[label] = {"best_peer": who, "best_peer_value": b, "ratio": None,
                         "why": "weft " + (w.get("reason") or "not measured") if w.get("status") != "ok" else "no peer measured"}

def f(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)
def spread(name, key, fmt="{:.0f}"):
    v = [r.get(key) for r in out[name]["runs"] if r.get("status") == "ok"]
    return " / ".join("-" if not isinstance(x, float) else fmt.format(x) for x in v)
print()
print("| implementation | TCP 1 stream Mbit/s | TCP 4 streams Mbit/s | ping RTT ms | daemon CPU % 1 / 4 streams (h1+h2) | daemon cores per Gbit/s (1 stream) | TCP retransmits 1 / 4 | UDP receive-buffer drops 1 / 4 | MTU | notes |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name in impls:
    e = out[name]
    if e["status"] != "ok":
        print(f"| {name} | - | - | - | - | - | - | - | - | {e['reason']} |")
        continue
    m = e["median"]
    print(f"| {name} | {f(m['tcp1_mbps'])} ({spread(name, 'tcp1_mbps')}) | {f(m['tcp4_mbps'])} ({spread(name, 'tcp4_mbps')}) | "
          f"{f(m['rtt_ms'], '{:.3f}')} | {f(m['cpu1_pct'])} / {f(m['cpu4_pct'])} | {f(m['cpu_cores_per_gbit'], '{:.2f}')} | "
          f"{f(m['tcp1_retr'])} / {f(m['tcp4_retr'])} | {f(m['udp_drops1'])} / {f(m['udp_drops4'])} | {f(m['mtu'])} | {e.get('notes') or ''} |")
print()
print(f"medians of {runs} run(s), {secs} s per iperf3 run; per-run values in parentheses; "
      f"load average {os.environ.get('LAB_LOAD_START', '?')} at start, {' '.join(open('/proc/loadavg').read().split()[:3])} at end")
for label, r in ratios.items():
    if r["ratio"] is not None:
        print(f"weft / best peer ({r['best_peer']}), {label}: {r['ratio']:.2f} ({r['weft']:.2f} vs {r['best_peer_value']:.2f})")
    else:
        print(f"weft / best peer, {label}: n/a ({r.get('why')}); best peer {r['best_peer'] or '-'} = {f(r['best_peer_value'], '{:.2f}')}")
if w.get("status") != "ok":
    print(f"weft: {w.get('reason', 'not selected')}")
def pair_ratios(a_name, b_name, keys, prefix, title):
    """a_name against b_name of the same run, for each (key, label) in keys."""
    ea, eb = out.get(a_name, {}), out.get(b_name, {})
    if ea.get("status") != "ok" or eb.get("status") != "ok":
        return
    for key, label in keys:
        a, b = ea["median"].get(key), eb["median"].get(key)
        if a is not None and b:
            ratios[prefix + label] = {a_name: a, b_name: b, "ratio": a / b}
            print(f"{title}, {label}: {a / b:.2f} ({a:.3f} vs {b:.3f})")
# weft-vxlan against its ceiling, the hand-made kernel VXLAN of the same run.
pair_ratios("weft-vxlan", "vxlan", (("tcp1_mbps", "tcp1_throughput"), ("tcp4_mbps", "tcp4_throughput"), ("rtt_ms", "rtt")),
            "weft_vxlan_vs_vxlan_", "weft-vxlan / hand-made vxlan")
# What TUN segmentation offload buys: weft against itself with --no-tun-offload, same run.
pair_ratios("weft", "weft-no-offload", (("tcp1_mbps", "tcp1_throughput"), ("tcp4_mbps", "tcp4_throughput"),
                                        ("cpu_cores_per_gbit", "daemon_cpu_per_gbit")),
            "weft_vs_no_offload_", "weft / weft-no-offload")
meta = {"command": cmd, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "kernel": platform.release(),
        "cpus": os.cpu_count(), "seconds_per_iperf3_run": int(secs), "runs": int(runs), "pings": int(pings),
        "loadavg_start": os.environ.get("LAB_LOAD_START", "").split(), "loadavg_end": open("/proc/loadavg").read().split()[:3]}
if json_out:
    with open(json_out, "w") as fh:
        json.dump({"meta": meta, "results": out, "ratios": ratios}, fh, indent=1)
    print(f"json: {json_out}")
EOF
