#!/usr/bin/env bash
# all.sh - every test suite (unit, e2e, ui), each run even when an earlier one
# fails, then one closing line for the whole: "total: N passed, N failed,
# N skipped". Exit status 1 if anything failed.
#   B=build bash tests/all.sh
set -u
B=${B:-build}
export LATHE=$B/lathe LATHE_PLUGIN_DIR=$B/plugins
pass=0 fail=0 skip=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
suite() { # suite NAME CMD...: run it, add its closing line's counts
  local name=$1 rc line p f s
  shift
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$out" | tail -1)
  p=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$line")
  f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
  s=$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' <<<"$line")
  pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0})) skip=$((skip + ${s:-0}))
  if [ -z "$line" ] || { [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; }; then
    echo "$name: ended with exit $rc before its closing line"
    fail=$((fail + 1))
  fi
}
suite unit "$B/test-unit"
suite e2e bash tests/e2e.sh
suite ui bash tests/ui.sh
echo "total: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
