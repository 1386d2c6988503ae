#!/usr/bin/python3
"""archer_iter_torch.py - ArCHer iterations in PyTorch, the way the official
code (YifeiZhou02/ArCHer) runs them, beside bench/archer_iter.lua at the same
sizes: 32 twentyq games (16 objects, 4 attributes) played to the end with the
policy's sampled utterances (batched across the live games, a KV cache
filled with the prompts' common length in one pass,
temperature 1, at most 16 new tokens, the dialogue's tail in a 128-token
context), then 20 critic steps and 3 actor steps, each of 4 summed
minibatches of 8 transitions drawn from the replay buffer. Policy: a
byte-level GPT (2 layers, width 64, 4 heads; untrained, as lathe's bench
policy: every utterance is invalid, so every game runs its 20 turns and the
work is the same on both sides). Critic: a copy of the policy's GPT as the
encoder (the last token's final hidden state of the dialogue and of the
utterance), twin Q([e_s; e_a]) and V(e_s) heads (2 ReLU layers of 64), a
target copy with Polyak 0.1; L_Q + L_V as specs/archer.md, the actor's
-mean A log pi(a^|s) with A = min Q - min V of the current critic.
The first iteration is not timed. Prints seconds per iteration and where
they went.

    /usr/bin/python3 bench/archer_iter_torch.py ITERATIONS THREADS
"""
import copy, os, random, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torchgpt import GPT, Cache

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 4
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
if os.environ.get("TORCH_FTZ"):  # flush denormals, as lathe's worker threads do
    torch.set_flush_denormal(True)
random.seed(1)
torch.manual_seed(1)
V, CTX, L, H, C = 258, 128, 2, 4, 64  # lathe's byte tokenizer: <eos> 0, <pad> 1, byte b at b + 2
E, B, ACCUM, CSTEPS, ASTEPS, MAXNEW, GAMMA, TAU = 32, 8, 4, 20, 3, 16, 0.95, 0.1
EOS, PAD = 0, 1


class TwentyQ:  # plugins/games/twentyq.c: object i has attribute a = bit a of i
    def reset(self):
        self.hidden, self.turn, self.text = random.randrange(16), 0, "Questions:\n"
        return self.text

    def step(self, utt):
        utt = utt.split("\n")[0]
        ok = len(utt) <= 64 and all(32 <= ord(ch) <= 126 for ch in utt)
        w = [x for x in utt.split(" ") if x] if ok else None
        reply, win = "invalid", False
        num = lambda s, n: int(s) if s.isdigit() and (s == "0" or s[0] != "0") and int(s) < n else -1
        if w and len(w) == 4 and w[0] == "ask" and w[3] == "?" and w[2] in ("0", "1") and w[1][:1] == "a":
            a = num(w[1][1:], 4)
            if a >= 0:
                reply = "yes" if (self.hidden >> a & 1) == int(w[2]) else "no"
        elif w and len(w) == 3 and w[0] == "guess" and w[2] == "." and w[1][:1] == "o":
            o = num(w[1][1:], 16)
            if o >= 0:
                win = o == self.hidden
                reply = "yes" if win else "no"
        self.text += "%s %s\n" % (" ".join(w) if w is not None else "<invalid>", reply)
        self.turn += 1
        return self.text, 0.0 if win else -1.0, win, not win and self.turn >= 20


def encode(text, room):
    return [b + 2 for b in text.encode("latin-1")][-room:]


def text_of(ids):
    return bytes(i - 2 for i in ids if i >= 2).decode("latin-1")


def act(pol, texts):
    """Sample an utterance for every dialogue: (texts, token ids with <eos>)."""
    prompts = [encode(t, CTX - MAXNEW) for t in texts]
    n, plen = len(prompts), torch.tensor([len(p) for p in prompts])
    P = int(plen.max())
    ptok = torch.tensor([p + [PAD] * (P - len(p)) for p in prompts])
    out = torch.full((n, MAXNEW), PAD, dtype=torch.long)
    olen = torch.zeros(n, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    cache, m = Cache(pol, n), int(plen.min())
    with torch.no_grad():  # the prompts' common length in one pass, then a position at a time
        logits, pos = cache(ptok[:, :m], 0), m - 1
        while True:
            y = torch.multinomial(logits.softmax(-1), 1)[:, 0]
            gen = (pos + 1 >= plen) & ~done & (olen < MAXNEW)
            out[gen, olen[gen]] = y[gen]
            olen += gen.long()
            done |= gen & (y == EOS)
            if bool((done | (olen >= MAXNEW)).all()):
                break
            nxt = ptok[:, pos + 1] if pos + 1 < P else torch.full((n,), PAD, dtype=torch.long)
            tok = torch.where(pos + 1 < plen, nxt, torch.where(gen, y, PAD))
            pos += 1
            logits = cache(tok[:, None], pos)
    ids = [out[i, :olen[i]].tolist() for i in range(n)]
    return [text_of(u) for u in ids], prompts, ids


def mlp(i):
    return nn.Sequential(nn.Linear(i, C), nn.ReLU(), nn.Linear(C, C), nn.ReLU(), nn.Linear(C, 1))


class Critic(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc
        self.q = nn.ModuleList([mlp(2 * C), mlp(2 * C)])
        self.v = nn.ModuleList([mlp(C), mlp(C)])

    def embed(self, texts):  # the final hidden state at each text's last token
        ids = [encode(t, CTX) or [PAD] for t in texts]
        T = max(len(x) for x in ids)
        tok = torch.tensor([x + [PAD] * (T - len(x)) for x in ids])
        h = self.enc.hidden(tok)
        return h[torch.arange(len(ids)), torch.tensor([len(x) - 1 for x in ids])]

    def forward(self, s, a):
        e = self.embed(s + a)
        es, ea = e[:len(s)], e[len(s):]
        x = torch.cat([es, ea], 1)
        return [q(x)[:, 0] for q in self.q], [v(es)[:, 0] for v in self.v]


pol = GPT(V, CTX, L, H, C)
cr = Critic(copy.deepcopy(pol))
tg = copy.deepcopy(cr)
copt = torch.optim.Adam(cr.parameters(), lr=1e-3)
aopt = torch.optim.Adam(pol.parameters(), lr=1e-4)
games = [TwentyQ() for _ in range(E)]
buf = []  # (s, a, r, s2, d)


def collect():
    dlg = [g.reset() for g in games]
    live = list(range(E))
    while live:
        utt, _, _ = act(pol, [dlg[e] for e in live])
        nxt = []
        for e, u in zip(live, utt):
            o, r, term, trunc = games[e].step(u)
            buf.append((dlg[e], u, r, o, float(term)))
            dlg[e] = o
            if not (term or trunc):
                nxt.append(e)
        live = nxt


def critic_step():
    copt.zero_grad()
    for _ in range(ACCUM):
        bt = [buf[random.randrange(len(buf))] for _ in range(B)]
        s, a = [t[0] for t in bt], [t[1] for t in bt]
        r, d = torch.tensor([t[2] for t in bt]), torch.tensor([t[4] for t in bt])
        with torch.no_grad():
            es2 = tg.embed([t[3] for t in bt])
            y = [r + GAMMA * (1 - d) * v(es2)[:, 0] for v in tg.v]
            ah, _, _ = act(pol, s)
            z, _ = tg(s, ah)
        q, v = cr(s, a)
        loss = sum(F.mse_loss(q[k], y[k]) + F.mse_loss(v[k], z[k]) for k in range(2))
        loss.backward()
    torch.nn.utils.clip_grad_norm_(cr.parameters(), 1.0)
    copt.step()
    with torch.no_grad():
        for p, tp in zip(cr.parameters(), tg.parameters()):
            tp.mul_(1 - TAU).add_(TAU * p)


def actor_step():
    aopt.zero_grad()
    for _ in range(ACCUM):
        s = [buf[random.randrange(len(buf))][0] for _ in range(B)]
        ah, prompts, ids = act(pol, s)
        with torch.no_grad():
            q, v = cr(s, ah)
            A = torch.min(q[0], q[1]) - torch.min(v[0], v[1])
        seq = [p + u for p, u in zip(prompts, ids)]
        T = max(len(x) for x in seq)
        tok = torch.tensor([x + [PAD] * (T - len(x)) for x in seq])
        mask = torch.zeros(B, T)
        for i, (p, u) in enumerate(zip(prompts, ids)):
            mask[i, len(p):len(p) + len(u)] = 1
        lp = pol(tok)[:, :-1].log_softmax(-1).gather(2, tok[:, 1:, None])[:, :, 0]
        loss = -(A * (lp * mask[:, 1:]).sum(1)).mean()
        loss.backward()
    torch.nn.utils.clip_grad_norm_(pol.parameters(), 1.0)
    aopt.step()


spent = [0.0, 0.0, 0.0]
for it in range(iters):
    t0 = time.perf_counter()
    collect()
    t1 = time.perf_counter()
    for _ in range(CSTEPS):
        critic_step()
    t2 = time.perf_counter()
    for _ in range(ASTEPS):
        actor_step()
    t3 = time.perf_counter()
    if it > 0:
        for k, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
            spent[k] += dt / (iters - 1)
print("%.4f s/iteration: collect %.4f critic %.4f actor %.4f (%d transitions)" %
      (sum(spent), spent[0], spent[1], spent[2], len(buf)))
