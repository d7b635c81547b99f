# shellcheck shell=bash
# tests/e2e/lib/netns.sh — shared helpers for Weft's namespace tests (tests/e2e/*.sh) and the
# benchmark lab (bench/lab.sh). Source it; it does nothing by itself.
#
# Network-safety rules these helpers enforce (see docs/testing.md):
#   - every namespace is created here (`ns_add`), named with the caller's prefix (weft-e2e- or
#     weft-lab-), and deleted by `lab_cleanup`;
#   - links are created *between* lab namespaces (veth pairs whose both ends live in lab
#     namespaces, a bridge inside a lab namespace): nothing is created in, or connected to,
#     the machine's own namespace, and no lab namespace gets a default route;
#   - every background process is started by `bg_ns`/`bg_host`, recorded by PID, and stopped by
#     PID (TERM, bounded wait, KILL) — never by name;
#   - every wait is a bounded loop (`wait_until`).
#
# The caller sets LAB_PREFIX (e.g. "weft-e2e-1234-") and WORK (a private temp dir), and installs
#   trap lab_cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

# ------------------------------------------------------------------------------------ output
LAB_T0=$(date +%s.%N)
lab_elapsed() { awk -v a="$LAB_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%6ss] %s\n' "$(lab_elapsed)" "$*"; }
warn() { printf '[%6ss] %s\n' "$(lab_elapsed)" "$*" >&2; }

# ------------------------------------------------------------------------------------ checks
CHECKS_PASSED=0
CHECKS_FAILED=0
pass() { CHECKS_PASSED=$((CHECKS_PASSED + 1)); say "ok   - $*"; }
fail() { CHECKS_FAILED=$((CHECKS_FAILED + 1)); say "FAIL - $*"; }
# check NAME CMD... : run CMD (bounded by the caller), pass if it exits 0
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
summary_line() { echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed"; }

# ------------------------------------------------------------------------------------ preconditions
# require_root PROG : exit 2 with a message when not root
require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "$1: must run as root (it creates network namespaces, veth pairs and TUN devices)" >&2
    exit 2
  fi
}

# require_tools TOOL:PACKAGE ... : every TOOL must be on PATH. Missing ones are apt-get installed
# (unless WEFT_NO_INSTALL=1); if that is impossible, print "SKIP: reason" and exit 0.
require_tools() {
  local spec tool pkg missing=() pkgs=()
  for spec in "$@"; do
    tool=${spec%%:*}; pkg=${spec#*:}
    command -v "$tool" >/dev/null 2>&1 || { missing+=("$tool"); pkgs+=("$pkg"); }
  done
  ((${#missing[@]})) || return 0
  if [[ ${WEFT_NO_INSTALL:-0} != 1 ]] && command -v apt-get >/dev/null 2>&1; then
    warn "installing missing tools: ${missing[*]} (Debian packages: ${pkgs[*]})"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q -o DPkg::Lock::Timeout=120 \
      --no-install-recommends "${pkgs[@]}" >"${WORK:-/tmp}/apt-install.log" 2>&1 || true
    missing=(); local still=()
    for spec in "$@"; do
      tool=${spec%%:*}; pkg=${spec#*:}
      command -v "$tool" >/dev/null 2>&1 || { missing+=("$tool"); still+=("$pkg"); }
    done
    pkgs=("${still[@]}")
    ((${#missing[@]})) || return 0
  fi
  echo "SKIP: missing tools: ${missing[*]} (install the Debian packages: ${pkgs[*]})"
  exit 0
}

# find_weft_bin REPO_ROOT : WEFT_BIN, else REPO/.build/release/weft, else REPO/.build/debug/weft
find_weft_bin() {
  local root=$1
  if [[ -n ${WEFT_BIN:-} ]]; then echo "$WEFT_BIN"; return; fi
  if [[ -x $root/.build/release/weft ]]; then echo "$root/.build/release/weft"; return; fi
  echo "$root/.build/debug/weft"
}

# ------------------------------------------------------------------------------------ waiting
# wait_until TRIES INTERVAL CMD... : run CMD up to TRIES times, INTERVAL seconds apart
wait_until() {
  local tries=$1 interval=$2 i; shift 2
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep "$interval"
  done
  return 1
}

# ------------------------------------------------------------------------------------ processes
declare -A LAB_PIDS=()   # PID -> label, for every background process started and not yet stopped
LAST_PID=""

# bg_ns NS LOGFILE CMD... : run CMD in the background inside lab namespace NS (nsenter execs CMD,
# so the recorded PID is CMD's own). Sets LAST_PID.
bg_ns() {
  local ns=$1 log=$2; shift 2
  nsenter --net="/run/netns/$ns" -- "$@" >>"$log" 2>&1 </dev/null &
  LAST_PID=$!
  LAB_PIDS[$LAST_PID]="$ns: $1"
}

# stop_pid PID [SIGNAL] : stop one of our own processes: SIGNAL (default TERM), up to 3 s, KILL
stop_pid() {
  local p=$1 sig=${2:-TERM} i
  [[ -n $p && -n ${LAB_PIDS[$p]:-} ]] || return 0
  unset "LAB_PIDS[$p]"
  if kill -0 "$p" 2>/dev/null; then
    kill -"$sig" "$p" 2>/dev/null
    for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null
  return 0
}

# crash_pid PID : SIGKILL one of our processes and reap it (a crash, not a stop)
crash_pid() {
  local p=$1
  [[ -n $p && -n ${LAB_PIDS[$p]:-} ]] || return 1
  unset "LAB_PIDS[$p]"
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 0
}

# run_ns NS TIMEOUT CMD... : run CMD in the foreground inside NS, killed after TIMEOUT seconds
run_ns() {
  local ns=$1 t=$2; shift 2
  timeout -k 2 "$t" nsenter --net="/run/netns/$ns" -- "$@"
}

# ------------------------------------------------------------------------------------ namespaces
LAB_NAMESPACES=()

ns_exists() { [[ -e /run/netns/$1 ]]; }

# ns_add NAME : create a namespace (must carry LAB_PREFIX), lo up, no IPv6 chatter
ns_add() {
  local ns=$1
  [[ $ns == "$LAB_PREFIX"* ]] || { warn "refusing to create namespace $ns outside prefix $LAB_PREFIX"; return 1; }
  if ns_exists "$ns"; then warn "namespace $ns already exists (stale run? see --clean)"; return 1; fi
  ip netns add "$ns" || return 1
  LAB_NAMESPACES+=("$ns")
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
  ip -n "$ns" link set lo up
}

# switch_add NS : namespace NS holding bridge br0 (the underlay switch)
switch_add() {
  local ns=$1
  ns_add "$ns" || return 1
  ip -n "$ns" link add br0 type bridge stp_state 0 forward_delay 0 || return 1
  ip -n "$ns" link set br0 up
}

# host_add NS SWITCH_NS PORT ADDR/PLEN : namespace NS whose eth0 is a veth into SWITCH_NS's br0
# (the bridge-side end is named PORT). The veth pair is created inside SWITCH_NS and one end is
# moved straight into NS: no interface ever exists in the machine's own namespace.
host_add() {
  local ns=$1 sw=$2 port=$3 addr=$4
  ns_add "$ns" || return 1
  ip -n "$sw" link add "$port" type veth peer name eth0 netns "$ns" || return 1
  ip -n "$sw" link set "$port" master br0 up || return 1
  ip -n "$ns" addr add "$addr" dev eth0 || return 1
  ip -n "$ns" link set eth0 up
}

# link_mtu NS DEV : the MTU of DEV in NS (empty if DEV does not exist)
link_mtu() { ip -n "$1" -o link show "$2" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }

# clean_stale PREFIX : remove namespaces left behind by an earlier run (e.g. KEEP=1) whose names
# start with PREFIX: stop the processes inside them by PID, then delete them.
clean_stale() {
  local prefix=$1 ns p n=0
  [[ $prefix == weft-e2e-* || $prefix == weft-lab-* ]] || { warn "clean_stale: bad prefix $prefix"; return 1; }
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$prefix" || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null && n=$((n + 1))
  done
  echo "removed $n namespace(s) matching $prefix*"
}

# lab_cleanup : the EXIT trap. Stops every recorded process, then any process still living in
# one of our namespaces, then deletes the namespaces (which removes their veths and bridges),
# then the work dir. With KEEP=1 it leaves everything and says how to remove it.
LAB_CLEANUP_HOOK=""   # optional function name, run first (e.g. to print logs on failure)
lab_cleanup() {
  local rc=$? p ns i
  trap - EXIT INT TERM
  [[ -n $LAB_CLEANUP_HOOK ]] && "$LAB_CLEANUP_HOOK"
  [[ -n ${LAB_WATCHDOG_PID:-} ]] && { kill "$LAB_WATCHDOG_PID" 2>/dev/null; wait "$LAB_WATCHDOG_PID" 2>/dev/null; }
  if [[ ${KEEP:-0} == 1 ]]; then
    warn "KEEP=1: leaving namespaces ${LAB_NAMESPACES[*]}, processes ${!LAB_PIDS[*]} and $WORK"
    warn "        remove them with: $0 --clean"
    exit "$rc"
  fi
  for p in "${!LAB_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${!LAB_PIDS[@]}"; do
    for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    unset "LAB_PIDS[$p]"
  done
  for ns in "${LAB_NAMESPACES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns del "$ns" 2>/dev/null
  done
  [[ -n ${WORK:-} && -d $WORK && $WORK == /tmp/weft-* ]] && rm -rf "$WORK"
  exit "$rc"
}

# start_watchdog SECONDS : TERM this script if it is still running after SECONDS (belt and braces:
# every wait is bounded anyway). lab_cleanup stops the watchdog.
start_watchdog() {
  local limit=$1 me=$$
  (
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$limit" & sp=$!
    wait "$sp"
    echo "watchdog: still running after ${limit}s, stopping" >&2
    kill -TERM "$me" 2>/dev/null
  ) &
  LAB_WATCHDOG_PID=$!
}
