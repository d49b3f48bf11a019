"""Bayesian linear layers (Blundell et al., "Weight Uncertainty in Neural Networks"), as ParZC uses them.

Weights are W = μ + softplus(ρ)·ε with ε ~ N(0, 1) drawn per forward (the reparameterisation
trick), under a N(0, prior_std²) prior; `kl()` is the closed-form KL(q(W) || prior) that the
training loss adds with a documented weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class BayesianLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, prior_std: float = 0.1, rho_init: float = -5.0):
        super().__init__()
        self.prior_std = prior_std
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.full((out_features, in_features), rho_init))
        self.bias_mu = nn.Parameter(torch.zeros(out_features))
        self.bias_rho = nn.Parameter(torch.full((out_features,), rho_init))
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        # Sampling is on unless the caller asks for the posterior mean (predict with mc_samples=0).
        self.sample = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.sample:
            return F.linear(x, self.weight_mu, self.bias_mu)
        w = self.weight_mu + F.softplus(self.weight_rho) * torch.randn_like(self.weight_mu)
        b = self.bias_mu + F.softplus(self.bias_rho) * torch.randn_like(self.bias_mu)
        return F.linear(x, w, b)

    def kl(self) -> torch.Tensor:
        total = self.weight_mu.new_zeros(())
        for mu, rho in ((self.weight_mu, self.weight_rho), (self.bias_mu, self.bias_rho)):
            sigma = F.softplus(rho)
            total = (
                total + (torch.log(self.prior_std / sigma) + (sigma**2 + mu**2) / (2 * self.prior_std**2) - 0.5).sum()
            )
        return total

    def num_weights(self) -> int:
        return self.weight_mu.numel() + self.bias_mu.numel()


def bayesian_layers(model: nn.Module) -> list[BayesianLinear]:
    return [m for m in model.modules() if isinstance(m, BayesianLinear)]


def set_sampling(model: nn.Module, on: bool) -> None:
    for m in bayesian_layers(model):
        m.sample = on


def mean_kl(model: nn.Module) -> torch.Tensor:
    """KL summed over every Bayesian weight, divided by their number (so its weight does not scale with width)."""
    layers = bayesian_layers(model)
    if not layers:
        return torch.zeros(())
    return sum(m.kl() for m in layers) / sum(m.num_weights() for m in layers)
