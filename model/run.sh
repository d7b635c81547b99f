#!/usr/bin/env bash
# model/run.sh — model-check the IPAM v2 rules (model/ipam.pml) with spin, exhaustively.
#
#   1. the correct model: every reachable state is explored and both safety properties hold
#      (P1 no address active at two nodes, P2 no acknowledged allocation dropped unless released);
#   2. broken variants (one rule switched off by a #define): pan must find a counterexample for
#      each; its trail (the interleaving that breaks the property) goes to $OUT/<variant>.trail.txt;
#   3. with --all, also the "either mechanism alone suffices" checks: the model with one of the
#      two independent safety mechanisms removed must still pass (see docs/ipam-model.md).
#
# Usage: model/run.sh [--all] [--keep]     Environment: MODEL_BOUNDS (extra -D flags for spin,
#   e.g. "-DMAXALLOC=2"), MODEL_OUT (where trails go; default a temp dir, kept with --keep).
# Needs spin and gcc (Debian: spin, gcc). Last line: "model: N passed, M failed"; exit 1 on failure.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL=0 KEEP=0
for a in "$@"; do
  case $a in
    --all) ALL=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "model/run.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
for t in spin gcc; do
  command -v "$t" >/dev/null 2>&1 || { echo "model/run.sh: $t is missing (apt-get install spin gcc)"; echo "model: 0 passed, 1 failed"; exit 1; }
done

WORK=$(mktemp -d /tmp/weft-model.XXXXXX)
OUT=${MODEL_OUT:-$WORK/out}
mkdir -p "$OUT"
cleanup() { if ((KEEP)) || [[ -n ${MODEL_OUT:-} ]]; then echo "trails in $OUT"; fi; ((KEEP)) || rm -rf "$WORK"; }
trap cleanup EXIT

# The bounds every run uses (docs/ipam-model.md explains them).
# shellcheck disable=SC2206
BOUNDS=(-DMAXALLOC=1 -DMAXCRASH=1 -DCAP=1 -DMAXFLIGHT=2 ${MODEL_BOUNDS:-})

passed=0 failed=0
# verify NAME EXPECT(pass|fail) FLAGS... : one exhaustive (BFS) run of pan
verify() {
  local name=$1 expect=$2 dir t0 secs out errors states depth complete
  shift 2
  dir=$WORK/$name
  mkdir -p "$dir"
  cp "$HERE/ipam.pml" "$dir/"
  t0=$(date +%s.%N)
  if ! (cd "$dir" && spin "${BOUNDS[@]}" "$@" -a ipam.pml >spin.log 2>&1 && ! grep -q "Error" spin.log &&
        gcc -O2 -w -DSAFETY -DBFS -DCOLLAPSE -DMEMLIM=6000 -o pan pan.c >gcc.log 2>&1); then
    failed=$((failed + 1))
    printf 'FAIL  %-44s could not build the verifier: %s\n' "$name" "$(cat "$dir/spin.log" "$dir/gcc.log" 2>/dev/null | head -n 3 | tr '\n' ' ')"
    return
  fi
  out=$(cd "$dir" && timeout 900 ./pan -w25 2>&1)
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | tail -n 1)
  states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' <<<"$out" | tail -n 1)
  depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' <<<"$out" | tail -n 1)
  complete=1
  grep -qE "Search not completed|max search depth too small|out of memory" <<<"$out" && complete=0
  if [[ $expect == pass ]]; then
    if [[ ${errors:-x} == 0 && $complete == 1 ]]; then
      passed=$((passed + 1))
      printf 'ok    %-44s holds: %s states, depth %s, %ss (exhaustive)\n' "$name" "$states" "$depth" "$secs"
    else
      failed=$((failed + 1))
      printf 'FAIL  %-44s expected to hold: errors=%s complete=%s (%ss)\n' "$name" "${errors:-?}" "$complete" "$secs"
      grep -E "pan:|assertion" <<<"$out" | head -n 3
      (cd "$dir" && spin -t "${BOUNDS[@]}" "$@" ipam.pml 2>&1 | grep -E '^ +(node|deliver|lost|  node)|assert' >"$OUT/$name.trail.txt")
      [[ -s $OUT/$name.trail.txt ]] && { echo "      counterexample:"; sed 's/^ */        /' "$OUT/$name.trail.txt" | head -n 40; }
    fi
  else
    if [[ ${errors:-0} -ge 1 && -f $dir/ipam.pml.trail ]]; then
      (cd "$dir" && spin -t "${BOUNDS[@]}" "$@" ipam.pml 2>&1 | grep -E '^ +(node|deliver|lost|  node)|assert' >"$OUT/$name.trail.txt")
      local what
      what=$(grep -m1 -o 'assertion violated.*' <<<"$out" | cut -c1-60)
      passed=$((passed + 1))
      printf 'ok    %-44s caught: counterexample of %s steps after %s states (%ss)\n' "$name" \
        "$(grep -c . "$OUT/$name.trail.txt")" "$states" "$secs"
      [[ -n $what ]] || true
    else
      failed=$((failed + 1))
      printf 'FAIL  %-44s expected a counterexample, pan found none (errors=%s, %s states, %ss)\n' "$name" "${errors:-?}" "$states" "$secs"
    fi
  fi
}

echo "spin $(spin -V 2>&1 | sed -n 's/Spin Version \([^ ]*\).*/\1/p'), bounds: ${BOUNDS[*]}"
verify correct pass
verify fewer-acks fail -DBUG_FEWER_ACKS
verify keep-unconfirmed-on-loss fail -DBUG_KEEP_UNCONFIRMED
verify drop-confirmed-on-loss fail -DBUG_DROP_CONFIRMED
verify ignore-reserved-holdings fail -DBUG_NO_RESERVE
verify no-voter-holdings-check+no-fence fail -DBUG_NO_HOLDINGS_CHECK -DBUG_NO_FENCE
verify no-voter-holdings-check+skip-phase1 fail -DBUG_NO_HOLDINGS_CHECK -DBUG_SKIP_PHASE1
verify no-voter-holdings-check+heir-ignores-acks fail -DBUG_NO_HOLDINGS_CHECK -DBUG_HEIR_IGNORES_ACKS
verify no-voter-holdings-check+adopt-gossiped fail -DBUG_NO_HOLDINGS_CHECK -DBUG_ADOPT_GOSSIPED_TAKEOVER
if ((ALL)); then
  verify only-fence:no-voter-holdings-check pass -DBUG_NO_HOLDINGS_CHECK
  verify only-holdings-check:no-fence pass -DBUG_NO_FENCE
  verify only-holdings-check:skip-phase1 pass -DBUG_SKIP_PHASE1
  verify only-holdings-check:adopt-gossiped pass -DBUG_ADOPT_GOSSIPED_TAKEOVER
fi
echo "model: $passed passed, $failed failed"
((failed == 0))
