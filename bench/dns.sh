#!/bin/bash
# bench/dns.sh: the node's resolver against dnsmasq serving the same names, same run.
#
# Inside a test-made network namespace (loopback only): one weft node (`--no-tun`, resolver on
# 127.0.0.1:5301, NAMES names added with `weft dns add`) and dnsmasq (Debian, 127.0.0.1:5302,
# the same names from a hosts file, `--local=/weft.internal/` so it never forwards, TTL 5 like
# ours). The load generator is dnsperf (Debian `dnsperf`): queries for the names in random
# order, A type, EDNS off (like glibc's stub resolver).
#
#  * throughput: dnsperf as fast as the server answers (CLIENTS sockets, 100 outstanding),
#    SECONDS_EACH seconds; queries per second and lost queries.
#  * latency: dnsperf at a fixed RATE (queries/s) with -v, every query's latency; p50 / p99.
#
# Each of RUNS rounds measures both servers (order alternating); the table shows medians.
# Output: a markdown table and one line per measurement; `RAW=1` keeps the dnsperf outputs.
#
# env: WEFT_BIN (default .build/release/weft, else .build/debug/weft), NAMES (100), RUNS (5),
#      SECONDS_EACH (5), RATE (5000), CLIENTS (4).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}
NAMES=${NAMES:-100}; RUNS=${RUNS:-5}; SECONDS_EACH=${SECONDS_EACH:-5}; RATE=${RATE:-5000}; CLIENTS=${CLIENTS:-4}
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ "$(id -u)" = 0 ] || { echo "bench/dns.sh: needs root (a network namespace)"; exit 2; }
command -v dnsperf >/dev/null || { echo "bench/dns.sh: needs dnsperf (apt-get install dnsperf)"; exit 2; }
[ -x "$DNSMASQ" ] || { echo "bench/dns.sh: needs dnsmasq (apt-get install dnsmasq-base)"; exit 2; }
[ -x "$WEFT_BIN" ] || { echo "bench/dns.sh: no weft binary at $WEFT_BIN (swift build -c release --product weft)"; exit 2; }

W=$(mktemp -d /tmp/weft-dnsbench.XXXXXX)
NS=weft-dnsbench-$$
WEFT_PID=
cleanup() {
  [ -n "$WEFT_PID" ] && { kill "$WEFT_PID" 2>/dev/null; for _ in $(seq 50); do kill -0 "$WEFT_PID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$WEFT_PID" 2>/dev/null; wait "$WEFT_PID" 2>/dev/null; }
  [ -s "$W/dnsmasq.pid" ] && kill "$(cat "$W/dnsmasq.pid")" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  [ "${RAW:-0}" = 1 ] && echo "raw outputs kept in $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS" || { echo "cannot create netns $NS"; exit 2; }
ip -n "$NS" link set lo up
inns() { nsenter --net=/run/netns/$NS "$@"; }

# ---- servers ------------------------------------------------------------------------------------
# nsenter directly (not through the function), so $! is the node itself (nsenter execs it).
nsenter --net=/run/netns/$NS "$WEFT_BIN" start --no-tun --data-dir "$W/node" --listen 127.0.0.1:7946 --name bench \
  --dns-listen 127.0.0.1:5301 --dns-upstream 127.0.0.1:9 >"$W/node.log" 2>&1 &
WEFT_PID=$!
for _ in $(seq 150); do "$WEFT_BIN" status --data-dir "$W/node" >/dev/null 2>&1 && break; sleep 0.1; done
: >"$W/hosts"; : >"$W/queries"
for k in $(seq 1 "$NAMES"); do
  ip=10.42.$((k / 250 + 1)).$((k % 250 + 1))
  "$WEFT_BIN" dns add "name$k" "$ip" --data-dir "$W/node" >/dev/null || { echo "weft dns add name$k failed"; exit 1; }
  echo "$ip name$k.weft.internal" >>"$W/hosts"
done
python3 -c "
import random; random.seed(1); n=$NAMES
print('\n'.join('name%d.weft.internal A' % random.randint(1, n) for _ in range(100000)))" >"$W/queries"
inns "$DNSMASQ" --conf-file=/dev/null --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address=127.0.0.1 \
  --port=5302 --addn-hosts="$W/hosts" --local=/weft.internal/ --local-ttl=5 --pid-file="$W/dnsmasq.pid" \
  --user=root --group=root 2>"$W/dnsmasq.err" || { echo "dnsmasq: $(cat "$W/dnsmasq.err")"; exit 1; }
for p in 5301 5302; do
  a=$(inns dig @127.0.0.1 -p $p +short +tries=1 +time=2 name1.weft.internal)
  [ "$a" = 10.42.1.2 ] || { echo "server on port $p does not answer name1: '$a' ($(tail -3 "$W/node.log"))"; exit 1; }
done
echo "weft $($WEFT_BIN --version 2>/dev/null | head -1) ($WEFT_BIN), dnsmasq $($DNSMASQ --version | head -1 | awk '{print $3}'), dnsperf $(dnsperf -h 2>&1 | grep -o 'Version.*'), $NAMES names, $(nproc) cores"

# ---- measurements -----------------------------------------------------------------------------------
throughput() { # port tag run → "qps lost"
  inns dnsperf -s 127.0.0.1 -p $1 -d "$W/queries" -l "$SECONDS_EACH" -c "$CLIENTS" -q 100 -t 1 >"$W/tp-$2-$3.txt" 2>&1
  local qps lost
  qps=$(awk '/Queries per second:/ {printf "%d", $4}' "$W/tp-$2-$3.txt")
  lost=$(awk '/Queries lost:/ {print $3}' "$W/tp-$2-$3.txt")
  echo "${qps:-0} ${lost:-?}"
}
latency() { # port tag run → "p50_us p99_us max_us n"
  inns dnsperf -s 127.0.0.1 -p $1 -d "$W/queries" -l 3 -Q "$RATE" -c 1 -q 20 -t 1 -v >"$W/lat-$2-$3.txt" 2>&1
  awk '$1 == ">" && $2 == "NOERROR" {print $NF * 1e6}' "$W/lat-$2-$3.txt" | sort -n | awk '
    { v[NR] = $1 } END { if (NR == 0) { print "0 0 0 0"; exit }
      i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
      printf "%.0f %.0f %.0f %d\n", v[i50], v[i99], v[NR], NR }'
}
declare -A TP LAT
for r in $(seq 1 "$RUNS"); do
  order="weft:5301 dnsmasq:5302"; [ $((r % 2)) = 0 ] && order="dnsmasq:5302 weft:5301"
  for s in $order; do
    tag=${s%%:*}; port=${s##*:}
    TP[$tag-$r]=$(throughput $port $tag $r)
    LAT[$tag-$r]=$(latency $port $tag $r)
    echo "run $r $tag: throughput ${TP[$tag-$r]% *} q/s (lost ${TP[$tag-$r]#* }); at $RATE q/s p50 $(cut -d' ' -f1 <<<"${LAT[$tag-$r]}") µs, p99 $(cut -d' ' -f2 <<<"${LAT[$tag-$r]}") µs, max $(cut -d' ' -f3 <<<"${LAT[$tag-$r]}") µs over $(cut -d' ' -f4 <<<"${LAT[$tag-$r]}") answers"
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "| server | throughput (q/s) | p50 at $RATE q/s (µs) | p99 (µs) |"
echo "|---|---:|---:|---:|"
for tag in weft dnsmasq; do
  tp=$(for r in $(seq 1 "$RUNS"); do echo "${TP[$tag-$r]% *}"; done | median)
  p50=$(for r in $(seq 1 "$RUNS"); do cut -d' ' -f1 <<<"${LAT[$tag-$r]}"; done | median)
  p99=$(for r in $(seq 1 "$RUNS"); do cut -d' ' -f2 <<<"${LAT[$tag-$r]}"; done | median)
  echo "| $tag | $tp | $p50 | $p99 |"
  eval "M_$tag=$tp"
done
awk -v a="$M_weft" -v b="$M_dnsmasq" 'BEGIN { if (b > 0) printf "throughput ratio weft/dnsmasq: %.2f (medians of %d runs)\n", a / b, '"$RUNS"' }'
