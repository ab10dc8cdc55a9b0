# PyTorch twin of bench/cnn_step.lua (same model, batch, optimizer, data and
# timing: ms per step, the median of 20 steps after 5 warm-up steps).
#   /usr/bin/python3 bench/cnn_step.py step <threads>
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"step"})
model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
common.result(1e3 * common.time_per_call(lambda: common.step(model, opt, F.cross_entropy, x, y), 1, 20, 5))
