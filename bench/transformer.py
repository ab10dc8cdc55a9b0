# PyTorch twin of bench/transformer.lua: the same causal language model,
# loss, AdamW, random tokens and timing (ms per step, the median of 10
# steps after 3 warm-up steps).
#
# Each block is nn.TransformerEncoderLayer(norm_first=True,
# activation="gelu", dim_feedforward=4*D, dropout=0, batch_first=True),
# the maths of moongrad's nn.TransformerBlock; the causal mask is the
# usual additive one (-inf above the diagonal), made once. In training
# mode with gradients PyTorch 1.13 takes the layer's only path for that
# (its fused "fast path" is for inference).
#   /usr/bin/python3 bench/transformer.py step <threads>
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

common.args({"step"})
VOCAB, D, HEADS, SEQ, BATCH = 64, 128, 4, 32, 64


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.randn(SEQ, D) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=4 * D, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(2))
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, VOCAB)
        self.register_buffer("mask", torch.triu(torch.full((SEQ, SEQ), float("-inf")), 1))

    def forward(self, x):
        h = self.tok(x) + self.pos
        for block in self.blocks:
            h = block(h, src_mask=self.mask)
        return self.head(self.norm(h))


model = Net()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, foreach=True)
x, y = torch.randint(0, VOCAB, (BATCH, SEQ)), torch.randint(0, VOCAB, (BATCH * SEQ,))


def loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, VOCAB), target)


common.result(1e3 * common.time_per_call(lambda: common.step(model, opt, loss, x, y), 1, 10, 3))
