#!/usr/bin/env bash
# run.sh - every fuzz target for SECONDS each, from the committed corpus
# (tests/fuzz/corpus/TARGET) plus the inputs that once crashed it
# (tests/fuzz/regress/TARGET, replayed first). New inputs go to a scratch copy,
# so the tree is not changed; a crash leaves its input in the scratch folder,
# is printed, and fails the run. One summary line per target:
#   fuzz TARGET: N runs in S s, cov C, ft F, crashes K
# With FUZZ_RUNS=N in the environment each target runs exactly N inputs from
# libFuzzer's seed 1 (store: N/10) instead of SECONDS: a reproducible verdict.
#   [FUZZ_RUNS=N] bash tests/fuzz/run.sh build/fuzz SECONDS TARGET...
set -u
B=$1 S=$2
shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export LATHE_PLUGIN_DIR=$ROOT/$B/plugins LATHE_SHARE_DIR=$ROOT/share
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
W=$(mktemp -d /tmp/lathe-fuzz-XXXXXX)
trap 'rm -rf "$W"' EXIT
fail=0
for t in "$@"; do
  bin=$ROOT/$B/fuzz-$t
  mkdir -p "$W/$t" "$W/crash-$t"
  [ -d "$ROOT/tests/fuzz/corpus/$t" ] && cp -r "$ROOT/tests/fuzz/corpus/$t/." "$W/$t/"
  if [ -d "$ROOT/tests/fuzz/regress/$t" ] && ls "$ROOT/tests/fuzz/regress/$t"/* >/dev/null 2>&1; then
    if ! "$bin" "$ROOT/tests/fuzz/regress/$t"/* >"$W/$t.regress.log" 2>&1; then
      echo "fuzz $t: a regression input crashes again"; tail -30 "$W/$t.regress.log"; fail=1; continue
    fi
  fi
  budget=(-max_total_time="$S")
  # a store input is a whole LMDB environment on disk: a tenth as many of them
  runs=${FUZZ_RUNS:-}; [ -n "$runs" ] && [ "$t" = store ] && runs=$((runs / 10))
  [ -n "$runs" ] && budget=(-runs="$runs" -seed=1)
  leaks=1; [ "$t" = store ] && leaks=0 # a faulting LMDB read abandons its environment
  ASAN_OPTIONS=detect_leaks=$leaks:abort_on_error=1 "$bin" "$W/$t" -detect_leaks=$leaks "${budget[@]}" -timeout=20 -rss_limit_mb=2560 -max_len=1048576 \
    -artifact_prefix="$W/crash-$t/" -print_final_stats=1 >"$W/$t.log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$W/$t.log")
  cov=$(grep -o 'cov: [0-9]*' "$W/$t.log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$W/$t.log" | tail -1 | cut -d' ' -f2)
  crashes=$(ls "$W/crash-$t" | wc -l)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$W/$t.log")
  echo "fuzz $t: ${runs:-0} runs in ${secs:-$S} s, cov ${cov:-?}, ft ${ft:-?}, crashes $crashes"
  if [ $rc != 0 ] || [ "$crashes" != 0 ]; then
    fail=1
    grep -m1 -A25 'ERROR\|runtime error\|deadly signal' "$W/$t.log"
    for c in "$W/crash-$t"/*; do [ -e "$c" ] && echo "input: $(basename "$c") $(head -c 200 "$c" | od -An -c | head -3)"; done
  fi
done
exit $fail
