#!/usr/bin/env bash
# run.sh - lathe's nn workloads beside the same work in PyTorch, at 1 and 2
# threads, in one invocation (make bench). Each row: the median rate of each,
# the ratio, the peak resident memory of each, and the fraction of the sgemm
# limit lathe reaches (the step's matrix products replayed in OpenBLAS alone).
# PyTorch is tried with and without flushing denormals (lathe flushes them), and
# for 2 threads also with OMP_WAIT_POLICY=PASSIVE and with one intra-op thread
# and two BLAS threads; the fastest variant is compared.
# With 1 thread both are pinned to CPU 0.
set -u
cd "$(dirname "$0")/.."
BENCH=build/bench
PY=/usr/bin/python3
REPS=${REPS:-20}
# WORKLOADS picks table rows; LOOPS=0 skips the whole-loop comparisons,
# LOOPS=archer runs only the ArCHer one.
WORKLOADS=${WORKLOADS:-"dqn_mse dqn_hlgauss sac_cql gpt128 gpt256 dpo rm_bt rm_pairwise sample_b1 sample_b32 sample_b1_nocache sample_b32_nocache"}
have_torch=1
$PY -c "import torch" 2>/dev/null || have_torch=0
[ $have_torch = 1 ] || echo "bench: python3-torch not installed: lathe only (apt-get install python3-torch)" >&2
field() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ $have_torch = 1 ] && echo "torch: $($PY -c 'import torch; print(torch.__version__)')"
printf '| %-11s | %s | %12s | %12s | %6s | %8s | %8s | %6s | %s |\n' workload thr lathe torch ratio "RSS MB" "torch MB" "sgemm%" unit
printf '|%s|\n' "-------------|-----|--------------|--------------|--------|----------|----------|--------|------"
for thr in 1 2; do
  pin=""
  [ $thr = 1 ] && command -v taskset >/dev/null && pin="taskset -c 0"
  for wl in $WORKLOADS; do
    l=$($pin $BENCH $wl $thr $REPS) || continue
    lr=$(field "$l" rate) lm=$(field "$l" peak_rss_mb)
    frac=$(awk -v a="$(field "$l" gemm_alone_s)" -v m="$(field "$l" median_s)" 'BEGIN{printf "%.0f", 100*a/m}')
    tr=- tm=- ratio=-
    if [ $have_torch = 1 ]; then
      best=""
      variants=("OMP_NUM_THREADS=$thr" "OMP_NUM_THREADS=$thr TORCH_FTZ=1")
      [ $thr = 2 ] && variants+=("OMP_WAIT_POLICY=PASSIVE TORCH_FTZ=1" "OPENBLAS_NUM_THREADS=2 TORCH_ONE=1 TORCH_FTZ=1")
      for v in "${variants[@]}"; do
        tt=$thr
        [[ $v == *TORCH_ONE* ]] && tt=1
        t=$(env $v $pin $PY bench/bench_torch.py $wl $tt $REPS 2>/dev/null) || continue
        r=$(field "$t" rate)
        if [ -z "$best" ] || awk -v a="$r" -v b="$tr" 'BEGIN{exit !(a>b)}'; then best=$t tr=$r tm=$(field "$t" peak_rss_mb); fi
      done
      [ -n "$best" ] && ratio=$(awk -v a="$lr" -v b="$tr" 'BEGIN{printf "%.2f", a/b}')
    fi
    [ "$tr" != - ] && tr=$(printf '%.6g' "$tr") && tm=$(printf '%.1f' "$tm")
    printf '| %-11s | %3s | %12.6g | %12s | %6s | %8.1f | %8s | %6s | %s |\n' $wl $thr "$lr" "$tr" "$ratio" "$lm" "$tm" "$frac" "$(sed -n 's/.*"unit":"\([^"]*\)".*/\1/p' <<<"$l")"
  done
done

# the whole loops (LOOPS=0 skips them)
[ "${LOOPS:-1}" = 0 ] && exit 0
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
if [ "${LOOPS:-1}" != archer ]; then
# the whole DQN loop on CartPole (environment steps per second), 1 thread
tmp=$(mktemp -d)
t0=$(date +%s.%N)
taskset -c 0 build/lathe run bench/dqn_loop.lua --store "$tmp/s.lmdb" --threads 1 >/dev/null 2>&1
t1=$(date +%s.%N)
ls=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", 50000/(b-a)}')
ts=-
[ $have_torch = 1 ] && ts=$(taskset -c 0 $PY bench/dqn_loop_torch.py 50000 1 | awk '{printf "%.0f", $1}')
rm -rf "$tmp"
echo
echo "DQN loop on CartPole-v1 (50k env steps, CleanRL hyperparameters, 1 thread):"
echo "  lathe $ls steps/s, PyTorch $ts steps/s$( [ "$ts" != - ] && awk -v a=$ls -v b=$ts 'BEGIN{printf ", ratio %.2f", a/b}')"

# Cal-QL's online fine-tuning loop on pointmaze (environment steps, one update each), 1 thread,
# lathe and PyTorch interleaved, median of 3 each; the dataset is generated first, untimed
tmp=$(mktemp -d)
build/lathe data generate mazedata bench-open --set maze=open --set transitions=30000 --store "$tmp/s.lmdb" >/dev/null 2>&1
lr=() tr=()
for rep in 1 2 3; do
  t0=$(date +%s.%N)
  taskset -c 0 build/lathe run bench/calql_loop.lua --store "$tmp/s.lmdb" --threads 1 --set steps=2000 >/dev/null 2>&1
  t1=$(date +%s.%N)
  lr+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", 2000/(b-a)}')")
  [ $have_torch = 1 ] && tr+=("$(taskset -c 0 $PY bench/calql_loop_torch.py 2000 1 | awk '{printf "%.0f", $1}')")
done
rm -rf "$tmp"
ls=$(median "${lr[@]}") ts=-
[ $have_torch = 1 ] && ts=$(median "${tr[@]}")
echo "Cal-QL online loop on pointmaze (2000 env steps = 2000 updates, batch 64, 64-64 nets, 1 thread, median of 3):"
echo "  lathe $ls steps/s, PyTorch $ts steps/s$( [ "$ts" != - ] && awk -v a=$ls -v b=$ts 'BEGIN{printf ", ratio %.2f", a/b}')"

fi

# ArCHer iterations on twentyq (32 games, 20 critic steps, 3 actor steps), 1 and 2 threads,
# lathe and PyTorch interleaved, median of 3 each; seconds per iteration after the first
for thr in 1 2; do
  pin=""
  [ $thr = 1 ] && command -v taskset >/dev/null && pin="taskset -c 0"
  lr=() tr=() lw="" tw=""
  for rep in 1 2 3; do
    tmp=$(mktemp -d)
    l=$($pin build/lathe run bench/archer_iter.lua --store "$tmp/s.lmdb" --threads $thr --headless 2>/dev/null |
      sed -n 's/.*"text":"\([0-9.]* s\/iteration[^"]*\)".*/\1/p')
    rm -rf "$tmp"
    lr+=("${l%% *}") lw=$l
    if [ $have_torch = 1 ]; then # at 2 threads PyTorch's fastest of 2 threads, PASSIVE, 1 thread
      best=""
      vs=("$thr")
      [ $thr = 2 ] && vs+=("2p" "1")
      for v in "${vs[@]}"; do
        wp=""
        [ "$v" = 2p ] && wp="OMP_WAIT_POLICY=PASSIVE"
        t=$(env $wp OMP_NUM_THREADS=${v%p} TORCH_FTZ=1 $pin $PY bench/archer_iter_torch.py 4 ${v%p})
        if [ -z "$best" ] || awk -v a="${t%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$t; fi
      done
      tr+=("${best%% *}") tw=$best
    fi
  done
  ls=$(median "${lr[@]}") ts=-
  [ $have_torch = 1 ] && ts=$(median "${tr[@]}")
  echo "ArCHer iteration on twentyq ($thr thread(s), median of 3, seconds per iteration; lower is better):"
  echo "  lathe $ls s (last: $lw)"
  echo "  PyTorch $ts s (last: $tw)$( [ "$ts" != - ] && awk -v a=$ls -v b=$ts 'BEGIN{printf "; lathe is %.2fx faster", b/a}')"
done
