-- one SFT run on a synthetic text dataset, for bench/mpi_dp.sh: a GPT of
-- --set width/layers (ctx 128, batch 16, byte tokens), --set steps steps
if not lathe.data.count("dpbench") then
  local words = {"the", "model", "learns", "a", "policy", "from", "its", "own", "samples",
                 "and", "reward", "gradient", "step", "value", "of", "each", "state"}
  local recs, x = {}, 1
  for i = 1, 400 do
    local t = {}
    for k = 1, 24 do
      x = (x * 1103515245 + 12345) % 2147483648
      t[k] = words[x % #words + 1]
    end
    recs[i] = {text = table.concat(t, " ")}
  end
  lathe.data.create("dpbench", "text", recs)
end
local h = lathe.run("sft", {dataset = "dpbench", tokenizer = "bytes", ctx = 128, batch = 16,
                            width = lathe.opt("width", 192), heads = 4,
                            layers = lathe.opt("layers", 4), steps = lathe.opt("steps", 20),
                            eval_every = 1000000, log_every = 1000000, warmup = 0,
                            ckpt_every = 0})
assert(h.status == "done", h.error)
