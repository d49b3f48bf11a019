"""Why SWAP ranks below its published figure: one initialisation (zcpipe) against the reference's average
over Gaussian re-initialisations (pym1024/SWAP `correlation.py`: 32 repeats of N(0, 1) weights), on the
same cells, images and labels.

    python bench/swap_repeats.py [--cells 120] [--repeats 8] [--data cifar100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR100_NPZ, CIFAR_NPZ, NB201_LABELS, machine, require

from zcpipe.predictors import rank_metrics
from zcpipe.workers.data import DataSpec, load_batch, to_batch
from zcpipe.workers.proxies import get_proxies
from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.swap import SAMPLES
from zcpipe.workers.seeding import derive_seed
from zcpipe.workers.spaces import BuildOptions, get_space


def gaussian(net: torch.nn.Module) -> None:
    """The reference's re-initialisation: N(0, 1) weights, zero biases, BatchNorm at one and zero."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.ones_(m.weight)
                torch.nn.init.zeros_(m.bias)
        for layer in layers_of(net):
            torch.nn.init.normal_(layer.weight)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--data", default="cifar100", choices=("cifar10", "cifar100"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    pack = CIFAR_NPZ if args.data == "cifar10" else CIFAR100_NPZ
    images, labels, classes = load_batch(DataSpec(args.data, str(require(pack)), 64, 0))
    batch = to_batch(images, labels, classes, "cpu")
    label = "cifar10_valid" if args.data == "cifar10" else "cifar100_valid"
    truth = {}
    with open(require(NB201_LABELS)) as f:
        head = f.readline().strip().split(",")
        for line in f:
            row = dict(zip(head, line.strip().split(","), strict=True))
            truth[row["arch"]] = float(row[label])
    space, swap = get_space("nb201"), get_proxies(["swap"])[0]
    one, mean, acc = [], [], []
    for key in space.sample(args.cells, 0):
        torch.manual_seed(derive_seed(0, key, "init"))
        net = space.build(key, BuildOptions(num_classes=classes))
        one.append(swap.standalone(net, batch, None))
        draws = []
        for r in range(args.repeats):
            torch.manual_seed(r)
            gaussian(net)
            draws.append(swap.standalone(net, batch, None))
        mean.append(float(np.mean(draws)))
        acc.append(truth[key])
    print(f"# SWAP on {args.cells} NB201 cells, {args.data}, first {SAMPLES} of a batch of 64 real images; {machine()}")
    for name, v in (("one default init (zcpipe)", one), (f"mean of {args.repeats} N(0,1) inits (reference)", mean)):
        m = rank_metrics(np.asarray(v), np.asarray(acc))
        print(f"{name:38s} rho {m['spearman']:.3f}  tau {m['kendall']:.3f}")


if __name__ == "__main__":
    main()
