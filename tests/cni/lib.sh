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
