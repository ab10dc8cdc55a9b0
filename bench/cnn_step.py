"""PyTorch peer of bench/cnn_step.lua (same model, batch, optimizer).
Run: OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=<n> /usr/bin/python3 bench/cnn_step.py <n>"""
import sys
import time
import torch
import torch.nn as nn
import torch.nn.functional as F

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(n)
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
times = []
for i in range(25):
    t0 = time.perf_counter()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    if i >= 5:
        times.append(time.perf_counter() - t0)
times.sort()
print("cnn step: %.1f ms (median of %d)" % (times[len(times) // 2] * 1e3, len(times)))
