"""AZ-NAS's three scores (Lee & Ham, CVPR 2024; cvlab-yonsei/AZ-NAS
`NB201/ZeroShotProxy/compute_az_nas_score.py`), on the features the network's stem and each of its cells
put out for a Gaussian input, after a Kaiming (fan-in, ReLU) re-initialisation.

The input is N(0, 1) noise of the minibatch's shape, not its images: the reference's search script
(`NB201/tss_general.ipynb`) feeds real images only to the proxies it lists in `real_input_metrics`
(zico, snip, grasp, te_nas, gradsign) and `torch.randn` of the batch's size to AZ-NAS. It matters: on
150 seeded NB201 cells, Spearman ρ of the aggregate against CIFAR-10 test accuracy is 0.90 with noise and
0.74 with CIFAR-10 images (progressivity alone 0.63 against 0.26); the paper reports 0.913.

- `az_expressivity`: Σ over those feature maps of the entropy of the normalised eigenvalues of the
  channel covariance (over images and positions);
- `az_progressivity`: the smallest increase of that entropy from one map to the next;
- `az_trainability`: the mean over consecutive maps of 2 − σ − 1/(σ + 1e-6), σ the largest singular
  value of E[g_in g_outᵀ] for a random ±1 gradient g_out at the later map (the earlier map's gradient
  pixel-unshuffled where the resolution halves). A cell whose input gradient is its output gradient
  exactly (an identity cell) scores −∞ in the reference: NULL here, with that reason.

The fourth, complexity, is the stored `flops`; the published `az_nas` is Σ log(rank / N) of the four over
the architectures of one run, so it is computed in a query, not stored (docs/proxies.md).

Their own pass (a re-initialised copy, `pass_name="own"`), shared by the three: the first computes the
features and scores and leaves them in `ProxyContext.extras` for the other two. The re-drawn weights and
the ±1 gradients come from a CPU generator seeded per (run seed, arch), so values do not depend on the
device. Eigenvalues and singular values are taken in float64 (the reference uses float32 on the GPU), so
a near-zero eigenvalue cannot make the entropy's logarithm NaN. The features are those of `net.stem` and
each module of `net.cells` (NB201, the NDS spaces); a network without them (NB101) is NULL with the reason.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.registry import PROXIES

_CACHE = "az_nas"


def _kaiming_fan_in(net: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                w = torch.randn(m.weight.shape, generator=gen, dtype=m.weight.dtype) * math.sqrt(2.0 / fan_in)
                m.weight.copy_(w)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()


def cell_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of `net.stem` and of each module of `net.cells`, in order, from one forward."""
    if not hasattr(net, "stem") or not isinstance(getattr(net, "cells", None), nn.ModuleList):
        raise ProxyUndefined("AZ-NAS reads the outputs of the network's stem and cells; this network has none")
    out: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: out.append(o)) for m in [net.stem, *net.cells]]
    try:
        net.features(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def expressivity_of(feature: torch.Tensor) -> torch.Tensor:
    """Entropy of the normalised eigenvalues of the channel covariance over images and positions (a 0-d
    float64 tensor: the caller reads all of them from the device at once)."""
    b, c, h, w = feature.shape
    f = feature.detach().to(torch.float64).permute(0, 2, 3, 1).reshape(b * h * w, c)
    f = f - f.mean(dim=0, keepdim=True)
    s = torch.linalg.eigvalsh(f.t() @ f / f.shape[0])
    p = s / s.sum()
    return (-p * torch.log(p + 1e-8)).sum()


def trainability_of(g_in: torch.Tensor, g_out: torch.Tensor) -> torch.Tensor:
    """2 − σ − 1/(σ + 1e-6), σ the largest singular value of E[g_in g_outᵀ] over images and positions (0-d)."""
    if g_in.shape[2] != g_out.shape[2]:
        g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    co, ci = g_out.shape[1], g_in.shape[1]
    a = g_in.to(torch.float64).permute(0, 2, 3, 1).reshape(-1, ci)
    b = g_out.to(torch.float64).permute(0, 2, 3, 1).reshape(-1, co)
    sigma = torch.linalg.svdvals(a.t() @ b / b.shape[0]).max()
    return -sigma - 1.0 / (sigma + 1e-6) + 2.0


def az_scores(net: nn.Module, images: torch.Tensor, seed: int) -> dict[str, float | str]:
    """The three scores (or, for trainability, the reason it is undefined) of a re-initialised copy, on
    Gaussian noise shaped like `images` (only their shape, dtype and device are read).
    Every per-map quantity stays on the device until one copy at the end (no sync per cell)."""
    net = copy.deepcopy(net)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    _kaiming_fan_in(net, gen)
    net.train()
    noise = torch.randn(images.shape, generator=gen, dtype=images.dtype).to(images.device)
    feats = cell_features(net, noise)
    entropies = torch.stack([expressivity_of(f) for f in feats])
    terms, identity = [], []
    for i in reversed(range(1, len(feats))):
        f_out, f_in = feats[i], feats[i - 1]
        g_out = ((torch.rand(f_out.shape, generator=gen) < 0.5).to(f_out.dtype) * 2 - 1).to(f_out.device)
        (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=True, allow_unused=True)
        if g_in is None:
            g_in = torch.zeros_like(f_in)
        same = (g_in == g_out).all() if g_in.shape == g_out.shape else torch.zeros((), dtype=torch.bool)
        identity.append(same.to(device=entropies.device, dtype=torch.float64))
        terms.append(trainability_of(g_in.detach(), g_out))
    pairs = len(terms)
    host = torch.cat([entropies, torch.stack(terms), torch.stack(identity)] if pairs else [entropies]).cpu()
    ent = host[: len(feats)].numpy()
    scores: dict[str, float | str] = {
        "az_expressivity": float(ent.sum()),
        "az_progressivity": float(np.min(ent[1:] - ent[:-1])) if len(feats) > 1 else math.nan,
        "az_trainability": math.nan,
    }
    if pairs:
        values, same = host[len(feats) : len(feats) + pairs].numpy(), host[len(feats) + pairs :].numpy()
        if same.any():
            cell = len(feats) - 1 - int(np.argmax(same))  # the pairs ran from the last cell back
            scores["az_trainability"] = f"cell {cell} passes its input gradient unchanged (AZ-NAS scores it −inf)"
        else:
            scores["az_trainability"] = float(values.mean())
    return scores


class _AzNas(Proxy):
    scope = "arch"
    pass_name = "own"

    def standalone(self, net, batch, ctx):
        scores = ctx.extras.get(_CACHE)
        if scores is None:  # the first of the three in this engine pass computes all three
            scores = ctx.extras[_CACHE] = az_scores(net, batch.images, ctx.generator_seed)
        value = scores[self.name]
        if isinstance(value, str):
            raise ProxyUndefined(value)
        if not math.isfinite(value):
            raise ProxyUndefined(f"{self.name} is {value} (one feature map or none)")
        return value


# Version 2: Gaussian input as the reference (version 1 read the minibatch's images).
@PROXIES.register("az_expressivity", scope="arch", pass_name="own", version="2")
class AzExpressivity(_AzNas):
    pass


@PROXIES.register("az_progressivity", scope="arch", pass_name="own", version="2")
class AzProgressivity(_AzNas):
    pass


@PROXIES.register("az_trainability", scope="arch", pass_name="own", version="2")
class AzTrainability(_AzNas):
    pass
