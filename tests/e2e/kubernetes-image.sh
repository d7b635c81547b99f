#!/bin/bash
# kubernetes-image.sh: deploy/kubernetes and deploy/image without a cluster.
#
# No Kubernetes runs on these machines. What is tested here:
#   1. `kubectl apply --dry-run=client --validate=false -f deploy/kubernetes/` against a stub API
#      server on 127.0.0.1 (tests/e2e/lib/kube-stub-api.py: discovery only, every object 404,
#      writes refused): every manifest parses and names a kind kubectl resolves; a Secret made
#      the way deploy/kubernetes/README.md says is accepted too;
#   2. the manifests' own consistency, checked with jq on kubectl's JSON rendering: hostNetwork,
#      not privileged, capabilities exactly NET_ADMIN + NET_BIND_SERVICE after drop ALL, every
#      volumeMount has its volume, the data hostPath is the conflist's dataDir, the Secret and
#      ConfigMap names match, the image is the one build.sh tags, pulls never;
#   3. deploy/image/build.sh builds the image FROM scratch with podman (--pull=never), from
#      WEFT_BIN / WEFT_CNI_BIN: CI passes its debug binaries (a release build is too slow for
#      CI; release binaries are what to ship, see docs/cni.md);
#   4. under podman (--pull never): `weft --version` equals the binary's; the init container
#      (install-cni, read-only root, every capability dropped) installs weft-cni and the conflist
#      into host folders, and a second run changes nothing; two node containers, on two
#      test-made host namespaces, started as the DaemonSet starts them (its entrypoint, env,
#      capabilities NET_ADMIN + NET_BIND_SERVICE only, /dev/net/tun bound in like the hostPath,
#      read-only root and /proc/sys, the key as a read-only file): the first creates the cluster
#      (WEFT_BOOTSTRAP_NODE), the second joins through WEFT_SEEDS; `weft status` inside answers,
#      both see 2 members, weft0 carries the overlay addresses, the hosts ping each other over
#      the overlay; a node restarted from its data dir comes back with the same address;
#   5. tests/e2e/containerd-cni.sh with the weft-cni and conflist the init container installed
#      (CONFLIST=, WEFT_CNI_BIN=): `ctr run --cni` with them works (one check here; its lines
#      are printed). SKIP_CONTAINERD=1 leaves it out.
# Not tested: a real kubelet/API server (scheduling, the Secret mount, probes, tolerations,
# DNS of the headless Service, RBAC/admission). See docs/cni.md "Kubernetes".
#
# env: WEFT_BIN, WEFT_CNI_BIN; KEEP=1. Output: one line per check, then `N passed, M failed`.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/cni/lib.sh"
first_exe() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
WEFT_BIN=${WEFT_BIN:-${WEFT:-$(first_exe "$top/.build/release/weft" "$top/.build/debug/weft")}}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-${WEFT_CNI:-$(first_exe "$top/.build/release/weft-cni" "$top/.build/debug/weft-cni")}}
K8S=$top/deploy/kubernetes
IMG=localhost/weft:latest

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
for c in kubectl python3 podman runc jq nsenter ip busybox timeout; do
  command -v $c >/dev/null || { echo "SKIP: missing $c (Debian: kubernetes-client podman runc jq busybox-static; bootstrap/setup installs them)"; exit 0; }
done
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do [ -x "$b" ] || { echo "SKIP: $b not built"; exit 0; }; done
[ -c /dev/net/tun ] || { echo "SKIP: /dev/net/tun missing"; exit 0; }

W=$(mktemp -d /tmp/weft-k8s.XXXXXX)
chmod 0755 "$W"
NS_PREFIX=weft-k8s-$$
declare -A NS=([a]=$NS_PREFIX-a [b]=$NS_PREFIX-b)
declare -A UNDER=([a]=198.51.100.1 [b]=198.51.100.2)
STUB_PID=""
PASS=0; FAIL=0
T0=$(date +%s%N)
el() { local d=$(( $(date +%s%N) - T0 )); printf '%3d.%02ds' $((d / 1000000000)) $((d / 10000000 % 100)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "[$(el)] $*"; }
ok()  { PASS=$((PASS + 1)); say "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL - $*"; }
finish() { say "total"; echo "$PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; exit $?; }
pod() { CONTAINERS_CONF=$W/containers.conf timeout 120 podman --root "$W/p/root" --runroot "$W/p/run" --tmpdir "$W/p/tmp" "$@"; }
cleanup() {
  local rc=$?
  trap - EXIT
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: leaving $W, netns ${NS[a]} ${NS[b]}"; exit $rc; fi
  [ -n "$STUB_PID" ] && { kill "$STUB_PID" 2>/dev/null; wait "$STUB_PID" 2>/dev/null; }
  if [ -d "$W/p/root" ]; then
    pod rm -f -t 5 --all >/dev/null 2>&1
    pod rmi -f --all >/dev/null 2>&1
  fi
  for h in a b; do ip netns del "${NS[$h]}" 2>/dev/null; done
  awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. kubectl apply --dry-run=client -------------------------------------------------------
python3 "$top/tests/e2e/lib/kube-stub-api.py" "$W/stub.port" 2>"$W/stub.log" &
STUB_PID=$!
for _ in $(seq 50); do [ -s "$W/stub.port" ] && break; sleep 0.1; done
KC=(timeout 60 kubectl --server "http://127.0.0.1:$(cat "$W/stub.port" 2>/dev/null)")
"${KC[@]}" -n weft create secret generic weft-cluster-key --from-literal=cluster.key="$("$WEFT_BIN" keygen)" \
  --dry-run=client -o yaml >"$W/secret.yaml" 2>"$W/secret.err"
"${KC[@]}" apply --dry-run=client --validate=false -f "$K8S/" -f "$W/secret.yaml" >"$W/apply.out" 2>"$W/apply.err"; rc=$?
want="configmap/weft-config daemonset.apps/weft namespace/weft secret/weft-cluster-key service/weft-seeds"
got=$(awk '$2 == "created" && $3 == "(dry" {print $1}' "$W/apply.out" | sort | tr '\n' ' ' | sed 's/ $//')
[ $rc = 0 ] && [ "$got" = "$want" ] && ok "kubectl $(kubectl version --client -o json 2>/dev/null | jq -r .clientVersion.gitVersion) apply --dry-run=client --validate=false: $got" \
  || bad "kubectl apply --dry-run (exit $rc): got '$got', want '$want': $(head -3 "$W/apply.err")"
grep -qE 'kube-stub-api: (POST|PUT|PATCH|DELETE)' "$W/stub.log" && bad "kubectl sent a write to the stub" || ok "kubectl sent no write (dry run): $(grep -c GET "$W/stub.log") GETs"
"${KC[@]}" apply --dry-run=client --validate=false -f "$K8S/" -o json >"$W/objects.json" 2>>"$W/apply.err"
ds() { jq -c "$1" <(jq 'if .kind == "List" then .items[] else . end | select(.kind == "DaemonSet")' "$W/objects.json"); }

# ---- 2. the manifests' consistency -------------------------------------------------------------
chk() { local name=$1 expr=$2 v; v=$(ds "$expr" 2>&1); [ "$v" = true ] && ok "manifest: $name" || bad "manifest: $name ($v)"; }
chk "hostNetwork, dnsPolicy ClusterFirstWithHostNet" '.spec.template.spec.hostNetwork == true and .spec.template.spec.dnsPolicy == "ClusterFirstWithHostNet"'
chk "no container is privileged or may escalate" '[.spec.template.spec.initContainers[], .spec.template.spec.containers[] | .securityContext | (.privileged // false) == false and .allowPrivilegeEscalation == false] | all'
chk "node container: drop ALL, add exactly NET_ADMIN + NET_BIND_SERVICE; init container: drop ALL, add none" \
  '(.spec.template.spec.containers[0].securityContext.capabilities | (.drop == ["ALL"]) and ((.add | sort) == ["NET_ADMIN","NET_BIND_SERVICE"])) and (.spec.template.spec.initContainers[0].securityContext.capabilities | .drop == ["ALL"] and (.add // []) == [])'
chk "read-only root file systems" '[.spec.template.spec.initContainers[], .spec.template.spec.containers[] | .securityContext.readOnlyRootFilesystem] | all'
chk "every volumeMount names a volume" '([.spec.template.spec.volumes[].name]) as $v | [.spec.template.spec.initContainers[], .spec.template.spec.containers[] | .volumeMounts[].name | IN($v[])] | all'
dd=$(jq -r '.plugins[0].dataDir' "$top/deploy/cni/10-weft.conflist")
chk "data hostPath = mount = conflist dataDir ($dd)" "(.spec.template.spec.volumes[] | select(.name == \"data\") | .hostPath.path == \"$dd\") and (.spec.template.spec.containers[0].volumeMounts[] | select(.name == \"data\") | .mountPath == \"$dd\")"
chk "hostPaths /opt/cni/bin and /etc/cni/net.d for the init container, /dev/net/tun as CharDevice, /var/run/netns" \
  '([.spec.template.spec.volumes[] | select(.hostPath) | "\(.hostPath.path)=\(.hostPath.type)"] | sort) == ["/dev/net/tun=CharDevice","/etc/cni/net.d=DirectoryOrCreate","/opt/cni/bin=DirectoryOrCreate","/var/lib/weft=DirectoryOrCreate","/var/run/netns=DirectoryOrCreate"]'
chk "the key comes from Secret weft-cluster-key at the path the entrypoint reads" \
  '(.spec.template.spec.volumes[] | select(.name == "cluster-key") | .secret.secretName == "weft-cluster-key") and ([.spec.template.spec.containers[0].env[] | select(.name == "WEFT_CLUSTER_KEY_FILE") | .value] == ["/etc/weft/key/cluster.key"])'
chk "env from the ConfigMap weft-config, node IP and name from the downward API" \
  '([.spec.template.spec.containers[0].env[] | select(.valueFrom.configMapKeyRef) | .valueFrom.configMapKeyRef.name] | unique == ["weft-config"]) and ([.spec.template.spec.containers[0].env[] | select(.valueFrom.fieldRef) | .valueFrom.fieldRef.fieldPath] | sort == ["spec.nodeName","status.hostIP"])'
chk "image $IMG, imagePullPolicy Never, init command install-cni" \
  "[.spec.template.spec.initContainers[], .spec.template.spec.containers[] | .image == \"$IMG\" and .imagePullPolicy == \"Never\"] + [.spec.template.spec.initContainers[0].command == [\"/usr/local/bin/install-cni\"]] | all"
vars=$(ds '[.spec.template.spec.containers[0].env[].name] | join(" ")' | tr -d '"')
missing=""; for v in $vars; do grep -q "\${$v" "$top/deploy/image/weft-node.sh" || missing+=" $v"; done
[ -z "$missing" ] && ok "every env var the DaemonSet sets is read by weft-node.sh ($vars)" || bad "env vars the entrypoint ignores:$missing"
svc=$(jq -r '.data["seed-service"]' <(jq 'if .kind == "List" then .items[] else . end | select(.kind == "ConfigMap")' "$W/objects.json"))
[ "$svc" = "weft-seeds.weft.svc.cluster.local" ] && grep -q 'name: weft-seeds' "$K8S/service.yaml" && grep -q 'clusterIP: None' "$K8S/service.yaml" \
  && ok "seed-service $svc is the headless Service weft-seeds in namespace weft" || bad "seed-service '$svc' does not match service.yaml"

# ---- 3. the image ------------------------------------------------------------------------------
mkdir -p "$W/p"/{root,run,tmp} "$W/host"/{opt-cni-bin,etc-cni-net.d}
write_containers_conf "$W/containers.conf" "$W/p/net.d" /usr/lib/cni
t=$(date +%s%N)
if CONTAINERS_CONF=$W/containers.conf WEFT_BIN=$WEFT_BIN WEFT_CNI_BIN=$WEFT_CNI_BIN IMAGE=$IMG \
    PODMAN="podman --root $W/p/root --runroot $W/p/run --tmpdir $W/p/tmp" \
    timeout 300 "$top/deploy/image/build.sh" >"$W/build.log" 2>&1; then
  ok "deploy/image/build.sh: FROM scratch, --pull=never, $(grep -o '[0-9]* libraries, rootfs [^ ]*' "$W/build.log") ($(ms $t) ms; binaries $(basename "$(dirname "$WEFT_BIN")"))"
else bad "build.sh: $(tail -5 "$W/build.log")"; finish; fi
size=$(pod image inspect -f '{{.Size}}' $IMG 2>/dev/null)
say "note - image size $((${size:-0} / 1048576)) MiB"

v_img=$(pod run --rm --pull never --entrypoint /usr/bin/weft $IMG --version 2>&1); v_bin=$("$WEFT_BIN" --version 2>&1)
[ -n "$v_bin" ] && [ "$v_img" = "$v_bin" ] && ok "podman run --pull never: weft --version = '$v_img'" || bad "weft --version in the image: '$v_img', binary: '$v_bin'"

# ---- 4a. the init container ----------------------------------------------------------------------
init() { pod run --rm --pull never --read-only --cap-drop all --security-opt no-new-privileges \
  -v "$W/host/opt-cni-bin:/host/opt/cni/bin" -v "$W/host/etc-cni-net.d:/host/etc/cni/net.d" \
  --entrypoint /usr/local/bin/install-cni $IMG; }
init >"$W/init1.log" 2>&1; rc=$?
if [ $rc = 0 ] && cmp -s "$WEFT_CNI_BIN" "$W/host/opt-cni-bin/weft-cni" && cmp -s "$top/deploy/cni/10-weft.conflist" "$W/host/etc-cni-net.d/10-weft.conflist" \
   && [ "$(stat -c %a "$W/host/opt-cni-bin/weft-cni")" = 755 ]; then
  ok "init container (read-only, no capabilities) installed weft-cni (0755) and 10-weft.conflist, identical to the repo's"
else bad "init container (exit $rc): $(tr '\n' ';' <"$W/init1.log")"; fi
m1=$(stat -c %Y.%i "$W/host/opt-cni-bin/weft-cni" "$W/host/etc-cni-net.d/10-weft.conflist" 2>/dev/null | tr '\n' ' ')
init >"$W/init2.log" 2>&1
m2=$(stat -c %Y.%i "$W/host/opt-cni-bin/weft-cni" "$W/host/etc-cni-net.d/10-weft.conflist" 2>/dev/null | tr '\n' ' ')
[ "$m1" = "$m2" ] && [ "$(grep -c 'up to date' "$W/init2.log")" = 2 ] && ok "init container again: both files up to date, untouched" \
  || bad "second init run: $(tr '\n' ';' <"$W/init2.log")"
CNI_COMMAND=VERSION "$W/host/opt-cni-bin/weft-cni" <<<'{"cniVersion":"1.0.0"}' 2>&1 | jq -e '.supportedVersions | index("1.0.0")' >/dev/null \
  && ok "the installed weft-cni runs on the host (VERSION)" || bad "installed weft-cni VERSION: $(CNI_COMMAND=VERSION "$W/host/opt-cni-bin/weft-cni" <<<'{"cniVersion":"1.0.0"}' 2>&1 | head -2)"

# ---- 4b. node containers as the DaemonSet runs them ------------------------------------------
for h in a b; do ip netns add "${NS[$h]}" || { bad "cannot create netns ${NS[$h]}"; finish; }; done
ip link add wku-a netns ${NS[a]} type veth peer name wku-b netns ${NS[b]}
for h in a b; do
  ip -n ${NS[$h]} link set lo up
  ip -n ${NS[$h]} addr add ${UNDER[$h]}/24 dev wku-$h
  ip -n ${NS[$h]} link set wku-$h up
  ip netns exec ${NS[$h]} sysctl -qw net.ipv4.ip_forward=1   # kubeadm's prerequisite on a node
  mkdir -p "$W/$h/data"
done
mkdir -p "$W/key"; "$WEFT_BIN" keygen >"$W/key/cluster.key"; chmod 0400 "$W/key/cluster.key"
node_ctr() { # node_ctr HOST NAME ENV... : the node container of the DaemonSet, on HOST's netns
  local h=$1 n=$2; shift 2
  pod run -d --pull never --name "$n" --network "ns:/run/netns/${NS[$h]}" \
    --cap-drop all --cap-add NET_ADMIN --cap-add NET_BIND_SERVICE --security-opt no-new-privileges \
    --read-only --tmpfs /tmp -v /dev/net/tun:/dev/net/tun -v "$W/$h/data:/var/lib/weft" \
    -v "$W/key:/etc/weft/key:ro" -e WEFT_NODE_IP=${UNDER[$h]} -e WEFT_NODE_NAME="node-$h" \
    -e WEFT_EXTRA_ARGS="--profile fast" "$@" $IMG
}
st() { pod exec "$1" /usr/bin/weft status --data-dir /var/lib/weft --json 2>/dev/null; }
node_ctr a weft-a -e WEFT_BOOTSTRAP_NODE=node-a -e WEFT_SEEDS= >"$W/run-a.log" 2>&1 || bad "podman run weft-a: $(tail -2 "$W/run-a.log")"
for _ in $(seq 150); do st weft-a | jq -e '.overlayAddress' >/dev/null 2>&1 && break; sleep 0.2; done
oa=$(st weft-a | jq -r '.overlayAddress // empty')
[ -n "$oa" ] && ok "node container weft-a (bootstrap node) started; weft status inside answers (overlay $oa)" \
  || { bad "weft-a: $(pod logs weft-a 2>&1 | tail -4 | tr '\n' ';')"; finish; }
grep -q 'creating the cluster' <<<"$(pod logs weft-a 2>&1)" && ok "weft-a's entrypoint chose 'create' (empty data dir, WEFT_BOOTSTRAP_NODE=node-a)" || bad "weft-a's entrypoint: $(pod logs weft-a 2>&1 | head -2)"
node_ctr b weft-b -e WEFT_BOOTSTRAP_NODE=node-a -e WEFT_SEEDS="${UNDER[b]}:7946,${UNDER[a]}:7946" >"$W/run-b.log" 2>&1 || bad "podman run weft-b: $(tail -2 "$W/run-b.log")"
both() { [ "$(st weft-a | jq -r '.members.alive // 0')" = 2 ] && [ "$(st weft-b | jq -r '.members.alive // 0')" = 2 ] && st weft-b | jq -e '.overlayAddress' >/dev/null; }
for _ in $(seq 150); do both && break; sleep 0.2; done
ob=$(st weft-b | jq -r '.overlayAddress // empty')
both && ok "weft-b joined through WEFT_SEEDS (its own address dropped): both see 2 alive members (b: $ob)" \
  || bad "join: a=$(st weft-a | jq -c '.members' 2>&1) b=$(st weft-b | jq -c '{members,overlayAddress,warnings}' 2>&1) $(pod logs weft-b 2>&1 | tail -3 | tr '\n' ';')"
grep -q "joining through ${UNDER[a]}:7946\$" <<<"$(pod logs weft-b 2>&1)" && ok "weft-b's entrypoint chose 'join' with seeds ${UNDER[a]}:7946" || bad "weft-b's entrypoint: $(pod logs weft-b 2>&1 | head -2)"
for h in a b; do
  o=$([ $h = a ] && echo "$oa" || echo "$ob")
  ip -n ${NS[$h]} -o -4 addr show weft0 2>/dev/null | grep -q "inet ${o:-none}/" && ok "weft0 in host $h's namespace carries $o (TUN from a non-privileged container)" \
    || bad "weft0 on host $h: $(ip -n ${NS[$h]} -o addr show weft0 2>&1)"
done
if [ -n "$ob" ] && ip netns exec ${NS[a]} ping -c 3 -W 3 -I "$oa" "$ob" >"$W/ping.log" 2>&1; then
  ok "host a pings host b over the overlay ($oa -> $ob): $(grep -o 'rtt.*' "$W/ping.log")"
else bad "overlay ping $oa -> $ob: $(tail -2 "$W/ping.log" | tr '\n' ' ')"; fi
caps=$(pod exec weft-a sh -c 'grep CapEff /proc/1/status' 2>/dev/null | awk '{print $2}')
[ "$caps" = "$(printf '%016x' $(( (1 << 12) | (1 << 10) )))" ] && ok "the node process runs with CapEff $caps (NET_ADMIN, NET_BIND_SERVICE only)" || bad "node CapEff '$caps'"
t=$(date +%s%N)
pod restart -t 10 weft-a >/dev/null 2>&1
for _ in $(seq 150); do [ "$(st weft-a | jq -r '.overlayAddress // empty')" = "$oa" ] && break; sleep 0.2; done
[ "$(st weft-a | jq -r '.overlayAddress // empty')" = "$oa" ] && grep -q 'restarting' <<<"$(pod logs weft-a 2>&1)" \
  && ok "weft-a restarted from its hostPath data dir: same overlay address $oa ($(ms $t) ms)" \
  || bad "restart of weft-a: $(st weft-a | jq -c '{overlayAddress,warnings}' 2>&1) $(pod logs weft-a 2>&1 | tail -2 | tr '\n' ';')"
pod rm -f -t 10 weft-a weft-b >/dev/null 2>&1

# ---- 5. ctr run --cni with what the init container installed ----------------------------------
if [ "${SKIP_CONTAINERD:-0}" = 1 ]; then say "SKIP_CONTAINERD=1: containerd-cni.sh left out"
else
  t=$(date +%s%N)
  CONFLIST=$W/host/etc-cni-net.d/10-weft.conflist WEFT_CNI_BIN=$W/host/opt-cni-bin/weft-cni WEFT_BIN=$WEFT_BIN \
    bash "$top/tests/e2e/containerd-cni.sh" >"$W/containerd.log" 2>&1
  rc=$?
  sed 's/^/    containerd-cni: /' "$W/containerd.log"
  sum=$(tail -n 1 "$W/containerd.log")
  if [ $rc = 0 ] && [[ $sum =~ ^[0-9]+\ passed,\ 0\ failed$ ]]; then
    ok "containerd-cni.sh with the installed weft-cni and conflist: $sum ($(ms $t) ms)"
  elif grep -q '^SKIP:' "$W/containerd.log"; then say "containerd-cni.sh skipped: $(grep '^SKIP:' "$W/containerd.log")"
  else bad "containerd-cni.sh with the installed files (exit $rc): $sum"; fi
fi
finish
