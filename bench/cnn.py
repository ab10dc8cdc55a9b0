# PyTorch twin of bench/cnn.lua: the same CNN, optimizer, data, batch and
# timing (seconds per epoch extrapolated from the median of 3 runs of 20
# batches after 5 warm-up steps).
#   /usr/bin/python3 bench/cnn.py epoch <threads>
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"epoch"})
x, y = common.fashion_mnist_train()
x = x.view(-1, 1, 28, 28)
model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
next_batch = common.batches(x, y, 128)
per_step = common.time_per_call(lambda: common.step(model, opt, F.cross_entropy, *next_batch()), 20, 3, 5)
common.result(per_step * -(-x.shape[0] // 128))
