# PyTorch peer of bench/ops.lua: the same three per-op workloads, µs per
# call, float32, median of 20 timed batches.
#   /usr/bin/python3 bench/ops.py add_2x2|chain_backward|matmul_100 <threads>
import torch

import common

mode, _ = common.args({"add_2x2", "chain_backward", "matmul_100"})
# Each loop runs its op n times inline: the time is the op's, not a call's.
if mode == "add_2x2":
    a, b = torch.randn(2, 2), torch.randn(2, 2)

    def loop(n):
        for _ in range(n):
            a + b
    inner = 50000
elif mode == "chain_backward":
    a, b = torch.randn(2, 2, requires_grad=True), torch.randn(2, 2, requires_grad=True)

    def loop(n):
        for _ in range(n):
            ((a * b + a).relu()).sum().backward()
    inner = 5000
else:
    a, b = torch.randn(100, 100), torch.randn(100, 100)

    def loop(n):
        for _ in range(n):
            a.matmul(b)
    inner = 500
common.result(1e6 * common.time_loop(loop, inner, 20))
