#!/usr/bin/env bash
# e2e.sh - end-to-end tests of the `lathe` binary: CLI, recipes, exact resume
# after SIGKILL, signals, bad input (listed in tests/README.md), the example
# user plugin. Prints one line per check and "e2e: N passed, N failed".
#   LATHE=build/lathe LATHE_PLUGIN_DIR=build/plugins bash tests/e2e.sh [FILTER]
set -u
LATHE=$(cd "$(dirname "${LATHE:-build/lathe}")" && pwd)/$(basename "${LATHE:-build/lathe}")
export LATHE_PLUGIN_DIR=$(cd "${LATHE_PLUGIN_DIR:-build/plugins}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/tests/lua
FILTER=${1:-}
KILLS=${LATHE_KILLS:-20}
WORK=$(mktemp -d /tmp/lathe-e2e-XXXXXX)
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
unset LATHE_STORE LATHE_PLUGIN_PATH
export LATHE_THREADS=1
pass=0
fail=0
skipped=0

ok() { pass=$((pass + 1)); printf 'ok   %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; }
skip() { skipped=$((skipped + 1)); printf 'skip %s (%s)\n' "$1" "$2"; }
want() { [ -z "$FILTER" ] || [[ "$1" == *"$FILTER"* ]]; }

# expect NAME CODE PATTERN -- CMD...: exit status CODE and stderr matching PATTERN
expect() {
  local name=$1 code=$2 pat=$3
  shift 4
  want "$name" || return 0
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ "$rc" != "$code" ]; then bad "$name" "exit $rc, want $code" "$(head -c 600 "$WORK/err")"
  elif [ -n "$pat" ] && ! grep -Eq -- "$pat" "$WORK/err" "$WORK/out"; then
    bad "$name" "output lacks /$pat/" "$(head -c 600 "$WORK/err")"
  else ok "$name"; fi
}

# saw NAME PATTERN: the last expect's output also holds PATTERN
saw() {
  want "$1" || return 0
  if grep -Eq -- "$2" "$WORK/err" "$WORK/out"; then ok "$1"; else bad "$1" "output lacks /$2/" "$(head -c 600 "$WORK/err")"; fi
}

# metric values of run $2 in store $1, without wall times
curve() { "$LATHE" metrics "$2" --store "$1" | cut -d, -f1-3 | grep -v '^perf/'; }
hash_of() { "$LATHE" show "$2" --store "$1" --json 2>/dev/null | sed -n 's/^  "ckpt_hash": *"\([0-9a-f]*\)".*/\1/p'; }
step_of() { "$LATHE" show "$2" --store "$1" --json 2>/dev/null | sed -n 's/^  "step": *\([0-9]*\).*/\1/p'; }
status_of() { "$LATHE" show "$2" --store "$1" --json 2>/dev/null | sed -n 's/^  "status": *"\([a-z]*\)".*/\1/p'; }

# ---- the command line ----
expect cli_no_args 2 "examples" -- "$LATHE"
expect cli_help 0 "" -- "$LATHE" help
expect cli_run_help 0 "examples" -- "$LATHE" run --help
expect cli_suggest 2 "did you mean 'run'" -- "$LATHE" runn
expect cli_bad_option 2 "unknown option '--bogus'" -- "$LATHE" runs --bogus
expect cli_missing_value 2 "needs a value" -- "$LATHE" run x.lua --threads
expect cli_bad_threads 2 "--threads wants" -- "$LATHE" run x.lua --threads 0
expect cli_version 0 "" -- "$LATHE" version
expect cli_doctor 0 "" -- "$LATHE" doctor
# what doctor says after lathe ran itself again with better OpenBLAS kernels
# (main.c: OpenBLAS fell back to old ones on a CPU model it does not know)
if want cli_doctor_blas_fallback; then
  LATHE_BLAS_FALLBACK=Prescott OPENBLAS_CORETYPE=Haswell "$LATHE" doctor |
    grep -q "it chose Prescott kernels .*OPENBLAS_CORETYPE=Haswell" && ok cli_doctor_blas_fallback ||
    bad cli_doctor_blas_fallback
fi
if want cli_doctor_content; then
  "$LATHE" doctor | grep -q "openblas .*threads" && "$LATHE" doctor | grep -q "^lmdb" &&
    ok cli_doctor_content || bad cli_doctor_content
fi
expect plugins_list 0 "" -- "$LATHE" plugins
if want plugins_list_has_regress; then
  "$LATHE" plugins | grep -q "^regress *algorithm" && ok plugins_list_has_regress || bad plugins_list_has_regress
fi
expect plugins_one 0 "" -- "$LATHE" plugins regress
expect plugins_unknown 5 "did you mean 'regress'" -- "$LATHE" plugins regres
expect runs_no_store 4 "no store at" -- "$LATHE" runs --store "$WORK/none.lmdb"

# ---- recipes ----
expect recipe_sweep 0 "" -- "$LATHE" run "$T/sweep.lua" --store s1.lmdb
if want recipe_sweep_output; then
  grep -q '"text":"sweep ok"' "$WORK/out" && ok recipe_sweep_output || bad recipe_sweep_output "$(tail -3 "$WORK/out")"
fi
if want headless_json_valid; then
  "$LATHE" run "$T/one.lua" --store hj.lmdb --headless >hj.out 2>/dev/null
  if python3 -c '
import json, sys
types = set()
for line in open(sys.argv[1]):
    o = json.loads(line); types.add(o["type"]); assert o["v"] == 1
assert {"start", "metric", "ckpt", "end", "print"} <= types, types
' hj.out; then ok headless_json_valid; else bad headless_json_valid; fi
fi
expect check_ok 0 "ok \(30 runs checked\)" -- "$LATHE" check "$ROOT/share/recipes/hlgauss_cartpole.lua"
expect check_rrm_recipes 0 "rrm_artifacts.lua: ok \(22 runs checked\)" -- "$LATHE" check "$ROOT/share/recipes/rrm_artifacts.lua"
if [ -d "$ROOT/share/data/preference" ]; then # shipped; a trimmed copy may lack it
  expect check_rrm_hh 0 "rrm_hh.lua: ok \(6 runs checked\)" -- "$LATHE" check "$ROOT/share/recipes/rrm_hh.lua"
elif want check_rrm_hh; then skip check_rrm_hh "no share/data/preference"; fi
# every shipped recipe passes `lathe check` (nothing printed but the verdict)
for r in "$ROOT"/share/recipes/*.lua; do
  want "check_recipe_$(basename "$r" .lua)" || continue
  "$LATHE" check "$r" >cr.out 2>cr.err; rc=$?
  if [ $rc = 0 ] && grep -Eq "ok \([0-9]+ runs checked\)" cr.err && [ ! -s cr.out ] &&
     ! grep -qi 'nan\|figure' cr.out cr.err; then ok "check_recipe_$(basename "$r" .lua)"
  else bad "check_recipe_$(basename "$r" .lua)" "exit $rc" "$(head -c 400 cr.err) $(head -c 200 cr.out)"; fi
done
expect check_cross_keys 3 "badcross.lua:1: dqn: v_min = 100 must be below v_max = 0" -- "$LATHE" check "$T/badcross.lua"
expect run_cross_keys 3 "dqn: v_min = 100 must be below v_max = 0" -- "$LATHE" run "$T/badcross.lua" --store bad.lmdb
expect check_bad_key 3 "unknown config key 'stpes' \(did you mean 'steps'\?\)" -- "$LATHE" check "$T/badkey.lua"
if want check_writes_nothing; then
  [ ! -e lathe.lmdb ] && ok check_writes_nothing || bad check_writes_nothing
fi
expect recipe_syntax 3 "syntax.lua:1:" -- "$LATHE" run "$T/syntax.lua" --store bad.lmdb
expect recipe_runtime 1 "runtime.lua:2: attempt to index a nil value" -- "$LATHE" run "$T/runtime.lua" --store bad.lmdb
if want recipe_runtime_traceback; then
  grep -q "stack traceback:" "$WORK/err" && grep -q "runtime.lua:3: in main chunk" "$WORK/err" &&
    ok recipe_runtime_traceback || bad recipe_runtime_traceback "$(cat "$WORK/err")"
fi
expect recipe_bad_key 3 "badkey.lua:1: regress: unknown config key 'stpes'" -- "$LATHE" run "$T/badkey.lua" --store bad.lmdb
expect recipe_bad_type 3 "badtype.lua:1: regress: steps = 'many' is not an integer" -- "$LATHE" run "$T/badtype.lua" --store bad.lmdb
expect recipe_bad_range 3 "lr = -1 is out of range" -- "$LATHE" run "$T/badrange.lua" --store bad.lmdb
expect recipe_bad_choice 3 "is not one of relu\|gelu\|tanh\|silu" -- "$LATHE" run "$T/badchoice.lua" --store bad.lmdb
expect recipe_no_plugin 5 "no plugin 'regres' \(did you mean 'regress'\?\)" -- "$LATHE" run "$T/noplugin.lua" --store bad.lmdb
expect recipe_missing 3 "cannot open recipe" -- "$LATHE" run "$WORK/nope.lua" --store bad.lmdb
expect set_unknown 3 "--set stepz=5: .*did you mean 'steps'" -- "$LATHE" run "$T/one.lua" --store bad.lmdb --set stepz=5
expect set_bad_value 3 "--set regress.lr=abc" -- "$LATHE" run "$T/one.lua" --store bad.lmdb --set regress.lr=abc
expect set_unused 3 "--set other.x=1: no run" -- "$LATHE" run "$T/one.lua" --store bad.lmdb --set other.x=1 --set steps=20
expect run_fail 1 "injected failure at step 7" -- "$LATHE" run "$T/one.lua" --store f.lmdb --set fail_at=7
if want run_fail_status; then
  [ "$(status_of f.lmdb 1)" = failed ] && ok run_fail_status || bad run_fail_status "$(status_of f.lmdb 1)"
fi
expect run_diverged 6 "diverged: non-finite metric at step 150; the last finite checkpoint is at step 100" -- \
  "$LATHE" run "$T/one.lua" --store nan.lmdb --set nan_at=150
if want diverged_keeps_finite_ckpt; then
  "$LATHE" show 1 --store nan.lmdb --json >nan.json
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "diverged" and r["step"] == 150, r
assert [c["step"] for c in r["checkpoints"]] == [100], r["checkpoints"]' nan.json &&
    ok diverged_keeps_finite_ckpt || bad diverged_keeps_finite_ckpt "$(head -c 300 nan.json)"
fi

expect recipe_env 0 "env ok" -- "$LATHE" run "$T/env.lua" --store env.lmdb

# ---- determinism: same recipe, seed, threads -> identical curves ----
if want determinism; then
  "$LATHE" run "$T/one.lua" --store d1.lmdb --set steps=400 >/dev/null 2>&1
  "$LATHE" run "$T/one.lua" --store d2.lmdb --set steps=400 >/dev/null 2>&1
  "$LATHE" run "$T/one.lua" --store d3.lmdb --set steps=400 --seed 5 >/dev/null 2>&1
  if [ -n "$(curve d1.lmdb 1)" ] && [ "$(curve d1.lmdb 1)" = "$(curve d2.lmdb 1)" ] &&
     [ "$(hash_of d1.lmdb 1)" = "$(hash_of d2.lmdb 1)" ] && [ "$(curve d1.lmdb 1)" != "$(curve d3.lmdb 1)" ]; then
    ok determinism
  else bad determinism; fi
fi

# ---- results do not depend on how many workers step the runs ----
if want workers_same_results; then
  "$LATHE" run "$T/sweep_dqn.lua" --store w1.lmdb --workers 1 >/dev/null 2>&1
  "$LATHE" run "$T/sweep_dqn.lua" --store w2.lmdb --workers 2 >/dev/null 2>&1
  same=1
  for id in 1 2 3 4; do
    [ -n "$(curve w1.lmdb $id)" ] && [ "$(curve w1.lmdb $id)" = "$(curve w2.lmdb $id)" ] &&
      [ "$(hash_of w1.lmdb $id)" = "$(hash_of w2.lmdb $id)" ] || same=0
  done
  [ $same = 1 ] && ok workers_same_results || bad workers_same_results
fi
if want resume_many; then # SIGTERM a sweep, resume all its runs in one process
  [ -d w1.lmdb ] || "$LATHE" run "$T/sweep_dqn.lua" --store w1.lmdb >/dev/null 2>&1
  LATHE_TEST_KILL=1:300:term "$LATHE" run "$T/sweep_dqn.lua" --store rm4.lmdb --workers 2 >/dev/null 2>&1
  rc=$?
  "$LATHE" resume 1 2 3 4 --store rm4.lmdb --workers 2 >/dev/null 2>rm4.err; rc2=$?
  same=1
  for id in 1 2 3 4; do
    [ "$(curve w1.lmdb $id)" = "$(curve rm4.lmdb $id)" ] && [ "$(hash_of w1.lmdb $id)" = "$(hash_of rm4.lmdb $id)" ] || same=0
  done
  [ $rc = 143 ] && [ $rc2 = 0 ] && [ $same = 1 ] && ok resume_many || bad resume_many "exits $rc $rc2" "$(cat rm4.err)"
fi

# ---- Open MPI (workbench/cluster.h): ranks over TCP, as separate hosts use ----
# Each mpirun is the path a cluster takes: rank 0 runs the recipe and owns the
# store, the other ranks step its runs. Results must not depend on the ranks.
MPI_SO=$(dirname "$LATHE")/liblathe-mpi.so
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# (Open MPI keeps its own allocations to exit: no leak report under ASan)
MPIRUN="env ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe --mca btl tcp,self"
if ! command -v mpirun >/dev/null || [ ! -f "$MPI_SO" ]; then
  for t in mpi_doctor mpi_sweep_np2 mpi_sweep_np3 mpi_store_services mpi_worker_killed \
           mpi_rank0_killed mpi_signal_rank0 mpi_dataset_from_worker mpi_dp_text mpi_dp_rm mpi_dp_onpolicy mpi_dp_batch \
           mpi_dp_shard_killed mpi_dp_signal; do want $t && skip $t "Open MPI or liblathe-mpi.so not built"; done
else
  expect mpi_doctor 0 "^mpi +Open MPI" -- "$LATHE" doctor
  if want mpi_sweep; then # 6 runs without MPI, then on 2 and on 3 ranks (2 slots on 2 cores)
    "$LATHE" run "$T/sweep_dqn.lua" --store m_ref.lmdb --set runs=6 >/dev/null 2>&1
    for np in 2 3; do
      $MPIRUN -np $np "$LATHE" run "$T/sweep_dqn.lua" --store m_np$np.lmdb --set runs=6 --mpi \
        >m_np$np.out 2>m_np$np.err
      rc=$? same=1
      for id in 1 2 3 4 5 6; do
        [ -n "$(curve m_ref.lmdb $id)" ] && [ "$(curve m_ref.lmdb $id)" = "$(curve m_np$np.lmdb $id)" ] &&
          [ "$(hash_of m_ref.lmdb $id)" = "$(hash_of m_np$np.lmdb $id)" ] || same=0
      done
      # rank 0's JSON lines carry every run's events
      ends=$(grep -c '"type":"end"' m_np$np.out)
      [ $rc = 0 ] && [ $same = 1 ] && [ "$ends" = 6 ] && ok mpi_sweep_np$np ||
        bad mpi_sweep_np$np "exit $rc, same $same, $ends end events" "$(tail -c 600 m_np$np.err)"
    done
  fi
  if want mpi_store_services; then # datasets, another run's checkpoint, a dataset written by a run
    for st in ms_ref ms_mpi; do
      pre=""; [ $st = ms_mpi ] && pre="$MPIRUN -np 2"
      post=""; [ $st = ms_mpi ] && post="--mpi"
      $pre "$LATHE" run "$T/sft.lua" --store $st.lmdb --set steps=60 $post >/dev/null 2>$st.err &&
        $pre "$LATHE" run "$T/text.lua" --store $st.lmdb $post >/dev/null 2>>$st.err
      echo $? >$st.rc
    done
    same=1
    for id in 1 2 3; do
      [ -n "$(curve ms_ref.lmdb $id)" ] && [ "$(curve ms_ref.lmdb $id)" = "$(curve ms_mpi.lmdb $id)" ] || same=0
    done
    [ "$(cat ms_ref.rc)" = 0 ] && [ "$(cat ms_mpi.rc)" = 0 ] && [ $same = 1 ] && ok mpi_store_services ||
      bad mpi_store_services "exits $(cat ms_ref.rc) $(cat ms_mpi.rc), same $same" "$(tail -c 600 ms_mpi.err)"
  fi
  # RRM on rank 1 writes its augmented dataset through rank 0 (a run's dataset_create)
  if want mpi_dataset_from_worker; then
    $MPIRUN -np 2 "$LATHE" run "$T/rm.lua" --set mode=rrm --store mdw.lmdb --mpi --threads 1 \
      >/dev/null 2>mdw.err
    expect mpi_dataset_from_worker 0 "^rrm-2 +prefs +[0-9]+ +run 2" -- "$LATHE" data ls --store mdw.lmdb
  fi
  if want mpi_worker_killed; then # rank 2 dies stepping run 1; the job ends; resume on 2 ranks
    [ -d m_ref.lmdb ] || "$LATHE" run "$T/sweep_dqn.lua" --store m_ref.lmdb --set runs=6 >/dev/null 2>&1
    LATHE_TEST_KILL=1:3000 $MPIRUN -np 3 "$LATHE" run "$T/sweep_dqn.lua" --store mk.lmdb --set runs=6 \
      --mpi >/dev/null 2>mk.err
    rc=$?
    left=$(for id in 1 2 3 4 5 6; do [ "$(status_of mk.lmdb $id)" = done ] || echo $id; done | tr '\n' ' ')
    $MPIRUN -np 2 "$LATHE" resume $left --store mk.lmdb --mpi >/dev/null 2>mk2.err
    rc2=$? same=1
    for id in 1 2 3 4 5 6; do
      [ "$(curve m_ref.lmdb $id)" = "$(curve mk.lmdb $id)" ] && [ "$(hash_of m_ref.lmdb $id)" = "$(hash_of mk.lmdb $id)" ] || same=0
    done
    [ $rc != 0 ] && [ -n "$left" ] && [ $rc2 = 0 ] && [ $same = 1 ] && ok mpi_worker_killed ||
      bad mpi_worker_killed "exits $rc $rc2, resumed '$left', same $same" "$(tail -c 600 mk2.err)"
  fi
  if want mpi_rank0_killed; then # rank 0 dies inside a store write; the store is clean; resume without MPI
    [ -d m_ref.lmdb ] || "$LATHE" run "$T/sweep_dqn.lua" --store m_ref.lmdb --set runs=6 >/dev/null 2>&1
    LATHE_TEST_KILL=2:5000:write $MPIRUN -np 3 "$LATHE" run "$T/sweep_dqn.lua" --store m0.lmdb \
      --set runs=6 --mpi >/dev/null 2>m0.err
    rc=$?
    "$LATHE" store check --store m0.lmdb >/dev/null 2>&1; clean=$?
    left=$(for id in 1 2 3 4 5 6; do [ "$(status_of m0.lmdb $id)" = done ] || echo $id; done | tr '\n' ' ')
    "$LATHE" resume $left --store m0.lmdb --workers 2 >/dev/null 2>m02.err
    rc2=$? same=1
    for id in 1 2 3 4 5 6; do
      [ "$(curve m_ref.lmdb $id)" = "$(curve m0.lmdb $id)" ] && [ "$(hash_of m_ref.lmdb $id)" = "$(hash_of m0.lmdb $id)" ] || same=0
    done
    [ $rc != 0 ] && [ $clean = 0 ] && [ -n "$left" ] && [ $rc2 = 0 ] && [ $same = 1 ] && ok mpi_rank0_killed ||
      bad mpi_rank0_killed "exits $rc $rc2, clean $clean, resumed '$left', same $same" "$(tail -c 600 m02.err)"
  fi
  if want mpi_signal_rank0; then # SIGTERM to rank 0: every run on every rank checkpoints; exit 143
    "$LATHE" run "$T/sweep_dqn.lua" --store msig_ref.lmdb --set runs=2 --set dqn.total_timesteps=60000 \
      >/dev/null 2>&1
    $MPIRUN -np 2 "$LATHE" run "$T/sweep_dqn.lua" --store mt.lmdb --set runs=2 \
      --set dqn.total_timesteps=60000 --mpi >/dev/null 2>mt.err &
    job=$!
    for i in $(seq 300); do [ "$(step_of mt.lmdb 1 2>/dev/null)" -ge 2000 ] 2>/dev/null && break; sleep 0.05; done
    rank0=$(for p in $(pgrep -x lathe); do
      tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=0' && echo $p; done | head -1)
    [ -n "$rank0" ] && kill -TERM $rank0
    wait $job; rc=$?
    sts="$(status_of mt.lmdb 1) $(status_of mt.lmdb 2)"
    left=$(for id in 1 2; do [ "$(status_of mt.lmdb $id)" = done ] || echo $id; done | tr '\n' ' ')
    "$LATHE" resume $left --store mt.lmdb >/dev/null 2>mt2.err; rc2=$? same=1
    for id in 1 2; do
      [ "$(curve msig_ref.lmdb $id)" = "$(curve mt.lmdb $id)" ] && [ "$(hash_of msig_ref.lmdb $id)" = "$(hash_of mt.lmdb $id)" ] || same=0
    done
    [ $rc = 143 ] && [[ "$sts" != *running* ]] && [[ "$sts" == *interrupted* ]] && [ $rc2 = 0 ] && [ $same = 1 ] &&
      ok mpi_signal_rank0 || bad mpi_signal_rank0 "exits $rc $rc2, statuses '$sts', same $same" "$(tail -c 400 mt.err)"
  fi
fi
# data parallelism: within how much a 2-shard run's continuous metrics must
# equal one process's (relative to max(1, |value|)); measured below 2e-7 here, the
# float rounding of summing each batch in two halves (tests/README.md)
DP_TOL=1e-4
near() { # near A.lmdb B.lmdb RUN METRIC...: every point of the metrics within DP_TOL
  local run=$1 a=$2 b=$3; shift 3
  local pat; pat="^($(echo "$*" | tr ' ' '|')),"
  paste -d' ' <(curve "$a" "$run" | grep -E "$pat") <(curve "$b" "$run" | grep -E "$pat") |
    awk -v tol=$DP_TOL '{ split($1, x, ","); split($2, y, ","); n++
      if (x[1] != y[1] || x[2] != y[2]) { bad = 1; next }
      d = x[3] - y[3]; if (d < 0) d = -d; m = x[3] < 0 ? -x[3] : x[3]; if (m < 1) m = 1
      if (d / m > tol) bad = 1 }
      END { exit bad || n == 0 }'
}
if command -v mpirun >/dev/null && [ -f "$MPI_SO" ]; then
  DP="--mpi --data-parallel --threads 1"
  if want mpi_dp_text; then # SFT, then offline DPO from it: 2 shards twice, and one process
    "$LATHE" run "$T/sft.lua" --store dpt_ref.lmdb --set steps=60 --threads 1 >/dev/null 2>&1 &&
      "$LATHE" run "$T/text.lua" --store dpt_ref.lmdb --threads 1 >/dev/null 2>&1
    rc=$?
    for k in 1 2; do
      $MPIRUN -np 2 "$LATHE" run "$T/sft.lua" --store dpt$k.lmdb --set steps=60 $DP >/dev/null 2>dpt$k.err &&
        $MPIRUN -np 2 "$LATHE" run "$T/text.lua" --store dpt$k.lmdb $DP >/dev/null 2>>dpt$k.err
      rc="$rc $?"
    done
    same=1 close=1
    for id in 1 2 3; do
      [ -n "$(curve dpt1.lmdb $id)" ] && [ "$(curve dpt1.lmdb $id)" = "$(curve dpt2.lmdb $id)" ] &&
        [ "$(hash_of dpt1.lmdb $id)" = "$(hash_of dpt2.lmdb $id)" ] || same=0
      near $id dpt_ref.lmdb dpt1.lmdb loss eval/loss || close=0
    done
    [ "$rc" = "0 0 0" ] && [ $same = 1 ] && [ $close = 1 ] && ok mpi_dp_text ||
      bad mpi_dp_text "exits $rc, repeats $same, near one process $close" "$(tail -c 600 dpt1.err)"
  fi
  if want mpi_dp_rm; then # rm, then RRM filtered by it (and lathe.score): 2 shards and one process
    "$LATHE" run "$T/rm.lua" --set mode=rrm --store dpr_ref.lmdb --threads 1 >dpr_ref.out 2>&1
    rc=$?
    $MPIRUN -np 2 "$LATHE" run "$T/rm.lua" --set mode=rrm --store dpr.lmdb $DP >dpr.out 2>dpr.err
    rc="$rc $?" close=1
    for id in 1 2; do near $id dpr_ref.lmdb dpr.lmdb train/loss || close=0; done
    # rrm's augmented dataset is written once, by shard 0
    n=$("$LATHE" data ls --store dpr.lmdb 2>/dev/null | grep -c "^rrm-2 ")
    [ "$rc" = "0 0" ] && [ $close = 1 ] && [ "$n" = 1 ] && ok mpi_dp_rm ||
      bad mpi_dp_rm "exits $rc, near one process $close, rrm datasets $n" "$(tail -c 600 dpr.err)"
  fi
  if want mpi_dp_onpolicy; then # on-policy DPO with a reward model, and PPO on a task (its
    # reference fitted first), each shard sampling its prompts: they repeat exactly
    for k in 1 2; do
      $MPIRUN -np 2 "$LATHE" run "$T/rm.lua" --set mode=dpo --store dpo$k.lmdb $DP >/dev/null 2>dpo$k.err &&
        $MPIRUN -np 2 "$LATHE" run "$T/pref.lua" --set method=ppo --store dpo$k.lmdb $DP >/dev/null 2>>dpo$k.err
      echo $? >dpo$k.rc
    done
    same=1
    for id in 1 2 3 4; do
      [ -n "$(curve dpo1.lmdb $id)" ] && [ "$(curve dpo1.lmdb $id)" = "$(curve dpo2.lmdb $id)" ] &&
        [ "$(hash_of dpo1.lmdb $id)" = "$(hash_of dpo2.lmdb $id)" ] || same=0
    done
    [ "$(cat dpo1.rc) $(cat dpo2.rc)" = "0 0" ] && [ $same = 1 ] && ok mpi_dp_onpolicy ||
      bad mpi_dp_onpolicy "exits $(cat dpo1.rc) $(cat dpo2.rc), same $same" "$(tail -c 600 dpo1.err)"
  fi
  # a batch of 8 on 3 shards: the run fails saying so (the recipe's assert: exit 1)
  expect mpi_dp_batch 1 "batch 8 does not split over 3 data-parallel shards" -- \
    $MPIRUN -np 3 "$LATHE" run "$T/sft.lua" --store dpb.lmdb --set steps=20 $DP
  if want mpi_dp_shard_killed; then # shard 1 dies at step 130 (checkpoints every 50); resume on 2
    $MPIRUN -np 2 "$LATHE" run "$T/sft.lua" --store dpk_ref.lmdb --set steps=200 --set every=50 $DP \
      >/dev/null 2>&1
    LATHE_TEST_KILL=1:130:shard $MPIRUN -np 2 "$LATHE" run "$T/sft.lua" --store dpk.lmdb \
      --set steps=200 --set every=50 $DP >/dev/null 2>dpk.err
    rc=$? st=$(status_of dpk.lmdb 1)
    $MPIRUN -np 2 "$LATHE" resume 1 --store dpk.lmdb $DP >/dev/null 2>dpk2.err
    rc2=$?
    [ $rc != 0 ] && [ "$st" != done ] && [ $rc2 = 0 ] && [ "$(curve dpk_ref.lmdb 1)" = "$(curve dpk.lmdb 1)" ] &&
      [ "$(hash_of dpk_ref.lmdb 1)" = "$(hash_of dpk.lmdb 1)" ] && ok mpi_dp_shard_killed ||
      bad mpi_dp_shard_killed "exits $rc $rc2, status '$st'" "$(tail -c 600 dpk2.err)"
  fi
  if want mpi_dp_signal; then # SIGTERM at step 130: exit 143, interrupted; resume on 2 shards, and on 1
    [ -d dpk_ref.lmdb ] || $MPIRUN -np 2 "$LATHE" run "$T/sft.lua" --store dpk_ref.lmdb --set steps=200 \
      --set every=50 $DP >/dev/null 2>&1
    for k in 2 1; do
      LATHE_TEST_KILL=1:130:term $MPIRUN -np 2 "$LATHE" run "$T/sft.lua" --store dps$k.lmdb \
        --set steps=200 --set every=50 $DP >/dev/null 2>dps$k.err
      echo $? >dps$k.rc
    done
    st=$(status_of dps2.lmdb 1)
    $MPIRUN -np 2 "$LATHE" resume 1 --store dps2.lmdb $DP >/dev/null 2>dps2b.err; rc2=$?
    "$LATHE" resume 1 --store dps1.lmdb --threads 1 >/dev/null 2>dps1b.err; rc1=$?
    [ "$(cat dps2.rc)" = 143 ] && [ "$st" = interrupted ] && [ $rc2 = 0 ] && [ $rc1 = 0 ] &&
      [ "$(curve dpk_ref.lmdb 1)" = "$(curve dps2.lmdb 1)" ] &&
      [ "$(hash_of dpk_ref.lmdb 1)" = "$(hash_of dps2.lmdb 1)" ] && near 1 dpk_ref.lmdb dps1.lmdb loss eval/loss &&
      ok mpi_dp_signal || bad mpi_dp_signal "exits $(cat dps2.rc) $rc2 $rc1, status '$st'" "$(tail -c 600 dps2b.err)"
  fi
fi
expect mpi_dp_needs_mpi 2 "--data-parallel goes with --mpi" -- "$LATHE" run "$T/one.lua" --store nm.lmdb --data-parallel
mkdir -p nompi && cp "$LATHE" nompi/ && cp "$(dirname "$LATHE")"/liblathe-nn.so nompi/ 2>/dev/null
expect mpi_not_built 2 "built without Open MPI" -- nompi/lathe run "$T/one.lua" --store nm.lmdb --mpi

# ---- exact resume after SIGKILL at random steps ----
# kill_resume NAME TOTAL RECIPE ARGS...: the run (TOTAL steps) is killed with
# SIGKILL exactly $KILLS times, at random target steps spread over its first
# 95%, whatever the machine's speed: the process kills itself
# (LATHE_TEST_KILL=RUN:STEP[:write], workbench/run.c) right after computing
# the target step, or, for about half the targets, inside the first store
# write at or after it (a metrics flush or a checkpoint, before it commits).
# Each kill is followed by `lathe resume`; the end must be bit-identical to a
# run never stopped.
# KR_RUN: the run killed (default 1; a recipe may make others before it).
kill_resume() {
  local name=$1 total=$2 recipe=$3 run=${KR_RUN:-1}
  shift 3
  want "$name" || return 0
  rm -rf ref_$name.lmdb k_$name.lmdb
  "$LATHE" run "$recipe" --store ref_$name.lmdb "$@" >/dev/null 2>&1
  RANDOM=7
  local targets kills=0 first=1 target rc mode
  targets=$(for i in $(seq "$KILLS"); do echo $((RANDOM * 32768 + RANDOM)); done |
            awk -v t=$total '{print 1 + int(($1 % 1000000) / 1000000 * (t * 0.95 - 1))}' | sort -n)
  for target in $targets; do
    mode=""; [ $((RANDOM % 2)) = 1 ] && mode=":write"
    { # (the braces keep bash's "Killed" notice off the output)
      if [ $first = 1 ]; then LATHE_TEST_KILL=$run:$target$mode "$LATHE" run "$recipe" --store k_$name.lmdb "$@" >/dev/null 2>k.err
      else LATHE_TEST_KILL=$run:$target$mode "$LATHE" resume $run --store k_$name.lmdb >/dev/null 2>>k.err; fi
      rc=$?
    } 2>/dev/null
    first=0
    [ $rc = 137 ] && kills=$((kills + 1))
  done
  while [ "$(status_of k_$name.lmdb $run)" != done ]; do
    "$LATHE" resume $run --store k_$name.lmdb >/dev/null 2>>k.err || break
  done
  if [ "$kills" = "$KILLS" ] && [ "$(curve ref_$name.lmdb $run)" = "$(curve k_$name.lmdb $run)" ] &&
     [ -n "$(hash_of k_$name.lmdb $run)" ] && [ "$(hash_of ref_$name.lmdb $run)" = "$(hash_of k_$name.lmdb $run)" ]; then
    ok "$name ($kills kills)"
  else
    bad "$name" "kills=$kills status=$(status_of k_$name.lmdb $run) ref=$(hash_of ref_$name.lmdb $run) got=$(hash_of k_$name.lmdb $run)" \
      "$(diff <(curve ref_$name.lmdb $run) <(curve k_$name.lmdb $run) | head -5)" "$(tail -3 k.err)"
  fi
}
kill_resume resume_after_sigkill 3000 "$T/one.lua" --set steps=3000 --set hidden=128 --set batch=128 --set every=25
kill_resume dqn_resume_after_sigkill 40000 "$T/dqn.lua" --set head=hl_gauss --set steps=40000 --set every=500
kill_resume pref_resume_after_sigkill 200 "$T/pref.lua" --set method=ppo --set targs=reward=r1 --set every=7
kill_resume sft_resume_after_sigkill 1500 "$T/sft.lua" --set steps=1500 --set every=7
kill_resume pref_offline_resume_after_sigkill 200 "$T/pref.lua" --set on=false --set every=7
kill_resume calql_resume_after_sigkill 1000 "$T/calql.lua" --set mode=maze --set every=37
kill_resume calql_hlgauss_resume_after_sigkill 1000 "$T/calql.lua" --set mode=maze --set every=41 \
  --set head=hl_gauss --set algo=cql
kill_resume rm_pairwise_resume_after_sigkill 60 "$T/rm.lua" --set type=pairwise --set epochs=0 \
  --set steps=60 --set every=3
KR_RUN=3 kill_resume pref_reward_run_resume_after_sigkill 40 "$T/rm.lua" --set mode=dpo \
  --set dpo_steps=40 --set every=3
KR_RUN=2 kill_resume pref_proxy_resume_after_sigkill 180 "$T/rm.lua" --set mode=proxy --set every=7
KR_RUN=2 kill_resume stepvalue_resume_after_sigkill 6 "$T/stepneg.lua" --set mode=value --set every=1
KR_RUN=2 kill_resume factqa_resume_after_sigkill 12 "$T/facts.lua" --set mode=fam --set every=1
KR_RUN=7 kill_resume factrl_resume_after_sigkill 6 "$T/facts.lua" --set every=1 --set rlform=negation
KR_RUN=3 kill_resume stepneg_resume_after_sigkill 30 "$T/stepneg.lua" --set method=awr --set steps=30 --set every=4
KR_RUN=2 kill_resume pr2l_resume_after_sigkill 12 "$T/pr2l.lua" --set every=1
KR_RUN=2 kill_resume archer_resume_after_sigkill 6 "$T/archer.lua" --set every=1
KR_RUN=2 kill_resume archer_fbc_resume_after_sigkill 6 "$T/archer.lua" --set every=1 --set method=filtered_bc
KR_RUN=2 kill_resume archer_ppo_resume_after_sigkill 6 "$T/archer.lua" --set every=1 --set method=ppo
KR_RUN=2 kill_resume archer_hl_resume_after_sigkill 6 "$T/archer.lua" --set every=1 --set head=hl_gauss --set cinit=policy
KR_RUN=2 kill_resume rrm_resume_after_sigkill 150 "$T/rm.lua" --set mode=rrm --set epochs=0 \
  --set steps=150 --set every=7

# ---- damaged checkpoints, per plugin: each run is killed halfway (a resumable
# run with at least two checkpoints), then its newest checkpoint is truncated,
# has one bit flipped, or has random bytes overwritten with the checksum made
# to match (lathe-tamper). A truncated or flipped checkpoint is refused before
# load() with a message naming the run and the way back (--from-checkpoint),
# and that way back ends bit-identical to the run never stopped; forged bytes
# must be refused by load() or run on, never crash (exit < 128, no sanitizer
# report). ----
TAMPER=$(dirname "$LATHE")/lathe-tamper
ckpt_damage() { # NAME RUN KILLSTEP RECIPE ARGS...
  local name=$1 run=$2 at=$3 recipe=$4 ok=1 why="" rc prev
  shift 4
  want "ckpt_damage_$name" || return 0
  [ -x "$TAMPER" ] || { skip "ckpt_damage_$name" "no $TAMPER"; return 0; }
  rm -rf cd_$name.lmdb
  { LATHE_TEST_KILL=$run:$at "$LATHE" run "$recipe" --store cd_$name.lmdb "$@" >/dev/null 2>&1; } 2>/dev/null
  for mode in truncate flip; do
    rm -rf cdm.lmdb && cp -r cd_$name.lmdb cdm.lmdb
    if [ $mode = truncate ]; then "$TAMPER" cdm.lmdb $run truncate 64 || ok=0
    else "$TAMPER" cdm.lmdb $run flip $((RANDOM * 32768 + RANDOM)) || ok=0; fi
    "$LATHE" resume $run --store cdm.lmdb >/dev/null 2>cdm.err; rc=$?
    if [ $rc != 1 ] || ! grep -q "run $run: the checkpoint at step [0-9]* is .*damaged" cdm.err; then
      ok=0 why="$why $mode: exit $rc $(head -c 300 cdm.err);"
    fi
    prev=$(sed -n 's/.*--from-checkpoint \([0-9]*\).*/\1/p' cdm.err | head -1)
    if [ -z "$prev" ]; then ok=0 why="$why $mode: no way back named;"
    elif ! "$LATHE" resume $run --store cdm.lmdb --from-checkpoint "$prev" >/dev/null 2>cdm.err; then
      ok=0 why="$why $mode: --from-checkpoint $prev failed: $(head -c 200 cdm.err);"
    elif [ -d ref_$name.lmdb ] && [ "$(hash_of ref_$name.lmdb $run)" != "$(hash_of cdm.lmdb $run)" ]; then
      ok=0 why="$why $mode: the way back differs from the run never stopped;"
    fi
  done
  for seed in 1 2 3 4 5 6; do
    rm -rf cdm.lmdb && cp -r cd_$name.lmdb cdm.lmdb
    "$TAMPER" cdm.lmdb $run forge $seed 8 || ok=0
    "$LATHE" resume $run --store cdm.lmdb >/dev/null 2>cdm.err; rc=$?
    if [ $rc -ge 128 ] || grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" cdm.err; then
      ok=0 why="$why forge $seed: exit $rc $(grep -m2 'Sanitizer\|runtime error' cdm.err);"
    fi
  done
  [ $ok = 1 ] && ok "ckpt_damage_$name" || bad "ckpt_damage_$name" "$why"
}
ckpt_damage resume_after_sigkill 1 1000 "$T/one.lua" --set steps=3000 --set hidden=128 --set batch=128 --set every=25
ckpt_damage dqn_resume_after_sigkill 1 5000 "$T/dqn.lua" --set head=hl_gauss --set steps=40000 --set every=500
ckpt_damage pref_resume_after_sigkill 1 100 "$T/pref.lua" --set method=ppo --set targs=reward=r1 --set every=7
ckpt_damage sft_resume_after_sigkill 1 300 "$T/sft.lua" --set steps=1500 --set every=7
ckpt_damage pref_offline_resume_after_sigkill 1 100 "$T/pref.lua" --set on=false --set every=7
ckpt_damage calql_resume_after_sigkill 1 500 "$T/calql.lua" --set mode=maze --set every=37
ckpt_damage rm_pairwise_resume_after_sigkill 1 30 "$T/rm.lua" --set type=pairwise --set epochs=0 \
  --set steps=60 --set every=3
ckpt_damage rrm_resume_after_sigkill 2 70 "$T/rm.lua" --set mode=rrm --set epochs=0 --set steps=150 \
  --set every=7
ckpt_damage stepvalue_resume_after_sigkill 2 4 "$T/stepneg.lua" --set mode=value --set every=1
ckpt_damage factqa_resume_after_sigkill 2 6 "$T/facts.lua" --set mode=fam --set every=1
ckpt_damage factrl_resume_after_sigkill 7 3 "$T/facts.lua" --set every=1 --set rlform=negation
ckpt_damage pr2l_resume_after_sigkill 2 6 "$T/pr2l.lua" --set every=1
ckpt_damage archer_resume_after_sigkill 2 3 "$T/archer.lua" --set every=1
ckpt_damage stepneg_resume_after_sigkill 3 20 "$T/stepneg.lua" --set method=awr --set steps=30 --set every=4

# ref.lmdb: the never-stopped 3000-step run the signal and store tests compare with
if [ -d ref_resume_after_sigkill.lmdb ]; then cp -r ref_resume_after_sigkill.lmdb ref.lmdb
else "$LATHE" run "$T/one.lua" --store ref.lmdb --set steps=3000 --set hidden=128 --set batch=128 \
  --set every=25 >/dev/null 2>&1; fi

# ---- preference fine-tuning: on the bandit whose optimum the reference finds
# likely (R2), on-policy DPO at least doubles the reference's reward within
# 1000 reward queries (100 gradient steps), seed 1 ----
expect pref_onpolicy_dpo_learns 0 "sampled.{1,2}[0-9]+ " -- "$LATHE" run "$T/pref.lua" --store pl.lmdb --set need=2 --set sample=true
expect pref_bad_task 1 "no plugin 'nope'" -- "$LATHE" run "$T/pref.lua" --store pl.lmdb --set task=nope
if want pref_test_split; then # held-out pairs split into validation (eval/) and test (test/)
  "$LATHE" run "$T/sft.lua" --store tsp.lmdb --set steps=20 >/dev/null 2>&1
  "$LATHE" run "$T/pref_split.lua" --store tsp.lmdb >tsp.out 2>tsp.err &&
    "$LATHE" run "$T/pref_split.lua" --store tsp.lmdb --set ts=0 >>tsp.out 2>>tsp.err &&
    grep -q 'held-out pairs ([0-9]* of them the test split)' tsp.out && ok pref_test_split ||
    bad pref_test_split "" "$(tail -c 400 tsp.err)"
fi
if want threads_same_checkpoint; then # the nn core's parallel loops: the same bits at any count
  res=""
  for t in 1 2 3; do
    "$LATHE" run "$T/threads.lua" --store thr$t.lmdb --threads $t >/dev/null 2>thr$t.err || res="$res fail$t"
    res="$res $(hash_of thr$t.lmdb 1)/$(hash_of thr$t.lmdb 2)"
  done
  read -r -a h <<<"$res"
  [ ${#h[@]} = 3 ] && [ "${h[0]}" = "${h[1]}" ] && [ "${h[0]}" = "${h[2]}" ] &&
    [ "${h[0]#/}" = "${h[0]}" ] && [ "${h[0]%/}" = "${h[0]}" ] &&
    ok threads_same_checkpoint || bad threads_same_checkpoint "checkpoints at 1, 2, 3 threads:$res" \
    "$(tail -c 400 thr3.err)"
fi
expect pref_not_a_task 1 "'cartpole' is not a task \(its kind is environment\)" -- "$LATHE" run "$T/pref.lua" --store pl.lmdb --set task=cartpole --set targs=
expect pref_ppo_offline 3 "ppo needs onpolicy = true" -- "$LATHE" run "$T/pref.lua" --store pl.lmdb --set method=ppo --set on=false

# ---- reward models on the synthetic preference world: the plain model fits
# the training labels (through the artifact); RRM, filtered by it, relies on
# the artifact less on pairs equal but for it (rho 0.95, seed 1); the
# augmented set is recorded in the store; bad labels and baselines ----
expect rm_learns_world 0 "rm accuracy 0\.(8|9)" -- "$LATHE" run "$T/rm.lua" --store rw.lmdb
expect rrm_less_artifact_reliance 0 "relies on the artifact less: true" -- "$LATHE" run "$T/rm.lua" \
  --store rr.lmdb --set mode=rrm --set rho=0.95
expect rrm_records_augmentation 0 "rrm-2 +prefs +[0-9]+ +run 2" -- "$LATHE" data ls --store rr.lmdb
expect pref_onpolicy_reward_run 0 "dpo with reward_run: reward -?[0-9.]+ best" -- "$LATHE" run \
  "$T/rm.lua" --store rd.lmdb --set mode=dpo
expect pref_reward_run_not_rm 1 "reward_run 2 \(sft\) holds no reward model" -- \
  "$LATHE" run "$T/rm.lua" --store rn.lmdb --set mode=dpo --set reward=2
# a reward model of Min Length's gold preferences (taskprefs) as the proxy
# reward of DPO on Mode Length pulls the replies far below the mode, where the
# gold reward keeps them; a proxy run that is no reward model fails
expect pref_proxy_reward_model 0 "proxy: rm accuracy 0\.(8|9)[0-9]* \([0-9]+ ties\), length" -- \
  "$LATHE" run "$T/rm.lua" --store rp.lmdb --set mode=proxy
expect pref_proxy_not_rm 1 "reward_run 2 has no checkpoint" -- "$LATHE" run "$T/rm.lua" \
  --store rq.lmdb --set mode=proxy --set reward=2
expect rm_bad_label 1 "bad: record 2: field 'label' is 1.5, want a number in \[0, 1\]" -- \
  "$LATHE" run "$T/rm.lua" --store rb.lmdb --set mode=badlabel
expect rrm_missing_baseline 1 "baseline_run 99: no such run" -- "$LATHE" run "$T/rm.lua" \
  --store rw.lmdb --set mode=rrm --set baseline=99

expect plot_points 0 "wrote points.svg" -- "$LATHE" run "$T/plot_points.lua" --store pp.lmdb
if want plot_points_markers; then # 5 markers, 3 error bars, the log axis's label
  [ "$(grep -c '<circle' points.svg)" = 5 ] && [ "$(grep -c 'stroke="#1f77b4"/>' points.svg)" = 3 ] &&
    grep -q '>problems n<' points.svg && ok plot_points_markers || bad plot_points_markers "$(grep -c '<circle' points.svg) markers"
fi
expect plot_points_bad_lengths 1 "points\[1\]\.y has 2 numbers, want 3" -- "$LATHE" run "$T/plot_points.lua" --store pp.lmdb --set mode=bad

# ---- per-step negatives: the pipeline, its refusals, GSM8K and MATH-500 imports ----
expect stepneg_pipeline 0 "stepneg stepneg: loss [0-9.]+ pass1 [0-9.]+" -- "$LATHE" run "$T/stepneg.lua" --store stepneg.lmdb
expect stepvalue_dataset_exported 0 '"critical":[0-9]+' -- "$LATHE" data export sv --store stepneg.lmdb
for m in sft rft dpo_outcome dpo_prefix awr; do
  expect stepneg_method_$m 0 "stepneg stepneg: loss [0-9.]+ pass1" -- "$LATHE" run "$T/stepneg.lua" \
    --store sn_$m.lmdb --set method=$m --set steps=6
done
expect stepvalue_no_answers 1 "dataset 'plain' record 0: want a math record" -- "$LATHE" run "$T/stepneg.lua" --store sn1.lmdb --set mode=nomath
expect stepvalue_not_lm 1 "init_run 2 \(regress\): not a language model" -- "$LATHE" run "$T/stepneg.lua" --store sn2.lmdb --set mode=notlm
expect stepneg_bad_step_count 1 "record 0: sample 0 says 5 steps, its text has 2" -- "$LATHE" run "$T/stepneg.lua" --store sn4.lmdb --set mode=badsteps
expect stepvalue_zero_rollouts 3 "rollouts = 0 is out of range \[1, 256\]" -- "$LATHE" run "$T/stepneg.lua" --store sn3.lmdb --set mode=zero
expect facts_pipeline 0 "factrl: reward_judge -?[0-9.]+ reward_true -?[0-9.]+" -- "$LATHE" run "$T/facts.lua" --store facts.lmdb
expect factqa_bio_bad_entity 1 "record 0: no entity, or one outside the world's 48" -- "$LATHE" run "$T/facts.lua" --store fq4.lmdb --set mode=badentity
expect factrl_judge_not_lm 1 "judge_run 7 \(regress\): not a language model" -- "$LATHE" run "$T/facts.lua" --store fq5.lmdb --set mode=notjudge
expect factqa_no_answer 1 "factqa: dataset 'noans' record 0: no answer" -- "$LATHE" run "$T/facts.lua" --store fq1.lmdb --set mode=noanswer
expect factqa_empty_answer_list 1 "dataset 'freeqa' record 1: its answer list is empty or holds a non-string" -- "$LATHE" run "$T/facts.lua" --store fq6.lmdb --set mode=emptyanswers
expect factqa_bad_attr 1 "record 0: attr is not city, job, born or team" -- "$LATHE" run "$T/facts.lua" --store fq2.lmdb --set mode=badattr
expect factqa_not_lm 1 "init_run 2 \(regress\): not a language model" -- "$LATHE" run "$T/facts.lua" --store fq3.lmdb --set mode=notlm

# ---- turn-based text games (textenv, API 6.2) from Lua ----
expect games_values 0 "twentyq 16/4: optimal -3.259189 identify -3.709875 blind -6.003167 \(undiscounted -3.50 -4.00 -7.50\)" -- "$LATHE" run "$T/games.lua" --store games.lmdb
saw games_dialogue "Questions:[|]ask a0 1 [?] (yes|no)[|]ask a9 0 [?] invalid[|]"
saw games_policy_exact "identify policy exact value -3.709875"
saw games_guessnum "guessnum: optimal -3.782131 blind -11.061356"
expect games_tables 0 "twentyq 157: optimal -6.047636 identify -6.478210 blind -12.109191" -- "$LATHE" run "$T/games.lua" --store games.lmdb --set mode=tables
saw games_tables_cities "guesscity 91: optimal -5.409477 identify -5.844590 blind -11.586202"
saw games_tables_words "Questions:[|]ask category sports [?] yes[|]ask round 1 [?] yes[|]ask color orange [?] yes[|]guess basketball [.] yes[|]"
expect games_table_file_refused 1 "twentyq: table /nonexistent.tsv: No such file or directory" -- "$LATHE" run "$T/games.lua" --store games.lmdb --set mode=tables --set table=/nonexistent.tsv
expect gameplay_quarter 0 "generated [0-9]+ records as 'q157'" -- "$LATHE" data generate gameplay q157 --set table=objects --set ask=quarter --set noise=0 --set episodes=20 --store games.lmdb
expect gameplay_quarter_words 0 '"response":"ask [a-z_]+ [a-z0-9_]+ [?]"' -- "$LATHE" data export q157 --store games.lmdb
expect gameplay_generate 0 "generated [0-9]+ records as 'tq'" -- "$LATHE" data generate gameplay tq --set episodes=50 --store games.lmdb
expect gameplay_records 0 '"prompt":"Questions:\\n","response":"(ask a[0-3] [01] [?]|guess o[0-9]+ [.])"' -- "$LATHE" data export tq --store games.lmdb
expect archer_pipeline 0 "archer archer: eval return -?[0-9.]+ win [0-9.]+ v_s0 -?[0-9.]+ critic loss [0-9.]+" -- "$LATHE" run "$T/archer.lua" --store archer.lmdb
expect archer_method_filtered_bc 0 "archer filtered_bc: eval return -?[0-9.]+ win [0-9.]+ v_s0 nil critic loss nil" -- "$LATHE" run "$T/archer.lua" --store archer_fbc.lmdb --set method=filtered_bc
expect archer_method_ppo 0 "archer ppo: eval return -?[0-9.]+ win [0-9.]+ v_s0 nil critic loss nil" -- "$LATHE" run "$T/archer.lua" --store archer_ppo.lmdb --set method=ppo
expect archer_method_chai 0 "archer chai: eval return -?[0-9.]+ win [0-9.]+ v_s0 -?[0-9.]+ critic loss [0-9.]+" -- "$LATHE" run "$T/archer.lua" --store archer_chai.lmdb --set method=chai
expect archer_hl_gauss_policy_critic 0 "archer archer: eval return -?[0-9.]+ win [0-9.]+ v_s0 -?[0-9.]+ critic loss [0-9.]+" -- "$LATHE" run "$T/archer.lua" --store archer_hl.lmdb --set head=hl_gauss --set cinit=policy --set plot=1
if want archer_plot_reference_lines; then # two dotted levels, one labelled
  [ "$(grep -c 'stroke-dasharray="2,3"' archer.svg)" = 2 ] && grep -q '>optimal<' archer.svg &&
    ok archer_plot_reference_lines || bad archer_plot_reference_lines "$(grep -c 'stroke-dasharray="2,3"' archer.svg) lines"
fi
expect archer_guesscity 0 "archer archer: eval return -?[0-9.]+ win [0-9.]+ v_s0 -?[0-9.]+ critic loss [0-9.]+" -- "$LATHE" run "$T/archer.lua" --store archer_city.lmdb --set game=guesscity
expect sample_off_loop 0 "sample end" -- "$LATHE" run "$T/offloop.lua" --store offloop.lmdb --headless --threads 1 --set bg_steps=200000
if want sample_off_loop_events; then # the spawned run's events kept coming while the sample ran
  n=$(awk '/"sample start"/{s=1;next} /"sample end"/{s=0} s' "$WORK/out" "$WORK/err" | grep -c '"type":"metric"')
  [ "$n" -gt 0 ] && ok sample_off_loop_events || bad sample_off_loop_events "no event between sample start and end"
fi
expect archer_not_lm 1 "init_run 2 \(regress\): not a language model" -- "$LATHE" run "$T/archer.lua" --store ar1.lmdb --set mode=notlm
expect archer_no_tokenizer 1 "init_run 2 \(pref\): its model has no tokenizer, so it cannot write the game's words" -- "$LATHE" run "$T/archer.lua" --store ar2.lmdb --set mode=notok
expect archer_not_a_game 1 "archer: game 'cartpole' is an environment, not a text environment" -- "$LATHE" run "$T/archer.lua" --store ar3.lmdb --set mode=notgame
expect games_no_spaces 1 "twentyq: a text environment has no spaces" -- "$LATHE" run "$T/games.lua" --store games.lmdb --set mode=spaces
expect games_not_a_run 1 "'twentyq' is a textenv; only an algorithm runs" -- "$LATHE" run "$T/games.lua" --store games.lmdb --set mode=run

# ---- PR2L: each representation, the prompt probe, the refusals ----
for r in prompt generic raw; do
  expect pr2l_$r 0 "pr2l $r: success [0-9.]+ held-out [0-9.]+ hit rate" -- "$LATHE" run "$T/pr2l.lua" --store pr2l_$r.lmdb --set repr=$r
done
saw pr2l_raw_no_cache "hit rate nil"
expect pr2lprobe_prompt 0 "pr2lprobe prompt: accuracy [0-9.]+ answer [0-9.]+" -- "$LATHE" run "$T/pr2l.lua" --store pr2l_prompt.lmdb --set mode=probe
expect pr2l_scenes_records 0 '"prompt":"you [0-4] [0-4] [.] [a-z]+ [0-4] [0-4] [.]' -- "$LATHE" data export sc --store pr2l_prompt.lmdb
expect pr2l_not_lm 1 "model_run 2 \(regress\): not a language model" -- "$LATHE" run "$T/pr2l.lua" --store p2a.lmdb --set mode=notlm
expect pr2l_empty_prompt 3 "pr2l: prompt is empty" -- "$LATHE" run "$T/pr2l.lua" --store p2b.lmdb --set mode=empty
expect pr2l_bad_layer 1 "layer 5: the model of run 1 has layers 0..1" -- "$LATHE" run "$T/pr2l.lua" --store p2c.lmdb --set mode=layer

if [ -f "$ROOT/share/data/math/gsm8k/test.jsonl.gz" ]; then
  expect gsm8k_import 0 "imported 1319 records" -- "$LATHE" data import "$ROOT/share/data/math/gsm8k/test.jsonl.gz" --name g --schema math --store gsm.lmdb
  expect gsm8k_record 0 '"answer":"18","solution":"Janet sells 16 - 3 - 4 = 9 duck' -- "$LATHE" data export g --store gsm.lmdb
  expect math500_import 0 "imported 500 records" -- "$LATHE" data import "$ROOT/share/data/math/math500/test500.jsonl.gz" --name m --schema math --store gsm.lmdb
  printf '{"question":"q","answer":"1 + 1 = 2\\n#### 2"}\n{"question":"q","answer":"no final line"}\n' >nofinal.jsonl
  expect gsm8k_no_final_answer 2 "nofinal.jsonl:2: no field 'solution', and 'answer' has no final \"#### N\" line" -- "$LATHE" data import nofinal.jsonl --name x --schema math --store gsm.lmdb
  printf '{"question":"q","answer":"so #### "}\n' >emptyfinal.jsonl
  expect gsm8k_empty_final_answer 2 "emptyfinal.jsonl:1: GSM8K answer: no final answer after '####'" -- "$LATHE" data import emptyfinal.jsonl --name x --schema math --store gsm.lmdb
else skip gsm8k_import "share/data/math/gsm8k is absent"; fi

# (glibc's MALLOC_CHECK_ turns the Lua stack overflow this once caused into a crash)
MALLOC_CHECK_=3 expect wait_many_runs 0 "done runs.{1,2}150" -- "$LATHE" run "$T/many.lua" --store many.lmdb
expect run_handle_close 0 "closed.{1,2}interrupted" -- "$LATHE" run "$T/handle.lua" --store handle.lmdb --headless
if want run_handle_dropped_runs_on; then
  "$LATHE" runs --store handle.lmdb | grep -Eq "^2 .* done +300 " && ok run_handle_dropped_runs_on ||
    bad run_handle_dropped_runs_on "" "$("$LATHE" runs --store handle.lmdb)"
fi

# ---- text: prefs import (HH-RLHF transcripts split), SFT, DPO, sampling ----
if want text_pipeline; then
  for i in $(seq 1 60); do
    printf '{"prompt": "Q: %d", "chosen": " A: yes %d", "rejected": " A: no"}\n' $i $i
  done >tiny.jsonl
  "$LATHE" data import tiny.jsonl --name tiny --schema prefs --store tx.lmdb 2>/dev/null
  expect text_pipeline 0 "done.{1,2}done" -- "$LATHE" run "$T/text.lua" --store tx.lmdb
fi
printf '{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: hello", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: go away"}\n' >hh1.jsonl
expect data_hh_split 0 "imported 1 records" -- "$LATHE" data import hh1.jsonl --name hh1 --schema prefs --store tx.lmdb
if want data_hh_split_fields; then
  "$LATHE" data export hh1 --store tx.lmdb | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["prompt"]=="\n\nHuman: hi\n\nAssistant:" and r["chosen"]==" hello" and r["rejected"]==" go away", r' &&
    ok data_hh_split_fields || bad data_hh_split_fields
fi
printf '{"chosen": "a", "rejected": "b"}\n' >nohh.jsonl
expect data_prefs_no_prompt 2 'nohh.jsonl:1: no prompt field, and chosen and rejected share no' -- "$LATHE" data import nohh.jsonl --name x --schema prefs --store tx.lmdb
expect sft_no_dataset 3 "no dataset given" -- "$LATHE" run "$T/text.lua" --store tx.lmdb --set ds=
expect pref_dataset_needs_init 3 "needs init_run" -- "$LATHE" run "$T/pref.lua" --store tx.lmdb --set on=false --set dataset=tiny

# ---- DQN learns CartPole-v1 within 100k steps (mse and hl_gauss heads, seed 1) ----
for head in mse hl_gauss; do
  expect "dqn_learns_$head" 0 "done best_eval" -- "$LATHE" run "$T/dqn.lua" --store dl_$head.lmdb \
    --set head=$head --set need=195
done

# ---- signals: SIGINT / SIGTERM checkpoint and stop; resume finishes identically ----
for sig in INT TERM; do
  want "signal_$sig" || continue
  code=130; [ $sig = TERM ] && code=143
  "$LATHE" run "$T/one.lua" --store sig$sig.lmdb --set steps=3000 --set hidden=128 --set batch=128 \
    --set every=100000 >/dev/null 2>sig.err &
  pid=$!
  for i in $(seq 300); do # a real signal from outside, once the run has stored a step
    s=$(step_of sig$sig.lmdb 1); [ -n "$s" ] && [ "$s" -gt 0 ] && break; sleep 0.02
  done
  kill -$sig $pid
  wait $pid
  rc=$?
  st=$(status_of sig$sig.lmdb 1)
  "$LATHE" resume 1 --store sig$sig.lmdb >/dev/null 2>&1
  if [ $rc = $code ] && [ "$st" = interrupted ] && [ "$(status_of sig$sig.lmdb 1)" = done ] &&
     [ "$(hash_of sig$sig.lmdb 1)" = "$(hash_of ref.lmdb 1)" ]; then
    ok "signal_$sig"
  else bad "signal_$sig" "exit $rc (want $code), status after signal '$st'" "$(cat sig.err | head -3)"; fi
done
# ---- one process drives a run: a second driver is refused while the owner
# lives; a dead owner's run is taken over; of two resumes at once, one wins ----
if want one_owner; then
  rm -rf ow.lmdb
  "$LATHE" run "$T/one.lua" --store ow.lmdb --set steps=3000 --set hidden=128 --set batch=128 \
    --set every=100 >/dev/null 2>&1 &
  op=$!
  for i in $(seq 300); do s=$(step_of ow.lmdb 1); [ -n "$s" ] && [ "$s" -gt 0 ] && break; sleep 0.02; done
  expect one_owner_refused 1 "run 1 is running in process $op on this machine" -- "$LATHE" resume 1 --store ow.lmdb
  kill -9 $op; wait $op 2>/dev/null
  expect one_owner_dead_taken_over 0 "" -- "$LATHE" resume 1 --store ow.lmdb
  if [ -n "$(hash_of ow.lmdb 1)" ] && [ "$(hash_of ow.lmdb 1)" = "$(hash_of ref.lmdb 1)" ]; then
    ok one_owner_takeover_exact
  else bad one_owner_takeover_exact "$(hash_of ow.lmdb 1) vs $(hash_of ref.lmdb 1)"; fi
  rm -rf ow2.lmdb
  { LATHE_TEST_KILL=1:200 "$LATHE" run "$T/one.lua" --store ow2.lmdb --set steps=3000 --set hidden=128 \
      --set batch=128 --set every=100 >/dev/null 2>&1; } 2>/dev/null
  "$LATHE" resume 1 --store ow2.lmdb >/dev/null 2>ow_a.err & pa=$!
  "$LATHE" resume 1 --store ow2.lmdb >/dev/null 2>ow_b.err & pb=$!
  wait $pa; ra=$?; wait $pb; rb=$?
  if [ "$(printf '%s\n' $ra $rb | sort | tr '\n' ' ')" = "0 1 " ] && grep -q "a run has one driver" ow_a.err ow_b.err &&
     [ "$(status_of ow2.lmdb 1)" = done ]; then ok one_owner_two_resumes
  else bad one_owner_two_resumes "exits $ra $rb" "$(cat ow_a.err ow_b.err | head -4)"; fi
fi
# a recipe stuck in a pure-Lua loop (once deaf to SIGINT and SIGTERM) stops
# within seconds (ms of Lua, then the checkpoint) with the usual exit status, its run checkpointed and
# resumable to the same end as a run never stopped
for sig in INT TERM; do
  for pc in false true; do
    name=signal_pure_lua_${sig}_pcall_$pc
    want "$name" || continue
    code=130; [ $sig = TERM ] && code=143
    rm -rf pl.lmdb
    "$LATHE" run "$T/loop.lua" --store pl.lmdb --set pcall=$pc >/dev/null 2>pl.err &
    pid=$!
    for i in $(seq 300); do s=$(step_of pl.lmdb 1); [ -n "$s" ] && [ "$s" -gt 0 ] && break; sleep 0.02; done
    kill -$sig $pid
    for i in $(seq 250); do kill -0 $pid 2>/dev/null || break; sleep 0.02; done # 5 s, loaded machines too
    kill -0 $pid 2>/dev/null && { kill -9 $pid; late=1; } || late=0
    wait $pid; rc=$?
    st=$(status_of pl.lmdb 1)
    "$LATHE" resume 1 --store pl.lmdb >/dev/null 2>&1
    if [ $late = 0 ] && [ $rc = $code ] && [ "$st" = interrupted ] && [ "$(status_of pl.lmdb 1)" = done ] &&
       [ "$(hash_of pl.lmdb 1)" = "$(hash_of ref.lmdb 1)" ]; then ok "$name"
    else bad "$name" "exit $rc (want $code), late $late, status '$st'" "$(head -3 pl.err)"; fi
  done
done
# recipes that misuse the API get one line at their own file:line, naming the function
rapi() { printf '%s\n' "$2" >"$1.lua"; }
rapi wrapwait 'local co = coroutine.wrap(function() lathe.wait(lathe.spawn("regress", {steps = 5})) end)
co()
print("after")'
expect recipe_wait_in_coroutine 1 "wrapwait.lua:1: .*must be called from the recipe itself" -- "$LATHE" run wrapwait.lua --store api.lmdb
rapi envstep 'local e = lathe.env("cartpole")
e:step(0)'
expect env_step_before_reset 1 "envstep.lua:2: cartpole: reset\(\) first" -- "$LATHE" run envstep.lua --store api.lmdb
rapi envbox 'local e = lathe.env("pendulum")
e:reset(1)
e:step({"x"})'
expect env_box_action_checked 1 "envbox.lua:3: .*entry 1 is not a number" -- "$LATHE" run envbox.lua --store api.lmdb
rapi envseed 'lathe.env("cartpole"):reset(-1)'
expect env_negative_seed 1 "envseed.lua:1: .*non-negative integer" -- "$LATHE" run envseed.lua --store api.lmdb
rapi stats 'lathe.stats.mean({1, "a"})'
expect stats_args_checked 1 "stats.lua:1: lathe.stats.mean: element 2 is a string" -- "$LATHE" run stats.lua --store api.lmdb
expect stats_against_references 0 "stats ok" -- "$LATHE" run "$T/stats_ci.lua" --store stats.lmdb
rapi tbl 'lathe.table(5, {})'
expect table_args_checked 1 "tbl.lua:1: lathe.table: bad arguments" -- "$LATHE" run tbl.lua --store api.lmdb
rapi score 'lathe.score(nil, nil)'
expect score_args_checked 1 "score.lua:1: lathe.score: argument #1" -- "$LATHE" run score.lua --store api.lmdb
rapi sample 'local h = lathe.run("regress", {steps = 3})
lathe.sample(h, {"a"})'
expect sample_no_model 1 "sample.lua:2: lathe.sample: run [0-9]+ \(regress\) holds no model" -- "$LATHE" run sample.lua --store api.lmdb
rapi mets 'lathe.metrics(99, "loss")'
expect metrics_missing_run_raises 1 "mets.lua:1: lathe.metrics: no run 99" -- "$LATHE" run mets.lua --store api.lmdb
rapi optint 'print(lathe.opt("steps", 5))'
expect opt_inf_refused 3 "--set steps: 'inf' is not an integer" -- "$LATHE" run optint.lua --store api.lmdb --set steps=inf
expect opt_huge_refused 3 "is not an integer" -- "$LATHE" run optint.lua --store api.lmdb --set steps=99999999999999999999
# lathe.data.generate computes off the loop: its count, or nil and the message, come back
rapi genoff 'local n, why = lathe.data.generate("x", "cartpole", {})
print("not a generator:", n, why)
local wrapped = coroutine.wrap(function() return lathe.data.generate("w", "gameplay", {episodes = 2}) end)()
print("generated", lathe.data.generate("y", "gameplay", {episodes = 3}), wrapped)'
expect data_generate_off_loop 0 "not a generator:.{1,2}nil.{1,2}plugin .cartpole. is an environment, not a generator" -- "$LATHE" run genoff.lua --store genoff.lmdb
saw data_generate_off_loop_count "generated.{1,2}[0-9]+.{1,2}[0-9]+"
# numbers from Lua reach configs exactly (17 significant digits, not 14)
rapi exact 'print(assert(lathe.data.generate("exact", "mazedata", {noise = 0.12345678901234567, transitions = 50})))'
if want opts_exact; then
  "$LATHE" run exact.lua --store ex.lmdb >/dev/null 2>&1
  "$LATHE" data ls --store ex.lmdb | grep -q "noise=0.12345678901234566\|noise=0.12345678901234567" &&
    ok opts_exact || bad opts_exact "$("$LATHE" data ls --store ex.lmdb)"
fi
expect resume_done 2 "already done" -- "$LATHE" resume 1 --store ref.lmdb
expect resume_missing 1 "no run 99" -- "$LATHE" resume 99 --store ref.lmdb

# ---- store commands ----
expect show_run 0 "" -- "$LATHE" show 1 --store ref.lmdb
expect show_missing 1 "no run 42" -- "$LATHE" show 42 --store ref.lmdb
expect metrics_one 0 "" -- "$LATHE" metrics 1 --store ref.lmdb --metric eval_loss --jsonl
expect metrics_unknown 1 "no metric 'nope' \(it has: .*eval_loss" -- "$LATHE" metrics 1 --store ref.lmdb --metric nope
if want metrics_unknown_prints_nothing; then
  "$LATHE" metrics 1 --store ref.lmdb --metric nope >mu.out 2>/dev/null
  [ ! -s mu.out ] && ok metrics_unknown_prints_nothing || bad metrics_unknown_prints_nothing "$(head -2 mu.out)"
fi
# several runs at once, long format with a run column; values read back exactly
if want metrics_many; then
  "$LATHE" metrics 1-3 --store s1.lmdb --metric eval_loss >mm.csv 2>mm.err
  "$LATHE" metrics 1,3 --store s1.lmdb --jsonl >mm.jsonl 2>>mm.err
  python3 -c '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert {r["run"] for r in rows} == {"1", "2", "3"} and all(r["metric"] == "eval_loss" for r in rows), rows[:3]
def shortest(x): # the shortest %g text that reads back as x
    for p in range(1, 18):
        if float("%.*g" % (p, x)) == x: return "%.*g" % (p, x)
for r in rows: assert r["value"] == shortest(float(r["value"])), r
runs = {json.loads(l)["run"] for l in open(sys.argv[2])}
assert runs == {1, 3}, runs' mm.csv mm.jsonl && ok metrics_many || bad metrics_many "$(cat mm.err)"
fi
expect compare_runs 0 "^seed +1 +2" -- "$LATHE" compare 1 2 --store s1.lmdb
if want compare_runs_metrics; then
  "$LATHE" compare 1 2 --store s1.lmdb --json >cmp.json 2>&1
  python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
assert c["config_differs"]["seed"] == ["1", "2"], c
m = c["metrics"]["eval_loss"]
assert [e["run"] for e in m] == [1, 2] and all(e["best"] <= e["last"] for e in m), m' cmp.json &&
    ok compare_runs_metrics || bad compare_runs_metrics "$(head -c 300 cmp.json)"
fi
expect show_recipe 0 "three seeds side by side" -- "$LATHE" show 1 --store s1.lmdb --recipe
expect runs_last_best 0 "[0-9.e-]+@[0-9]+ +eval_loss" -- "$LATHE" runs --store s1.lmdb
if want show_shortest_numbers; then # 0.00025 is printed as 0.00025, not 0.00025000000000000001
  "$LATHE" run "$T/one.lua" --store sn.lmdb --set lr=0.00025 --set steps=10 >/dev/null 2>&1
  "$LATHE" show 1 --store sn.lmdb | grep -Eq "^  lr +0\.00025$" && ok show_shortest_numbers ||
    bad show_shortest_numbers "$("$LATHE" show 1 --store sn.lmdb | grep lr)"
fi
# ckpt_keep_best: a checkpoint at each new best of the main metric, kept beside the last K
if want ckpt_keep_best; then
  "$LATHE" run "$T/one.lua" --store kb.lmdb --set steps=400 --set every=100 --set ckpt_keep=1 \
    --set ckpt_keep_best=true >/dev/null 2>&1
  "$LATHE" show 1 --store kb.lmdb --json >kb.json
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
steps = [c["step"] for c in r["checkpoints"]]
assert r["best_ckpt"] == r["best"]["step"] and r["best_ckpt"] in steps and 400 in steps, (steps, r.get("best"))
assert len(steps) <= 2, steps' kb.json && ok ckpt_keep_best || bad ckpt_keep_best "$(grep -A3 best kb.json | head -8)"
fi
# options belong to their subcommands; typos get a suggestion; help points the right way
expect cli_option_wrong_command 2 "option --output does not apply to this command" -- "$LATHE" run x.lua --output=garbage
expect cli_option_wrong_command_show 2 "option --smooth does not apply" -- "$LATHE" show 3 --smooth 0.5
expect cli_option_suggest 2 "unknown option '--threds' \(did you mean '--threads'\?\)" -- "$LATHE" run x.lua --threds 2
expect cli_help_help 0 "lathe help - show help" -- "$LATHE" help --help
expect cli_help_suggest 2 "no command 'plto'; did you mean 'plot'" -- "$LATHE" help plto
expect runs_list 0 "" -- "$LATHE" runs --store s1.lmdb
if want runs_list_rows; then
  [ "$("$LATHE" runs --store s1.lmdb | grep -c 'regress *done')" = 3 ] && ok runs_list_rows || bad runs_list_rows
fi
expect rm_run 0 "removed run 2" -- "$LATHE" rm 2 --store s1.lmdb
if want rm_gone; then
  ! "$LATHE" show 2 --store s1.lmdb >/dev/null 2>&1 && ! "$LATHE" metrics 2 --store s1.lmdb >/dev/null 2>&1 &&
    ok rm_gone || bad rm_gone
fi
expect store_not_dir 4 "not a directory" -- "$LATHE" runs --store "$T/one.lua"
# damaged stores: a data file cut short is refused at open (it once died with
# SIGBUS on every command); a flipped bit in a metric key is stepped over (show
# once looped forever) and reported by `lathe store check`; a clean store
# checks clean; a backup taken while a run writes is itself clean and complete
if want store_damage; then
  rm -rf sd.lmdb sd2.lmdb sdb.lmdb && "$LATHE" run "$T/sweep.lua" --store sd.lmdb >/dev/null 2>&1
  cp -r sd.lmdb sd2.lmdb && truncate -s 8192 sd2.lmdb/data.mdb
  expect store_truncated 4 "store damaged: .*data.mdb is 8192 bytes.*lathe store check" -- "$LATHE" runs --store sd2.lmdb
  expect store_check_clean 0 "clean" -- "$LATHE" store check --store sd.lmdb
  [ -x "$TAMPER" ] && "$TAMPER" sd.lmdb 1 badkey
  expect store_bad_metric_key_show 0 "" -- timeout 20 "$LATHE" show 1 --store sd.lmdb
  expect store_check_damaged 4 "damaged: metrics: a malformed key" -- "$LATHE" store check --store sd.lmdb
  "$LATHE" run "$T/one.lua" --store sb.lmdb --set steps=3000 --set hidden=128 --set every=50 >/dev/null 2>&1 &
  bp=$!
  for i in $(seq 200); do s=$(step_of sb.lmdb 1); [ -n "$s" ] && [ "$s" -gt 100 ] && break; sleep 0.02; done
  expect store_backup_while_writing 0 "backed up" -- "$LATHE" store backup sdb.lmdb --store sb.lmdb
  wait $bp
  expect store_backup_is_clean 0 "clean" -- "$LATHE" store check --store sdb.lmdb
  expect store_backup_exists 2 "exists" -- "$LATHE" store backup sdb.lmdb --store sb.lmdb
fi
# a store another user owns: read without its lock file (it once failed with
# "Permission denied" on lock.mdb)
if want store_other_user; then
  asnobody="setpriv --reuid 65534 --regid 65534 --clear-groups"
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && $asnobody "$LATHE" version >/dev/null 2>&1; then
    chmod a+rx "$WORK"
    [ -d sd.lmdb ] || "$LATHE" run "$T/sweep.lua" --store sd.lmdb >/dev/null 2>&1
    expect store_other_user 0 "sweep.lua" -- setpriv --reuid 65534 --regid 65534 --clear-groups \
      "$LATHE" runs --store "$WORK/sd.lmdb"
    chmod go-rx "$WORK"
  else skip store_other_user "needs root, setpriv and a lathe binary another user may run"; fi
fi
if want store_readonly; then
  mkdir ro && chmod 555 ro
  # root ignores file modes: then /sys stands in for a location nobody may write
  if [ "$(id -u)" = 0 ] && touch ro/x 2>/dev/null; then
    expect store_readonly 4 "cannot create store" -- "$LATHE" run "$T/one.lua" --store /sys/lathe-test.lmdb
  else expect store_readonly 4 "cannot (open|create) store" -- "$LATHE" run "$T/one.lua" --store ro/s.lmdb; fi
fi
if want store_full_disk; then
  # a 200 KiB file-size limit stands in for a full disk: the run fails with a one-line
  # error and exit 4, and the store stays readable with the run recorded
  ( ulimit -f 200; LATHE_STORE_MAPSIZE=65536 "$LATHE" run "$T/one.lua" --store full.lmdb \
      --set steps=4000 --set hidden=256 --set every=10 >/dev/null 2>full.err ); rc=$?
  if [ $rc = 4 ] && grep -q "disk full?" full.err && "$LATHE" runs --store full.lmdb >/dev/null 2>&1; then
    ok store_full_disk
  else bad store_full_disk "exit $rc" "$(head -3 full.err)"; fi
fi
if want store_grows; then
  LATHE_STORE_MAPSIZE=65536 "$LATHE" run "$T/one.lua" --store grow.lmdb --set hidden=128 >/dev/null 2>grow.err &&
    [ "$(status_of grow.lmdb 1)" = done ] && ok store_grows || bad store_grows "$(head -3 grow.err)"
fi
if want two_writers; then
  "$LATHE" run "$T/one.lua" --store tw.lmdb >/dev/null 2>&1 &
  p1=$!
  "$LATHE" run "$T/one.lua" --store tw.lmdb --set s=2 >/dev/null 2>&1 &
  p2=$!
  wait $p1; r1=$?; wait $p2; r2=$?
  [ $r1 = 0 ] && [ $r2 = 0 ] && [ "$("$LATHE" runs --store tw.lmdb | grep -c done)" = 2 ] &&
    ok two_writers || bad two_writers "exits $r1 $r2"
fi
if want reader_while_writing; then
  "$LATHE" run "$T/one.lua" --store rw.lmdb --set steps=3000 --set hidden=128 --set batch=128 >/dev/null 2>&1 &
  pid=$!
  sleep 0.5
  out=$("$LATHE" runs --store rw.lmdb 2>&1)
  wait $pid
  echo "$out" | grep -q "regress *running" && ok reader_while_writing || bad reader_while_writing "$out"
fi

# ---- datasets ----
printf '{"prompt":"p1","chosen":"a","rejected":"b"}\n{"prompt":"p2","chosen":"c","rejected":"d","extra":1}\n' >good.jsonl
printf '{"prompt":"p1","chosen":"a","rejected":"b"}\n{"prompt":"p2","chosen":"c"\n' >trunc.jsonl
printf '{"prompt":"p1","chosen":"a","rejected":"b"}\n\n{"prompt":"p2","chosen":3,"rejected":"d"}\n' >wrongtype.jsonl
printf '{"prompt":"p1","chosen":"a","rejected":"b"}\n{"prompt":"p2","rejected":"d"}\n' >missing.jsonl
printf '{"prompt":"p1","chosen":"a","rejected":"b"} trailing\n' >trailing.jsonl
printf '[1,2]\n' >notobj.jsonl
: >empty.jsonl
gzip -c good.jsonl >good.jsonl.gz
expect data_import 0 "imported 2 records" -- "$LATHE" data import good.jsonl --name p --schema prefs --store ds.lmdb
expect data_import_gz 0 "imported 2 records" -- "$LATHE" data import good.jsonl.gz --name pz --schema prefs --store ds.lmdb
expect data_dup 2 "already exists" -- "$LATHE" data import good.jsonl --name p --schema prefs --store ds.lmdb
expect data_truncated 2 "trunc.jsonl:2: invalid JSON: truncated record" -- "$LATHE" data import trunc.jsonl --name t --schema prefs --store ds.lmdb
expect data_wrong_type 2 "wrongtype.jsonl:3: field 'chosen' is a number, want a string" -- "$LATHE" data import wrongtype.jsonl --name t --schema prefs --store ds.lmdb
expect data_missing_field 2 "missing.jsonl:2: field 'chosen' missing" -- "$LATHE" data import missing.jsonl --name t --schema prefs --store ds.lmdb
expect data_trailing 2 "trailing.jsonl:1: invalid JSON" -- "$LATHE" data import trailing.jsonl --name t --schema prefs --store ds.lmdb
expect data_not_object 2 "notobj.jsonl:1: record is an array" -- "$LATHE" data import notobj.jsonl --name t --schema any --store ds.lmdb
expect data_empty 2 "no records" -- "$LATHE" data import empty.jsonl --name t --schema prefs --store ds.lmdb
expect data_no_file 2 "cannot open" -- "$LATHE" data import nofile.jsonl --name t --schema prefs --store ds.lmdb
expect data_bad_schema 2 "unknown schema 'pref'" -- "$LATHE" data import good.jsonl --name t --schema pref --store ds.lmdb
if want data_failed_imports_left_nothing; then
  [ "$("$LATHE" data ls --store ds.lmdb | tail -n +2 | awk '{print $1}' | tr '\n' ' ')" = "p pz " ] &&
    ok data_failed_imports_left_nothing || bad data_failed_imports_left_nothing "$("$LATHE" data ls --store ds.lmdb)"
fi
if want data_export_roundtrip; then
  "$LATHE" data export p --store ds.lmdb >exp.jsonl
  python3 -c '
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
assert a == b, (a, b)' good.jsonl exp.jsonl && ok data_export_roundtrip || bad data_export_roundtrip
fi
# bytes an importer once mishandled: a line starting with NUL (silently dropped,
# later lines misnumbered), a NUL inside a line, a label outside [0, 1], a
# trailing comma (not JSON), transitions whose dimensions change between lines
# bad_import NAME FILE SCHEMA PATTERN CONTENT: the import exits 2 with PATTERN
bad_import() {
  printf "$5" >"$2"
  expect "$1" 2 "$4" -- "$LATHE" data import "$2" --name n --schema "$3" --store imp.lmdb
}
pj='{"prompt":"a","chosen":"b","rejected":"c"'
tj='"reward":1,"terminated":false,"truncated":false'
bad_import data_nul_line_start nul1.jsonl prefs "nul1.jsonl:1: a NUL byte at column 1" "\\000$pj}\\n$pj}\\n"
bad_import data_nul_inside nul2.jsonl prefs "nul2.jsonl:2: a NUL byte at column 26" \
  "$pj}\\n{\"prompt\":\"a\",\"chosen\":\"b\\000x\",\"rejected\":\"c\"}\\n"
bad_import data_label_range lab.jsonl prefs "lab.jsonl:1: field 'label' is 1.5, want a number in \\[0, 1\\]" \
  "$pj,\"label\":1.5}\\n"
bad_import data_trailing_comma tc.jsonl prefs "tc.jsonl:1: invalid JSON" "$pj,}\\n"
bad_import data_trailing_comma_array tc.json prefs "tc.json: invalid JSON array" "[$pj},]\\n"
bad_import data_transition_dims dims.jsonl transitions "dims.jsonl:2: 'obs' has 3 numbers, the first record's has 2" \
  "{\"obs\":[1,2],\"action\":[0.5],\"next_obs\":[1,2],$tj}\\n{\"obs\":[1,2,3],\"action\":[0.5],\"next_obs\":[1,2,3],$tj}\\n"
bad_import data_transition_next_obs dims2.jsonl transitions "dims2.jsonl:1: 'obs' has 2 numbers and 'next_obs' 1" \
  "{\"obs\":[1,2],\"action\":[0.5],\"next_obs\":[1],$tj}\\n"
# hh_dpo.lua on a dataset too small to hold any pair out says so (it once died in string.format)
printf '{"prompt":"a b","chosen":"yes it is","rejected":"no"}\n{"prompt":"c d","chosen":"sure","rejected":"nah"}\n' >tiny3.jsonl
"$LATHE" data import tiny3.jsonl --name tiny3 --schema prefs --store hhtiny.lmdb >/dev/null 2>&1
expect hh_dpo_no_heldout 1 "dataset 'tiny3' left no held-out pairs" -- "$LATHE" run "$ROOT/share/recipes/hh_dpo.lua" \
  --store hhtiny.lmdb --set dataset=tiny3 --set sft_steps=2 --set dpo_steps=2 --headless
expect data_rm 0 "" -- "$LATHE" data rm p --store ds.lmdb
expect data_rm_missing 1 "no dataset 'p'" -- "$LATHE" data rm p --store ds.lmdb
expect data_suggest 2 "did you mean 'ls'" -- "$LATHE" data lss --store ds.lmdb
if want data_hh_rlhf; then
  hh=$ROOT/share/data/preference/hh-rlhf/helpful-base/test.jsonl.gz
  if [ -f "$hh" ]; then
    expect data_hh_rlhf 0 "imported 2354 records as 'hh' \(prefs\)" -- "$LATHE" data import "$hh" --name hh --schema prefs --store ds.lmdb
  else skip data_hh_rlhf "no $hh"; fi
fi
# PandaLM's test set: one JSON array; majority votes become chosen and label (105 ties)
if want data_pandalm; then
  pl=$ROOT/share/data/preference/pandalm/testset-v1.json.gz
  if [ -f "$pl" ]; then
    expect data_pandalm 0 "imported 999 records as 'pl' \(prefs\)" -- "$LATHE" data import "$pl" --name pl --schema prefs --store ds.lmdb
    ties=$("$LATHE" data export pl --store ds.lmdb | grep -c '"label":0.5')
    [ "$ties" = 105 ] && ok data_pandalm_ties || bad data_pandalm_ties "ties=$ties, want 105"
  else skip data_pandalm "no $pl"; fi
fi
printf '[{"prompt": "a", "chosen": "b", "rejected": "c"},\n {"prompt": "a", "chosen": 1}]\n' >arr.json
expect data_array_bad_record 2 "arr.json: record 2: field 'chosen' is a number, want a string" -- "$LATHE" data import arr.json --name arr --schema prefs --store tx.lmdb
printf '[{"prompt": "a", "chosen": "b", "rejected": "c"}' >arr2.json
expect data_array_truncated 2 "arr2.json: invalid JSON array: truncated" -- "$LATHE" data import arr2.json --name arr --schema prefs --store tx.lmdb

# ---- offline-to-online RL: SAC learns Pendulum-v1; generators and transitions ----
expect sac_learns_pendulum 0 "done final_return" -- "$LATHE" run "$T/calql.lua" --store sac.lmdb --set mode=pendulum --set steps=10000 --threads 1
expect calql_calibration 0 "calql mean Q\(data\) - G [0-9]" -- "$LATHE" run "$T/calql.lua" --store calib.lmdb --set mode=calib --threads 1
expect data_generate 0 "generated 2000 records as 'm'" -- "$LATHE" data generate mazedata m --set transitions=2000 --set maze=medium --store gen.lmdb
expect data_generate_exists 2 "dataset 'm' already exists" -- "$LATHE" data generate mazedata m --store gen.lmdb
expect data_generate_not_generator 2 "'pointmaze' is an environment, not a generator" -- "$LATHE" data generate pointmaze x --store gen.lmdb
expect data_generate_bad_option 3 "mazedata: maze = 'nope'" -- "$LATHE" data generate mazedata x --set maze=nope --store gen.lmdb
if want data_generate_trajectories; then
  # every trajectory ends terminated or truncated, and next_obs follows into obs within one
  "$LATHE" data export m --store gen.lmdb | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
ends = [r["terminated"] or r["truncated"] for r in recs]
assert ends[-1], "last record ends no trajectory"
for a, b, e in zip(recs, recs[1:], ends):
    assert e or a["next_obs"] == b["obs"], "a trajectory breaks without an end flag"
    assert all(-1 <= x <= 1 for x in a["action"])
print(sum(ends), "trajectories")' >gen.out 2>&1 && ok data_generate_trajectories || bad data_generate_trajectories "" "$(cat gen.out)"
fi
# a generator run inside a store write that hits the map limit (64 KiB here:
# LMDB's MDB_MAP_FULL, the map doubled, the write repeated) starts again from
# a fresh instance: the stored dataset is the one an unforced store holds
if want data_generate_map_full; then
  LATHE_STORE_MAPSIZE=65536 "$LATHE" data generate mazedata m --set transitions=2000 --set maze=medium --store genfull.lmdb >/dev/null 2>genfull.err
  "$LATHE" data export m --store gen.lmdb >gen.a 2>/dev/null
  "$LATHE" data export m --store genfull.lmdb >gen.b 2>/dev/null
  if [ -s gen.a ] && cmp -s gen.a gen.b && [ "$(du -k genfull.lmdb/data.mdb | cut -f1)" -gt 64 ]; then ok data_generate_map_full
  else bad data_generate_map_full "datasets differ or the map never grew" "$(cat genfull.err)"; fi
fi
if want data_d4rl_names; then
  printf '{"observations":[0,1],"actions":[0.5,-0.5],"rewards":0,"next_observations":[0.1,1],"terminals":0,"timeouts":1}\n' >d4rl.jsonl
  "$LATHE" data import d4rl.jsonl --name d4 --schema transitions --store gen.lmdb 2>/dev/null &&
    "$LATHE" data export d4 --store gen.lmdb | grep -q '"obs":\[0,1\].*"terminated":false,"truncated":true' &&
    ok data_d4rl_names || bad data_d4rl_names "D4RL's field names were not taken" "$("$LATHE" data export d4 --store gen.lmdb)"
fi
expect calql_missing_dataset 1 "no dataset 'nope'" -- "$LATHE" run "$T/calql.lua" --store gen.lmdb --set dataset=nope
expect calql_needs_box 1 "needs an environment with box observations and actions" -- "$LATHE" run "$T/calql.lua" --store gen.lmdb --set env=cartpole --set env_config=

# ---- the example user plugin, built with the documented cc command ----
if want user_plugin; then
  if cc -shared -fPIC -I"$ROOT/workbench" "$ROOT/share/examples/hello.c" -o hello.so 2>cc.err; then
    expect user_plugin_recipe 0 "" -- "$LATHE" run "$T/user_plugin.lua" --store up.lmdb --set so="$WORK/hello.so"
    LATHE_PLUGIN_PATH=$WORK/hello.so expect user_plugin_env 0 "" -- "$LATHE" plugins hello
    if want user_plugin_env_list; then
      LATHE_PLUGIN_PATH=$WORK "$LATHE" plugins | grep -q "^hello" && ok user_plugin_env_list || bad user_plugin_env_list
    fi
  else bad user_plugin "cc failed" "$(cat cc.err)"; fi
fi
# ---- the plugin ABI: versions, the kinds' rules, the host's duties (lathe.h) ----
# a plugin of API 5 (one int argument, a flat descriptor) serves no 6.x host
printf '#include <stddef.h>\nstatic int p[8] = {5};\nconst void *lathe_plugin_entry(int v) { return v == 5 ? p : NULL; }\n' >old.c
cc -shared -fPIC old.c -o old.so 2>/dev/null
LATHE_PLUGIN_PATH=$WORK/old.so expect plugin_apiver 5 "serves no API 6\.3 .*rebuild it" -- "$LATHE" plugins
# one that claims a major it was not built for is refused by the registry too
printf '#include <lathe.h>\nstatic const lathe_plugin_t p = {7, 0, "old"};\nconst lathe_plugin_t *lathe_plugin_entry(int a, int b) { return &p; }\n' >old7.c
cc -shared -fPIC -I"$ROOT/workbench" old7.c -o old7.so 2>/dev/null
LATHE_PLUGIN_PATH=$WORK/old7.so expect plugin_major 5 "built for plugin API 7\.0, this lathe speaks 6\.3" -- "$LATHE" plugins
probe() { # probe NAME -DFLAG...: build tests/plugins/probe.c as NAME.so
  local n=$1
  shift
  cc -shared -fPIC -I"$ROOT/workbench" "$@" "$ROOT/tests/plugins/probe.c" -o "$n.so" 2>"$n.cc" ||
    bad "$n" "cc failed" "$(cat "$n.cc")"
}
# built against the previous minor (6.0: no host->stopping): loads and runs
if want abi_previous_minor; then
  if cc -shared -fPIC -I"$ROOT/workbench" -DLATHE_API_TARGET=0 "$ROOT/share/examples/hello.c" \
    -o hello60.so 2>cc.err; then
    LATHE_PLUGIN_PATH=$WORK/hello60.so expect abi_previous_minor_loads 0 "built for plugin API 6\.0" -- "$LATHE" plugins hello
    expect abi_previous_minor 0 "hello position" -- "$LATHE" run "$T/user_plugin.lua" --store up60.lmdb --set so="$WORK/hello60.so"
  else bad abi_previous_minor "cc failed" "$(cat cc.err)"; fi
fi
probe newer -DLATHE_API_TARGET=4
LATHE_PLUGIN_PATH=$WORK/newer.so expect abi_newer_minor 5 "or a newer minor" -- "$LATHE" plugins
probe envstub -DPROBE_ENV_STUB
LATHE_PLUGIN_PATH=$WORK/envstub.so expect kind_env_stub 5 "'probe' \(environment\) lacks spaces, reset, set_state or step" -- "$LATHE" plugins
probe tasksaves -DPROBE_TASK_SAVES
LATHE_PLUGIN_PATH=$WORK/tasksaves.so expect kind_task_saves 5 "pure function of its config: save and load must be NULL" -- "$LATHE" plugins
probe twokinds -DPROBE_TWO_KINDS
LATHE_PLUGIN_PATH=$WORK/twokinds.so expect kind_two 5 "must set its algorithm interface and no other" -- "$LATHE" plugins
probe textstub -DPROBE_TEXTENV
LATHE_PLUGIN_PATH=$WORK/textstub.so expect kind_textenv_stub 5 "'probe' \(textenv\) lacks reset or step" -- "$LATHE" plugins
probe text61 -DPROBE_TEXTENV -DLATHE_API_TARGET=1
LATHE_PLUGIN_PATH=$WORK/text61.so expect kind_textenv_before_6_2 5 "'probe': kind 5 is not one of 1-4" -- "$LATHE" plugins
probe hostkey -DPROBE_HOST_KEY
LATHE_PLUGIN_PATH=$WORK/hostkey.so expect plugin_option_host_key 5 "'probe': option 'max_steps' is a key every run has" -- "$LATHE" plugins
probe nnabi -DPROBE_NN_ABI=99
LATHE_PLUGIN_PATH=$WORK/nnabi.so expect nn_abi_mismatch 5 "built against nn library ABI 99, the loaded one is" -- "$LATHE" plugins
if want nn_one_library; then # no plugin carries its own copy of the nn core
  copies=$(for so in "$LATHE_PLUGIN_DIR"/*.so; do nm -D --defined-only "$so" | grep -q ' nn_' && echo "$so"; done)
  needs=$(for so in "$LATHE_PLUGIN_DIR"/*.so "$LATHE"; do # each that calls it finds the one library
    nm -D --undefined-only "$so" | grep -q ' nn_' && ! ldd "$so" | grep -q 'liblathe-nn.so => /' && echo "$so"; done)
  if [ -z "$copies$needs" ]; then ok nn_one_library; else bad nn_one_library "own nn copies: $copies; not linked: $needs"; fi
fi
probe bigspace -DPROBE_BIG_SPACE
printf 'lathe.register{name = "probe", so = lathe.opt("so", "")}\nlathe.env("probe")\n' >bigspace.lua
expect env_space_limit 1 "probe: observation space of 65 dimensions \(1 to 64\)" -- "$LATHE" run bigspace.lua --store big.lmdb --set so="$WORK/bigspace.so"
saw env_space_limit_destroyed "probe: destroyed"
# a create() that fails after allocating: the host destroys the partial instance (ASan: no leak)
probe failcreate -DPROBE_FAIL_CREATE
printf 'lathe.register{name = "probe", so = lathe.opt("so", "")}\nlathe.run("probe", {})\n' >probe.lua
expect failed_create 1 "probe: refused after allocating" -- "$LATHE" run probe.lua --store fc.lmdb --set so="$WORK/failcreate.so"
saw failed_create_destroyed "probe: destroyed"
# host->stopping (6.1): a step that runs until asked to stop returns, and the run checkpoints
if want host_stopping; then
  probe stopping -DPROBE_STOPPING
  "$LATHE" run probe.lua --store stop.lmdb --set so="$WORK/stopping.so" --headless >stop.out 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q running < <("$LATHE" runs --store stop.lmdb 2>/dev/null) && break; sleep 0.1; done
  kill -INT $pid
  # a host->stopping() that never says so would leave the step spinning: give up after 30 s
  for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill -9 $pid 2>/dev/null
  wait $pid
  rc=$?
  if [ $rc = 130 ] && grep -q "probe: stopping() seen in step 1" stop.out &&
    "$LATHE" runs --store stop.lmdb | grep -q interrupted; then ok host_stopping
  else bad host_stopping "exit $rc" "$(cat stop.out)"; fi
fi
printf 'int x;\n' >noentry.c
cc -shared -fPIC noentry.c -o noentry.so 2>/dev/null
LATHE_PLUGIN_PATH=$WORK/noentry.so expect plugin_no_entry 5 "has no lathe_plugin_entry" -- "$LATHE" plugins

echo "e2e: $pass passed, $fail failed, $skipped skipped"
[ $fail = 0 ]
