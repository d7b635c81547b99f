#!/bin/bash
# docker-run.sh: how long `docker run` takes on the Weft network (weft docker-plugin) compared with
# Docker's default bridge network and with no network, measured in the same run, interleaved, on
# one test-made host namespace.
#
#   netns weft-dk-bench-<pid>: veth wdb0 198.51.100.1/24 (peer wdb1 in the same netns), weft node
#   with TUN weft0, `weft docker-plugin`, and a dockerd 20.10 (tests/e2e/lib/dockerd.sh, own
#   mount/PID namespace, DOCKERD_BRIDGE=1: its docker0 bridge and iptables NAT rules exist only
#   inside the namespace). Networks: weft (--driver weft --ipam-driver weft), bridge (Docker's
#   default: docker0, veth, iptables), none (Docker's floor).
#
# Measures `docker run --rm --network NET IMG true` RUNS times per network (median, p90, min,
# max) and the plugin's own time per call from its log. Everything is removed in an EXIT trap.
# Needs root, docker.io, busybox-static, jq, iptables. env: WEFT_BIN (default .build/release/weft), RUNS (30).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/e2e/lib/dockerd.sh"
WEFT_BIN=${WEFT_BIN:-$top/.build/release/weft}
RUNS=${RUNS:-30}
IMG=weft/busybox

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in dockerd "$DOCKER_CLI" jq nsenter unshare ip busybox timeout iptables; do command -v $c >/dev/null || { echo "SKIP: missing $c"; exit 0; }; done
[ -x "$WEFT_BIN" ] || { echo "SKIP: $WEFT_BIN missing"; exit 0; }

W=$(mktemp -d /tmp/weft-dk-bench.XXXXXX); chmod 0755 "$W"
H=weft-dk-bench-$$
node_pid=""; plugin_pid=""; DOCKERD_PID=""
stop_pid() { local p=$1; [ -n "$p" ] || return 0; kill "$p" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
cleanup() {
  local rc=$?
  [ -n "$DOCKERD_PID" ] && dk "$W/dockerd" rm -f $(dk "$W/dockerd" ps -aq 2>/dev/null) >/dev/null 2>&1
  dockerd_stop "$DOCKERD_PID"; stop_pid "$plugin_pid"; stop_pid "$node_pid"
  ip netns del "$H" 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s%N; }

mkdir -p "$W/node"
ip netns add "$H" || { echo "cannot create netns $H"; exit 1; }
ip -n "$H" link set lo up
ip -n "$H" link add wdb0 type veth peer name wdb1
ip -n "$H" addr add 198.51.100.1/24 dev wdb0
ip -n "$H" link set wdb1 up; ip -n "$H" link set wdb0 up
nsenter --net=/run/netns/$H "$WEFT_BIN" start --data-dir "$W/node" --listen 198.51.100.1:7946 --name bench --profile fast >"$W/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 150); do
  [ -n "$(timeout 5 "$WEFT_BIN" status --data-dir "$W/node" --json 2>/dev/null | jq -r '.overlayAddress // empty')" ] && break; sleep 0.1
done
ip -n "$H" link show weft0 >/dev/null 2>&1 || { echo "node did not come up with weft0: $(tail -3 "$W/node.log")"; exit 1; }
nsenter --net=/run/netns/$H "$WEFT_BIN" docker-plugin --data-dir "$W/node" --socket "$W/plugin.sock" \
  --docker-host "$W/dockerd/docker.sock" --log-file "$W/plugin.log" >"$W/plugin.out" 2>&1 &
plugin_pid=$!
DOCKERD_BRIDGE=1 dockerd_start "$H" "$W/dockerd" "$W/plugin.sock" || { echo "dockerd did not start: $(tail -5 "$W/dockerd/dockerd.log")"; exit 1; }
make_busybox_tar "$W/rootfs.tar"
dk "$W/dockerd" import --change 'CMD ["/bin/sh"]' "$W/rootfs.tar" $IMG >/dev/null || exit 1
dk "$W/dockerd" network create --driver weft --ipam-driver weft weft >/dev/null || { echo "network create failed"; exit 1; }

stats() { sort -n | awk '{a[NR]=$1} END {if (!NR) {print "- - - -"; exit}
  m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; p = int(0.9 * NR + 0.999); if (p < 1) p = 1
  printf "%.1f %.1f %.1f %.1f\n", m, a[p], a[1], a[NR]}'; }
for n in weft bridge none; do dk "$W/dockerd" run --rm --network $n $IMG true >/dev/null 2>&1 || { echo "warm-up on $n failed:"; dk "$W/dockerd" run --rm --network $n $IMG true; exit 1; }; done
: >"$W/plugin.log"
declare -A T
fails=0
for i in $(seq "$RUNS"); do
  for n in weft bridge none; do
    t=$(now); dk "$W/dockerd" run --rm --network $n $IMG true >/dev/null 2>&1 || { echo "run $i on $n failed" >&2; fails=$((fails + 1)); }
    T[$n]+="$(( ($(now) - t) / 100000 ))e-1 "
  done
done
sleep 0.5
left=$(timeout 5 "$WEFT_BIN" ipam --data-dir "$W/node" --json | jq '[.allocations[] | select(.handle | startswith("docker:"))] | length')
veths=$(ip -n "$H" -o link show | grep -c ': wf[dp]')
st() { tr ' ' '\n' | grep -v '^$' | awk '{printf "%.1f\n", $1}' | stats; }
read -r rw pw _ _ < <(st <<<"${T[weft]}"); read -r rb pb _ _ < <(st <<<"${T[bridge]}"); read -r rn _ _ _ < <(st <<<"${T[none]}")
row() { printf '%-52s %9s %9s %9s %9s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
call_ms() { grep "POST /$1 200" "$W/plugin.log" | grep -o ' [0-9]* ms' | awk '{print $1}' | stats; }
echo
echo "Docker $(dk "$W/dockerd" version --format '{{.Server.Version}}'), vfs, runc; $RUNS runs each, interleaved; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
row "what (ms)" median p90 min max
row "docker run --rm --network weft … true" $(st <<<"${T[weft]}")
row "docker run --rm --network bridge … true" $(st <<<"${T[bridge]}")
row "docker run --rm --network none … true" $(st <<<"${T[none]}")
row "  ratio weft / bridge" "$(ratio $rw $rb)" "$(ratio $pw $pb)" "" ""
row "  network share, weft (run − none)" "$(awk -v a=$rw -v b=$rn 'BEGIN{printf "%.1f", a-b}')" "" "" ""
row "  network share, bridge (run − none)" "$(awk -v a=$rb -v b=$rn 'BEGIN{printf "%.1f", a-b}')" "" "" ""
for c in IpamDriver.RequestAddress NetworkDriver.CreateEndpoint NetworkDriver.Join NetworkDriver.DeleteEndpoint IpamDriver.ReleaseAddress; do
  row "  plugin $c (in-process)" $(call_ms $c)
done
[ "$left" = 0 ] || timeout 5 "$WEFT_BIN" ipam --data-dir "$W/node" --json | jq -c '[.allocations[] | select(.handle | startswith("docker:"))]'
echo "failed runs: $fails; plugin errors: $(grep -c ' error: ' "$W/plugin.log"); docker: allocations left: $left; wfd/wfp veths left: $veths"
