#!/usr/bin/env bash
# scaling.sh - thread scaling of the GPT, DPO and sampling rows (issue 22):
# lathe's bench (BENCH, default build/bench) and the same work in PyTorch
# (bench_torch.py with PY, default /usr/bin/python3) at each of THREADS
# (default 1 2 4 8 16, capped at the cores), both pinned to the first t
# cores, lathe then PyTorch (the faster of OMP_WAIT_POLICY ACTIVE and
# PASSIVE) for each count, REPS steps each. Prints each
# rate, the ratio, and each one's speedup over its own rate at 1 thread.
# For a machine larger than the 2 cores `make bench` is tuned on.
set -u
cd "$(dirname "$0")/.."
BENCH=${BENCH:-build/bench} PY=${PY:-/usr/bin/python3} REPS=${REPS:-10}
THREADS=${THREADS:-"1 2 4 8 16"} WORKLOADS=${WORKLOADS:-"gpt128 gpt256 dpo sample_b32"}
cores=$(nproc)
field() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
have_torch=1
$PY -c "import torch" 2>/dev/null || have_torch=0
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ $have_torch = 1 ] && echo "torch: $($PY -c 'import torch; print(torch.__version__)')"
printf '| %-10s | %3s | %12s | %12s | %6s | %13s | %13s | %s |\n' workload thr lathe torch ratio \
  "lathe speedup" "torch speedup" unit
printf '|%s|\n' "------------|-----|--------------|--------------|--------|---------------|---------------|------"
for wl in $WORKLOADS; do
  l1="" t1=""
  for t in $THREADS; do
    [ "$t" -le "$cores" ] || continue
    pin="taskset -c 0-$((t - 1))"
    command -v taskset >/dev/null || pin=""
    l=$($pin "$BENCH" "$wl" "$t" "$REPS") || continue
    lr=$(field "$l" rate) unit=$(sed -n 's/.*"unit":"\([^"]*\)".*/\1/p' <<<"$l")
    tr=-
    if [ $have_torch = 1 ]; then # the faster of two OpenMP wait policies
      for pol in ACTIVE PASSIVE; do
        o=$(OMP_NUM_THREADS=$t OMP_WAIT_POLICY=$pol TORCH_FTZ=1 $pin $PY bench/bench_torch.py \
          "$wl" "$t" "$REPS" 2>/dev/null) || continue
        r=$(field "$o" rate)
        [ "$tr" = - ] || awk -v a="$r" -v b="$tr" 'BEGIN {exit !(a > b)}' && tr=$r
      done
    fi
    [ -n "$l1" ] || l1=$lr
    [ -n "$t1" ] || t1=$tr
    awk -v w="$wl" -v t="$t" -v a="$lr" -v b="$tr" -v a1="$l1" -v b1="$t1" -v u="$unit" 'BEGIN {
      r = (b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b)
      sb = (b == "-" || b1 == "-" || b1 == 0) ? "-" : sprintf("%.2fx", b / b1)
      tb = b == "-" ? "-" : sprintf("%.1f", b)
      printf "| %-10s | %3d | %12.1f | %12s | %6s | %12.2fx | %13s | %s |\n", w, t, a, tb, r, a / a1, sb, u }'
  done
done
