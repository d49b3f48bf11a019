"""NAS-Bench-101: the cell spec (7×7 upper-triangular matrix + ops), pruning, the benchmark's graph
hash, and the network it trained (stem of 128 channels, 3 stacks of 3 cells, channel splitting,
1×1 projections), as the reference implementation builds it.

Arch key: the benchmark's graph hash of the pruned spec (isomorphic cells share it).
Spec (what builds): `{"matrix": [[...]], "ops": [...]}` of the pruned cell, compact JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from zcpipe.workers.spaces.base import ArchError, ArchGraph, BuildOptions, SearchSpace, tag
from zcpipe.workers.spaces.registry import SPACES

INPUT, OUTPUT = "input", "output"
CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
CANONICAL_OPS = (CONV3, CONV1, POOL)  # the benchmark's labelling order for hashing
MAX_VERTICES, MAX_EDGES = 7, 9
HINT = 'expected {"matrix": 7×7 upper-triangular 0/1, "ops": ["input", ..., "output"]}'


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]]:
    """Drop vertices not on a path from input to output (the benchmark's ModelSpec._prune)."""
    n = matrix.shape[0]
    fwd, frontier = {0}, [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, n):
            if matrix[top, v] and v not in fwd:
                fwd.add(v)
                frontier.append(v)
    bwd, frontier = {n - 1}, [n - 1]
    while frontier:
        top = frontier.pop()
        for v in range(top):
            if matrix[v, top] and v not in bwd:
                bwd.add(v)
                frontier.append(v)
    extraneous = sorted(set(range(n)) - (fwd & bwd))
    if len(extraneous) > n - 2:
        raise ArchError("NB101 cell has no path from input to output")
    keep = [v for v in range(n) if v not in extraneous]
    return matrix[np.ix_(keep, keep)], [ops[v] for v in keep]


def graph_hash(matrix: np.ndarray, ops: list[str]) -> str:
    """The benchmark's `hash_module` fingerprint (iterated neighbourhood md5 over vertex labels)."""
    n = matrix.shape[0]
    m = matrix.tolist()  # plain lists: this runs for every cell of a 423k-cell import
    labels = [-1] + [CANONICAL_OPS.index(op) for op in ops[1:-1]] + [-2]
    preds = [[w for w in range(n) if m[w][v]] for v in range(n)]
    succs = [[w for w in range(n) if m[v][w]] for v in range(n)]
    hashes = [hashlib.md5(str((len(succs[v]), len(preds[v]), labels[v])).encode()).hexdigest() for v in range(n)]
    for _ in range(n):
        hashes = [
            hashlib.md5(
                (
                    "".join(sorted(hashes[w] for w in preds[v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in succs[v]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


def _load(text: str) -> tuple[np.ndarray, list[str]]:
    try:
        d = json.loads(text)
        matrix = np.asarray(d["matrix"], dtype=np.int64)
        ops = [str(o) for o in d["ops"]]
    except (ValueError, KeyError, TypeError):
        raise ArchError(f"malformed NB101 arch {text[:80]!r}: {HINT}") from None
    n = matrix.shape[0] if matrix.ndim == 2 else 0
    if matrix.ndim != 2 or matrix.shape != (n, n) or not 2 <= n <= MAX_VERTICES or len(ops) != n:
        raise ArchError(f"malformed NB101 arch: matrix must be square with 2..7 vertices and one op each; {HINT}")
    if np.any(np.tril(matrix) != 0) or not np.isin(matrix, (0, 1)).all():
        raise ArchError("malformed NB101 arch: the matrix must be 0/1 and strictly upper-triangular")
    if ops[0] != INPUT or ops[-1] != OUTPUT or any(o not in CANONICAL_OPS for o in ops[1:-1]):
        raise ArchError(f"NB101 ops must be input, then {', '.join(CANONICAL_OPS)}, then output; got {ops}")
    matrix, ops = prune(matrix, ops)
    # The limit holds for the computation graph: published specs may carry dead edges beyond it.
    if matrix.sum() > MAX_EDGES:
        raise ArchError(f"NB101 arch has {int(matrix.sum())} live edges; the space allows at most {MAX_EDGES}")
    return matrix, ops


def _dump(matrix: np.ndarray, ops: list[str]) -> str:
    return json.dumps({"matrix": matrix.astype(int).tolist(), "ops": ops}, separators=(",", ":"))


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """Channels of every vertex: the output's channels split over the vertices that feed it."""
    n = matrix.shape[0]
    ch = [0] * n
    ch[0], ch[n - 1] = c_in, c_out
    if n == 2:
        return ch
    in_degree = matrix[1:].sum(axis=0)
    interior, correction = divmod(c_out, int(in_degree[n - 1]))
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            ch[v] = interior + (1 if correction else 0)
            correction -= 1 if correction else 0
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v, dst]:
                    ch[v] = max(ch[v], ch[dst])
    return ch


class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, slot: str, op: str):
        super().__init__(
            tag(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), slot, op),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )


class Nb101Cell(nn.Module):
    def __init__(self, matrix: np.ndarray, ops: list[str], c_in: int, c_out: int, prefix: str):
        super().__init__()
        self.matrix = matrix
        n = matrix.shape[0]
        self.ch = vertex_channels(c_in, c_out, matrix)
        # Registered vertex by vertex (its input projection, then its op), so module order is the
        # depth-first slot order.
        self.parts = nn.ModuleDict()
        for t in range(1, n):
            name = "out" if t == n - 1 else f"v{t}"
            if matrix[0, t]:
                self.parts[f"proj_{name}"] = ConvBnRelu(c_in, self.ch[t], 1, f"{prefix}/proj_{name}", "projection")
            if t == n - 1:
                continue
            if ops[t] == POOL:
                self.parts[name] = nn.MaxPool2d(3, stride=1, padding=1)
            else:
                k = 3 if ops[t] == CONV3 else 1
                self.parts[name] = ConvBnRelu(self.ch[t], self.ch[t], k, f"{prefix}/{name}/{ops[t]}", ops[t])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.matrix.shape[0]
        tensors, out = [x], []
        for t in range(1, n - 1):
            # Channels never grow along an edge; a wider source is truncated, as the benchmark does.
            fan_in = [tensors[s][:, : self.ch[t]] for s in range(1, t) if self.matrix[s, t]]
            if self.matrix[0, t]:
                fan_in.append(self.parts[f"proj_v{t}"](x))
            tensors.append(self.parts[f"v{t}"](sum(fan_in)))
            if self.matrix[t, n - 1]:
                out.append(tensors[t])
        if not out:
            return self.parts["proj_out"](x)
        y = out[0] if len(out) == 1 else torch.cat(out, 1)
        if self.matrix[0, n - 1]:
            y = y + self.parts["proj_out"](x)
        return y


class Nb101Network(nn.Module):
    def __init__(self, matrix, ops, stem: int, stacks: int, cells: int, num_classes: int, in_channels: int):
        super().__init__()
        layers: list[nn.Module] = [ConvBnRelu(in_channels, stem, 3, "stem/conv", "conv3x3-bn-relu")]
        c_in = c_out = stem
        for s in range(stacks):
            if s > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                c_out *= 2
            for c in range(cells):
                layers.append(Nb101Cell(matrix, ops, c_in, c_out, f"s{s}c{c}"))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.classifier = tag(nn.Linear(c_out, num_classes), "classifier", "linear")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


@SPACES.register("nb101")
class NB101(SearchSpace):
    name = "nb101"

    def __init__(self, stem_channels: int = 128, stacks: int = 3, cells_per_stack: int = 3):
        self.stem, self.stacks, self.cells = stem_channels, stacks, cells_per_stack

    def params(self) -> dict[str, Any]:
        return {"stem_channels": self.stem, "stacks": self.stacks, "cells_per_stack": self.cells}

    def parse(self, text: str) -> str:
        t = text.strip()
        if len(t) == 32 and all(c in "0123456789abcdef" for c in t):
            raise ArchError(f"NB101 hash {t} names a cell but cannot build it; give its matrix and ops")
        return graph_hash(*_load(t))

    def spec(self, text: str) -> str:
        return _dump(*_load(text.strip()))

    def key_and_spec(self, text: str) -> tuple[str, str]:
        t = text.strip()
        if len(t) == 32:
            self.parse(t)  # a bare hash: the error that says to give matrix and ops
        matrix, ops = _load(t)
        return graph_hash(matrix, ops), _dump(matrix, ops)

    def sample(self, n: int, seed: int) -> list[str]:
        """Uniform over valid cells: random 7-vertex DAGs and ops, rejected when invalid, unique by hash."""
        rng = np.random.default_rng(seed)
        out: dict[str, str] = {}
        while len(out) < n:
            m = np.triu(rng.integers(0, 2, (MAX_VERTICES, MAX_VERTICES)), 1)
            ops = [INPUT, *(CANONICAL_OPS[i] for i in rng.integers(0, 3, MAX_VERTICES - 2)), OUTPUT]
            try:
                pm, pops = prune(m, ops)
            except ArchError:
                continue
            if pm.sum() > MAX_EDGES:
                continue
            out.setdefault(graph_hash(pm, pops), _dump(pm, pops))
        return list(out.values())

    def build(self, arch: str, options: BuildOptions) -> nn.Module:
        matrix, ops = _load(arch)
        return Nb101Network(
            matrix, ops, self.stem, self.stacks, self.cells, options.num_classes, options.input_shape[0]
        )

    def graph(self, arch: str) -> ArchGraph:
        matrix, ops = _load(arch)
        return ArchGraph(ops=ops, adjacency=matrix.astype(np.int8))

    def node_slots(self, arch: str) -> list[list[str]]:
        matrix, ops = _load(arch)
        n = len(ops)
        cells = [f"s{s}c{c}" for s in range(self.stacks) for c in range(self.cells)]
        nodes: list[list[str]] = [["stem/conv"]]
        for v in range(1, n - 1):
            own = [f"{c}/v{v}/{ops[v]}" for c in cells] if ops[v] != POOL else []
            nodes.append(own + ([f"{c}/proj_v{v}" for c in cells] if matrix[0, v] else []))
        nodes.append(([f"{c}/proj_out" for c in cells] if matrix[0, n - 1] else []) + ["classifier"])
        return nodes

    def slots(self) -> list[str]:
        out = ["stem/conv"]
        for s in range(self.stacks):
            for c in range(self.cells):
                for v in range(1, MAX_VERTICES - 1):
                    out += [f"s{s}c{c}/proj_v{v}", f"s{s}c{c}/v{v}/{CONV3}", f"s{s}c{c}/v{v}/{CONV1}"]
                out.append(f"s{s}c{c}/proj_out")
        out.append("classifier")
        return out
