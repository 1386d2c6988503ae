#!/usr/bin/env bash
# run.sh - lathe's nn workloads beside the same work in PyTorch, at 1 and 2
# threads, in one invocation (make bench). The protocol, per row:
#  1. PyTorch's variants are each timed once (REPS steps, median) and the
#     fastest is kept: with and without flushing denormals (lathe flushes
#     them), and at 2 threads also OMP_WAIT_POLICY=PASSIVE, one intra-op thread
#     with two BLAS threads, and OPENBLAS_THREAD_TIMEOUT=18 (what lathe sets
#     for the OpenBLAS both use; nn.h nn_blas_setup).
#  2. PAIRS pairs (default 5) are run interleaved, lathe then PyTorch, each a
#     process of REPS timed steps after warm-up (its median); the ratio of
#     each pair is taken, so the machine's drift over minutes cancels.
#  3. The row prints the medians of each side's rates, the median of the
#     paired ratios with their range (min-max), the peak resident memory of
#     each process, and sgemm%: the time the step's matrix products take
#     when replayed alone in OpenBLAS (same shapes, recorded from one step)
#     as a fraction of lathe's whole step (median over the pairs).
# With 1 thread both are pinned to CPU 0.
set -u
cd "$(dirname "$0")/.."
BENCH=build/bench
PY=/usr/bin/python3
REPS=${REPS:-20}
PAIRS=${PAIRS:-5}
# WORKLOADS picks table rows; THREADS the thread counts; LOOPS=0 skips the
# whole-loop comparisons, LOOPS=archer runs only the ArCHer one.
WORKLOADS=${WORKLOADS:-"dqn_mse dqn_hlgauss sac_cql gpt128 gpt256 gpt768 dpo rm_bt rm_pairwise sample_b1 sample_b32 sample_b1_nocache sample_b32_nocache"}
THREADS=${THREADS:-"1 2"}
have_torch=1
$PY -c "import torch" 2>/dev/null || have_torch=0
[ $have_torch = 1 ] || echo "bench: python3-torch not installed: lathe only (apt-get install python3-torch)" >&2
field() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
torch_run() { # torch_run VARIANT WORKLOAD THREADS PIN...: one JSON line
  local v=$1 wl=$2 thr=$3 tt=$3
  shift 3
  [[ $v == *TORCH_ONE* ]] && tt=1
  env $v "$@" $PY bench/bench_torch.py "$wl" "$tt" "$REPS" 2>/dev/null
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ $have_torch = 1 ] && echo "torch: $($PY -c 'import torch; print(torch.__version__)')"
echo "protocol: $PAIRS interleaved pairs of $REPS timed steps per process; ratio = median of the paired ratios (min-max)"
printf '| %-11s | %s | %10s | %10s | %6s | %11s | %7s | %8s | %6s | %-10s | %s |\n' workload thr lathe torch ratio range "RSS MB" "torch MB" "sgemm%" unit "torch variant"
printf '|%s|\n' "-------------|-----|------------|------------|--------|-------------|---------|----------|--------|------------|--------------"
for thr in $THREADS; do
  pin=()
  [ "$thr" = 1 ] && command -v taskset >/dev/null && pin=(taskset -c 0)
  for wl in $WORKLOADS; do
    best="" bestr=0 unit=""
    if [ $have_torch = 1 ]; then
      variants=("OMP_NUM_THREADS=$thr" "OMP_NUM_THREADS=$thr TORCH_FTZ=1")
      [ "$thr" != 1 ] && variants+=("OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$thr TORCH_FTZ=1"
        "OPENBLAS_NUM_THREADS=$thr OMP_NUM_THREADS=1 TORCH_ONE=1 TORCH_FTZ=1"
        "OPENBLAS_THREAD_TIMEOUT=18 OMP_NUM_THREADS=$thr TORCH_FTZ=1"
        "OPENBLAS_THREAD_TIMEOUT=18 OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$thr TORCH_FTZ=1")
      for v in "${variants[@]}"; do
        t=$(torch_run "$v" $wl $thr "${pin[@]}") || continue
        r=$(field "$t" rate)
        [ -n "$r" ] && awk -v a="$r" -v b="$bestr" 'BEGIN{exit !(a>b)}' && best=$v bestr=$r
      done
    fi
    lr=() tr=() ra=() fr=() lm=() tm=()
    for _ in $(seq "$PAIRS"); do
      l=$("${pin[@]}" $BENCH $wl $thr $REPS) || continue
      a=$(field "$l" rate) unit=$(sed -n 's/.*"unit":"\([^"]*\)".*/\1/p' <<<"$l")
      lr+=("$a") lm+=("$(field "$l" peak_rss_mb)")
      fr+=("$(awk -v a="$(field "$l" gemm_alone_s)" -v m="$(field "$l" median_s)" 'BEGIN{printf "%.0f", 100*a/m}')")
      [ -n "$best" ] || continue
      t=$(torch_run "$best" $wl $thr "${pin[@]}") || continue
      b=$(field "$t" rate)
      tr+=("$b") tm+=("$(field "$t" peak_rss_mb)") ra+=("$(awk -v a="$a" -v b="$b" 'BEGIN{print a/b}')")
    done
    [ ${#lr[@]} -gt 0 ] || continue
    ts=- ratio=- range=- tmem=- tv=-
    if [ ${#ra[@]} -gt 0 ]; then
      ts=$(printf '%.6g' "$(med "${tr[@]}")") ratio=$(printf '%.2f' "$(med "${ra[@]}")")
      range=$(printf '%s\n' "${ra[@]}" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.2f-%.2f", lo, hi}')
      tmem=$(printf '%.1f' "$(med "${tm[@]}")")
      tv=$(sed 's/OMP_NUM_THREADS=[0-9]*//; s/TORCH_ONE=1/1 intra-op/; s/OMP_WAIT_POLICY=//; s/OPENBLAS_NUM_THREADS=/blas /; s/OPENBLAS_THREAD_TIMEOUT=/timeout /; s/TORCH_FTZ=1/ftz/; s/  */ /g; s/^ //; s/ $//' <<<"$best")
      [ -n "$tv" ] || tv=default
    fi
    printf '| %-11s | %3s | %10.6g | %10s | %6s | %11s | %7.1f | %8s | %6s | %-10s | %s |\n' $wl $thr "$(med "${lr[@]}")" "$ts" "$ratio" "$range" "$(med "${lm[@]}")" "$tmem" "$(med "${fr[@]}")" "$unit" "$tv"
  done
done

# the whole loops (LOOPS=0 skips them)
[ "${LOOPS:-1}" = 0 ] && exit 0
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
ls=$(med "${lr[@]}") ts=-
[ $have_torch = 1 ] && ts=$(med "${tr[@]}")
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
  ls=$(med "${lr[@]}") ts=-
  [ $have_torch = 1 ] && ts=$(med "${tr[@]}")
  echo "ArCHer iteration on twentyq ($thr thread(s), median of 3, seconds per iteration; lower is better):"
  echo "  lathe $ls s (last: $lw)"
  echo "  PyTorch $ts s (last: $tw)$( [ "$ts" != - ] && awk -v a=$ls -v b=$ts 'BEGIN{printf "; lathe is %.2fx faster", b/a}')"
done
