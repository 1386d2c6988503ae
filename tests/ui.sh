#!/usr/bin/env bash
# ui.sh - the dashboard driven as a person would, in tmux (send keys, read the
# screen), `lathe watch` attached to a headless run of another process, and
# `lathe plot` figures rendered to PNG (rsvg-convert) and inspected.
# Prints one line per check and "ui: N passed, N failed".
#   LATHE=build/lathe LATHE_PLUGIN_DIR=build/plugins bash tests/ui.sh [FILTER]
set -u
LATHE=$(cd "$(dirname "${LATHE:-build/lathe}")" && pwd)/$(basename "${LATHE:-build/lathe}")
export LATHE_PLUGIN_DIR=$(cd "${LATHE_PLUGIN_DIR:-build/plugins}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/tests/lua
FILTER=${1:-}
WORK=$(mktemp -d /tmp/lathe-ui-XXXXXX)
TM="tmux -L lathe-ui-$$ -f /dev/null"
cleanup() {
  $TM kill-server 2>/dev/null
  [ -n "${BG:-}" ] && kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
unset LATHE_STORE LATHE_PLUGIN_PATH NO_COLOR
export LATHE_THREADS=1 LANG=C.UTF-8 LC_ALL=C.UTF-8
pass=0
fail=0

ok() { pass=$((pass + 1)); printf 'ok   %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; }
want() { [ -z "$FILTER" ] || [[ "$1" == *"$FILTER"* ]]; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }

screen() { $TM capture-pane -p -t "$1" "${@:2}"; }
# wait_for SESSION REGEX [SECONDS]: until the screen shows REGEX
wait_for() {
  local i
  for ((i = 0; i < ${3:-10} * 10; i++)); do
    screen "$1" | grep -Eq -- "$2" && return 0
    sleep 0.1
  done
  return 1
}
# the step column of run $2's row
step_of() { screen "$1" | sed -n "s/^[> ][+ ] *$2 .*running *\([0-9]*\) \/.*/\1/p" | head -1; }

# ---- the curves as files ----
if want plot; then
  "$LATHE" run "$T/one.lua" --store p.lmdb --set steps=400 --headless >/dev/null 2>&1
  "$LATHE" run "$T/one.lua" --store p.lmdb --set steps=400 --set s=2 --headless >/dev/null 2>&1
  "$LATHE" run "$T/one.lua" --store p.lmdb --set steps=400 --set s=3 --set hidden=8 \
    --headless >/dev/null 2>&1
  "$LATHE" plot 1,2 3 --store p.lmdb --metric loss --smooth 0.6 --logy --vline 200:half \
    -o fig.svg 2>plot.err
  check plot_writes_svg "[ -s fig.svg ] && grep -q '</svg>' fig.svg" "$(cat plot.err)"
  check plot_legend_from_config "grep -q 'hidden=32 (n=2)' fig.svg && grep -q 'hidden=8' fig.svg"
  check plot_band_and_marker "grep -q '<polygon' fig.svg && grep -q 'stroke-dasharray' fig.svg"
  if rsvg-convert fig.svg -o fig.png 2>rsvg.err; then
    read -r w h inked coloured < <(python3 "$ROOT/tests/pngstat.py" fig.png)
    check plot_renders_to_png "[ $w = 640 ] && [ $h = 400 ]" "size ${w}x$h"
    check plot_png_not_blank "[ $inked -gt 5000 ] && [ $coloured -gt 1000 ]" \
      "inked $inked coloured $coloured"
  else bad plot_renders_to_png "rsvg-convert failed" "$(cat rsvg.err)"; fi
  "$LATHE" plot 1 --store p.lmdb --metric nope -o x.svg 2>err; rc=$?
  check plot_missing_metric "[ $rc = 1 ] && grep -q \"run 1 has no metric 'nope' (it has: \" err" \
    "exit $rc: $(cat err)"
  "$LATHE" plot 1-x --store p.lmdb --metric loss -o x.svg 2>err; rc=$?
  check plot_bad_group "[ $rc = 2 ] && grep -q \"'1-x' is not a run\" err" "exit $rc: $(cat err)"
  "$LATHE" plot 1 --store p.lmdb --metric loss --hline 0.5:target --hline 0.25 -o h.svg 2>err
  check plot_reference_levels "[ \$(grep -c 'stroke-dasharray=\"2,3\"' h.svg) = 2 ] && grep -q '>target<' h.svg" \
    "$(cat err)"
  "$LATHE" plot 1 --store p.lmdb --metric loss --hline half -o x.svg 2>err; rc=$?
  check plot_bad_hline "[ $rc = 2 ] && grep -q \"hline wants Y or Y:LABEL, got 'half'\" err" "exit $rc: $(cat err)"
  "$LATHE" plot 9 --store p.lmdb --metric loss -o x.svg 2>err; rc=$?
  check plot_missing_run "[ $rc = 1 ] && grep -q 'no run 9' err && [ ! -e x.svg ]" \
    "exit $rc: $(cat err)"
  printf 'local r = lathe.run("regress", {steps = 120, log_every = 1})\nprint(lathe.plot{out = "r.svg", metric = "loss", runs = {r}, smooth = 0.5})\n' >plot.lua
  "$LATHE" run plot.lua --store p.lmdb --headless >out 2>err
  check plot_from_lua "grep -q '\"text\":\"r.svg\"' out && grep -q '</svg>' r.svg" "$(cat err)"
fi

# ---- the dashboard of `lathe run` ----
if want dashboard; then
  $TM new-session -d -s d -x 120 -y 36 \
    "$LATHE run $T/one.lua --store d.lmdb --set steps=100000000 --set every=100000; echo EXIT=\$? >exit.txt; sleep 600"
  wait_for d 'regress +running' 15
  check dashboard_shows_run "screen d | grep -Eq '^>  1 +regress +running'" "$(screen d)"
  check dashboard_axes "wait_for d '^ +step ' 5 && screen d | grep -q '┤'" "$(screen d)"
  check dashboard_braille "screen d | grep -qP '[\\x{2801}-\\x{28FF}]'"
  check dashboard_title "screen d | grep -q 'lathe run .*one.lua'"
  $TM send-keys -t d '?'
  check dashboard_help "wait_for d 'lathe dashboard keys' 3" "$(screen d)"
  $TM send-keys -t d Escape
  check dashboard_help_closes "sleep 0.5; ! screen d | grep -q 'lathe dashboard keys'"
  $TM send-keys -t d p
  check dashboard_pause "wait_for d 'run 1: paused at step [0-9]+' 3 && wait_for d '^>  1 +regress +paused' 3" \
    "$(screen d | head -4)"
  sleep 0.5 # the run says the step it holds at; the row shows that step
  ps=$(screen d | sed -n 's/.*run 1: paused at step \([0-9]*\).*/\1/p' | tail -1)
  s1=$(screen d | sed -n 's/^>  1 *regress *paused *\([0-9]*\) .*/\1/p'); sleep 1.5
  s2=$(screen d | sed -n 's/^>  1 *regress *paused *\([0-9]*\) .*/\1/p')
  check dashboard_paused_at_shown_step "[ -n '$ps' ] && [ '$s1' = '$ps' ]" "said $ps, shows $s1"
  check dashboard_paused_holds "[ -n '$s1' ] && [ '$s1' = '$s2' ]" "step $s1 then $s2"
  $TM send-keys -t d p
  check dashboard_resume "wait_for d '^>  1 +regress +running' 3"
  $TM send-keys -t d c
  check dashboard_checkpoint "wait_for d 'run 1: checkpoint at step' 5" "$(screen d | tail -5)"
  $TM send-keys -t d / e v a l Enter
  check dashboard_filter "wait_for d '^eval_loss ' 3 && ! screen d | grep -q '^loss '" "$(screen d)"
  $TM send-keys -t d s l x
  check dashboard_view_keys "wait_for d 'x:time  ema:0.6  y:log' 3" "$(screen d | head -1)"
  $TM resize-window -t d -x 50 -y 12
  check dashboard_too_small "wait_for d 'terminal too small' 3" "$(screen d)"
  $TM resize-window -t d -x 100 -y 30
  check dashboard_redraw_after_resize \
    "wait_for d '^>  1 +regress' 3 && ! screen d | grep -q 'too small' && [ \$(screen d | head -1 | wc -L) -le 100 ]" \
    "$(screen d)"
  $TM send-keys -t d q
  check dashboard_quit_asks "wait_for d 'stop the recipe and its runs' 3"
  $TM send-keys -t d n
  check dashboard_quit_cancel "sleep 0.4; ! screen d | grep -q 'stop the recipe' && [ ! -e exit.txt ]"
  $TM send-keys -t d q y
  for ((i = 0; i < 100; i++)); do [ -s exit.txt ] && break; sleep 0.1; done
  check dashboard_quit_checkpoints "grep -q EXIT=130 exit.txt && [ \"\$($LATHE show 1 --store d.lmdb --json | grep -Ec '\"status\": *\"interrupted\"')\" = 1 ]" \
    "$(cat exit.txt 2>/dev/null) $(screen d)"
  check dashboard_leaves_summary "screen d | grep -q 'run 1 regress: interrupted at step'" "$(screen d)"
fi

# ---- lathe watch: another process's headless run ----
if want watch; then
  "$LATHE" run "$T/one.lua" --store w.lmdb --set steps=100000000 --set every=100000 \
    --headless >/dev/null 2>&1 &
  BG=$!
  for ((i = 0; i < 100; i++)); do [ -d w.lmdb ] && "$LATHE" runs --store w.lmdb 2>/dev/null | grep -q running && break; sleep 0.1; done
  $TM new-session -d -s w -x 110 -y 32 "$LATHE watch --store w.lmdb; echo EXIT=\$? >wexit.txt; sleep 600"
  wait_for w 'regress +running +[0-9]' 10
  a=$(step_of w 1); sleep 2; b=$(step_of w 1)
  check watch_follows_steps "[ -n '$a' ] && [ -n '$b' ] && [ $b -gt $a ]" "steps '$a' then '$b': $(screen w | head -4)"
  check watch_read_only_title "screen w | grep -q 'lathe watch w.lmdb (read-only)'"
  check watch_key_bar_read_only "screen w | tail -1 | grep -q 'Help' && ! screen w | tail -1 | grep -Eq 'Pause|Ckpt'" \
    "$(screen w | tail -1)"
  $TM send-keys -t w p
  check watch_refuses_pause "wait_for w 'belongs to another process' 3"
  kill -TERM "$BG"; wait "$BG"; BG=
  check watch_sees_end "wait_for w 'regress +interrupted' 5" "$(screen w | head -4)"
  $TM send-keys -t w q
  for ((i = 0; i < 50; i++)); do [ -s wexit.txt ] && break; sleep 0.1; done
  check watch_quits "grep -q EXIT=0 wexit.txt"
  # a finished run shown whole, without colour, in ASCII
  $TM new-session -d -s m -x 100 -y 30 \
    "NO_COLOR=1 LANG=C LC_ALL=C $LATHE watch 1 --store p.lmdb; sleep 600"
  wait_for m 'regress +done' 10
  check watch_finished_run "screen m | grep -Eq '^>  1 +regress +done +400 / 400'" "$(screen m | head -4)"
  check watch_ascii_fallback "! screen m | grep -qP '[\\x{2801}-\\x{28FF}]' && screen m | grep -Eq \"[.'-]{3}\"" "$(screen m)"
  check watch_no_color "! screen m -e | grep -q $'\\e\\[3[1-7]m'" "$(screen m -e | head -3 | cat -v)"
  # more runs than rows: the header says which ones show; smoothing keeps the raw curve, faint
  "$LATHE" run "$T/many.lua" --store many.lmdb --set n=12 --headless >/dev/null 2>&1
  $TM new-session -d -s k -x 100 -y 30 "$LATHE watch $(seq -s " " 12) --store many.lmdb; sleep 600"
  wait_for k 'regress +done' 10
  check watch_says_which_runs "screen k | grep -Eq 'runs 1-[0-9]+ of 12'" "$(screen k | head -3)"
  $TM send-keys -t k s
  check watch_smoothing_keeps_raw "wait_for k 'ema 0.6' 3 && screen k -e | grep -q $'\e\[2m'" \
    "$(screen k -e | head -8 | cat -v)"
  "$LATHE" watch --store p.lmdb </dev/null >out 2>err; rc=$?
  check watch_needs_terminal "[ $rc = 2 ] && grep -q 'needs a terminal' err" "exit $rc: $(cat err)"
fi

echo "ui: $pass passed, $fail failed"
[ $fail = 0 ]
