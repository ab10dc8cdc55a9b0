# PyTorch peer of bench/cnn.lua: the same CNN, optimizer, data and batch;
# seconds per epoch extrapolated from `steps` timed batches after 5 warm-up.
#   /usr/bin/python3 bench/cnn.py epoch <threads> [steps]
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"epoch"})
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 60
torch.manual_seed(0)
x, y = common.fashion_mnist_train()
x = x.view(-1, 1, 28, 28)
model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
perm = torch.randperm(x.shape[0])
t0 = None
for i in range(5 + steps):
    if i == 5:
        t0 = time.perf_counter()
    idx = perm[i * 128:(i + 1) * 128]
    opt.zero_grad()
    F.cross_entropy(model(x[idx]), y[idx]).backward()
    opt.step()
common.result((time.perf_counter() - t0) / steps * math.ceil(x.shape[0] / 128))
