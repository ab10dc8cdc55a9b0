# PyTorch peer of bench/charlm.lua: the same data, model, optimizer and
# batch; training steps per second over 300 steps after 30 warm-up.
#   /usr/bin/python3 bench/charlm.py steps <threads>
import re
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"steps"})
torch.manual_seed(0)
ctx, nxt = [], []
with open("/usr/share/dict/words") as f:
    for word in f:
        word = word.rstrip("\n")
        if re.fullmatch("[a-z]+", word):
            a = b = c = 0  # '.' is 0, a..z are 1..26
            for i in range(len(word) + 1):
                t = ord(word[i]) - 96 if i < len(word) else 0
                ctx.append((a, b, c))
                nxt.append(t)
                a, b, c = b, c, t
X, Y = torch.tensor(ctx), torch.tensor(nxt)
n = len(nxt)
del ctx, nxt  # as bench/charlm.lua drops its tables
model = nn.Sequential(nn.Embedding(27, 64), nn.Flatten(), nn.Linear(192, 256), nn.Tanh(),
                      nn.Linear(256, 27))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def step():
    idx = torch.randint(0, n, (256,))
    opt.zero_grad()
    F.cross_entropy(model(X[idx]), Y[idx]).backward()
    opt.step()


for _ in range(30):
    step()
t0 = time.perf_counter()
for _ in range(300):
    step()
common.result(300 / (time.perf_counter() - t0))
