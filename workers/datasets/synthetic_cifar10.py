"""Synthetic CIFAR-10 of Dey et al. 2021 ("FEAR"; Archai's `synthetic_gen`): Gaussian 32×32×3 images,
each labelled by the argmax over the scalar outputs of 10 randomly initialised networks
(Linear(3072, 3072), ReLU, Linear(3072, 1)), kept under a per-class cap so that the classes balance.

Generated deterministically from the seed: the 10 networks from torch's default initialisation under
that seed, then images drawn in blocks from a generator of the same seed, in order, each kept while its
class holds fewer than ceil(n / 10). The labels are a function of the image that no architecture's
inductive bias matches; "A Deeper Look at Zero-Cost Proxies" finds every data-dependent proxy near zero
or negative on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from zcpipe.workers.datasets.base import DATASETS, Dataset, DatasetError

NETWORKS, PIXELS, BLOCK = 10, 32 * 32 * 3, 1024
# Draws before giving up on filling every class (a rare class in a small batch): bounded, then an error.
MAX_DRAWS = 200_000


def labelling_networks(seed: int) -> list[nn.Module]:
    """The 10 random networks whose argmax labels an image (torch's default init under `seed`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [nn.Sequential(nn.Linear(PIXELS, PIXELS), nn.ReLU(), nn.Linear(PIXELS, 1)) for _ in range(NETWORKS)]


@DATASETS.register("synthetic-cifar10", num_classes=10, input_shape=(3, 32, 32), needs_root=False)
class SyntheticCifar10(Dataset):
    def batch(self, root: str | None, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
        nets = labelling_networks(seed)
        cap = math.ceil(n / NETWORKS)
        gen = torch.Generator().manual_seed(seed)
        kept: list[torch.Tensor] = []
        labels: list[int] = []
        counts = [0] * NETWORKS
        drawn = 0
        with torch.no_grad():
            while len(kept) < n:
                if drawn >= MAX_DRAWS:
                    raise DatasetError(
                        f"synthetic-cifar10: {MAX_DRAWS} draws filled only {len(kept)} of {n} balanced slots "
                        f"(class counts {counts}); use another `seed`",
                        options=["seed"],
                    )
                images = torch.randn((BLOCK, 32, 32, 3), generator=gen)  # HWC, as Dey et al. draw them
                flat = images.reshape(BLOCK, -1)
                winners = torch.cat([net(flat) for net in nets], dim=1).argmax(dim=1).tolist()
                drawn += BLOCK
                for img, c in zip(images, winners, strict=True):
                    if counts[c] < cap and len(kept) < n:
                        counts[c] += 1
                        kept.append(img.permute(2, 0, 1))
                        labels.append(c)
        return torch.stack(kept).numpy().astype(np.float32), np.asarray(labels, np.int64), NETWORKS
