#!/usr/bin/env bash
# tests/e2e/ipam-partition.sh — IPAM across partitions: five real nodes on five simulated hosts,
# one cut off (both directions, then one direction only) for far longer than --reclaim-after,
# allocations on both sides, heal, then the oracle on every node's `weft ipam --json`.
#
#   weft-e2e-<tag>-h1 .. h5: eth0 192.168.77.1-5/24 (test range, inside the namespaces only),
#   veths into bridge br0 in weft-e2e-<tag>-sw; `weft start --no-tun --profile fast
#   --reclaim-after 10s` in each (no TUN, no overlay address is ever configured).
#   The partition is iptables DROP rules inside the cut-off host's namespace only.
#
# Phases and checks (each counted):
#   cluster       every node sees 5 alive members, each has its overlay address
#   before        PRE allocations on every node, all acknowledged
#   sym cut       h1 isolated (INPUT and OUTPUT dropped): the majority sees it dead and, after
#                 reclaim-after, no longer lists h1 as owner of any range (automatic reclaim)
#   sym minority  new allocations on h1 fail with "partitioned:" (IPAM v2 rule 3); h1 still
#                 answers an existing handle with its address
#   sym majority  MAJ allocations on each of h2..h5 succeed (the heir hands out h1's old space)
#   sym heal      rules removed: 5 alive everywhere, all rings equal (bounded wait)
#   sym oracle    no address held by two handles over all nodes (allocations + conflicts),
#                 every acknowledged allocation still held by its node, every range has one
#                 live owner, all rings equal
#   asym-*        the same with h2 cut off in one direction only (its INPUT dropped: what it
#                 sends arrives, it hears nothing): h2 must refuse new addresses, the majority
#                 allocates, heal, oracle again
#
# Usage: tests/e2e/ipam-partition.sh [--no-asym] [--clean] [-h]
# Environment: WEFT_BIN, KEEP=1, RECLAIM_AFTER (10s), CUT_SECONDS (35: how long each cut lasts
#   at least), PRE (5), MAJ (40), MINOR (5), SUBNET (10.42.0.0/23: small, so the majority soon
#   hands out the space it took over, yet large enough for both rounds of MAJ: 5 + 2 x 4 x 40 +
#   reserved addresses), E2E_TIMEOUT (watchdog, 600 s), WEFT_LOG_LEVEL (info).
# Needs root; otherwise prints "SKIP: ..." and exits 0. Ends with "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"
ORACLE=$HERE/lib/ipam-oracle.py
PROG=ipam-partition.sh

ASYM=1
while (($#)); do
  case $1 in
    --no-asym) ASYM=0; shift ;;
    --clean) require_root "$PROG"; clean_stale weft-e2e-; rm -rf /tmp/weft-e2e.* 2>/dev/null; exit 0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "$PROG: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: $PROG needs root (it creates network namespaces and iptables rules inside them)"
  exit 0
fi
WORK=$(mktemp -d /tmp/weft-e2e.XXXXXX)
chmod 700 "$WORK"
LAB_PREFIX="weft-e2e-$$-"
trap lab_cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated"; exit 143' TERM
require_tools ip:iproute2 nsenter:util-linux python3:python3 timeout:coreutils iptables:iptables
PY=$(command -v python3)
WEFT_BIN=$(find_weft_bin "$ROOT")
if [[ ! -x $WEFT_BIN ]]; then
  echo "$PROG: no weft binary at $WEFT_BIN: build it (swift build --product weft) or set WEFT_BIN" >&2
  exit 2
fi
start_watchdog "${E2E_TIMEOUT:-600}"
say "weft: $WEFT_BIN"

N=5
RECLAIM_AFTER=${RECLAIM_AFTER:-10s}
CUT_SECONDS=${CUT_SECONDS:-35}
PRE=${PRE:-5}
MAJ=${MAJ:-40}
MINOR=${MINOR:-5}
SUBNET=${SUBNET:-10.42.0.0/23}
LOG_LEVEL=${WEFT_LOG_LEVEL:-info}
PORT=7946
SW=${LAB_PREFIX}sw
declare -a NS UNDER NODE_PID ID
for ((i = 1; i <= N; i++)); do NS[i]=${LAB_PREFIX}h$i; UNDER[i]=192.168.77.$i; done

weft() { timeout -k 1 15 "$WEFT_BIN" "$@"; }
jq_py() { "$PY" -c "import json,sys; d=json.load(sys.stdin); $1" 2>/dev/null; }
alive_count() { weft members --data-dir "$WORK/n$1" --json 2>/dev/null | jq_py 'print(sum(1 for m in d if m["state"] == "alive"))'; }
state_of() { # state_of I ID : how node I sees member ID
  weft members --data-dir "$WORK/n$1" --json 2>/dev/null | jq_py "print(next((m['state'] for m in d if m['id'] == '$2'), 'unknown'))"
}
node_id() { weft status --data-dir "$WORK/n$1" --json 2>/dev/null | jq_py 'print(d["id"])'; }
has_overlay() { weft status --data-dir "$WORK/n$1" --json 2>/dev/null | jq_py 'sys.exit(0 if d.get("overlayAddress") else 1)'; }
owns_any() { # owns_any I ID : node I's ring lists ID as the owner of some range
  weft ipam --data-dir "$WORK/n$1" --json 2>/dev/null | jq_py "sys.exit(0 if any(r['owner'] == '$2' for r in d['ranges']) else 1)"
}

# ------------------------------------------------------------------------------------ partitions
CUT_RULES=()   # "I CHAIN ARGS..." for every iptables rule added, until it is deleted
cut_host() { # cut_host I both|in : DROP traffic from/to the test range inside host I's namespace
  local i=$1 mode=$2 rule
  local -a rules=("INPUT -s 192.168.77.0/24 -j DROP")
  [[ $mode == both ]] && rules+=("OUTPUT -d 192.168.77.0/24 -j DROP")
  for rule in "${rules[@]}"; do
    # shellcheck disable=SC2086
    ip netns exec "${NS[i]}" iptables -w 5 -A $rule || return 1
    CUT_RULES+=("$i $rule")
  done
}
heal_host() { # heal_host I : delete exactly the rules cut_host added in host I
  local i=$1 entry keep=() words
  for entry in "${CUT_RULES[@]}"; do
    read -ra words <<<"$entry"
    if [[ ${words[0]} == "$i" ]]; then ip netns exec "${NS[i]}" iptables -w 5 -D "${words[@]:1}"
    else keep+=("$entry"); fi
  done
  CUT_RULES=("${keep[@]}")
}
heal_all() { local entry; for entry in "${CUT_RULES[@]}"; do heal_host "${entry%% *}"; done; }

show_logs_on_failure() {
  heal_all 2>/dev/null   # the rules live in our namespaces (deleted next), but remove them explicitly
  ((CHECKS_FAILED)) || return 0
  [[ -z ${LOGS_SHOWN:-} ]] || return 0
  LOGS_SHOWN=1
  local i
  for ((i = 1; i <= N; i++)); do
    [[ -f $WORK/n$i.log ]] || continue
    warn "---- last lines of h$i's log ($WORK/n$i.log)"
    grep -vE 'member (alive|suspect|dead)' "$WORK/n$i.log" | tail -n 8 >&2
  done
}
LAB_CLEANUP_HOOK=show_logs_on_failure
finish() { show_logs_on_failure; say "total $(lab_elapsed)s"; summary_line; }

# ------------------------------------------------------------------------------------ nodes
start_node() {
  local i=$1 args
  args=(start --no-tun --data-dir "$WORK/n$i" --listen "${UNDER[i]}:$PORT" --name "part-h$i"
        --profile fast --reclaim-after "$RECLAIM_AFTER" --log-level "$LOG_LEVEL")
  if ((i > 1)); then args+=(--seed "${UNDER[1]}:$PORT" --cluster-key-file "$WORK/n1/cluster.key")
  else args+=(--subnet "$SUBNET"); fi
  # shellcheck disable=SC2206
  args+=(${WEFT_START_ARGS:-})
  echo "== $(date -u +%FT%TZ) weft ${args[*]}" >>"$WORK/n$i.log"
  bg_ns "${NS[i]}" "$WORK/n$i.log" "$WEFT_BIN" "${args[@]}"
  NODE_PID[i]=$LAST_PID
}
wait_ready() {
  local i=$1 k
  for ((k = 0; k < 150; k++)); do
    kill -0 "${NODE_PID[i]}" 2>/dev/null || { warn "h$i exited: $(tail -n 2 "$WORK/n$i.log" | tr '\n' ' ')"; return 1; }
    [[ -n $(node_id "$i") ]] && return 0
    sleep 0.2
  done
  return 1
}
all_see_alive() { local i; for ((i = 1; i <= N; i++)); do [[ $(alive_count "$i") == "$1" ]] || return 1; done; }
all_have_overlay() { local i; for ((i = 1; i <= N; i++)); do has_overlay "$i" || return 1; done; }

# alloc_many I PREFIX COUNT : COUNT allocations on node I; acknowledged ones go to $WORK/acked,
# every outcome to $WORK/outcomes.PREFIX (ok|err, handle, address or message). Prints "ok err".
alloc_many() {
  local i=$1 prefix=$2 count=$3 k h out rc addr ok=0 err=0
  for ((k = 0; k < count; k++)); do
    h="$prefix-$k"
    out=$(timeout -k 1 45 "$WEFT_BIN" alloc --data-dir "$WORK/n$i" --json "$h" 2>&1); rc=$?
    addr=$(sed -n 's/.*"address" : "\([0-9.]*\)".*/\1/p' <<<"$out")
    if ((rc == 0)) && [[ -n $addr ]]; then
      echo "n$i $h $addr" >>"$WORK/acked"; echo "ok $h $addr" >>"$WORK/outcomes.$prefix"; ok=$((ok + 1))
    else
      echo "err $h rc=$rc $(tr '\n' ' ' <<<"$out")" >>"$WORK/outcomes.$prefix"; err=$((err + 1))
    fi
  done
  echo "$ok $err"
}

# oracle LABEL : snapshot every node's `weft ipam --json`, run the oracle, count its verdicts
oracle() {
  local label=$1 i live verdict rest
  rm -rf "$WORK/ipam"; mkdir -p "$WORK/ipam"
  for ((i = 1; i <= N; i++)); do weft ipam --data-dir "$WORK/n$i" --json >"$WORK/ipam/n$i.json" 2>/dev/null; done
  live=$(IFS=,; echo "${ID[*]:1}")
  "$PY" "$ORACLE" --dir "$WORK/ipam" --acked "$WORK/acked" --missing "$WORK/missing.$label" --rings --live "$live" \
    >"$WORK/oracle.$label"
  while read -r verdict rest; do
    if [[ $verdict == ok ]]; then pass "$label oracle: $rest"; else fail "$label oracle: $rest"; fi
  done <"$WORK/oracle.$label"
}
rings_equal() { # every node reports the same ring right now
  local i
  for ((i = 1; i <= N; i++)); do weft ipam --data-dir "$WORK/n$i" --json 2>/dev/null |
    jq_py 'print([(r["start"], r["owner"], r["version"]) for r in d["ranges"]])'; done | sort -u | wc -l | grep -qx 1
}

# partition_round LABEL VICTIM MODE : cut VICTIM (both|in), wait, allocate on both sides, heal, oracle
partition_round() {
  local label=$1 v=$2 mode=$3 i t0 waited ok err res others=() why line
  for ((i = 1; i <= N; i++)); do ((i == v)) || others+=("$i"); done
  say "$label: cutting h$v off ($mode) for at least ${CUT_SECONDS}s (reclaim after $RECLAIM_AFTER)"
  cut_host "$v" "$mode" || { fail "$label cut: iptables in ${NS[v]} failed"; return; }
  t0=$(date +%s)
  majority_sees_dead() { local j; for j in "${others[@]}"; do [[ $(state_of "$j" "${ID[v]}") == dead ]] || return 1; done; }
  majority_reclaimed() { local j; for j in "${others[@]}"; do owns_any "$j" "${ID[v]}" && return 1; done; return 0; }
  if wait_until 100 0.3 majority_sees_dead; then pass "$label cut: the ${#others[@]} other nodes see h$v dead after $(($(date +%s) - t0))s"
  else fail "$label cut: the majority does not see h$v dead: $(for j in "${others[@]}"; do printf 'h%s:%s ' "$j" "$(state_of "$j" "${ID[v]}")"; done)"; fi
  if wait_until 200 0.3 majority_reclaimed; then pass "$label cut: h$v's ranges reclaimed by the majority after $(($(date +%s) - t0))s"
  else fail "$label cut: h$v still owns ranges in the majority's ring after $(($(date +%s) - t0))s"; fi
  waited=$(($(date +%s) - t0))
  ((waited < CUT_SECONDS)) && sleep $((CUT_SECONDS - waited))

  # the minority: an existing handle still answers; new ones are refused with "partitioned:"
  line=$(weft ipam --data-dir "$WORK/n$v" --json 2>/dev/null | "$PY" -c '
import json, sys
held = {e["handle"] for e in json.load(sys.stdin)["allocations"]}
for l in open(sys.argv[1]):
    n, h, a = l.split()
    if n == sys.argv[2] and h in held: print(l.strip()); break' "$WORK/acked" "n$v" 2>/dev/null)
  if [[ -n $line ]]; then
    read -r _ h addr <<<"$line"
    res=$(weft alloc --data-dir "$WORK/n$v" --json "$h" 2>&1 | sed -n 's/.*"address" : "\([0-9.]*\)".*/\1/p')
    if [[ $res == "$addr" ]]; then pass "$label minority: h$v still answers existing handle $h with $addr"
    else fail "$label minority: existing handle $h on h$v: got '${res:-error}', acknowledged $addr"; fi
  else
    fail "$label minority: none of h$v's acknowledged allocations is still an allocation on h$v (moved to conflicts while it was in the majority?)"
  fi
  read -r ok err <<<"$(alloc_many "$v" "$label-min-h$v" "$MINOR")"
  why=$(grep -m1 '^err ' "$WORK/outcomes.$label-min-h$v" | cut -c1-200)
  if ((ok == 0)) && (($(grep -c 'partitioned:' "$WORK/outcomes.$label-min-h$v") == MINOR)); then
    pass "$label minority: all $MINOR new allocations on h$v refused: ${why#err }"
  else
    fail "$label minority: h$v handed out $ok of $MINOR new addresses while cut off (want 0, each refused with 'partitioned:')${why:+; first refusal: $why}"
  fi

  # the majority allocates (the heir hands out what it took over)
  local mok=0 merr=0
  for i in "${others[@]}"; do
    read -r ok err <<<"$(alloc_many "$i" "$label-maj-h$i" "$MAJ")"
    mok=$((mok + ok)); merr=$((merr + err))
  done
  if ((merr == 0)); then pass "$label majority: all $mok allocations on ${#others[@]} nodes acknowledged"
  else fail "$label majority: $merr of $((mok + merr)) failed: $(cat "$WORK"/outcomes."$label"-maj-* | grep -m1 '^err ' | cut -c1-200)"; fi

  # heal and converge
  heal_host "$v"
  t0=$(date +%s)
  if wait_until 200 0.3 all_see_alive "$N"; then pass "$label heal: $N alive everywhere after $(($(date +%s) - t0))s"
  else fail "$label heal: alive counts $(for ((i = 1; i <= N; i++)); do printf 'h%d=%s ' "$i" "$(alive_count "$i")"; done)"; fi
  wait_until 200 0.3 rings_equal
  sleep 2   # a few more gossip rounds for conflicts and free hints
  oracle "$label"
}

# ------------------------------------------------------------------------------------ setup
switch_add "$SW" || { fail "setup: switch"; finish; exit 1; }
for ((i = 1; i <= N; i++)); do
  host_add "${NS[i]}" "$SW" "p$i" "${UNDER[i]}/24" || { fail "setup: host h$i"; finish; exit 1; }
done
start_node 1
wait_ready 1 || { fail "setup: h1 did not start"; finish; exit 1; }
for ((i = 2; i <= N; i++)); do start_node "$i"; done
for ((i = 2; i <= N; i++)); do wait_ready "$i" || fail "setup: h$i did not start"; done
for ((i = 1; i <= N; i++)); do ID[i]=$(node_id "$i"); done
if wait_until 150 0.3 all_see_alive "$N" && wait_until 100 0.3 all_have_overlay; then
  pass "cluster: every node sees $N alive members and has its overlay address"
else
  fail "cluster: alive counts $(for ((i = 1; i <= N; i++)); do printf 'h%d=%s ' "$i" "$(alive_count "$i")"; done)"
fi
: >"$WORK/acked"
pok=0 perr=0
for ((i = 1; i <= N; i++)); do
  read -r ok err <<<"$(alloc_many "$i" "pre-h$i" "$PRE")"
  pok=$((pok + ok)); perr=$((perr + err))
done
if ((perr == 0)); then pass "before: $pok allocations on $N nodes acknowledged"
else fail "before: $perr of $((pok + perr)) failed: $(cat "$WORK"/outcomes.pre-* | grep -m1 '^err ' | cut -c1-200)"; fi
sleep 2   # holdings/free hints gossiped

partition_round sym 1 both
((ASYM)) && partition_round asym 2 in

finish
((CHECKS_FAILED == 0))
