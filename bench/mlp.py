# PyTorch twin of bench/mlp.lua (same modes, model, optimizer, data, batch
# sizes and timing); the epoch's batches come from common.batches.
#   /usr/bin/python3 bench/mlp.py epoch|step_b1|step_b16|gemm <threads>
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

mode, threads = common.args({"epoch", "step_b1", "step_b16", "gemm"})


def model_and_opt():
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)


if mode == "epoch":
    x, y = common.fashion_mnist_train()
    model, opt = model_and_opt()
    next_batch = common.batches(x, y, 128)
    batches = 3 if common.QUICK else -(-x.shape[0] // 128)

    def epoch():
        for _ in range(batches):
            common.step(model, opt, F.cross_entropy, *next_batch())
    common.result(common.time_per_call(epoch, 1, 3), rss=True)
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
    batches = 3 if common.QUICK else 469

    def epoch():
        for _ in range(batches):
            for a, b in mats:
                torch.mm(a, b)
    common.result(common.time_per_call(epoch, 1, 3))
else:
    batch = 1 if mode == "step_b1" else 16
    model, opt = model_and_opt()
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
    inner = 100 if batch == 1 else 50
    common.result(1e6 * common.time_per_call(lambda: common.step(model, opt, F.cross_entropy, x, y),
                                             inner, 20, 200))
