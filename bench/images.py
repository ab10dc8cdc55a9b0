# The PyTorch side of the image-loading benchmark (bench/images.lua is
# moongrad's): torchvision's ImageFolder and transforms through
# torch.utils.data.DataLoader with `workers` worker processes.
#
#   python3 bench/images.py throughput WORKERS DIR [pil|tensor]
#       decode + RandomResizedCrop(224) + horizontal flip + ColorJitter(0.4,
#       0.4, 0.4) + ToTensor + Normalize into batches of 64, shuffled; prints
#       "result <images/s>" over two epochs after a warm-up epoch (the
#       workers persist, as a training run's do).
#   python3 bench/images.py rss WORKERS DIR
#       one epoch over DIR (the exported Fashion-MNIST folder) with
#       ToTensor + Normalize, batches of 128; prints "rss_mib <peak MiB>":
#       the largest sum of the main process's and its workers' resident
#       memory seen after any batch.
#
# pil is torchvision's default idiom (Pillow decodes, transforms on PIL
# images); tensor decodes with torchvision.io.read_image and runs the
# same transforms on uint8 tensors. bench/run.lua runs both and compares
# moongrad with the faster.
import os
import sys
import time

import torch
import torchvision
from torchvision import datasets, transforms as T
from torch.utils.data import DataLoader

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def read_tensor(path):
    return torchvision.io.read_image(path, torchvision.io.ImageReadMode.RGB)


def throughput(workers, root, idiom):
    jitter = T.ColorJitter(0.4, 0.4, 0.4)
    if idiom == "pil":
        tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), jitter, T.ToTensor(),
                        T.Normalize(MEAN, STD)])
        ds = datasets.ImageFolder(root, transform=tf)
    else:
        tf = T.Compose([T.RandomResizedCrop(224, antialias=True), T.RandomHorizontalFlip(), jitter,
                        T.ConvertImageDtype(torch.float32), T.Normalize(MEAN, STD)])
        ds = datasets.ImageFolder(root, transform=tf, loader=read_tensor)
    dl = DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers,
                    persistent_workers=workers > 0)
    for _ in dl:  # warm-up: workers started, files in the page cache
        pass
    t0 = time.perf_counter()
    n = 0
    for _ in range(2):
        for xb, _ in dl:
            n += xb.shape[0]
    print("result %.6g" % (n / (time.perf_counter() - t0)))


def rss(workers, root):
    tf = T.Compose([T.ToTensor(), T.Normalize([0.286], [0.353])])
    ds = datasets.ImageFolder(root, transform=tf, loader=lambda p: datasets.folder.pil_loader(p).convert("L"))
    dl = DataLoader(ds, batch_size=128, shuffle=True, num_workers=workers)
    it = iter(dl)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    peak = 0
    for _ in it:
        peak = max(peak, rss_kib(os.getpid()) + sum(rss_kib(p) for p in pids))
    print("rss_mib %.1f" % (peak / 1024))


def main():
    mode, workers, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    if mode == "throughput":
        throughput(workers, root, sys.argv[4] if len(sys.argv) > 4 else "pil")
    elif mode == "rss":
        rss(workers, root)
    else:
        sys.exit("usage: images.py throughput|rss WORKERS DIR [pil|tensor]")


if __name__ == "__main__":
    main()
