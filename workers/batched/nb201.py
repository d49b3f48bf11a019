"""B NAS-Bench-201 networks as one module: every layer runs once for all the architectures that have it.

Why this layout (docs/proxies.md, "The batched path"): every NB201 cell shares one skeleton, so the
only thing that differs between architectures is which op sits on each of the six edges. Activations
are kept as `[N, B*C, H, W]`, each architecture's C channels side by side. A layer that every
architecture has (stem, residual blocks, last BN, classifier) is one grouped convolution
(`groups=B`) over all of them; on a cell edge the architectures are grouped by the op they chose, and
each op runs once, as a grouped convolution, over its group's channels (one `index_select` per
edge lays the input out group by group, one puts the outputs back in architecture order).
BatchNorm over `B*C` channels computes each
architecture's statistics over its own images, and a grouped convolution never mixes groups, so
architecture b's outputs, gradients and second derivatives are those of its own network; the sum
of the architectures' losses separates into each one's. No FLOP is spent on an op an architecture
did not choose (a masked supernet would spend 2-3x); the cost is two gathers per edge (and their
backward), and the replicated input (`B` copies of the images, for per-architecture input
gradients).

The weights are copied from the B networks the space built, so initialisation is the space's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.workers.spaces.base import weight_layers
from zcpipe.workers.spaces.nb201 import InferCell, ReLUConvBN, ResNetBasicBlock, TinyNetwork


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
class Group:
    """The architectures (positions in the batch) that run one op on one edge."""

    positions: list[int]


@dataclass
class Edge:
    """One cell edge: its (op, group, stacked conv) triples; `gather` lays the input out group after
    group (one gather for all groups), `order` puts the groups' outputs back in architecture order
    (both None: one op for every architecture)."""

    groups: list[tuple[str, Group, tuple | None]]
    gather: torch.Tensor | None
    order: torch.Tensor | None
    zero_block: bool


@dataclass
class Layout:
    """Where each architecture's weight layers are: for arch b, its layers in `weight_layers` order as
    (stacked layer, row block) pairs."""

    layers: list[StackedLayer] = field(default_factory=list)
    of_arch: list[list[tuple[int, int]]] = field(default_factory=list)


def _cat_param(tensors: list[torch.Tensor], dtype: torch.dtype | None) -> nn.Parameter:
    t = torch.cat([x.detach() for x in tensors])
    return nn.Parameter(t if dtype is None else t.to(dtype))


class BatchedNB201(nn.Module):
    """B NB201 networks (`TinyNetwork`) of equal C, N and classes, computed together.

    `forward(x)` takes the images once (`[N, 3, H, W]`) or already replicated per architecture
    (`[N, B*3, H, W]`, what a pass that needs each architecture's input gradient gives) and returns
    the logits as `[N, B, classes]`. With `batchnorm=False` every BatchNorm is bypassed (synflow).
    """

    def __init__(self, nets: list[TinyNetwork], dtype: torch.dtype | None = None, absolute: bool = False):
        super().__init__()
        if not nets or not all(isinstance(n, TinyNetwork) for n in nets):
            raise TypeError("BatchedNB201 takes a non-empty list of NB201 TinyNetworks")
        self.n_archs = len(nets)
        self.dtype = dtype
        self._device = nets[0].stem[0].weight.device
        self.absolute = absolute  # synflow's |θ|
        self.layout = Layout(of_arch=[[] for _ in nets])
        self.hooks = Hooks()
        self.batchnorm = True
        self._convs = nn.ModuleList()
        self._bns = nn.ModuleList()
        self._bn_archs: list[tuple[list[int], torch.Tensor]] = []
        self._plan: list[tuple] = []
        every = list(range(len(nets)))
        self._stem = self._conv([n.stem[0] for n in nets], every, bn=[n.stem[1] for n in nets], relu=False)
        for i, cell in enumerate(nets[0].cells):
            cells = [n.cells[i] for n in nets]
            if isinstance(cell, ResNetBasicBlock):
                self._plan.append(("res", self._resblock(cells)))
            elif isinstance(cell, InferCell):
                self._plan.append(("cell", self._cell(cells)))
            else:
                raise TypeError(f"unexpected NB201 cell {type(cell).__name__}")
        self._last_bn = self._stacked_bn([n.lastact[0] for n in nets], every)
        self._classifier = self._layer([n.classifier for n in nets], every)
        self._check_order(nets)

    # ------------------------------------------------------------------ construction

    def _layer(self, layers: list[nn.Module], positions: list[int]) -> int:
        """Stack one weight layer (Conv2d or Linear) of the architectures at `positions`."""
        first = layers[0]
        if isinstance(first, nn.Conv2d):
            module = nn.Conv2d(
                first.in_channels * len(layers),
                first.out_channels * len(layers),
                first.kernel_size,
                stride=first.stride,
                padding=first.padding,
                groups=len(layers),
                bias=False,
                device="meta",  # no initialisation: the weights are the architectures'
            )
        else:
            module = nn.Linear(first.in_features, first.out_features * len(layers), device="meta")
            module.bias = _cat_param([m.bias for m in layers], self.dtype)
        module.weight = _cat_param([m.weight for m in layers], self.dtype)
        if self.absolute:
            with torch.no_grad():
                for p in module.parameters():
                    p.abs_()
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
        channels = sum(m.num_features for m in bns)
        bn = nn.BatchNorm2d(channels, eps=bns[0].eps, momentum=bns[0].momentum, device="meta")
        bn.weight = _cat_param([m.weight for m in bns], self.dtype)
        bn.bias = _cat_param([m.bias for m in bns], self.dtype)
        bn.running_mean = torch.cat([m.running_mean for m in bns]).to(bn.weight.dtype)
        bn.running_var = torch.cat([m.running_var for m in bns]).to(bn.weight.dtype)
        bn.num_batches_tracked = bns[0].num_batches_tracked.clone()
        if self.absolute:
            with torch.no_grad():
                bn.weight.abs_()
                bn.bias.abs_()
        self._bns.append(bn)
        self._bn_archs.append((positions, self._index(positions, every=False)))
        return bn

    def _conv(self, convs: list[nn.Conv2d], positions: list[int], bn: list[nn.BatchNorm2d], relu: bool) -> tuple:
        return (self._layer(convs, positions), self._stacked_bn(bn, positions), relu)

    def _relu_conv_bn(self, ops: list[ReLUConvBN], positions: list[int]) -> tuple:
        return self._conv([o.op[1] for o in ops], positions, [o.op[2] for o in ops], relu=True)

    def _resblock(self, blocks: list[ResNetBasicBlock]) -> tuple:
        every = list(range(len(blocks)))
        a = self._relu_conv_bn([b.conv_a for b in blocks], every)
        b_ = self._relu_conv_bn([b.conv_b for b in blocks], every)
        down = self._layer([b.downsample[1] for b in blocks], every)
        return a, b_, down

    def _cell(self, cells: list[InferCell]) -> list[Edge]:
        edges = []
        device = self._device
        for k in range(len(cells[0].edges)):
            by_op: dict[str, list[int]] = {}
            for b, cell in enumerate(cells):
                by_op.setdefault(_op_name(cell.edges[k]), []).append(b)
            groups = []
            where = [0] * len(cells)  # each architecture's block in the concatenated outputs
            gathered: list[int] = []
            for op, positions in by_op.items():
                if op == "none":
                    continue  # contributes x·0: nothing to compute
                is_conv = op.startswith("conv")
                conv = self._relu_conv_bn([cells[b].edges[k] for b in positions], positions) if is_conv else None
                groups.append((op, Group(positions), conv))
                for b in positions:
                    where[b] = len(gathered)
                    gathered.append(b)
            none = by_op.get("none", [])
            for b in none:
                where[b] = len(gathered)  # the zero block after the last group
            if not groups or (len(groups) == 1 and not none):
                edges.append(Edge(groups, None, None, zero_block=False))  # nothing, or one op for all
                continue
            gather = torch.tensor(gathered, device=device)
            edges.append(Edge(groups, gather, torch.tensor(where, device=device), zero_block=bool(none)))
        return edges

    def _check_order(self, nets: list[TinyNetwork]) -> None:
        # The per-layer values are matched to each architecture's layers by position: fail loudly
        # if the stacking walked the modules in another order than `weight_layers`.
        for b, net in enumerate(nets):
            own = [m.zc_slot for _, m in weight_layers(net)]
            stacked = [self.layout.layers[i].slot for i, _ in self.layout.of_arch[b]]
            if own != stacked:
                raise RuntimeError(f"batched NB201 layer order differs from architecture {b}'s")

    def batchnorms(self) -> list[tuple[nn.BatchNorm2d, list[int], torch.Tensor]]:
        """Every stacked BatchNorm with the architectures it serves (as a list and as an index tensor on
        the device); for each architecture, its own BatchNorms appear in the order of its network's modules."""
        return [(bn, positions, index) for bn, (positions, index) in zip(self._bns, self._bn_archs, strict=True)]

    def _index(self, positions: list[int], every: bool = True) -> torch.Tensor | None:
        """`positions` as a device tensor, made once here rather than on every pass; None for every
        architecture in order where `every` allows it."""
        if every and positions == list(range(self.n_archs)):
            return None
        return torch.tensor(positions, device=self._device)

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The maps before global pooling, `[N, B*C, H, W]` (zen's f)."""
        if x.shape[1] != self._convs[0].in_channels:  # the images once: one copy per architecture
            x = x.repeat(1, self.n_archs, 1, 1)
        x = self._run_conv(self._stem, x)
        for kind, plan in self._plan:
            x = self._run_res(plan, x) if kind == "res" else self._run_cell(plan, x)
        x = self._bn(self._last_bn, x)
        if self.hooks.on_relu is not None:
            self.hooks.on_relu(x, None)
        return F.relu(x)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(feats, 1).flatten(1)  # [N, B*C]
        layer = self.layout.layers[self._classifier]
        lin = layer.module
        n, b = pooled.shape[0], self.n_archs
        w = lin.weight.view(b, layer.c_out, -1)  # [B, K, C]
        flat = (torch.einsum("nbc,bkc->nbk", pooled.view(n, b, -1), w) + lin.bias.view(b, -1)).reshape(n, -1)
        if self.hooks.on_output is not None:
            self.hooks.on_output(self._classifier, flat)  # the tensor the logits are read from (fisher)
        return flat.view(n, b, -1)

    def _bn(self, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        return bn(x) if self.batchnorm else x

    def _run_conv(self, plan: tuple, x: torch.Tensor) -> torch.Tensor:
        index, bn, relu = plan
        layer = self.layout.layers[index]
        if relu:
            if self.hooks.on_relu is not None:
                self.hooks.on_relu(x, layer.index)
            x = F.relu(x)
        y = layer.module(x)
        if self.hooks.on_output is not None:
            self.hooks.on_output(index, y)
        return self._bn(bn, y)

    def _run_res(self, plan: tuple, x: torch.Tensor) -> torch.Tensor:
        a, b, down = plan
        main = self._run_conv(b, self._run_conv(a, x))
        layer = self.layout.layers[down]
        y = layer.module(F.avg_pool2d(x, 2, 2))
        if self.hooks.on_output is not None:
            self.hooks.on_output(down, y)
        return y + main

    def _run_cell(self, edges: list, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to in (1, 2, 3):
            total = None
            for frm in range(to):
                y = self._run_edge(edges[k], nodes[frm])
                if y is not None:
                    total = y if total is None else total + y
                k += 1
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]

    def _run_edge(self, edge: Edge, x: torch.Tensor) -> torch.Tensor | None:
        """One edge for every architecture: one gather lays the input out group by group, each op runs
        once over its group's block, one gather puts the outputs back in architecture order (an
        architecture with `none` reads a block of zeros)."""
        if not edge.groups:
            return None
        n, _, h, w = x.shape
        per_arch = x.shape[1] // self.n_archs
        blocks = [x]
        if edge.gather is not None:
            laid_out = x.view(n, self.n_archs, per_arch, h, w).index_select(1, edge.gather)
            # split, not slicing: its backward is one concatenation, where each slice's backward
            # would fill a zero tensor of the whole input.
            blocks = [b.reshape(n, -1, h, w) for b in laid_out.split([len(g.positions) for _, g, _ in edge.groups], 1)]
        outs = []
        for (op, _group, conv), src in zip(edge.groups, blocks, strict=True):
            if conv is not None:
                y = self._run_conv(conv, src)
            elif op == "pool":
                y = F.avg_pool2d(src, 3, stride=1, padding=1, count_include_pad=False)
            else:  # skip
                y = src
            outs.append(y)
        if edge.order is None:  # one op for every architecture
            return outs[0]
        if edge.zero_block:
            outs.append(x.new_zeros((n, per_arch, h, w)))
        cat = torch.cat([o.reshape(n, -1, per_arch, h, w) for o in outs], dim=1)
        return cat.index_select(1, edge.order).view(n, -1, h, w)


def _op_name(edge: nn.Module) -> str:
    if isinstance(edge, ReLUConvBN):
        return "conv3x3" if edge.op[1].kernel_size == (3, 3) else "conv1x1"
    if isinstance(edge, nn.AvgPool2d):
        return "pool"
    if isinstance(edge, nn.Identity):
        return "skip"
    return "none"
