# PyTorch twin of bench/recurrent.lua: the same language model (embedding,
# 2-layer LSTM or GRU with hidden 256, batch_first=True, linear head),
# loss, RMSprop(lr 1e-3), random tokens and timing (ms per step, the
# median of 10 steps after 3 warm-up steps).
#   /usr/bin/python3 bench/recurrent.py lstm|gru <threads>
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

mode, _ = common.args({"lstm", "gru"})
VOCAB, EMBED, HIDDEN, SEQ, BATCH = 64, 64, 256, 32, 64


class Net(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.rnn = getattr(nn, cell)(EMBED, HIDDEN, num_layers=2, batch_first=True)
        self.head = nn.Linear(HIDDEN, VOCAB)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(out)


model = Net(mode.upper())
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, foreach=True)
x, y = torch.randint(0, VOCAB, (BATCH, SEQ)), torch.randint(0, VOCAB, (BATCH * SEQ,))


def loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, VOCAB), target)


common.result(1e3 * common.time_per_call(lambda: common.step(model, opt, loss, x, y), 1, 10, 3))
