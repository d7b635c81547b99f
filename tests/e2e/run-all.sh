#!/usr/bin/env bash
# tests/e2e/run-all.sh — run every end-to-end script in tests/e2e (each *.sh here except this one,
# in name order), one after the other, and sum their "N passed, M failed" lines.
#
# A script that prints "SKIP: reason" and exits 0 counts as skipped. A script that exits non-zero
# without a summary line (e.g. it could not start) counts as 1 failed check. The environment is
# passed through (CONTROL_ONLY=1, WEFT_BIN, KEEP=1, ...). Each script's full output goes to stdout.
# That includes ipam-partition.sh (5 nodes in namespaces, partitions by iptables inside them) and
# ipam-storm.sh (3 nodes killed and restarted under allocation load): they check the IPAM v2
# oracle (docs/ipam-model.md) and fail on a build without IPAM v2 (the duplicate-address bug).
#
# Usage: tests/e2e/run-all.sh [--control-only]      (not root: prints "SKIP: not root", exits 0)
# Exit: 0 when nothing failed, 1 otherwise. Last line: "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ ${1:-} == --control-only ]] && export CONTROL_ONLY=1
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: not root (the end-to-end tests create network namespaces and TUN devices)"
  exit 0
fi

total_pass=0 total_fail=0 skipped=0
declare -a lines=() failures=()
for script in "$HERE"/*.sh; do
  [[ $(basename "$script") == run-all.sh ]] && continue
  name=$(basename "$script")
  echo "==== $name"
  out=$(mktemp /tmp/weft-e2e-runall.XXXXXX)
  t0=$(date +%s)
  bash "$script" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  secs=$(($(date +%s) - t0))
  sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [[ -n $sum ]]; then
    p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
    ((rc != 0 && f == 0)) && f=1   # a failing exit status never counts as success
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    lines+=("$(printf '%-24s %s (exit %d, %ds)' "$name" "$p passed, $f failed" "$rc" "$secs")")
  elif ((rc == 0)) && grep -q '^SKIP:' "$out"; then
    skipped=$((skipped + 1))
    lines+=("$(printf '%-24s %s' "$name" "$(grep -m1 '^SKIP:' "$out")")")
  else
    total_fail=$((total_fail + 1))
    lines+=("$(printf '%-24s no summary line, exit %d: counted as 1 failed' "$name" "$rc")")
  fi
  # Keep each failing check's line (and a few lines before it) for the summary: CI shows only the
  # tail of the output, so what failed must be repeated there.
  while IFS= read -r l; do failures+=("$name: $l"); done < <(grep -B3 -E '(^|\] )FAIL - ' "$out" | cut -c1-400 | head -n 60)
  rm -f "$out"
done

if ((${#failures[@]})); then
  echo "==== failed checks (with the lines before each)"
  for l in "${failures[@]}"; do echo "$l"; done
fi
echo "==== summary"
for l in "${lines[@]}"; do echo "$l"; done
((skipped)) && echo "$skipped script(s) skipped"
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
