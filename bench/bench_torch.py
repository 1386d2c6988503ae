#!/usr/bin/python3
"""bench_torch.py - the same workloads as bench.c, in PyTorch, one per invocation:

    /usr/bin/python3 bench/bench_torch.py WORKLOAD THREADS [REPS]

Prints one JSON line like bench.c. The shapes and the work per step match
bench.c exactly (see its comments); run.sh compares the two.
"""
import json, math, os, resource, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torchgpt import GPT, Cache

wl, threads = sys.argv[1], int(sys.argv[2])
reps = min(int(sys.argv[3]) if len(sys.argv) > 3 else 20, 60)
torch.set_num_threads(threads)
torch.manual_seed(1)
if os.environ.get("TORCH_FTZ"):  # flush denormals, as lathe's worker threads do
    torch.set_flush_denormal(True)


def mlp(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ---- workload 2: DQN update ----
def dqn(hl):
    A, K, B = 2, 51 if hl else 1, 128
    q, tq = mlp([4, 120, 84, A * K]), mlp([4, 120, 84, A * K])
    opt = torch.optim.Adam(q.parameters(), lr=2.5e-4)
    obs, nxt = torch.randn(B, 4), torch.randn(B, 4)
    rew, done = torch.ones(B), torch.zeros(B)
    act = torch.arange(B) % 2
    z = 120.0 / K
    centers = -10 + (torch.arange(K) + 0.5) * z
    edges = -10 + torch.arange(K + 1) * z
    sigma = 0.75 * z

    def step():
        with torch.no_grad():
            tn = tq(nxt).view(B, A, K)
            v = (tn.softmax(-1) * centers).sum(-1) if hl else tn.squeeze(-1)
            y = rew + 0.99 * (1 - done) * v.max(1).values
            if hl:
                y = y.clamp(-10, 110)
                cdf = torch.erf((edges[None, :] - y[:, None]) / (math.sqrt(2) * sigma))
                p = (cdf[:, 1:] - cdf[:, :-1]) / (cdf[:, -1:] - cdf[:, :1])
        out = q(obs).view(B, A, K)[torch.arange(B), act]
        loss = -(p * out.log_softmax(-1)).sum(-1).mean() if hl else F.mse_loss(out.squeeze(-1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, "updates/s", 1


# ---- workload 1: SAC + CQL ----
def sac_cql():
    OBS, ACT, B, N = 29, 8, 256, 10
    qs = [mlp([OBS + ACT, 256, 256, 256, 1]) for _ in range(2)]
    tqs = [mlp([OBS + ACT, 256, 256, 256, 1]) for _ in range(2)]
    pi = mlp([OBS, 256, 256, 256, 2 * ACT])
    qopt = [torch.optim.Adam(q.parameters(), lr=3e-4) for q in qs]
    popt = torch.optim.Adam(pi.parameters(), lr=3e-4)
    obs, nxt, act = torch.randn(B, OBS), torch.randn(B, OBS), 0.5 * torch.randn(B, ACT)
    rew, done = torch.randn(B), torch.zeros(B)
    noise = torch.randn(2, B, N, ACT)

    def sample(out, eps):
        mu, ls = out[:, None, :ACT], out[:, None, ACT:].clamp(-5, 2)
        u = mu + ls.exp() * eps
        a = torch.tanh(u)
        lp = (-0.5 * eps * eps - ls - 0.9189385 - torch.log(1 - a * a + 1e-6)).sum(-1)
        return a, lp

    def step():
        with torch.no_grad():
            a_next, lp_next = sample(pi(nxt), noise[1])
            a_pi, lp_pi = sample(pi(obs), noise[0])
            xn = torch.cat([nxt, a_next[:, 0]], 1)
            y = rew + 0.99 * (1 - done) * (torch.min(tqs[0](xn), tqs[1](xn)).squeeze(1)
                                           - 0.2 * lp_next[:, 0])
            rep = obs[:, None, :].expand(B, N, OBS)
            x = torch.cat([torch.cat([obs, act], 1),
                           torch.cat([rep, noise[0]], 2).reshape(B * N, -1),
                           torch.cat([rep, a_pi], 2).reshape(B * N, -1),
                           torch.cat([rep, a_next], 2).reshape(B * N, -1)], 0)
            lw = torch.cat([torch.full((B, N), ACT * math.log(2.0)), -lp_pi, -lp_next], 1)
        for q, opt in zip(qs, qopt):
            out = q(x).squeeze(1)
            samp = torch.cat([out[B:B + B * N].view(B, N), out[B + B * N:B + 2 * B * N].view(B, N),
                              out[B + 2 * B * N:].view(B, N)], 1)
            loss = F.mse_loss(out[:B], y) + 5.0 * (torch.logsumexp(samp + lw, 1) - out[:B]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        a1, lp1 = sample(pi(obs), noise[0][:, :1])
        x1 = torch.cat([obs, a1[:, 0]], 1)
        qmin = torch.min(qs[0](x1), qs[1](x1)).squeeze(1)
        ploss = (0.2 * lp1[:, 0] - qmin).mean()
        popt.zero_grad(set_to_none=True)
        ploss.backward()
        popt.step()
        with torch.no_grad():
            for q, tq in zip(qs, tqs):
                for p, tp in zip(q.parameters(), tq.parameters()):
                    tp.mul_(0.995).add_(0.005 * p)
    return step, "updates/s", 1


# ---- workloads 3, 4: a GPT-2 style model (bench/torchgpt.py) ----
def gpt(width, layers, dpo, H=4, T=128, B=16):
    V = 512
    pol = GPT(V, T, layers, H, width)
    ref = GPT(V, T, layers, H, width) if dpo else None
    opt = torch.optim.AdamW(pol.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tok, tgt = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    mask = (torch.arange(T) >= 32).float().expand(B, T)

    def logps(model, tok):
        lp = model(tok)[:, :-1].log_softmax(-1).gather(2, tok[:, 1:, None]).squeeze(2)
        return (lp * mask[:, 1:]).sum(1)

    def step():
        if not dpo:
            loss = F.cross_entropy(pol(tok).view(-1, V), tgt.view(-1))
        else:
            with torch.no_grad():
                r = logps(ref, tok)
            p = logps(pol, tok)
            z = 0.1 * ((p[:8] - r[:8]) - (p[8:] - r[8:]))
            loss = -F.logsigmoid(z).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), 1.0)
        opt.step()
    return step, ("pairs/s", 8) if dpo else ("tokens/s", B * T)


def reward_model(pairwise):
    """bench.c's rm_bt / rm_pairwise: the rrm_artifacts recipe's reward model,
    32 pairs (64 right-padded sequences), the head at the last non-pad position."""
    V, T, C = 800, 96 if pairwise else 48, 64
    g, head = GPT(V, T, 2, 4, C), nn.Linear(C, 1)
    params = list(g.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    lens = torch.randint(T // 2, T + 1, (64,))
    tok = torch.randint(2, V, (64, T))
    tok[torch.arange(T)[None, :] >= lens[:, None]] = 1
    target = torch.tensor([1.0, 0.0] * 32) if pairwise else torch.ones(32)

    def step():
        h = g.hidden(tok)[torch.arange(64), lens - 1]
        out = head(h).squeeze(1)
        z = out if pairwise else out[0::2] - out[1::2]
        loss = F.binary_cross_entropy_with_logits(z, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return step, "pairs/s", 32


def sample(B, cache):
    """64 new tokens after 16-token prompts, temperature 1, with a KV cache
    (torchgpt.Cache: torch 1.13 has no generate for nanoGPT) or without."""
    V, L, H, C, P, N = 512, 4, 4, 128, 16, 64
    model = GPT(V, 128, L, H, C).eval()
    prompt = torch.randint(0, V, (B, P))

    def step():
        with torch.no_grad():
            if not cache:
                seq = prompt
                for _ in range(N):
                    p = model(seq)[:, -1].softmax(-1)
                    seq = torch.cat([seq, torch.multinomial(p, 1)], 1)
                return
            kv, tok = Cache(model, B), prompt[:, :1]
            for pos in range(P + N - 1):
                logits = kv(tok, pos)
                if pos + 1 < P:
                    tok = prompt[:, pos + 1:pos + 2]
                else:
                    tok = torch.multinomial(logits.softmax(-1), 1)
    return step, "tokens/s", B * N


def prefilled(cache, prompt, N):
    """A step that runs the prompts through the model once, then samples N
    tokens one at a time with the preallocated KV cache written in place."""
    P = prompt.shape[1]

    def step():
        with torch.no_grad():
            logits = cache(prompt, 0)
            for i in range(N):
                tok = torch.multinomial(logits.softmax(-1), 1)
                if i + 1 < N:
                    logits = cache(tok, P + i)
    return step


def rollouts():
    """stepvalue's sampling: 256 rollouts from 40-token prefixes, 48 new tokens
    at temperature 1 (no stop), byte vocabulary, ctx 96, 4 layers, width 128;
    the prefixes through the model once, then one token at a time with a
    preallocated KV cache written in place (the fastest form found here)."""
    V, T, L, H, C, B, P, N = 258, 96, 4, 4, 128, 256, 40, 48
    model = GPT(V, T, L, H, C).eval()
    prompt = torch.randint(2, V, (B, P))
    return prefilled(Cache(model, B), prompt, N), "rollouts/s", B


def familiarity():
    """factqa's sampling in unfamiliar_facts: 128 questions (6-token clozes),
    12 answers of 6 tokens each at temperature 1, BPE vocab 1024, ctx 64, 4
    layers, width 128; the 1,536 rows' prompts through the model once, then
    one token at a time with the preallocated KV cache."""
    V, T, L, H, C, Q, S, P, N = 1024, 64, 4, 4, 128, 128, 12, 6, 6
    model = GPT(V, T, L, H, C).eval()
    prompt = torch.randint(2, V, (Q, P)).repeat_interleave(S, 0)
    return prefilled(Cache(model, Q * S), prompt, N), "questions/s", Q


if wl in ("dqn_mse", "dqn_hlgauss"):
    step, unit, per = dqn(wl == "dqn_hlgauss")
    reps *= 20
elif wl == "sac_cql":
    step, unit, per = sac_cql()
elif wl in ("gpt128", "gpt256"):
    step, (unit, per) = gpt(256 if wl == "gpt256" else 128, 6 if wl == "gpt256" else 4, False)
elif wl == "gpt768":  # GPT-2 small's width, depth, heads and context, batch 2
    step, (unit, per) = gpt(768, 12, False, H=12, T=256, B=2)
    reps = min(reps, 5)
elif wl == "dpo":
    step, (unit, per) = gpt(128, 4, True)
elif wl in ("rm_bt", "rm_pairwise"):
    step, unit, per = reward_model(wl == "rm_pairwise")
    reps *= 5
elif wl == "familiarity":
    step, unit, per = familiarity()
    reps = min(reps, 10)
elif wl == "rollouts":
    step, unit, per = rollouts()
    reps = min(reps, 10)
elif wl.startswith("sample_b"):
    step, unit, per = sample(int(wl[8:].split("_")[0]), "nocache" not in wl)
    reps = min(reps, 10)
else:
    sys.exit("bench_torch: no workload " + wl)

for _ in range(3):
    step()
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
print(json.dumps({"impl": "torch", "workload": wl, "threads": threads, "median_s": med,
                  "rate": per / med, "unit": unit,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
