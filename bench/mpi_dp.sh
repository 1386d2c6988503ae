#!/usr/bin/env bash
# mpi_dp.sh - data-parallel step time: one SFT run (bench/dp.lua, a GPT of
# WIDTH x LAYERS, 16 sequences of 128 byte tokens a step) stepped by one
# process with one and with two numeric threads, and by two Open MPI ranks of
# one thread each (--data-parallel: 8 sequences each, gradients summed on
# rank 0 over TCP); REPS times interleaved. Prints each way's median time per
# step in the steady state (from perf/steps_per_sec, start-up left out), the
# median of the paired ratios to one process with two threads, and rank 0's
# median share of the time in the all-reduce (perf/allreduce_share).
set -u
cd "$(dirname "$0")/.."
L=$PWD/build/lathe
WIDTH=${WIDTH:-192} LAYERS=${LAYERS:-4} STEPS=${STEPS:-40} REPS=${REPS:-5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --mca btl tcp,self"
W=$(mktemp -d /tmp/lathe-dpbench-XXXXXX)
trap 'rm -rf "$W"' EXIT
ways=("threads1" "threads2" "np2")
declare -A cmd=(
  [threads1]="$L run bench/dp.lua --threads 1"
  [threads2]="$L run bench/dp.lua --threads 2"
  [np2]="$MPIRUN -np 2 $L run bench/dp.lua --threads 1 --mpi --data-parallel")
declare -A times
share=""
for rep in $(seq "$REPS"); do
  for w in "${ways[@]}"; do
    rm -rf "$W/s.lmdb"
    ${cmd[$w]} --store "$W/s.lmdb" --headless --set width="$WIDTH" --set layers="$LAYERS" \
      --set steps="$STEPS" >"$W/out" 2>"$W/err" ||
      { echo "mpi_dp: $w failed: $(tail -c 300 "$W/err")" >&2; exit 1; }
    # the steady state: the median of the run's perf/steps_per_sec points
    # after the first (which holds the start, and under MPI the shards' start)
    t=$("$L" metrics 1 --store "$W/s.lmdb" | awk -F, '$1 == "perf/steps_per_sec" {print $3}' |
      tail -n +2 | sort -g | awk '{a[NR] = $1} END {print NR ? 1000 / a[int((NR + 1) / 2)] : "nan"}')
    [ "$w" = np2 ] && share+="$("$L" metrics 1 --store "$W/s.lmdb" |
      awk -F, '$1 == "perf/allreduce_share" {print $3}' | tail -n +2 | sort -g |
      awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}') "
    times[$w]+="$t "
  done
done
params=$(grep -o "[0-9]* parameters" "$W/out" | head -1)
echo "machine: $(nproc) cores; GPT width $WIDTH, $LAYERS layers ($params); 16 x 128 tokens a step; median of $REPS"
printf '| %-8s | %11s | %19s |\n' way "ms per step" "ratio to threads2"
printf '|%s|\n' "----------|-------------|---------------------"
for w in "${ways[@]}"; do
  med=$(tr ' ' '\n' <<<"${times[$w]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  ratio=$(paste <(tr ' ' '\n' <<<"${times[$w]}" | grep .) <(tr ' ' '\n' <<<"${times[threads2]}" | grep .) |
    awk '{print $1 / $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '| %-8s | %11.1f | %19.2f |\n' "$w" "$med" "$ratio"
done
echo "np2: rank 0 in the all-reduce $(tr ' ' '\n' <<<"$share" | grep . | sort -g |
  awk '{a[NR] = $1} END {printf "%.0f%%", 100 * a[int((NR + 1) / 2)]}') of the time (median)"
