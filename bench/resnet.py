# PyTorch twin of bench/resnet.lua: the same ResNet-20, loss, SGD, random
# batch and timing (ms per step, the median of 5 steps after 2 warm-up
# steps). The block is written as torchvision's BasicBlock is (in-place
# residual add and ReLU, its fastest idiom); model and batch channels last,
# as the Lua side's batch is (measured here: the same speed as NCHW, 455
# against 457 ms a step at one thread).
#   /usr/bin/python3 bench/resnet.py step <threads>
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"step"})


def conv(cin, cout, k, stride):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, cout, 3, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv(cout, cout, 3, 1), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.shortcut is None else self.shortcut(x)
        return self.relu(out)


layers = [conv(3, 16, 3, 1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
cin = 16
for cout in (16, 32, 64):
    for b in range(3):
        layers.append(BasicBlock(cin, cout, 2 if b == 0 and cout != cin else 1))
        cin = cout
layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
model = nn.Sequential(*layers)

model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, foreach=True)
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
x = x.contiguous(memory_format=torch.channels_last)
common.result(1e3 * common.time_per_call(lambda: common.step(model, opt, F.cross_entropy, x, y), 1, 5, 2))
