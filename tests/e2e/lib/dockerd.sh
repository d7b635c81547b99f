# shellcheck shell=bash
# tests/e2e/lib/dockerd.sh — a private Docker 20.10 engine inside a test-made network namespace
# (used by tests/e2e/docker-two-hosts.sh and bench/docker-run.sh). Source it; it does nothing
# by itself. See /work/shared/docker/README.md and docs/docker.md ("Testing").
#
# dockerd_start NETNS DIR [PLUGIN_SOCKET] : starts dockerd in NETNS with everything under DIR
#   (data root, exec root, API socket DIR/docker.sock, pidfile, config, log DIR/dockerd.log).
#   It runs in its own mount and PID namespace (`unshare --fork --pid --mount-proc
#   --kill-child`): a private tmpfs over /run (with /run/docker/plugins) and /etc/docker, and
#   this namespace's own /sys (the cgroup mounts are carried over). When PLUGIN_SOCKET is given,
#   /etc/docker/plugins/weft.spec points at it, so a plugin outside that mount namespace serves
#   this dockerd. Sets DOCKERD_PID (the unshare process: killing it takes dockerd, containerd,
#   shims and containers along). Waits (bounded, 60 s) until the API answers.
# dockerd_stop PID : TERM, bounded wait (20 s), KILL of that one process (its PID namespace dies);
#   waits until nothing is left in that PID namespace.
# dk DIR args… : the 20.10 client (/usr/bin/docker) against DIR/docker.sock, bounded by a timeout.
# make_busybox_tar OUT : a root filesystem tar with busybox-static and its applets (for `docker import`).

DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}

dk() { local d=$1; shift; DOCKER_API_VERSION=1.41 timeout "${DK_TIMEOUT:-90}" "$DOCKER_CLI" -H "unix://$d/docker.sock" "$@"; }

dockerd_start() {
  local ns=$1 dir=$2 plugin=${3:-}
  mkdir -p "$dir"/{data,exec,etc}
  rm -f "$dir/dockerd.pid"   # left by a killed dockerd; it would name PID 1, which is the new dockerd itself
  # Left by a killed dockerd too: dockerd reuses the containerd whose PID that file names if a
  # process with that PID is alive. In the fresh PID namespace that PID can be one of the new
  # dockerd's own threads, and dockerd then waits for a containerd that never answers ("timeout
  # waiting for containerd to start", one restart in three here).
  rm -f "$dir/exec/containerd/containerd.pid"
  echo '{}' >"$dir/etc/daemon.json"
  # No bridge and no iptables by default; DOCKERD_BRIDGE=1 (bench/docker-run.sh) keeps Docker's
  # default bridge network, whose docker0 and iptables rules then live inside NETNS only.
  local netflags="--iptables=false --ip6tables=false --ip-masq=false --bridge=none --ip-forward=false"
  [ "${DOCKERD_BRIDGE:-0}" = 1 ] && netflags="--ip6tables=false"
  cat >"$dir/inner.sh" <<INNER
set -e
DOCKERD_NET_FLAGS="$netflags"
mkdir -p /tmp/.cg-\$\$ && mount --rbind /sys/fs/cgroup /tmp/.cg-\$\$
mount -t sysfs sysfs /sys
mount --rbind /tmp/.cg-\$\$ /sys/fs/cgroup && umount -l /tmp/.cg-\$\$ && rmdir /tmp/.cg-\$\$ || true
mount -t tmpfs tmpfs /run && mkdir -p /run/docker/plugins
mount -t tmpfs tmpfs /etc/docker && mkdir -p /etc/docker/plugins
${plugin:+echo "unix://$plugin" >/etc/docker/plugins/weft.spec}
exec dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$dir/docker.sock" \
  --pidfile "$dir/dockerd.pid" --config-file "$dir/etc/daemon.json" --cgroup-parent "weft-test-\$(basename "$dir")" \
  \$DOCKERD_NET_FLAGS \
  --storage-driver vfs --userland-proxy=false
INNER
  nsenter --net="/run/netns/$ns" unshare --fork --pid --mount-proc --mount --propagation private --kill-child=SIGKILL \
    sh "$dir/inner.sh" >"$dir/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    DK_TIMEOUT=5 dk "$dir" version --format '{{.Server.Version}}' >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

dockerd_stop() {
  local p=$1 i c
  [ -n "$p" ] || return 0
  c=$(pgrep -P "$p" 2>/dev/null | head -1)   # dockerd itself (PID 1 of its namespace): a clean stop first
  local pidns=""; [ -n "$c" ] && pidns=$(readlink "/proc/$c/ns/pid" 2>/dev/null)
  [ -n "$c" ] && kill -TERM "$c" 2>/dev/null
  for ((i = 0; i < 150; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$p" 2>/dev/null
  for ((i = 0; i < 200; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  # The kernel kills the rest of that PID namespace (containerd, shims) asynchronously: wait until
  # none is left, or a restarted containerd finds its database still locked.
  [ -n "$pidns" ] && dockerd_wait_pidns_empty "$pidns"
  return 0
}

# dockerd_wait_pidns_empty PIDNS : waits (bounded, 20 s) until no process is left in the PID
# namespace PIDNS (as `readlink /proc/PID/ns/pid` names it).
dockerd_wait_pidns_empty() {
  local pidns=$1 i left f
  for ((i = 0; i < 200; i++)); do
    left=0
    for f in /proc/[0-9]*/ns/pid; do [ "$(readlink "$f" 2>/dev/null)" = "$pidns" ] && { left=1; break; }; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

make_busybox_tar() {
  local out=$1 r
  r=$(mktemp -d /tmp/weft-bbroot.XXXXXX)
  mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,root,run,var,usr/bin,usr/sbin,www}
  cp /bin/busybox "$r/bin/busybox"
  local a
  for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf /bin/busybox "$r/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  echo 'root:x:0:' >"$r/etc/group"
  chmod 1777 "$r/tmp"
  tar -C "$r" -cf "$out" .
  rm -rf "$r"
}
