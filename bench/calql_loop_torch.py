#!/usr/bin/python3
"""calql_loop_torch.py - Cal-QL's online fine-tuning loop in PyTorch, the way
the official code runs it (JaxCQL's conservative_sac.py, here in PyTorch as
CORL's cal_ql.py writes the losses), beside bench/calql_loop.lua: a pure-Python
point maze (the open layout of plugins/pointmaze), one trajectory with the
stochastic policy, its Monte-Carlo returns, then len(trajectory) gradient
steps on 50/50 offline/online batches. The networks and every size match the
lathe run: actor and critics 64-64 ReLU, batch 64, 10 actions per CQL source,
max backup, Lagrange alpha', importance sampling, Cal-QL's bound, automatic
temperature, Polyak 0.02. Prints environment steps and updates per second.

    /usr/bin/python3 bench/calql_loop_torch.py STEPS THREADS
"""
import math, random, sys, time

import torch
import torch.nn as nn

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
random.seed(1)
torch.manual_seed(1)
O, A, B, N, GAMMA, TAU = 2, 2, 64, 10, 0.99, 0.02
WALLS = ["######", "#S...#", "#....#", "#....#", "#...G#", "######"]


class Maze:  # the open layout: speed 0.1, goal radius 0.3, sparse reward, limit 200
    def reset(self):
        self.p = [1.5 + random.uniform(-0.1, 0.1), 1.5 + random.uniform(-0.1, 0.1)]
        self.t = 0
        return list(self.p)

    def wall(self, x, y):
        return WALLS[int(math.floor(y))][int(math.floor(x))] == "#"

    def step(self, a):
        d = [0.1 * max(-1.0, min(1.0, v)) for v in a]
        x, y = self.p
        if not self.wall(x + d[0], y + d[1]):
            self.p = [x + d[0], y + d[1]]
        elif not self.wall(x + d[0], y):
            self.p = [x + d[0], y]
        elif not self.wall(x, y + d[1]):
            self.p = [x, y + d[1]]
        self.t += 1
        done = math.hypot(self.p[0] - 4.5, self.p[1] - 4.5) <= 0.3
        return list(self.p), 1.0 if done else 0.0, done, self.t >= 200


def mlp(i, o):
    return nn.Sequential(nn.Linear(i, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, o))


pi, qs, tqs = mlp(O, 2 * A), [mlp(O + A, 1) for _ in range(2)], [mlp(O + A, 1) for _ in range(2)]
for q, tq in zip(qs, tqs):
    tq.load_state_dict(q.state_dict())
ls_affine = nn.Parameter(torch.tensor([1.0, -1.0]))
log_alpha, log_alpha_p = nn.Parameter(torch.zeros(())), nn.Parameter(torch.ones(()))
popt = torch.optim.Adam(list(pi.parameters()) + [ls_affine], lr=1e-4)
aopt = torch.optim.Adam([log_alpha], lr=1e-4)
qopt = torch.optim.Adam(list(qs[0].parameters()) + list(qs[1].parameters()), lr=3e-4)
apopt = torch.optim.Adam([log_alpha_p], lr=3e-4)


def policy(obs, n):  # n tanh-Gaussian samples per row: actions (B, n, A), log-probs (B, n)
    out = pi(obs)
    mu, l = out[:, None, :A], out[:, None, A:]
    ls = (ls_affine[0] * l + ls_affine[1]).clamp(-20, 2)
    eps = torch.randn(obs.shape[0], n, A)
    u = mu + ls.exp() * eps
    lp = (-0.5 * eps * eps - ls - 0.5 * math.log(2 * math.pi)).sum(-1)
    lp = lp - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), lp


def q_at(q, obs, a):  # obs (B, O), a (B, n, A) -> (B, n)
    n = a.shape[1]
    return q(torch.cat([obs[:, None, :].expand(-1, n, -1), a], -1)).squeeze(-1)


def update(s, a, r, s2, d, G):
    with torch.no_grad():
        a2, _ = policy(s2, N)
        tq = torch.min(q_at(tqs[0], s2, a2), q_at(tqs[1], s2, a2)).max(1).values
        y = r + GAMMA * (1 - d) * tq
    a_new, lp_new = policy(s, 1)
    alpha = log_alpha.exp()
    alpha_loss = -(log_alpha * (lp_new.detach() + (-A)).mean())
    qmin = torch.min(q_at(qs[0], s, a_new), q_at(qs[1], s, a_new))
    policy_loss = (alpha.detach() * lp_new - qmin).mean()
    with torch.no_grad():
        a_rand = torch.rand(B, N, A) * 2 - 1
        a_cur, lp_cur = policy(s, N)
        a_nxt, lp_nxt = policy(s2, N)
    alpha_p = log_alpha_p.exp().clamp(0, 1e6)
    qloss, cql = 0, []
    for q in qs:
        qd = q(torch.cat([s, a], 1)).squeeze(1)
        qr, qc, qn = q_at(q, s, a_rand), q_at(q, s, a_cur), q_at(q, s, a_nxt)
        qc, qn = torch.max(qc, G[:, None]), torch.max(qn, G[:, None])  # Cal-QL's bound
        x = torch.cat([qr + A * math.log(2), qn - lp_nxt, qc - lp_cur], 1)
        gap = (torch.logsumexp(x, 1) - qd).mean()
        cql.append(alpha_p.detach() * 5.0 * (gap - 0.8))
        qloss = qloss + ((qd - y) ** 2).mean() + cql[-1]
    alpha_p_loss = -alpha_p * 5.0 * sum(c.detach() / alpha_p.detach() for c in cql) / 2
    for o in (aopt, popt, qopt, apopt):
        o.zero_grad()
    alpha_loss.backward()
    policy_loss.backward(inputs=list(pi.parameters()) + [ls_affine])
    qloss.backward(inputs=list(qs[0].parameters()) + list(qs[1].parameters()))
    alpha_p_loss.backward(inputs=[log_alpha_p])
    for o in (aopt, popt, qopt, apopt):
        o.step()
    with torch.no_grad():
        for q, tq in zip(qs, tqs):
            for p, tp in zip(q.parameters(), tq.parameters()):
                tp.mul_(1 - TAU).add_(TAU * p)


# offline data (random transitions: only its shape matters for the speed) and an online buffer
M = 30000
off = [torch.rand(M, O) * 4 + 1, torch.rand(M, A) * 2 - 1, torch.full((M,), -5.0),
       torch.rand(M, O) * 4 + 1, torch.zeros(M), torch.full((M,), -500.0)]
on = [torch.zeros(steps, O), torch.zeros(steps, A), torch.zeros(steps), torch.zeros(steps, O),
      torch.zeros(steps), torch.zeros(steps)]
size, env_steps, updates = 0, 0, 0
env = Maze()
t0 = time.perf_counter()
while env_steps < steps:
    obs, traj, done = env.reset(), [], False
    while not done and env_steps < steps:
        with torch.no_grad():
            a, _ = policy(torch.tensor([obs]), 1)
        a = a[0, 0].tolist()
        nxt, r, term, trunc = env.step(a)
        traj.append((obs, a, 10 * r - 5, nxt, float(term)))
        obs, done, env_steps = nxt, term or trunc, env_steps + 1
    g, Gs = 0.0, []
    fail = all(t[2] == -5 for t in traj)
    for t in reversed(traj):
        g = t[2] + GAMMA * (1 - t[4]) * g
        Gs.append(-5 / (1 - GAMMA) if fail else g)
    for t, G in zip(traj, reversed(Gs)):
        for buf, v in zip(on, (t[0], t[1], t[2], t[3], t[4], G)):
            buf[size] = torch.tensor(v)
        size += 1
    for _ in range(len(traj)):
        io, ii = torch.randint(0, M, (B // 2,)), torch.randint(0, size, (B // 2,))
        update(*[torch.cat([x[io], y[ii]]) for x, y in zip(off, on)])
        updates += 1
dt = time.perf_counter() - t0
print(f"{env_steps / dt:.1f} {updates / dt:.1f}")
