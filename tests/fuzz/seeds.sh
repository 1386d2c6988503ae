#!/usr/bin/env bash
# seeds.sh - (re)make the committed seed corpus of every fuzz target from real
# data: checkpoints of short runs (each plugin through fuzz-ckpt's own
# instances; the model blocks of an sft and a reward-model run), a small real
# store, the heads of the shipped datasets in each container, and config text.
#   bash tests/fuzz/seeds.sh build/fuzz build
set -eu
F=$1 B=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
C=$ROOT/tests/fuzz/corpus
W=$(mktemp -d /tmp/lathe-seeds-XXXXXX)
trap 'rm -rf "$W"' EXIT
rm -rf "$C" && mkdir -p "$C"/{ckpt,model,import,store,config,table,facts}
# attribute tables: a small one, the synthetic 4 x 2, a duplicate pair, the cities' first 12
printf 'object\tcolor\tbig\nsun\tyellow\t1\nsky\tblue\t1\nbee\tyellow\t0\n' >"$C/table/small.tsv"
printf 'object\ta0\ta1\no0\t0\t0\no1\t1\t0\no2\t0\t1\no3\t1\t1\n' >"$C/table/synthetic4.tsv"
printf 'object\tq\nx\tv0\ny\tv0\n' >"$C/table/same.tsv"
head -13 "$ROOT/share/data/games/derived/guess_my_city_attributes.tsv" >"$C/table/cities12.tsv"
export LATHE_PLUGIN_DIR=$ROOT/$B/plugins LATHE_THREADS=1
# checkpoints: fresh and after a short run, as fuzz-ckpt's instances save them
LATHE_SHARE_DIR=$ROOT/share LATHE_PLUGIN_DIR=$ROOT/$F/plugins LATHE_FUZZ_SEEDS="$C/ckpt" "$ROOT/$F/fuzz-ckpt"
# model blocks: an sft run (tokenizer + GPT) and a reward model (+ its head)
cd "$W"
# (small models: a mutation of a 40 KB input runs many times faster than of 400 KB)
"$ROOT/$B/lathe" run "$ROOT/tests/lua/sft.lua" --store m.lmdb --set steps=5 --set width=8 \
  --set heads=2 --set layers=1 >/dev/null 2>&1
"$ROOT/$B/lathe" run "$ROOT/tests/lua/rm.lua" --store r.lmdb --set steps=3 --set epochs=0 \
  --set width=8 --set heads=2 --set layers=1 >/dev/null 2>&1
"$ROOT/$B/lathe-tamper" m.lmdb 1 dump >sft.bin
"$ROOT/$B/lathe-tamper" r.lmdb 1 dump >rm.bin
{ printf '\001'; cat sft.bin; } >"$C/model/lm-sft"
{ printf '\002'; cat rm.bin; } >"$C/model/rm"
# the LTOK block after LMB1's 8 bytes: 16 bytes of header and 8 per BPE merge
{ printf '\000'; tail -c +9 sft.bin | python3 -c '
import struct, sys
t = sys.stdin.buffer.read()
n = struct.unpack("<I", t[12:16])[0]
sys.stdout.buffer.write(t[:16 + 8 * n])'; } >"$C/model/tok-bpe"
# a small real store
"$ROOT/$B/lathe" run "$ROOT/tests/lua/one.lua" --store s.lmdb --set steps=30 --set every=10 >/dev/null 2>&1
cp s.lmdb/data.mdb "$C/store/one-run"
# dataset heads: selector byte = schema + 6 * container (0 .jsonl, 1 .json, 2 .jsonl.gz)
D=$ROOT/share/data
{ printf '\000'; zcat "$D/preference/hh-rlhf/helpful-base/test.jsonl.gz" | head -3; } >"$C/import/prefs-hh"
{ printf '\014'; zcat "$D/preference/hh-rlhf/helpful-base/test.jsonl.gz" | head -2 | gzip -9n; } >"$C/import/prefs-hh-gz"
{ printf '\006'; zcat "$D/preference/pandalm/testset-v1.json.gz" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[:2]))'; } >"$C/import/prefs-pandalm-array"
{ printf '\002'; zcat "$D/math/gsm8k/test.jsonl.gz" | head -2; } >"$C/import/math-gsm8k"
{ printf '\001'; printf '{"prompt":"Q: 1","response":" A: yes"}\n{"prompt":"Q: 2","response":" A: no","extra":[1,2]}\n'; } >"$C/import/sft"
{ printf '\003'; printf '{"text":"hello \\u00e9 world"}\n\n{"text":"x"}\n'; } >"$C/import/text"
"$ROOT/$B/lathe" data generate mazedata mz --store s.lmdb --set transitions=3 >/dev/null 2>&1
{ printf '\004'; "$ROOT/$B/lathe" data export mz --store s.lmdb; } >"$C/import/transitions"
{ printf '\004'; printf '{"observations":[1,2],"actions":[0.5],"rewards":1,"next_observations":[1,2],"terminals":0,"timeouts":1}\n'; } >"$C/import/transitions-d4rl"
# facts: answers (selector byte: entity, attribute, truth) and fuzz-facts' world's own bios
printf '\005 paris .' >"$C/facts/answer"
printf "\022 i don't know ." >"$C/facts/idk"
"$ROOT/$B/lathe" data generate factsworld fb --store s.lmdb --set set=bios --set entities=12 \
  --set seed=5 >/dev/null 2>&1
for e in 0 3; do
  { printf "\\$(printf %03o $e)"; "$ROOT/$B/lathe" data export fb --store s.lmdb |
    sed -n "$((e + 1))s/.*\"response\":\"\\([^\"]*\\)\".*/\\1/p" | tr -d '\n'; } >"$C/facts/bio$e"
done
# config text: --set lines, and a stored config as JSON
printf 'steps=300\nlr=0.00025\ngamma=0.99\ndouble_q=true\nhead=hl_gauss\nhidden=64,64\n' >"$C/config/set-lines"
printf '{"steps":300,"lr":0.00025,"gamma":0.99,"double_q":false,"head":"c51","hidden":"8"}' >"$C/config/json"
ls -la "$C"/* | grep -c '^-' | xargs echo "seed files:"
