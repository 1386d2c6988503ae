"""torchgpt.py - the GPT-2 style model of lathe's nn core (pre-LN blocks,
GELU MLP of 4C, final LayerNorm, logits through the tied token embedding),
written out as in nanoGPT, for the PyTorch sides of bench/."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H, ctx=128):
        super().__init__()
        self.ln1, self.ln2, self.H = nn.LayerNorm(C), nn.LayerNorm(C), H
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcp = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.register_buffer("causal", torch.tril(torch.ones(ctx, ctx)))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, 2)
        q, k, v = [t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))  # torch 1.13: no sdpa
        att = att.masked_fill(self.causal[:T, :T] == 0, float("-inf")).softmax(-1)
        y = att @ v
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fcp(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, T, L, H, C):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList([Block(C, H, T) for _ in range(L)])
        self.lnf = nn.LayerNorm(C)

    def hidden(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.lnf(x)

    def forward(self, idx):
        return self.hidden(idx) @ self.wte.weight.T



class Cache:
    """A preallocated KV cache of B sequences over the model's context,
    written in place (the fastest form found for torch 1.13 on a CPU)."""

    def __init__(self, model, B):
        blk = model.blocks[0]
        C, self.m, self.H = model.wte.weight.shape[1], model, blk.H
        T, hs = model.wpe.weight.shape[0], C // blk.H
        self.k = [torch.empty(B, blk.H, T, hs) for _ in model.blocks]
        self.v = [torch.empty(B, blk.H, T, hs) for _ in model.blocks]

    def __call__(self, tok, pos):
        """Next-token logits (B, V) after tok (B, n) at positions pos .. pos+n-1."""
        m, H = self.m, self.H
        B, n = tok.shape
        x = m.wte(tok) + m.wpe(torch.arange(pos, pos + n))
        C = x.shape[2]
        hs = C // H
        for b, k_, v_ in zip(m.blocks, self.k, self.v):
            q, k, v = b.qkv(b.ln1(x)).split(C, 2)
            q, k, v = [t.view(B, n, H, hs).transpose(1, 2) for t in (q, k, v)]
            k_[:B, :, pos:pos + n] = k
            v_[:B, :, pos:pos + n] = v
            att = (q @ k_[:B, :, :pos + n].transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            if n > 1:
                att = att.masked_fill(torch.ones(n, pos + n).triu(pos + 1).bool(), float("-inf"))
            y = att.softmax(-1) @ v_[:B, :, :pos + n]
            x = x + b.proj(y.transpose(1, 2).reshape(B, n, C))
            x = x + b.fcp(F.gelu(b.fc(b.ln2(x)), approximate="tanh"))
        return m.lnf(x[:, -1]) @ m.wte.weight.T
