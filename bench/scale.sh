#!/usr/bin/env bash
# bench/scale.sh — 100 real `weft start --no-tun` processes on 127.0.0.1 of this machine:
#
#   converge   time from the first start until every node lists NODES alive members
#   idle       per-node CPU (utime+stime from /proc/PID/stat over IDLE_SECONDS, % of one core)
#              and RSS (VmRSS from /proc/PID/status) of the converged, idle cluster
#   dead       SIGKILL of one node until every other node lists it dead
#   alloc      ALLOCS allocations spread over the live nodes by THREADS concurrent clients
#              (straight to the control sockets), all distinct; throughput and latency
#   rss-after  VmRSS again after the allocations
#   settled    per-node CPU and RSS again over IDLE_SECONDS, SETTLE_SECONDS (30) after the
#              allocations: the steady state of a cluster holding them (the first idle phase
#              starts 5 s after convergence, while retransmit queues still drain)
#
# Prints median / p90 / max and writes everything to bench/results/scale-<UTC time>.json
# (or --json FILE). As root the nodes run inside a namespace of their own (weft-lab-<pid>-scale,
# only lo), so their ports cannot clash with anything; otherwise on the host's 127.0.0.1 from
# port PORT_BASE. Every process it starts is stopped by PID on exit (trap), also on failure.
#
# Usage: bench/scale.sh [--nodes N] [--allocs N] [--profile default|fast] [--idle-seconds S]
#                       [--json FILE] [--keep] [--clean]
#   --clean removes the namespaces, processes and work dirs an earlier --keep run left
# Environment: WEFT_BIN (default .build/release/weft: build it with
#   `swift build -c release --product weft`), THREADS (16), PORT_BASE (24000), SCALE_TIMEOUT
#   (watchdog, 900 s), SETTLE_SECONDS (30), WEFT_LOG_LEVEL (warning; info shows each node's joins).
# Aims (issue 8): converge <= 10 s, idle CPU <= 0.5 % of a core and RSS <= 40 MB per node.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=../tests/e2e/lib/netns.sh
source "$ROOT/tests/e2e/lib/netns.sh"

NODES=100 ALLOCS=10000 PROFILE=default IDLE_SECONDS=30 SETTLE_SECONDS=${SETTLE_SECONDS:-30} JSON="" KEEP_RUN=0
while (($#)); do
  case $1 in
    --nodes) NODES=$2; shift 2 ;;
    --allocs) ALLOCS=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --idle-seconds) IDLE_SECONDS=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --keep) KEEP_RUN=1; shift ;;
    --clean) require_root "bench/scale.sh"; clean_stale weft-lab-; rm -rf /tmp/weft-scale.* 2>/dev/null; exit 0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench/scale.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $NODES =~ ^[0-9]+$ && $NODES -ge 3 && $NODES -le 400 ]] || { echo "bench/scale.sh: --nodes must be 3..400" >&2; exit 2; }
[[ $ALLOCS =~ ^[0-9]+$ ]] || { echo "bench/scale.sh: --allocs must be a number" >&2; exit 2; }
THREADS=${THREADS:-16}
PORT_BASE=${PORT_BASE:-24000}
if [[ -n ${WEFT_BIN:-} ]]; then BIN=$WEFT_BIN
elif [[ -x $ROOT/.build/release/weft ]]; then BIN=$ROOT/.build/release/weft
else echo "bench/scale.sh: no release build: swift build -c release --product weft (or set WEFT_BIN)" >&2; exit 2; fi
[[ $BIN == */debug/* ]] && warn "WARNING: $BIN is a debug build; the numbers are not representative"
PY=$(command -v python3) || { echo "bench/scale.sh: python3 is needed" >&2; exit 2; }
JSON=${JSON:-$HERE/results/scale-$(date -u +%Y%m%dT%H%M%SZ).json}
mkdir -p "$(dirname "$JSON")"

WORK=$(mktemp -d /tmp/weft-scale.XXXXXX)
LAB_PREFIX="weft-lab-$$-"
((KEEP_RUN)) && KEEP=1
trap lab_cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM
start_watchdog "${SCALE_TIMEOUT:-900}"

ROOTED=0
if [[ $(id -u) -eq 0 ]]; then
  NS=${LAB_PREFIX}scale
  ns_add "$NS" || exit 1
  ROOTED=1
fi
declare -a PIDS
start_node() { # start_node I
  local i=$1 args
  args=(start --no-tun --data-dir "$WORK/n$i" --listen "127.0.0.1:$((PORT_BASE + i))" --name "scale-$i"
        --profile "$PROFILE" --log-level "${WEFT_LOG_LEVEL:-warning}")
  ((i > 1)) && args+=(--seed "127.0.0.1:$((PORT_BASE + 1))" --cluster-key-file "$WORK/n1/cluster.key")
  if ((ROOTED)); then bg_ns "$NS" "$WORK/n$i.log" "$BIN" "${args[@]}"
  else
    "$BIN" "${args[@]}" >>"$WORK/n$i.log" 2>&1 </dev/null &
    LAST_PID=$!; LAB_PIDS[$LAST_PID]="scale-$i"
  fi
  PIDS[i]=$LAST_PID
}

cat >"$WORK/driver.py" <<'PYEOF'
import json, os, socket, struct, sys, threading, time

def call(d, req, timeout=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(d, "weft.sock"))
        body = json.dumps(dict(v=1, **req)).encode()
        s.sendall(struct.pack(">I", len(body)) + body)
        def need(n):
            b = b""
            while len(b) < n:
                c = s.recv(n - len(b))
                if not c: raise OSError("closed")
                b += c
            return b
        (n,) = struct.unpack(">I", need(4))
        r = json.loads(need(n))
    finally:
        s.close()
    if r.get("error"): raise RuntimeError(r["error"].get("message", "error"))
    return r.get("result")

names = {}
def states(d):
    try: ms = call(d, {"op": "members"}, 5)
    except Exception: return None
    for m in ms: names[m["id"]] = m.get("name", m["id"][:12])
    return {m["id"]: m["state"] for m in ms}

def wait_all(dirs, pred, timeout):
    """one poller thread per node (every 0.5 s), so a slow answer from one node does not delay
    the others' measurement; returns (time the last node got there or None, how many did,
    per-node times)"""
    t0 = time.time(); when = {}; lock = threading.Lock()
    def poll(d):
        while time.time() - t0 < timeout:
            st = states(d)
            if st is not None:
                now = time.time()
                with lock:
                    for i, s in st.items():
                        if s == "alive": first_alive.setdefault(i, {}).setdefault(d, now)
            if st is not None and pred(st):
                with lock: when[d] = now
                return
            time.sleep(0.5)
    ts = [threading.Thread(target=poll, args=(d,)) for d in dirs]
    for t in ts: t.start()
    for t in ts: t.join()
    return (max(when.values()) if len(when) == len(dirs) else None), len(when), list(when.values())

# member id -> node dir -> when that node first listed it alive (for "who was late")
first_alive = {}
def last_to_appear(t0, k=3):
    """the k members the others saw alive last (median over the nodes that saw them)"""
    med = sorted(((pct(list(v.values()), .5) - t0, i) for i, v in first_alive.items()), reverse=True)[:k]
    return [{"member": names.get(i, i[:12]), "median_seconds": round(t, 2)} for t, i in med]

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else None

cmd = sys.argv[1]
if cmd == "converge":
    t0, want, timeout = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]); dirs = sys.argv[5:]
    t, n, each = wait_all(dirs, lambda st: sum(1 for s in st.values() if s == "alive") >= want, timeout)
    each = [x - t0 for x in each]
    print(json.dumps({"seconds": None if t is None else round(t - t0, 2), "converged_nodes": n,
                      "per_node_median": round(pct(each, .5), 2) if each else None,
                      "per_node_p90": round(pct(each, .9), 2) if each else None,
                      "last_to_appear": last_to_appear(t0)}))
elif cmd == "dead":
    t0, victim, timeout = float(sys.argv[2]), sys.argv[3], float(sys.argv[4]); dirs = sys.argv[5:]
    t, n, each = wait_all(dirs, lambda st: st.get(victim) == "dead", timeout)
    each = [x - t0 for x in each]
    print(json.dumps({"seconds": None if t is None else round(t - t0, 2), "nodes_seeing_dead": n,
                      "per_node_median": round(pct(each, .5), 2) if each else None,
                      "per_node_p90": round(pct(each, .9), 2) if each else None}))
elif cmd == "id":
    print(call(sys.argv[2], {"op": "status"})["id"])
elif cmd == "alloc":
    count, threads = int(sys.argv[2]), int(sys.argv[3]); dirs = sys.argv[4:]
    lock = threading.Lock(); got = {}; errs = []; lat = []; nxt = [0]
    def worker():
        while True:
            with lock:
                k = nxt[0]; nxt[0] += 1
            if k >= count: return
            d = dirs[k % len(dirs)]; h = f"scale-{k}"; t = time.time()
            try:
                a = call(d, {"op": "alloc", "handle": h}, 45)["address"]
                with lock: got[h] = a; lat.append(time.time() - t)
            except Exception as e:
                with lock: errs.append(f"{h}@{os.path.basename(d)}: {e}")
    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    secs = time.time() - t0
    addrs = list(got.values())
    print(json.dumps({"requested": count, "acknowledged": len(got), "failed": len(errs),
                      "distinct_addresses": len(set(addrs)), "seconds": round(secs, 2),
                      "per_second": round(len(got) / secs, 1) if secs > 0 else None,
                      "latency_ms": {"p50": round(1000 * pct(lat, .5), 1) if lat else None,
                                     "p90": round(1000 * pct(lat, .9), 1) if lat else None,
                                     "max": round(1000 * max(lat), 1) if lat else None},
                      "first_errors": errs[:5]}))
elif cmd == "proc":
    # proc SECONDS PID... : CPU % of one core over SECONDS and VmRSS (MB) at the end, per PID
    secs = float(sys.argv[2]); pids = sys.argv[3:]; tck = os.sysconf("SC_CLK_TCK")
    def cpu(p):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])     # utime, stime (fields 14 and 15)
        except OSError: return None
    def rss(p):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
        except OSError: return None
    a = {p: cpu(p) for p in pids}; t0 = time.time(); time.sleep(secs); dt = time.time() - t0
    b = {p: cpu(p) for p in pids}
    c = [100.0 * (b[p] - a[p]) / tck / dt for p in pids if a[p] is not None and b[p] is not None]
    r = [x for x in (rss(p) for p in pids) if x is not None]
    summ = lambda v: {"median": round(pct(v, .5), 3), "p90": round(pct(v, .9), 3), "max": round(max(v), 3),
                      "n": len(v)} if v else None
    print(json.dumps({"seconds": round(dt, 1), "cpu_percent_of_core": summ(c), "rss_mb": summ(r),
                      "total_cpu_percent": round(sum(c), 2) if c else None}))
PYEOF
drv() { "$PY" "$WORK/driver.py" "$@"; }
dirs() { local i; for i in "$@"; do printf '%s\n' "$WORK/n$i"; done; }

say "weft: $BIN ($("$BIN" --version 2>/dev/null || echo '?')), $NODES nodes, profile $PROFILE, $(nproc) cores"
T0=$(date +%s.%N)
start_node 1
wait_until 100 0.1 test -S "$WORK/n1/weft.sock" || { warn "node 1 did not start: $(tail -n 3 "$WORK/n1.log")"; exit 1; }
for ((i = 2; i <= NODES; i++)); do start_node "$i"; done
T_STARTED=$(date +%s.%N)
say "started $NODES processes in $(awk -v a="$T0" -v b="$T_STARTED" 'BEGIN { printf "%.1f", b - a }')s"
mapfile -t ALL < <(dirs $(seq 1 "$NODES"))
CONV=$(drv converge "$T0" "$NODES" 120 "${ALL[@]}")
say "converge: $CONV (seconds from the first start until all $NODES nodes list $NODES alive)"
CONV_LAST=$(awk -v a="$T0" -v b="$T_STARTED" -v c="$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"] or -1)' "$CONV")" \
  'BEGIN { printf "%.2f", c - (b - a) }')

sleep 5   # let the joins' push-pulls and first donations settle
IDLE=$(drv proc "$IDLE_SECONDS" "${PIDS[@]:1}")
say "idle: $IDLE"

# Suspicions and deaths of members that were up the whole time (the logs until now: nobody was
# killed yet). Logged at warning level, so 0 at WEFT_LOG_LEVEL=error.
FALSE_SUSPECT=$(cat "$WORK"/n*.log 2>/dev/null | grep -c 'event=member-suspect')
FALSE_DEAD=$(cat "$WORK"/n*.log 2>/dev/null | grep -c 'event=member-dead')
say "before the kill: $FALSE_SUSPECT suspicions and $FALSE_DEAD deaths of members that were up (all nodes' logs)"

VICTIM=$NODES
VICTIM_ID=$(drv id "$WORK/n$VICTIM")
TK=$(date +%s.%N)
crash_pid "${PIDS[VICTIM]}"
mapfile -t REST < <(dirs $(seq 1 $((NODES - 1))))
DEAD=$(drv dead "$TK" "$VICTIM_ID" 120 "${REST[@]}")
say "dead: $DEAD (seconds from SIGKILL of node $VICTIM until all $((NODES - 1)) others list it dead)"

ALLOC=$(drv alloc "$ALLOCS" "$THREADS" "${REST[@]}")
say "alloc: $ALLOC"
AFTER=$(drv proc 1 "${PIDS[@]:1:$((NODES - 1))}")
say "after allocations: $AFTER"
sleep "$SETTLE_SECONDS"
SETTLED=$(drv proc "$IDLE_SECONDS" "${PIDS[@]:1:$((NODES - 1))}")
say "settled idle (${SETTLE_SECONDS}s after the allocations): $SETTLED"

"$PY" - "$JSON" "$NODES" "$PROFILE" "$BIN" "$CONV" "$CONV_LAST" "$IDLE" "$DEAD" "$ALLOC" "$AFTER" "$(nproc)" "$SETTLED" "$FALSE_SUSPECT" "$FALSE_DEAD" <<'PYEOF'
import json, sys, time
out, nodes, profile, binary, conv, conv_last, idle, dead, alloc, after, cores, settled, false_suspect, false_dead = sys.argv[1:]
conv, idle, dead, alloc, after, settled = map(json.loads, (conv, idle, dead, alloc, after, settled))
r = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nodes": int(nodes), "profile": profile,
     "binary": binary, "cores": int(cores),
     "converge_seconds_from_first_start": conv["seconds"], "converge_seconds_after_last_start": float(conv_last),
     "converged_nodes": conv["converged_nodes"],
     "converge_per_node_median": conv.get("per_node_median"), "converge_per_node_p90": conv.get("per_node_p90"),
     "converge_last_to_appear": conv.get("last_to_appear"),
     "false_suspicions_before_kill": int(false_suspect), "false_deaths_before_kill": int(false_dead),
     "dead_per_node_median": dead.get("per_node_median"), "dead_per_node_p90": dead.get("per_node_p90"),
     "idle": idle, "kill_to_all_dead_seconds": dead["seconds"], "nodes_seeing_dead": dead["nodes_seeing_dead"],
     "allocations": alloc, "after_allocations": after, "settled_idle": settled,
     "aims": {"converge_seconds": 10, "idle_cpu_percent_of_core": 0.5, "rss_mb": 40}}
a = r["aims"]
r["meets"] = {
    "converge": conv["seconds"] is not None and conv["seconds"] <= a["converge_seconds"],
    "idle_cpu_median": bool(idle["cpu_percent_of_core"]) and idle["cpu_percent_of_core"]["median"] <= a["idle_cpu_percent_of_core"],
    "settled_idle_cpu_median": bool(settled["cpu_percent_of_core"]) and settled["cpu_percent_of_core"]["median"] <= a["idle_cpu_percent_of_core"],
    "rss_median": bool(after["rss_mb"]) and after["rss_mb"]["median"] <= a["rss_mb"],
    "allocations_distinct": alloc["acknowledged"] == alloc["requested"] == alloc["distinct_addresses"],
}
json.dump(r, open(out, "w"), indent=2); open(out, "a").write("\n")
c, m = idle["cpu_percent_of_core"] or {}, (after["rss_mb"] or {})
late = ", ".join("%s %s s" % (x["member"], x["median_seconds"]) for x in conv.get("last_to_appear") or [])
print(f"converge      {conv['seconds']} s from the first start ({r['converge_seconds_after_last_start']} s after the last), {conv['converged_nodes']}/{nodes} nodes; per node median {conv.get('per_node_median')} s, p90 {conv.get('per_node_p90')} s; seen last: {late}")
print(f"false alarms  {r['false_suspicions_before_kill']} suspicions, {r['false_deaths_before_kill']} deaths of members that were up (before the kill)")
print(f"idle CPU      median {c.get('median')} %, p90 {c.get('p90')} %, max {c.get('max')} % of a core per node (sum {idle['total_cpu_percent']} %)")
sc = settled["cpu_percent_of_core"] or {}
print(f"settled idle  median {sc.get('median')} %, p90 {sc.get('p90')} %, max {sc.get('max')} % of a core per node (sum {settled['total_cpu_percent']} %), RSS median {(settled['rss_mb'] or {}).get('median')} MB")
print(f"RSS           idle median {(idle['rss_mb'] or {}).get('median')} MB; after allocations median {m.get('median')} MB, p90 {m.get('p90')} MB, max {m.get('max')} MB")
print(f"kill -> dead  {dead['seconds']} s until {dead['nodes_seeing_dead']}/{int(nodes) - 1} nodes list it dead; per node median {dead.get('per_node_median')} s, p90 {dead.get('per_node_p90')} s")
print(f"allocations   {alloc['acknowledged']}/{alloc['requested']} acknowledged, {alloc['distinct_addresses']} distinct, {alloc['failed']} failed, "
      f"{alloc['per_second']}/s, latency p50 {alloc['latency_ms']['p50']} ms p90 {alloc['latency_ms']['p90']} ms")
print("meets aims    " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in r["meets"].items()))
print(f"written to {out}")
PYEOF
