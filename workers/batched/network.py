"""What every batched network shares: stacked layers, the steps an op compiles to, and choices.

A batched network holds B networks of one space as one module (docs/proxies.md, "The batched
path"). Activations are `[N, B*C, H, W]`, each architecture's C channels side by side. A weight layer
that several architectures have is one grouped convolution over their channel blocks (`groups` times
their number; on the CPU a dense one runs per architecture, `GROUPED_CONV_DEVICES`); BatchNorm over
the stacked channels computes each architecture's statistics over its own images. Where the
architectures differ (an NB201 edge, a DARTS node's input) they make a *choice*:
they are grouped by the op (and input) they chose, each group takes its architectures' input blocks,
each op runs once over its group, and the groups' outputs are put back in architecture order
(`blocks.py`). Grouped convolutions never mix groups, so architecture b's outputs, gradients and second
derivatives are those of its own network.

An op is compiled to a list of steps from the modules the space built (ReLU, a weight layer,
BatchNorm, a stateless channel-wise module such as a pool, DARTS's factorized reduction), so a space
whose ops are made of these needs only its network's wiring (`nb201.py`, `darts.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.workers.batched.blocks import Blocks, join_blocks, split_blocks
from zcpipe.workers.batched.stacked import StackedBatchNorm2d, StackedConv2d, stacked_parameter
from zcpipe.workers.spaces import nb201 as nb201_space
from zcpipe.workers.spaces import nds_ops

# Modules whose forward is `self.op(x)` with `op` a Sequential: compiled from that Sequential.
SEQUENTIAL_WRAPPERS = (
    nb201_space.ReLUConvBN,
    nds_ops.ReLUConvBN,
    nds_ops.SepConv,
    nds_ops.DilConv,
    nds_ops.ConvKx1_1xK,
)
# Stateless modules that act on each channel alone: they run as they are over stacked channels.
CHANNELWISE = (nn.AvgPool2d, nn.MaxPool2d)
# Devices where a stacked convolution is one grouped kernel (one launch for B architectures). Elsewhere,
# on the CPU, it runs as one convolution per architecture, the single engine's kernels: oneDNN's
# grouped kernels round 7-10x worse in float32 (median over cells, snip and grasp), and with them the
# CPU batched path's float32 values were 1e-2 from the single engine's; separate, they are within
# 2e-7 (GraSP and plain, signed sums, 5e-5), at 10-30 % of the CPU batched path's speed, which is not
# the CPU's default (bench/README.md).
GROUPED_CONV_DEVICES = {"cuda"}


@dataclass
class Hooks:
    """What a pass wants to see during the forward: each weight layer's output (fisher) and each
    ReLU's input codes (nwot), with the positions of the architectures the tensor holds."""

    on_output: object | None = None  # fn(layer_index, output)
    on_relu: object | None = None  # fn(input, index tensor of the arch positions, None for all)


@dataclass
class StackedLayer:
    """One weight layer of several architectures: rows `j*c_out:(j+1)*c_out` are `archs[j]`'s."""

    module: nn.Module
    archs: list[int]
    index: torch.Tensor | None  # `archs` on the device, made once (None: every architecture, in order)
    slot: str
    op: str
    c_out: int


@dataclass
class Layout:
    """Where each architecture's weight layers are: for arch b, its layers in `weight_layers` order as
    (stacked layer, row block) pairs."""

    layers: list[StackedLayer] = field(default_factory=list)
    of_arch: list[list[tuple[int, int]]] = field(default_factory=list)


@dataclass
class Op:
    """One op compiled for the architectures of a group: its steps and their positions on the device
    (None: every architecture, in order)."""

    steps: list[tuple]
    index: torch.Tensor | None
    size: int


@dataclass
class Part:
    """The architectures of a choice that read inputs of one shape: the states they read (concatenated
    in this order when more than one), the op groups, and each group's blocks of that concatenation
    (None: one group, every architecture, one source: the source as it is)."""

    sources: list[int]
    ops: list[Op]
    take: Blocks | None


@dataclass
class Choice:
    """One place where architectures differ (an edge, a node's input): its parts, and where each op
    group's outputs go, over every part's groups in order (None: one part, one op, every architecture
    in order); an architecture that chose `none` gets zeros."""

    parts: list[Part]
    put: Blocks | None


class BatchedNetwork(nn.Module):
    """B networks of one space computed together; subclasses wire the space's network.

    `forward(x)` takes the images once (`[N, 3, H, W]`) or already replicated per architecture
    (`[N, B*3, H, W]`, what a pass that needs each architecture's input gradient gives) and returns
    the logits as `[N, B, classes]`. With `batchnorm=False` every BatchNorm is bypassed (synflow).
    """

    def __init__(self, nets: list[nn.Module], device: torch.device | str | None = None):
        """Stacks what every network here starts with, its stem (`net.stem`: a conv and a BatchNorm); the
        subclass stacks the rest, in the order of the network's modules. The batched network lives on
        `device` (the networks' where None); the networks may stay where they were built."""
        super().__init__()
        self.n_archs = len(nets)
        self._device = torch.device(device) if device is not None else nets[0].stem[0].weight.device
        self.layout = Layout(of_arch=[[] for _ in nets])
        self.hooks = Hooks()
        self.batchnorm = True
        self.in_channels = nets[0].stem[0].in_channels  # of one architecture's input
        self._convs = nn.ModuleList()
        self._bns = nn.ModuleList()
        self._bn_archs: list[tuple[list[int], torch.Tensor]] = []
        self._every = list(range(len(nets)))
        self._indices: dict[tuple[int, ...], torch.Tensor] = {}
        self._stem = self._compile([n.stem for n in nets], self._every)

    # ------------------------------------------------------------------ construction

    def _layer(self, layers: list[nn.Module], positions: list[int]) -> int:
        """Stack one weight layer (Conv2d or Linear) of the architectures at `positions`."""
        first = layers[0]
        if isinstance(first, nn.Conv2d):
            module: nn.Module = StackedConv2d(layers, self._device)
        else:  # the classifier, once per network
            module = nn.Linear(first.in_features, first.out_features * len(layers), device="meta")
            module.weight = stacked_parameter([m.weight for m in layers], self._device)
            module.bias = stacked_parameter([m.bias for m in layers], self._device)
        index = len(self.layout.layers)
        c_out = first.weight.shape[0]
        self.layout.layers.append(
            StackedLayer(module, positions, self._index(positions), first.zc_slot, first.zc_op, c_out)
        )
        self._convs.append(module)
        for j, b in enumerate(positions):
            self.layout.of_arch[b].append((index, j))
        return index

    def _stacked_bn(self, bns: list[nn.BatchNorm2d], positions: list[int]) -> nn.BatchNorm2d:
        bn = StackedBatchNorm2d(bns, self._device)
        self._bns.append(bn)
        self._bn_archs.append((positions, self._index(positions, every=False)))
        return bn

    def _compile(self, modules: list[nn.Module], positions: list[int]) -> list[tuple]:
        """The steps that run `modules` (one per architecture at `positions`, all of one structure) over
        their stacked channels; weight layers and BatchNorms are stacked on the way, in module order."""
        first = modules[0]
        if isinstance(first, SEQUENTIAL_WRAPPERS):
            return self._compile([m.op for m in modules], positions)
        if isinstance(first, nn.Sequential):
            return [step for i in range(len(first)) for step in self._compile([m[i] for m in modules], positions)]
        if isinstance(first, nn.ReLU):
            return [("relu",)]
        if isinstance(first, (nn.Conv2d, nn.Linear)):
            return [("layer", self._layer(modules, positions))]
        if isinstance(first, nn.BatchNorm2d):
            return [("bn", self._stacked_bn(modules, positions))]
        if isinstance(first, CHANNELWISE):
            return [("apply", first)]
        if isinstance(first, nn.Identity):
            return []
        if isinstance(first, nds_ops.FactorizedReduce):
            one = self._layer([m.conv_1 for m in modules], positions)
            two = self._layer([m.conv_2 for m in modules], positions)
            return [("relu",), ("reduce", one, two), ("bn", self._stacked_bn([m.bn for m in modules], positions))]
        raise TypeError(f"the batched path cannot stack {type(first).__name__}")

    def _op(self, modules: list[nn.Module], positions: list[int]) -> Op:
        return Op(self._compile(modules, positions), self._index(positions), len(positions))

    def _choice(self, picks: list[tuple[str, int, int, nn.Module]]) -> Choice:
        """One choice from each architecture's pick `(op name, source state, stride, module)`: parts by
        stride (inputs of one shape), op groups by name, `none` left to the zeros of the output."""
        by_stride: dict[int, dict[str, list[int]]] = {}
        for b, (name, _, stride, _) in enumerate(picks):
            if name != "none":
                by_stride.setdefault(stride, {}).setdefault(name, []).append(b)
        parts, puts = [], []
        for groups in by_stride.values():
            sources = sorted({picks[b][1] for positions in groups.values() for b in positions})
            takes = [[sources.index(picks[b][1]) * self.n_archs + b for b in pos] for pos in groups.values()]
            ops = [self._op([picks[b][3] for b in pos], pos) for pos in groups.values()]
            as_is = len(sources) == 1 and takes == [self._every]
            take = None if as_is else Blocks.of(takes, len(sources) * self.n_archs, self._device)
            parts.append(Part(sources, ops, take))
            puts += groups.values()
        if puts == [self._every]:
            return Choice(parts, None)  # one op for every architecture
        return Choice(parts, Blocks.of(puts, self.n_archs, self._device) if parts else None)

    def batchnorms(self) -> list[tuple[nn.BatchNorm2d, list[int], torch.Tensor]]:
        """Every stacked BatchNorm with the architectures it serves (as a list and as an index tensor on
        the device); for each architecture, its own BatchNorms appear in the order of its network's modules."""
        return [(bn, positions, index) for bn, (positions, index) in zip(self._bns, self._bn_archs, strict=True)]

    def _index(self, positions: list[int], every: bool = True) -> torch.Tensor | None:
        """`positions` as a device tensor, made once per network rather than on every pass (and once for
        an op's layers, BatchNorms and group); None for every architecture in order where `every` allows it."""
        if every and positions == self._every:
            return None
        key = tuple(positions)
        if key not in self._indices:
            self._indices[key] = torch.tensor(positions, device=self._device)
        return self._indices[key]

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The maps before global pooling, `[N, B*C, H, W]` (zen's f)."""
        raise NotImplementedError

    def _replicated(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == self.in_channels:  # the images once: one copy per architecture
            return x.repeat(1, self.n_archs, 1, 1)
        return x

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(feats, 1).flatten(1)  # [N, B*C]
        index = len(self.layout.layers) - 1  # the classifier is every network's last weight layer
        layer = self.layout.layers[index]
        lin = layer.module
        n, b = pooled.shape[0], self.n_archs
        w = lin.weight.view(b, layer.c_out, -1)  # [B, K, C]
        flat = (torch.einsum("nbc,bkc->nbk", pooled.view(n, b, -1), w) + lin.bias.view(b, -1)).reshape(n, -1)
        if self.hooks.on_output is not None:
            self.hooks.on_output(index, flat)  # the tensor the logits are read from (fisher)
        return flat.view(n, b, -1)

    def _run(self, steps: list[tuple], x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Run compiled steps over the stacked channels of the architectures at `index`."""
        for step in steps:
            kind = step[0]
            if kind == "relu":
                if self.hooks.on_relu is not None:
                    self.hooks.on_relu(x, index)
                x = F.relu(x)
            elif kind == "layer":
                x = self._weight(step[1], x)
            elif kind == "bn":
                x = step[1](x) if self.batchnorm else x
            elif kind == "apply":
                x = step[1](x)
            else:  # "reduce": DARTS's factorized reduction, each architecture's two halves side by side
                one, two = self._weight(step[1], x), self._weight(step[2], x[:, :, 1:, 1:])
                n, _, h, w = one.shape
                halves = [y.view(n, self.n_archs if index is None else len(index), -1, h, w) for y in (one, two)]
                x = torch.cat(halves, dim=2).view(n, -1, h, w)
        return x

    def _weight(self, index: int, x: torch.Tensor) -> torch.Tensor:
        layer = self.layout.layers[index]
        module, n = layer.module, len(layer.archs)
        # A depthwise convolution (DARTS's) stays one kernel: each channel is its own sum either way.
        dense = isinstance(module, nn.Conv2d) and module.groups == n
        if dense and n > 1 and x.device.type not in GROUPED_CONV_DEVICES:
            y = self._conv_per_arch(layer, x)
        else:
            y = module(x)
        if self.hooks.on_output is not None:
            self.hooks.on_output(index, y)
        return y

    def _conv_per_arch(self, layer: StackedLayer, x: torch.Tensor) -> torch.Tensor:
        """A stacked dense convolution as one convolution per architecture over its channel block (split
        and cat: their backward is one cat and views, no zero fills)."""
        m, n = layer.module, len(layer.archs)
        ws, xs = m.weight.split(layer.c_out, 0), x.split(m.in_channels // n, 1)
        return torch.cat(
            [F.conv2d(xi, wi, None, m.stride, m.padding, m.dilation) for xi, wi in zip(xs, ws, strict=True)], 1
        )

    def _run_choice(self, choice: Choice, states: list[torch.Tensor]) -> torch.Tensor | None:
        """Every architecture's pick at one choice; None when all picked `none`."""
        if not choice.parts:
            return None
        b = self.n_archs
        outs = []
        for part in choice.parts:
            src = states[part.sources[0]]
            n, c, h, w = src.shape[0], src.shape[1] // b, src.shape[2], src.shape[3]
            if part.take is None:
                blocks = [src]
            else:
                if len(part.sources) > 1:  # [n, S*B*c, h, w]: source after source, each in arch order
                    src = torch.cat([states[s] for s in part.sources], dim=1)
                blocks = [x.view(n, -1, h, w) for x in split_blocks(src.view(n, -1, c * h * w), part.take)]
            outs += [self._run(op.steps, blk, op.index) for op, blk in zip(part.ops, blocks, strict=True)]
        if choice.put is None:
            return outs[0]
        n, _, h, w = outs[0].shape
        groups = [op.size for part in choice.parts for op in part.ops]
        joined = join_blocks([o.reshape(n, k, -1) for o, k in zip(outs, groups, strict=True)], choice.put)
        return joined.view(n, -1, h, w)

    def _zeros(self, like: torch.Tensor, stride: int) -> torch.Tensor:
        """What a choice where every architecture picked `none` gives."""
        return like[:, :, ::stride, ::stride].mul(0.0)
