# Shared helpers for the tests/cni scripts (sourced, not run).

# free_port: a 127.0.0.1 port nothing listens on (TCP or UDP), so parallel runs do not collide.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    [ -z "$(ss -Htuln "sport = :$p" 2>/dev/null)" ] && { echo $p; return; }
  done
  echo $((20000 + RANDOM % 20000))
}

# write_containers_conf FILE NET_DIR PLUGIN_DIR
# A podman configuration that works on these machines (see ../shared/cni/README.md): runc (crun
# fails on cgroup v1 hybrid), the CNI backend reading NET_DIR with plugins from PLUGIN_DIR, and
# container ulimits within our own hard limits (no CAP_SYS_RESOURCE here).
write_containers_conf() {
  local file=$1 netdir=$2 plugindir=$3 nofile nproc
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  cat >"$file" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[network]
network_backend = "cni"
network_config_dir = "$netdir"
cni_plugin_dirs = ["$plugindir", "/usr/lib/cni"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}
