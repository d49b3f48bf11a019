"""The batched engine: the proxies of B architectures of one space from one set of passes.

The passes the batched network covers (the shared data pass, synflow's, the weights') run once for
all B; each layer proxy's per-element scores are summed per architecture over the stacked layers
(one reduction per stacked layer and one device-to-host copy per pass), and whole-network proxies
read each architecture's slice; zen's two feature passes run once for all B on each one's own
draws. Proxies with passes of their own (MeCo's input, SWAP's images, ZiCo's halves) run per
architecture through the single-architecture engine, which stays the reference every batched value
is tested against.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import torch
import torch.nn as nn

from zcpipe.workers.batched.build import batched_network
from zcpipe.workers.batched.counts import batched_counts
from zcpipe.workers.batched.network import Layout
from zcpipe.workers.batched.passes import BatchedPass, run_data_pass, run_synflow_pass, weights_pass
from zcpipe.workers.batched.zen import draw, run_zen_pass
from zcpipe.workers.device import synchronize
from zcpipe.workers.engine import HVP_FACTOR, PLAIN_FACTOR, ArchStats, ProxyEngine, record_layer_values, segment_sums
from zcpipe.workers.proxies import Batch, Proxy, ProxyContext
from zcpipe.workers.proxies.base import value_or_raise
from zcpipe.workers.proxies.counts import activation_bytes_per_image
from zcpipe.workers.proxies.passes import DataPass
from zcpipe.workers.proxies.zen import zen_value

# Most architectures one batched pass takes by default: past this the kernels are large enough that
# a bigger batch saves no launch time worth its memory.
MAX_ARCH_BATCH = 64

# How long a pass waits for host work done beside it (zen's draws: well under a second per pass).
HOST_WORK_TIMEOUT_S = 600.0

# The passes the batched network runs for many architectures at once; `count` is per architecture on
# the meta device (no kernels), every other pass per architecture through the single engine.
BATCHED_PASSES = ("data", "synflow", "weights", "zen")


def choose_arch_batch(model: nn.Module, batch: Batch, budget_bytes: float, hvp: bool) -> int:
    """How many architectures like `model` one batched pass can take within `budget_bytes`: the
    activation bytes per image (`activation_bytes_per_image`) times the images, times the factor the data pass
    needs (GraSP's differentiable backward keeps about twice the plain one), up to `MAX_ARCH_BATCH`."""
    per_image = activation_bytes_per_image(model, tuple(batch.images.shape[1:]), batch.images.dtype)
    per_arch = per_image * batch.images.shape[0] * (HVP_FACTOR if hvp else PLAIN_FACTOR)
    return max(1, min(MAX_ARCH_BATCH, int(budget_bytes // max(per_arch, 1))))


class BatchedEngine:
    """Computes `proxies` for several architectures at once; `single` runs what is not batched."""

    def __init__(self, single: ProxyEngine):
        self.single = single
        self.proxies = single.proxies
        self.batched = [p for p in self.proxies if p.pass_name in BATCHED_PASSES]
        self.own = [p for p in self.proxies if p.pass_name not in (*BATCHED_PASSES, "count")]
        self.counters = [p for p in self.proxies if p.pass_name == "count"]
        self._draws_thread: ThreadPoolExecutor | None = None

    def compute(self, models: list[nn.Module], batch: Batch, generator_seeds: list[int]) -> list[ArchStats]:
        """Every proxy of each of `models` on `batch`; equal to `ProxyEngine.compute` per architecture
        within float32 rounding (tests/test_batched.py). The models may be where the space built them (the
        host): the batched network is made on the batch's device, one copy per stacked tensor, and a model is
        moved there only for a proxy the single engine runs for it."""
        by_pass: dict[str, list[Proxy]] = {}
        for p in self.batched:
            by_pass.setdefault(p.pass_name, []).append(p)
        # One network for every batched pass: synflow's |θ| in float64 is substituted for its call
        # alone; zen, which redraws the weights, goes last.
        net = batched_network(models, batch.images.device) if by_pass else None
        # One forward of one image through the batched network counts every architecture's FLOPs
        # (workers/batched/counts.py); without one, each architecture has its own count pass.
        counts = None
        if net is not None and self.counters:
            counts = batched_counts(net, models, tuple(batch.images.shape[1:]))
        skeletons = [
            self.single.skeleton(m, batch, None if counts is None else counts[b]) for b, m in enumerate(models)
        ]
        stats = [st for st, _ in skeletons]
        if net is not None:
            _check_order(net.layout, stats)
            # zen's draws are host work of their own (each architecture's generator is serial): they run in
            # a thread beside the passes before zen's, torch releasing the interpreter while it draws.
            zen_draws = None
            if "zen" in by_pass:
                layers = [[m for _, m in named] for _, named in skeletons]
                zen_draws = self._drawer().submit(draw, models, layers, generator_seeds, batch.images)
            if "synflow" in by_pass:
                self._timed(stats, by_pass["synflow"], net.layout, lambda: BatchedPass(run_synflow_pass(net, batch)))
            if "data" in by_pass:
                needs = {need for p in by_pass["data"] for need in p.needs}
                self._timed(stats, by_pass["data"], net.layout, lambda: run_data_pass(net, batch, needs))
            if "weights" in by_pass:
                self._timed(stats, by_pass["weights"], net.layout, lambda: BatchedPass(weights_pass(net, batch)))
            if zen_draws is not None:
                t0 = time.perf_counter()
                values = run_zen_pass(net, _result(zen_draws, "zen's draws"), batch)
                share = (time.perf_counter() - t0) / (len(models) * len(by_pass["zen"]))
                for st, v in zip(stats, values, strict=True):
                    for p in by_pass["zen"]:
                        self.single.record(st, p, lambda v=v: zen_value(v), share)
            del net
        own = self.single.standalone_with_split
        if self.own:
            for model, (st, named), seed in zip(models, skeletons, generator_seeds, strict=True):
                model.to(batch.images.device)
                ctx = ProxyContext(layers=[m for _, m in named], generator_seed=seed)
                for p in self.own:
                    self.single.record(st, p, lambda p=p, m=model, c=ctx: own(p, m, batch, c))
        return stats

    def _drawer(self) -> ThreadPoolExecutor:
        if self._draws_thread is None:
            self._draws_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zen-draws")
        return self._draws_thread

    def _timed(self, stats: list[ArchStats], proxies: list[Proxy], layout: Layout, run) -> None:
        t0 = time.perf_counter()
        result = run()
        layer_proxies = [p for p in proxies if p.scope == "layer"]
        sums = _per_arch_sums(layout, [p.elements(result.stacked) for p in layer_proxies])
        if result.stacked.layers and layer_proxies:
            synchronize(result.stacked.weights[0].device)
        # Whole-network proxies with a form for many architectures compute all of theirs at once (one
        # set of kernels and one copy to the host, where one each would wait on the device B times).
        inputs = result.archs(len(stats)) if any(p.scope == "arch" for p in proxies) else None
        together = {p.name: p.extract_archs(inputs) for p in proxies if p.scope == "arch"}
        share = (time.perf_counter() - t0) / (len(proxies) * len(stats))
        for b, st in enumerate(stats):
            for k, p in enumerate(layer_proxies):
                per_layer = sums[k][b]
                if p.finish == "sqrt":
                    per_layer = [math.sqrt(v) if v >= 0 else math.nan for v in per_layer]
                record_layer_values(st, p, per_layer)
                st.seconds[p.name] = share
            view: DataPass | None = None
            for p in proxies:
                if p.scope != "arch":
                    continue
                values = together[p.name]
                if values is not None:
                    self.single.record(st, p, lambda v=values[b]: value_or_raise(v), share)
                else:
                    view = view or result.of_arch(b)
                    self.single.record(st, p, lambda p=p, v=view: p.extract(v), share)


def _result(future: Future, what: str):
    """The future's result, waited for at most `HOST_WORK_TIMEOUT_S` (host work of a pass, seconds at most)."""
    try:
        return future.result(timeout=HOST_WORK_TIMEOUT_S)
    except FutureTimeout:
        raise RuntimeError(f"{what} did not finish in {HOST_WORK_TIMEOUT_S:g} s") from None


def _check_order(layout: Layout, stats: list[ArchStats]) -> None:
    # The per-layer values are matched to each architecture's layers by position: fail loudly if the
    # batched network stacked them in another order than the architecture's own (`weight_layers`).
    for b, st in enumerate(stats):
        if [layout.layers[i].slot for i, _ in layout.of_arch[b]] != [layer.slot for layer in st.layers]:
            raise RuntimeError(f"the batched network's layer order differs from architecture {b}'s")


def _per_arch_sums(layout: Layout, scores: list[list[torch.Tensor]]) -> list[list[list[float]]]:
    """For each proxy's per-element scores over the stacked layers: per architecture, the sum over each
    of its layers (in its own layer order), in float64, from one segmented sum and one device-to-host
    copy for all (each stacked layer's rows are its architectures' blocks, one after another)."""
    if not scores:
        return []
    parts, lengths = [], []
    for per_layer in scores:
        for layer, t in zip(layout.layers, per_layer, strict=True):
            parts.append(t.detach().reshape(-1))
            lengths += [t.numel() // len(layer.archs)] * len(layer.archs)
    flat = segment_sums(parts, lengths)
    offsets, at = [], 0
    for layer in layout.layers:
        offsets.append(at)
        at += len(layer.archs)
    out = []
    for k in range(len(scores)):
        base = k * at
        out.append([[flat[base + offsets[i] + j] for i, j in arch_layers] for arch_layers in layout.of_arch])
    return out
