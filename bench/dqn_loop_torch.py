#!/usr/bin/python3
"""dqn_loop_torch.py - CleanRL's dqn.py loop (CartPole-v1 hyperparameters) in
PyTorch with a pure-Python CartPole (the same equations as plugins/cartpole),
for bench/run.sh: 50k environment steps, learning from 10k, an update every 10.
Prints environment steps per second."""
import math, random, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
random.seed(1)
torch.manual_seed(1)


class CartPole:
    def reset(self):
        self.s = [random.uniform(-0.05, 0.05) for _ in range(4)]
        self.t = 0
        return list(self.s)

    def step(self, a):
        x, xd, th, thd = self.s
        f = 10.0 if a == 1 else -10.0
        s, c = math.sin(th), math.cos(th)
        temp = (f + 0.05 * thd * thd * s) / 1.1
        tha = (9.8 * s - c * temp) / (0.5 * (4.0 / 3.0 - 0.1 * c * c / 1.1))
        xa = temp - 0.05 * tha * c / 1.1
        self.s = [x + 0.02 * xd, xd + 0.02 * xa, th + 0.02 * thd, thd + 0.02 * tha]
        self.t += 1
        term = abs(self.s[0]) > 2.4 or abs(self.s[2]) > 0.20943951023931953
        return list(self.s), 1.0, term, self.t >= 500


def qnet():
    return nn.Sequential(nn.Linear(4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 2))


q, tq = qnet(), qnet()
tq.load_state_dict(q.state_dict())
opt = torch.optim.Adam(q.parameters(), lr=2.5e-4)
cap, B = 10000, 128
b_obs, b_next = torch.zeros(cap, 4), torch.zeros(cap, 4)
b_act, b_rew, b_done = torch.zeros(cap, dtype=torch.long), torch.zeros(cap), torch.zeros(cap)
env = CartPole()
obs = env.reset()
pos = size = 0
t0 = time.perf_counter()
for t in range(1, steps + 1):
    eps = max(1 + (0.05 - 1) / (0.5 * steps) * t, 0.05)
    if random.random() < eps:
        a = random.randrange(2)
    else:
        with torch.no_grad():
            a = int(q(torch.tensor(obs)).argmax())
    nxt, r, term, trunc = env.step(a)
    b_obs[pos], b_next[pos] = torch.tensor(obs), torch.tensor(nxt)
    b_act[pos], b_rew[pos], b_done[pos] = a, r, float(term)
    pos, size = (pos + 1) % cap, min(size + 1, cap)
    obs = env.reset() if term or trunc else nxt
    if t > 10000 and t % 10 == 0:
        idx = torch.randint(0, size, (B,))
        with torch.no_grad():
            y = b_rew[idx] + 0.99 * tq(b_next[idx]).max(1).values * (1 - b_done[idx])
        old = q(b_obs[idx]).gather(1, b_act[idx, None]).squeeze(1)
        loss = F.mse_loss(y, old)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if t % 500 == 0:
        tq.load_state_dict(q.state_dict())
print(steps / (time.perf_counter() - t0))
