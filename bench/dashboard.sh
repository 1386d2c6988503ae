#!/usr/bin/env bash
# dashboard.sh - what the dashboard costs (bench/README.md, "Dashboard"):
#   1. the same DQN run headless and under the dashboard (in a tmux pane),
#      alternated REPS times: median wall time of each and the slowdown;
#   2. the CPU time of `lathe watch` redrawing and polling a finished store of
#      six 100k-step runs for SECS seconds, as a share of one core.
# Runs pinned to one core (taskset) so the two cases see the same machine.
set -u
cd "$(dirname "$0")/.."
LATHE=$PWD/build/lathe
export LATHE_PLUGIN_DIR=$PWD/build/plugins LATHE_THREADS=1 LANG=C.UTF-8 LC_ALL=C.UTF-8
REPS=${REPS:-5}
SECS=${SECS:-20}
STEPS=${STEPS:-60000}
W=$(mktemp -d /tmp/lathe-dash-XXXXXX)
TM="tmux -L lathe-bench-$$ -f /dev/null"
trap '$TM kill-server 2>/dev/null; rm -rf "$W"' EXIT
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
cat >"$W/r.lua" <<EOF
lathe.run("dqn", {seed = 1, total_timesteps = $STEPS, ckpt_every = 20000})
EOF
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: >"$W/headless" && : >"$W/dash"
for ((i = 0; i < REPS; i++)); do
  rm -rf "$W/h.lmdb" "$W/d.lmdb"
  s=$(date +%s.%N)
  $pin "$LATHE" run "$W/r.lua" --store "$W/h.lmdb" --headless >/dev/null 2>&1
  echo "$(date +%s.%N) - $s" | bc >>"$W/headless"
  $TM new-session -d -s b -x 160 -y 48 \
    "s=\$(date +%s.%N); $pin $LATHE run $W/r.lua --store $W/d.lmdb >/dev/null 2>&1; echo \"\$(date +%s.%N) - \$s\" | bc >>$W/dash"
  while $TM has-session -t b 2>/dev/null; do sleep 0.2; done
done
h=$(median <"$W/headless") d=$(median <"$W/dash")
echo "dqn $STEPS steps, median of $REPS: headless ${h}s, dashboard ${d}s, slowdown $(echo "scale=2; 100 * ($d - $h) / $h" | bc)%"

# the watcher's own cost: six finished runs, redrawn 4 times a second
cat >"$W/six.lua" <<EOF
local r = {}
for s = 1, 6 do r[s] = lathe.spawn("dqn", {seed = s, total_timesteps = 100000, ckpt_every = 50000}) end
lathe.wait(r)
EOF
"$LATHE" run "$W/six.lua" --store "$W/six.lmdb" --headless --workers 2 >/dev/null 2>&1
$TM new-session -d -s w -x 160 -y 48 "$LATHE watch 1 2 3 4 5 6 --store $W/six.lmdb"
sleep 1
$TM send-keys -t w + j + j + j + j + j + # overlay all six
pid=$($TM list-panes -t w -F "#{pane_pid}")
grep -q lathe "/proc/$pid/comm" || pid=$(pgrep -P "$pid" lathe)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
a=$(ticks); sleep "$SECS"; b=$(ticks)
hz=$(getconf CLK_TCK)
echo "lathe watch, 6 runs overlaid, 4 panels, 160x48: $(echo "scale=2; 100 * ($b - $a) / $hz / $SECS" | bc)% of one core over ${SECS}s"
