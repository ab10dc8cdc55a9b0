# PyTorch peer of bench/ops.lua: the same three per-op workloads, µs per
# call, float32, median of 20 timed batches.
#   /usr/bin/python3 bench/ops.py add_2x2|chain_backward|matmul_100 <threads>
import torch

import common

mode, _ = common.args({"add_2x2", "chain_backward", "matmul_100"})
torch.manual_seed(0)
if mode == "add_2x2":
    a, b = torch.randn(2, 2), torch.randn(2, 2)
    f, inner = (lambda: a + b), 50000
elif mode == "chain_backward":
    a, b = torch.randn(2, 2, requires_grad=True), torch.randn(2, 2, requires_grad=True)
    f, inner = (lambda: ((a * b + a).relu()).sum().backward()), 5000
else:
    a, b = torch.randn(100, 100), torch.randn(100, 100)
    f, inner = (lambda: a.matmul(b)), 500
common.result(1e6 * common.time_per_call(f, inner, 20))
