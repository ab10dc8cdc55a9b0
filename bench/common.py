# Shared by the bench/*.py workloads, the PyTorch peers of bench/*.lua: the
# thread setting, timing, and the lines bench/run.lua reads.
#
# Threads: run.lua sets OPENBLAS_NUM_THREADS (and OMP_WAIT_POLICY=PASSIVE
# for more than one thread) in the environment; here torch's own pool is
# pinned to the same count.
import gzip
import statistics
import sys
import time

import numpy as np
import torch


FASHION = "/usr/share/datasets/fashion-mnist/"


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
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        sys.exit("usage: %s <%s> <threads>" % (sys.argv[0], "|".join(sorted(modes))))
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return sys.argv[1], threads


def time_per_call(f, inner, reps, warmup=None):
    for _ in range(inner if warmup is None else warmup):
        f()
    per = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        per.append((time.perf_counter() - t0) / inner)
    return statistics.median(per)


def time_loop(loop, inner, reps):
    """Median seconds per iteration of loop(n), which runs its body n times
    (so that no extra function call per iteration is timed)."""
    loop(inner)
    per = []
    for _ in range(reps):
        t0 = time.perf_counter()
        loop(inner)
        per.append((time.perf_counter() - t0) / inner)
    return statistics.median(per)


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
