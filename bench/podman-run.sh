#!/bin/bash
# podman-run.sh: how long a container start takes on the Weft network compared with podman's own
# bridge network, measured in the same run, on the same test-made host namespace.
#
#   netns weft-pod-bench-<pid>: veth wpb0 198.51.100.1/24 (peer wpb1 in the same netns), weft node with TUN weft0,
#   podman 4.3 (CNI backend) with two networks:
#     weft      {"type": "weft-cni", "dataDir": <node's>, "logFile": …}
#     podbench  podman's bridge network as `podman network create` writes it (bridge + host-local +
#               portmap + firewall + tuning, containernetworking-plugins; iptables rules and the bridge
#               (cni-podman1) live in the namespace). Same plugins and settings as podman's
#               default network "podman"; differs in name, bridge name, subnet (10.89.0.0/16: podman
#               refuses a second 10.88.0.0/16) and host-local's dataDir (moved into the bench folder
#               so nothing is written to /var/lib/cni).
#     none      no network at all (podman's floor), for reference.
#
# Measures, interleaved so that load changes hit every variant alike:
#   1. `podman run --rm --network NET IMG true`, RUNS times per network (median, p90);
#   2. weft-cni ADD and DEL inside podman, from the plugin's own logFile (`ms=`, in-process);
#   3. weft-cni ADD and DEL invoked directly (`nsenter --net=HOST weft-cni`, wall clock incl. exec)
#      on a test-made container namespace, RUNS times;
#   4. the bridge plugin alone (with host-local IPAM and ipMasq iptables rules), invoked the same
#      way on the same container namespace, RUNS times.
# Prints a table with ratios weft / bridge. Everything is removed in an EXIT trap.
#
# Needs root and: podman runc containernetworking-plugins busybox-static catatonit iptables jq
#   iproute2 util-linux coreutils.
# env: WEFT_BIN, WEFT_CNI_BIN (default .build/release/…), RUNS (default 30), SHARED (/work/shared/cni)
set -uo pipefail
. "$(cd "$(dirname "$0")/.." && pwd)/tests/cni/lib.sh"
top=$(cd "$(dirname "$0")/.." && pwd)
WEFT_BIN=${WEFT_BIN:-$top/.build/release/weft}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-$top/.build/release/weft-cni}
SHARED=${SHARED:-/work/shared/cni}
RUNS=${RUNS:-30}
IMG=localhost/ci-busybox:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in podman runc jq nsenter ip busybox timeout iptables; do
  command -v $c >/dev/null || { echo "SKIP: missing $c"; exit 0; }
done
for b in "$WEFT_BIN" "$WEFT_CNI_BIN" "$SHARED/build-image.sh" /usr/lib/cni/bridge; do
  [ -x "$b" ] || { echo "SKIP: $b missing"; exit 0; }
done

W=$(mktemp -d /tmp/weft-pod-bench.XXXXXX); chmod 0755 "$W"
H=weft-pod-bench-$$
C=weft-pod-bench-$$-c
node_pid=""
cleanup() {
  local rc=$?
  if [ -d "$W/root" ]; then pod rm -f -t 0 --all >/dev/null 2>&1; pod rmi -f --all >/dev/null 2>&1; fi
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$node_pid" 2>/dev/null; wait "$node_pid" 2>/dev/null
  fi
  ip netns del "$C" 2>/dev/null; ip netns del "$H" 2>/dev/null
  awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pod() { CONTAINERS_CONF=$W/containers.conf timeout 60 nsenter --net=/run/netns/$H podman --root "$W/root" --runroot "$W/run" --tmpdir "$W/tmp" "$@"; }
now() { date +%s%N; }

mkdir -p "$W"/{node,net.d,bin,root,run,tmp,cache,hostlocal}
cp "$WEFT_CNI_BIN" "$W/bin/weft-cni"
ip netns add "$H" || { echo "cannot create netns $H"; exit 1; }
ip -n "$H" link set lo up
ip -n "$H" link add wpb0 type veth peer name wpb1   # both ends inside the namespace (no dummy module here)
ip -n "$H" addr add 198.51.100.1/24 dev wpb0
ip -n "$H" link set wpb1 up
ip -n "$H" link set wpb0 up
nsenter --net=/run/netns/$H "$WEFT_BIN" start --data-dir "$W/node" --listen 198.51.100.1:7946 --name bench \
  --profile fast >"$W/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 150); do
  [ -n "$(timeout 5 "$WEFT_BIN" status --data-dir "$W/node" --json 2>/dev/null | jq -r '.overlayAddress // empty')" ] && break; sleep 0.1
done
ip -n "$H" link show weft0 >/dev/null 2>&1 || { echo "node did not come up with weft0: $(tail -3 "$W/node.log")"; exit 1; }

write_containers_conf "$W/containers.conf" "$W/net.d" "$W/bin"
cat >"$W/net.d/weft.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "weft",
  "plugins": [ { "type": "weft-cni", "dataDir": "$W/node", "logFile": "$W/cni.log" } ]
}
EOF
# podman's own bridge network, written by podman itself; only host-local's dataDir is moved.
pod network create --subnet 10.89.0.0/16 --gateway 10.89.0.1 podbench >/dev/null \
  || { echo "podman network create failed"; exit 1; }
f=$(grep -l '"podbench"' "$W"/net.d/*.conflist)
jq --arg d "$W/hostlocal" '(.plugins[] | select(.type == "bridge") | .ipam) += {dataDir: $d}' "$f" >"$f.new" && mv "$f.new" "$f"
CONTAINERS_CONF=$W/containers.conf IMG=$IMG PODMAN="timeout 60 nsenter --net=/run/netns/$H podman --root $W/root --runroot $W/run --tmpdir $W/tmp" \
  "$SHARED/build-image.sh" >"$W/build.log" 2>&1 || { cat "$W/build.log"; exit 1; }
nets=$(pod network ls --format '{{.Name}}' | tr '\n' ' ')
case " $nets " in *" weft "*" podbench "*|*" podbench "*" weft "*) ;; *) echo "networks missing: $nets"; exit 1;; esac

# stats: prints "median p90 min max" (ms) of the numbers on stdin (nearest-rank)
stats() { sort -n | awk '{a[NR]=$1} END {if (!NR) {print "- - - -"; exit}
  m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; p = int(0.9 * NR + 0.999); if (p < 1) p = 1
  printf "%.1f %.1f %.1f %.1f\n", m, a[p], a[1], a[NR]}'; }

# warm-up: one run each (page cache, first bridge/iptables setup)
for n in weft podbench none; do pod run --rm --network $n $IMG true >/dev/null 2>&1 || { echo "warm-up run on $n failed"; pod run --rm --network $n $IMG true; exit 1; }; done
: >"$W/cni.log"

# 1. podman run --rm … true, interleaved
declare -A T
for i in $(seq "$RUNS"); do
  for n in weft podbench none; do
    t=$(now); pod run --rm --network $n $IMG true >/dev/null 2>&1 || echo "run $i on $n failed" >&2
    T[$n]+="$(( ($(now) - t) / 100000 ))e-1 "
  done
done
left=$(timeout 5 "$WEFT_BIN" ipam --data-dir "$W/node" --json | jq '[.allocations[] | select(.handle | startswith("cni:"))] | length')
# 2. plugin's own timings under podman
add_log=$(grep 'cmd=ADD .* ok' "$W/cni.log" | grep -o 'ms=[0-9]*' | cut -d= -f2)
del_log=$(grep 'cmd=DEL .* ok' "$W/cni.log" | grep -o 'ms=[0-9]*' | cut -d= -f2)
calls="weft-cni calls under podman: $(grep -o 'cmd=[A-Z]*' "$W/cni.log" | sort | uniq -c | tr -s ' \n' ' ')errors: $(grep -c ' error ' "$W/cni.log")"

# 3. weft-cni alone, invoked directly in the host namespace on a test-made container namespace
ip netns add "$C"
conf_weft=$(jq -c '.plugins[0] + {name: .name, cniVersion: .cniVersion} | del(.logFile)' "$W/net.d/weft.conflist")
direct() { # direct ADD|DEL CID
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$C CNI_IFNAME=eth0 \
    CNI_PATH="$W/bin" timeout 60 nsenter --net=/run/netns/$H "$W/bin/weft-cni" <<<"$conf_weft"
}
add_dir=""; del_dir=""
for i in $(seq "$RUNS"); do
  cid=$(printf 'bench%059d' "$i")
  t=$(now); direct ADD "$cid" >/dev/null || echo "direct ADD $i failed" >&2; add_dir+="$(( ($(now) - t) / 100000 ))e-1 "
  t=$(now); direct DEL "$cid" >/dev/null || echo "direct DEL $i failed" >&2; del_dir+="$(( ($(now) - t) / 100000 ))e-1 "
done
# 4. the bridge plugin alone (podbench's first plugin, with host-local and ipMasq), invoked the same way
conf_br=$(jq -c '.plugins[0] + {name: .name, cniVersion: .cniVersion}' "$f")
direct_br() { # direct_br ADD|DEL CID
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$C CNI_IFNAME=eth0 \
    CNI_PATH="$W/bin:/usr/lib/cni" timeout 60 nsenter --net=/run/netns/$H /usr/lib/cni/bridge <<<"$conf_br"
}
add_br=""; del_br=""
for i in $(seq "$RUNS"); do
  cid=$(printf 'bridge%058d' "$i")
  t=$(now); direct_br ADD "$cid" >"$W/br.out" || echo "bridge ADD $i failed: $(head -c 300 "$W/br.out")" >&2; add_br+="$(( ($(now) - t) / 100000 ))e-1 "
  t=$(now); direct_br DEL "$cid" >"$W/br.out" || echo "bridge DEL $i failed: $(head -c 300 "$W/br.out")" >&2; del_br+="$(( ($(now) - t) / 100000 ))e-1 "
done

st() { tr ' ' '\n' | grep -v '^$' | awk '{printf "%.1f\n", $1}' | stats; }
read -r rw pw _ _ < <(st <<<"${T[weft]}"); read -r rb pb _ _ < <(st <<<"${T[podbench]}"); read -r rn _ _ _ < <(st <<<"${T[none]}")
# (the unquoted $(st …) arguments below are split into the columns on purpose)
row() { printf '%-52s %9s %9s %9s %9s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
echo
echo "podman $(podman --version | awk '{print $3}'), runc, CNI backend; $RUNS runs each, interleaved; $(nproc) cores; $(date -u +%FT%TZ)"
row "what (ms)" median p90 min max
row "podman run --rm --network weft … true" $(st <<<"${T[weft]}")
row "podman run --rm --network podbench (bridge) … true" $(st <<<"${T[podbench]}")
row "podman run --rm --network none … true" $(st <<<"${T[none]}")
row "  ratio weft / bridge" "$(ratio $rw $rb)" "$(ratio $pw $pb)" "" ""
row "  network share, weft (run − none)" "$(awk -v a=$rw -v b=$rn 'BEGIN{printf "%.1f", a-b}')" "" "" ""
row "  network share, bridge (run − none)" "$(awk -v a=$rb -v b=$rn 'BEGIN{printf "%.1f", a-b}')" "" "" ""
row "weft-cni ADD under podman (logFile, in-process)" $(stats <<<"$add_log")
row "weft-cni DEL under podman (logFile, in-process)" $(stats <<<"$del_log")
row "weft-cni ADD direct (nsenter+exec, wall)" $(st <<<"$add_dir")
row "weft-cni DEL direct (nsenter+exec, wall)" $(st <<<"$del_dir")
row "bridge ADD direct (nsenter+exec, wall)" $(st <<<"$add_br")
row "bridge DEL direct (nsenter+exec, wall)" $(st <<<"$del_br")
read -r aw _ < <(st <<<"$add_dir"); read -r ab _ < <(st <<<"$add_br"); read -r dw _ < <(st <<<"$del_dir"); read -r db _ < <(st <<<"$del_br")
row "  ratio ADD weft-cni / bridge (direct)" "$(ratio $aw $ab)" "" "" ""
row "  ratio DEL weft-cni / bridge (direct)" "$(ratio $dw $db)" "" "" ""
echo "$calls; weft allocations left after the podman runs: $left"
