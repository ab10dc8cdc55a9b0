# PyTorch peer of bench/mlp.lua (same modes, same model, optimizer, data and
# batch sizes). Batches are gathered by indexing with a random permutation,
# the fastest way to batch an in-memory dataset in PyTorch (DataLoader's
# per-sample collation would be slower).
#   /usr/bin/python3 bench/mlp.py epoch|step_b1|step_b16|gemm <threads>
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

mode, threads = common.args({"epoch", "step_b1", "step_b16", "gemm"})
torch.manual_seed(0)
def model_and_opt():
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def step(model, opt, x, y):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


if mode == "epoch":
    x, y = common.fashion_mnist_train()
    model, opt = model_and_opt()
    t0 = time.perf_counter()
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], 128):
        idx = perm[i:i + 128]
        step(model, opt, x[idx], y[idx])
    common.result(time.perf_counter() - t0, rss=True)
elif mode == "gemm":
    shapes = [(128, 784, 512, False, True), (128, 512, 256, False, True), (128, 256, 10, False, True),
              (10, 128, 256, True, False), (128, 10, 256, False, False),
              (256, 128, 512, True, False), (128, 256, 512, False, False),
              (512, 128, 784, True, False)]
    mats = []
    for m, k, n, ta, tb in shapes:
        a = torch.randn(k, m).t() if ta else torch.randn(m, k)
        b = torch.randn(n, k).t() if tb else torch.randn(k, n)
        mats.append((a, b))

    def epoch():
        for _ in range(469):
            for a, b in mats:
                torch.mm(a, b)
    epoch()
    t0 = time.perf_counter()
    epoch()
    common.result(time.perf_counter() - t0)
else:
    batch = 1 if mode == "step_b1" else 16
    model, opt = model_and_opt()
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
    reps = 2000 if batch == 1 else 1000
    common.result(1e6 * common.time_per_call(lambda: step(model, opt, x, y), reps // 20, 20, 200))
