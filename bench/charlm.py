# PyTorch twin of bench/charlm.lua: the same data, model, optimizer, batch
# and timing (steps per second: the median of 5 runs of 60 steps after 30
# warm-up steps).
#   /usr/bin/python3 bench/charlm.py steps <threads>
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"steps"})
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
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)


def step():
    idx = torch.randint(0, n, (256,))
    common.step(model, opt, F.cross_entropy, X[idx], Y[idx])


common.result(1 / common.time_per_call(step, 60, 5, 30))
