#!/usr/bin/env bash
# mpi_sweep.sh - sweep throughput (runs per hour) of one sweep of small DQN
# runs stepped by one process (--workers 1 and 2) and by Open MPI ranks
# (mpirun -np 2: one worker rank; -np 3: two), every run with one numeric
# thread, each way REPS times interleaved; prints the median wall time and
# runs/hour of each. RUNS and STEPS size the sweep.
set -u
cd "$(dirname "$0")/.."
L=$PWD/build/lathe
RUNS=${RUNS:-12} STEPS=${STEPS:-20000} REPS=${REPS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LATHE_THREADS=1
MPIRUN="mpirun --oversubscribe --mca btl tcp,self"
W=$(mktemp -d /tmp/lathe-mpibench-XXXXXX)
trap 'rm -rf "$W"' EXIT
ways=("workers1" "workers2" "np2" "np3")
declare -A cmd=(
  [workers1]="$L run bench/sweep.lua --workers 1"
  [workers2]="$L run bench/sweep.lua --workers 2"
  [np2]="$MPIRUN -np 2 $L run bench/sweep.lua --mpi"
  [np3]="$MPIRUN -np 3 $L run bench/sweep.lua --mpi")
declare -A times
for rep in $(seq "$REPS"); do
  for w in "${ways[@]}"; do
    rm -rf "$W/s.lmdb"
    t0=$(date +%s.%N)
    ${cmd[$w]} --store "$W/s.lmdb" --set runs="$RUNS" --set steps="$STEPS" >/dev/null 2>"$W/err" ||
      { echo "mpi_sweep: $w failed: $(tail -c 300 "$W/err")" >&2; exit 1; }
    times[$w]+="$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}') "
  done
done
echo "machine: $(nproc) cores; sweep: $RUNS DQN runs x $STEPS steps; median of $REPS"
printf '| %-9s | %8s | %9s |\n' way "wall s" "runs/hour"
printf '|%s|\n' "-----------|----------|-----------"
for w in "${ways[@]}"; do
  med=$(tr ' ' '\n' <<<"${times[$w]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '| %-9s | %8.1f | %9.0f |\n' "$w" "$med" "$(awk -v n="$RUNS" -v t="$med" 'BEGIN {print n * 3600 / t}')"
done
