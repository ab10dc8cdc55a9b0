# Shared by the bench/*.py workloads, the PyTorch twins of bench/*.lua: the
# thread setting, steady-state timing, and the lines bench/run.lua reads
# (the same as bench/common.lua's, which explains them, and the same
# MOONGRAD_BENCH_QUICK short form).
#
# Threads: run.lua sets OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (and
# OMP_WAIT_POLICY=PASSIVE above one thread) in the environment; here
# torch's own pools are pinned to the count.
#
# The idiom is PyTorch's fastest for a training step on the CPU:
# zero_grad(set_to_none=True) (1.13's default zeroes the gradients in
# place, a pass over every parameter per step), optimizers with
# foreach=True (one multi-tensor op per update step instead of one per
# parameter: 1.25x (batch 128) to 1.7x (batch 1) faster on the MLP here),
# torch.set_flush_denormal(True) (Adam's states of dead units decay into
# subnormals, which cost a microcode assist each; moongrad's update kernels
# flush them too), no .item() or other sync inside the timed loop, data
# made before timing.
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch


FASHION = "/usr/share/datasets/fashion-mnist/"
QUICK = os.environ.get("MOONGRAD_BENCH_QUICK", "") not in ("", "0")


def fashion_mnist_train():
    """Fashion-MNIST's training images as float32 [N, 784] in [0, 1] and
    labels int64 [N] (0-based), from the IDX files moongrad reads."""
    def read(name, offset):
        with gzip.open(FASHION + name) as f:
            return np.frombuffer(bytearray(f.read()), dtype=np.uint8, offset=offset)
    x = torch.from_numpy(read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)).float() / 255
    y = torch.from_numpy(read("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
    return x, y


def args(modes):
    threads = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else None
    if len(sys.argv) < 2 or sys.argv[1] not in modes or threads == 0 or \
            (len(sys.argv) > 2 and threads is None):
        sys.exit("usage: %s <%s> <threads>" % (sys.argv[0], "|".join(sorted(modes))))
    threads = threads or 1
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.set_flush_denormal(True)
    print("threads %d" % torch.get_num_threads())
    torch.manual_seed(0)
    return sys.argv[1], threads


def counts(warmup, reps, inner):
    if QUICK:
        return 1, 1, 1
    return warmup, reps, inner


def time_loop(loop, inner, reps, warmup=None):
    """Median seconds per iteration of loop(n), which runs its body n times
    (so that no extra function call per iteration is timed), over `reps`
    timed calls of loop(inner) after loop(warmup) (default: inner)."""
    warmup, reps, inner = counts(inner if warmup is None else warmup, reps, inner)
    loop(warmup)
    per = []
    for _ in range(reps):
        t0 = time.perf_counter()
        loop(inner)
        per.append((time.perf_counter() - t0) / inner)
    return statistics.median(per)


def time_per_call(f, inner, reps, warmup=None):
    def loop(n):
        for _ in range(n):
            f()
    return time_loop(loop, inner, reps, warmup)


def batches(x, y, size):
    """The next shuffled batch of (x, y) each call, a new permutation each
    epoch (as moongrad's shuffled DataLoader). Indexing with a random
    permutation is the fastest way to batch an in-memory dataset in PyTorch
    (DataLoader's per-sample collation would be slower)."""
    def gen():
        while True:
            perm = torch.randperm(x.shape[0])
            for i in range(0, x.shape[0], size):
                idx = perm[i:i + size]
                yield x[idx], y[idx]
    return gen().__next__


def step(model, opt, loss_fn, x, y):
    """One training step in the fastest idiom: gradients dropped, not zeroed."""
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    opt.step()


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def result(value, rss=False):
    print("result %.6g" % value)
    if rss:
        print("rss_mib %.1f" % peak_rss_mib())
    sys.stdout.flush()
