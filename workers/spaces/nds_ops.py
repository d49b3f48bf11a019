"""Cell operations of the NDS / DARTS CIFAR networks (DARTS `operations.py`, pycls NAS ops).

Every weight layer is tagged with its slot: `<prefix>/<op>/<part>`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from zcpipe.workers.spaces.base import tag


def _conv(c_in, c_out, k, stride, padding, slot, op, dilation=1, groups=1) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False)
    return tag(conv, slot, op)


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding, slot, op):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), _conv(c_in, c_out, k, stride, padding, slot, op), nn.BatchNorm2d(c_out)
        )

    def forward(self, x):
        return self.op(x)


def _relu_dw_pw_bn(c, k, stride, padding, dilation, prefix, suffix, op) -> list[nn.Module]:
    """ReLU, depthwise (dilated) conv, pointwise conv, BN: DilConv, and each half of SepConv."""
    return [
        nn.ReLU(inplace=False),
        _conv(c, c, k, stride, padding, f"{prefix}/dw{suffix}", op, dilation=dilation, groups=c),
        _conv(c, c, 1, 1, 0, f"{prefix}/pw{suffix}", op),
        nn.BatchNorm2d(c),
    ]


class DilConv(nn.Module):
    def __init__(self, c, k, stride, padding, dilation, prefix, op):
        super().__init__()
        self.op = nn.Sequential(*_relu_dw_pw_bn(c, k, stride, padding, dilation, prefix, "", op))

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked dilated-depthwise + pointwise convolutions (SepConv; DilSepConv when dilation > 1)."""

    def __init__(self, c, k, stride, padding, prefix, op, dilation=1):
        super().__init__()
        self.op = nn.Sequential(
            *_relu_dw_pw_bn(c, k, stride, padding, dilation, prefix, "0", op),
            *_relu_dw_pw_bn(c, k, 1, padding, dilation, prefix, "1", op),
        )

    def forward(self, x):
        return self.op(x)


class ConvKx1_1xK(nn.Module):
    def __init__(self, c, k, stride, prefix, op):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            tag(nn.Conv2d(c, c, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False), f"{prefix}/1x{k}", op),
            tag(nn.Conv2d(c, c, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False), f"{prefix}/{k}x1", op),
            nn.BatchNorm2d(c),
        )

    def forward(self, x):
        return self.op(x)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out, prefix, op):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = _conv(c_in, c_out // 2, 1, 2, 0, f"{prefix}/fr1", op)
        self.conv_2 = _conv(c_in, c_out // 2, 1, 2, 0, f"{prefix}/fr2", op)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Zero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


def _pool(kind, k, stride):
    if kind == "avg":
        return nn.AvgPool2d(k, stride=stride, padding=k // 2, count_include_pad=False)
    return nn.MaxPool2d(k, stride=stride, padding=k // 2)


def make_op(name: str, c: int, stride: int, prefix: str) -> nn.Module:
    """The op `name` on `c` channels; `prefix` is the slot of its edge."""
    p = f"{prefix}/{name}"
    if name == "none":
        return Zero(stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, p, name)
    if name.startswith(("avg_pool_", "max_pool_")):
        return _pool(name[:3], int(name[-1]), stride)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return SepConv(c, k, stride, k // 2, p, name)
    if name == "dil_sep_conv_3x3":
        return SepConv(c, 3, stride, 2, p, name, dilation=2)
    if name.startswith("dil_conv_"):
        k = int(name[-1])
        return DilConv(c, k, stride, k - 1, 2, p, name)
    if name in ("conv_1x1", "conv_3x3"):
        k = int(name[-1])
        return ReLUConvBN(c, c, k, stride, k // 2, f"{p}/conv", name)
    if name in ("conv_3x1_1x3", "conv_7x1_1x7"):
        return ConvKx1_1xK(c, int(name[5]), stride, p, name)
    raise ValueError(f"unknown NDS op {name!r}")


def op_parts(name: str, reduction_edge: bool) -> list[str]:
    """The slot suffixes of op `name`'s weight layers, in module order (empty: no weights)."""
    if name.startswith(("sep_conv_", "dil_sep_conv_")):
        return ["dw0", "pw0", "dw1", "pw1"]
    if name.startswith("dil_conv_"):
        return ["dw", "pw"]
    if name in ("conv_1x1", "conv_3x3"):
        return ["conv"]
    if name in ("conv_3x1_1x3", "conv_7x1_1x7"):
        k = name[5]
        return [f"1x{k}", f"{k}x1"]
    if name == "skip_connect" and reduction_edge:
        return ["fr1", "fr2"]
    return []
