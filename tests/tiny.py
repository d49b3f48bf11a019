"""A tiny tagged network whose proxy values can be derived independently."""

import torch
import torch.nn as nn

from zcpipe.workers.spaces import tag


class TinyNet(nn.Module):
    def __init__(self, bias: bool = False, bn: bool = False):
        super().__init__()
        self.c1 = tag(nn.Conv2d(3, 4, 3, padding=1, bias=bias), "c1", "conv_3x3")
        self.bn = nn.BatchNorm2d(4) if bn else nn.Identity()
        self.act = nn.ReLU()
        self.c2 = tag(nn.Conv2d(4, 5, 1, bias=bias), "c2", "conv_1x1")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = tag(nn.Linear(5, 3, bias=bias), "fc", "linear")

    def features(self, x):
        return self.act(self.c2(self.act(self.bn(self.c1(x)))))

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def tiny_batch(n: int = 8, seed: int = 0):
    from zcpipe.workers.proxies import Batch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 6, 6, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return Batch(images=x, labels=y, num_classes=3, sha256="tiny")
