#!/usr/bin/env bash
# tsan.sh - the thread rules of run.h under ThreadSanitizer: runs stepped by
# two workers while the loop thread reads them (headless progress on a
# terminal reads each run's total and active flag), a recipe reading run
# handles while workers step the runs, a recipe that fails with runs going
# (lathe_run_stop from the loop), SIGINT during a sweep, stepvalue's
# rollouts sampled in two shards on two threads, lathe.sample computing
# on libuv's pool while a run streams events, and the nn core's parallel
# loops (one run with a pool of two workers; two runs sharing the pool). Any report fails the suite.
#   B=build/tsan bash tests/tsan.sh
set -u
B=${B:-build/tsan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LATHE=("$ROOT/$B/lathe")
export LATHE_PLUGIN_DIR=$ROOT/$B/plugins LATHE_SHARE_DIR=$ROOT/share
W=$(mktemp -d /tmp/lathe-tsan-XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
export TSAN_OPTIONS="halt_on_error=0 log_path=$W/report suppressions=$ROOT/tests/tsan.supp"
# TSan's shadow memory needs a layout some kernels' address randomisation
# breaks ("unexpected memory mapping"): then run without it, or skip saying why
if ! "${LATHE[@]}" version >/dev/null 2>&1; then
  if setarch "$(uname -m)" -R "${LATHE[@]}" version >/dev/null 2>&1; then
    LATHE=(setarch "$(uname -m)" -R "${LATHE[@]}")
  else
    echo "tsan: 0 passed, 0 failed, 9 skipped (ThreadSanitizer cannot start here: $("${LATHE[@]}" version 2>&1 | head -1))"
    exit 0
  fi
fi
pass=0 fail=0
check() { # check NAME [N]: no report since the last check (and N runs done in the last store)
  if [ -n "${2:-}" ] && [ "$("${LATHE[@]}" runs --store "$store" 2>/dev/null | grep -c ' done ')" != "$2" ]; then
    echo "FAIL $1: not $2 runs done in $store"; fail=$((fail + 1))
  elif ls "$W"/report* >/dev/null 2>&1; then
    echo "FAIL $1"; grep -h -A20 WARNING "$W"/report* | head -60; rm -f "$W"/report*
    fail=$((fail + 1))
  else echo "ok   $1"; pass=$((pass + 1)); fi
}
cat >sweep.lua <<'LUA'
local hs = {}
for s = 1, 4 do hs[s] = lathe.spawn("regress", {seed = s, steps = lathe.opt("steps", 4000)}) end
lathe.wait(hs)
LUA
cat >poll.lua <<'LUA'
local hs = {lathe.spawn("regress", {seed = 1, steps = 3000}), lathe.spawn("regress", {seed = 2, steps = 3000})}
local seen = 0
for i = 1, 20000 do -- handles read their runs live while the workers step them
  local h = hs[i % 2 + 1]
  seen = seen + (h.step or 0) + #h.status + (h.summary.loss and 1 or 0) + (h.error and 1 or 0)
end
lathe.wait(hs)
print("polled", seen)
LUA
cat >fails.lua <<'LUA'
for s = 1, 3 do lathe.spawn("regress", {seed = s, steps = 100000000}) end
lathe.wait(lathe.spawn("regress", {seed = 9, steps = 200}))
error("the recipe fails with runs going")
LUA
store=a.lmdb
"${LATHE[@]}" run sweep.lua --store $store --headless --workers 2 >/dev/null 2>&1
check tsan_two_workers 4
store=b.lmdb
script -qefc "${LATHE[*]@Q} run sweep.lua --store $store --headless --workers 2 >/dev/null" /dev/null >/dev/null 2>&1
check tsan_progress_reads_runs 4
store=p.lmdb
"${LATHE[@]}" run poll.lua --store $store --headless --workers 2 >/dev/null 2>&1
check tsan_handles_read_live 2
store=c.lmdb
"${LATHE[@]}" run fails.lua --store $store --headless --workers 2 >/dev/null 2>&1
check tsan_recipe_failure_stops_runs 1
"${LATHE[@]}" run sweep.lua --store d.lmdb --headless --workers 2 --set steps=100000000 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do "$ROOT/build/lathe" runs --store d.lmdb 2>/dev/null | grep -q running && break; sleep 0.1; done
sleep 1
kill -INT $pid
wait $pid
check tsan_sigint_sweep
store=s.lmdb
"${LATHE[@]}" run "$ROOT/tests/lua/stepneg.lua" --store $store --headless --threads 2 --set mode=value >/dev/null 2>&1
check tsan_rollout_shards 2
store=o.lmdb # lathe.sample on libuv's pool while a spawned run streams events
"${LATHE[@]}" run "$ROOT/tests/lua/offloop.lua" --store $store --headless --threads 1 --set bg_steps=3000 --set prompts=8 >/dev/null 2>&1
check tsan_sample_off_loop 2
store=t.lmdb # the nn core's parallel loops: a pool of two workers under one run
"${LATHE[@]}" run "$ROOT/tests/lua/threads.lua" --store $store --headless --threads 3 >/dev/null 2>&1
check tsan_parallel_loops 2
cat >two.lua <<'LUA'
lathe.run("sft", {dataset = "long", vocab = 300, steps = 1, ctx = 64, width = 64, heads = 4,
                  layers = 2, batch = 16}) -- the tokenizer, once
local hs = {}
for s = 1, 2 do
  hs[s] = lathe.spawn("sft", {dataset = "long", vocab = 300, steps = 15, ctx = 64, width = 64,
                              heads = 4, layers = 2, batch = 16, seed = s})
end
lathe.wait(hs)
LUA
"${LATHE[@]}" run two.lua --store $store --headless --threads 2 --workers 2 >/dev/null 2>&1
check tsan_parallel_loops_shared 5 # two runs' loops: one holds the pool, the other runs inline
echo "tsan: $pass passed, $fail failed"
[ $fail = 0 ]
