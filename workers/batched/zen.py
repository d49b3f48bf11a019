"""zen for B architectures at once: the same draws as the single engine's, one batched network.

Each architecture draws its Gaussian weights and inputs from its own seeded CPU generator, in the
order `workers/proxies/zen.py` draws them (`gaussian_weights`, `zen_inputs`), so its value is the
one the single engine computes for it; the two feature passes then run once for all B.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from zcpipe.workers.batched.network import BatchedNetwork
from zcpipe.workers.proxies import Batch
from zcpipe.workers.proxies.zen import MIXUP_GAMMA, gaussian_weights, zen_inputs


@dataclass
class ZenDraws:
    """Each architecture's draws, on the host: its Gaussian weights (in weight-layer order), input and
    perturbation."""

    weights: list[list[torch.Tensor]]
    inputs: list[torch.Tensor]
    perturbations: list[torch.Tensor]


def draw(models: list[nn.Module], layers: list[list[nn.Module]], seeds: list[int], images: torch.Tensor) -> ZenDraws:
    """Every architecture's draws from its own seeded CPU generator, in the single engine's order.

    Host work only (about 2 ms per NB201 architecture at batch 64, the generators being serial), which
    reads nothing but the networks' shapes: the engine runs it beside the other passes."""
    out = ZenDraws([], [], [])
    for model, own, seed in zip(models, layers, seeds, strict=True):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        out.weights.append(gaussian_weights(model, gen, own))
        a, b = zen_inputs(images, gen, on_host=True)
        out.inputs.append(a)
        out.perturbations.append(b)
    return out


def run_zen_pass(net: BatchedNetwork, draws: ZenDraws, batch: Batch) -> list[float]:
    """Each architecture's zen value before the finiteness check: log E‖f(a) − f(a + γb)‖₁ + Σ log √mean(σ²_BN).

    `net` is the batched network of the networks `draws` were drawn for; its weights and BatchNorm state
    are overwritten (zen's own draws), so it is the last pass to use it."""
    x = batch.images
    inputs, perturbations = draws.inputs, draws.perturbations
    rows: dict[int, dict[int, torch.Tensor]] = {}
    for arch, layers in enumerate(net.layout.of_arch):
        for drawn, (index, block) in zip(draws.weights[arch], layers, strict=True):
            rows.setdefault(index, {})[block] = drawn
    with torch.no_grad():
        for index, layer in enumerate(net.layout.layers):
            blocks = rows[index]
            layer.module.weight.copy_(torch.cat([blocks[j] for j in range(len(layer.archs))]).to(x.device))
            if layer.module.bias is not None:
                layer.module.bias.zero_()
        for bn, _, _ in net.batchnorms():
            bn.weight.fill_(1.0)
            bn.bias.zero_()
            bn.reset_running_stats()
        net.train()
        a, b = torch.cat(inputs, dim=1).to(x.device), torch.cat(perturbations, dim=1).to(x.device)
        diff = (net.features(a) - net.features(a + MIXUP_GAMMA * b)).abs()
        nas_score = diff.view(x.shape[0], net.n_archs, -1).sum(2).mean(0)  # [B]
        # Σ over each architecture's BatchNorms, in its own module order, in the BN's dtype (as the
        # single engine sums them).
        log_bn = torch.zeros(net.n_archs, dtype=x.dtype, device=x.device)
        for bn, positions, index in net.batchnorms():
            per_arch = torch.log(torch.sqrt(bn.running_var.view(len(positions), -1).mean(1)))
            log_bn.index_add_(0, index, per_arch)
        values = torch.log(nas_score.double()) + log_bn
    return values.cpu().tolist()
